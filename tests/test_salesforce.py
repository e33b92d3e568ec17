"""The Salesforce connector against the HTTPS sandbox, with unmodified simple-salesforce underneath."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceGeneralError

from leadflow.connectors.base import (
    CURSOR_COLUMN,
    ApiBudget,
    BudgetExhausted,
    CrmWriter,
    ExportGuardError,
    LeadSource,
    SourceStopped,
)
from leadflow.connectors.salesforce import (
    PULL_ERROR_COLUMN,
    SalesforceAuthError,
    SalesforceConnector,
    SalesforceCredentials,
    WriteError,
    load_mapping,
    salesforce_connector,
)
from leadflow.pipeline.errors import ConfigError
from leadflow.sandbox.salesforce import SEED_BASE, RunningSalesforce

LEADS = 800  # runs of 250 equal stamps, pages of 200: page boundaries fall inside runs


# `sandbox` (module-scoped, seeded with this module's LEADS) comes from tests/conftest.py.
pytestmark = pytest.mark.usefixtures("_reset_sandbox")


@pytest.fixture
def connect(sandbox: RunningSalesforce) -> Callable[..., SalesforceConnector]:
    def make(**options: Any) -> SalesforceConnector:
        creds = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret)
        options = {"page_size": 200, "backoff": 0.0, "bulk_wait": 0.0, "lookback": timedelta(0)} | options
        return salesforce_connector(creds, session=sandbox.session(), **options)

    return make


@pytest.fixture
def sf(sandbox: RunningSalesforce) -> Salesforce:
    return Salesforce(instance_url=sandbox.url, session_id=sandbox.token(), session=sandbox.session(), version="59.0")


def _count(sandbox: RunningSalesforce, since: datetime, until: datetime | None = None) -> int:
    """Leads in the org with SystemModstamp in [since, until) (earlier tests move stamps when they write)."""
    lo = since.strftime("%Y-%m-%dT%H:%M:%S")
    hi = until.strftime("%Y-%m-%dT%H:%M:%S") if until else "9999"
    return sum(lo <= r["SystemModstamp"] < hi for r in sandbox.org.objects["Lead"].values())


def _all(frames: Iterator[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(list(frames), ignore_index=True)


def test_protocols_and_secrets_stay_out_of_reprs(connect: Callable[..., SalesforceConnector],
                                                 sandbox: RunningSalesforce) -> None:
    connector = connect()
    assert isinstance(connector, LeadSource) and isinstance(connector, CrmWriter)
    assert {"email", "status", "country_code", "mailable", "email_opt_in"} <= set(connector.writable_columns)
    assert "created_at" not in connector.writable_columns
    assert sandbox.client_secret not in repr(connector) + repr(connector.credentials)
    bad = salesforce_connector(SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                                     client_secret="wrong-secret-123"), session=sandbox.session())
    with pytest.raises(SalesforceAuthError) as refused:
        next(bad.pull(None))
    assert "invalid_client" in str(refused.value) and "wrong-secret-123" not in str(refused.value)
    with pytest.raises(ValueError):
        SalesforceCredentials(login_url=sandbox.url)
    password_grant = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                           client_secret=sandbox.client_secret, username=sandbox.org.username,
                                           password=sandbox.org.password)
    assert sandbox.org.password not in repr(password_grant)
    assert len(_all(salesforce_connector(password_grant, session=sandbox.session()).pull_objects("User"))) > 0
    direct = SalesforceCredentials(instance_url=sandbox.url, session_token=sandbox.token())
    assert len(next(salesforce_connector(direct, session=sandbox.session(), page_size=200).pull(None))) == 200
    with pytest.raises(ValueError, match="https"):
        SalesforceCredentials(login_url="http://127.0.0.1", client_id="x", client_secret="y")


def test_pull_pages_across_equal_stamps_without_skips_or_duplicates(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce
) -> None:
    connector = connect()
    frames = list(connector.pull(None))
    pulled = pd.concat(frames, ignore_index=True)
    assert [len(f) for f in frames] == [200, 200, 200, 200]
    assert frames[0][CURSOR_COLUMN].iloc[-1] == frames[1][CURSOR_COLUMN].iloc[0]  # boundary inside a run
    assert len(pulled) == LEADS and pulled["lead_id"].is_unique
    assert set(pulled["lead_id"]) == set(sandbox.org.objects["Lead"])
    keys = list(zip(pulled[CURSOR_COLUMN], pulled["lead_id"], strict=True))
    assert keys == sorted(keys)
    assert (pulled["source"] == "salesforce").all() and pulled[PULL_ERROR_COLUMN].isna().all()
    assert pulled["email_opt_in"].dtype == "boolean" and pulled[CURSOR_COLUMN].str.endswith("Z").all()
    assert connector.api_calls == 1 + 4  # limits, then 4 pages


def test_incremental_since_and_lookback_overlap(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce, sf: Salesforce
) -> None:
    since = SEED_BASE + timedelta(minutes=2)
    newer = {i for i, r in sandbox.org.objects["Lead"].items() if r["SystemModstamp"] >= "2026-10-01T00:02"}
    exact = _all(connect().pull(since))
    assert set(exact["lead_id"]) == newer
    overlapped = _all(connect(lookback=timedelta(minutes=1)).pull(since))
    assert overlapped["lead_id"].is_unique and len(overlapped) == _count(sandbox, since - timedelta(minutes=1))
    assert len(overlapped) > len(newer)
    # The flow keeps the watermark: a change after it comes back in the next pull.
    watermark = datetime.fromisoformat(exact[CURSOR_COLUMN].max())
    lead_id = exact["lead_id"].iloc[0]
    sf.Lead.update(lead_id, {"Title": "Chief Incrementalist"})
    again = _all(connect(lookback=timedelta(seconds=1)).pull(watermark))
    changed = again[again["lead_id"] == lead_id]
    assert len(changed) == 1 and changed["title"].iloc[0] == "Chief Incrementalist"
    until = _all(connect().pull(SEED_BASE, until=SEED_BASE + timedelta(minutes=1)))
    assert len(until) == _count(sandbox, SEED_BASE, SEED_BASE + timedelta(minutes=1)) > 0


def test_backfill_uses_bulk2_above_threshold(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce
) -> None:
    start, end = SEED_BASE, SEED_BASE + timedelta(minutes=3)
    jobs_before = len(sandbox.org.jobs)
    small = _all(connect(bulk_query_threshold=10_000).backfill(start, end))
    assert len(sandbox.org.jobs) == jobs_before
    bulk = connect(bulk_query_threshold=100, bulk_page_size=300)
    frames = list(bulk.backfill(start, end))
    expected = _count(sandbox, start, end)
    assert len(sandbox.org.jobs) == jobs_before + 1 and [len(f) for f in frames] == [300, 300, expected - 600]
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), small)
    assert len(bulk.guard.pulled) == expected


def test_write_back_then_read_back(connect: Callable[..., SalesforceConnector], sf: Salesforce) -> None:
    connector = connect()
    pulled = next(connector.pull(None))
    ids = pulled["lead_id"].iloc[:3].tolist()
    changes = pd.DataFrame({
        "record_id": ids,
        "country_code": ["US", "DE", pd.NA],
        "mailable": pd.array([True, False, pd.NA], dtype="boolean"),
        "email_opt_in": pd.array([True, pd.NA, pd.NA], dtype="boolean"),
        "status": ["Nurture", pd.NA, "Working - Contacted"],
    })
    result = connector.write(changes)
    assert result.written == ids and result.failures.empty and result.api_calls == 1
    first, second, third = (sf.Lead.get(i) for i in ids)
    assert (first["Country_Code__c"], first["Mailable__c"], first["Email_Opt_In__c"], first["Status"]) == (
        "US", True, True, "Nurture")
    assert second["Country_Code__c"] == "DE" and second["Mailable__c"] is False
    assert third["Status"] == "Working - Contacted" and third["Country_Code__c"] is None
    assert first["SystemModstamp"] > pulled[CURSOR_COLUMN].iloc[0].replace("Z", "+0000")
    with pytest.raises(WriteError):
        connector.write(pd.DataFrame({"record_id": ids[:1], "email_domain": ["x.com"]}))
    replayed = connector.write(pd.DataFrame({"record_id": ids[1:2], "mailable": ["True"], "email_valid": ["False"]}))
    assert replayed.written == ids[1:2]  # dead-letter payloads carry booleans as text
    assert (sf.Lead.get(ids[1])["Mailable__c"], sf.Lead.get(ids[1])["Email_Valid__c"]) == (True, False)


def test_partial_failure_then_retry_succeeds(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce, sf: Salesforce
) -> None:
    connector = connect()
    ids = next(connector.pull(None))["lead_id"].iloc[:4].tolist()
    sandbox.faults.inject("PATCH .*/composite/sobjects", "lock_row", ids=[ids[3]])
    sandbox.org.put("Lead", {"IsConverted": True, "Status": "Closed - Converted"}, ids[2])  # converted since the pull
    changes = pd.DataFrame({"record_id": ids, "status": ["Nurture", "Qualified", "Nurture", "Nurture"],
                            "email": [pd.NA, "not-an-email", pd.NA, pd.NA]})
    result = connector.write(changes)
    assert result.written == ids[:1]
    # Values the describe says the org would refuse are never sent: a status outside the restricted picklist, an
    # e-mail field value that is not an address.
    assert sorted(result.refused[["record_id", "field", "reason"]].values.tolist()) == sorted(
        [[ids[1], "Status", "NOT_IN_PICKLIST"], [ids[1], "Email", "INVALID_EMAIL_ADDRESS"]])
    failures = result.failures.set_index("record_id")
    assert failures.loc[ids[2], "error_code"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert failures.loc[ids[3], "error_code"] == "UNABLE_TO_LOCK_ROW"
    assert failures["retryable"].tolist() == [False, True]
    retry = changes[changes["record_id"].isin(failures.index[failures["retryable"]])]
    again = connector.write(retry)
    assert again.written == [ids[3]] and again.failures.empty and sf.Lead.get(ids[3])["Status"] == "Nurture"


def test_bulk_ingest_above_threshold(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce, sf: Salesforce
) -> None:
    connector = connect(bulk_write_threshold=5)
    leads = sandbox.org.objects["Lead"]  # converted leads cannot be updated (CANNOT_UPDATE_CONVERTED_LEAD)
    ids = [i for i in next(connector.pull(None))["lead_id"] if not leads[i].get("IsConverted")][:8]
    sandbox.faults.inject(r"PATCH .*/jobs/ingest/\w+$", "lock_row", ids=[ids[7]])
    statuses = ["Nurture"] * 6 + ["Bogus", "Nurture"]
    result = connector.write(pd.DataFrame({"record_id": ids, "status": statuses, "department": ["it"] * 8}))
    # "Bogus" is left out (restricted picklist), the rest of that record is written.
    assert result.written == ids[:7] and sf.Lead.get(ids[5])["Department__c"] == "it"
    assert result.refused["record_id"].tolist() == [ids[6]] and sf.Lead.get(ids[6])["Department__c"] == "it"
    codes = dict(zip(result.failures["record_id"], result.failures["error_code"], strict=True))
    assert codes == {ids[7]: "UNABLE_TO_LOCK_ROW"}
    assert result.failures.set_index("record_id").loc[ids[7], "retryable"]


def test_dry_run_writes_nothing(connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce) -> None:
    connector = connect()
    ids = next(connector.pull(None))["lead_id"].iloc[:3].tolist()
    before = {i: dict(sandbox.org.objects["Lead"][i]) for i in ids}
    calls = connector.api_calls
    result = connector.write(pd.DataFrame({"record_id": ids, "seniority": ["vp", pd.NA, "director"]}), dry_run=True)
    assert result.dry_run and result.written == [ids[0], ids[2]] and connector.api_calls == calls
    assert result.planned["Seniority__c"].tolist() == ["vp", "director"]
    assert {i: sandbox.org.objects["Lead"][i] for i in ids} == before


def test_export_guard(connect: Callable[..., SalesforceConnector]) -> None:
    connector = connect(max_change_share=0.25, guard_floor=10)
    ids = next(connector.pull(None))["lead_id"].tolist()  # 200 pulled in this run
    changes = pd.DataFrame({"record_id": ids[:60], "title": ["Guarded"] * 60})
    with pytest.raises(ExportGuardError) as refused:
        connector.write(changes, dry_run=True)
    assert refused.value.records == 60 and refused.value.pulled == 200
    assert connector.write(changes, dry_run=True, override=True).written == ids[:60]
    assert connector.write(changes.iloc[:50], dry_run=True).written == ids[:50]
    fresh = connect(guard_floor=10)  # nothing pulled yet: only writes up to the floor go through
    assert len(fresh.write(changes.iloc[:10], dry_run=True).written) == 10
    with pytest.raises(ExportGuardError):
        fresh.write(changes.iloc[:11], dry_run=True)


def test_503_and_timeouts_are_retried(connect: Callable[..., SalesforceConnector],
                                      sandbox: RunningSalesforce) -> None:
    sandbox.faults.inject("GET .*/query/", "503", times=2)
    sandbox.faults.inject("GET .*/query/01g", "slow", seconds=2.0)
    assert len(_all(connect(timeout=0.5).pull(None))) == LEADS
    assert not sandbox.faults.pending()
    sandbox.faults.inject("GET .*/query/", "503", times=10)
    with pytest.raises(SalesforceGeneralError):
        next(connect(retries=2).pull(None))


def test_expired_session_relogs_in_once(connect: Callable[..., SalesforceConnector],
                                        sandbox: RunningSalesforce, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    connector = connect()
    pages = connector.pull(None)
    first = next(pages)
    sandbox.faults.inject("GET .*/query/01g", "401")  # the session dies between pages
    rest = list(pages)
    assert len(first) + sum(len(f) for f in rest) == LEADS
    assert "logging in again" in caplog.text
    assert sandbox.client_secret not in caplog.text and "00D5e0000000001!" not in caplog.text  # no secret, no token


def test_expired_query_locator_resumes_from_the_last_stamp(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce
) -> None:
    sandbox.faults.inject("GET .*/query/01g", "invalid_locator", times=2)
    pulled = _all(connect().pull(None))
    assert len(pulled) == LEADS and pulled["lead_id"].is_unique and not sandbox.faults.pending()
    keys = list(zip(pulled[CURSOR_COLUMN], pulled["lead_id"], strict=True))
    assert keys == sorted(keys)


def test_request_limit_exceeded_stops_cleanly(connect: Callable[..., SalesforceConnector],
                                              sandbox: RunningSalesforce) -> None:
    pages = connect().pull(None)
    kept = [next(pages), next(pages)]
    sandbox.faults.inject("GET .*/query/01g", "403")
    with pytest.raises(SourceStopped) as stopped:
        next(pages)
    assert "REQUEST_LIMIT_EXCEEDED" in stopped.value.reason and sum(len(k) for k in kept) == 400


def test_budget_stops_the_pull(connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce) -> None:
    pages = connect(budget=ApiBudget("salesforce", limit=3)).pull(None)  # limits + 2 pages
    assert len(next(pages)) == 200 and len(next(pages)) == 200
    with pytest.raises(BudgetExhausted):
        next(pages)
    sandbox.org.set_limits(max_calls=1000, used=797)  # org-wide: stop at 80% of the daily allocation
    org_pages = connect(max_org_usage_share=0.8).pull(None)
    assert len(next(org_pages)) == 200  # limits (798) + page (799)
    with pytest.raises(BudgetExhausted) as spent:
        list(org_pages)
    assert "800/1000" in str(spent.value)


def test_malformed_records_get_a_pull_error(connect: Callable[..., SalesforceConnector],
                                           sandbox: RunningSalesforce) -> None:
    sandbox.faults.inject("GET .*/query/", "malformed", set={"HasOptedOutOfEmail": "maybe", "Status": "Qualified??",
                                                             "SystemModstamp": "yesterday"})
    pulled = _all(connect().pull(None))
    assert len(pulled) == LEADS
    errors = pulled[PULL_ERROR_COLUMN].dropna().tolist()
    assert len(errors) == 2
    assert "missing fields: Email" in errors[0] or "missing fields: Email" in errors[1]
    broken = next(e for e in errors if "HasOptedOutOfEmail" in e)
    assert "not a boolean" in broken and "unknown picklist value" in broken and "SystemModstamp" in broken


def test_pull_contacts_and_accounts(connect: Callable[..., SalesforceConnector]) -> None:
    connector = connect()
    contacts = _all(connector.pull_objects("Contact"))
    accounts = _all(connector.pull_objects("Account", since=SEED_BASE, fields=["Name", "Website"]))
    assert len(contacts) == LEADS // 4 and contacts["Id"].is_unique and "AccountId" in contacts
    assert len(accounts) == LEADS // 10 and list(accounts.columns[:3]) == ["Id", "Name", "Website"]


def test_mapping_errors_name_the_yaml_path(tmp_path: Path) -> None:
    assert "Email" in load_mapping().objects["Lead"].fields
    bad = tmp_path / "mapping.yaml"
    bad.write_text("objects:\n  Lead:\n    fields:\n      Email: {column: e_mail}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_mapping(bad)
    assert exc.value.yaml_path == "objects.Lead.fields.Email" and "e_mail" in str(exc.value)
    twice = tmp_path / "twice.yaml"
    twice.write_text("objects:\n  Lead:\n    fields:\n      Email: {column: email}\n      Other__c: {column: email}\n",
                     encoding="utf-8")
    with pytest.raises(ConfigError, match="both Email and Other__c"):
        load_mapping(twice)


def test_since_in_another_time_zone(connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce) -> None:
    since = datetime(2026, 10, 1, 2, 3, tzinfo=timezone(timedelta(hours=2, minutes=3)))  # == SEED_BASE
    pulled = _all(connect().pull(since, until=since + timedelta(minutes=1)))
    assert len(pulled) == _count(sandbox, SEED_BASE, SEED_BASE + timedelta(minutes=1)) > 0
