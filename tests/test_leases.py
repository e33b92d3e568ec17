"""Writer leases in the state store (SQLite and PostgreSQL): one holder, waiting, take-over of a dead holder, fencing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadflow.store import StateStore
from leadflow.store.leases import LeaseBusy, LeaseLost, hold, writer_lease_name
from leadflow.store.tables import leases as leases_table
from tests.fakes import lease_holder_process
from tests.dbs import backend_params, clear_tables, postgres_schema_url, sqlite_url

NAME = writer_lease_name("salesforce")


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=backend_params())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_module_url")
    with StateStore.open(url) as store:
        clear_tables(store.engine)
    yield url


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    with StateStore.open(store_url) as opened:
        yield opened


def test_one_holder_at_a_time_and_release_frees_it(store: StateStore) -> None:
    leases = store.leases()
    first = leases.try_acquire(NAME, run_id="run-a", flow="crm_sync", seconds=60)
    assert first.lease is not None
    second = leases.try_acquire(NAME, run_id="run-b", flow="lead_backfill", seconds=60)
    assert second.lease is None and second.holder is not None and second.holder.run_id == "run-a"
    first.lease.release()
    third = leases.try_acquire(NAME, run_id="run-b", flow="lead_backfill", seconds=60)
    assert third.lease is not None and third.took_over is None


def test_a_second_run_waits_then_names_the_holder(store: StateStore) -> None:
    held = store.leases().try_acquire(NAME, run_id="run-a", flow="crm_sync", seconds=60)
    assert held.lease is not None
    waited_for = []
    with pytest.raises(LeaseBusy) as busy, hold(store.leases(), NAME, run_id="run-b", flow="crm_sync",
                                                 wait_seconds=0.3, on_wait=waited_for.append):
        pass
    message = str(busy.value)
    assert message.startswith("salesforce is being written by run run-a (crm_sync, pid ")
    assert "waited 0 s" in message and "\n" not in message
    assert [h.run_id for h in waited_for] == ["run-a"]


def test_a_waiting_run_gets_the_lease_once_released(store: StateStore) -> None:
    import threading

    held = store.leases().try_acquire(NAME, run_id="run-a", flow="crm_sync", seconds=60)
    assert held.lease is not None
    got: list[str] = []
    refused = threading.Event()

    def second() -> None:
        with hold(store.leases(), NAME, run_id="run-b", flow="crm_sync", wait_seconds=30,
                  on_wait=lambda holder: refused.set()) as lease:
            got.append(lease.run_id or "")

    waiter = threading.Thread(target=second)
    waiter.start()
    assert refused.wait(timeout=10)  # it found run-a holding the lease and waits
    assert not got
    held.lease.release()
    waiter.join(timeout=30)
    assert got == ["run-b"]
    assert store.leases().holder(NAME) is None  # released at the end of the block


def test_a_killed_holder_is_taken_over_at_once_and_its_run_marked_crashed(store_url: str, store: StateStore) -> None:
    proc, dead_run = lease_holder_process(store_url, NAME)
    try:
        busy = store.leases().try_acquire(NAME, run_id="run-b", flow="crm_sync", seconds=60)
        assert busy.lease is None and busy.holder is not None and busy.holder.pid == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        got = store.leases().try_acquire(NAME, run_id="run-b", flow="crm_sync", seconds=60)
        assert got.lease is not None and got.took_over is not None and got.took_over.run_id == dead_run
        run = store.get_run(dead_run)
        assert run is not None and run["status"] == "crashed" and run["finished_at"] is not None
        assert "its process is gone" in run["error"] and "taken over by run run-b" in run["error"]
    finally:
        proc.kill()


def test_an_expired_lease_of_another_host_is_taken_over(store: StateStore) -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    run_id = store.start_run("crm_sync", {})
    with store.engine.begin() as conn:
        conn.execute(leases_table.insert().values(
            name=NAME, token="t-old", run_id=run_id, flow="crm_sync", host="elsewhere", pid=1, acquired_at=past,
            heartbeat_at=past, expires_at=past + timedelta(seconds=120)))
    got = store.leases().try_acquire(NAME, run_id="run-b", flow="crm_sync", seconds=60)
    assert got.lease is not None and got.took_over is not None
    run = store.get_run(run_id)
    assert run is not None and run["status"] == "crashed" and "its lease expired" in run["error"]


def test_a_live_lease_of_another_host_is_not_taken_over(store: StateStore) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(leases_table.insert().values(
            name=NAME, token="t-live", run_id="run-x", flow="crm_sync", host="elsewhere", pid=1, acquired_at=now,
            heartbeat_at=now, expires_at=now + timedelta(seconds=120)))
    got = store.leases().try_acquire(NAME, run_id="run-b", flow="crm_sync", seconds=60)
    assert got.lease is None and got.holder is not None and got.holder.host == "elsewhere"


def test_a_taken_over_holder_may_not_write_again(store: StateStore) -> None:
    past = datetime.now(UTC) - timedelta(minutes=10)
    first = store.leases().try_acquire(NAME, run_id="run-a", flow="crm_sync", seconds=60)
    assert first.lease is not None
    first.lease.ensure()  # still ours
    with store.engine.begin() as conn:  # as if run-a stalled for ten minutes
        conn.execute(leases_table.update().values(expires_at=past))
    second = store.leases().try_acquire(NAME, run_id="run-b", flow="crm_sync", seconds=60)
    assert second.lease is not None
    with pytest.raises(LeaseLost, match="now held by run run-b"):
        first.lease.ensure()
    assert first.lease.renew() is False
    first.lease.release()  # releasing a lost lease leaves the new holder's alone
    assert store.leases().holder(NAME).run_id == "run-b"  # type: ignore[union-attr]


def test_the_heartbeat_keeps_a_short_lease_alive(store: StateStore) -> None:
    with hold(store.leases(), NAME, run_id="run-a", flow="crm_sync", lease_seconds=0.4) as lease:
        first = store.leases().holder(NAME)
        assert first is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = store.leases().holder(NAME)
            if now is not None and now.heartbeat_at > first.heartbeat_at:
                break
        assert now is not None and now.heartbeat_at > first.heartbeat_at and now.token == lease.token
        lease.ensure()


def test_a_child_joins_its_parents_lease(store: StateStore) -> None:
    with hold(store.leases(), NAME, run_id="parent", flow="lead_backfill") as parent:
        with hold(store.leases(), NAME, run_id="chunk", flow="crm_sync", join=parent.token) as child:
            child.ensure()
        assert store.leases().holder(NAME).token == parent.token  # type: ignore[union-attr]  # joining releases nothing
    with pytest.raises(LeaseLost), hold(store.leases(), NAME, run_id="chunk", flow="crm_sync", join=parent.token):
        pass


def test_a_killed_run_does_not_stay_running(store_url: str, store: StateStore) -> None:
    proc, dead_run = lease_holder_process(store_url, NAME)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    alive = store.start_run("crm_sync", {})  # the next run on this host sweeps it
    assert store.get_run(dead_run)["status"] == "crashed"  # type: ignore[index]
    assert store.get_run(alive)["status"] == "running"  # type: ignore[index]  # this process is alive
