"""Routing: the round-robin state held under a lock (`RoutingSession`) and the recorded assignments with their SLA
stamps: `RoutingMixin` of `StateStore`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from leadflow.store.engine import StoreBase
from leadflow.store.tables import assignments, lead_events, lead_runs, routing_state
from leadflow.store.values import CACHE_CHUNK_KEYS, STATE_CHUNK_ROWS, _cell_text, _now, _upsert

ROUTING_STATE: Final[str] = "default"


class RoutingMixin(StoreBase):
    """Routing sessions, assignments (`assignments`) and which leads were seen before."""

    @contextmanager
    def routing_session(self, run_id: str) -> Iterator[RoutingSession]:
        """One routing run's hold on the round-robin state: read, route, save and record assignments in a single
        transaction that holds a lock (`SELECT … FOR UPDATE` on PostgreSQL, SQLite's single-writer lock), so two
        runs at once never hand out the same slot: the second waits and continues from the first one's state."""
        with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(postgresql.insert(routing_state).values(
                    name=ROUTING_STATE, payload={}, run_id=None, updated_at=_now()).on_conflict_do_nothing())
                row = conn.execute(sa.select(routing_state.c.payload).where(
                    routing_state.c.name == ROUTING_STATE).with_for_update()).first()
            else:
                row = conn.execute(sa.select(routing_state.c.payload).where(
                    routing_state.c.name == ROUTING_STATE)).first()
            yield RoutingSession(conn, run_id, dict(row[0]) if row and row[0] else {})

    def assignments(self, lead_keys: list[str] | None = None, *, since: datetime | None = None) -> pd.DataFrame:
        """Recorded assignments (all, of `lead_keys`, or assigned at or after `since`), times as UTC timestamps."""
        columns = [c.name for c in assignments.columns]
        query = sa.select(assignments)
        if lead_keys is not None:
            query = query.where(assignments.c.lead_key.in_(lead_keys))
        if since is not None:
            query = query.where(assignments.c.assigned_at >= since)
        return _with_times(self._rows(query, columns))

    def seen_leads(self, lead_keys: list[str], *, except_run: str | None = None) -> set[str]:
        """Those of `lead_keys` that a run (other than `except_run`) staged: leads leadflow has processed before."""
        seen: set[str] = set()
        wanted = list(dict.fromkeys(k for k in lead_keys if k))
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                part = wanted[start : start + CACHE_CHUNK_KEYS]
                for table in (lead_runs, lead_events):
                    query = sa.select(table.c.lead_key).where(table.c.lead_key.in_(part))
                    if except_run is not None:
                        query = query.where(table.c.run_id != except_run)
                    seen.update(row[0] for row in conn.execute(query.distinct()))
        return seen

    def sla_overdue(self, as_of: datetime) -> pd.DataFrame:
        """Assignments past their first-touch SLA at `as_of` with no first touch and no breach recorded yet."""
        columns = [c.name for c in assignments.columns]
        query = sa.select(assignments).where(
            assignments.c.sla_due_at.is_not(None), assignments.c.sla_due_at <= as_of,
            assignments.c.first_touch_at.is_(None), assignments.c.breached_at.is_(None),
        ).order_by(assignments.c.sla_due_at)
        frame = self._rows(query, columns)
        for column in ("assigned_at", "sla_due_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def mark_assignments(self, lead_keys: list[str], column: str, at: datetime) -> int:
        """Stamp `first_touch_at`, `breached_at` or `written_at` on these assignments (only where still empty)."""
        if column not in ("first_touch_at", "breached_at", "written_at"):
            raise ValueError(f"cannot stamp {column!r}")
        done = 0
        with self._writing() as conn:
            for start in range(0, len(lead_keys), CACHE_CHUNK_KEYS):
                result = conn.execute(assignments.update().where(
                    assignments.c.lead_key.in_(lead_keys[start : start + CACHE_CHUNK_KEYS]),
                    assignments.c[column].is_(None)).values({column: at}))
                done += result.rowcount or 0
        return done


class RoutingSession:
    """The round-robin state read under the routing lock; `save` and `record` write inside the same transaction."""

    def __init__(self, conn: Connection, run_id: str, payload: dict[str, Any]) -> None:
        self._conn, self.run_id, self.payload = conn, run_id, payload

    def assignments(self, lead_keys: list[str]) -> pd.DataFrame:
        """The recorded assignments of `lead_keys`, read inside the routing transaction (after any run that held the
        lock before), times as UTC timestamps."""
        columns = [c.name for c in assignments.columns]
        rows: list[Any] = []
        for start in range(0, len(lead_keys), CACHE_CHUNK_KEYS):
            part = lead_keys[start : start + CACHE_CHUNK_KEYS]
            rows.extend(self._conn.execute(sa.select(assignments).where(assignments.c.lead_key.in_(part))).all())
        return _with_times(pd.DataFrame.from_records(rows, columns=columns))

    def save(self, payload: dict[str, Any]) -> None:
        """Replace the round-robin state."""
        _upsert(self._conn, routing_state, [{"name": ROUTING_STATE, "payload": payload, "run_id": self.run_id,
                                             "updated_at": _now()}], [routing_state.c.name],
                lambda excluded: {"payload": excluded.payload, "run_id": excluded.run_id,
                                  "updated_at": excluded.updated_at})

    def record(self, made: pd.DataFrame) -> int:
        """Insert or replace the assignments made by this run (lead_key, owner_id, routing_rule, routing_reason,
        assigned_at, sla_due_at); a new assignment clears an earlier first touch and breach."""
        if not len(made):
            return 0
        latest = made.drop_duplicates("lead_key", keep="last")
        assigned = pd.to_datetime(latest["assigned_at"], utc=True)
        due = pd.to_datetime(latest["sla_due_at"], utc=True)
        inputs = latest["inputs"].tolist() if "inputs" in latest else [None] * len(latest)
        rows = [
            {"lead_key": key, "owner_id": _cell_text(owner), "routing_rule": rule, "routing_reason": _cell_text(why),
             "assigned_at": a.to_pydatetime(), "sla_due_at": None if pd.isna(d) else d.to_pydatetime(),
             "first_touch_at": None, "breached_at": None, "run_id": self.run_id, "inputs": snapshot,
             "written_at": None}
            for key, owner, rule, why, a, d, snapshot in zip(
                latest["lead_key"], latest["owner_id"], latest["routing_rule"], latest["routing_reason"], assigned,
                due, inputs, strict=True)
        ]
        for start in range(0, len(rows), STATE_CHUNK_ROWS):
            _upsert(self._conn, assignments, rows[start : start + STATE_CHUNK_ROWS], [assignments.c.lead_key],
                    lambda excluded: {c: excluded[c] for c in ("owner_id", "routing_rule", "routing_reason",
                                                               "assigned_at", "sla_due_at", "first_touch_at",
                                                               "breached_at", "run_id", "inputs",
                                                               "written_at")})
        return len(rows)


ASSIGNMENT_TIMES = ("assigned_at", "sla_due_at", "first_touch_at", "breached_at", "written_at")


def _with_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Assignment rows with their times as UTC timestamps (both readers of the table return this shape)."""
    for column in ASSIGNMENT_TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
