"""Escalation chains: which steps of a rule's `escalation` are due for the leads nobody touched, and firing them once.

A chain counts from its lead's assignment (`chain_start`), in the rule's SLA clock: working minutes of the owner the
chain started with when the rule says `sla_working_hours` (and the owner has working hours), else plain minutes.
A step is due when `chain_start + after` has passed, the lead still has no first touch, and no later step of the
same chain was recorded. When several steps are due at once (the watch was down), only the last owner-changing step
(reassign_pool, queue) acts: the steps before it are recorded as superseded, the notices after it go to the new
owner. An assignment a step made (`routing_reason` starting with ESCALATED) continues its chain; any other new
assignment starts a new one.

`due_steps` is the pure part. `escalate_owners` and `claim_notices` record each step (table `escalation_steps`, with
its `escalation:<action>` audit event) in the transaction that makes its effect — reassign/queue inside the routing
lock, with the new assignment — so a re-run or a second watch never fires a step twice.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from leadflow.routing.model import OWNER_ACTIONS, Rule, duration_text
from leadflow.routing.times import _due, _utc

if TYPE_CHECKING:
    from leadflow.routing.model import RoutingConfig
    from leadflow.store import StateStore

ESCALATED: Final[str] = "escalation step "
"""How the routing_reason of an assignment made by an escalation step starts."""
STAGE: Final[str] = "escalation"
"""Audit stages are `escalation:<action>`."""
PLAN_COLUMNS: Final[tuple[str, ...]] = (
    "lead_key", "rule", "chain_start", "chain_owner", "assigned_at", "owner_id", "step", "steps", "action", "after",
    "queue", "pool", "due_at", "acts", "superseded_by",
)


def chain_rules(config: RoutingConfig) -> dict[str, Rule]:
    """The rules with an escalation chain, by name."""
    return {rule.name: rule for rule in config.rules if rule.escalation}


def chains(open_: pd.DataFrame, fired: pd.DataFrame) -> pd.DataFrame:
    """Per open assignment (lead_key, owner_id, routing_rule, routing_reason, assigned_at): the chain it belongs to —
    rule, chain_start, chain_owner and last_fired (the highest step recorded in that chain, -1 none)."""
    out = open_[["lead_key", "owner_id", "assigned_at"]].copy()
    out["rule"], out["chain_start"], out["chain_owner"] = open_["routing_rule"], open_["assigned_at"], open_["owner_id"]
    out["last_fired"] = -1
    if fired.empty:
        return out
    latest = fired.sort_values("fired_at", kind="stable").drop_duplicates("lead_key", keep="last").set_index("lead_key")
    continued = (open_["routing_reason"].fillna("").str.startswith(ESCALATED) & open_["lead_key"].isin(latest.index))
    keys = open_.loc[continued, "lead_key"]
    for column in ("rule", "chain_start", "chain_owner"):
        out.loc[continued, column] = keys.map(latest[column]).to_numpy()
    top = fired.groupby(fired["lead_key"] + "|" + _stamp(fired["chain_start"]))["step"].max()
    chain_keys = out["lead_key"] + "|" + _stamp(out["chain_start"])
    out["last_fired"] = chain_keys.map(top).fillna(-1).astype(int).to_numpy()
    return out


def _stamp(values: pd.Series) -> pd.Series:
    """Times as text to the microsecond: a join key whatever resolution each side was read with."""
    return pd.to_datetime(values, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


def step_due_at(config: RoutingConfig, rule: Rule, chain_start: datetime, chain_owner: str | None,
                minutes: int) -> datetime:
    """When a step `minutes` into the chain is due, counted as the rule's SLA is (`leadflow.routing.times._due`)."""
    user = config.users.get(chain_owner) if chain_owner and rule.sla_working_hours else None
    zone = config.zone_of(chain_owner) if chain_owner in config.users else None
    if user is None or zone is None:
        return chain_start + timedelta(minutes=minutes)
    return _due(chain_start, minutes, zone, user)


