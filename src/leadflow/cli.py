"""The `leadflow` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leadflow.errors import LeadflowError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="leadflow: lead-flow automation for RevOps teams.")

T = TypeVar("T")
FLOW_ENTRYPOINT = "flows/lead_sync.py:lead_sync"
CRM_SYNC_ENTRYPOINT = "flows/crm_sync.py:crm_sync"
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Run config YAML (pipeline, quality, consent policy, suppression).")
]


@app.callback()
def _project(
    project_dir: Annotated[Path | None, typer.Option(
        "--project-dir", help="The leadflow project (the folder with flows/ and tasks/); default: this folder or the "
        "nearest parent that is one, or $LEADFLOW_PROJECT.")] = None,
) -> None:
    """leadflow: lead-flow automation for RevOps teams."""
    if project_dir is not None:
        from leadflow.project import PROJECT_ENV, ProjectNotFound, is_project

        folder = project_dir.expanduser().resolve()
        if not is_project(folder):
            _fail(ProjectNotFound(f"--project-dir {project_dir}: not a leadflow project (no flows/lead_sync.py and "
                                  "tasks/ there)"))
        os.environ[PROJECT_ENV] = str(folder)


def _fail(exc: LeadflowError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(exc.exit_code)


def _guard(call: Callable[[], T]) -> T:
    try:
        return call()
    except LeadflowError as exc:
        _fail(exc)
        raise  # unreachable: _fail always exits


def _prefect_env() -> None:
    # No internet here or on most ops boxes: telemetry only fills the log with name-resolution errors.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    import logging

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _HandledErrorFilter) for f in target.filters):
            target.addFilter(_HandledErrorFilter())


class _HandledErrorFilter:
    """Prefect logs a failed flow or task run with its traceback; for leadflow's own errors (a refused write, a
    busy writer, a bad config) the one-line message is the whole story, and the CLI prints it once more at the end."""

    def filter(self, record: Any) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, LeadflowError):
            record.exc_info, record.exc_text = None, None
        return True


def _load_flow(entrypoint: str) -> Any:
    from leadflow.project import require_project

    root = require_project()  # flows/ and tasks/ are Prefect entrypoint folders of the project, not packages
    path, name = entrypoint.split(":", 1)
    script = root / path
    if not script.is_file():
        raise LeadflowError(f"{script} not found: the leadflow project at {root} is incomplete")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the flows import `flows.*` and `tasks.*` from the project
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"{script}:{name}")


def _checked_rules(config: Path | None) -> Any:
    from leadflow.config import load_rules
    from leadflow.stages import pipeline_from_names

    # Fail fast on bad config, before paying Prefect's start-up.
    rules = load_rules(config)
    pipeline_from_names(rules.pipeline, origin=rules.source)
    return rules


def _run_flow(entrypoint: str, **params: Any) -> dict[str, Any]:
    _prefect_env()
    flow = _load_flow(entrypoint)
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        typer.secho(
            "Starting Prefect: with no PREFECT_API_URL set, a temporary local Prefect server starts first "
            "(about 10-20 s; set PREFECT_API_URL to a running server to skip this).",
            fg=typer.colors.CYAN,
        )
    try:
        result: dict[str, Any] = flow(**params)
    except RuntimeError as exc:
        if not str(exc).startswith(EPHEMERAL_TIMEOUT):
            raise
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        raise LeadflowError(
            f"the temporary Prefect server did not answer within "
            f"{PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()} s (a busy machine); start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api, or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") from None
    return result


EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"
"""How Prefect's temporary server says it did not start (prefect.server.api.server.SubprocessASGIServer.start)."""


def _run_sync(input_path: Path, output_path: Path | None, config: Path | None) -> dict[str, Any]:
    from leadflow.io import check_header

    _checked_rules(config)
    check_header(input_path)
    return _run_flow(
        FLOW_ENTRYPOINT, input_path=str(input_path), output_path=str(output_path) if output_path else None,
        config_path=str(config) if config else None,
    )


