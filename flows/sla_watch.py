"""`sla_watch`: assignments past their first-touch SLA become breaches: recorded, published, and raised as events."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from leadflow.pipeline.config import load_rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.connectors.registry import connect
from leadflow.routing.sla import breach_summary, owner_changes
from tasks.crm import write_back
from tasks.enrichment import refresh_crm_mirror, with_owner_directory
from tasks.events import emit_sla_breached
from tasks.io import check_sla, close_run, open_run, reassign_breaches, writer_lease


@flow(name="sla_watch", log_prints=False)
def sla_watch(as_of: datetime | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Check every open assignment's first-touch SLA as of `as_of` (default now); each breach is recorded once. With
    a config whose routing rules say `on_sla_breach: reassign`, those leads are routed again to someone else and the
    new owner is written back to the CRM they came from."""
    moment = as_of or datetime.now(UTC)
    run_id = open_run("sla_watch", {"as_of": moment.isoformat(), "config_path": config_path})
    breaches = check_sla(moment, run_id)
    summary = {"run_id": run_id, "as_of": moment.isoformat(), **breach_summary(breaches)}
    rules = load_rules(Path(config_path)) if config_path else None
    if rules is not None and rules.routing is not None and len(breaches):
        # Reassigning writes owners: one writer per system at a time, so hold the writer lease of every system
        # written back to (waiting for a running sync, as any writer does) from the routing to the write.
        written = [s for s in rules.systems.names if getattr(rules.systems, s).write_back]
        try:
            with ExitStack() as held:
                leases = {s: held.enter_context(writer_lease(s, run_id, "sla_watch", rules)) for s in written}
                summary |= reassign_and_write(rules, breaches, moment, run_id, leases)
        except Exception as exc:
            close_run(run_id, "failed", summary, f"{type(exc).__name__}: {exc}")
            raise
    if len(breaches):
        create_table_artifact(key="sla-breaches", table=breaches.astype(str).to_dict("records"),
                              description=f"{len(breaches)} leads past their first-touch SLA")
        emit_sla_breached(summary, run_id)
        get_run_logger().warning("%d leads past their first-touch SLA (worst %.0f minutes late)",
                                 len(breaches), summary["max_minutes_late"])
    close_run(run_id, "completed", summary)
    return summary


def reassign_and_write(rules: Any, breaches: Any, moment: datetime, run_id: str, leases: dict[str, Any]
                       ) -> dict[str, Any]:
    """Route the breached leads whose rule says so to someone else and write the new owners back (each system under
    its writer lease, checked before the write)."""
    summary: dict[str, Any] = {}
    inputs = RunInputs(as_of=moment)
    if rules.systems.salesforce is not None:
        # The CRM's users decide who may take a lead: an inactive user is never handed one (the org would refuse
        # the OwnerId), whatever the routing config still lists. They come from the CRM mirror, refreshed first.
        with connect("salesforce", rules.systems, origin=rules.source) as crm:
            inputs = with_owner_directory(inputs, refresh_crm_mirror(crm).owners)
    routing = inputs.routing_for(rules)
    assert routing is not None
    made = reassign_breaches(breaches, routing, moment, run_id)
    summary["reassigned"] = len(made)
    for system, changes in owner_changes(made).items():
        if system not in leases:
            continue
        leases[system].ensure()
        result = write_back(connect(system, rules.systems, origin=rules.source), changes, False, True)
        summary.setdefault("reassigned_written", {})[system] = len(result.written)
    return summary
