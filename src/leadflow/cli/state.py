"""`leadflow trace`, `forget`, `retention` and `report`: the commands that read (or prune) the state store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import ConfigOption, _existing_store, _guard, _require_runs


def trace_command(
    query: Annotated[str, typer.Argument(help="The lead's e-mail address or lead id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
) -> None:
    """Show a lead's whole journey from the state store, in time order.

    Runs, stage changes (old -> new), quarantine, routing, lifecycle, write-back and dead letters."""
    import json

    from leadflow.audit.trace import trace, trace_lines

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


def forget(
    email: Annotated[str, typer.Argument(help="The person's e-mail address.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be erased; erase nothing.")] = False,
) -> None:
    """Erase a person from the state store (an erasure request).

    Deletes their audit events, quarantine rows, dead letters, assignments and lifecycle state, and records one
    anonymous tombstone event (run stats stay as they were)."""
    from leadflow.audit.trace import forget as forget_person
    from leadflow.audit.trace import is_email

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
    width = max((len(table) for table in result["tables"]), default=0)
    for table, count in result["tables"].items():
        typer.echo(f"  {table:<{width}}{count:>8}")
    if not dry_run:
        typer.echo(f"Tombstone: {result['tombstone']} (stage forget)")


def retention(
    days: Annotated[int, typer.Option("--days", min=0, help="Keep this many days of audit events and quarantine.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete the audit trail (events, change chunks, lead runs) and quarantine rows older than --days, in chunks."""
    from leadflow.audit.trace import retention as prune

    def work() -> dict[str, Any]:
        from leadflow.pipeline.progress import terminal_progress

        with _existing_store() as store, terminal_progress("leadflow retention", total=5, unit="tables"):
            return prune(store, days, dry_run=dry_run)

    result = _guard(work)
    verb = "Would delete" if dry_run else "Deleted"
    typer.secho(f"{verb} rows older than {result['before']}", bold=True)
    for table, count in result["tables"].items():
        typer.echo(f"  {table:<16}{count:>10}")


def report(
    since: Annotated[str, typer.Option("--since", help="Window: 30d, 12h, 90m or an ISO date/time.")] = "30d",
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("report.html"),
    config: ConfigOption = None,
) -> None:
    """Write the lead-flow KPI report as one self-contained HTML file and print its path.

    KPI tiles against the previous period, speed-to-lead, SLA by rule and owner, funnel, data quality, owner load,
    and the process map and routing graph as pictures."""
    from datetime import UTC

    def build() -> Path:
        from leadflow.pipeline.config import load_rules
        from leadflow.audit.report import write_report
        from leadflow.routing.simulate import parse_since
        from leadflow.pipeline.stage import process_map as render
        from leadflow.stages import pipeline_from_names

        now = datetime.now(UTC)
        start = parse_since(since, now)
        from leadflow.audit.kpi_report import owner_names

        rules = load_rules(config)
        mermaid = render(pipeline_from_names(rules.pipeline, origin=rules.source))
        from leadflow.pipeline.progress import terminal_progress

        store = _existing_store()
        try:
            with terminal_progress("leadflow report", total=3, unit="report"):
                names = owner_names(rules.routing, store.mirror_owner_names())
                return write_report(store, start, out, mermaid, as_of=now, names=names,
                                    routing=rules.routing)
        finally:
            store.close()

    typer.echo(str(_guard(build)))
