"""The push-intake inbox in the state store, on SQLite and PostgreSQL: idempotent recording, claims (with the
re-claim of a stale one: the replay after a kill -9), completion and failure fenced by the claiming worker, and
concurrent claimers never sharing a row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from leadflow.store import StateStore
from leadflow.store.inbox import InboxNotification
from leadflow.store.inbox_tables import intake_inbox
from tests.dbs import backend_params, clear_tables, postgres_schema_url, sqlite_url

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=backend_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_module_url")
    with StateStore.open(url) as opened:
        clear_tables(opened.engine)
        yield opened


def _note(record_id: str, modstamp: str = "2026-12-01T10:00:00.000Z", system: str = "salesforce") -> InboxNotification:
    return InboxNotification(system, "Lead", record_id, modstamp, {"fields": {"Id": record_id}})


def test_recording_is_idempotent_on_system_record_and_modstamp(store: StateStore) -> None:
    assert store.record_notifications([_note("00Q1"), _note("00Q2"), _note("00Q1")], now=T0) == (2, 1)
    assert store.record_notifications([_note("00Q1"), _note("00Q1", "2026-12-01T10:05:00.000Z"),
                                       _note("00Q1", system="hubspot")], now=T0) == (2, 1)
    frame = store.inbox_notifications()
    assert list(zip(frame["system"], frame["record_id"], frame["modstamp"], strict=True)) == [
        ("salesforce", "00Q1", "2026-12-01T10:00:00.000Z"), ("salesforce", "00Q2", "2026-12-01T10:00:00.000Z"),
        ("salesforce", "00Q1", "2026-12-01T10:05:00.000Z"), ("hubspot", "00Q1", "2026-12-01T10:00:00.000Z")]
    assert set(frame["state"]) == {"pending"} and set(frame["attempts"]) == {0}
    assert frame["payload"].iloc[0] == {"fields": {"Id": "00Q1"}} and frame["received_at"].iloc[0] == T0
    assert store.record_notifications([]) == (0, 0)
    assert store.inbox_counts() == {"pending": 4, "claimed": 0, "done": 0, "failed": 0}
    assert store.inbox_counts("hubspot")["pending"] == 1


def test_a_bad_row_records_nothing(store: StateStore) -> None:
    for bad, match in ((_note(""), "no `record_id`"), (_note("00Q9", system="zoho"), "not one of"),
                       (_note("x" * 101), "longer than 100"), ({"system": "web", "object": "lead"}, "no `record_id`")):
        with pytest.raises(ValueError, match=match):
            store.record_notifications([_note("00Q1"), bad])
    assert store.inbox_counts()["pending"] == 0


def test_claim_complete_and_fail(store: StateStore) -> None:
    store.record_notifications([_note(f"00Q{i}") for i in range(5)], now=T0)
    first = store.claim_notifications("worker-a", 3, timedelta(minutes=5), now=T0)
    assert list(first["record_id"]) == ["00Q0", "00Q1", "00Q2"]
    assert set(first["state"]) == {"claimed"} and set(first["claimed_by"]) == {"worker-a"}
    assert set(first["attempts"]) == {1} and set(first["claimed_at"]) == {T0}
    rest = store.claim_notifications("worker-b", 10, 300, now=T0)
    assert list(rest["record_id"]) == ["00Q3", "00Q4"]
    assert store.claim_notifications("worker-c", 10, 300, now=T0).empty

    ids = [int(i) for i in first["id"]]
    assert store.complete_notifications(ids[:1], "worker-b") == 0  # not worker-b's claim
    assert store.complete_notifications(ids[:1], "worker-a") == 1
    assert store.fail_notifications(ids[1:2], "worker-a", "Salesforce 503", retry=True) == 1
    assert store.fail_notifications(ids[2:3], "worker-a", "record deleted", retry=False) == 1
    assert store.complete_notifications(ids, "worker-a") == 0  # none of them is claimed any more
    assert store.inbox_counts() == {"pending": 1, "claimed": 2, "done": 1, "failed": 1}

    retried = store.claim_notifications("worker-c", 10, 300, now=T0)
    assert list(retried["record_id"]) == ["00Q1"] and retried["attempts"].iloc[0] == 2
    assert retried["error"].iloc[0] == "Salesforce 503"
    failed = store.inbox_notifications(state="failed")
    assert list(failed["record_id"]) == ["00Q2"] and failed["error"].iloc[0] == "record deleted"
    # delivered again after it was processed: a duplicate, and it stays done
    assert store.record_notifications([_note("00Q0")]) == (0, 1)
    assert store.inbox_counts()["done"] == 1
    with pytest.raises(ValueError, match="limit"):
        store.claim_notifications("worker-c", 0, 300)


def test_a_stale_claim_is_claimed_again_and_the_old_worker_is_fenced(store: StateStore) -> None:
    store.record_notifications([_note("00Q1"), _note("00Q2")], now=T0)
    killed = store.claim_notifications("worker-killed", 10, timedelta(seconds=60), now=T0)
    assert len(killed) == 2
    # 59 s later the claim is still fresh; at 61 s its worker is presumed dead and the rows are replayed
    assert store.claim_notifications("worker-new", 10, timedelta(seconds=60), now=T0 + timedelta(seconds=59)).empty
    replay = store.claim_notifications("worker-new", 1, timedelta(seconds=60), now=T0 + timedelta(seconds=61))
    assert list(replay["record_id"]) == ["00Q1"] and replay["claimed_by"].iloc[0] == "worker-new"
    assert replay["attempts"].iloc[0] == 2
    ids = [int(i) for i in killed["id"]]
    assert store.complete_notifications(ids, "worker-killed") == 1  # only 00Q2 is still its claim
    assert store.complete_notifications([int(replay["id"].iloc[0])], "worker-new") == 1
    assert store.inbox_counts() == {"pending": 0, "claimed": 0, "done": 2, "failed": 0}


def test_claims_by_system(store: StateStore) -> None:
    store.record_notifications([_note("1", system="hubspot"), _note("2", system="web"), _note("3")], now=T0)
    claimed = store.claim_notifications("w", 10, 300, now=T0, systems=["web", "salesforce"])
    assert sorted(claimed["system"]) == ["salesforce", "web"]


def test_concurrent_claimers_never_share_a_row(store: StateStore) -> None:
    store.record_notifications([_note(f"00Q{i:03}") for i in range(120)], now=T0)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            mine: list[int] = []
            while True:
                batch = store.claim_notifications(worker, 7, 300)
                if batch.empty:
                    break
                mine += [int(i) for i in batch["id"]]
                store.complete_notifications(mine[-len(batch):], worker)
            claimed[worker] = mine
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    every = [i for ids in claimed.values() for i in ids]
    assert len(every) == len(set(every)) == 120
    assert store.inbox_counts() == {"pending": 0, "claimed": 0, "done": 120, "failed": 0}


@pytest.mark.postgres
def test_postgres_claims_skip_rows_locked_by_another_claimer(postgres_url: str) -> None:
    with StateStore.open(postgres_url) as store:
        store.record_notifications([_note("00Q1"), _note("00Q2"), _note("00Q3")], now=T0)
        with store.engine.connect() as other:
            other.begin()
            # another processor is in the middle of claiming the oldest row
            other.execute(sa.select(intake_inbox.c.id).where(intake_inbox.c.record_id == "00Q1").with_for_update())
            result: list[list[str]] = []
            thread = threading.Thread(target=lambda: result.append(
                list(store.claim_notifications("w", 10, 300)["record_id"])))
            thread.start()
            thread.join(30)
            assert not thread.is_alive(), "the claim waited for the locked row instead of skipping it"
            other.rollback()
        assert result == [["00Q2", "00Q3"]]
        assert list(store.claim_notifications("w", 10, 300)["record_id"]) == ["00Q1"]


def test_retention_deletes_settled_notifications_only(store: StateStore) -> None:
    from datetime import UTC, datetime, timedelta

    from leadflow.store.inbox import InboxNotification

    store.record_notifications([InboxNotification("hubspot", "contact", str(i), "1") for i in range(1, 5)])
    claimed = store.claim_notifications("w", 3, 60)
    ids = sorted(int(i) for i in claimed["id"])
    store.complete_notifications(ids[:1], "w")
    store.fail_notifications(ids[1:2], "w", "bad", retry=False)   # 1 done, 1 failed, 1 claimed, 1 pending
    later = datetime.now(UTC) + timedelta(days=1)
    assert store.prune_inbox(later, dry_run=True) == 2
    assert store.prune_inbox(datetime.now(UTC) - timedelta(days=1)) == 0  # received after `before`
    assert store.prune_inbox(later, chunk_rows=1) == 2
    assert store.inbox_counts() == {"pending": 1, "claimed": 1, "done": 0, "failed": 0}
