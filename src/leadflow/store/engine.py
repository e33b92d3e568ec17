"""Opening the state store: the Alembic config, URL and engine setup per backend, and `StoreBase`, the engine and
write transactions every table group's mixin works through."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from leadflow.pipeline.errors import LeadflowError
from leadflow.store.values import _json_dumps

MIGRATIONS_DIR: Final[Path] = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final[int] = 30_000
SQLITE_CACHE_KIB: Final[int] = -65_536
SQLITE_PAGE_SIZE: Final[int] = 16_384
"""Page size of a new SQLite store (an existing one keeps its own). A file run inserts each chunk's leads into several
tables with random-key indexes (lead key, e-mail), so each commit rewrites most of their leaf pages: 16 KiB pages
took 20 % off the audit trail's and lifecycle state's CPU at 1M leads (replay of a 1M run's calls: 17.0 -> 13.6 s)
against the 4 KiB default; larger pages gained little more and cost small writes (intake) more WAL per page."""

_WRITE_OPTION: Final[str] = "leadflow_write"
_MIGRATION_LOCK: Final[int] = 0x1EAD_F10E
"""Advisory lock key that serialises concurrent `upgrade()` calls on one PostgreSQL database."""
_SCHEMA_NAME: Final[re.Pattern[str]] = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


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


class StoreBase:
    """The engine and its transactions, shared by the mixins `StateStore` is made of (one per table group)."""

    _engine: Engine

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
        # before WAL: a page size takes effect only on a database with no tables yet, and not once it is in WAL
        cursor.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
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
