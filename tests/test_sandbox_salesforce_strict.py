"""The Salesforce sandbox is as strict as a stock real org: field metadata and describe, Tooling API custom fields,
field-level security, field lengths, restricted picklists, converted leads, owners, field history, Bulk API 2.0
query job states and result order, and client credentials only on the My Domain URL.

Driven over HTTPS with unmodified simple-salesforce (and our connector where it is concerned)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from leadflow.connectors.salesforce import (
    OrgNotReady,
    SalesforceAuthError,
    SalesforceCredentials,
    salesforce_connector,
)
from leadflow.sandbox.salesforce import (
    INTEGRATION_USER_ID,
    SEED_BASE,
    Org,
    RunningSalesforce,
    running_salesforce,
)
from leadflow.sandbox.salesforce_schema import LEADFLOW_LEAD_FIELDS

STOCK_LEAD_FIELDS = {
    "Id", "FirstName", "LastName", "Email", "Company", "Title", "Phone", "Country", "State", "City", "PostalCode",
    "Website", "LeadSource", "Status", "OwnerId", "HasOptedOutOfEmail", "IsConverted", "ConvertedDate",
    "NumberOfEmployees", "AnnualRevenue", "Industry", "CreatedDate", "LastModifiedDate", "SystemModstamp",
    "IsDeleted",
}
GRADE = {"FullName": "Lead.Grade__c", "Metadata": {
    "label": "Grade", "type": "Picklist", "valueSet": {"restricted": True, "valueSetDefinition": {"sorted": False,
        "value": [{"fullName": v, "label": v, "default": False} for v in "ABCD"]}}}}
REASON = {"FullName": "Lead.Lifecycle_Reason__c", "Metadata": {"label": "Lifecycle Reason", "type": "Text",
                                                                "length": 20}}


@pytest.fixture
def stock(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path, leads=40, stock_org=True, page_size=200) as running:
        yield running


@pytest.fixture
def full(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path, leads=40, page_size=200) as running:
        yield running


def client(sandbox: RunningSalesforce) -> Salesforce:
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.token(), session=sandbox.session(), version="59.0")


def open_leads(sandbox: RunningSalesforce, n: int = 3) -> list[str]:
    return [i for i, r in sandbox.org.objects["Lead"].items() if not r["IsConverted"]][:n]


def converted_lead(sandbox: RunningSalesforce) -> str:
    return next(i for i, r in sandbox.org.objects["Lead"].items() if r["IsConverted"])


def error(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    return exc.value.content[0]


def bulk_update(sf: Salesforce, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """A Bulk API 2.0 update through simple-salesforce; the failed rows."""
    jobs = sf.bulk2.Lead.update(records=rows, wait=0)
    failed = [r for job in jobs if int(job["numberRecordsFailed"])
              for r in csv.DictReader(io.StringIO(sf.bulk2.Lead.get_failed_records(job["job_id"])))]
    return failed


def collections_update(sf: Salesforce, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = {"allOrNone": False, "records": [{"attributes": {"type": "Lead"}} | r for r in records]}
    return sf.restful("composite/sobjects", method="PATCH", json=payload)


# ------------------------------------------------------------------------------------------------- metadata


def test_stock_org_describe_has_only_standard_fields(stock: RunningSalesforce) -> None:
    sf = client(stock)
    described = sf.Lead.describe()
    fields = {f["name"]: f for f in described["fields"]}
    assert set(fields) == STOCK_LEAD_FIELDS and not any(f["custom"] for f in fields.values())
    lengths = {n: fields[n]["length"] for n in ("FirstName", "LastName", "Company", "Title", "Email", "Phone", "City",
                                                "State", "PostalCode", "Country", "Website")}
    assert lengths == {"FirstName": 40, "LastName": 80, "Company": 255, "Title": 128, "Email": 80, "Phone": 40,
                       "City": 40, "State": 80, "PostalCode": 20, "Country": 80, "Website": 255}
    assert (fields["Email"]["type"], fields["Phone"]["type"], fields["Website"]["type"]) == ("email", "phone", "url")
    assert fields["Status"]["restrictedPicklist"] and {"value": "Working - Contacted", "label": "Working - Contacted",
                                                       "active": True, "defaultValue": False, "validFor": None} in (
        fields["Status"]["picklistValues"])
    assert fields["OwnerId"]["referenceTo"] == ["Group", "User"] and fields["OwnerId"]["type"] == "reference"
    assert fields["IsConverted"]["updateable"] is False and fields["SystemModstamp"]["createable"] is False
    assert fields["NumberOfEmployees"]["type"] == "int" and fields["AnnualRevenue"]["type"] == "currency"
    assert described["name"] == "Lead" and described["queryable"] and described["createable"]
    objects = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert {"Lead", "User", "Group", "QueueSobject", "LeadHistory", "PermissionSet", "FieldPermissions",
            "PermissionSetAssignment"} <= set(objects)
    assert objects["LeadHistory"]["createable"] is False and objects["Lead"]["keyPrefix"] == "00Q"
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.query("SELECT Id, Grade__c FROM Lead")
    assert error(missing)["errorCode"] == "INVALID_FIELD"
    assert ("No such column 'Grade__c' on entity 'Lead'. If you are attempting to use a custom field, be sure to "
            "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
            "appropriate names.") in error(missing)["message"]
    assert sf.toolingexecute("query/?q=SELECT+Id+FROM+CustomField+WHERE+TableEnumOrId+=+'Lead'")["totalSize"] == 0


def test_default_org_has_leadflows_fields_as_if_setup_had_run(full: RunningSalesforce) -> None:
    sf = client(full)
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert set(LEADFLOW_LEAD_FIELDS) <= set(fields) and STOCK_LEAD_FIELDS <= set(fields)
    assert fields["Grade__c"]["custom"] and fields["Grade__c"]["restrictedPicklist"]
    assert fields["Mailable_Reason__c"]["length"] == 255 and fields["Mailable__c"]["type"] == "boolean"
    rows = sf.toolingexecute("query/?q=SELECT+Id,+DeveloperName,+TableEnumOrId+FROM+CustomField+WHERE+"
                             "TableEnumOrId+=+'Lead'")["records"]
    assert {r["DeveloperName"] for r in rows} == {n[:-3] for n in LEADFLOW_LEAD_FIELDS}
    assert all(r["Id"].startswith("00N") and r["TableEnumOrId"] == "Lead" for r in rows)
    assert sf.query("SELECT Id, Grade__c, Mailable__c FROM Lead LIMIT 1")["records"][0]["Mailable__c"] is False


def test_org_settings_persist(tmp_path: Path) -> None:
    org = Org(stock_org=True, api_user_can_customize=False, bulk_query_polls=4, my_domain="acme.my.salesforce.com")
    org.create_custom_field("Lead.Grade__c", GRADE["Metadata"])
    org.grant_fields(["Lead.Grade__c"], edit=False)
    org.save(tmp_path / "org.json")
    back = Org.load(tmp_path / "org.json")
    assert (back.stock_org, back.api_user_can_customize, back.bulk_query_polls, back.my_domain) == (
        True, False, 4, "acme.my.salesforce.com")
    assert back.visible()["Lead"]["Grade__c"].updateable is False and "Segment__c" not in back.visible()["Lead"]
    assert back.integration_user_id == INTEGRATION_USER_ID and INTEGRATION_USER_ID in back.objects["User"]


# ------------------------------------------------------------------------------------------------- Tooling + FLS


def test_tooling_custom_field_needs_a_permission_set_to_be_seen(stock: RunningSalesforce) -> None:
    sf = client(stock)
    created = sf.restful("tooling/sobjects/CustomField", method="POST", json=GRADE)
    assert created["success"] and created["id"].startswith("00N") and created["errors"] == []
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.toolingexecute("sobjects/CustomField/", method="POST", data=GRADE)
    assert error(duplicate)["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    listed = sf.toolingexecute("query/?q=SELECT+Id,+DeveloperName,+TableEnumOrId+FROM+CustomField+WHERE+"
                               "TableEnumOrId+=+'Lead'")["records"]
    assert [(r["Id"], r["DeveloperName"]) for r in listed] == [(created["id"], "Grade")]
    # Created, but no field permissions yet: invisible to the integration user everywhere.
    lead = open_leads(stock, 1)[0]
    assert "Grade__c" not in {f["name"] for f in sf.Lead.describe()["fields"]}
    with pytest.raises(SalesforceMalformedRequest) as query:
        sf.query("SELECT Id, Grade__c FROM Lead")
    assert error(query)["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as write:
        sf.Lead.update(lead, {"Grade__c": "A"})
    assert error(write)["errorCode"] == "INVALID_FIELD"
    # Grant read+edit the way leadflow setup does: ordinary sObjects over REST, assigned to the token's user.
    token = stock.session().post(f"{stock.url}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": stock.client_id, "client_secret": stock.client_secret},
        timeout=10).json()
    user_id = token["id"].rsplit("/", 1)[1]
    info = stock.session().get(f"{stock.url}/services/oauth2/userinfo",
                               headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=10).json()
    assert user_id == info["user_id"] == stock.org.integration_user_id
    permission_set = sf.PermissionSet.create({"Name": "Leadflow_Integration", "Label": "Leadflow Integration"})["id"]
    assert permission_set.startswith("0PS")
    sf.FieldPermissions.create({"ParentId": permission_set, "SobjectType": "Lead", "Field": "Lead.Grade__c",
                                "PermissionsRead": True, "PermissionsEdit": True})
    assert "Grade__c" not in {f["name"] for f in sf.Lead.describe()["fields"]}  # not assigned yet
    sf.PermissionSetAssignment.create({"PermissionSetId": permission_set, "AssigneeId": user_id})
    grade = {f["name"]: f for f in sf.Lead.describe()["fields"]}["Grade__c"]
    assert grade["updateable"] and grade["restrictedPicklist"] and grade["custom"]
    sf.Lead.update(lead, {"Grade__c": "A"})
    assert sf.Lead.get(lead)["Grade__c"] == "A"
    granted = sf.query("SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions WHERE "
                       f"ParentId = '{permission_set}'")["records"]
    assert [(r["Field"], r["PermissionsEdit"]) for r in granted] == [("Lead.Grade__c", True)]


def test_read_only_field_permission(stock: RunningSalesforce) -> None:
    sf = client(stock)
    sf.restful("tooling/sobjects/CustomField", method="POST", json=REASON)
    stock.org.grant_fields(["Lead.Lifecycle_Reason__c"], edit=False)
    field = {f["name"]: f for f in sf.Lead.describe()["fields"]}["Lifecycle_Reason__c"]
    assert field["updateable"] is False and field["createable"] is False and field["length"] == 20
    assert sf.query("SELECT Id, Lifecycle_Reason__c FROM Lead LIMIT 1")["records"][0]["Lifecycle_Reason__c"] is None
    with pytest.raises(SalesforceMalformedRequest) as write:
        sf.Lead.update(open_leads(stock, 1)[0], {"Lifecycle_Reason__c": "why"})
    assert error(write)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


@pytest.mark.parametrize(("metadata", "code"), [
    ({"label": "Reason", "type": "Text"}, "FIELD_INTEGRITY_EXCEPTION"),
    ({"label": "Reason", "type": "Text", "length": 256}, "FIELD_INTEGRITY_EXCEPTION"),
    ({"type": "Text", "length": 40}, "FIELD_INTEGRITY_EXCEPTION"),
    ({"label": "Flag", "type": "Checkbox"}, "FIELD_INTEGRITY_EXCEPTION"),
    ({"label": "Stage", "type": "Picklist", "valueSet": {}}, "FIELD_INTEGRITY_EXCEPTION"),
    ({"label": "Score", "type": "Number", "precision": 19, "scale": 0}, "FIELD_INTEGRITY_EXCEPTION"),
])
def test_tooling_refuses_bad_metadata(stock: RunningSalesforce, metadata: dict[str, Any], code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        client(stock).restful("tooling/sobjects/CustomField", method="POST",
                              json={"FullName": "Lead.Reason__c", "Metadata": metadata})
    assert error(refused)["errorCode"] == code
    assert not stock.org.custom_fields


def test_tooling_needs_customize_application(stock: RunningSalesforce) -> None:
    stock.org.api_user_can_customize = False
    sf = client(stock)
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.restful("tooling/sobjects/CustomField", method="POST", json=GRADE)
    assert error(refused)["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    with pytest.raises(SalesforceMalformedRequest) as no_set:
        sf.PermissionSet.create({"Name": "Leadflow_Integration", "Label": "Leadflow Integration"})
    assert error(no_set)["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert not stock.org.custom_fields


# ------------------------------------------------------------------------------------------------- write rules


def test_string_too_long_on_every_write_path(full: RunningSalesforce) -> None:
    sf = client(full)
    a, b, c = open_leads(full, 3)
    long_title = "Head of " + "Very " * 30
    with pytest.raises(SalesforceMalformedRequest) as single:
        sf.Lead.update(a, {"Title": long_title})
    assert error(single) == {"message": f"Title: data value too large: {long_title} (max length=128)",
                             "errorCode": "STRING_TOO_LONG", "fields": ["Title"]}
    results = collections_update(sf, [{"id": b, "PostalCode": "1" * 21}, {"id": c, "PostalCode": "1" * 20}])
    assert results[0]["errors"][0]["statusCode"] == "STRING_TOO_LONG" and results[1]["success"]
    assert results[0]["errors"][0]["message"].endswith("(max length=20)")
    failed = bulk_update(sf, [{"Id": a, "FirstName": "F" * 41}, {"Id": b, "FirstName": "Ok"}])
    assert [(r["sf__Id"], r["sf__Error"].split(":")[0]) for r in failed] == [(a, "STRING_TOO_LONG")]
    with pytest.raises(SalesforceMalformedRequest) as create:
        sf.Lead.create({"LastName": "L", "Company": "C" * 256})
    assert error(create)["errorCode"] == "STRING_TOO_LONG"
    assert sf.Lead.get(a)["Title"] != long_title and sf.Lead.get(b)["FirstName"] == "Ok"


def test_restricted_custom_picklist(stock: RunningSalesforce) -> None:
    sf = client(stock)
    sf.restful("tooling/sobjects/CustomField", method="POST", json=GRADE)
    sf.restful("tooling/sobjects/CustomField", method="POST", json={"FullName": "Lead.Tier__c", "Metadata": {
        "label": "Tier", "type": "Picklist", "valueSet": {"restricted": False, "valueSetDefinition": {
            "sorted": False, "value": [{"fullName": "Gold", "label": "Gold", "default": False}]}}}})
    stock.org.grant_fields(["Lead.Grade__c", "Lead.Tier__c"])
    a, b = open_leads(stock, 2)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.update(a, {"Grade__c": "E"})
    assert error(refused)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    sf.Lead.update(a, {"Tier__c": "Platinum"})  # an unrestricted picklist takes any value
    failed = bulk_update(sf, [{"Id": b, "Grade__c": "Z"}])
    assert failed[0]["sf__Error"].startswith("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")


def test_converted_leads_refuse_every_update(full: RunningSalesforce) -> None:
    sf = client(full)
    converted, fine = converted_lead(full), open_leads(full, 1)[0]
    with pytest.raises(SalesforceMalformedRequest) as single:
        sf.Lead.update(converted, {"Title": "CTO"})
    assert error(single) == {"message": "cannot reference converted lead", "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD",
                             "fields": []}
    results = collections_update(sf, [{"id": converted, "Title": "CTO"}, {"id": fine, "Title": "CTO"}])
    assert results[0]["errors"][0]["statusCode"] == "CANNOT_UPDATE_CONVERTED_LEAD" and results[1]["success"]
    failed = bulk_update(sf, [{"Id": converted, "Title": "VP"}])
    assert failed[0]["sf__Error"].startswith("CANNOT_UPDATE_CONVERTED_LEAD:cannot reference converted lead")
    assert sf.Lead.get(converted)["Title"] != "CTO"


def test_owner_must_be_an_active_user_or_a_lead_queue(full: RunningSalesforce) -> None:
    sf = client(full)
    leads = full.org.objects["Lead"]
    users = full.org.objects["User"]
    queues = {q["QueueId"] for q in full.org.objects["QueueSobject"].values() if q["SobjectType"] == "Lead"}
    assert all(r["OwnerId"] in users or r["OwnerId"] in queues for r in leads.values())  # the seed's owners exist
    a, b = open_leads(full, 2)
    inactive = sf.User.create({"Username": "gone@leadflow.sandbox", "Email": "gone@leadflow.sandbox",
                               "LastName": "Gone", "IsActive": False})["id"]
    regular = sf.Group.create({"Name": "Everyone", "DeveloperName": "Everyone", "Type": "Regular"})["id"]
    queue = sf.Group.create({"Name": "Inbound", "DeveloperName": "Inbound", "Type": "Queue"})["id"]
    cases_only = sf.Group.create({"Name": "Cases", "DeveloperName": "Cases", "Type": "Queue"})["id"]
    sf.QueueSobject.create({"QueueId": queue, "SobjectType": "Lead"})
    sf.QueueSobject.create({"QueueId": cases_only, "SobjectType": "Case"})
    expected = {inactive: "INACTIVE_OWNER_OR_USER", regular: "FIELD_INTEGRITY_EXCEPTION",
                cases_only: "FIELD_INTEGRITY_EXCEPTION", "0055e0000000999AAA": "INVALID_CROSS_REFERENCE_KEY",
                b: "FIELD_INTEGRITY_EXCEPTION"}
    for owner, code in expected.items():
        with pytest.raises(SalesforceMalformedRequest) as refused:
            sf.Lead.update(a, {"OwnerId": owner})
        assert error(refused)["errorCode"] == code, owner
    sf.Lead.update(a, {"OwnerId": queue})
    sf.Lead.update(a, {"OwnerId": INTEGRATION_USER_ID})
    results = collections_update(sf, [{"id": a, "OwnerId": inactive}, {"id": b, "OwnerId": queue}])
    assert results[0]["errors"][0]["statusCode"] == "INACTIVE_OWNER_OR_USER" and results[1]["success"]
    failed = bulk_update(sf, [{"Id": b, "OwnerId": regular}])
    assert failed[0]["sf__Error"].startswith("FIELD_INTEGRITY_EXCEPTION")
    created = sf.Lead.create({"LastName": "New", "Company": "Acme"})["id"]
    assert sf.Lead.get(created)["OwnerId"] == INTEGRATION_USER_ID  # the creating user owns it
    names = {r["Id"]: r["Name"] for r in sf.query("SELECT Id, Name, IsActive FROM User")["records"]}
    assert names[INTEGRATION_USER_ID] == "Integration User" and names[inactive] == "Gone"


def test_status_and_owner_changes_leave_lead_history(full: RunningSalesforce) -> None:
    sf = client(full)
    a, b, c = open_leads(full, 3)
    before = {i: full.org.objects["Lead"][i]["Status"] for i in (a, b, c)}
    after = {i: "Nurture" if before[i] != "Nurture" else "Working - Contacted" for i in (a, b, c)}
    owner = next(u for u, r in full.org.objects["User"].items()
                 if r["IsActive"] and u != full.org.objects["Lead"][b]["OwnerId"])
    seeded = set(full.org.objects["LeadHistory"])
    sf.Lead.update(a, {"Status": after[a]})
    assert collections_update(sf, [{"id": b, "Status": after[b], "OwnerId": owner}])[0]["success"]
    assert not bulk_update(sf, [{"Id": c, "Status": after[c]}])
    sf.Lead.update(a, {"Title": "No history for this"})
    rows = sf.query_all(f"SELECT Id, LeadId, Field, OldValue, NewValue, CreatedDate FROM LeadHistory WHERE Field = "
                        f"'Status' AND LeadId IN ('{a}', '{b}', '{c}') ORDER BY CreatedDate")["records"]
    new = [r for r in rows if r["Id"] not in seeded]
    assert [(r["LeadId"], r["OldValue"], r["NewValue"]) for r in new] == [(i, before[i], after[i]) for i in (a, b, c)]
    assert not seeded & {r["Id"] for r in new} and len(full.org.objects["LeadHistory"]) == len(seeded) + 4
    assert all(r["Id"].startswith("017") for r in rows)
    stamps = [r["CreatedDate"] for r in rows]
    assert stamps == sorted(stamps)
    owners = sf.query(f"SELECT Field, NewValue FROM LeadHistory WHERE Field = 'Owner' AND LeadId = '{b}'")["records"]
    assert [r["NewValue"] for r in owners] == [owner]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.LeadHistory.create({"LeadId": a, "Field": "Status"})
    assert error(refused)["errorCode"] == "INVALID_TYPE_FOR_OPERATION"


# ------------------------------------------------------------------------------------------------- Bulk API 2.0


def test_bulk_query_job_moves_through_states_and_ignores_order(tmp_path: Path) -> None:
    with running_salesforce(tmp_path, leads=60, bulk_query_polls=3, page_size=200) as sandbox:
        session, token = sandbox.session(), sandbox.token()
        headers = {"Authorization": f"Bearer {token}"}
        jobs = f"{sandbox.url}/services/data/v59.0/jobs/query"
        soql = "SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp DESC, Id DESC"
        job = session.post(jobs, json={"operation": "query", "query": soql}, headers=headers, timeout=10).json()
        assert job["state"] == "UploadComplete"
        early = session.get(f"{jobs}/{job['id']}/results", headers=headers, timeout=10)
        assert early.status_code == 400 and early.json()[0]["errorCode"] == "INVALIDJOBSTATE"
        states = [session.get(f"{jobs}/{job['id']}", headers=headers, timeout=10).json()["state"] for _ in range(4)]
        assert states == ["InProgress", "InProgress", "JobComplete", "JobComplete"]
        text = session.get(f"{jobs}/{job['id']}/results", headers=headers, timeout=10).text
        ids = [r["Id"] for r in csv.DictReader(io.StringIO(text))]
        assert len(ids) == 60 and ids == sorted(ids)  # record-id order, not the ORDER BY asked for
        sf = client(sandbox)
        rows = [r for page in sf.bulk2.Lead.query(soql, wait=0.01) for r in csv.DictReader(io.StringIO(page))]
        assert len(rows) == 60


def test_bulk_query_job_that_fails_at_run_time(stock: RunningSalesforce) -> None:
    sf = client(stock)
    sf.restful("tooling/sobjects/CustomField", method="POST", json=GRADE)
    permission_set = stock.org.grant_fields(["Lead.Grade__c"])
    session, headers = stock.session(), {"Authorization": f"Bearer {sf.session_id}"}
    jobs = f"{stock.url}/services/data/v59.0/jobs/query"
    job = session.post(jobs, json={"operation": "query", "query": "SELECT Id, Grade__c FROM Lead"}, headers=headers,
                       timeout=10).json()
    assignment = next(i for i, a in stock.org.objects["PermissionSetAssignment"].items()
                      if a["PermissionSetId"] == permission_set)
    sf.PermissionSetAssignment.delete(assignment)  # access revoked while the job waits to run
    info = [session.get(f"{jobs}/{job['id']}", headers=headers, timeout=10).json() for _ in range(2)][-1]
    assert info["state"] == "Failed" and "INVALID_FIELD" in info["errorMessage"]
    results = session.get(f"{jobs}/{job['id']}/results", headers=headers, timeout=10)
    assert results.status_code == 400 and results.json()[0]["errorCode"] == "INVALIDJOBSTATE"


def test_bulk_query_job_failed_by_the_org(full: RunningSalesforce) -> None:
    full.faults.inject(r"GET .*/jobs/query/\w+$", "job_failed", message="Retried more than 15 times")
    with pytest.raises(SalesforceOperationError) as failed:
        list(client(full).bulk2.Lead.query("SELECT Id FROM Lead", wait=0.01))
    assert "Retried more than 15 times" in str(failed.value)


def test_bulk_ingest_refuses_a_header_the_user_cannot_see(stock: RunningSalesforce) -> None:
    sf = client(stock)
    with pytest.raises(SalesforceOperationError) as failed:
        sf.bulk2.Lead.update(records=[{"Id": open_leads(stock, 1)[0], "Grade__c": "A"}], wait=0)
    assert "Field name not found : Grade__c" in str(failed.value)


def test_connector_backfill_orders_bulk_results_itself(tmp_path: Path) -> None:
    with running_salesforce(tmp_path, leads=40, stamp_run=1) as full:
        backfill_in_order(full)


def backfill_in_order(full: RunningSalesforce) -> None:
    creds = SalesforceCredentials(login_url=full.url, client_id=full.client_id, client_secret=full.client_secret)
    connector = salesforce_connector(creds, session=full.session(), bulk_query_threshold=1, bulk_page_size=15,
                                     bulk_wait=0.0, page_size=200, lookback=timedelta(0))
    frames = list(connector.backfill(SEED_BASE - timedelta(days=1), SEED_BASE + timedelta(days=1)))
    bulk_jobs = [j for j in full.org.jobs.values() if j["_kind"] == "query"]
    assert bulk_jobs and all("ORDER BY" not in j["query"].upper() for j in bulk_jobs)
    keys = [(s, i) for f in frames for s, i in zip(f["source_modstamp"], f["lead_id"], strict=True)]
    assert len(keys) == 40 and keys == sorted(keys) and len({i for _, i in keys}) == 40
    assert [i for _, i in keys] != sorted(i for _, i in keys)  # the sandbox's Id order was not the modstamp order


def test_connector_on_a_stock_org_needs_the_custom_fields(stock: RunningSalesforce) -> None:
    creds = SalesforceCredentials(login_url=stock.url, client_id=stock.client_id, client_secret=stock.client_secret)
    connector = salesforce_connector(creds, session=stock.session(), backoff=0.0, lookback=timedelta(0))
    # The org's INVALID_FIELD becomes one line naming the field and the commands that fix it.
    with pytest.raises(OrgNotReady, match=r"No such column '\w+__c' on entity 'Lead' — run `leadflow doctor"):
        next(connector.pull(None))
    with pytest.raises(SalesforceMalformedRequest) as missing:  # what the org itself answered
        client(stock).query("SELECT Id, Grade__c FROM Lead")
    assert error(missing)["errorCode"] == "INVALID_FIELD" and "__c' on entity 'Lead'" in error(missing)["message"]
    stock.org.install_leadflow_fields(grant=False)
    with pytest.raises(OrgNotReady):  # created, but nobody granted the integration user access
        next(connector.pull(None))
    stock.org.install_leadflow_fields()
    frame = next(connector.pull(None))
    assert len(frame) == 40 and frame["_pull_error"].isna().all()
    fields = {f["name"]: f for f in client(stock).Lead.describe()["fields"]}
    assert all(fields[name]["updateable"] for name in LEADFLOW_LEAD_FIELDS)


@pytest.mark.parametrize(("size", "pages"), [(2, [["b1", "a2"], ["c2"]]), (5, [["b1", "a2", "c2"]])])
def test_ordered_pages_orders_by_stamp_then_id_and_keeps_each_id_once(size: int, pages: list[list[str]]) -> None:
    from leadflow.connectors.salesforce import _ordered_pages

    t1, t2 = "2026-10-01T00:00:00.000+0000", "2026-10-01T00:01:00.000+0000"
    records = [{"Id": "c", "S": t2}, {"Id": "a", "S": t1}, {"Id": "b", "S": t1}, {"Id": "a", "S": t2}]
    out = list(_ordered_pages(iter(records), "Id", "S", size))
    assert [[r["Id"] + ("1" if r["S"] == t1 else "2") for r in page] for page in out] == pages


# ------------------------------------------------------------------------------------------------- login


def test_client_credentials_only_on_my_domain(tmp_path: Path) -> None:
    with running_salesforce(tmp_path, leads=0, my_domain="127.0.0.1") as sandbox:
        form = {"grant_type": "client_credentials", "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret}
        other = sandbox.url.replace("127.0.0.1", "localhost")
        refused = sandbox.session().post(f"{other}/services/oauth2/token", data=form, timeout=10)
        assert refused.status_code == 400 and refused.json() == {
            "error": "invalid_grant", "error_description": "request not supported on this domain"}
        password = sandbox.session().post(f"{other}/services/oauth2/token", timeout=10, data=form | {
            "grant_type": "password", "username": sandbox.org.username, "password": sandbox.org.password})
        assert password.status_code == 200  # only client credentials are tied to My Domain
        assert sandbox.session().post(f"{sandbox.url}/services/oauth2/token", data=form, timeout=10).ok
        creds = SalesforceCredentials(login_url=other, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret)
        connector = salesforce_connector(creds, session=sandbox.session(), backoff=0.0)
        with pytest.raises(SalesforceAuthError) as login:
            next(connector.pull(None), None)
        message = str(login.value)
        assert "My Domain" in message and sandbox.client_secret not in message and "\n" not in message