def _run_crm_sync(config: Path | None, systems: list[str] | None, *, preflight: bool = False,
                  **params: Any) -> dict[str, Any]:
    rules = _checked_rules(config)
    from leadflow.errors import ConfigError

    wanted = systems or rules.systems.names
    if not wanted:
        raise ConfigError(rules.source, "no systems configured to sync", yaml_path="systems")
    for name in wanted:
        if name not in rules.systems.names:
            raise ConfigError(rules.source, f"system {name!r} is not configured", yaml_path=f"systems.{name}")
    if preflight:  # stop with the doctor's message rather than fail mid-run
        from leadflow.doctor import PreflightFailed
        from leadflow.doctor import preflight as run_preflight

        report = run_preflight(rules, systems=wanted)
        if not report.ok:
            raise PreflightFailed(report)
    return _run_flow(CRM_SYNC_ENTRYPOINT, systems=wanted, config_path=str(config) if config else None, **params)


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
    from leadflow.settings import Settings

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


@app.command()
def run(
    input: Annotated[Path, typer.Option("--input", "-i", help="Lead file to process (.csv or .parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the processed leads (.csv/.parquet).")],
    config: ConfigOption = None,
) -> None:
    """Run every stage over a lead file (offline file mode); quarantined rows go beside the output."""
    _print_summary(_guard(lambda: _run_sync(input, output, config)))


@app.command()
def demo(
    offline: Annotated[bool, typer.Option("--offline", help="Run over the bundled sample file instead.")] = False,
    leads: Annotated[int, typer.Option(help="Leads to seed in each sandbox.")] = 2500,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where --offline writes its output.")] = Path(
        ".leadflow/demo/leads.csv"
    ),
) -> None:
    """The real sync against local Salesforce and Marketo sandboxes: pull, every stage, write back, what changed."""
    if offline:
        from leadflow.settings import DEMO_CONFIG, SAMPLE_LEADS

        typer.secho(f"leadflow demo --offline: {SAMPLE_LEADS.name}, a bundled sample of messy leads, matched against "
                    "bundled CRM accounts and contacts", bold=True)
        _print_summary(_guard(lambda: _run_sync(SAMPLE_LEADS, output, DEMO_CONFIG)))
        return
    import shutil

    from leadflow.sandbox.launch import running_sandboxes
    from leadflow.settings import Settings

    folder = Settings().home / "demo-sandbox"
    shutil.rmtree(folder, ignore_errors=True)  # every demo starts from freshly seeded, messy systems
    typer.secho(f"leadflow demo: seeding local Salesforce and Marketo sandboxes with {leads} messy leads each", bold=True)
    with running_sandboxes(folder, leads=leads, systems=("salesforce", "marketo"), enrichment=True,
                           routing=True) as boxes:
        for name, url in boxes.urls.items():
            typer.echo(f"  {name:<12} {url}")
        _print_sandbox_setup(boxes.setup)
        typer.echo("The first sync of a system changes every lead, so the demo overrides the export guard.")
        summary = _guard(lambda: _run_crm_sync(boxes.config_path, None, override_export_guard=True))
    _print_crm_summary(summary)
    _print_quarantined(summary["run_id"])
    _print_changes(summary["run_id"])


def _print_sandbox_setup(result: Any) -> None:
    if result is None:
        return
    typer.echo(f"  leadflow setup salesforce: {len(result.created)} custom fields created in the stock org, "
               "access granted to the integration user through a permission set" if result.created else
               "  leadflow setup salesforce: the org already has leadflow's fields")


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
    from leadflow.pipeline import change_summary
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


SystemOption = Annotated[
    list[str] | None, typer.Option("--system", "-s", help="Sync only this system (repeatable); default: all configured.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Write nothing back; show what would be written.")]


SkipPreflightOption = Annotated[
    bool, typer.Option("--skip-preflight", help="Skip the doctor's checks before the run (login, API budget, mapped "
                       "fields, routing users and queues).")
]
OverrideOption = Annotated[
    bool,
    typer.Option("--override-export-guard", help="Allow a write that changes more records than the export guard "
                 "permits (e.g. an intended initial load)."),
]


@app.command()
def sync(
    config: ConfigOption = None, system: SystemOption = None, dry_run: DryRunOption = False,
    override_export_guard: OverrideOption = False,
    skip_preflight: SkipPreflightOption = False,
) -> None:
    """One incremental sync of the configured CRM/MAP systems: pull, every stage, write back changed fields."""
    _print_crm_summary(_guard(lambda: _run_crm_sync(
        config, system, preflight=not skip_preflight, dry_run=dry_run, override_export_guard=override_export_guard
    )))


@app.command()
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