def due_steps(open_: pd.DataFrame, fired: pd.DataFrame, config: RoutingConfig, as_of: datetime) -> pd.DataFrame:
    """The steps due at `as_of` and not recorded yet, one row per lead and step (PLAN_COLUMNS), in lead then step
    order; `acts` is False for a step superseded by a later owner-changing step due at the same time."""
    moment = pd.Timestamp(_utc(as_of))
    rules = chain_rules(config)
    rows: list[dict[str, Any]] = []
    for chain in chains(open_, fired).itertuples(index=False):
        rule = rules.get(chain.rule)
        if rule is None:  # the rule was removed or lost its chain
            continue
        start = pd.Timestamp(chain.chain_start).to_pydatetime()
        due: list[dict[str, Any]] = []
        for j in range(chain.last_fired + 1, len(rule.escalation)):
            step = rule.escalation[j]
            if pd.Timestamp(start + timedelta(minutes=step.after)) > moment:
                break  # working time is never shorter than wall time: this step and the later ones are not due
            at = pd.Timestamp(step_due_at(config, rule, start, chain.chain_owner, step.after))
            if at > moment:
                break
            due.append({"lead_key": chain.lead_key, "rule": rule.name, "chain_start": pd.Timestamp(start),
                        "chain_owner": chain.chain_owner, "assigned_at": chain.assigned_at,
                        "owner_id": chain.owner_id, "step": j, "steps": len(rule.escalation),
                        "action": step.action, "after": step.after, "queue": step.queue, "pool": step.pool,
                        "due_at": at, "acts": True, "superseded_by": -1})
        owner_steps = [d["step"] for d in due if d["action"] in OWNER_ACTIONS]
        for d in due:
            if owner_steps and d["step"] < owner_steps[-1]:
                d["acts"], d["superseded_by"] = False, owner_steps[-1]
        rows += due
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS))


def step_label(row: Any) -> str:
    """`step 2/4 notify_manager (after 15m)`."""
    return f"step {int(row['step']) + 1}/{int(row['steps'])} {row['action']} (after {duration_text(int(row['after']))})"


def _step_row(row: Any, as_of: datetime, run_id: str, owner: str | None, outcome: str) -> dict[str, Any]:
    return {"lead_key": row["lead_key"], "chain_start": pd.Timestamp(row["chain_start"]).to_pydatetime(),
            "step": int(row["step"]), "rule": row["rule"], "action": row["action"],
            "chain_owner": row["chain_owner"], "last_step": int(row["step"]) == int(row["steps"]) - 1,
            "due_at": pd.Timestamp(row["due_at"]).to_pydatetime(), "fired_at": as_of, "run_id": run_id,
            "owner_id": owner, "outcome": outcome}


