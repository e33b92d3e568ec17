"""`leadflow run`, `demo`, `sync`, `backfill` and `map`, and the run summaries they print."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from leadflow.cli.common import (
    ConfigOption,
    DryRunOption,
    OverrideOption,
    SkipPreflightOption,
    SystemOption,
    _fail,
    _guard,
    _print_sandbox_setup,
    _run_crm_sync,
    _run_sync,
    _utc,
)
from leadflow.pipeline.errors import LeadflowError


def _print_crm_summary(summary: dict[str, Any]) -> None:
    typer.echo("")
    typer.secho(f"leadflow sync {summary['run_id']}" + ("  (dry run: nothing written)" if summary["dry_run"] else ""),
                bold=True)
    typer.echo(f"  {'rows in':<30}{summary['rows_in']:>8}")
    for stage, count in summary["quarantined_by_stage"].items():
        typer.echo(f"  {'quarantined at ' + stage:<30}{count:>8}")
    typer.echo(f"  {'rows out':<30}{summary['rows_out']:>8}")
    for system, report in summary["systems"].items():
        verb = "would write" if summary["dry_run"] else "written back"
        line = f"  {system:<12} pulled {report['pulled']}, {verb} {report['written']}, failed {report['failed']}"
        if report.get("retried"):
            line += f", dead letters retried {report['retried']}"
        letters = report.get("dead_letters") or {}
        if letters.get("pending") or letters.get("permanent"):
            line += f"; dead letters: {letters['pending']} to retry, {letters['permanent']} permanent"
        if report.get("stopped"):
            line += f"  STOPPED: {report['stopped']}"
        typer.echo(line)
        if report.get("account_match"):
            matches = ", ".join(f"{k} {v}" for k, v in report["account_match"].items())
            known = ", ".join(f"{k} {v}" for k, v in report.get("firmographics_known", {}).items())
            typer.echo(f"      account match: {matches}; duplicates {report.get('duplicates', 0)}; known: {known}")
        if "routed" in report or report.get("routed_by_rule"):
            rules = ", ".join(f"{k} {v}" for k, v in report.get("routed_by_rule", {}).items()) or "none"
            typer.echo(f"      routed {report.get('routed', 0)} to {len(report.get('assigned_per_owner', {}))} "
                       f"owners; held {report.get('held', 0)}; kept with their owner "
                       f"{report.get('kept_with_owner', 0)}  (by rule: {rules})")
            for reason, n in sorted(report.get("kept_by_reason", {}).items(), key=lambda kv: -kv[1]):
                typer.echo(f"      {'':<8}{n:>6}  kept: {reason}")
        if report.get("skipped_converted"):
            typer.echo(f"      converted leads never written: {report['skipped_converted']}")
        if report.get("echo_skipped"):
            typer.echo(f"      unchanged since leadflow last wrote them, not processed: {report['echo_skipped']}")
        if report.get("refused"):
            refused = ", ".join(f"{k} {v}" for k, v in report["refused"].items())
            typer.echo(f"      values the org would refuse, not written: {refused}")
        if report.get("truncated"):
            typer.echo(f"      text values cut to fit their field: {report['truncated']}")
        if summary["dry_run"]:
            for column, entry in sorted(report.get("changes", {}).items(), key=lambda kv: -kv[1]["count"]):
                shown = "; ".join(f"{rid}: {old!r} -> {new!r}" for rid, old, new in entry["examples"])
                typer.echo(f"      {column:<18}{entry['count']:>6}  e.g. {shown}")


def _print_summary(summary: dict[str, Any]) -> None:
    from leadflow.pipeline.settings import Settings

    rows_in, rows_out = summary["rows_in"], summary["rows_out"]
    typer.echo("")
    typer.secho(f"leadflow run {summary['run_id']}", bold=True)
    typer.echo(f"  {'rows in':<30}{rows_in:>8}")
    for stage, count in summary["quarantined_by_stage"].items():
        typer.echo(f"  {'quarantined at ' + stage:<30}{count:>8}")
        for name, n in sorted(summary["quarantined_by_expectation"].get(stage, {}).items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {'':<30}{n:>8}  {name}")
    typer.echo(f"  {'rows out':<30}{rows_out:>8}")
    if rows_out:
        share = summary.get("mailable", 0) / rows_out
        typer.echo(f"  {'mailable':<30}{summary.get('mailable', 0):>8}  ({share:.1%} of rows out)")
        for reason, n in summary.get("mailable_reasons", {}).items():
            typer.echo(f"  {'':<30}{n:>8}  {reason}")
    if summary.get("account_match"):
        for method, n in summary["account_match"].items():
            typer.echo(f"  {'account match: ' + method:<30}{n:>8}")
        typer.echo(f"  {'duplicates of CRM records':<30}{summary['duplicates']:>8}")
        for column, n in summary["firmographics_known"].items():
            typer.echo(f"  {column + ' known':<30}{n:>8}")
        typer.echo(f"  {'segments':<30}" + ", ".join(f"{k} {v}" for k, v in summary["segments"].items()))
    if summary.get("grades"):
        typer.echo(f"  {'grades':<30}" + ", ".join(f"{k} {v}" for k, v in summary["grades"].items()))
        typer.echo(f"  {'lifecycle':<30}" + ", ".join(f"{k} {v}" for k, v in summary["lifecycle"].items()))
        typer.echo(f"  {'lifecycle moves refused':<30}{summary['lifecycle_refused']:>8}  (see lifecycle_reason)")
    if summary.get("routed_by_rule"):
        for rule, n in summary["routed_by_rule"].items():
            typer.echo(f"  {'routed by ' + rule:<30}{n:>8}")
        typer.echo(f"  {'held by routing':<30}{summary['held']:>8}")
    typer.echo("")
    typer.secho("Where to look next", bold=True)
    if "output" in summary:
        typer.echo(f"  leads         {summary['output']}")
        typer.echo(f"  quarantine    {summary['quarantine']}  (one line per refused row, with the reason)")
    from sqlalchemy.engine import make_url

    store = make_url(Settings().state_url()).render_as_string(hide_password=True)
    typer.echo(f"  state store   {store}  (runs, quarantine, audit trail: leadflow trace EMAIL_OR_ID)")
    typer.echo("  process map   leadflow map")


def run(
    input: Annotated[Path, typer.Option("--input", "-i", help="Lead file to process (.csv or .parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the processed leads (.csv/.parquet).")],
    config: ConfigOption = None,
    chunk_rows: Annotated[int, typer.Option(
        "--chunk-rows", min=1000, help="Rows read, processed and written at a time: memory is one chunk's.")] = 50_000,
) -> None:
    """Run every stage over a lead file, a chunk at a time (file mode); quarantined rows go beside the output."""
    _print_summary(_guard(lambda: _run_sync(input, output, config, chunk_rows=chunk_rows)))


def demo(
    offline: Annotated[bool, typer.Option("--offline", help="Run over the bundled sample file instead.")] = False,
    leads: Annotated[int, typer.Option(help="Leads to seed in each sandbox.")] = 2500,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where --offline writes its output.")] = Path(
        ".leadflow/demo/leads.csv"
    ),
) -> None:
    """The real sync against local Salesforce and Marketo sandboxes: pull, every stage, write back, what changed."""
    if offline:
        from leadflow.pipeline.settings import DEMO_CONFIG, SAMPLE_LEADS

        typer.secho(f"leadflow demo --offline: {SAMPLE_LEADS.name}, a bundled sample of messy leads, matched against "
                    "bundled CRM accounts and contacts", bold=True)
        _print_summary(_guard(lambda: _run_sync(SAMPLE_LEADS, output, DEMO_CONFIG)))
        return
    import shutil

    from leadflow.sandbox.launch import running_sandboxes
    from leadflow.sandbox.reps import seed_start
    from leadflow.pipeline.settings import Settings

    folder = Settings().home / "demo-sandbox"
    shutil.rmtree(folder, ignore_errors=True)  # every demo starts from freshly seeded, messy systems
    start = seed_start(leads, datetime.now(UTC))
    typer.secho(f"leadflow demo: seeding local Salesforce and Marketo sandboxes with {leads} messy leads each", bold=True)
    typer.echo(f"  dated as an org is today: leads created in the weeks up to {start:%Y-%m-%d %H:%M} UTC")
    with running_sandboxes(folder, leads=leads, systems=("salesforce", "marketo"), enrichment=True,
                           routing=True, start=start) as boxes:
        for name, url in boxes.urls.items():
            typer.echo(f"  {name:<12} {url}")
        _print_sandbox_setup(boxes.setup)
        typer.echo("The first sync of a system changes every lead, so the demo overrides the export guard.")
        began = datetime.now(UTC).replace(microsecond=0)  # assignments are stamped to the second
        summary = _guard(lambda: _run_crm_sync(boxes.config_path, None, override_export_guard=True))
        _print_crm_summary(summary)
        _print_quarantined(summary["run_id"])
        _print_changes(summary["run_id"])
        as_of = _demo_reps_and_sla(boxes, began)
    _print_demo_report(boxes.config_path, as_of)


def _demo_reps_and_sla(boxes: Any, began: datetime) -> datetime:
    """The sandbox reps work the leads the demo's sync (started at `began`) assigned them, over the next hours (the
    org's clock fast-forwarded); then `sla_watch` runs as of the end of that span. Prints both; returns that moment."""
    from leadflow.cli.common import _load_flow
    from leadflow.sandbox.reps import REP_HOURS, plan_rep_touches, work_leads
    from leadflow.sandbox.salesforce_org import wall_clock
    from leadflow.store import StateStore

    store = StateStore.open()
    assigned = store.assignments(since=began)
    store.close()
    until = datetime.now(UTC) + timedelta(hours=REP_HOURS)
    touches = plan_rep_touches(assigned, until)
    handle = boxes.handles["salesforce"]
    typer.echo("")
    typer.secho(f"Reps at work: the next {REP_HOURS} hours in the Salesforce sandbox (its clock fast-forwarded, "
                "nothing sleeps)", bold=True)
    done = _guard(lambda: work_leads(handle, touches))
    worked = len({t.lead_id for t in touches})
    theirs = int((assigned["lead_key"].astype("string").str.startswith("salesforce:")
                  & assigned["owner_id"].astype("string").str.startswith("005")
                  .fillna(False)).sum())
    typer.echo(f"  over its REST API: {done.get('call', 0)} calls and {done.get('email', 0)} e-mails logged (Tasks), "
               f"{done.get('meeting', 0)} meetings booked (Events), {done.get('status', 0)} status changes "
               f"(LeadHistory) on {worked} of the {theirs} Salesforce leads assigned to reps")
    handle.org.clock = lambda: until  # the org's "now" while the watch reads it
    try:
        watch = _guard(lambda: _load_flow(SLA_WATCH_ENTRYPOINT)(as_of=until, config_path=str(boxes.config_path)))
    finally:
        handle.org.clock = wall_clock
    touched = watch.get("first_touches") or {}
    typer.secho(f"SLA watch as of {until:%Y-%m-%d %H:%M} UTC (sla_watch: CRM first touches, then the SLAs)",
                bold=True)
    if "error" in touched:
        typer.echo(f"  CRM first touches not pulled: {touched['error']}")
    else:
        typer.echo("  first touches pulled from Salesforce: " + ", ".join(
            f"{source} {counts['assignments']}" for source, counts in touched.items()) + " (assignments answered)")
    typer.echo(f"  breaches recorded (untouched past their due time): {watch.get('breaches', 0)}"
               + (f", worst {watch['max_minutes_late'] / 60:.1f} h late" if watch.get("breaches") else ""))
    return until


