"""`sla_watch`: assignments past their first-touch SLA become breaches: recorded, published, and raised as events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from leadflow.sla import breach_summary
from tasks.io import check_sla, close_run, open_run


@flow(name="sla_watch", log_prints=False)
def sla_watch(as_of: datetime | None = None) -> dict[str, Any]:
    """Check every open assignment's first-touch SLA as of `as_of` (default now); each breach is recorded once."""
    moment = as_of or datetime.now(UTC)
    run_id = open_run("sla_watch", {"as_of": moment.isoformat()})
    breaches = check_sla(moment, run_id)
    summary = {"run_id": run_id, "as_of": moment.isoformat(), **breach_summary(breaches)}
    if len(breaches):
        create_table_artifact(key="sla-breaches", table=breaches.astype(str).to_dict("records"),
                              description=f"{len(breaches)} leads past their first-touch SLA")
        emit_event(event="leadflow.sla.breached", resource={"prefect.resource.id": f"leadflow.run.{run_id}"},
                   payload=summary)
        get_run_logger().warning("%d leads past their first-touch SLA (worst %.0f minutes late)",
                                 len(breaches), summary["max_minutes_late"])
    close_run(run_id, "completed", summary)
    return summary
