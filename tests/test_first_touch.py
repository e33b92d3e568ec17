"""First touch from the CRM itself: Tasks and Events on a lead (the sandbox as strict as an org), its status changes,
pulled incrementally into the state store, the earliest winning; the pull-time first touch only a labelled fallback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from leadflow.connectors.salesforce import SalesforceConnector, SalesforceCredentials, salesforce_connector
from leadflow.connectors.salesforce_touches import first_touches
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.store import StateStore
from leadflow.sync.touches import pull_first_touches, watermark_name
from tests.dbs import store_urls

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
state_url = store_urls()  # SQLite and PostgreSQL


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path_factory.mktemp("sf"), leads=60, seed=3, page_size=200) as box:
        yield box


def _client(sandbox: RunningSalesforce) -> Salesforce:
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.token(), session=sandbox.session(), version="59.0")


def _connector(sandbox: RunningSalesforce) -> SalesforceConnector:
    creds = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                  client_secret=sandbox.client_secret)
    return salesforce_connector(creds, session=sandbox.session(), page_size=200, backoff=0.0, bulk_wait=0.0)


def _open_lead(sandbox: RunningSalesforce, skip: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    touched = {t["WhoId"] for t in [*sandbox.org.objects["Task"].values(), *sandbox.org.objects["Event"].values()]}
    return next(i for i, r in sorted(sandbox.org.objects["Lead"].items())
                if not r["IsConverted"] and i not in touched and i not in skip)


def _assign(store: StateStore, leads: dict[str, datetime]) -> None:
    made = pd.DataFrame({"lead_key": [f"salesforce:{k}" for k in leads], "owner_id": "0055e0000000003AAA",
                         "routing_rule": "web", "routing_reason": "round robin",
                         "assigned_at": list(leads.values()),
                         "sla_due_at": [at + timedelta(hours=4) for at in leads.values()]})
    with store.routing_session("run-assign") as session:
        session.record(made)


def _touch(store: StateStore, key: str) -> pd.Series:
    return store.assignments([f"salesforce:{key}"], inputs=False).iloc[0]


# -- the sandbox: Task and Event as strict as an org ---------------------------------------------------------------


def test_tasks_and_events_are_created_over_rest_with_the_orgs_rules(sandbox: RunningSalesforce) -> None:
    sf = _client(sandbox)
    lead = _open_lead(sandbox)
    task = sf.Task.create({"WhoId": lead, "Subject": "Call"})["id"]
    assert task.startswith("00T")
    created = sf.Task.get(task)
    assert (created["Status"], created["Priority"], created["IsClosed"]) == ("Not Started", "Normal", False)
    for body, code in (({"WhoId": "0015e0000000001AAA"}, "FIELD_INTEGRITY_EXCEPTION"),  # an Account is no "who"
                       ({"WhoId": "00Q5e0000009999AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
                       ({"WhoId": lead, "Status": "Done?"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
                       ({"WhoId": lead, "IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE")):
        with pytest.raises(SalesforceMalformedRequest) as refused:
            sf.Task.create(body)
        assert refused.value.content[0]["errorCode"] == code, body
    with pytest.raises(SalesforceMalformedRequest) as refused:  # not all-day: needs its time and length
        sf.Event.create({"WhoId": lead, "Subject": "Meeting"})
    assert refused.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    event = sf.Event.create({"WhoId": lead, "Subject": "Meeting", "ActivityDateTime": "2026-12-01T10:00:00Z",
                             "DurationInMinutes": 30})["id"]
    assert event.startswith("00U")
    whos = {r["WhoId"][:3] for r in sf.query_all("SELECT Id, WhoId FROM Task WHERE Who.Type = 'Lead'")["records"]}
    assert whos == {"00Q"}
    everyone = {r["WhoId"][:3] for r in sf.query_all("SELECT Id, WhoId FROM Task")["records"] if r["WhoId"]}
    assert everyone == {"00Q", "003"}  # the seed logs tasks on contacts too
    with pytest.raises(SalesforceMalformedRequest) as refused:  # no such column, as in an org
        sf.query("SELECT Id, Who FROM Task")
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"


# -- the connector: incremental, contacts ignored --------------------------------------------------------------------


def test_touches_are_pulled_incrementally_and_a_contacts_task_is_ignored(sandbox: RunningSalesforce) -> None:
    connector = _connector(sandbox)
    first, marks = first_touches(connector, None, untouched_statuses={"Open - Not Contacted"})
    seeded = sandbox.org.objects
    expected_leads = ({t["WhoId"] for t in seeded["Task"].values() if t["WhoId"] and t["WhoId"].startswith("00Q")}
                      | {e["WhoId"] for e in seeded["Event"].values()}
                      | {h["LeadId"] for h in seeded["LeadHistory"].values() if h["Field"] == "Status"})
    assert set(first["lead_id"]) == expected_leads and first["lead_id"].is_unique
    assert set(first["source"]) <= {"task", "event", "status_history"}
    assert all(m is not None for m in marks.values())

    sf = _client(sandbox)
    lead = _open_lead(sandbox)
    contact = sorted(seeded["Contact"])[0]
    sf.Task.create({"WhoId": contact, "Subject": "Call"})
    sf.Task.create({"WhoId": lead, "Subject": "Call"})
    second, later = first_touches(connector, marks)
    # only what changed since: the new lead task (and at most the record each watermark itself stands on)
    assert lead in set(second["lead_id"]) and contact not in set(second["lead_id"])
    assert len(set(second["lead_id"]) - {lead}) <= len(marks) - 1
    assert later["task"] is not None and later["task"] > marks["task"]
    assert later["event"] in (None, marks["event"])


# -- the store: earliest wins, fallback labelled ---------------------------------------------------------------------


def test_the_earliest_crm_touch_wins_and_the_pull_time_is_only_a_labelled_fallback(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        _assign(store, {"00Q5e0000000001AAA": T0, "00Q5e0000000002AAA": T0})
        touches = pd.DataFrame({
            "lead_key": ["salesforce:00Q5e0000000001AAA"] * 4,
            "touched_at": [T0 + timedelta(hours=3), T0 + timedelta(hours=2), T0 + timedelta(hours=1),
                           T0 - timedelta(hours=1)],
            "source": ["status_history", "task", "event", "task"],
        })
        counts = store.record_first_touches(touches, run_id="run-1")
        assert counts == (1, 1)
        kept = store.first_touches().set_index("lead_key").loc["salesforce:00Q5e0000000001AAA"]
        # the lead's earliest CRM touch: the task logged before leadflow assigned it
        assert (kept["first_touch_at"], kept["source"]) == (T0 - timedelta(hours=1), "task")
        # its assignment's first touch: the earliest one at or after the assignment
        row = _touch(store, "00Q5e0000000001AAA")
        assert (row["first_touch_at"], row["first_touch_source"]) == (T0 + timedelta(hours=1), "event")

        # the other lead: only a pull saw it worked — labelled, then replaced by the CRM's earlier record
        store.mark_assignments(["salesforce:00Q5e0000000002AAA"], "first_touch_at", T0 + timedelta(hours=5))
        assert _touch(store, "00Q5e0000000002AAA")["first_touch_source"] == "pull"
        later = pd.DataFrame({"lead_key": ["salesforce:00Q5e0000000002AAA"],
                              "touched_at": [T0 + timedelta(hours=4)], "source": ["status_history"]})
        assert store.record_first_touches(later, run_id="run-2") == (1, 1)
        row = _touch(store, "00Q5e0000000002AAA")
        assert (row["first_touch_at"], row["first_touch_source"]) == (T0 + timedelta(hours=4), "status_history")
        # a later pull stamp never overwrites it; a later CRM touch neither; re-reading the same page changes nothing
        store.mark_assignments(["salesforce:00Q5e0000000002AAA"], "first_touch_at", T0 + timedelta(hours=1))
        assert store.record_first_touches(later.assign(touched_at=[T0 + timedelta(hours=6)]), run_id="r3") == (0, 0)
        assert store.record_first_touches(later, run_id="run-4") == (0, 0)
        row = _touch(store, "00Q5e0000000002AAA")
        assert (row["first_touch_at"], row["first_touch_source"]) == (T0 + timedelta(hours=4), "status_history")
        # a new assignment starts with no first touch
        _assign(store, {"00Q5e0000000002AAA": T0 + timedelta(days=1)})
        assert pd.isna(_touch(store, "00Q5e0000000002AAA")["first_touch_source"])
        with pytest.raises(ValueError, match="source"):
            store.record_first_touches(later.assign(source=["email"]), run_id="run-5")


def test_the_pull_into_the_store_keeps_a_watermark_per_source(sandbox: RunningSalesforce, tmp_path: Path) -> None:
    sf = _client(sandbox)
    lead = _open_lead(sandbox)
    assigned = datetime.now(UTC) - timedelta(minutes=30)
    with StateStore.open(f"sqlite:///{tmp_path}/s.db") as store:
        _assign(store, {lead: assigned})
        store.mark_assignments([f"salesforce:{lead}"], "first_touch_at", datetime.now(UTC))  # a pull saw it worked
        sf.Event.create({"WhoId": lead, "Subject": "Demo", "ActivityDateTime": "2026-12-03T10:00:00Z",
                         "DurationInMinutes": 45})
        connector = _connector(sandbox)
        first = pull_first_touches(connector, store, run_id="run-1", untouched_statuses={"Open - Not Contacted"})
        assert first["event"].assignments == 1 and first["event"].since == assigned - timedelta(minutes=5)
        row = _touch(store, lead)
        assert row["first_touch_source"] == "event" and row["first_touch_at"] >= assigned
        marks = {s: store.get_watermark(watermark_name(s)) for s in ("task", "event")}
        assert marks["event"] is not None
        again = pull_first_touches(connector, store, run_id="run-2", lookback=timedelta(0))
        assert again["event"].since == marks["event"]
        assert sum(r.leads + r.assignments for r in again.values()) == 0