def _print_demo_report(config_path: Path, as_of: datetime) -> None:
    """Write the KPI report of the 30 days up to `as_of` beside the state store and print its headline."""
    from leadflow.audit.kpi_report import load_summary, owner_names
    from leadflow.audit.report import write_report
    from leadflow.pipeline.config import load_rules
    from leadflow.pipeline.settings import Settings
    from leadflow.pipeline.stage import process_map as render
    from leadflow.stages import pipeline_from_names
    from leadflow.store import StateStore

    rules = load_rules(config_path)
    since = as_of - timedelta(days=30)
    store = StateStore.open()
    try:
        names = owner_names(rules.routing, store.mirror_owner_names())
        mermaid = render(pipeline_from_names(rules.pipeline, origin=rules.source))
        path = _guard(lambda: write_report(store, since, Settings().home / "demo-report.html", mermaid, as_of=as_of,
                                           names=names, routing=rules.routing))
        summary = load_summary(store, since, as_of, names)
    finally:
        store.close()
    speed, sla, touch = summary["speed_to_lead"], summary["sla"], summary["first_touch"]
    cohort = summary["funnel"]["cohort"]
    typer.echo("")
    typer.secho(f"Report: {path.resolve()}", bold=True)
    typer.echo(f"  window            30 days up to {as_of:%Y-%m-%d %H:%M} UTC")
    typer.echo(f"  leads             {summary['leads']} first seen, {summary['assignments']} assignments")
    typer.echo(f"  speed-to-lead     created → first touch p50 {speed['created_to_first_touch']['p50']['text']}, "
               f"p90 {speed['created_to_first_touch']['p90']['text']} ({speed['created_to_first_touch']['n']} leads); "
               f"created → assigned p50 {speed['created_to_assigned']['p50']['text']} (the backlog the first sync "
               "routed)")
    by_source = ", ".join(f"{k} {v}" for k, v in touch["by_source"].items() if v)
    typer.echo(f"  first touches     {touch['touched']} ({by_source or 'none'})")
    typer.echo(f"  SLA               {_percent(sla['attainment'])} met: {sla['met']} met, {sla['missed']} missed, "
               f"{sla['open']} open (not yet due)")
    typer.echo(f"  funnel cohort     {cohort['leads']} leads created in the window: new → MQL "
               f"{_percent(cohort['new_to_mql'])}, MQL → SAL {_percent(cohort['mql_to_sal'])}, SAL → SQL "
               f"{_percent(cohort['sal_to_sql'])}")
    typer.echo(f"  the same numbers: leadflow kpis --since {since.isoformat(timespec='seconds')} --config "
               f"{config_path} --json")


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


