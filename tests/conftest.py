"""Shared fixtures: one session-scoped Prefect harness; an isolated state home per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Salesforce sandbox for a module's connector tests: `LEADS` leads, runs of 250 equal stamps, pages of 200."""
    from leadflow.sandbox.salesforce import running_salesforce

    leads = getattr(request.module, "LEADS", 600)
    with running_salesforce(tmp_path_factory.mktemp("sf"), leads=leads, stamp_run=250, page_size=200) as running:
        yield running


@pytest.fixture
def _reset_sandbox(sandbox: Any) -> None:
    """Each test starts with no pending faults and a fresh API allowance."""
    sandbox.faults.clear()
    sandbox.org.set_limits(max_calls=100_000, used=0)
