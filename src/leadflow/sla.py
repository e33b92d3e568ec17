"""First-touch SLAs: assignments past due with no first touch become breaches, recorded once each."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from leadflow.pipeline import EVENT_COLUMNS
from leadflow.store import StateStore

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
