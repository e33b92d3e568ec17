"""The Salesforce sandbox's Composite resource, driven by simple-salesforce as the CRM mirror drives it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceRefusedRequest

from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce

V = "/services/data/v59.0"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path_factory.mktemp("composite"), leads=40, page_size=5) as box:
        yield box


@pytest.fixture
def sf(running: RunningSalesforce) -> Salesforce:
    running.faults.clear()
    running.org.set_limits(max_calls=100_000, used=0)
    return Salesforce(instance_url=running.url, session_id=running.token(), session=running.session(), version="59.0")


def _get(ref: str, resource: str, soql: str | None = None) -> dict[str, Any]:
    url = f"{V}/{resource}" + (f"/?q={quote(soql)}" if soql is not None else "")
    return {"method": "GET", "url": url, "referenceId": ref}


def _composite(sf: Salesforce, subs: list[dict[str, Any]], **flags: Any) -> list[dict[str, Any]]:
    answer = sf.restful("composite", method="POST", json={"compositeRequest": subs, **flags})
    return answer["compositeResponse"]


def test_one_composite_call_sees_a_deletion_through_query_all_only(sf: Salesforce,
                                                                  running: RunningSalesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Deleted", "Company": "Composite Inc"})["id"]
    sf.Lead.delete(lead_id)
    soql = f"SELECT Id, IsDeleted, SystemModstamp FROM Lead WHERE Id = '{lead_id}'"
    used = running.org.api_used
    results = _composite(sf, [_get("live", "query", soql), _get("all", "queryAll", soql),
                              _get("users", "query", "SELECT COUNT() FROM User"),
                              {"method": "GET", "url": f"{V}/sobjects/Lead/{lead_id}", "referenceId": "row"}])
    assert running.org.api_used == used + 1  # "counts as a single call toward your API limits"
    by_ref = {r["referenceId"]: r for r in results}
    assert [r["referenceId"] for r in results] == ["live", "all", "users", "row"]
    assert by_ref["live"]["httpStatusCode"] == 200 and by_ref["live"]["body"]["totalSize"] == 0
    deleted = by_ref["all"]["body"]["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in deleted] == [(lead_id, True)]
    assert by_ref["users"]["body"]["totalSize"] == len(running.org.objects["User"])
    assert by_ref["row"]["httpStatusCode"] == 404
    assert by_ref["row"]["body"] == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]
    assert all(r["httpHeaders"] == {} for r in results)


def test_pages_continue_with_query_more_and_references(sf: Salesforce, running: RunningSalesforce) -> None:
    soql = "SELECT Id FROM Lead ORDER BY SystemModstamp, Id"
    results = _composite(sf, [_get("first", "queryAll", soql),
                              {"method": "GET", "url": "@{first.nextRecordsUrl}", "referenceId": "second"},
                              {"method": "GET", "url": f"{V}/sobjects/Lead/@{{first.records[0].Id}}?fields=Id,Company",
                               "referenceId": "lead"}])
    first, second, lead = (r["body"] for r in results)
    assert len(first["records"]) == 5 and not first["done"] and len(second["records"]) == 5
    assert not {r["Id"] for r in first["records"]} & {r["Id"] for r in second["records"]}
    assert lead["Id"] == first["records"][0]["Id"] and set(lead) == {"attributes", "Id", "Company"}
    more = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)  # the locator outlives the composite
    assert len(more["records"]) == 5


def test_the_documented_limits_refuse_the_whole_request(sf: Salesforce) -> None:
    too_many = _composite(sf, [{"method": "GET", "url": f"{V}/sobjects/User/x{k}", "referenceId": f"u{k}"}
                               for k in range(26)])
    assert too_many == [{"body": [{"errorCode": "LIMIT_EXCEEDED",
                                   "message": "The request can’t contain more than 25 operations."}],
                         "httpHeaders": {}, "httpStatusCode": 400, "referenceId": None}]
    queries = _composite(sf, [_get(f"q{k}", "query", "SELECT Id FROM User") for k in range(6)])
    assert len(queries) == 1 and queries[0]["body"][0]["errorCode"] == "LIMIT_EXCEEDED"
    five = _composite(sf, [_get(f"q{k}", "query", "SELECT Id FROM User") for k in range(5)]
                      + [{"method": "GET", "url": f"{V}/sobjects/User/nope", "referenceId": "u"}])
    assert [r["httpStatusCode"] for r in five] == [200] * 5 + [404]
    bad_ref = _composite(sf, [_get("not-ok", "query", "SELECT Id FROM User")])
    assert bad_ref[0]["referenceId"] is None and "must start with a letter or a number" in bad_ref[0]["body"][0][
        "message"]


def test_all_or_none_halts_every_other_subrequest(sf: Salesforce) -> None:
    subs = [_get("good", "query", "SELECT Id FROM Lead LIMIT 1"), _get("bad", "query", "SELECT Nope FROM Lead"),
            _get("after", "queryAll", "SELECT Id FROM Lead LIMIT 1")]
    lenient = _composite(sf, subs, allOrNone=False)
    assert [r["httpStatusCode"] for r in lenient] == [200, 400, 200]
    assert lenient[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    strict = _composite(sf, subs, allOrNone=True, collateSubrequests=False)
    assert [r["httpStatusCode"] for r in strict] == [400, 400, 400]
    assert [r["body"][0]["errorCode"] for r in strict] == ["PROCESSING_HALTED", "INVALID_FIELD", "PROCESSING_HALTED"]
    dependent = _composite(sf, [subs[1], {"method": "GET", "url": "@{bad.nextRecordsUrl}", "referenceId": "next"}])
    assert dependent[1]["httpStatusCode"] == 400 and dependent[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_requests_the_sandbox_does_not_run_are_refused(sf: Salesforce, running: RunningSalesforce) -> None:
    write = _composite(sf, [{"method": "PATCH", "url": f"{V}/sobjects/Lead/x", "referenceId": "w", "body": {}}])
    assert write[0]["httpStatusCode"] == 501 and write[0]["body"][0]["errorCode"] == "SANDBOX_UNSUPPORTED"
    headers = {"Authorization": f"Bearer {running.token()}", "Content-Type": "application/json"}
    session = running.session()
    not_bool = session.post(f"{running.url}{V}/composite", headers=headers,
                            json={"allOrNone": "yes", "compositeRequest": []})
    assert not_bool.status_code == 400 and not_bool.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    inherited = session.post(f"{running.url}{V}/composite", headers=headers, json={"compositeRequest": [
        _get("q", "query", "SELECT Id FROM User") | {"httpHeaders": {"Authorization": "Bearer x"}}]})
    assert inherited.status_code == 400


def test_the_gatekeeper_guards_composite_like_any_call(sf: Salesforce, running: RunningSalesforce) -> None:
    subs = [_get("q", "query", "SELECT Id FROM User")]
    running.org.set_limits(used=running.org.api_max)
    with pytest.raises(SalesforceRefusedRequest) as spent:
        _composite(sf, subs)
    assert spent.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    running.org.set_limits(used=0)
    running.faults.inject(r"^POST .*/composite$", "503", times=1)
    headers = {"Authorization": f"Bearer {running.token()}", "Content-Type": "application/json"}
    refused = running.session().post(f"{running.url}{V}/composite", headers=headers, json={"compositeRequest": subs})
    assert refused.status_code == 503
    anonymous = running.session().post(f"{running.url}{V}/composite", json={"compositeRequest": subs})
    assert anonymous.status_code == 401 and anonymous.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    running.faults.inject(r"^POST .*/composite$", "malformed", times=1, drop="Company")
    page = _composite(sf, [_get("m", "query", "SELECT Id, Company FROM Lead LIMIT 2")])[0]["body"]["records"]
    assert "Company" not in page[0] and "Company" in page[1]
