"""The intake processor: micro-batches closing by count and by time (injected clock, no sleeping), claims replayed
after a crash, a busy writer leaving notifications pending; and, against the sandboxes, notifications from
Salesforce, HubSpot, Marketo and a web form processed through crm_sync's page path — fetched by id in one call per
batch, routed, written back, audited like the sync — with duplicates and already-synced records routed once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from leadflow.intake.batches import BatchOutcome
from leadflow.intake.config import BatchSettings, Processing
from leadflow.intake.processor import Processor
from leadflow.store import StateStore
from leadflow.store.inbox import InboxNotification


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def note(system: str, record_id: str, stamp: str = "1", payload: dict[str, Any] | None = None) -> InboxNotification:
    obj = {"salesforce": "Lead", "hubspot": "contact", "marketo": "lead", "web": "lead"}[system]
    return InboxNotification(system, obj, record_id, stamp, payload or {})


class Recorder:
    """A batch handler that settles everything and remembers what it was given."""

    def __init__(self) -> None:
        self.batches: list[pd.DataFrame] = []

    def __call__(self, rows: pd.DataFrame) -> BatchOutcome:
        self.batches.append(rows)
        outcome = BatchOutcome()
        outcome.settle(rows["id"])
        return outcome


def settings(n: int = 5, wait_ms: int = 500, **more: Any) -> Processing:
    return Processing(batch=BatchSettings(max_notifications=n, max_wait_ms=wait_ms), **more)


@pytest.fixture
def store(state_home: Path) -> Iterator[StateStore]:
    with StateStore.open() as opened:
        yield opened


def test_a_batch_closes_after_max_wait_ms_from_the_first_pending_notification(store: StateStore) -> None:
    clock, handler = Clock(), Recorder()
    processor = Processor(store, handler, settings(5, 500), clock=clock)
    store.record_notifications([note("hubspot", "1"), note("hubspot", "2")])
    processor.notify(2)
    assert processor.step() == pytest.approx(0.5)  # not due: wait out the window
    clock.now += 0.3
    store.record_notifications([note("marketo", "3")])
    processor.notify(1)  # the window runs from the first pending one, not the latest
    assert processor.step() == pytest.approx(0.2)
    assert handler.batches == []
    clock.now += 0.2
    assert processor.step() == 0.0
    assert [sorted(b["record_id"]) for b in handler.batches] == [["1", "2", "3"]]
    assert store.inbox_counts() == {"pending": 0, "claimed": 0, "done": 3, "failed": 0}


def test_a_batch_closes_at_max_notifications_without_waiting(store: StateStore) -> None:
    clock, handler = Clock(), Recorder()
    processor = Processor(store, handler, settings(3, 60_000), clock=clock)
    store.record_notifications([note("salesforce", f"00Q00000000000{i}") for i in range(7)])
    processor.notify(7)
    assert processor.step() == 0.0 and processor.step() == 0.0  # two full batches at once
    assert [len(b) for b in handler.batches] == [3, 3]
    assert processor.step() == pytest.approx(60.0)  # the last one waits for company or its window
    clock.now += 60
    assert processor.step() == 0.0
    assert [len(b) for b in handler.batches] == [3, 3, 1]


def test_claims_of_a_killed_processor_are_replayed_once_stale(store: StateStore) -> None:
    store.record_notifications([note("hubspot", "7"), note("hubspot", "8")])
    killed = store.claim_notifications("dead-host:1:x", 10, 60)  # claimed, then the process died
    assert len(killed) == 2
    clock, handler = Clock(), Recorder()
    processor = Processor(store, handler, settings(5, 500, claim_timeout_seconds=60), clock=clock)
    processor.step()
    assert handler.batches == []  # a fresh claim may belong to a live processor
    later = datetime.now(UTC) + pd.Timedelta(seconds=61)
    replay = store.claim_notifications(processor.worker, 5, 60, now=later)
    assert sorted(replay["record_id"]) == ["7", "8"] and (replay["attempts"] == 2).all()


def test_claims_of_a_dead_process_on_this_host_are_released_at_start_not_after_the_timeout(
    store: StateStore,
) -> None:
    import os
    import socket
    import subprocess
    import sys

    host = socket.gethostname()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    dead_pid = int(finished.stdout)  # a process that ran and exited: nothing runs under its id now
    store.record_notifications([note("hubspot", str(i)) for i in range(1, 7)])
    store.claim_notifications(f"{host}:{dead_pid}:aaaa", 2, 60)             # killed
    store.claim_notifications(f"{host}:{os.getpid()}:bbbb", 1, 60)          # this pid, an earlier incarnation
    store.claim_notifications(f"{host}:{os.getppid()}:cccc", 1, 60)         # a live process: not judged
    store.claim_notifications(f"elsewhere:{dead_pid}:dddd", 1, 60)          # another host: not judged
    processor = Processor(store, Recorder(), settings(5, 500, claim_timeout_seconds=60), clock=Clock())
    assert processor.release_dead_claims() == 3
    rows = store.inbox_notifications().set_index("record_id")
    assert list(rows["state"]) == ["pending", "pending", "pending", "claimed", "claimed", "pending"]
    assert list(rows["attempts"]) == [1, 1, 1, 1, 1, 0]  # the killed claims counted their attempt
    assert processor.release_dead_claims() == 0


def test_transient_errors_are_retried_permanent_ones_fail_with_the_reason(store: StateStore) -> None:
    import requests

    def handler(rows: pd.DataFrame) -> BatchOutcome:
        outcome = BatchOutcome()
        ids = rows.set_index("record_id")["id"]
        outcome.fail([ids["1"]], requests.ConnectionError("reset by peer"))
        outcome.fail([ids["2"]], ValueError("a bad value"))
        outcome.settle([ids["3"]], "not found in hubspot")
        return outcome  # "4" is not mentioned: retried

    store.record_notifications([note("hubspot", str(i)) for i in range(1, 5)])
    Processor(store, handler, settings(4, 0), clock=Clock()).step()
    rows = store.inbox_notifications().set_index("record_id")
    assert rows.loc["1", "state"] == "pending" and "reset by peer" in rows.loc["1", "error"]
    assert rows.loc["2", "state"] == "failed" and rows.loc["2", "error"] == "ValueError: a bad value"
    assert rows.loc["3", "state"] == "done"
    assert rows.loc["4", "state"] == "pending"


def test_a_system_another_writer_holds_is_left_pending_and_not_claimed_meanwhile(store: StateStore) -> None:
    clock, seen = Clock(), []

    def handler(rows: pd.DataFrame) -> BatchOutcome:
        seen.append(sorted(rows["system"]))
        outcome = BatchOutcome()
        sf = rows[rows["system"].isin(["salesforce", "web"])]["id"]
        outcome.busy["salesforce"] = "crm_sync run r1 on host:42"
        outcome.released.update(dict.fromkeys(sf, "waiting: crm_sync writes"))
        outcome.settle(rows[~rows["id"].isin(sf)]["id"])
        return outcome

    store.record_notifications([note("salesforce", "00Q000000000001"), note("web", "w1"), note("hubspot", "5")])
    processor = Processor(store, handler, settings(5, 0, busy_backoff_seconds=30), clock=clock)
    assert processor.step() == 0.0
    assert store.inbox_counts()["pending"] == 2
    store.record_notifications([note("hubspot", "6")])
    processor.step()
    assert seen == [["hubspot", "salesforce", "web"], ["hubspot"]]  # salesforce and web wait out the backoff
    clock.now += 30
    processor.step()
    assert seen[-1] == ["salesforce", "web"]


def test_the_processing_config_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="claim_timeout_seconds must be longer"):
        Processing(batch=BatchSettings(max_wait_ms=5000), claim_timeout_seconds=2)
    with pytest.raises(ValidationError):
        BatchSettings(max_notifications=0)


# -- against the sandboxes ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory, prefect_api: str) -> Iterator[dict[str, Any]]:
    """Salesforce, HubSpot and Marketo sandboxes with routing, after the hourly sync's initial load (and its echo)."""
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.launch import running_sandboxes

    folder = tmp_path_factory.mktemp("intake")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADFLOW_HOME", str(folder / ".leadflow"))
        patch.delenv("LEADFLOW_DATABASE_URL", raising=False)
        with running_sandboxes(folder / "boxes", leads=40, routing=True) as boxes:
            crm_sync(config_path=str(boxes.config_path), override_export_guard=True)
            crm_sync(config_path=str(boxes.config_path))
            yield {"boxes": boxes, "config": boxes.config_path}


