"""The Salesforce sandbox speaks the real API: unmodified simple-salesforce and requests over HTTPS."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from leadflow.sandbox.salesforce import LEAD_STATUSES, RunningSalesforce, parse_soql, running_salesforce

LEADS = 600


# `sandbox` (module-scoped, seeded with this module's LEADS) comes from tests/conftest.py.
pytestmark = pytest.mark.usefixtures("_reset_sandbox")


@pytest.fixture
def sf(sandbox: RunningSalesforce) -> Salesforce:
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.token(), session=sandbox.session(), version="59.0")


def test_oauth_client_credentials_and_password_grants(sandbox: RunningSalesforce) -> None:
    with sandbox.session() as session:
        url = f"{sandbox.url}/services/oauth2/token"
        ok = session.post(url, data={"grant_type": "client_credentials", "client_id": sandbox.client_id,
                                     "client_secret": sandbox.client_secret}).json()
        assert ok["token_type"] == "Bearer" and ok["instance_url"] == sandbox.url and ok["access_token"]
        bad = session.post(url, data={"grant_type": "client_credentials", "client_id": sandbox.client_id,
                                      "client_secret": "wrong"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
        pw = session.post(url, data={"grant_type": "password", "client_id": sandbox.client_id,
                                     "client_secret": sandbox.client_secret, "username": sandbox.org.username,
                                     "password": sandbox.org.password})
        assert pw.status_code == 200
        no_token = session.get(f"{sandbox.url}/services/data/v59.0/limits/")
        assert no_token.status_code == 401 and no_token.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_query_pages_and_batch_size_header(sf: Salesforce, sandbox: RunningSalesforce) -> None:
    first = sf.query("SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id")
    assert first["totalSize"] == LEADS and len(first["records"]) == 200 and not first["done"]
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    assert first["records"][0]["attributes"]["type"] == "Lead"
    big = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(big["records"]) == 500
    everything = list(sf.query_all_iter("SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id"))
    keys = [(r["SystemModstamp"], r["Id"]) for r in everything]
    assert keys == sorted(keys) and len(set(keys)) == LEADS
    # Runs of 250 equal stamps: the 200-record page boundary falls inside a run.
    assert everything[199]["SystemModstamp"] == everything[200]["SystemModstamp"]


def test_soql_subset(sf: Salesforce) -> None:
    count = sf.query("SELECT COUNT() FROM Lead WHERE SystemModstamp >= 2026-10-01T00:01:00Z")
    assert count["totalSize"] == LEADS - 250 and count["records"] == []
    rows = sf.query_all("SELECT Id, Status FROM Lead WHERE Status IN ('Nurture', 'Closed - Converted') "
                        "AND Email != null AND HasOptedOutOfEmail = false ORDER BY Id DESC LIMIT 30")["records"]
    assert 0 < len(rows) <= 30 and {r["Status"] for r in rows} <= {"Nurture", "Closed - Converted"}
    assert [r["Id"] for r in rows] == sorted((r["Id"] for r in rows), reverse=True)
    assert sf.query("SELECT Id FROM Lead WHERE Email = null")["totalSize"] >= 1
    assert sf.query("SELECT Id FROM User")["totalSize"] >= 1
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.query("SELECT Foo FROM Lead")
    assert unknown.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'Lead'" in unknown.value.content[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FROM Lead WHERE")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"
    assert parse_soql("select id from lead order by systemmodstamp desc").order == [("SystemModstamp", True)]


def test_limits_header_and_request_limit(sf: Salesforce, sandbox: RunningSalesforce) -> None:
    before = sf.limits()["DailyApiRequests"]
    sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.api_usage["api-usage"].used == before["Max"] - before["Remaining"] + 1
    sandbox.org.set_limits(max_calls=10, used=10)
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_sobject_crud_and_validation(sf: Salesforce) -> None:
    created = sf.Lead.create({"LastName": "Sandbox", "Company": "Acme", "Email": "new@acme.test"})
    lead_id = created["id"]
    record = sf.Lead.get(lead_id)
    stamp = record["SystemModstamp"]
    assert record["Email"] == "new@acme.test" and record["CreatedDate"]
    assert sf.Lead.update(lead_id, {"Status": "Nurture", "Mailable__c": True}) == 204
    updated = sf.Lead.get(lead_id)
    assert updated["Status"] == "Nurture" and updated["Mailable__c"] is True
    assert updated["SystemModstamp"] >= stamp and updated["LastModifiedDate"] == updated["SystemModstamp"]
    cases = {
        "INVALID_FIELD": {"Foo__c": "x"},
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": {"Status": "Qualified"},
        "FIELD_CUSTOM_VALIDATION_EXCEPTION": {"Email": "no-at-sign"},
        "JSON_PARSER_ERROR": {"HasOptedOutOfEmail": "maybe"},
        "INVALID_FIELD_FOR_INSERT_UPDATE": {"SystemModstamp": "2020-01-01T00:00:00Z"},
    }
    for code, values in cases.items():
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Lead.update(lead_id, values)
        assert exc.value.content[0]["errorCode"] == code
    assert sf.Lead.delete(lead_id) == 204


def test_composite_collections(sf: Salesforce, sandbox: RunningSalesforce) -> None:
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 3")["records"]]
    sandbox.faults.inject("PATCH .*/composite/sobjects", "lock_row", ids=[ids[2]])
    results = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Lead"}, "id": ids[0], "Status": LEAD_STATUSES[1]},
        {"attributes": {"type": "Lead"}, "id": ids[1], "Status": "Nope"},
        {"attributes": {"type": "Lead"}, "id": ids[2], "Title": "CTO"},
    ]})
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert results[2]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
            {"attributes": {"type": "Lead"}, "id": ids[0], "Title": "x"}] * 201})


def test_bulk2_query_and_ingest(sf: Salesforce, sandbox: RunningSalesforce) -> None:
    pages = list(sf.bulk2.Lead.query("SELECT Id, Email FROM Lead ORDER BY Id", max_records=250, wait=0))
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(pages) == 3 and len(rows) == LEADS and len({r["Id"] for r in rows}) == LEADS
    ids = [r["Id"] for r in rows[:4]]
    sandbox.faults.inject(r"PATCH .*/jobs/ingest/\w+$", "lock_row", ids=[ids[3]])
    result = sf.bulk2.Lead.update(records=[
        {"Id": ids[0], "Title": "Bulk CTO"}, {"Id": ids[1], "Status": "Nope"},
        {"Id": ids[2], "Email_Valid__c": "maybe"}, {"Id": ids[3], "Title": "locked"},
    ], wait=0)
    assert result[0]["numberRecordsProcessed"] == 4 and result[0]["numberRecordsFailed"] == 3
    failed = list(csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(result[0]["job_id"]))))
    codes = {r["sf__Id"]: r["sf__Error"].split(":")[0] for r in failed}
    assert codes == {ids[1]: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ids[2]: "INVALID_TYPE",
                     ids[3]: "UNABLE_TO_LOCK_ROW"}
    ok = list(csv.DictReader(io.StringIO(sf.bulk2.Lead.get_successful_records(result[0]["job_id"]))))
    assert [r["sf__Id"] for r in ok] == [ids[0]] and sf.Lead.get(ids[0])["Title"] == "Bulk CTO"


def test_faults_by_admin_endpoint(sf: Salesforce, sandbox: RunningSalesforce) -> None:
    with sandbox.session() as admin:
        admin.post(f"{sandbox.url}/__sandbox/faults", json={"route": "GET .*/query/", "kind": "503"}).raise_for_status()
        with pytest.raises(SalesforceGeneralError) as unavailable:
            sf.query("SELECT Id FROM Lead LIMIT 1")
        assert unavailable.value.status == 503
        admin.post(f"{sandbox.url}/__sandbox/faults", json={"route": "GET", "kind": "403"}).raise_for_status()
        with pytest.raises(SalesforceRefusedRequest):
            sf.query("SELECT Id FROM Lead LIMIT 1")
        admin.post(f"{sandbox.url}/__sandbox/expire-sessions").raise_for_status()
        with pytest.raises(SalesforceExpiredSession) as expired:
            sf.query("SELECT Id FROM Lead LIMIT 1")
        assert expired.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
        admin.post(f"{sandbox.url}/__sandbox/faults", json={"route": "GET .*/query/", "kind": "slow",
                                                            "detail": {"seconds": 0.5}}).raise_for_status()
        fresh = Salesforce(instance_url=sandbox.url, session_id=sandbox.token(), session=sandbox.session(),
                           version="59.0")
        with pytest.raises(requests.exceptions.Timeout):
            fresh.query("SELECT Id FROM Lead LIMIT 1", timeout=0.1)
        admin.post(f"{sandbox.url}/__sandbox/faults", json={"route": "GET .*/query/", "kind": "malformed"})
        broken = fresh.query("SELECT Id, Email, Status, HasOptedOutOfEmail FROM Lead LIMIT 2")["records"]
        assert "Email" not in broken[0] and broken[1]["HasOptedOutOfEmail"] == "maybe"


def test_state_persists_between_restarts(tmp_path: Path) -> None:
    state = tmp_path / "org.json"
    with running_salesforce(tmp_path, leads=20, state_path=state) as first:
        lead_id = next(i for i, r in first.org.objects["Lead"].items() if not r["IsConverted"])
        Salesforce(instance_url=first.url, session_id=first.token(), session=first.session(),
                   version="59.0").Lead.update(lead_id, {"Title": "Persisted"})
    with running_salesforce(tmp_path, leads=0, state_path=state) as second:
        sf = Salesforce(instance_url=second.url, session_id=second.token(), session=second.session(), version="59.0")
        assert sf.Lead.get(lead_id)["Title"] == "Persisted"
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 20
