"""Shared fixtures: one session-scoped Prefect harness; an isolated state home per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A Prefect test server for the whole session (started once: ~15 s); yields its API URL."""
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(get_current_settings().api.url)


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point leadflow's embedded state (SQLite) at a fresh folder."""
    home = tmp_path / ".leadflow"
    monkeypatch.setenv("LEADFLOW_HOME", str(home))
    monkeypatch.delenv("LEADFLOW_DATABASE_URL", raising=False)
    return home


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL into a fresh PostgreSQL schema, dropped afterwards (fails under CI when PostgreSQL is unreachable)."""
    from tests.dbs import postgres_schema_url, require_postgres

    require_postgres()
    with postgres_schema_url() as url:
        yield url