def new_salesforce_lead(boxes: Any, email: str, source: str = "Demo Request", first: str = "Push",
                        last: str | None = None, company: str = "Pushed GmbH") -> str:
    return boxes.handles["salesforce"].org.put("Lead", {
        "FirstName": first, "LastName": last or email.split("@")[0].title(), "Email": email, "Company": company,
        "Country": "Germany", "LeadSource": source, "Status": "Open - Not Contacted", "Title": "VP Sales",
    })


def new_hubspot_contact(boxes: Any, email: str) -> str:
    portal = boxes.handles["hubspot"].portal
    now = portal.now_ms()
    return portal.add({"email": email, "firstname": "Hub", "lastname": "Spot", "company": "Pushed Inc",
                       "country": "United States"}, created_ms=now, modified_ms=now)


def new_marketo_lead(boxes: Any, email: str) -> str:
    from leadflow.sandbox.marketo import _upsert_one

    answer = _upsert_one(boxes.handles["marketo"].instance, "createOrUpdate", "email", {
        "email": email, "firstName": "Mark", "lastName": "Eto", "company": "Pushed SA", "country": "France"})
    return str(answer["id"])


class SoqlSpy:
    """The SOQL the Salesforce sandbox answers (its query route), to count the fetches by id."""

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        from leadflow.sandbox.salesforce_reads import Reads

        self.seen: list[str] = []
        original = Reads.query

        def query(reads: Any, soql: str, **kwargs: Any) -> Any:
            self.seen.append(soql)
            return original(reads, soql, **kwargs)

        patch.setattr(Reads, "query", query)

    def fetches(self) -> list[str]:
        return [q for q in self.seen if q.startswith("SELECT") and "FROM Lead WHERE Id IN" in q]


