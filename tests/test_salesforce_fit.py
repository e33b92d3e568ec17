"""Fitting planned Salesforce writes to the org's Lead describe (pure functions, tiny inputs)."""

from __future__ import annotations

from typing import Any

import pytest

from leadflow.connectors.salesforce import FieldSpec
from leadflow.connectors.salesforce_fit import (
    MARKER,
    check_mapping,
    cut_at_word,
    fit_planned,
    rules_from_describe,
)


def _field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    """One describe `fields` entry in the real shape (only the properties the fitting reads, plus a few more)."""
    return {"name": name, "type": type_, "length": extra.pop("length", 255 if type_ in ("string", "textarea") else 0),
            "custom": name.endswith("__c"), "updateable": extra.pop("updateable", True), "createable": True,
            "nillable": True, "picklistValues": extra.pop("picklistValues", []),
            "restrictedPicklist": extra.pop("restrictedPicklist", False), "referenceTo": extra.pop("referenceTo", []),
            "precision": extra.pop("precision", 0), "scale": extra.pop("scale", 0), **extra}


DESCRIBE = {"name": "Lead", "fields": [
    _field("Id", "id", length=18, updateable=False),
    _field("Title", length=128),
    _field("Email", "email", length=80),
    _field("OwnerId", "reference", length=18, referenceTo=["Group", "User"]),
    _field("Status", "picklist", length=255, restrictedPicklist=True, picklistValues=[
        {"value": "Open - Not Contacted", "active": True}, {"value": "Working - Contacted", "active": True},
        {"value": "Retired", "active": False}]),
    _field("LeadSource", "picklist", length=255, picklistValues=[{"value": "Web", "active": True}]),
    _field("Lifecycle_Reason__c", length=20),
    _field("Description", "textarea", length=32000),
    _field("CreatedDate", "datetime", updateable=False),
    _field("Account_Match_Confidence__c", "double", precision=5, scale=4),
    _field("Mailable__c", "boolean"),
]}
RULES = rules_from_describe(DESCRIBE)
REP = "0055e000000000AAAA"      # an active user (18 characters)
QUEUE = "00G5e000000001ABBB"    # a Lead queue


def test_rules_read_the_describe() -> None:
    status = RULES["Status"]
    assert status.restricted and status.values == {"Open - Not Contacted", "Working - Contacted"}  # inactive left out
    assert RULES["Title"].length == 128 and RULES["Title"].updateable
    assert not RULES["Id"].updateable and RULES["Account_Match_Confidence__c"].scale == 4
    assert RULES["Mailable__c"].custom and not RULES["Email"].custom


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("short", 10, "short"),
    ("exactly ten", 11, "exactly ten"),
    ("score 71.5 above the threshold of 60", 20, "score 71.5 above…"),     # cut at the last word break
    ("score 71.5 above the threshold", 17, "score 71.5 above…"),           # the break falls right at the limit
    ("abcdefghijklmnopqrstuvwxyz", 10, "abcdefghi…"),                     # no break in the second half: hard cut
    ("one, two, three, four", 12, "one, two…"),                           # no trailing comma before the marker
    ("abc", 1, "a"),                                                       # no room for the marker
])
def test_cut_at_word(text: str, limit: int, expected: str) -> None:
    cut = cut_at_word(text, limit)
    assert cut == expected and len(cut) <= limit