@app.command()
def sandbox(
    folder: Annotated[Path, typer.Option(help="Where the sandboxes keep their state and config.")] = Path(
        ".leadflow/sandbox"
    ),
    leads: Annotated[int, typer.Option(help="Leads to seed on first start.")] = 500,
    stock_org: Annotated[bool, typer.Option(
        "--stock-org", help="Serve Salesforce as a stock org: only standard fields until you run `leadflow setup "
        "salesforce` (by default the sandbox runs it for you).")] = False,
    fault_rate: Annotated[float | None, typer.Option(
        "--fault-rate", help="Fail this share of the API calls (0 to 1, e.g. 0.1) the way the real services fail "
        "now and then: 429s, 5xx, Marketo 606/615/604, Salesforce row locks.")] = None,
    fault_kinds: Annotated[str | None, typer.Option(
        "--fault-kinds", help="With --fault-rate: the fault kinds to serve, comma-separated (e.g. 503,429); each "
        "sandbox serves the ones it knows. Default: each sandbox's transient kinds.")] = None,
    fault_seed: Annotated[int | None, typer.Option(
        "--fault-seed", help="With --fault-rate: seed of the fault draws, to replay a run's faults (default: "
        "random, printed).")] = None,
) -> None:
    """Serve the local CRM/MAP sandboxes on 127.0.0.1 until Ctrl-C, with a config that points leadflow at them."""
    import threading

    from leadflow.sandbox.launch import ALL_SYSTEMS, plan_fault_rates, running_sandboxes

    faults: dict[str, Any] | None = None
    if fault_rate is not None:
        wanted: dict[str, Any] = {"rate": fault_rate, "kinds": fault_kinds, "seed": fault_seed}
        planned = _guard(lambda: plan_fault_rates(wanted, ALL_SYSTEMS))  # one line and exit 2 if unusable
        faults = wanted | {"seed": next(iter(planned.values()))["seed"]}  # the drawn seed, printed for replays
    elif fault_kinds is not None or fault_seed is not None:
        _fail(LeadflowError("--fault-kinds and --fault-seed need --fault-rate"))

    with running_sandboxes(folder, leads=leads, enrichment=True, routing=True, setup=not stock_org,
                           faults=faults) as boxes:
        for name, url in boxes.urls.items():
            typer.echo(f"  {name:<12} {url}")
        for name, rate in boxes.faults.items():
            typer.echo(f"  faults       {name}: {rate['rate']:.0%} of calls fail ({', '.join(rate['kinds'])}), "
                       f"seed {rate['seed']}")
        _print_sandbox_setup(boxes.setup)
        if stock_org:
            typer.echo("Salesforce is a stock org: `leadflow doctor --config CONFIG` names the fields it lacks, "
                       "`leadflow setup salesforce --config CONFIG` creates them.")
        typer.secho(f"\nConfig: {boxes.config_path}", bold=True)
        try:  # from the moment Ctrl-C is offered, it stops the sandboxes cleanly
            typer.echo(f"Try:    leadflow sync --config {boxes.config_path}\nStop with Ctrl-C.")
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("stopping sandboxes")


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@app.command("map")
def process_map(config: ConfigOption = None) -> None:
    """Print the process map (Mermaid flowchart) generated from the stage declarations."""
    from leadflow.config import load_rules
    from leadflow.stage import process_map as render
    from leadflow.stages import pipeline_from_names

    def build() -> str:
        rules = load_rules(config)
        return render(pipeline_from_names(rules.pipeline, origin=rules.source))

    typer.echo(_guard(build), nl=False)


score_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Lead scoring: backtest a scoring model.")
app.add_typer(score_app, name="score")


@score_app.command("backtest")
def score_backtest(
    model: Annotated[Path, typer.Option("--model", "-m", help="Scoring model YAML to backtest.")],
    history: Annotated[Path, typer.Option("--history", help="Historical leads (.csv/.parquet) with an outcome column "
                                          "(0/1 or true/false).")],
    activities: Annotated[Path | None, typer.Option("--activities", help="Activity file (lead_key, activity_type, "
                                                    "occurred_at, detail); default: <history stem>.activities.csv "
                                                    "beside the history, if present.")] = None,
    against: Annotated[Path | None, typer.Option("--against", help="The current model YAML: show what changes.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Score as of this ISO date/time (UTC unless an offset "
                                              "is given); default: the latest created_at in the history.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the lift chart and tables (.html).")] = None,
) -> None:
    """Backtest a scoring model on historical leads.

    Prints AUC, lift by decile and MQL precision/recall; with --against, how many leads change grade and enter or
    leave MQL."""
    from leadflow.backtest import check_plot_path, result_lines, run_backtest, write_plot

    def work() -> Any:
        check_plot_path(plot)
        result = run_backtest(model, history, activities, as_of, against)
        written = write_plot(result, plot) if plot is not None else None
        return result, written

    result, written = _guard(work)
    for line in result_lines(result):
        typer.echo(line)
    if written is not None:
        typer.echo(f"\nlift chart    {written}")