def processor_for(store: StateStore, config: Path, **more: Any) -> tuple[Processor, Any]:
    from flows.intake import IntakeBatch, WarmSystems, intake_batch

    warm = WarmSystems(config, refresh_seconds=300)
    return Processor(store, lambda rows: intake_batch(IntakeBatch(rows, warm)),
                     settings(50, 0, **more), clock=Clock()), warm


def drain(processor: Processor) -> None:
    for _ in range(10):
        if processor.step() > 0 and processor.store.inbox_counts()["pending"] == 0:
            return


def owner_events(store: StateStore, lead_key: str) -> pd.DataFrame:
    events = store.events(lead_key)
    return events[(events["stage"] == "assign") & (events["column_name"] == "owner_id")]


@pytest.mark.prefect
def test_each_source_ends_routed_written_back_and_audited_like_the_sync(synced: dict[str, Any],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    boxes, config = synced["boxes"], synced["config"]
    org = boxes.handles["salesforce"].org
    spy = SoqlSpy(monkeypatch)
    hub_stats, mkto = boxes.handles["hubspot"].portal.stats, boxes.handles["marketo"].instance
    sf_id = new_salesforce_lead(boxes, "sf.push@pushed-gmbh.de")
    hs_id = new_hubspot_contact(boxes, "hs.push@pushed-inc.com")
    mk_id = new_marketo_lead(boxes, "mk.push@pushed-sa.fr")
    web = {"lead_id": "form-77", "email": "web.push@pushed-web.de", "first_name": "Web", "last_name": "Form",
           "company": "Pushed Web AG", "country": "Deutschland", "lead_source": "Demo Request"}
    with StateStore.open() as store:
        reads_before, lookups_before = hub_stats["batch_read"], len(mkto.lookup_sizes)
        store.record_notifications([note("salesforce", sf_id, "s1"), note("hubspot", hs_id, "h1"),
                                    note("marketo", mk_id, "m1"), note("web", "form-77", "w1", web)])
        processor, _ = processor_for(store, config)
        assert processor.step() == 0.0
        assert store.inbox_counts() == {"pending": 0, "claimed": 0, "done": 4, "failed": 0}
        # Fetched by id, one call per system for the batch.
        assert len(spy.fetches()) == 1 and sf_id in spy.fetches()[0]
        assert hub_stats["batch_read"] - reads_before == 1
        assert len(mkto.lookup_sizes) - lookups_before == 1

        # Salesforce: routed and the owner written back.
        lead = org.objects["Lead"][sf_id]
        assert lead["OwnerId"] in org.objects["User"] and lead.get("Country_Code__c") == "DE"
        assignment = store.assignments([f"salesforce:{sf_id}"])
        assert len(assignment) == 1 and assignment.iloc[0]["owner_id"] == lead["OwnerId"]
        # The web lead was created in Salesforce from the form, then routed and written like any lead.
        created = [rid for rid, r in org.objects["Lead"].items() if r.get("Email") == "web.push@pushed-web.de"]
        assert len(created) == 1
        web_lead = org.objects["Lead"][created[0]]
        assert web_lead["OwnerId"] in org.objects["User"] and web_lead.get("Country_Code__c") == "DE"
        assert len(store.assignments([f"salesforce:{created[0]}"])) == 1
        # HubSpot and Marketo (their mappings carry no owner): routed in the store, standardized values written.
        assert len(store.assignments([f"hubspot:{hs_id}"])) == 1
        assert len(store.assignments([f"marketo:mkto-{mk_id}"])) == 1
        assert boxes.handles["hubspot"].portal.contact(hs_id)["properties"].get("country") == "United States"

        # The same audit trail as the sync: every stage of the pipeline and the write-back, in one intake run.
        stages = set(store.events(f"salesforce:{sf_id}")["stage"])
        sync_lead = new_salesforce_lead(boxes, "sf.polled@pushed-gmbh.de")
        from flows.crm_sync import crm_sync

        crm_sync(config_path=str(config))
        assert set(store.events(f"salesforce:{sync_lead}")["stage"]) == stages
        assert "writeback:salesforce" in stages and "assign" in stages
        assert len(owner_events(store, f"salesforce:{sf_id}")) == 1


@pytest.mark.prefect
def test_a_duplicate_and_an_already_synced_record_route_nothing_twice(synced: dict[str, Any]) -> None:
    from flows.crm_sync import crm_sync

    boxes, config = synced["boxes"], synced["config"]
    org = boxes.handles["salesforce"].org
    pushed = new_salesforce_lead(boxes, "m.curie@radium-labs.fr", first="Marie", last="Curie", company="Radium Labs")
    polled = new_salesforce_lead(boxes, "n.bohr@quantum-hus.dk", first="Niels", last="Bohr", company="Quantum Hus")
    crm_sync(config_path=str(config))  # the polling sync processes `polled` first
    assert len(owner_events(StateStore.open(), f"salesforce:{polled}")) == 1
    with StateStore.open() as store:
        processor, _ = processor_for(store, config)
        done_before = store.inbox_counts()["done"]
        stamp = org.objects["Lead"][pushed]["SystemModstamp"]
        store.record_notifications([note("salesforce", pushed, stamp), note("salesforce", polled, "p1")])
        drain(processor)
        owner = org.objects["Lead"][pushed]["OwnerId"]
        writes = len(org.field_writes)
        # The same notification again (a sender's retry) is one row; a later one for the same record (our own write
        # moved its modstamp: the echo) is processed to a no-op.
        new, duplicates = store.record_notifications([note("salesforce", pushed, stamp)])
        assert (new, duplicates) == (0, 1)
        store.record_notifications([note("salesforce", pushed, "after-our-write"), note("salesforce", polled, "p2")])
        drain(processor)
        assert store.inbox_counts()["done"] - done_before == 4 and store.inbox_counts()["pending"] == 0
        assert len(org.field_writes) == writes and org.objects["Lead"][pushed]["OwnerId"] == owner
        for lead in (pushed, polled):
            assert len(owner_events(store, f"salesforce:{lead}")) == 1
        # The hourly sync after intake: the echo again, nothing routed twice.
        crm_sync(config_path=str(config))
        assert len(owner_events(store, f"salesforce:{pushed}")) == 1
        assert len(org.field_writes) == writes


@pytest.mark.prefect
def test_a_deleted_record_is_done_with_nothing_to_process(synced: dict[str, Any]) -> None:
    config = synced["config"]
    with StateStore.open() as store:
        processor, _ = processor_for(store, config)
        store.record_notifications([note("hubspot", "999999999", "x1"), note("marketo", "987654", "x2")])
        started = time.monotonic()
        drain(processor)
        assert time.monotonic() - started < 30
        rows = store.inbox_notifications().set_index("record_id")
        assert (rows.loc[["999999999", "987654"], "state"] == "done").all()