SLA_WATCH_ENTRYPOINT: Final = "flows/sla_watch.py:sla_watch"

def _print_quarantined(run_id: str, per_reason: int = 2, most: int = 12) -> None:
    """A few of the run's quarantined rows, grouped by stage and expectation, with the reason each was refused."""
    from leadflow.store import StateStore

    rows = StateStore.open().quarantine(run_id)
    typer.echo("")
    if rows.empty:
        typer.secho("Rows quarantined: none (every row passed every stage's gate)", bold=True)
        return
    typer.secho(f"Rows quarantined ({len(rows)}; every one is in the state store's quarantine table with the whole "
                "row)", bold=True)
    shown = 0
    for (stage, expectation), group in rows.groupby(["stage", "expectation"], sort=False):
        typer.echo(f"  {stage} · {expectation}: {len(group)}")
        for _, row in group.head(per_reason).iterrows():
            who = row["lead_key"] if isinstance(row["lead_key"], str) else "(no id)"
            typer.echo(f"      {who}: {row['reason']}")
        shown += 1
        if shown >= most:
            break


def _print_changes(run_id: str) -> None:
    from leadflow.pipeline.ledger import change_summary
    from leadflow.store import StateStore

    changes = change_summary(StateStore.open().events(run_id=run_id, stage_changes=False))
    if not changes:
        return
    typer.echo("")
    typer.secho("What changed in the systems (written back)", bold=True)
    for item in changes:
        shown = "; ".join(f"{old!r} -> {new!r}" for old, new in item["examples"])
        typer.echo(f"  {item['stage'].removeprefix('writeback:'):<11}{item['column']:<18}{item['count']:>6}  e.g. {shown}")
    typer.echo(f"\nTrace a lead through run {run_id}: leadflow trace EMAIL_OR_ID")


