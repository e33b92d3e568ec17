"""`leadflow mirror status` and `mirror rebuild`: the CRM mirror kept in the state store (`leadflow.sync.mirror`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from leadflow.cli.common import ConfigOption, _existing_store, _guard

mirror_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="The CRM mirror: accounts, contacts, leads, users and queues kept in the state store.")


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _when(value: Any) -> str:
    return "-" if value is None or value != value else f"{value:%Y-%m-%d %H:%M:%S} UTC"


@mirror_app.command("status")
def mirror_status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show, per mirrored object, its rows, how and when it was built, the newest change seen and the lag."""
    import json

    from leadflow.sync.mirror import mirror_status

    def work() -> Any:
        with _existing_store() as store:
            return mirror_status(store, datetime.now(UTC))

    status = _guard(work)
    if as_json:
        typer.echo(json.dumps(status.to_dict("records"), indent=2, default=str))
        return
    typer.echo(f"{'object':<14}{'rows':>10}  {'built':<28}{'last change seen':<26}{'lag':>9}")
    for row in status.to_dict("records"):
        built = f"{row['method']} {_when(row['built_at'])}" if row["method"] else "-"
        typer.echo(f"{row['object']:<14}{row['rows']:>10,}  {built:<28}{_when(row['last_change_at']):<26}"
                   f"{_ago(row['lag_seconds']):>9}" + (f"  ({row['note']})" if row["note"] else ""))


@mirror_app.command("rebuild")
def mirror_rebuild_command(
    config: ConfigOption = None,
    objects: Annotated[list[str] | None, typer.Option("--object", "-o", help="Rebuild only this object (repeatable: "
                                                      "Account, Contact, Lead, User, QueueSobject).")] = None,
) -> None:
    """Throw the mirror away and build it again from Salesforce (Bulk API 2.0 for large objects)."""
    from pathlib import Path

    from leadflow.connectors.registry import connect
    from leadflow.pipeline.config import load_rules
    from leadflow.pipeline.errors import LeadflowError
    from leadflow.store import StateStore
    from leadflow.sync.mirror import MIRRORED, forget_process_copies, refresh_and_load

    chosen = list(objects or MIRRORED)
    unknown = [o for o in chosen if o not in MIRRORED]
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], MIRRORED, n=1)
        typer.secho(f"error: --object {unknown[0]}: not a mirrored object"
                    + (f" (did you mean {hint[0]}?)" if hint else f"; one of {', '.join(MIRRORED)}"), fg="red", err=True)
        raise typer.Exit(2)

    def work() -> Any:
        rules = load_rules(Path(config) if config else None)
        if not rules.systems.salesforce:
            raise LeadflowError(f"{rules.source}: systems.salesforce is not configured: there is no CRM to mirror")
        connector = connect("salesforce", rules.systems, origin=rules.source)
        with StateStore.open() as store:
            store.drop_mirror(chosen)
            forget_process_copies()
            return refresh_and_load(connector, store, objects=chosen)[0], connector.budget.used

    report, calls = _guard(work)
    for obj, done in report.items():
        typer.echo(f"{obj:<14}{done.rows or 0:>10,} rows  ({done.method})")
    typer.echo(f"rebuilt in {calls} API calls")
