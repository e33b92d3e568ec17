"""The Salesforce sandbox's Recycle Bin: soft deletes, QueryAll, purges after 15 days, lead conversion, the
SystemModstamp index, and what the REST and Bulk APIs answer about deleted records."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceResourceNotFound

from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.sandbox.salesforce_index import RecordTable, candidates
from leadflow.sandbox.salesforce_org import Org
from leadflow.sandbox.salesforce_seed import seed_org
from leadflow.sandbox.salesforce_soql import SoqlError, parse_soql, sf_datetime


@pytest.fixture
def org() -> Org:
    return seed_org(Org(), leads=80, seed=5).fill_defaults()


def _ids(org: Org, soql: str, *, include_deleted: bool = False) -> list[str]:
    return [r["Id"] for r in org.run_query(soql, include_deleted=include_deleted)[1]]


def _open_lead(org: Org) -> str:
    return next(i for i, r in org.objects["Lead"].items() if not r["IsConverted"])


def test_a_deleted_lead_sits_in_the_bin_seen_by_query_all_only(org: Org) -> None:
    lead_id = _open_lead(org)
    before = org.objects["Lead"][lead_id]["SystemModstamp"]
    when = datetime.now(UTC).replace(microsecond=0)  # QueryAll purges what was deleted over 15 days ago
    assert org.delete("Lead", lead_id, now=when) and not org.delete("Lead", lead_id)
    assert org.get("Lead", lead_id) is None and org.is_deleted("Lead", lead_id)
    binned = org.recycle_bin["Lead"][lead_id]
    assert binned["IsDeleted"] is True and binned["SystemModstamp"] == binned["LastModifiedDate"] == sf_datetime(when)
    assert binned["SystemModstamp"] > before
    everything = "SELECT Id, IsDeleted FROM Lead ORDER BY SystemModstamp, Id"
    assert lead_id not in _ids(org, everything)
    assert _ids(org, everything, include_deleted=True)[-1] == lead_id  # the newest change: the deletion
    assert _ids(org, "SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True) == [lead_id]
    assert _ids(org, "SELECT Id FROM Lead WHERE IsDeleted = true") == []
    since = f"SELECT Id FROM Lead WHERE SystemModstamp > {sf_datetime(when - timedelta(seconds=1))[:19]}Z " \
            "ORDER BY SystemModstamp, Id"
    assert _ids(org, since, include_deleted=True) == [lead_id] and _ids(org, since) == []


@pytest.mark.parametrize("obj", ["User", "Group", "QueueSobject"])
def test_is_deleted_exists_only_where_the_object_has_it(org: Org, obj: str) -> None:
    with pytest.raises(SoqlError) as refused:
        org.run_query(f"SELECT Id, IsDeleted FROM {obj}", include_deleted=True)
    assert refused.value.code == "INVALID_FIELD"
    for has in ("Lead", "Contact", "Account"):
        assert org.run_query(f"SELECT IsDeleted FROM {has} LIMIT 1")[1][0]["IsDeleted"] is False


def test_deleting_an_account_takes_its_contacts_and_undelete_brings_them_back(org: Org) -> None:
    account_id = next(a for a in org.objects["Account"]
                      if any(c["AccountId"] == a for c in org.objects["Contact"].values()))
    contacts = {i for i, c in org.objects["Contact"].items() if c["AccountId"] == account_id}
    org.delete("Account", account_id)
    assert contacts and contacts <= set(org.recycle_bin["Contact"]) and not contacts & set(org.objects["Contact"])
    deleted = _ids(org, f"SELECT Id FROM Contact WHERE AccountId = '{account_id}'", include_deleted=True)
    assert set(deleted) == contacts
    assert org.undelete("Account", account_id) and not org.undelete("Account", account_id)
    assert contacts <= set(org.objects["Contact"]) and not org.recycle_bin["Contact"]
    assert org.objects["Account"][account_id]["IsDeleted"] is False


def test_the_bin_is_purged_after_fifteen_days(org: Org) -> None:
    old, recent, emptied = list(org.objects["Lead"])[:3]
    now = datetime.now(UTC)
    org.delete("Lead", old, now=now - timedelta(days=16))
    org.delete("Lead", recent, now=now - timedelta(days=14))
    org.delete("Lead", emptied, now=now)
    query_all = "SELECT Id FROM Lead WHERE IsDeleted = true"
    assert set(_ids(org, query_all, include_deleted=True)) == {recent, emptied}  # QueryAll purges what is due
    assert org.purge_recycle_bin(now=now + timedelta(days=1, hours=1)) == 1  # `recent` is now 15 days old
    assert org.empty_recycle_bin([emptied]) == 1 and org.empty_recycle_bin() == 0
    assert _ids(org, query_all, include_deleted=True) == []
    assert not any(org.is_deleted("Lead", i) for i in (old, recent, emptied))


def test_convert_lead_creates_the_account_and_contact_and_moves_the_stamps(org: Org) -> None:
    lead_id = _open_lead(org)
    lead = org.objects["Lead"][lead_id]
    when = datetime(2026, 11, 3, 12, tzinfo=UTC)
    account_id, contact_id = org.convert_lead(lead_id, now=when)
    converted = org.objects["Lead"][lead_id]
    assert converted["IsConverted"] and converted["ConvertedDate"] == "2026-11-03"
    assert converted["Status"] == "Closed - Converted" and converted["SystemModstamp"] == sf_datetime(when)
    contact = org.objects["Contact"][contact_id]
    assert contact["AccountId"] == account_id and contact["Email"] == lead["Email"]
    assert org.objects["Account"][account_id]["Name"] == lead["Company"]
    assert lead_id not in _ids(org, "SELECT Id FROM Lead WHERE IsConverted = false")
    with pytest.raises(ValueError, match="already converted"):
        org.convert_lead(lead_id)


def test_save_and_load_keep_the_bin(org: Org, tmp_path: Path) -> None:
    lead_id, gone_id = list(org.objects["Lead"])[:2]
    org.delete("Lead", lead_id)
    org.delete("Lead", gone_id, now=datetime.now(UTC) - timedelta(days=20))  # purged on load
    org.save(tmp_path / "org.json")
    back = Org.load(tmp_path / "org.json")
    assert back.is_deleted("Lead", lead_id) and not back.is_deleted("Lead", gone_id)
    assert isinstance(back.objects["Lead"], RecordTable) and isinstance(back.recycle_bin["Lead"], RecordTable)
    assert _ids(back, "SELECT Id FROM Lead WHERE IsDeleted = true", include_deleted=True) == [lead_id]


def test_window_queries_read_the_index_and_match_a_scan(org: Org) -> None:
    table = org.objects["Lead"]
    for k, lead_id in enumerate(list(table)[:30]):  # updates and deletions move records to the end of the index
        if k % 3:
            org.put("Lead", {"Title": f"changed {k}"}, lead_id)
        else:
            org.delete("Lead", lead_id)
    stamps = sorted(r["SystemModstamp"] for r in table.values())
    t = stamps[len(stamps) // 2][:19] + "Z"
    for soql in (f"SELECT Id FROM Lead WHERE SystemModstamp >= {t} ORDER BY SystemModstamp, Id",
                 f"SELECT Id FROM Lead WHERE SystemModstamp > {t} AND Title != null ORDER BY SystemModstamp DESC, Id",
                 f"SELECT Id FROM Lead WHERE SystemModstamp <= {t} ORDER BY SystemModstamp, Id LIMIT 7",
                 f"SELECT COUNT() FROM Lead WHERE SystemModstamp >= {t}"):
        for deleted in (False, True):
            indexed = _ids(org, soql, include_deleted=deleted) if "COUNT" not in soql else \
                len(org.run_query(soql, include_deleted=deleted)[1])
            org.objects["Lead"] = dict(table)  # a plain dict: the scan the sandbox did before the index
            scanned = _ids(org, soql, include_deleted=deleted) if "COUNT" not in soql else \
                len(org.run_query(soql, include_deleted=deleted)[1])
            org.objects["Lead"] = table
            assert indexed == scanned, soql
    newest = stamps[-1][:19] + "Z"
    query = parse_soql(f"SELECT Id FROM Lead WHERE SystemModstamp >= {newest} ORDER BY SystemModstamp, Id")
    touched = candidates([table], query.where, query.order, query.count)
    assert 0 < len(touched) < 25 < len(table)  # the window only, not the table


# -- over HTTP: simple-salesforce, as leadflow's connectors talk to the org


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path_factory.mktemp("bin"), leads=30, page_size=4, bulk_query_polls=1) as box:
        yield box


def _client(running: RunningSalesforce) -> Salesforce:
    return Salesforce(instance_url=running.url, session_id=running.token(), session=running.session(), version="59.0")


def test_rest_answers_entity_is_deleted_until_the_record_is_purged(running: RunningSalesforce) -> None:
    sf = _client(running)
    lead_id = sf.Lead.create({"LastName": "Gone", "Company": "Bin Ltd"})["id"]
    assert sf.Lead.delete(lead_id) == 204
    for call in (lambda: sf.Lead.get(lead_id), lambda: sf.Lead.update(lead_id, {"Title": "x"}),
                 lambda: sf.Lead.delete(lead_id)):
        with pytest.raises(SalesforceResourceNotFound) as deleted:
            call()
        assert deleted.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"
    running.org.empty_recycle_bin([lead_id])
    with pytest.raises(SalesforceResourceNotFound) as purged:
        sf.Lead.get(lead_id)
    assert purged.value.content[0]["errorCode"] == "NOT_FOUND"


def test_query_all_pages_include_deleted_records_through_either_locator(running: RunningSalesforce) -> None:
    sf = _client(running)
    lead_id = sf.Lead.create({"LastName": "Binned", "Company": "Bin Ltd"})["id"]
    sf.Lead.delete(lead_id)
    soql = "SELECT Id, IsDeleted FROM Lead ORDER BY SystemModstamp, Id"
    live = sf.query(soql)
    assert live["totalSize"] == len(running.org.objects["Lead"]) and len(live["records"]) == 4
    first = sf.query(soql, include_deleted=True)  # GET /queryAll/?q=
    assert first["totalSize"] == live["totalSize"] + len(running.org.recycle_bin["Lead"])
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")  # "query", even for QueryAll
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    via_query_all = sf.query_more(locator, include_deleted=True)  # GET /queryAll/<locator>
    via_query = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)  # GET /query/<locator>
    assert via_query_all["records"] == via_query["records"]
    everything = list(sf.query_all_iter(soql, include_deleted=True))
    assert [r["Id"] for r in everything if r["IsDeleted"]][-1] == lead_id
    assert lead_id not in {r["Id"] for r in sf.query_all_iter(soql)}


def test_bulk_query_all_jobs_return_deleted_records_query_jobs_do_not(running: RunningSalesforce) -> None:
    sf = _client(running)
    lead_id = sf.Lead.create({"LastName": "Bulk", "Company": "Bin Ltd"})["id"]
    sf.Lead.delete(lead_id)
    session, base = running.session(), f"{running.url}/services/data/v59.0/jobs/query"
    headers = {"Authorization": f"Bearer {running.token()}", "Content-Type": "application/json"}
    seen = {}
    for operation in ("query", "queryAll"):
        job = session.post(base, json={"operation": operation, "query": "SELECT Id, IsDeleted FROM Lead"},
                           headers=headers).json()
        assert session.get(f"{base}/{job['id']}", headers=headers).json()["state"] == "JobComplete"
        text = session.get(f"{base}/{job['id']}/results", headers=headers).text
        seen[operation] = {row["Id"]: row["IsDeleted"] for row in csv.DictReader(io.StringIO(text))}
    assert lead_id not in seen["query"] and seen["queryAll"][lead_id] == "true"
    assert set(seen["query"]) < set(seen["queryAll"])