def sync(
    config: ConfigOption = None, system: SystemOption = None, dry_run: DryRunOption = False,
    override_export_guard: OverrideOption = False,
    skip_preflight: SkipPreflightOption = False,
) -> None:
    """One incremental sync of the configured CRM/MAP systems: pull, every stage, write back changed fields."""
    _print_crm_summary(_guard(lambda: _run_crm_sync(
        config, system, preflight=not skip_preflight, dry_run=dry_run, override_export_guard=override_export_guard
    )))


def backfill(
    start: Annotated[datetime, typer.Option(help="Start of the range (UTC unless an offset is given).")],
    end: Annotated[datetime, typer.Option(help="End of the range, exclusive.")],
    config: ConfigOption = None,
    system: SystemOption = None,
    dry_run: DryRunOption = False,
    override_export_guard: OverrideOption = False,
    skip_preflight: SkipPreflightOption = False,
) -> None:
    """Re-run the flow over leads modified in [start, end); the incremental watermark is left alone."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        _fail(LeadflowError(f"--end ({end.isoformat()}) must be after --start ({start.isoformat()})"))
    _print_crm_summary(_guard(lambda: _run_crm_sync(
        config, system, preflight=not skip_preflight, start=start, end=end, dry_run=dry_run,
        override_export_guard=override_export_guard,
    )))


def process_map(config: ConfigOption = None) -> None:
    """Print the process map (Mermaid flowchart) generated from the stage declarations."""
    from leadflow.pipeline.config import load_rules
    from leadflow.pipeline.stage import process_map as render
    from leadflow.stages import pipeline_from_names

    def build() -> str:
        rules = load_rules(config)
        return render(pipeline_from_names(rules.pipeline, origin=rules.source))

    typer.echo(_guard(build), nl=False)
