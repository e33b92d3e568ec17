"""The state store: runs, watermarks, quarantined rows and the per-field audit trail, on SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url

from leadflow.errors import LeadflowError
from leadflow.settings import Settings
from leadflow.store.leases import Leases, sweep_crashed_runs, this_process
from leadflow.store.tables import (
    CACHE_STATUSES,
    EVENT_COLUMNS,
    FINAL_STATUSES,
    LEAD_RUN_COLUMNS,
    UTCDateTime,
    assignments,
    audit_chunks,
    backfill_chunks,
    dead_letters,
    enrichment_cache,
    lead_events,
    lead_runs,
    lead_state,
    quarantine,
    routing_state,
    runs,
    watermarks,
)

if TYPE_CHECKING:
    from leadflow.changes import ChangeChunk
    from leadflow.connectors.enrichment import ProviderResult

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final[Path] = Path(__file__).resolve().parent / "migrations"
EVENT_CHUNK_ROWS: Final[int] = 100_000
"""Events converted and sent per round trip: bounds the Python objects alive at once to one chunk, not 10M rows."""
QUARANTINE_CHUNK_ROWS: Final[int] = 10_000
SQLITE_BUSY_TIMEOUT_MS: Final[int] = 30_000
SQLITE_CACHE_KIB: Final[int] = -65_536
MAX_INDEXED_EMAIL: Final[int] = 320
"""Longer `email` values (garbage in a form field) are not kept in `lead_runs`; an index entry must stay small."""

_WRITE_OPTION: Final[str] = "leadflow_write"
_MIGRATION_LOCK: Final[int] = 0x1EAD_F10E
"""Advisory lock key that serialises concurrent `upgrade()` calls on one PostgreSQL database."""
_SCHEMA_NAME: Final[re.Pattern[str]] = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_EVENT_KEY_COLUMNS: Final[tuple[str, ...]] = ("run_id", "lead_key", "stage", "column_name")
_QUARANTINE_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "expectation", "reason", "row")
_DEAD_LETTER_COLUMNS: Final[tuple[str, ...]] = ("record_id", "error_code", "message", "retryable", "payload")
CACHE_CHUNK_KEYS: Final[int] = 500
STATE_SCAN_KEYS: Final[int] = 50_000
ROUTING_STATE: Final[str] = "default"
STATE_CHUNK_ROWS: Final[int] = 5_000
LIFECYCLE_STAMPS: Final[tuple[str, ...]] = ("mql_at", "sal_at", "sql_at", "recycled_at")
"""Domains per `IN (...)` query / upsert: well under SQLite's bound-parameter limit."""
_MAX_DOMAIN: Final[int] = 255