routing_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Lead routing: test rules against example cases, simulate a rules change.")
app.add_typer(routing_app, name="routing")


@routing_app.command("test")
def routing_test(
    cases: Annotated[Path | None, typer.Option("--cases", help="Routing test cases YAML (cases: name, lead, expect); "
                                               "default: the bundled routing_tests.yaml.")] = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="Routing rules YAML to test instead of the one the "
                                               "cases file names (default: the bundled routing.yaml).")] = None,
) -> None:
    """Run example routing cases, one PASS/FAIL line per case.

    Each lead is routed alone from an empty state. Exit 0 if all pass, 1 if any fails, 2 on a bad cases or rules
    file."""
    from leadflow.routing_cli import DEFAULT_CASES, load_cases, routing_test_lines, run_suite

    path = cases if cases is not None else DEFAULT_CASES

    def work() -> Any:
        suite = load_cases(path, rules)
        return suite, run_suite(suite)

    suite, results = _guard(work)
    for line in routing_test_lines(results, path=path, rules_path=suite.rules_path, as_of=suite.as_of):
        typer.echo(line)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@routing_app.command("simulate")
def routing_simulate(
    rules: Annotated[Path, typer.Option("--rules", help="The new routing rules YAML.")],
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Leads to route (.csv/.parquet), e.g. the "
                                               "output of leadflow run (standardized, enriched, scored).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Instead of --input: the leads assigned in this span "
                                              "(30d, 12h, or an ISO date), as the state store kept them.")] = None,
    current: Annotated[Path | None, typer.Option("--current", help="The current routing rules YAML; default: the "
                                                 "bundled routing.yaml.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Route as of this ISO date/time (UTC unless an offset "
                                              "is given; working hours matter); default: now.")] = None,
) -> None:
    """Route a lead file with the current rules and the new ones and print the difference.

    Both start from an empty routing state; the difference is shown per owner (before, after, moved in/out), per
    rule, and as leads changing owner, with examples. Every lead is routed afresh (routing columns from an earlier
    run are ignored). Writes nothing."""
    from leadflow.routing_cli import simulate_lines, simulate_routing

    result = _guard(lambda: simulate_routing(rules, input, current, as_of, since=since))
    for line in simulate_lines(result):
        typer.echo(line)


