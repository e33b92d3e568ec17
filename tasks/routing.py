"""The assign task: routing under the state store's routing lock, assignments and first touches recorded."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.config import Rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.routing.ownership import kept_mask, with_assignments
from leadflow.routing import RoutingState
from leadflow.store import RoutingSession
from leadflow.pipeline.schema import lead_keys
from leadflow.stages.assign import ASSIGN, STATE_ATTR
from tasks.io import BACKOFF, _transient, state_store
from tasks.runner import task


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def assign_leads(frame: pd.DataFrame, rules: Rules, inputs: RunInputs, run_id: str, keep_state: bool = True
                 ) -> pd.DataFrame:
    """Route the leads from the round-robin state under the routing lock; save the new state and the assignments
    made in the same transaction (`keep_state=False`, a dry run, saves nothing). Leads already assigned whose
    status shows they were worked get their first touch recorded, which stops their SLA clock."""
    store = state_store()
    with store.routing_session(run_id, inputs.now()) as session:
        # Another run may have routed some of these leads since they were read: re-read their assignments under the
        # lock, so a lead is never routed twice (it keeps the other run's assignment, as it would on a later run).
        frame = with_assignments(frame, session.assignments(lead_keys(frame).dropna().unique().tolist(), inputs=False),
                                 rules)
        state = RoutingState.from_json(session.payload or None)
        out = ASSIGN.apply(frame, rules, replace(inputs, routing_state=state))
        # taken off the frame: pandas deep-copies `attrs` into every frame and series derived from it
        new_state = out.attrs.pop(STATE_ATTR)
        if not keep_state:
            return out
        session.save(_payload(new_state))
        recorded, fresh = record_assignments(session, frame, out)
    touched = _touched(out, rules, fresh)
    if touched:
        store.mark_assignments(touched, "first_touch_at", inputs.now())
    kept = int(kept_mask(out["routing_reason"]).sum())
    get_run_logger().info("assigned %d leads, %d kept with their owner (%d first touches seen)", recorded, kept,
                          len(touched))
    return out


ROUTING_INPUTS = (
    "lead_id", "source", "email", "company", "country_code", "state_code", "postal_code", "lead_source", "segment",
    "industry", "employees", "seniority", "department", "grade", "rating", "score", "lifecycle_stage",
    "duplicate_of", "account_id", "account_owner_id", "mailable", "is_free_email", "owner_id", "status",
)
"""What is kept of a lead when it is assigned, so `routing simulate --since` can route it again under new rules."""


def record_assignments(session: RoutingSession, frame: pd.DataFrame, out: pd.DataFrame) -> tuple[int, pd.Series]:
    """Record the assignments the assign stage made (`out` has an `assigned_at` that `frame`, its input, did not),
    each with its lead's `ROUTING_INPUTS` as they were; returns (assignments recorded, which rows are fresh). Whole
    columns all the way (`RoutingSession.record`): a million assignments take seconds."""
    fresh = (out["assigned_at"] != frame["assigned_at"]).fillna(True) & out["assigned_at"].notna()
    kept = [c for c in ROUTING_INPUTS if c in out.columns]  # lead_id, source and email among them: the lead key
    picked = out.loc[fresh.to_numpy(dtype=bool), list(dict.fromkeys([*ASSIGNMENT_COLUMNS, *kept]))]
    made = picked[list(ASSIGNMENT_COLUMNS)].assign(lead_key=lead_keys(picked).to_numpy())
    return session.record(made, picked[kept]), fresh


ASSIGNMENT_COLUMNS = ("owner_id", "routing_rule", "routing_reason", "assigned_at", "sla_due_at")


def _payload(state: RoutingState) -> dict:  # type: ignore[type-arg]
    import json

    return json.loads(state.to_json())


def _touched(out: pd.DataFrame, rules: Rules, fresh: pd.Series) -> list[str]:
    if not rules.untouched_statuses:
        return []
    worked = out["status"].notna() & ~out["status"].isin(list(rules.untouched_statuses))
    earlier = ~fresh & out["assigned_at"].notna()
    return lead_keys(out[(worked & earlier).fillna(False).to_numpy(dtype=bool)]).tolist()