@pytest.mark.parametrize(("values", "kept", "reason"), [
    ({"Title": "VP Sales"}, {"Title": "VP Sales"}, None),
    ({"Status": "Working - Contacted"}, {"Status": "Working - Contacted"}, None),
    ({"Status": "Qualified"}, {}, "NOT_IN_PICKLIST"),
    ({"Status": "Retired"}, {}, "NOT_IN_PICKLIST"),                        # inactive values are refused too
    ({"LeadSource": "Partner"}, {"LeadSource": "Partner"}, None),          # unrestricted picklists take anything
    ({"Grade__c": "A"}, {}, "FIELD_MISSING"),
    ({"CreatedDate": "2026-01-01T00:00:00.000Z"}, {}, "NOT_UPDATEABLE"),
    ({"OwnerId": REP}, {"OwnerId": REP}, None),
    ({"OwnerId": REP[:15]}, {"OwnerId": REP[:15]}, None),                  # 15- and 18-character ids are the same
    ({"OwnerId": QUEUE}, {"OwnerId": QUEUE}, None),
    ({"OwnerId": "0055e00000000ZZAAA"}, {}, "INVALID_OWNER"),
    ({"Email": "a" * 75 + "@example.com"}, {}, "TOO_LONG"),                # an e-mail is never cut
    ({"Email": "ann@acme.com"}, {"Email": "ann@acme.com"}, None),
    ({"Email": "ann at acme dot com"}, {}, "INVALID_EMAIL_ADDRESS"),        # never sent: the org would refuse it
    ({"Email": "ann@acme"}, {}, "INVALID_EMAIL_ADDRESS"),
    ({"Account_Match_Confidence__c": 0.9167}, {"Account_Match_Confidence__c": 0.9167}, None),
    ({"Account_Match_Confidence__c": 12.5}, {}, "NUMBER_OUTSIDE_VALID_RANGE"),
    ({"Mailable__c": True, "Grade__c": "B"}, {"Mailable__c": True}, "FIELD_MISSING"),  # the rest is still sent
])
def test_fit_planned(values: dict[str, Any], kept: dict[str, Any], reason: str | None) -> None:
    fitted = fit_planned([("00Q1", values)], RULES, owners=[REP, QUEUE])
    assert fitted.planned == ([("00Q1", kept)] if kept else [])
    assert fitted.refused["reason"].tolist() == ([reason] if reason else [])
    assert fitted.truncated == 0
    if reason:
        row = fitted.refused.iloc[0]
        assert row["record_id"] == "00Q1" and row["field"] in values and row["message"]


def test_long_text_is_cut_never_refused() -> None:
    reason = "score 71.5 is above the MQL threshold of 60 since yesterday"
    fitted = fit_planned([("00Q1", {"Lifecycle_Reason__c": reason, "Title": "CTO"}),
                          ("00Q2", {"Lifecycle_Reason__c": "short"})], RULES)
    assert fitted.planned == [("00Q1", {"Lifecycle_Reason__c": "score 71.5 is above" + MARKER, "Title": "CTO"}),
                              ("00Q2", {"Lifecycle_Reason__c": "short"})]
    assert fitted.truncated == 1 and fitted.refused.empty


def test_owner_check_is_skipped_without_owners() -> None:
    fitted = fit_planned([("00Q1", {"OwnerId": "0055e00000000ZZAAA"})], RULES, owners=None)
    assert fitted.planned == [("00Q1", {"OwnerId": "0055e00000000ZZAAA"})]


def _spec(**kw: Any) -> FieldSpec:
    return FieldSpec(**kw)


@pytest.mark.parametrize(("name", "spec", "level", "words"), [
    ("Grade__c", _spec(column="grade", type="picklist", values=["A", "B"]), "fail", "custom field missing"),
    ("Title", _spec(column="title"), None, ""),  # a standard field: the org's length is what people type into
    ("Title", _spec(column="title", length=200), "warn", "holds 128 characters"),  # ...unless we say we write more
    ("Email", _spec(column="email", length=80), None, ""),
    ("Lifecycle_Reason__c", _spec(column="lifecycle_reason"), "warn", "cut to fit"),
    ("Lifecycle_Reason__c", _spec(column="lifecycle_reason", write=False), None, ""),  # we never write it
    ("Status", _spec(column="status", type="picklist", values=["Open - Not Contacted", "Nurture"]), "fail",
     "lacks 'Nurture'"),
    ("LeadSource", _spec(column="lead_source", type="picklist", values=["Web", "Partner"]), None, ""),  # unrestricted
    ("CreatedDate", _spec(column="created_at", type="datetime", write=False), None, ""),
    ("CreatedDate", _spec(column="created_at", type="datetime"), "fail", "not updateable"),
    ("Mailable__c", _spec(column="mailable", type="boolean"), None, ""),
    ("Title", _spec(column="email_valid", type="boolean"), "fail", "is string in the org"),
    ("Account_Match_Confidence__c", _spec(column="account_match_confidence", type="number", precision=5, scale=4),
     None, ""),
    ("Account_Match_Confidence__c", _spec(column="account_match_confidence", type="number", scale=6), "warn",
     "keeps 4 decimals"),
])
def test_check_mapping(name: str, spec: FieldSpec, level: str | None, words: str) -> None:
    problems = check_mapping({name: spec}, RULES)
    assert [p.level for p in problems] == ([level] if level else [])
    if level:
        assert problems[0].field == name and words in problems[0].problem