class StoreError(LeadflowError):
    """The state store cannot be opened or migrated; the message carries the URL with its password hidden."""


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, built in code (no alembic.ini, works from a wheel).

    Pass `connection` to migrate inside the caller's transaction, or `url` for shell use, e.g.
    `alembic.command.revision(alembic_config(url), autogenerate=True, message="...")`.
    """
    cfg = Config()
    # ConfigParser interpolation: a literal % must be doubled
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class StateStore:
    """Run history, watermarks, quarantine and lead audit events in one SQL database.

    Open with `StateStore.open()`; every public write runs in a single transaction, so a failed call leaves nothing.
    """

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine made by `open()`; prefer `open()`, which also configures the connection and migrates."""
        self._engine = engine

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str | None = None, *, schema: str | None = None) -> StateStore:
        """Connect to `url` (default `Settings().state_url()`) and bring the schema up to date.

        `schema` (PostgreSQL only) puts every table, and Alembic's version table, in that schema, creating it if
        needed; a URL may instead carry `?options=-csearch_path%3D<schema>` for a schema that already exists.
        """
        parsed = _normalise_url(make_url(url if url is not None else Settings().state_url()))
        hidden = parsed.render_as_string(hide_password=True)
        backend = parsed.get_backend_name()
        if schema is not None:
            if backend != "postgresql":
                raise ValueError(f"schema={schema!r} is only supported on PostgreSQL, not {backend} ({hidden})")
            if not _SCHEMA_NAME.match(schema):
                raise ValueError(f"schema {schema!r} must be a lower-case SQL identifier")
            if "options" in parsed.query:
                raise ValueError(f"pass either schema= or an `options` query parameter in the URL, not both ({hidden})")
        if backend == "sqlite":
            _make_sqlite_parent(parsed)
        store = cls(_make_engine(parsed, schema))
        try:
            with store._writing() as conn:
                if schema is not None:
                    _create_schema(conn, schema)
        except sa.exc.SQLAlchemyError as exc:
            store.close()
            raise StoreError(f"cannot open the state store at {hidden}: {_reason(exc)}") from exc
        try:
            store.upgrade()
        except BaseException:
            store.close()
            raise
        log.debug("state store open at %s", store.url)
        return store

    def upgrade(self) -> None:
        """Apply any pending migrations (`alembic upgrade head`) in one transaction; a no-op when current."""
        try:
            with self._writing() as conn:
                if conn.dialect.name == "postgresql":
                    # two processes opening a fresh database at once would otherwise both try to create the tables
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                command.upgrade(alembic_config(connection=conn), "head")
        except CommandError as exc:
            # the usual cause: the database is at a revision this version of leadflow does not ship
            raise StoreError(
                f"cannot migrate the state store at {self.url}: {exc} (was it migrated by a newer leadflow?)"
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the state store at {self.url}: {_reason(exc)}") from exc

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.url!r})"

    @property
    def url(self) -> str:
        """The database URL with any password masked; safe to log."""
        return self._engine.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for read-only queries the API does not cover."""
        return self._engine

    # -- runs --------------------------------------------------------------------------------------------------------

    def start_run(self, flow: str, params: Mapping[str, Any]) -> str:
        """Record a run of `flow` as running and return its new run_id (a UUID string)."""
        if not flow:
            raise ValueError("flow must be a non-empty name")
        run_id = str(uuid.uuid4())
        host, pid = this_process()
        with self._writing() as conn:
            sweep_crashed_runs(conn)  # earlier runs on this host whose process died are not `running` any more
            conn.execute(
                runs.insert().values(
                    run_id=run_id, flow=flow, started_at=_now(), status="running", params=_jsonable(dict(params)),
                    holder=f"{host}:{pid}",
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: str, stats: Mapping[str, Any], error: str | None = None) -> None:
        """Mark a run `completed` or `failed` with its stats (and error text); raises KeyError for an unknown run."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {status!r}")
        with self._writing() as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(finished_at=_now(), status=status, stats=_jsonable(dict(stats)), error=error)
            )
            if result.rowcount == 0:
                raise KeyError(f"no run {run_id!r} in the state store")

    def leases(self) -> Leases:
        """The writer leases (`leadflow.store.leases`): one writer per system at a time."""
        return Leases(self._engine, self._writing)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run as a dict (run_id, flow, started_at, finished_at, status, params, stats, error), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        return dict(row) if row is not None else None

    def runs(self, limit: int = 20, flow: str | None = None) -> list[dict[str, Any]]:
        """The latest `limit` runs (optionally of one flow), newest first."""
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        if flow is not None:
            query = query.where(runs.c.flow == flow)
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- watermarks --------------------------------------------------------------------------------------------------

    def get_watermark(self, source: str) -> datetime | None:
        """The high-water mark recorded for `source` (UTC), or None if there is none yet."""
        with self._engine.connect() as conn:
            value: datetime | None = conn.execute(
                sa.select(watermarks.c.value).where(watermarks.c.source == source)
            ).scalar_one_or_none()
        return value

    def set_watermark(self, source: str, value: datetime, run_id: str) -> None:
        """Insert or replace the high-water mark for `source`; `value` must be timezone-aware."""
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"watermark for {source!r} must be timezone-aware, got {value!r}")
        values = {"source": source, "value": value, "run_id": run_id, "updated_at": _now()}
        changed = {"value": value, "run_id": run_id, "updated_at": values["updated_at"]}
        with self._writing() as conn:
            _upsert(conn, watermarks, [values], [watermarks.c.source], lambda excluded: changed)

    # -- quarantine --------------------------------------------------------------------------------------------------

    def add_quarantine(self, run_id: str, stage: str, rows: pd.DataFrame) -> int:
        """Store refused rows: columns `lead_key`, `expectation`, `reason`, `row` (a dict per row); returns the count.

        `row` values are stored as strings (None for missing), so any dtype survives the JSON round trip. An `at`
        column, if present, gives each row's time; otherwise all rows get the time of this call.
        """
        _require_columns(rows, _QUARANTINE_COLUMNS, "quarantine rows")
        if rows.empty:
            return 0
        if rows["expectation"].isna().any():
            raise ValueError("quarantine rows: `expectation` has missing values")
        at = _utc_times(rows["at"], "quarantine rows `at`") if "at" in rows else pd.Series(_now(), index=rows.index)
        records = [
            {
                "run_id": run_id,
                "lead_key": lead_key,
                "stage": stage,
                "expectation": expectation,
                "reason": reason,
                "row": _row_json(row, position),
                "at": when,
            }
            for position, (lead_key, expectation, reason, row, when) in enumerate(
                zip(
                    _texts(rows["lead_key"]),
                    _texts(rows["expectation"]),
                    _texts(rows["reason"]),
                    rows["row"].tolist(),
                    at.tolist(),
                    strict=True,
                )
            )
        ]
        with self._writing() as conn:
            for start in range(0, len(records), QUARANTINE_CHUNK_ROWS):
                conn.execute(quarantine.insert(), records[start : start + QUARANTINE_CHUNK_ROWS])
        return len(records)

    def quarantine(self, run_id: str | None = None) -> pd.DataFrame:
        """Quarantined rows (all, or one run's) in insertion order, with `row` as a dict and `at` in UTC."""
        query = sa.select(quarantine).order_by(quarantine.c.id)
        if run_id is not None:
            query = query.where(quarantine.c.run_id == run_id)
        frame = self._read_frame(query, [c.name for c in quarantine.columns])
        for column in ("run_id", "lead_key", "stage", "expectation", "reason"):
            frame[column] = frame[column].astype("string")
        return frame

    # -- audit trail -------------------------------------------------------------------------------------------------

    def add_events(self, events: pd.DataFrame) -> int:
        """Bulk-append audit events (run_id, lead_key, stage, column_name, old_value, new_value, at); returns the count.

        Old and new values are stored as text (None for missing). `at` must be timezone-aware. On PostgreSQL
        (psycopg 3) the rows stream through `COPY ... FROM STDIN`; elsewhere a Core INSERT runs as executemany,
        one chunk at a time. Either way the whole frame is one transaction.
        """
        _require_columns(events, EVENT_COLUMNS, "events")
        if events.empty:
            return 0
        for column in _EVENT_KEY_COLUMNS:
            missing = int(events[column].isna().sum())
            if missing:
                raise ValueError(f"events: {missing} row(s) have no `{column}`")
        at = _utc_times(events["at"], "events `at`")
        with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                _copy_events(conn, events, at)
            else:
                _executemany_events(conn, events, at)
        return len(events)

    def events(self, lead_key: str | None = None, run_id: str | None = None, *, stage_changes: bool = True
               ) -> pd.DataFrame:
        """Audit events, optionally for one lead and/or one run, ordered by `at`: the point events of `lead_events`
        (write-backs, SLA breaches, erasures) and, unless not `stage_changes`, each stage's changes diffed from
        `audit_chunks` (those have no `id`)."""
        query = sa.select(lead_events).order_by(lead_events.c.at, lead_events.c.id)
        if lead_key is not None:
            query = query.where(lead_events.c.lead_key == lead_key)
        if run_id is not None:
            query = query.where(lead_events.c.run_id == run_id)
        columns = [c.name for c in lead_events.columns]
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            if stage_changes:
                rows += self._chunk_events(conn, [lead_key] if lead_key is not None else None, run_id)
        rows.sort(key=lambda r: r["at"])
        frame = pd.DataFrame.from_records(rows, columns=columns)
        for column in EVENT_COLUMNS[:-1]:
            frame[column] = frame[column].astype("string")
        frame["id"] = frame["id"].astype("Int64")
        frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[us, UTC]")
        return frame

    def _chunk_events(self, conn: Connection, keys: list[str] | None, run_id: str | None) -> list[dict[str, Any]]:
        """Stage changes diffed from the audit chunks holding `keys` (found through `lead_runs`) and/or of `run_id`."""
        from leadflow.changes import change_events

        query = sa.select(audit_chunks.c.run_id, audit_chunks.c.stage, audit_chunks.c.at, audit_chunks.c.payload)
        if keys is not None:
            if not keys:
                return []
            places = sa.select(lead_runs.c.run_id, lead_runs.c.chunk).where(lead_runs.c.lead_key.in_(keys))
            if run_id is not None:
                places = places.where(lead_runs.c.run_id == run_id)
            ids = _chunk_ids(conn, {(r, c) for r, c in conn.execute(places)})
            if not ids:
                return []
            query = query.where(audit_chunks.c.id.in_(ids))
        elif run_id is not None:
            query = query.where(audit_chunks.c.run_id == run_id)
        out: list[dict[str, Any]] = []
        for row in conn.execute(query.order_by(audit_chunks.c.at, audit_chunks.c.id)):
            at = row.at
            changes = change_events(row.payload, keys)
            for key, column, old, new in zip(changes["lead_key"], changes["column_name"], changes["old_value"],
                                             changes["new_value"], strict=True):
                out.append({"id": None, "run_id": row.run_id, "lead_key": key, "stage": row.stage,
                            "column_name": column, "old_value": old, "new_value": new, "at": at})
        return out

    def add_changes(
        self, run_id: str, stage: str, at: datetime, chunks: list[ChangeChunk], leads: pd.DataFrame | None = None
    ) -> int:
        """Store a stage's before/after chunks (`leadflow.changes.pack_changes`) and, from a page's first stage, the
        leads it staged (`leads`: lead_key, chunk, email, created_at, lead_source) in one transaction; returns the
        lead rows the chunks hold. The lead rows take the bulk path: executemany on SQLite, COPY on PostgreSQL."""
        _require_aware(at, "at")
        if leads is not None:
            _require_columns(leads, ("lead_key", "chunk", "email", "created_at", "lead_source"), "lead runs")
            if leads["lead_key"].isna().any():
                raise ValueError(f"lead runs: {int(leads['lead_key'].isna().sum())} row(s) have no `lead_key`")
        if not chunks and (leads is None or not len(leads)):
            return 0
        with self._writing() as conn:
            if leads is not None and len(leads):
                _insert_lead_runs(conn, run_id, at, leads)
            if chunks:
                conn.execute(audit_chunks.insert(), [
                    {"run_id": run_id, "stage": stage, "chunk": c.chunk, "rows": c.rows, "payload": c.payload,
                     "at": at} for c in chunks])
        return sum(c.rows for c in chunks)

    def lead_runs(self, lead_keys: list[str] | None = None, *, since: datetime | None = None) -> pd.DataFrame:
        """Rows of `lead_runs` (all, of `lead_keys`, or staged at or after `since`), `at` as UTC timestamps."""
        columns = [c.name for c in lead_runs.columns]
        query = sa.select(lead_runs).order_by(lead_runs.c.at, lead_runs.c.id)
        if lead_keys is not None:
            query = query.where(lead_runs.c.lead_key.in_(lead_keys))
        if since is not None:
            query = query.where(lead_runs.c.at >= since)
        frame = self._rows(query, columns)
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        return frame

    def add_dead_letters(
        self, run_id: str, system: str, obj: str, failures: pd.DataFrame, *, max_attempts: int = 5
    ) -> int:
        """Record per-record write failures (`record_id`, `error_code`, `message`, `retryable`, `payload`).

        A record failing again counts one more attempt and keeps its latest payload; it turns `permanent` when the
        error is not retryable or after `max_attempts`, so it is reported rather than retried forever.
        """
        _require_columns(failures, _DEAD_LETTER_COLUMNS, "dead letters")
        if failures.empty:
            return 0
        # One upsert per record: PostgreSQL refuses to update the same row twice in one statement.
        failures = failures.drop_duplicates(subset="record_id", keep="last")
        now = _now()
        rows = [
            {
                "system": system,
                "object": obj,
                "record_id": str(record_id),
                "payload": _jsonable(payload) if payload is not None else {},
                "error_code": str(code),
                "message": None if message is None or message is pd.NA else str(message),
                "retryable": bool(retryable),
                "status": "pending" if bool(retryable) and max_attempts > 1 else "permanent",
                "attempts": 1,
                "first_run_id": run_id,
                "last_run_id": run_id,
                "first_seen": now,
                "last_seen": now,
                "resolved_at": None,
            }
            for record_id, code, message, retryable, payload in zip(
                failures["record_id"], failures["error_code"], failures["message"], failures["retryable"],
                failures["payload"], strict=True,
            )
        ]

        def on_conflict(excluded: Any) -> dict[str, Any]:
            attempts = sa.case((dead_letters.c.status == "resolved", 1), else_=dead_letters.c.attempts + 1)
            return {
                "payload": excluded.payload,
                "error_code": excluded.error_code,
                "message": excluded.message,
                "retryable": excluded.retryable,
                "attempts": attempts,
                "status": sa.case(
                    (sa.or_(sa.not_(excluded.retryable), attempts >= max_attempts), "permanent"), else_="pending"
                ),
                "last_run_id": excluded.last_run_id,
                "last_seen": excluded.last_seen,
                "resolved_at": None,
            }

        keys = [dead_letters.c.system, dead_letters.c.object, dead_letters.c.record_id]
        with self._writing() as conn:
            _upsert(conn, dead_letters, rows, keys, on_conflict)
        return len(rows)

    def dead_letters(self, system: str | None = None, status: str | None = None) -> pd.DataFrame:
        """Dead letters, optionally of one system and/or status, oldest first."""
        query = sa.select(dead_letters).order_by(dead_letters.c.first_seen, dead_letters.c.id)
        if system is not None:
            query = query.where(dead_letters.c.system == system)
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame.from_records(rows, columns=[c.name for c in dead_letters.columns])

    def resolve_dead_letters(self, system: str, obj: str, record_ids: list[str], run_id: str) -> int:
        """Mark pending dead letters written successfully on a later run as resolved; returns how many."""
        if not record_ids:
            return 0
        resolved = 0
        with self._writing() as conn:
            for start in range(0, len(record_ids), 500):
                result = conn.execute(
                    dead_letters.update()
                    .where(
                        dead_letters.c.system == system,
                        dead_letters.c.object == obj,
                        dead_letters.c.record_id.in_([str(r) for r in record_ids[start : start + 500]]),
                        dead_letters.c.status == "pending",
                    )
                    .values(status="resolved", resolved_at=_now(), last_run_id=run_id)
                )
                resolved += result.rowcount
        return resolved

    # -- enrichment cache --------------------------------------------------------------------------------------------

    # -- routing -------------------------------------------------------------------------------------------------------

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
        frame = self._rows(query, columns)
        for column in ("assigned_at", "sla_due_at", "first_touch_at", "breached_at", "written_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

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

    # -- lead state ----------------------------------------------------------------------------------------------------

    def lifecycle_state(self, keys: list[str]) -> pd.DataFrame:
        """The last lifecycle state of these leads, indexed by lead_key (stamps as ISO-8601 UTC text)."""
        columns = ["lead_key", "lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS]
        wanted = list(dict.fromkeys(k for k in keys if k))
        parts: list[pd.DataFrame] = []
        query = sa.select(*(lead_state.c[c] for c in columns))
        if len(wanted) > STATE_SCAN_KEYS:
            # A batch this large costs less as one scan than as thousands of IN lists.
            frame = self._rows(query, columns)
            parts.append(frame[frame["lead_key"].isin(wanted)])
        else:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                chunk = query.where(lead_state.c.lead_key.in_(wanted[start : start + CACHE_CHUNK_KEYS]))
                parts.append(self._rows(chunk, columns))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        for column in LIFECYCLE_STAMPS:
            stamps = pd.to_datetime(frame[column], utc=True)
            frame[column] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
        for column in ("lead_key", "lifecycle_stage", "lifecycle_reason"):
            frame[column] = frame[column].astype("string")
        return frame.set_index("lead_key")

    def save_lifecycle_state(self, state: pd.DataFrame, run_id: str) -> int:
        """Insert or replace leads' lifecycle state (`lead_key` plus the lifecycle columns); returns the row count."""
        _require_columns(state, ("lead_key", "lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS), "state")
        latest = state.drop_duplicates("lead_key", keep="last")
        now = _now()
        stamps = {c: pd.to_datetime(latest[c], utc=True, errors="coerce") for c in LIFECYCLE_STAMPS}
        rows = [
            {
                "lead_key": key, "lifecycle_stage": stage, "lifecycle_reason": _cell_text(reason),
                **{c: (None if pd.isna(stamps[c].iloc[i]) else stamps[c].iloc[i].to_pydatetime())
                   for c in LIFECYCLE_STAMPS},
                "run_id": run_id, "updated_at": now,
            }
            for i, (key, stage, reason) in enumerate(
                zip(latest["lead_key"], latest["lifecycle_stage"], latest["lifecycle_reason"], strict=True))
        ]
        with self._writing() as conn:
            for start in range(0, len(rows), STATE_CHUNK_ROWS):
                _upsert(conn, lead_state, rows[start : start + STATE_CHUNK_ROWS], [lead_state.c.lead_key],
                        lambda excluded: {c: excluded[c] for c in ("lifecycle_stage", "lifecycle_reason",
                                                                  *LIFECYCLE_STAMPS, "run_id", "updated_at")})
        return len(rows)

    def cached_firmographics(
        self, provider: str, domains: list[str], fresh_after: datetime
    ) -> dict[str, ProviderResult]:
        """Cached `ok` / `not_found` answers of `provider` for `domains`, fetched at or after `fresh_after`."""
        from leadflow.connectors.enrichment import (
            ProviderResult,  # lazy: the store must not import requests
        )

        wanted = list(dict.fromkeys(d for d in domains if d and len(d) <= _MAX_DOMAIN))
        found: dict[str, ProviderResult] = {}
        table = enrichment_cache
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                query = sa.select(table.c.domain, table.c.status, table.c.payload).where(
                    table.c.provider == provider,
                    table.c.domain.in_(wanted[start : start + CACHE_CHUNK_KEYS]),
                    table.c.fetched_at >= fresh_after,
                )
                for domain, status, payload in conn.execute(query):
                    data = payload or {}
                    revenue = data.get("annual_revenue")
                    found[domain] = ProviderResult(
                        domain,
                        status,
                        employees=data.get("employees"),
                        annual_revenue=float(revenue) if revenue is not None else None,
                        industry=data.get("industry"),
                    )
        return found

    def cache_firmographics(self, provider: str, results: list[ProviderResult], fetched_at: datetime) -> None:
        """Insert or replace `ok` / `not_found` answers; an `error` result is refused (errors are retried, not kept)."""
        if fetched_at.tzinfo is None or fetched_at.utcoffset() is None:
            raise ValueError(f"fetched_at must be timezone-aware, got {fetched_at!r}")
        errors = [r.domain for r in results if r.status not in CACHE_STATUSES]
        if errors:
            raise ValueError(f"only ok/not_found answers are cached; got errors for {errors[:5]}")
        # last answer per domain: PostgreSQL refuses to update one row twice in one statement
        latest = {r.domain: r for r in results if r.domain and len(r.domain) <= _MAX_DOMAIN}
        rows = [
            {
                "provider": provider,
                "domain": r.domain,
                "status": r.status,
                "payload": (
                    {"employees": r.employees, "annual_revenue": r.annual_revenue, "industry": r.industry}
                    if r.status == "ok"
                    else {}
                ),
                "fetched_at": fetched_at,
            }
            for r in latest.values()
        ]
        if not rows:
            return

        def on_conflict(excluded: Any) -> dict[str, Any]:
            return {"status": excluded.status, "payload": excluded.payload, "fetched_at": excluded.fetched_at}

        keys = [enrichment_cache.c.provider, enrichment_cache.c.domain]
        with self._writing() as conn:
            for start in range(0, len(rows), CACHE_CHUNK_KEYS):
                _upsert(conn, enrichment_cache, rows[start : start + CACHE_CHUNK_KEYS], keys, on_conflict)

    # -- backfill chunks -----------------------------------------------------------------------------------------------

    def backfill_chunks(self, backfill_key: str) -> list[dict[str, Any]]:
        """The recorded chunks of one backfill, oldest chunk first (chunk_start, chunk_end, status, run_id, ...)."""
        query = sa.select(backfill_chunks).where(backfill_chunks.c.backfill_key == backfill_key).order_by(
            backfill_chunks.c.chunk_start)
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def record_backfill_chunk(
        self, backfill_key: str, chunk_start: datetime, chunk_end: datetime, status: str, run_id: str | None = None,
        counts: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or replace the state of one backfill chunk (`running`, `completed` or `failed`)."""
        if status not in ("running", "completed", "failed"):
            raise ValueError(f"backfill chunk status must be running, completed or failed, not {status!r}")
        finished = None if status == "running" else _now()
        values = {"backfill_key": backfill_key, "chunk_start": chunk_start, "chunk_end": chunk_end, "status": status,
                  "run_id": run_id, "finished_at": finished, "counts": _jsonable(dict(counts or {}))}
        changed = {k: v for k, v in values.items() if k not in ("backfill_key", "chunk_start")}
        with self._writing() as conn:
            _upsert(conn, backfill_chunks, [values], [backfill_chunks.c.backfill_key, backfill_chunks.c.chunk_start],
                    lambda excluded: changed)

    # -- trace, erasure, retention ---------------------------------------------------------------------------------------

    def keys_for_email(self, email: str) -> list[str]:
        """Every lead_key that mentions `email`: `email:<addr>` keys, keys whose audit events set or replaced the
        `email` column with it, and keys of quarantined rows and assignments whose row/inputs carry it."""
        values = _email_variants(email)
        if not values:
            return []
        found: dict[str, None] = {}
        by_email = [f"email:{v}" for v in values]
        with self._engine.connect() as conn:
            for table in (lead_runs, lead_events, quarantine, assignments, lead_state):
                query = sa.select(table.c.lead_key).where(table.c.lead_key.in_(by_email)).distinct()
                found.update((row[0], None) for row in conn.execute(query))
            query = sa.select(lead_runs.c.lead_key).where(lead_runs.c.email.in_(values)).distinct()
            found.update((row[0], None) for row in conn.execute(query))
            # the partial indexes of migration 0007: the predicate must be literal for SQLite's planner to use them
            for column in ("new_value", "old_value"):
                query = sa.select(lead_events.c.lead_key).where(
                    sa.text(f"column_name = 'email' AND length({column}) <= 320"),
                    lead_events.c[column].in_([v for v in values if len(v) <= 320])).distinct()
                found.update((row[0], None) for row in conn.execute(query))
            query = sa.select(quarantine.c.lead_key).where(
                quarantine.c.lead_key.is_not(None), _json_text(quarantine.c.row, "email").in_(values)).distinct()
            found.update((row[0], None) for row in conn.execute(query))
            query = sa.select(assignments.c.lead_key).where(
                assignments.c.inputs.is_not(None), _json_text(assignments.c.inputs, "email").in_(values))
            found.update((row[0], None) for row in conn.execute(query))
        return sorted(found)

    def keys_for_id(self, lead_id: str) -> list[str]:
        """Every `<source>:<lead_id>` key in the audit trail, quarantine, assignments or lead state.

        Sources are enumerated with index seeks (a loose index scan over the lead_key index), so this never scans
        the events; it relies on `:` sorting before `;` in the database's collation, and falls back to a scan if not.
        """
        lead_id = lead_id.strip()
        if not lead_id:
            return []
        found: dict[str, None] = {}
        with self._engine.connect() as conn:
            for table in (lead_runs, lead_events, quarantine, assignments, lead_state):
                sources = _key_prefixes(conn, table.c.lead_key)
                if sources is None:
                    query = sa.select(table.c.lead_key).where(table.c.lead_key.like(f"%:{_like_escape(lead_id)}",
                                                                                    escape="\\")).distinct()
                else:
                    wanted = [f"{s}:{lead_id}" for s in sources if s not in ("email", "erased")]
                    if not wanted:
                        continue
                    query = sa.select(table.c.lead_key).where(table.c.lead_key.in_(wanted)).distinct()
                found.update((row[0], None) for row in conn.execute(query) if row[0] is not None)
        return sorted(found)

    def lead_journey(self, lead_keys: list[str], record_ids: list[str], email: str | None = None) -> dict[str, Any]:
        """Everything the store holds on these leads: `events`, `quarantine` (also rows whose `email` is `email`),
        `assignments`, `lead_state`, `dead_letters` (by record id) and the `runs` they belong to; lists of dicts."""
        keys = list(dict.fromkeys(k for k in lead_keys if k))
        ids = list(dict.fromkeys(r for r in record_ids if r))
        out: dict[str, Any] = {}
        with self._engine.connect() as conn:
            out["events"] = _mappings(conn, sa.select(lead_events).where(lead_events.c.lead_key.in_(keys))
                                      .order_by(lead_events.c.at, lead_events.c.id)) if keys else []
            out["events"] = sorted(out["events"] + self._chunk_events(conn, keys, None), key=lambda e: e["at"])
            out["lead_runs"] = _mappings(conn, sa.select(lead_runs).where(lead_runs.c.lead_key.in_(keys))
                                         .order_by(lead_runs.c.at, lead_runs.c.id)) if keys else []
            out["quarantine"] = _mappings(conn, sa.select(quarantine).where(_quarantine_match(keys, email))
                                          .order_by(quarantine.c.at, quarantine.c.id))
            out["assignments"] = _mappings(conn, sa.select(assignments).where(
                assignments.c.lead_key.in_(keys))) if keys else []
            out["lead_state"] = _mappings(conn, sa.select(lead_state).where(
                lead_state.c.lead_key.in_(keys))) if keys else []
            out["dead_letters"] = _mappings(conn, sa.select(dead_letters).where(
                dead_letters.c.record_id.in_(ids)).order_by(dead_letters.c.first_seen)) if ids else []
            run_ids = sorted({r["run_id"] for part in ("events", "lead_runs", "quarantine", "assignments", "lead_state")
                              for r in out[part]} | {r[c] for r in out["dead_letters"]
                                                     for c in ("first_run_id", "last_run_id")})
            out["runs"] = _mappings(conn, sa.select(runs).where(runs.c.run_id.in_(run_ids))) if run_ids else []
        return out

    def forget_lead(
        self, subject: str, lead_keys: list[str], record_ids: list[str], email: str | None = None, *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Erase one person: their audit events, quarantine rows, dead letters, assignments and lead state.

        Runs (and their stats) and the enrichment cache (company domains) are left alone. Unless `dry_run`, one
        anonymous tombstone event records the erasure in a new `forget` run: lead_key `erased:<sha256(subject)>`,
        stage `forget`, column `erased`, new_value the number of rows removed, old_value a JSON object of the events
        and quarantine rows removed per run (so each run's audit counts stay explainable). One transaction.
        Returns {"tables": {table: rows}, "per_run": {run_id: rows}, "removed": total, "tombstone": lead_key}.
        """
        keys = list(dict.fromkeys(k for k in lead_keys if k))
        ids = list(dict.fromkeys(r for r in record_ids if r))
        digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()
        tables: dict[str, int] = {}
        per_run: dict[str, int] = {}
        plan: list[tuple[sa.Table, Any]] = [
            (lead_events, lead_events.c.lead_key.in_(keys) if keys else sa.false()),
            (quarantine, _quarantine_match(keys, email)),
            (dead_letters, dead_letters.c.record_id.in_(ids) if ids else sa.false()),
            (assignments, assignments.c.lead_key.in_(keys) if keys else sa.false()),
            (lead_state, lead_state.c.lead_key.in_(keys) if keys else sa.false()),
        ]
        with self._writing() as conn:
            if keys:
                chunk_rows = self._forget_chunks(conn, keys, dry_run=dry_run)
                tables["audit_chunks"] = chunk_rows
                runs_where = lead_runs.c.lead_key.in_(keys)
                for run_id, count in conn.execute(sa.select(lead_runs.c.run_id, sa.func.count()).where(runs_where)
                                                  .group_by(lead_runs.c.run_id)):
                    per_run[run_id] = per_run.get(run_id, 0) + int(count)
                tables["lead_runs"] = int(conn.execute(sa.select(sa.func.count()).select_from(lead_runs)
                                                       .where(runs_where)).scalar_one())
                if not dry_run:
                    conn.execute(lead_runs.delete().where(runs_where))
            for table, where in plan:
                if "run_id" in table.c and table.name in ("lead_events", "quarantine"):
                    query = sa.select(table.c.run_id, sa.func.count()).where(where).group_by(table.c.run_id)
                    for run_id, count in conn.execute(query):
                        per_run[run_id] = per_run.get(run_id, 0) + int(count)
                count = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
                tables[table.name] = int(count)
                if not dry_run and count:
                    conn.execute(table.delete().where(where))
            removed = sum(tables.values())
            tombstone = f"erased:{digest}"
            if not dry_run:
                now = _now()
                run_id = str(uuid.uuid4())
                conn.execute(runs.insert().values(
                    run_id=run_id, flow="forget", started_at=now, finished_at=now, status="completed",
                    params={"subject": tombstone}, stats=_jsonable({"removed": removed, "tables": tables})))
                conn.execute(lead_events.insert().values(
                    run_id=run_id, lead_key=tombstone, stage="forget", column_name="erased",
                    old_value=_json_dumps({"per_run": per_run, "tables": tables}), new_value=str(removed), at=now))
        return {"tables": tables, "per_run": per_run, "removed": removed, "tombstone": tombstone}

    def _forget_chunks(self, conn: Connection, keys: list[str], *, dry_run: bool) -> int:
        """Rewrite the audit chunks holding `keys` without their rows; returns the rows removed."""
        from leadflow.changes import repack

        ids = _chunk_ids(conn, {(r, c) for r, c in conn.execute(
            sa.select(lead_runs.c.run_id, lead_runs.c.chunk).where(lead_runs.c.lead_key.in_(keys)))})
        removed = 0
        for start in range(0, len(ids), 500):
            query = sa.select(audit_chunks.c.id, audit_chunks.c.rows, audit_chunks.c.payload).where(
                audit_chunks.c.id.in_(ids[start : start + 500]))
            for chunk_id, rows, payload in conn.execute(query).all():
                kept, dropped = repack(payload, keys)
                removed += dropped
                if dry_run or not dropped:
                    continue
                if kept is None:
                    conn.execute(audit_chunks.delete().where(audit_chunks.c.id == chunk_id))
                else:
                    conn.execute(audit_chunks.update().where(audit_chunks.c.id == chunk_id)
                                 .values(payload=kept, rows=rows - dropped))
        return removed

    def prune_events(self, before: datetime, *, chunk_rows: int = 50_000) -> int:
        """Delete audit events older than `before` (timezone-aware), `chunk_rows` per transaction; returns the count."""
        return self._prune(lead_events, before, chunk_rows)

    def prune_changes(self, before: datetime, *, chunk_rows: int = 50_000) -> dict[str, int]:
        """Delete audit chunks and lead runs older than `before`; returns the rows deleted per table."""
        return {"audit_chunks": self._prune(audit_chunks, before, max(1, chunk_rows // 1_000)),
                "lead_runs": self._prune(lead_runs, before, chunk_rows)}

    def prune_quarantine(self, before: datetime, *, chunk_rows: int = 50_000) -> int:
        """Delete quarantine rows older than `before`, `chunk_rows` per transaction; returns the count."""
        return self._prune(quarantine, before, chunk_rows)

    def count_older(self, before: datetime) -> dict[str, int]:
        """How many audit events and quarantine rows are older than `before` (what a prune would delete)."""
        _require_aware(before, "before")
        with self._engine.connect() as conn:
            return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.at < before))
                                .scalar_one()) for t in (lead_events, audit_chunks, lead_runs, quarantine)}

    def _prune(self, table: sa.Table, before: datetime, chunk_rows: int) -> int:
        _require_aware(before, "before")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be positive")
        deleted = 0
        while True:
            chunk = sa.select(table.c.id).where(table.c.at < before).limit(chunk_rows).scalar_subquery()
            with self._writing() as conn:
                done = conn.execute(table.delete().where(table.c.id.in_(chunk))).rowcount or 0
            deleted += done
            if done < chunk_rows:
                return deleted

    # -- internals ---------------------------------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A connection inside a write transaction, committed on success and rolled back on any exception."""
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def _rows(self, query: sa.Select[Any], columns: list[str]) -> pd.DataFrame:
        with self._engine.connect() as conn:
            return pd.DataFrame.from_records(conn.execute(query).all(), columns=columns)

    def _read_frame(self, query: sa.Select[Any], columns: list[str]) -> pd.DataFrame:
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=columns)
        frame["id"] = frame["id"].astype("int64")
        frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[us, UTC]")
        return frame


# -- connection setup ------------------------------------------------------------------------------------------------


def _normalise_url(url: URL) -> URL:
    """Refuse backends the store is not built for; a bare `postgresql://` URL means psycopg 3, the driver installed."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        return url
    hidden = url.render_as_string(hide_password=True)
    raise StoreError(f"unsupported state store URL {hidden}: use sqlite:///<path> or postgresql+psycopg://...")


def _create_schema(conn: Connection, schema: str) -> None:
    # look first: CREATE SCHEMA IF NOT EXISTS still needs CREATE on the database, which a deploy user may lack
    exists = conn.execute(sa.text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}).first()
    if exists is None:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")


def _make_sqlite_parent(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _make_engine(url: URL, schema: str | None) -> Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, json_serializer=_json_dumps)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        # via search_path, so unqualified names, COPY and Alembic's version table all land in the schema
        connect_args["options"] = f"-csearch_path={schema}"
    return sa.create_engine(url, json_serializer=_json_dumps, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module (it skips BEGIN before DDL and defers it before DML);
    # `_sqlite_on_begin` then issues BEGIN itself, which makes migrations and bulk writes all-or-nothing.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers (the CLI, a dashboard) do not block the flow that writes, nor the reverse
        cursor.execute("PRAGMA journal_mode = WAL")
        # durable at each checkpoint rather than each commit; with WAL a crash cannot corrupt, only lose the tail
        cursor.execute("PRAGMA synchronous = NORMAL")
        # 64 MB of page cache: a million-lead run's audit index otherwise re-reads its B-tree pages from disk
        cursor.execute(f"PRAGMA cache_size = {SQLITE_CACHE_KIB}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so concurrent writers wait on busy_timeout instead of failing
    # with SQLITE_BUSY when a deferred read transaction tries to upgrade to a write.
    immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's statement dump and background link."""
    orig = getattr(exc, "orig", None)
    return f"{type(orig or exc).__name__}: {str(orig or exc).strip()}"


# -- bulk event writers ----------------------------------------------------------------------------------------------


def _event_chunks(events: pd.DataFrame, at: pd.Series, *, sqlite_times: bool) -> Iterator[list[tuple[Any, ...]]]:
    """Rows as tuples in `EVENT_COLUMNS` order, `EVENT_CHUNK_ROWS` at a time; values are str or None.

    `at` is pre-formatted text: SQLAlchemy's SQLite storage format (naive UTC, so text order is time order), or
    the same with `+00` for PostgreSQL; formatting in Arrow is ~10x faster than per-row `datetime` objects.
    """
    for start in range(0, len(events), EVENT_CHUNK_ROWS):
        stop = start + EVENT_CHUNK_ROWS
        chunk = events.iloc[start:stop]
        columns: list[list[str | None]] = [_texts(chunk[column]) for column in EVENT_COLUMNS[:-1]]
        columns.append(list(_time_texts(at.iloc[start:stop], naive=sqlite_times)))
        yield list(zip(*columns, strict=True))


def _executemany_events(conn: Connection, events: pd.DataFrame, at: pd.Series) -> None:
    # The Core INSERT compiled once and run as DBAPI executemany with plain tuples: SQLAlchemy's per-row bind
    # processing (a dict and a datetime per row) made the same insert 3.5x slower (68k vs 245k rows/s).
    sql = str(lead_events.insert().compile(dialect=conn.dialect, column_keys=list(EVENT_COLUMNS)))
    for rows in _event_chunks(events, at, sqlite_times=True):
        conn.exec_driver_sql(sql, rows)


def _chunk_ids(conn: Connection, pairs: set[tuple[str, int]]) -> list[int]:
    """Ids of the audit chunks at these (run_id, chunk) places. Looked up by run_id on the (run_id, chunk) index
    and matched here: SQLite's planner does not take a row-value IN list to an index, and a scan of the table would
    read past every payload."""
    runs_wanted = sorted({run_id for run_id, _ in pairs})
    ids: list[int] = []
    for start in range(0, len(runs_wanted), 500):
        query = sa.select(audit_chunks.c.id, audit_chunks.c.run_id, audit_chunks.c.chunk).where(
            audit_chunks.c.run_id.in_(runs_wanted[start : start + 500]))
        ids += [chunk_id for chunk_id, run_id, chunk in conn.execute(query) if (run_id, chunk) in pairs]
    return sorted(ids)


def _insert_lead_runs(conn: Connection, run_id: str, at: datetime, leads: pd.DataFrame) -> None:
    stamp = UTCDateTime().process_bind_param(at, conn.dialect)
    assert stamp is not None
    postgres = conn.dialect.name == "postgresql"
    # the text each driver would have bound: SQLAlchemy's SQLite format (naive UTC), or ISO with offset for COPY
    when = stamp.isoformat(sep=" ") if postgres else stamp.isoformat(sep=" ", timespec="microseconds")
    # in key order: the lead_key index then takes a run of neighbouring entries, not a million scattered ones
    leads = leads.iloc[_text_order(leads["lead_key"])]
    email = leads["email"].astype("string").str.strip().str.lower()
    email = email.where(email.str.len() <= MAX_INDEXED_EMAIL)
    table = pa.table({
        "lead_key": pa.array(leads["lead_key"].astype("string"), type=pa.large_string()),
        "run_id": pa.repeat(pa.scalar(run_id, pa.large_string()), len(leads)),
        "chunk": pa.array(leads["chunk"].astype("int64")),
        "email": pa.array(email, type=pa.large_string()),
        "created_at": pa.array(leads["created_at"].astype("string"), type=pa.large_string()),
        "lead_source": pa.array(leads["lead_source"].astype("string"), type=pa.large_string()),
        "at": pa.repeat(pa.scalar(when, pa.large_string()), len(leads)),
    }).select(list(LEAD_RUN_COLUMNS))
    if postgres:
        _copy_csv(conn, lead_runs, table)
        return
    sql = str(lead_runs.insert().compile(dialect=conn.dialect, column_keys=list(LEAD_RUN_COLUMNS)))
    for batch in table.to_batches(EVENT_CHUNK_ROWS):
        conn.exec_driver_sql(sql, list(zip(*(column.to_pylist() for column in batch.columns), strict=True)))


def _copy_csv(conn: Connection, target: sa.Table, table: pa.Table) -> None:
    """COPY an Arrow table in CSV, written by Arrow: a null is an unquoted empty field, which COPY reads as NULL, and
    an empty string is quoted; ~5x faster than a Python `write_row` per row."""
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column) for column in table.column_names)
    sql = f"COPY {preparer.format_table(target)} ({names}) FROM STDIN WITH (FORMAT csv)"
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    dbapi_connection = conn.connection.driver_connection
    assert dbapi_connection is not None
    with dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
        for batch in table.to_batches(EVENT_CHUNK_ROWS):
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(pa.Table.from_batches([batch]), sink, options)
            copy.write(sink.getvalue().to_pybytes())


