"""The Prefect server on PostgreSQL: `prefect server start` with PREFECT_SERVER_DATABASE_CONNECTION_URL pointing at
a throw-away database, a flow run against it, its state read back through the client and straight from PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.dbs import postgres_base_url, require_postgres
from tests.test_alerts import api, running_prefect_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def prefect_database() -> Iterator[str]:
    """A fresh database `leadflow_prefect_<random>` on the test PostgreSQL, dropped afterwards; yields its asyncpg
    URL (the driver the Prefect server uses)."""
    require_postgres()
    base = make_url(postgres_base_url())
    name = f"leadflow_prefect_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_prefect_server_on_postgres(prefect_database: str, tmp_path: Path) -> None:
    from prefect import flow, task
    from prefect.client.orchestration import get_client

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(name="leadflow-postgres-check")
    def check(x: int) -> int:
        return double(x) + 1

    env = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_database}
    with running_prefect_server(tmp_path / "prefect", env) as url, api(url):
        state = check(20, return_state=True)
        assert state.is_completed() and state.result() == 41
        flow_run_id = state.state_details.flow_run_id
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            assert run.state is not None and run.state.is_completed()
            assert run.parameters == {"x": 20}
            assert client.read_flow(run.flow_id).name == "leadflow-postgres-check"
            task_runs = client.read_task_runs()
            assert [t.state.type.value for t in task_runs if t.flow_run_id == flow_run_id] == ["COMPLETED"]

    # The run really lives in PostgreSQL, not in a SQLite file under PREFECT_HOME.
    sync_url = make_url(prefect_database).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(sync_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT state_type FROM flow_run WHERE id = :id"),
                                  {"id": str(flow_run_id)}).scalar_one()
    finally:
        engine.dispose()
    assert stored == "COMPLETED"
    assert not list((tmp_path / "prefect").glob("*.db"))
