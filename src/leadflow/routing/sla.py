"""First-touch SLAs: assignments past due with no first touch become breaches, recorded once each."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from leadflow.pipeline.ledger import EVENT_COLUMNS
from leadflow.store import StateStore

if TYPE_CHECKING:
    from leadflow.routing import RoutingConfig

SLA_STAGE = "sla"


def check_sla(store: StateStore, as_of: datetime, *, run_id: str) -> pd.DataFrame:
    """Record every assignment past its SLA at `as_of` without a first touch as breached (once), with an audit
    event per lead; returns the breaches (lead_key, owner_id, routing_rule, assigned_at, sla_due_at, minutes_late)."""
    overdue = store.sla_overdue(as_of)
    if overdue.empty:
        return overdue.assign(minutes_late=pd.Series(dtype="float64"))
    overdue["minutes_late"] = ((pd.Timestamp(as_of) - overdue["sla_due_at"]).dt.total_seconds() / 60).round(1)
    events = pd.DataFrame({
        "run_id": run_id,
        "lead_key": overdue["lead_key"],
        "stage": SLA_STAGE,
        "column_name": "sla_breached",
        "old_value": None,
        "new_value": "due " + overdue["sla_due_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ") + ", owner "
        + overdue["owner_id"].fillna("(none)") + ", rule " + overdue["routing_rule"],
        "at": pd.Timestamp(as_of),
    })[list(EVENT_COLUMNS)]
    store.add_events(events)
    store.mark_assignments(overdue["lead_key"].tolist(), "breached_at", as_of)
    return overdue[["lead_key", "owner_id", "routing_rule", "assigned_at", "sla_due_at", "minutes_late"]]


def breach_summary(breaches: pd.DataFrame) -> dict[str, object]:
    """Counts for alerts and artifacts: breaches in all, per owner and per rule, and the worst delay."""
    if breaches.empty:
        return {"breaches": 0, "by_owner": {}, "by_rule": {}, "max_minutes_late": 0.0}
    return {
        "breaches": len(breaches),
        "by_owner": {str(k): int(v) for k, v in breaches["owner_id"].fillna("(none)").value_counts().items()},
        "by_rule": {str(k): int(v) for k, v in breaches["routing_rule"].value_counts().items()},
        "max_minutes_late": float(breaches["minutes_late"].max()),
    }


def reassign_breaches(
    store: StateStore, breaches: pd.DataFrame, config: RoutingConfig, as_of: datetime, *, run_id: str
) -> pd.DataFrame:
    """Route again, to anyone but the current owner, the breached leads whose rule says `on_sla_breach: reassign`
    (from the snapshot kept with their assignment); recorded as new assignments and in the audit trail. Returns
    lead_key, old_owner, owner_id, routing_rule, routing_reason, sla_due_at of the leads that got a new owner."""
    from leadflow.routing import RoutingState, route_leads, with_availability
    from leadflow.pipeline.schema import conform

    empty = pd.DataFrame(columns=["lead_key", "old_owner", "owner_id", "routing_rule", "routing_reason", "sla_due_at"])
    by_rule = {rule.name: rule for rule in config.rules}
    wanted = breaches[breaches["routing_rule"].map(lambda r: getattr(by_rule.get(r), "on_sla_breach", "") == "reassign")]
    if wanted.empty:
        return empty
    recorded = store.assignments(wanted["lead_key"].tolist()).set_index("lead_key")
    outcomes: list[pd.DataFrame] = []
    with store.routing_session(run_id, as_of) as session:
        state = RoutingState.from_json(session.payload or None)
        for owner, group in wanted.groupby(wanted["owner_id"].fillna(""), sort=True):
            snapshots = [recorded.at[k, "inputs"] for k in group["lead_key"] if recorded.at[k, "inputs"]]
            keys = [k for k in group["lead_key"] if recorded.at[k, "inputs"]]
            if not snapshots:
                continue
            leads = conform(pd.DataFrame([dict(s) for s in snapshots]).astype("string"))
            leads["owner_id"] = pd.NA  # routed afresh: the stale owner must not count as an assignment
            routing = with_availability(config, inactive={owner} if owner else set())
            routed, state = route_leads(leads, routing, state, as_of=as_of)
            routed["lead_key"], routed["old_owner"] = keys, owner or None
            moved = routed[routed["owner_id"].notna() & (routed["owner_id"] != (owner or None))]
            outcomes.append(moved.assign(inputs=[snapshots[i] for i in moved.index]))
        made = pd.concat(outcomes, ignore_index=True) if outcomes else pd.DataFrame()
        if made.empty:
            return empty
        session.save(json.loads(state.to_json()))
        session.record(made)
    store.add_events(pd.DataFrame({
        "run_id": run_id, "lead_key": made["lead_key"], "stage": SLA_STAGE, "column_name": "owner_id",
        "old_value": made["old_owner"], "new_value": made["owner_id"], "at": pd.Timestamp(as_of),
    })[list(EVENT_COLUMNS)])
    return made[list(empty.columns)]


def owner_changes(made: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Reassigned leads as write-back changes (record_id, owner_id) per source system, from their `system:id` keys."""
    from leadflow.sync.writeback import RECORD_ID

    if made.empty:
        return {}
    parts = made["lead_key"].str.split(":", n=1, expand=True)
    keyed = pd.DataFrame({"system": parts[0], RECORD_ID: parts[1], "owner_id": made["owner_id"]})
    keyed = keyed[keyed["system"].isin(["salesforce", "marketo", "hubspot"])]
    return {str(system): group[[RECORD_ID, "owner_id"]].reset_index(drop=True)
            for system, group in keyed.groupby("system")}