def _text_order(values: pd.Series) -> np.ndarray:
    order: np.ndarray = pc.sort_indices(pa.array(values.astype("string"), type=pa.large_string())).to_numpy()
    return order


def _copy_events(conn: Connection, events: pd.DataFrame, at: pd.Series) -> None:
    for rows in _event_chunks(events, at, sqlite_times=False):
        _copy_rows(conn, lead_events, EVENT_COLUMNS, rows)


def _copy_rows(conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    # COPY on the DBAPI connection SQLAlchemy already holds, so it shares the open transaction.
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column) for column in columns)
    sql = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    dbapi_connection = conn.connection.driver_connection
    assert dbapi_connection is not None
    with dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


# -- value conversion ------------------------------------------------------------------------------------------------


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
        frame = pd.DataFrame.from_records(rows, columns=columns)
        for column in ("assigned_at", "sla_due_at", "first_touch_at", "breached_at", "written_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

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


def _upsert(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: list[sa.Column[Any]],
    on_conflict: Callable[[Any], dict[str, Any]],
) -> None:
    """INSERT … ON CONFLICT DO UPDATE on PostgreSQL and SQLite; `on_conflict(excluded)` gives the SET clause."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table)
    conn.execute(
        statement.on_conflict_do_update(index_elements=keys, set_=on_conflict(statement.excluded)), rows
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; expected {list(columns)}")


def _texts(values: pd.Series) -> list[str | None]:
    """Values as Python str, missing (None/NaN/NA) as None; goes through Arrow, which is fast for millions."""
    texts: list[str | None] = pa.array(values.astype("string"), type=pa.large_string()).to_pylist()
    return texts


def _utc_times(values: pd.Series, what: str) -> pd.Series:
    """`values` as `datetime64[us, UTC]`; naive or missing times are refused rather than guessed."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        raise ValueError(f"{what} must be timezone-aware; got naive {values.dtype}")
    else:
        try:
            parsed = pd.to_datetime(values, format="ISO8601")
        except (ValueError, TypeError):
            # mixed UTC offsets cannot share one dtype until normalised
            parsed = pd.to_datetime(values, format="ISO8601", utc=True)
        if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
            raise ValueError(f"{what} must be timezone-aware; got values without a UTC offset")
    if parsed.isna().any():
        raise ValueError(f"{what} has {int(parsed.isna().sum())} missing value(s)")
    return parsed.dt.tz_convert("UTC").dt.floor("us").astype("datetime64[us, UTC]")


def _time_texts(values: pd.Series, *, naive: bool) -> list[str]:
    text = pa.array(values.dt.tz_localize(None).to_numpy("datetime64[us]")).cast(pa.string())
    if not naive:
        # appended as text: Arrow's own tz-aware formatting is ~8x slower
        text = pc.binary_join_element_wise(text, "+00", "")
    result: list[str] = text.to_pylist()
    return result


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def _row_json(row: Any, position: int) -> dict[str, str | None]:
    if isinstance(row, pd.Series):
        row = row.to_dict()
    if not isinstance(row, Mapping):
        raise ValueError(f"quarantine rows: `row` at position {position} is a {type(row).__name__}, not a dict")
    return {str(key): _cell_text(value) for key, value in row.items()}


def _jsonable(value: Any) -> Any:
    """`value` with numpy/pandas scalars, datetimes, paths and NaN made JSON-safe (PostgreSQL's json refuses NaN)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series, pd.Index)):
        return [_jsonable(item) for item in (value.tolist() if hasattr(value, "tolist") else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    return value


def _json_dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False, default=str)


# -- trace, erasure, retention helpers -------------------------------------------------------------------------------


def _email_variants(email: str) -> list[str]:
    raw = email.strip()
    return list(dict.fromkeys(v for v in (raw, raw.lower()) if v))


def _json_text(column: sa.ColumnElement[Any], key: str) -> sa.ColumnElement[Any]:
    """`column[key]` as text on both backends (json_extract on SQLite, ->> on PostgreSQL)."""
    return column[key].as_string()


def _quarantine_match(keys: list[str], email: str | None) -> sa.ColumnElement[bool]:
    clauses: list[sa.ColumnElement[bool]] = []
    if keys:
        clauses.append(quarantine.c.lead_key.in_(keys))
    if email:
        clauses.append(_json_text(quarantine.c.row, "email").in_(_email_variants(email)))
    return sa.or_(*clauses) if clauses else sa.false()


def _mappings(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(query).mappings()]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _key_prefixes(conn: Connection, column: sa.Column[Any], limit: int = 1_000) -> list[str] | None:
    """The distinct `<prefix>` of `<prefix>:<rest>` keys by index seeks, or None when the collation defeats it."""
    prefixes: list[str] = []
    bound: str | None = None
    for _ in range(limit):
        query = sa.select(sa.func.min(column)).where(column.is_not(None))
        if bound is not None:
            query = query.where(column >= bound)
        key = conn.execute(query).scalar_one_or_none()
        if key is None:
            return prefixes
        prefix = key.split(":", 1)[0]
        if prefix in prefixes:
            return None
        prefixes.append(prefix)
        bound = prefix + ";"  # the first key after every `<prefix>:…` in a byte-order collation
    return None


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
