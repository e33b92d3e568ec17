"""Escalation steps (table `escalation_steps`, migration 0017): each step of a rule's escalation chain that fired
(or was superseded) for a lead, recorded once — the record is what makes the watch idempotent.

A row is claimed with INSERT … ON CONFLICT DO NOTHING on (lead_key, chain_start, step) in the same transaction as
the step's audit event (and, for reassign/queue, the new assignment): a re-run, a crashed run's successor or a second
watch running at once finds the row and never fires the step again. `chain_start` is the assignment time the chain
counts from; an assignment an escalation step made continues its chain (`leadflow.routing.escalation`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from leadflow.store.escalation_tables import escalation_steps
from leadflow.store.tables import assignments, lead_events
from leadflow.store.values import CACHE_CHUNK_KEYS

if TYPE_CHECKING:
    from leadflow.store.store import StateStore
    from leadflow.store.routing import RoutingSession


STEP_COLUMNS: Final[tuple[str, ...]] = tuple(c.name for c in escalation_steps.columns)
OPEN_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "owner_id", "routing_rule", "routing_reason", "assigned_at",
                                        "sla_due_at")


def open_assignments(store: StateStore, rules: list[str], reason_prefix: str) -> pd.DataFrame:
    """Untouched assignments with an owner that a chain may escalate: of `rules`, or made by an escalation step
    (`routing_reason` starting with `reason_prefix`), leaving out those whose chain fired its last step since they
    were assigned. Times as UTC timestamps; no snapshots."""
    a, s = assignments, escalation_steps
    finished = sa.exists().where(s.c.lead_key == a.c.lead_key, s.c.last_step.is_(True),
                                 s.c.fired_at >= a.c.assigned_at)
    query = sa.select(*(a.c[c] for c in OPEN_COLUMNS)).where(
        a.c.first_touch_at.is_(None), a.c.owner_id.is_not(None),
        sa.or_(a.c.routing_rule.in_(rules), a.c.routing_reason.startswith(reason_prefix, autoescape=True)),
        ~finished,
    ).order_by(a.c.assigned_at, a.c.lead_key)
    with store.engine.connect() as conn:
        frame = pd.DataFrame.from_records(conn.execute(query).all(), columns=list(OPEN_COLUMNS))
    for column in ("assigned_at", "sla_due_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def fired_steps(store: StateStore, lead_keys: list[str]) -> pd.DataFrame:
    """The recorded steps of these leads (every chain), oldest first; times as UTC timestamps."""
    wanted = list(dict.fromkeys(lead_keys))
    rows: list[Any] = []
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
            part = wanted[start : start + CACHE_CHUNK_KEYS]
            rows += conn.execute(sa.select(escalation_steps).where(escalation_steps.c.lead_key.in_(part))).all()
    frame = pd.DataFrame.from_records(rows, columns=list(STEP_COLUMNS))
    for column in ("chain_start", "due_at", "fired_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame.sort_values(["fired_at", "lead_key", "step"], kind="stable").reset_index(drop=True)


def claim_steps(conn: Connection, steps: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[int]:
    """Insert each step row unless it is there already, and its audit event only when it was inserted (one
    transaction: `conn`'s). `events[i]` belongs to `steps[i]`. Returns the positions of the steps claimed."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    claimed: list[int] = []
    for i, row in enumerate(steps):
        # RETURNING, not rowcount: the PostgreSQL driver reports -1 for an INSERT … ON CONFLICT DO NOTHING here
        inserted = conn.execute(insert(escalation_steps).values(**row).on_conflict_do_nothing(
            index_elements=["lead_key", "chain_start", "step"]).returning(escalation_steps.c.step)).first()
        if inserted is not None:
            claimed.append(i)
    if claimed:
        conn.execute(lead_events.insert(), [events[i] for i in claimed])
    return claimed


def claim(store: StateStore, steps: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[int]:
    """`claim_steps` in a write transaction of its own."""
    with store._writing() as conn:  # the store's write transaction (SQLite: the single-writer lock)
        return claim_steps(conn, steps, events)


def claim_in_session(session: RoutingSession, steps: list[dict[str, Any]], events: list[dict[str, Any]]) -> list[int]:
    """`claim_steps` inside a routing session's transaction: the steps commit with the assignments it records."""
    return claim_steps(session._conn, steps, events)


def set_outcomes(store: StateStore, outcomes: list[tuple[str, datetime, int, str]]) -> None:
    """Replace the outcome of steps already claimed: (lead_key, chain_start, step, outcome)."""
    if not outcomes:
        return
    s = escalation_steps
    with store._writing() as conn:
        for lead_key, chain_start, step, outcome in outcomes:
            conn.execute(s.update().where(s.c.lead_key == lead_key, s.c.chain_start == chain_start,
                                          s.c.step == step).values(outcome=outcome))


def step_history(store: StateStore, lead_keys: list[str]) -> list[dict[str, Any]]:
    """The recorded steps of these leads as dicts, in the order they fired (for `leadflow trace`)."""
    if not lead_keys:
        return []
    frame = fired_steps(store, lead_keys)
    return [{k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else None if v is pd.NaT else v)
             for k, v in row.items()} for row in frame.to_dict("records")]
