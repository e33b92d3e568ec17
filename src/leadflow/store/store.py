"""`StateStore`, the state store's one face: runs, watermarks, quarantined rows, the per-field audit trail,
dead letters, routing and per-lead state on SQLite or PostgreSQL.

The class is assembled from one mixin per table group (see `leadflow.store`); this module keeps opening, migrating
and closing the store, and the audit trail's bulk write path (`add_events`, `add_changes`: COPY on PostgreSQL,
executemany elsewhere) with its chunk size `EVENT_CHUNK_ROWS`. It re-exports every name it used to define.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from alembic import command
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine, make_url

from leadflow.pipeline.settings import Settings
from leadflow.store.audit_trail import AuditTrailMixin
from leadflow.store.bulk import copy_csv, executemany_insert, texts
from leadflow.store.dead_letters import DeadLettersMixin
from leadflow.store.first_touches import FirstTouchMixin
from leadflow.store.inbox import InboxMixin
from leadflow.store.engine import (
    _MIGRATION_LOCK,
    _SCHEMA_NAME,
    MIGRATIONS_DIR,
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_CACHE_KIB,
    StoreError,
    _create_schema,
    _make_engine,
    _make_sqlite_parent,
    _normalise_url,
    _reason,
    alembic_config,
)
from leadflow.store.lead_state import LIFECYCLE_STAMPS, STATE_SCAN_KEYS, LeadStateMixin
from leadflow.store.mirror import MirrorMixin
from leadflow.store.leases import Leases
from leadflow.store.receipts import ReceiptsMixin
from leadflow.store.routing import ROUTING_STATE, RoutingMixin, RoutingSession
from leadflow.store.runs import QUARANTINE_CHUNK_ROWS, RunsMixin
from leadflow.store.tables import EVENT_COLUMNS, LEAD_RUN_COLUMNS, UTCDateTime, audit_chunks, lead_events, lead_runs
from leadflow.store.values import (
    _copy_rows,
    CACHE_CHUNK_KEYS,
    STATE_CHUNK_ROWS,
    _require_aware,
    _require_columns,
    _texts,
    _time_texts,
    _utc_times,
)

if TYPE_CHECKING:
    from leadflow.audit.changes import ChangeChunk

__all__ = [
    "CACHE_CHUNK_KEYS",
    "EVENT_CHUNK_ROWS",
    "LIFECYCLE_STAMPS",
    "MAX_INDEXED_EMAIL",
    "MIGRATIONS_DIR",
    "QUARANTINE_CHUNK_ROWS",
    "ROUTING_STATE",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_CACHE_KIB",
    "STATE_CHUNK_ROWS",
    "STATE_SCAN_KEYS",
    "RoutingSession",
    "StateStore",
    "StoreError",
    "alembic_config",
]

log = logging.getLogger(__name__)

EVENT_CHUNK_ROWS: Final[int] = 100_000
"""Events converted and sent per round trip: bounds the Python objects alive at once to one chunk, not 10M rows."""
MAX_INDEXED_EMAIL: Final[int] = 320
"""Longer `email` values (garbage in a form field) are not kept in `lead_runs`; an index entry must stay small."""
_EVENT_KEY_COLUMNS: Final[tuple[str, ...]] = ("run_id", "lead_key", "stage", "column_name")


class StateStore(RunsMixin, AuditTrailMixin, DeadLettersMixin, RoutingMixin, LeadStateMixin, MirrorMixin,
                 ReceiptsMixin, InboxMixin, FirstTouchMixin):
    """Run history, watermarks, quarantine, lead audit events, dead letters, routing and lead state in one SQL database.

    Open with `StateStore.open()`; every public write runs in a single transaction, so a failed call leaves nothing.
    The methods of each table group come from its mixin: `RunsMixin`, `AuditTrailMixin`, `DeadLettersMixin`,
    `RoutingMixin`, `LeadStateMixin`.
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

    # -- writer leases -----------------------------------------------------------------------------------------------

    def leases(self) -> Leases:
        """The writer leases (`leadflow.store.leases`): one writer per system at a time."""
        return Leases(self._engine, self._writing)

    # -- audit trail, bulk writes (reads, trace, erasure, retention: `leadflow.store.audit_trail`) ---------------------

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

    def add_changes(
        self, run_id: str, stage: str, at: datetime, chunks: list[ChangeChunk], leads: pd.DataFrame | None = None
    ) -> int:
        """Store a stage's before/after chunks (`leadflow.audit.changes.pack_changes`) and, from a page's first stage, the
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


# -- bulk writers ----------------------------------------------------------------------------------------------------


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


def _insert_lead_runs(conn: Connection, run_id: str, at: datetime, leads: pd.DataFrame) -> None:
    stamp = UTCDateTime().process_bind_param(at, conn.dialect)
    assert stamp is not None
    postgres = conn.dialect.name == "postgresql"
    # the text each driver would have bound: SQLAlchemy's SQLite format (naive UTC), or ISO with offset for COPY
    when = stamp.isoformat(sep=" ") if postgres else stamp.isoformat(sep=" ", timespec="microseconds")
    email = leads["email"].astype("string").str.strip().str.lower()
    email = email.where(email.str.len() <= MAX_INDEXED_EMAIL)
    keys = texts(leads["lead_key"])
    # in key order: the lead_key index then takes a run of neighbouring entries, not a million scattered ones (one
    # `take` of Arrow columns, not a reordered copy of the frame)
    order = pc.sort_indices(keys)
    columns = {
        "lead_key": keys,
        "chunk": pa.array(leads["chunk"].astype("int64")),
        "email": texts(email),
        "created_at": texts(leads["created_at"]),
        "lead_source": texts(leads["lead_source"]),
    }
    table = pa.table({name: column.take(order) for name, column in columns.items()})
    if postgres:
        rows = len(table)
        table = table.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.large_string()), rows)).append_column(
            "at", pa.repeat(pa.scalar(when, pa.large_string()), rows)).select(list(LEAD_RUN_COLUMNS))
        copy_csv(conn, lead_runs, table)
        return
    # what every row shares (the run, the time) is written into the statement once, not bound per row
    executemany_insert(conn, lead_runs, table, {"run_id": run_id, "at": when})


def _copy_events(conn: Connection, events: pd.DataFrame, at: pd.Series) -> None:
    for rows in _event_chunks(events, at, sqlite_times=False):
        _copy_rows(conn, lead_events, EVENT_COLUMNS, rows)


