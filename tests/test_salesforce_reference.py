"""Reference data for the enrich stage from Salesforce (accounts, contacts, leads) and number fields both ways,
against the HTTPS sandbox with unmodified simple-salesforce underneath."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from leadflow.connectors.base import ApiBudget, BudgetExhausted
from leadflow.connectors.salesforce import (
    PULL_ERROR_COLUMN,
    SalesforceConnector,
    SalesforceCredentials,
    WriteError,
    load_mapping,
    salesforce_connector,
)
from leadflow.identity.enrichment import ACCOUNT_COLUMNS, EXISTING_COLUMNS
from leadflow.pipeline.errors import ConfigError
from leadflow.identity.matching import registered_domain
from leadflow.sandbox.salesforce import RunningSalesforce
from leadflow.sandbox.salesforce_seed import INDUSTRIES, seed_org
from leadflow.sandbox.salesforce import Org as SandboxOrg
from leadflow.sync.writeback import changed_fields

LEADS = 600

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


def test_reference_data_has_accounts_with_firmographics_and_contacts_plus_open_leads(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce
) -> None:
    connector = connect()
    accounts, existing = connector.reference_data()
    org = sandbox.org.objects
    assert tuple(accounts.columns) == ACCOUNT_COLUMNS and tuple(existing.columns) == EXISTING_COLUMNS
    assert accounts["employees"].dtype == "Int64" and accounts["annual_revenue"].dtype == "Float64"
    assert len(accounts) == len(org["Account"]) == LEADS // 10 and accounts["account_id"].is_unique
    # ~80% of seeded accounts carry firmographics; industries come from the standard picklist.
    assert 0.65 * len(accounts) <= accounts["employees"].notna().sum() <= 0.95 * len(accounts)
    assert accounts["annual_revenue"].notna().sum() == accounts["employees"].notna().sum()
    assert set(accounts["industry"].dropna()) <= set(INDUSTRIES)
    first = accounts.set_index("account_id").loc["0015e0000000001AAA"]
    record = org["Account"]["0015e0000000001AAA"]
    assert first["name"] == record["Name"] and first["owner_id"] == record["OwnerId"]
    assert first["last_activity_at"] == record["LastActivityDate"]
    if record["NumberOfEmployees"] is not None:
        assert first["employees"] == record["NumberOfEmployees"]
        assert first["annual_revenue"] == record["AnnualRevenue"]
    # BillingCountry is free text in the org; the reference carries ISO codes (NA when it is not a country).
    assert accounts["country_code"].dropna().str.fullmatch(r"[A-Z]{2}").all()
    assert accounts["country_code"].notna().sum() > len(accounts) // 2
    # Seeded accounts sit on the domains their companies' people write from: leads match them by e-mail domain.
    domains = set(accounts["website"].dropna().map(registered_domain).dropna())
    lead_domains = [registered_domain(r["Email"]) for r in org["Lead"].values() if r["Email"]]
    assert sum(d in domains for d in lead_domains) >= LEADS // 10

    open_leads = {i for i, r in org["Lead"].items() if not r["IsConverted"]}
    assert 0 < len(open_leads) < len(org["Lead"])  # "Closed - Converted" leads are converted
    by_object = existing.groupby("object")["record_id"].apply(set).to_dict()
    assert by_object == {"Contact": set(org["Contact"]), "Lead": open_leads}
    contacts = existing[existing["object"] == "Contact"].set_index("record_id")
    names = {i: a["Name"] for i, a in org["Account"].items()}
    assert (contacts["company"] == [names[org["Contact"][i]["AccountId"]] for i in contacts.index]).all()
    emails = existing["email"].dropna()
    assert len(emails) > len(existing) // 2 and (emails == emails.str.strip().str.lower()).all()
    assert existing["email"].dtype == "string"
    # Three objects in pages of 200: every call went through the budget.
    assert connector.budget.used == connector.api_calls >= 1 + 1 + 2 + 2


def test_reference_data_respects_the_api_budget(connect: Callable[..., SalesforceConnector]) -> None:
    with pytest.raises(BudgetExhausted):
        connect(budget=ApiBudget("salesforce", limit=3)).reference_data()


def test_number_fields_round_trip(connect: Callable[..., SalesforceConnector], sf: Salesforce) -> None:
    connector = connect()
    bodies: list[bytes] = []
    connector.session.hooks["response"].append(lambda r, *a, **k: bodies.append(r.request.body or b""))
    lead_id = next(connector.pull(None))["lead_id"].iloc[0]
    changes = pd.DataFrame({"record_id": [lead_id], "employees": pd.array([120], dtype="Int64"),
                            "annual_revenue": pd.array([1.5e6], dtype="Float64"),
                            "account_match_confidence": pd.array([0.93], dtype="Float64"),
                            "industry": ["Technology"], "is_role_email": pd.array([False], dtype="boolean")})
    result = connector.write(changes)
    assert result.written == [lead_id] and result.failures.empty
    sent = json.loads(bodies[-1])["records"][0]  # JSON numbers on the wire, never strings
    assert (sent["NumberOfEmployees"], sent["AnnualRevenue"], sent["Account_Match_Confidence__c"]) == (120, 1.5e6, 0.93)
    assert type(sent["NumberOfEmployees"]) is int and type(sent["AnnualRevenue"]) is float
    record = sf.Lead.get(lead_id)
    assert record["NumberOfEmployees"] == 120 and record["AnnualRevenue"] == 1_500_000.0
    assert record["Account_Match_Confidence__c"] == 0.93 and record["Is_Role_Email__c"] is False
    pulled = pd.concat(list(connector.pull(None)), ignore_index=True).set_index("lead_id").loc[lead_id]
    assert pulled["employees"] == 120 and pulled["annual_revenue"] == 1_500_000.0 and pulled["industry"] == "Technology"
    frame = next(connector.pull(None))
    assert frame["employees"].dtype == "Int64" and frame["annual_revenue"].dtype == "Float64"
    assert pulled["account_match_confidence"] == 0.93  # outputs are read back: the next run compares against them
    # Dead-letter replays carry numbers as text; they are still sent as numbers.
    replay = connector.write(pd.DataFrame({"record_id": [lead_id], "employees": ["250"], "annual_revenue": ["2e6"]}))
    assert replay.written == [lead_id] and sf.Lead.get(lead_id)["NumberOfEmployees"] == 250
    with pytest.raises(WriteError, match="needs a number"):
        connector.write(pd.DataFrame({"record_id": [lead_id], "employees": ["lots"]}), dry_run=True)


def test_number_fields_through_bulk_api(connect: Callable[..., SalesforceConnector], sf: Salesforce) -> None:
    connector = connect(bulk_write_threshold=2, bulk_query_threshold=10)
    ids = next(connector.pull(None))["lead_id"].iloc[5:8].tolist()
    result = connector.write(pd.DataFrame({"record_id": ids, "employees": pd.array([7, 8, 9], dtype="Int64"),
                                           "annual_revenue": pd.array([1.0, 2.5, None], dtype="Float64")}))
    assert result.written == ids and result.failures.empty
    assert [sf.Lead.get(i)["NumberOfEmployees"] for i in ids] == [7, 8, 9]
    backfilled = pd.concat(list(connector.backfill(pd.Timestamp("2000-01-01", tz="UTC").to_pydatetime(),
                                                   pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime())))
    rows = backfilled.set_index("lead_id").loc[ids]
    assert rows["employees"].tolist() == [7, 8, 9] and rows["annual_revenue"].iloc[1] == 2.5
    assert backfilled["employees"].dtype == "Int64" and backfilled[PULL_ERROR_COLUMN].isna().all()


def test_text_in_a_number_field_is_refused_per_record(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce, sf: Salesforce, tmp_path: Path
) -> None:
    lead_id = next(iter(sandbox.org.objects["Lead"]))
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.update(lead_id, {"NumberOfEmployees": "lots"})
    assert refused.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
    for bad in ({"AnnualRevenue": True}, {"NumberOfEmployees": 12.5}, {"Account_Match_Confidence__c": "high"}):
        with pytest.raises(SalesforceMalformedRequest):
            sf.Lead.update(lead_id, bad)
    assert sf.Lead.update(lead_id, {"NumberOfEmployees": "42"}) == 204  # like Salesforce: numeric text is a number
    assert sf.Lead.get(lead_id)["NumberOfEmployees"] == 42
    # A mapping that sends a text column to a number field: the org refuses those records, the rest are written.
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("objects:\n  Lead:\n    fields:\n      Title: {column: title}\n"
                       "      NumberOfEmployees: {column: department}\n", encoding="utf-8")
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 3")["records"]]
    changes = pd.DataFrame({"record_id": ids, "department": ["lots", pd.NA, "many"], "title": ["CTO"] * 3})
    for connector in (connect(mapping=mapping), connect(mapping=mapping, bulk_write_threshold=2)):
        result = connector.write(changes)
        assert result.written == [ids[1]]
        codes = set(result.failures["error_code"])
        assert codes <= {"JSON_PARSER_ERROR", "INVALID_TYPE_ON_FIELD_IN_RECORD"} and len(codes) == 1
        assert result.failures["record_id"].tolist() == [ids[0], ids[2]]
        assert not result.failures["retryable"].any()
    assert sandbox.org.objects["Lead"][ids[0]]["NumberOfEmployees"] != "lots"


def test_soql_compares_numbers_as_numbers(sf: Salesforce, sandbox: RunningSalesforce) -> None:
    big = sf.query_all("SELECT Id, NumberOfEmployees FROM Account WHERE NumberOfEmployees >= 100")["records"]
    expected = [a for a in sandbox.org.objects["Account"].values() if (a["NumberOfEmployees"] or 0) >= 100]
    assert len(big) == len(expected) > 0 and all(r["NumberOfEmployees"] >= 100 for r in big)
    with pytest.raises(SalesforceMalformedRequest) as quoted:
        sf.query("SELECT Id FROM Account WHERE NumberOfEmployees = '100'")
    assert quoted.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_seeded_firmographics_are_deterministic() -> None:
    first, again = seed_org(SandboxOrg(), leads=300, seed=5), seed_org(SandboxOrg(), leads=300, seed=5)
    assert first.objects == again.objects
    leads = list(first.objects["Lead"].values())
    typed = sum(r["NumberOfEmployees"] is not None for r in leads)
    assert 0.05 * len(leads) <= typed <= 0.15 * len(leads)  # ~10% of leads carry what a rep typed in
    assert seed_org(SandboxOrg(), leads=300, seed=6).objects["Account"] != first.objects["Account"]


def test_number_type_needs_a_numeric_column(tmp_path: Path) -> None:
    fields = load_mapping().objects["Lead"].fields
    assert fields["NumberOfEmployees"].type == "number" and fields["AnnualRevenue"].column == "annual_revenue"
    assert fields["Account__c"].read and fields["Account__c"].write  # outputs are read back, so runs settle
    bad = tmp_path / "mapping.yaml"
    bad.write_text("objects:\n  Lead:\n    fields:\n      Title: {column: title, type: number}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_mapping(bad)
    assert exc.value.yaml_path == "objects.Lead.fields.Title" and "numeric column" in str(exc.value)


SCORED = {"lifecycle_stage": "mql", "mql_at": "2026-11-20T12:00:00Z", "grade": "A", "rating": "A1",
          "score_model_version": "v7", "lifecycle_reason": "score 71.5 ≥ 60"}


def _pulled(connector: SalesforceConnector, ids: list[str]) -> pd.DataFrame:
    return pd.concat(list(connector.pull(None)), ignore_index=True).set_index("lead_id").loc[ids]


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_score_and_lifecycle_outputs_round_trip_as_canonical_text(
    connect: Callable[..., SalesforceConnector], sf: Salesforce, bulk: bool
) -> None:
    connector = connect(bulk_write_threshold=2) if bulk else connect()
    bodies: list[bytes] = []
    connector.session.hooks["response"].append(lambda r, *a, **k: bodies.append(r.request.body or b""))
    ids = next(connector.pull(None))["lead_id"].iloc[30:32].tolist() if bulk else \
        next(connector.pull(None))["lead_id"].iloc[20:21].tolist()
    changes = pd.DataFrame({"record_id": ids, **{k: [v] * len(ids) for k, v in SCORED.items()}})
    result = connector.write(changes)
    assert result.written == ids and result.failures.empty
    if not bulk:  # Salesforce's dateTime write format, never leadflow's text as it is
        sent = json.loads(bodies[-1])["records"][0]
        assert sent["MQL_Date__c"] == "2026-11-20T12:00:00.000Z" and sent["Lifecycle_Stage__c"] == "mql"
    record = sf.Lead.get(ids[0])
    assert record["MQL_Date__c"] == "2026-11-20T12:00:00.000+0000"  # stored and read as Salesforce does
    assert (record["Grade__c"], record["Rating__c"], record["Lifecycle_Stage__c"]) == ("A", "A1", "mql")
    pulled = _pulled(connector, ids)
    for column, value in SCORED.items():
        assert pulled[column].tolist() == [value] * len(ids), column
    assert pulled[PULL_ERROR_COLUMN].isna().all()
    # The next run compares its (unchanged) outputs against what it pulled: nothing is left to write.
    frame = pulled.reset_index()
    processed = frame.copy()
    for column, value in SCORED.items():
        processed[column] = pd.array([value] * len(frame), dtype="string")
    assert changed_fields(frame, processed, connector.writable_columns).empty
    # Bulk API 2.0 query CSV gives the same canonical text.
    backfilled = pd.concat(list(connect(bulk_query_threshold=10).backfill(
        pd.Timestamp("2000-01-01", tz="UTC").to_pydatetime(), pd.Timestamp("2100-01-01", tz="UTC").to_pydatetime())))
    assert backfilled.set_index("lead_id").loc[ids, "mql_at"].tolist() == ["2026-11-20T12:00:00Z"] * len(ids)


def test_pulled_datetimes_are_canonical_whole_seconds(
    connect: Callable[..., SalesforceConnector], sf: Salesforce
) -> None:
    connector = connect()
    lead_id = next(connector.pull(None))["lead_id"].iloc[22]
    # A date set in Salesforce by someone else, with milliseconds and an offset: UTC, whole seconds.
    assert sf.Lead.update(lead_id, {"SAL_Date__c": "2026-11-21T10:30:15.250+02:00"}) == 204
    assert sf.Lead.get(lead_id)["SAL_Date__c"] == "2026-11-21T08:30:15.250+0000"
    pulled = _pulled(connector, [lead_id]).iloc[0]
    assert pulled["sal_at"] == "2026-11-21T08:30:15Z"
    assert pulled["created_at"].endswith("Z") and len(pulled["created_at"]) == len("2026-11-21T08:30:15Z")
    # An offset in leadflow's text is converted; a naive or unreadable one is refused before anything is sent.
    planned = connector.write(pd.DataFrame({"record_id": [lead_id], "sql_at": ["2026-11-21T10:00:00+01:00"]}),
                              dry_run=True).planned
    assert planned["SQL_Date__c"].tolist() == ["2026-11-21T09:00:00.000Z"]
    for bad in ("2026-11-21T10:00:00", "next week"):
        with pytest.raises(WriteError, match="needs an ISO-8601 datetime"):
            connector.write(pd.DataFrame({"record_id": [lead_id], "sql_at": [bad]}), dry_run=True)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.update(lead_id, {"SQL_Date__c": "next week"})
    assert refused.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_a_bad_lifecycle_stage_fails_that_record_only(
    connect: Callable[..., SalesforceConnector], sandbox: RunningSalesforce, bulk: bool
) -> None:
    connector = connect(bulk_write_threshold=2) if bulk else connect()
    leads = sandbox.org.objects["Lead"]
    pulled = [i for i in next(connector.pull(None))["lead_id"] if not leads[i].get("IsConverted")]
    ids = pulled[40:43] if bulk else pulled[44:47]
    changes = pd.DataFrame({"record_id": ids, "lifecycle_stage": ["sal", "qualified", "sql"],
                            "grade": ["B", "B", "Z"]})
    result = connector.write(changes)
    # A value outside a restricted picklist is never sent (the describe says the org would refuse it): it is
    # reported, and the rest of its record is written. No dead letter.
    assert result.written == ids and result.failures.empty
    assert result.refused[["record_id", "field", "reason"]].values.tolist() == [
        [ids[1], "Lifecycle_Stage__c", "NOT_IN_PICKLIST"], [ids[2], "Grade__c", "NOT_IN_PICKLIST"]]
    assert leads[ids[0]]["Lifecycle_Stage__c"] == "sal" and leads[ids[1]]["Lifecycle_Stage__c"] != "qualified"
    assert leads[ids[2]]["Grade__c"] != "Z" and leads[ids[1]]["Grade__c"] == "B"
    assert leads[ids[2]]["Lifecycle_Stage__c"] == "sql"


def test_scores_are_not_written_back() -> None:
    fields = load_mapping().objects["Lead"].fields
    columns = {spec.column: (name, spec) for name, spec in fields.items()}
    assert not {"fit_score", "engagement_score", "score"} & set(columns)  # engagement decays: every lead, every run
    for column in ("grade", "rating", "score_model_version", "lifecycle_stage", "lifecycle_reason", "mql_at",
                   "sal_at", "sql_at", "recycled_at"):
        name, spec = columns[column]
        assert spec.read and spec.write, column  # outputs are read back, so runs settle
    assert fields["Lifecycle_Stage__c"].values == ["new", "mql", "sal", "sql", "recycled"]
    assert fields["MQL_Date__c"].type == "datetime"