sla_app = typer.Typer(help="First-touch SLAs of assigned leads.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


@sla_app.command("check")
def sla_check(
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO time to check at (default: now).")] = None,
) -> None:
    """Leads past their first-touch SLA with no first touch: recorded as breaches (once) and listed; exit 1 if any."""
    from datetime import UTC

    from leadflow.sla import breach_summary, check_sla
    from leadflow.store import StateStore

    def run() -> dict[str, Any]:
        moment = datetime.fromisoformat(as_of) if as_of else datetime.now(UTC)
        moment = _utc(moment)
        store = StateStore.open()
        run_id = store.start_run("sla_check", {"as_of": moment.isoformat()})
        breaches = check_sla(store, moment, run_id=run_id)
        summary = breach_summary(breaches)
        store.finish_run(run_id, "completed", summary)
        return {**summary, "frame": breaches}

    try:
        result = _guard(run)
    except ValueError as exc:
        typer.secho(f"error: --as-of: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    breaches = result["frame"]
    if breaches.empty:
        typer.echo("No lead is past its first-touch SLA.")
        return
    typer.secho(f"{len(breaches)} leads past their first-touch SLA", bold=True)
    for row in breaches.itertuples():
        typer.echo(f"  {row.lead_key:<32} owner {row.owner_id or '(none)':<20} rule {row.routing_rule:<20} "
                   f"due {row.sla_due_at:%Y-%m-%d %H:%M}Z, {row.minutes_late:.0f} min late")
    raise typer.Exit(1)


alerts_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Alerts: leadflow events → Prefect Automations → Slack / webhooks.")
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("install")
def alerts_install(
    config: Annotated[Path, typer.Option("--config", "-c", help="Run config YAML with an `alerts:` section.")],
) -> None:
    """Create or update the alert blocks and Automations in the Prefect server.

    One notification block per channel and one Automation per event, at PREFECT_API_URL; idempotent: re-running
    updates them."""
    _prefect_env()

    def install() -> list[str]:
        from leadflow.alerts import install_alerts
        from leadflow.config import RunConfig
        from leadflow.errors import ConfigError
        from leadflow.yamlio import load_yaml, parse_model

        run_config = parse_model(RunConfig, load_yaml(config), config)
        if run_config.alerts is None:
            raise ConfigError(str(config), "no `alerts:` section to install", yaml_path="alerts")
        return install_alerts(run_config.alerts, origin=str(config))

    names = _guard(install)
    from prefect.settings import get_current_settings

    typer.secho(f"Installed in the Prefect server at {get_current_settings().api.url}:", bold=True)
    for name in names:
        kind = "automation" if name.startswith("leadflow: ") else "notification block"
        typer.echo(f"  {kind:<20}{name}")


@app.command()
def deploy() -> None:
    """Deploy every flow in deployments/prefect.yaml to the Prefect server.

    Creates the `leadflow-process` work pool if missing; the server is the one at PREFECT_API_URL."""
    _prefect_env()
    from leadflow.deploy import deploy as run_deploy

    done = _guard(lambda: run_deploy(echo=typer.echo))
    typer.secho(f"Deployed from {done.project_dir}.", bold=True)
    typer.echo(f"Start a worker (from the repository root, with LEADFLOW_PROJECT_DIR={done.project_dir}):\n"
               f"  {done.worker_command}")


def _existing_store() -> Any:
    """The state store a read-only command (trace, forget, report, retention) reads: never created on the way. An
    embedded store that does not exist says where it was looked for and how to point at the right one."""
    from leadflow.project import find_project
    from leadflow.settings import Settings
    from leadflow.store import StateStore, StoreError

    settings = Settings()
    if not settings.database_url:
        path = settings.home / "state.db"
        if not path.is_file():
            where = ("" if find_project() is not None or os.environ.get("LEADFLOW_HOME") else
                     "; not inside a leadflow project: run from your project folder, pass --project-dir PATH, or set "
                     "LEADFLOW_HOME / LEADFLOW_DATABASE_URL")
            raise StoreError(f"no state store at {path.resolve()}: no run has been recorded there{where}")
    return StateStore.open()


def _require_runs(store: Any) -> None:
    """`trace`/`forget` on a store that has never recorded a run is almost always the wrong store (LEADFLOW_HOME or
    LEADFLOW_DATABASE_URL not set as for the runs): say so, rather than "not found" / "Removed 0 rows"."""
    from leadflow.store import StoreError

    if not store.runs(limit=1):
        raise StoreError(
            f"the state store at {store.url} has no runs: is LEADFLOW_HOME / LEADFLOW_DATABASE_URL right?"
        )


@app.command("trace")
def trace_command(
    query: Annotated[str, typer.Argument(help="The lead's e-mail address or lead id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
) -> None:
    """Show a lead's whole journey from the state store, in time order.

    Runs, stage changes (old -> new), quarantine, routing, lifecycle, write-back and dead letters."""
    import json

    from leadflow.trace import trace, trace_lines

    def work() -> dict[str, Any]:
        with _existing_store() as store:
            _require_runs(store)
            return trace(store, query)

    result = _guard(work)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str, ensure_ascii=False))
        return
    for line in trace_lines(result):
        typer.echo(line)


@app.command()
def forget(
    email: Annotated[str, typer.Argument(help="The person's e-mail address.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be erased; erase nothing.")] = False,
) -> None:
    """Erase a person from the state store (an erasure request).

    Deletes their audit events, quarantine rows, dead letters, assignments and lifecycle state, and records one
    anonymous tombstone event (run stats stay as they were)."""
    from leadflow.trace import forget as forget_person
    from leadflow.trace import is_email

    if not is_email(email):
        typer.secho(f"error: {email!r} is not an e-mail address", fg="red", err=True)
        raise typer.Exit(2)

    def work() -> dict[str, Any]:
        with _existing_store() as store:
            _require_runs(store)
            return forget_person(store, email, dry_run=dry_run)

    result = _guard(work)
    verb = "Would remove" if dry_run else "Removed"
    typer.secho(f"{verb} {result['removed']} rows for {len(result['lead_keys'])} lead key(s)", bold=True)
    for table, count in result["tables"].items():
        typer.echo(f"  {table:<16}{count:>8}")
    if not dry_run:
        typer.echo(f"Tombstone: {result['tombstone']} (stage forget)")


@app.command()
def retention(
    days: Annotated[int, typer.Option("--days", min=0, help="Keep this many days of audit events and quarantine.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete the audit trail (events, change chunks, lead runs) and quarantine rows older than --days, in chunks."""
    from leadflow.trace import retention as prune

    def work() -> dict[str, Any]:
        with _existing_store() as store:
            return prune(store, days, dry_run=dry_run)

    result = _guard(work)
    verb = "Would delete" if dry_run else "Deleted"
    typer.secho(f"{verb} rows older than {result['before']}", bold=True)
    for table, count in result["tables"].items():
        typer.echo(f"  {table:<16}{count:>10}")


@app.command()
def report(
    since: Annotated[str, typer.Option("--since", help="Window: 30d, 12h, 90m or an ISO date/time.")] = "30d",
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    config: ConfigOption = None,
) -> None:
    """Write the lead-flow KPI report as one self-contained HTML file and print its path.

    Speed-to-lead, SLA, funnel, data quality, owners and the process map."""
    from datetime import UTC

    def build() -> Path:
        from leadflow.config import load_rules
        from leadflow.report import write_report
        from leadflow.routing_cli import parse_since
        from leadflow.stage import process_map as render
        from leadflow.stages import pipeline_from_names

        now = datetime.now(UTC)
        start = parse_since(since, now)
        rules = load_rules(config)
        mermaid = render(pipeline_from_names(rules.pipeline, origin=rules.source))
        store = _existing_store()
        try:
            return write_report(store, start, out, mermaid, as_of=now)
        finally:
            store.close()

    typer.echo(str(_guard(build)))


audit_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Audit the lead flow end to end with a marked test lead.")
app.add_typer(audit_app, name="audit")


@audit_app.command("test-lead")
def audit_test_lead(
    profile: Annotated[str, typer.Option("--profile", help="demo-request (the fast lane), webinar or web-form "
                                         "(the hourly incremental sync).")] = "demo-request",
    config: ConfigOption = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the test lead in the source system and the state "
                                       "store.")] = False,
) -> None:
    """Send a marked test lead through Salesforce and the flow, and time each hop.

    Creates the lead, runs the flow over it, prints each hop's time since creation and the speed-to-lead, then
    deletes it and erases it from the state store. With no --config, local sandboxes (as in `leadflow demo`) are
    started and synced once first. Exit 1 if the flow or the cleanup failed."""
    from leadflow.audit import PROFILES, result_lines, run_test_lead

    if profile not in PROFILES:
        typer.secho(f"error: --profile must be one of {', '.join(PROFILES)}", fg="red", err=True)
        raise typer.Exit(2)

    def audit(path: Path) -> Any:
        _checked_rules(path)
        return run_test_lead(path, profile, _run_flow, keep=keep, echo=typer.echo)

    if config is not None:
        result = _guard(lambda: audit(config))
    else:
        import shutil

        from leadflow.sandbox.launch import running_sandboxes
        from leadflow.settings import Settings

        folder = Settings().home / "audit-sandbox"
        shutil.rmtree(folder, ignore_errors=True)
        typer.secho("leadflow audit test-lead: no --config, starting local sandboxes", bold=True)
        with running_sandboxes(folder, leads=200, systems=("salesforce", "marketo"), enrichment=True,
                               routing=True) as boxes:
            typer.echo("Initial sync of the sandboxes (export guard overridden, as in the demo) ...")
            _guard(lambda: _run_crm_sync(boxes.config_path, None, override_export_guard=True))
            result = _guard(lambda: audit(boxes.config_path))
    for line in result_lines(result):
        typer.echo(line)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    from leadflow import __version__

    typer.echo(__version__)


from leadflow.cli_setup import register as _register_setup  # noqa: E402  (`setup salesforce`, `doctor`)

_register_setup(app)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
