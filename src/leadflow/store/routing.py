"""Routing: the round-robin state held under a lock (`RoutingSession`), the recorded assignments with their SLA
stamps, and routing pauses (`leadflow routing pause` / `resume`, tables in `availability_tables`): `RoutingMixin` of
`StateStore`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from leadflow.routing.times import Pause
from leadflow.store.engine import StoreBase
from leadflow.store.availability_tables import PAUSE_COLUMNS, routing_pauses
from leadflow.store.first_touch_tables import PULL_SOURCE
from leadflow.store.tables import assignments, lead_events, lead_runs, routing_state
from leadflow.store.bulk import (
    BULK_CHUNK_ROWS,
    JSON_NULL,
    bulk_upsert,
    json_objects,
    repeat,
    stage_keys,
    stamp_texts,
    texts,
)
from leadflow.store.values import CACHE_CHUNK_KEYS, _json_dumps, _now, _upsert

ROUTING_STATE: Final[str] = "default"


class RoutingMixin(StoreBase):
    """Routing sessions, assignments (`assignments`) and which leads were seen before."""

    @contextmanager
    def routing_session(self, run_id: str, as_of: datetime | None = None) -> Iterator[RoutingSession]:
        """One routing run's hold on the round-robin state: read, route, save and record assignments in a single
        transaction that holds a lock (`SELECT … FOR UPDATE` on PostgreSQL, SQLite's single-writer lock), so two
        runs at once never hand out the same slot: the second waits and continues from the first one's state. The
        pauses in force are those at `as_of` (the run's time; default now)."""
        with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(postgresql.insert(routing_state).values(
                    name=ROUTING_STATE, payload={}, run_id=None, updated_at=_now()).on_conflict_do_nothing())
                row = conn.execute(sa.select(routing_state.c.payload).where(
                    routing_state.c.name == ROUTING_STATE).with_for_update()).first()
            else:
                row = conn.execute(sa.select(routing_state.c.payload).where(
                    routing_state.c.name == ROUTING_STATE)).first()
            payload = dict(row[0]) if row and row[0] else {}
            # read fresh under the same lock, never saved with the state (`leadflow.routing.RoutingState`)
            paused = _pauses_in_force(conn, as_of or _now())
            if paused:
                payload["paused"] = {user: pause.to_json() for user, pause in paused.items()}
            untouched = _open_leads(conn)
            if untouched:
                payload["open_leads"] = untouched
            yield RoutingSession(conn, run_id, payload)

    def pause_routing(self, user_id: str, until: datetime, *, reason: str, by: str, at: datetime) -> None:
        """Record that `user_id` takes no routed leads from `at` until `until` (replaces a pause in force)."""
        with self._writing() as conn:
            conn.execute(routing_pauses.insert().values(user_id=user_id, action="pause", until=until,
                                                        reason=reason or None, by=by, at=at))

    def resume_routing(self, user_id: str, *, by: str, at: datetime) -> Pause | None:
        """End `user_id`'s pause in force at `at`, recorded with who and when; returns it (None, and nothing
        recorded, when there was none)."""
        with self._writing() as conn:
            pause = _pauses_in_force(conn, at, user_id).get(user_id)
            if pause is not None:
                conn.execute(routing_pauses.insert().values(user_id=user_id, action="resume", until=None, reason=None,
                                                            by=by, at=at))
            return pause

    def routing_pauses(self, as_of: datetime) -> dict[str, Pause]:
        """The pauses not yet over at `as_of` (those starting later included), per user id."""
        with self._engine.connect() as conn:
            return _pauses_in_force(conn, as_of)

    def open_leads(self) -> dict[str, int]:
        """Per owner: recorded assignments nobody has touched yet (what a pool member's `open_cap` counts)."""
        with self._engine.connect() as conn:
            return _open_leads(conn)

    def pause_log(self, user_id: str | None = None) -> pd.DataFrame:
        """Every pause and resume (of `user_id`), oldest first: id, user_id, action, until, reason, by, at."""
        query = sa.select(routing_pauses).order_by(routing_pauses.c.id)
        if user_id is not None:
            query = query.where(routing_pauses.c.user_id == user_id)
        frame = self._rows(query, list(PAUSE_COLUMNS))
        for column in ("until", "at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def assignments(self, lead_keys: list[str] | None = None, *, since: datetime | None = None, inputs: bool = True
                    ) -> pd.DataFrame:
        """Recorded assignments (all, of `lead_keys`, or assigned at or after `since`), times as UTC timestamps;
        `inputs=False` (with `lead_keys` only) leaves out the snapshots, the bulk of each row."""
        if lead_keys is not None and since is None:
            with self._engine.connect() as conn:
                return _recorded(conn, lead_keys, inputs=inputs)
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
        """Stamp `first_touch_at`, `breached_at` or `written_at` on these assignments (only where still empty). A
        first touch stamped here is the time a pull saw the lead worked: labelled `first_touch_source = "pull"`, the
        fallback a first touch the CRM records replaces (`FirstTouchMixin.record_first_touches`)."""
        if column not in ("first_touch_at", "breached_at", "written_at"):
            raise ValueError(f"cannot stamp {column!r}")
        values: dict[str, Any] = {column: at}
        if column == "first_touch_at":
            values["first_touch_source"] = PULL_SOURCE
        done = 0
        with self._writing() as conn:
            for start in range(0, len(lead_keys), CACHE_CHUNK_KEYS):
                result = conn.execute(assignments.update().where(
                    assignments.c.lead_key.in_(lead_keys[start : start + CACHE_CHUNK_KEYS]),
                    assignments.c[column].is_(None)).values(values))
                done += result.rowcount or 0
        return done


class RoutingSession:
    """The round-robin state read under the routing lock; `save` and `record` write inside the same transaction."""

    def __init__(self, conn: Connection, run_id: str, payload: dict[str, Any]) -> None:
        self._conn, self.run_id, self.payload = conn, run_id, payload

    def assignments(self, lead_keys: list[str], *, inputs: bool = True) -> pd.DataFrame:
        """The recorded assignments of `lead_keys`, read inside the routing transaction (after any run that held the
        lock before), times as UTC timestamps; `inputs=False` leaves out the snapshots (the bulk of each row)."""
        return _recorded(self._conn, lead_keys, inputs=inputs)

    def save(self, payload: dict[str, Any]) -> None:
        """Replace the round-robin state."""
        _upsert(self._conn, routing_state, [{"name": ROUTING_STATE, "payload": payload, "run_id": self.run_id,
                                             "updated_at": _now()}], [routing_state.c.name],
                lambda excluded: {"payload": excluded.payload, "run_id": excluded.run_id,
                                  "updated_at": excluded.updated_at})

    def record(self, made: pd.DataFrame, snapshots: pd.DataFrame | None = None) -> int:
        """Insert or replace the assignments made by this run (lead_key, owner_id, routing_rule, routing_reason,
        assigned_at, sla_due_at; the last row of a lead_key wins); a new assignment clears an earlier first touch and
        breach. What is kept of each lead (`inputs`): `snapshots`, a frame row for row with `made`, whose non-missing
        values are kept as text; else an `inputs` column of dicts; else nothing (JSON null). Built a column at a time
        and written in bulk (`leadflow.store.bulk`): a million assignments take seconds, not a minute."""
        if not len(made):
            return 0
        if snapshots is not None and len(snapshots) != len(made):
            raise ValueError(f"assignments: {len(snapshots)} snapshot row(s) for {len(made)} assignment(s)")
        earlier = made["lead_key"].duplicated(keep="last").to_numpy()
        if earlier.any():  # a copy only when there is something to drop
            made = made[~earlier]
            snapshots = None if snapshots is None else snapshots[~earlier]
        # parsed as whole columns (one format inferred per column, as before), converted to text chunk by chunk
        times = {c: pd.to_datetime(made[c], utc=True) for c in ("assigned_at", "sla_due_at")}
        dialect = self._conn.dialect

        def chunks() -> Iterator[pa.Table]:
            for start in range(0, len(made), BULK_CHUNK_ROWS):
                rows = slice(start, start + BULK_CHUNK_ROWS)
                part = made.iloc[rows]
                if snapshots is not None:
                    inputs = json_objects(snapshots.iloc[rows])
                elif "inputs" in part:  # a few leads (SLA reassignment): one dict each
                    inputs = pa.array([_json_dumps(value) for value in part["inputs"].tolist()], type=pa.large_string())
                else:
                    inputs = repeat(JSON_NULL, len(part))
                yield pa.table({
                    "lead_key": texts(part["lead_key"]),
                    "owner_id": texts(part["owner_id"]),
                    "routing_rule": texts(part["routing_rule"]),
                    "routing_reason": texts(part["routing_reason"]),
                    **{c: stamp_texts(times[c].iloc[rows], dialect.name) for c in ("assigned_at", "sla_due_at")},
                    "inputs": inputs,
                })

        # what every row shares is sent once, not once per row
        constants = {"first_touch_at": None, "first_touch_source": None, "breached_at": None, "run_id": self.run_id,
                     "written_at": None}
        return bulk_upsert(self._conn, assignments, chunks(), ["lead_key"], _REPLACED, constants)


def _pauses_in_force(conn: Connection, as_of: datetime, user_id: str | None = None) -> dict[str, Pause]:
    """Per user whose latest pause/resume row is a pause ending after `as_of`: that pause."""
    query = sa.select(routing_pauses).order_by(routing_pauses.c.id)
    if user_id is not None:
        query = query.where(routing_pauses.c.user_id == user_id)
    latest = {row.user_id: row for row in conn.execute(query)}
    return {user: Pause(until=row.until, reason=row.reason or "", by=row.by, at=row.at)
            for user, row in sorted(latest.items()) if row.action == "pause" and row.until > as_of}


def _open_leads(conn: Connection) -> dict[str, int]:
    """Per owner: recorded assignments with no first touch yet (what `open_cap` counts)."""
    query = sa.select(assignments.c.owner_id, sa.func.count()).where(
        assignments.c.first_touch_at.is_(None), assignments.c.owner_id.is_not(None)).group_by(assignments.c.owner_id)
    return {str(owner): int(n) for owner, n in conn.execute(query)}


_REPLACED = ("owner_id", "routing_rule", "routing_reason", "assigned_at", "sla_due_at", "first_touch_at",
             "first_touch_source", "breached_at", "run_id", "inputs", "written_at")
"""What a new assignment of a lead replaces: everything but the key."""


BULK_READ_KEYS: Final[int] = 20_000
"""From this many keys on, they are sent as a temporary table and joined, not as `IN (...)` lists of 500."""


def _recorded(conn: Connection, lead_keys: list[str], *, inputs: bool) -> pd.DataFrame:
    """The assignments of `lead_keys` (with or without their `inputs` snapshots), times as UTC timestamps."""
    wanted = list(dict.fromkeys(lead_keys))
    columns = [c for c in assignments.columns if inputs or c.name != "inputs"]
    names = [c.name for c in columns]
    if len(wanted) < BULK_READ_KEYS:
        rows: list[Any] = []
        for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
            part = wanted[start : start + CACHE_CHUNK_KEYS]
            rows.extend(conn.execute(sa.select(*columns).where(assignments.c.lead_key.in_(part))).all())
        return _with_times(pd.DataFrame.from_records(rows, columns=names))
    keys = stage_keys(conn, "assignments", wanted)
    joined = sa.select(*columns).select_from(assignments.join(keys, assignments.c.lead_key == keys.c.lead_key))
    if inputs:  # the snapshots need SQLAlchemy's JSON processing
        rows = conn.execute(joined).all()
        # by column: pandas builds a frame from SQLAlchemy rows ~4x slower than from columns
        found = pd.DataFrame(dict(zip(names, zip(*rows), strict=True)) if rows else {n: [] for n in names},
                             columns=names)
    else:  # the driver's own tuples, no per-row result processing: `_with_times` parses times as whole columns
        dbapi_connection = conn.connection.driver_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(str(joined.compile(dialect=conn.dialect)))
            found = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
        finally:
            cursor.close()
    conn.exec_driver_sql(f"DROP TABLE {conn.dialect.identifier_preparer.format_table(keys)}")
    return _with_times(found)


ASSIGNMENT_TIMES = ("assigned_at", "sla_due_at", "first_touch_at", "breached_at", "written_at")


def _with_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Assignment rows with their times as UTC timestamps (both readers of the table return this shape)."""
    for column in ASSIGNMENT_TIMES:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
