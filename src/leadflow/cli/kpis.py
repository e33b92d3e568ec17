"""`leadflow kpis`: the numbers `leadflow report` shows, for a terminal or (`--json`) for BI tools: one summary dict
(`leadflow.audit.kpi_report.report_summary`) that the report page is drawn from too."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leadflow.cli.common import ConfigOption, _existing_store, _guard

if TYPE_CHECKING:
    from leadflow.store import StateStore

SinceOption = Annotated[str, typer.Option("--since", help="Window: 30d, 12h, 90m or an ISO date/time.")]


def owner_names_of(config: Path | None, store: StateStore) -> dict[str, str]:
    """Owner id → name: the CRM mirror's users and queues in `store`, the run config's routing file (users and
    queues) for ids the mirror does not name; empty with neither."""
    from leadflow.audit.kpi_report import owner_names
    from leadflow.pipeline.config import load_rules

    return owner_names(load_rules(config).routing, store.mirror_owner_names())


def kpis(
    since: SinceOption = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the KPIs as JSON (stable keys; durations in seconds "
                                          "with a readable text; ISO times).")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the lead-flow KPIs: speed-to-lead, first touch, SLA, funnel cohorts, data quality, owners.

    The same numbers as `leadflow report`, computed by the same function."""
    import json
    from datetime import UTC

    def build() -> dict[str, Any]:
        from leadflow.audit.kpi_report import load_summary
        from leadflow.routing.simulate import parse_since

        now = datetime.now(UTC)
        start = parse_since(since, now)
        store = _existing_store()
        try:
            return load_summary(store, start, now, owner_names_of(config, store))
        finally:
            store.close()

    summary = _guard(build)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False))
        return
    from leadflow.audit.report import tile_values

    typer.secho(f"leadflow KPIs since {summary['window']['since']} (as of {summary['window']['as_of']})", bold=True)
    values = tile_values(summary)
    width = max(len(key) for key in values)
    for key, text in values.items():
        typer.echo(f"  {key:<{width}}  {text}")
    unknown = summary["lead_sources"]["unknown"]
    if unknown:
        listed = ", ".join(f"{value!r} {count}" for value, count in list(unknown.items())[:10])
        typer.echo(f"  lead source values not in the picklist: {listed}")