def _event(row: Any, as_of: datetime, run_id: str, owner: str | None, outcome: str) -> dict[str, Any]:
    due = pd.Timestamp(row["due_at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"run_id": run_id, "lead_key": row["lead_key"], "stage": f"{STAGE}:{row['action']}",
            "column_name": "escalation_step", "old_value": owner,
            "new_value": f"{step_label(row)} of rule {row['rule']}, due {due}: {outcome}", "at": as_of}


def _superseded(row: Any) -> str:
    return f"superseded by step {int(row['superseded_by']) + 1} (due at the same time)"


def escalate_owners(store: StateStore, plan: pd.DataFrame, config: RoutingConfig, as_of: datetime, *,
                    run_id: str) -> pd.DataFrame:
    """Fire the due reassign_pool and queue steps (and record the steps they supersede) under the routing lock: each
    lead whose assignment is still the one planned for and untouched is routed again to anyone but its owner (the
    rule's action, or the step's `pool`) or handed to the step's queue; the new assignments, the steps and their
    audit events commit together. Returns lead_key, old_owner, owner_id, routing_rule, routing_reason, sla_due_at
    of the leads that got a new owner (to write back)."""
    from leadflow.pipeline.schema import conform
    from leadflow.routing import RoutingState, route_leads, with_availability
    from leadflow.store.escalations import claim_in_session

    as_of = _utc(as_of)
    empty = pd.DataFrame(columns=["lead_key", "old_owner", "owner_id", "routing_rule", "routing_reason",
                                  "sla_due_at"])
    acting = plan[plan["acts"] & plan["action"].isin(list(OWNER_ACTIONS))]
    if acting.empty:
        return empty
    involved = plan[plan["lead_key"].isin(acting["lead_key"]) & (~plan["acts"] | plan["action"].isin(list(OWNER_ACTIONS)))]
    with store.routing_session(run_id, as_of) as session:
        current = session.assignments(acting["lead_key"].tolist()).set_index("lead_key")
        state = RoutingState.from_json(session.payload or None)
        made: list[dict[str, Any]] = []
        outcomes: dict[str, tuple[str | None, str]] = {}  # lead_key → (owner when fired, outcome)
        for row in acting.to_dict("records"):
            key = row["lead_key"]
            if key not in current.index or not _unchanged(current.loc[key], row):
                continue  # touched or routed again since the plan: the next run decides afresh
            owner, snapshot = current.at[key, "owner_id"], current.at[key, "inputs"]
            if row["action"] == "queue":
                queue = config.queues[row["queue"]]
                if queue.owner_id == owner:
                    outcomes[key] = (owner, f"already in queue {row['queue']}")
                    continue
                made.append({"lead_key": key, "old_owner": owner, "owner_id": queue.owner_id,
                             "routing_rule": row["rule"], "routing_reason": f"{ESCALATED}{int(row['step']) + 1} "
                             f"(queue): queue {row['queue']}", "assigned_at": as_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "sla_due_at": None, "inputs": snapshot})
                outcomes[key] = (owner, f"queued to {row['queue']} ({queue.owner_id})")
                continue
            if not snapshot:
                outcomes[key] = (owner, "not reassigned: no snapshot of the lead was kept with its assignment")
                continue
            leads = conform(pd.DataFrame([dict(snapshot)]).astype("string"))
            leads["owner_id"] = pd.NA  # routed afresh: the stale owner must not count as an assignment
            routing = with_availability(config, inactive={owner} if owner else set())
            if row["pool"]:
                rule = next(r for r in config.rules if r.name == row["rule"])
                only = Rule(name=rule.name, pool=row["pool"], sla_minutes=rule.sla_minutes,
                            sla_working_hours=rule.sla_working_hours)
                routing = routing.model_copy(update={"rules": [only]})
            routed, state = route_leads(leads, routing, state, as_of=as_of)
            new = routed.iloc[0]
            if pd.isna(new["owner_id"]) or new["owner_id"] == owner:
                outcomes[key] = (owner, f"kept by {owner}: nobody else available ({new['routing_reason']})")
                continue
            made.append({"lead_key": key, "old_owner": owner, "owner_id": new["owner_id"],
                         "routing_rule": new["routing_rule"], "routing_reason": f"{ESCALATED}{int(row['step']) + 1} "
                         f"(reassign_pool): {new['routing_reason']}", "assigned_at": new["assigned_at"],
                         "sla_due_at": new["sla_due_at"], "inputs": snapshot})
            outcomes[key] = (owner, f"reassigned {owner} → {new['owner_id']}")
        steps, events = [], []
        for row in involved[involved["lead_key"].isin(list(outcomes))].to_dict("records"):
            owner, outcome = outcomes[row["lead_key"]]
            outcome = outcome if row["acts"] else _superseded(row)
            steps.append(_step_row(row, as_of, run_id, owner, outcome))
            events.append(_event(row, as_of, run_id, owner, outcome))
        claimed = {steps[i]["lead_key"] for i in claim_in_session(session, steps, events)
                   if steps[i]["action"] in OWNER_ACTIONS}
        made = [m for m in made if m["lead_key"] in claimed]  # another watch fired it first: not again
        if not made:
            return empty
        session.save(json.loads(state.to_json()))
        session.record(pd.DataFrame(made))
    return pd.DataFrame(made)[list(empty.columns)]


def _unchanged(current: pd.Series, planned: dict[str, Any]) -> bool:
    """The assignment is still the planned one (same time and owner) and nobody touched the lead."""
    touched = current.get("first_touch_at")
    return ((touched is None or pd.isna(touched)) and current["owner_id"] == planned["owner_id"]
            and pd.Timestamp(current["assigned_at"]) == pd.Timestamp(planned["assigned_at"]))


def claim_notices(store: StateStore, plan: pd.DataFrame, config: RoutingConfig, as_of: datetime, *,
                  run_id: str) -> pd.DataFrame:
    """Record the due remind and notify_manager steps (with their audit events) before anything is sent: each goes
    to the lead's owner now, or that owner's `manager`; a lead touched since the plan, or re-routed since by another
    run (not by this run's own escalation), is left alone; a step nobody can receive is recorded as skipped. Returns the claimed steps that have a recipient (PLAN_COLUMNS plus
    recipient_id, owner_id as now, routing_rule, routing_reason, sla_due_at and the lead's snapshot fields)."""
    from leadflow.store.escalations import claim

    as_of = _utc(as_of)
    notices = plan[plan["acts"] & ~plan["action"].isin(list(OWNER_ACTIONS))]
    if notices.empty:
        return notices.assign(recipient_id=pd.Series(dtype="object"))
    current = store.assignments(notices["lead_key"].drop_duplicates().tolist()).set_index("lead_key")
    rows: list[dict[str, Any]] = []
    steps, events = [], []
    for row in notices.to_dict("records"):
        key = row["lead_key"]
        if key not in current.index:
            continue
        now = current.loc[key]
        if not (now["first_touch_at"] is None or pd.isna(now["first_touch_at"])) or pd.isna(now["owner_id"]):
            continue
        if str(now.get("run_id")) != run_id and not _unchanged(now, row):
            continue  # re-routed since the plan by another run: its new chain decides, not this one
        owner = str(now["owner_id"])
        recipient: str | None = owner
        outcome = f"reminding {owner}"
        if row["action"] == "notify_manager":
            user = config.users.get(owner)
            recipient = user.manager if user is not None else None
            outcome = f"notifying {recipient}, manager of {owner}" if recipient else f"skipped: {owner} has no manager"
        steps.append(_step_row(row, as_of, run_id, owner, outcome))
        events.append(_event(row, as_of, run_id, owner, outcome))
        snapshot = now["inputs"] if isinstance(now["inputs"], dict) else {}
        rows.append({**{k: v for k, v in snapshot.items() if k not in PLAN_COLUMNS}, **row, "owner_id": owner,
                     "recipient_id": recipient, "routing_rule": now["routing_rule"],
                     "routing_reason": now["routing_reason"], "assigned_at": now["assigned_at"],
                     "sla_due_at": now["sla_due_at"]})
    claimed = claim(store, steps, events)
    picked = [rows[i] for i in claimed if rows[i]["recipient_id"] is not None]
    return pd.DataFrame(picked, columns=list(dict.fromkeys([*PLAN_COLUMNS, "recipient_id", *(
        k for r in picked for k in r)])))


def waiting(row: Any, as_of: datetime) -> str:
    """How long the lead has waited since its chain started, as 5m / 2h / 1h30m (wall time)."""
    minutes = int((pd.Timestamp(_utc(as_of)) - pd.Timestamp(row["chain_start"])).total_seconds() // 60)
    return duration_text(max(minutes, 1))


def summary(plan: pd.DataFrame) -> dict[str, int]:
    """Counts of the planned steps per action (acting) and superseded, for a run summary."""
    if plan.empty:
        return {}
    acting = plan[plan["acts"]]
    counts = {f"escalation_{a}": int(n) for a, n in acting["action"].value_counts().items()}
    superseded = int((~plan["acts"]).sum())
    return counts | ({"escalation_superseded": superseded} if superseded else {}) | {
        "escalation_leads": int(np.unique(plan["lead_key"]).size)}