# ------------------------------------------------------------------------------------------------- the connector


def test_connector_writes_respect_the_describe(tmp_path: Any) -> None:
    import pandas as pd

    from leadflow.connectors.salesforce import SalesforceCredentials, salesforce_connector
    from leadflow.sandbox.salesforce import running_salesforce
    from leadflow.sandbox.salesforce_seed import WEB_QUEUE_ID

    with running_salesforce(tmp_path / "sf", leads=40, seed=3) as sandbox:
        leads = sandbox.org.objects["Lead"]
        ids = [i for i, r in leads.items() if not r.get("IsConverted")][:4]
        inactive = next(u for u, r in sandbox.org.objects["User"].items() if not r["IsActive"])
        creds = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret)
        connector = salesforce_connector(creds, session=sandbox.session())
        reason = "score 71.5 is above the MQL threshold " * 10  # 380 characters, Lifecycle_Reason__c holds 255
        changes = pd.DataFrame({
            "record_id": ids,
            "lifecycle_reason": [reason, pd.NA, pd.NA, pd.NA],
            "grade": [pd.NA, "Z", pd.NA, pd.NA],
            "department": [pd.NA, "it", pd.NA, pd.NA],
            "owner_id": [pd.NA, pd.NA, inactive, WEB_QUEUE_ID],
        })
        result = connector.write(changes)
        assert result.failures.empty  # nothing the org refuses was sent: no dead letters
        assert result.written == [ids[0], ids[1], ids[3]] and result.truncated == 1
        refused = result.refused.set_index("field")
        assert refused.loc["Grade__c", "record_id"] == ids[1] and refused.loc["Grade__c", "reason"] == "NOT_IN_PICKLIST"
        assert refused.loc["OwnerId", "record_id"] == ids[2] and refused.loc["OwnerId", "reason"] == "INVALID_OWNER"
        stored = leads[ids[0]]["Lifecycle_Reason__c"]
        assert len(stored) <= 255 and stored.endswith(MARKER) and reason.startswith(stored[:-1].rstrip())
        assert leads[ids[1]]["Department__c"] == "it" and leads[ids[1]]["Grade__c"] != "Z"
        assert leads[ids[2]]["OwnerId"] != inactive and leads[ids[3]]["OwnerId"] == WEB_QUEUE_ID
        # The describe and the owners are read once per connector; a dry run then fits without any call.
        again = connector.write(changes.iloc[[1]])
        calls = connector.api_calls
        dry = connector.write(changes, dry_run=True)
        assert again.refused["reason"].tolist() == ["NOT_IN_PICKLIST"] and connector.api_calls == calls
        assert dry.truncated == 1 and len(dry.refused) == 2 and dry.written == [ids[0], ids[1], ids[3]]
        describes = [r for r in sandbox.org.requests_seen if "/sobjects/Lead/describe" in r]
        users = [r for r in sandbox.org.requests_seen if r.startswith("GET") and "/query" in r]
        assert len(describes) == 1 and len(users) == 2  # active users, Lead queues
