"""Databases for tests: SQLite files and throw-away PostgreSQL schemas.

Plain functions and context managers rather than conftest fixtures, so any test module (or conftest) can build its
own fixtures from them: `from tests.dbs import ...` (`tests` is a package; pytest puts the repo on sys.path).

PostgreSQL comes from `LEADFLOW_TEST_POSTGRES_URL` (default `postgresql+psycopg://postgres@127.0.0.1:5432/test`).
When it is unreachable, PostgreSQL tests fail if the `CI` environment variable is set, and skip otherwise.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from leadflow.store import metadata

POSTGRES_URL_ENV: Final[str] = "LEADFLOW_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL: Final[str] = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS: Final[tuple[str, ...]] = ("sqlite", "postgres")
SCHEMA_PREFIX: Final[str] = "lf_test"


def postgres_base_url() -> str:
    """The base PostgreSQL URL for tests (the database's default schema)."""
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def in_ci() -> bool:
    """True when `CI` is set to anything but an explicit false, as CI services do."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@functools.cache
def postgres_unreachable(url: str | None = None) -> str | None:
    """Why PostgreSQL cannot be used (URL shown without password), or None when it answers; checked once."""
    url = url or postgres_base_url()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable", and the reason is reported
        hidden = make_url(url).render_as_string(hide_password=True)
        orig = getattr(exc, "orig", None) or exc
        return f"PostgreSQL at {hidden} ({POSTGRES_URL_ENV}) is unreachable: {type(orig).__name__}: {orig}".strip()
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Fail (under CI) or skip (locally) the current test when the test PostgreSQL is unreachable."""
    reason = postgres_unreachable()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason}; CI is set, so PostgreSQL tests may not be skipped", pytrace=False)
    pytest.skip(reason)


def sqlite_url(folder: Path, name: str = "state.db") -> str:
    """A SQLite URL for a (new) database file in `folder`."""
    return f"sqlite:///{(folder / name).as_posix()}"


def with_search_path(url: str, schema: str) -> str:
    """`url` with `options=-csearch_path=<schema>`, so every unqualified name (and Alembic's table) lives there."""
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@contextmanager
def postgres_schema_url(base: str | None = None, prefix: str = SCHEMA_PREFIX) -> Iterator[str]:
    """Create an empty schema `<prefix>_<hex>`, yield a URL whose search_path is that schema, then drop it (CASCADE).

    Calls `require_postgres()` first, so it fails or skips like the other PostgreSQL helpers.
    """
    require_postgres()
    base = base or postgres_base_url()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        yield with_search_path(base, schema)
    finally:
        with admin.begin() as conn:
            # a connection left open by a test must not hang the session's teardown forever
            conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def backend_params() -> list[Any]:
    """`pytest.param`s for `BACKENDS`; the PostgreSQL one carries the `postgres` marker (`-m "not postgres"`)."""
    return [
        pytest.param(backend, id=backend, marks=[pytest.mark.postgres] if backend == "postgres" else [])
        for backend in BACKENDS
    ]


@contextmanager
def store_url(backend: str, folder: Path) -> Iterator[str]:
    """A URL to an empty, not yet migrated database: a SQLite file in `folder`, or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        yield sqlite_url(folder)
    elif backend == "postgres":
        with postgres_schema_url() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


def store_urls(name: str = "state_url") -> Callable[..., Iterator[str]]:
    """A pytest fixture named `name`, parametrized over `BACKENDS`, yielding `store_url(backend, tmp_path)`.

    Each test gets an empty database (a new PostgreSQL schema costs ~50 ms). Assign the result to a module-level
    name in a test module or conftest: `state_url = store_urls()`.
    """

    @pytest.fixture(name=name, params=backend_params())
    def _url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
        with store_url(request.param, tmp_path) as url:
            yield url

    return _url


def clear_tables(engine: sa.Engine) -> None:
    """Empty every state-store table (not the version table), so a per-session schema can be shared by tests."""
    tables = list(reversed(metadata.sorted_tables))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
        else:
            for table in tables:
                conn.execute(table.delete())
