"""Hostile numbers and dates quarantine their row with the column and a reason; they never crash a run (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.connectors.hubspot import FieldMap
from leadflow.connectors.hubspot_values import _read_value
from leadflow.connectors.marketo_mapping import utc_iso
from leadflow.connectors.salesforce import (
    PULL_ERROR_COLUMN,
    SalesforceCredentials,
    _pulled_number,
    _to_frame,
    load_mapping,
    salesforce_connector,
)
from leadflow.pipeline.io import prepare_leads, quarantine_path
from leadflow.sandbox.salesforce import RunningSalesforce
from leadflow.pipeline.schema import number_problem, parse_number
from leadflow.stages.standardize import normalize_timestamps

LEADS = 20  # the module-scoped Salesforce sandbox from tests/conftest.py

HOSTILE_NUMBERS = ["1e309", "-1e309", "1e19", "9223372036854775808", "-9223372036854775809", "nan", "NaN", "inf",
                   "-Infinity", "1" * 400]


@pytest.mark.parametrize("text", HOSTILE_NUMBERS)
@pytest.mark.parametrize("dtype", ["Int64"])
def test_numbers_that_do_not_fit_int64_are_refused(text: str, dtype: str) -> None:
    parsed, bad = parse_number(pd.Series(["12", text, None], dtype="string"), dtype)
    assert parsed.dtype == dtype
    assert parsed.tolist()[0] == 12 and parsed.isna().tolist() == [False, True, True]
    assert bad.tolist() == [False, True, False]
    assert number_problem(text, dtype) == "out of range for Int64"


@pytest.mark.parametrize(("text", "refused"), [("1e309", True), ("-1e309", True), ("1e19", False),
                                               ("9223372036854775808", False), ("nan", True), ("inf", True),
                                               ("1e308", False), ("abc", True), ("$5M", False)])
def test_float64_refuses_only_what_a_double_cannot_hold(text: str, refused: bool) -> None:
    parsed, bad = parse_number(pd.Series([text], dtype="string"), "Float64")
    assert bad.tolist() == [refused]
    assert parsed.isna().tolist() == [refused]


def test_number_problem_tells_garbage_from_overflow() -> None:
    assert number_problem("abc", "Int64") == "not a number"
    assert number_problem("1e19", "Int64") == "out of range for Int64"
    assert number_problem("1e400", "Float64") == "out of range for Float64"


def test_typed_input_columns_are_checked_too() -> None:
    parsed, bad = parse_number(pd.Series([1.0, np.inf, np.nan, 1e19]), "Int64")
    assert parsed.dtype == "Int64" and parsed.isna().tolist() == [False, True, True, True]
    assert bad.tolist() == [False, True, False, True]  # NaN in a float column is pandas' missing, not hostile


def test_prepare_leads_quarantines_the_row_naming_column_and_value() -> None:
    raw = pd.DataFrame({"email": ["a@x.com", "b@x.com", "c@x.com", "d@x.com"],
                        "employees": ["10", "1e19", "12", "abc"],
                        "annual_revenue": ["1.5", "2", "inf", "3"]}, dtype="string")
    loaded = prepare_leads(raw)
    assert loaded.frame["email"].tolist() == ["a@x.com"]
    assert loaded.frame["employees"].tolist() == [10]
    reasons = dict(zip(loaded.refused["lead_key"], loaded.refused["reason"], strict=True))
    assert reasons["email:b@x.com"] == "row 2: employees: out of range for Int64 '1e19'"
    assert reasons["email:c@x.com"] == "row 3: annual_revenue: out of range for Float64 'inf'"
    assert reasons["email:d@x.com"] == "row 4: employees: not a number 'abc'"
    assert loaded.refused["column"].tolist() == ["employees", "annual_revenue", "employees"]


@pytest.mark.parametrize(("text", "kept"), [("2024-01-01T00:00:00Z", True), ("1678-01-01", True),
                                            ("2261-12-31T23:59:59Z", True), ("9999-12-31T23:59:59Z", False),
                                            ("0001-01-01", False), ("1677-01-01", False), ("2262-06-01", False),
                                            ("30000-01-01", False), ("99999999999999", False)])
def test_timestamps_outside_the_supported_years_stay_unparsed(text: str, kept: bool) -> None:
    out = normalize_timestamps(pd.Series([text], dtype="string")).iloc[0]
    if kept:
        assert out == pd.Timestamp(text).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        assert out == text  # left as it came, so the standardize gate quarantines the row


@pytest.mark.parametrize(("text", "iso"), [
    ("1788177268123", "2026-08-31T11:54:28Z"),  # HubSpot's millisecond epoch, with a fraction of a second
    ("1788177268000", "2026-08-31T11:54:28Z"), ("1788177268", "2026-08-31T11:54:28Z"),
    ("1788177268.999999", "2026-08-31T11:54:28Z"),
])
def test_epoch_timestamps_with_fractions_of_a_second(text: str, iso: str) -> None:
    assert normalize_timestamps(pd.Series([text, "2026-01-01"], dtype="string")).tolist() == [
        iso, "2026-01-01T00:00:00Z"]


@pytest.mark.parametrize(("value", "dtype", "expected"), [
    (10, "Int64", 10.0), ("42", "Int64", 42.0), (10**19, "Int64", None), (10**19, "Float64", 1e19),
    (10**400, "Float64", None), ("1e309", "Float64", None), ("nan", "Float64", None), (True, "Int64", None),
    (2**63, "Int64", None), (-(2**63) - 4096, "Int64", None)])
def test_pulled_number(value: object, dtype: str, expected: float | None) -> None:
    assert _pulled_number(value, dtype) == expected


def test_to_frame_turns_hostile_values_into_pull_errors() -> None:
    mapping = load_mapping().objects["Lead"]
    base = dict.fromkeys(mapping.select()) | {
        "Id": "00Q000000000001AAA", "Email": "a@x.com", "LastName": "A", "Company": "Acme",
        "SystemModstamp": "2024-01-01T00:00:00.000+0000", "CreatedDate": "2024-01-01T00:00:00.000+0000"}
    records = [
        base | {"NumberOfEmployees": 10},
        base | {"Id": "00Q000000000002AAA", "NumberOfEmployees": 10**19, "AnnualRevenue": "1e309"},
        base | {"Id": "00Q000000000003AAA", "NumberOfEmployees": 10**5000},
        base | {"Id": "00Q000000000004AAA", "CreatedDate": "9999-12-31T23:59:59.000+0000"},
    ]
    frame = _to_frame(records, mapping)
    assert frame["employees"].dtype == "Int64" and frame["employees"].tolist()[0] == 10
    errors = frame[PULL_ERROR_COLUMN].tolist()
    assert pd.isna(errors[0])
    assert "NumberOfEmployees: out of range for Int64 ('10000000000000000000')" in errors[1]
    assert "AnnualRevenue: out of range for Float64 ('1e309')" in errors[1]
    assert "NumberOfEmployees: out of range for Int64 ('an integer of over 4300 digits')" in errors[2]
    assert "CreatedDate: datetime outside 1678-2261" in errors[3]


def _hostile_file(tmp_path: Path) -> tuple[Path, int]:
    good = [{"email": f"good{i}@acme.com", "first_name": "G", "last_name": f"L{i}", "company": "Acme",
             "employees": str(10 + i), "annual_revenue": "1000000", "created_at": "2024-03-01T10:00:00Z"}
            for i in range(30)]
    bad_values = [("employees", v) for v in HOSTILE_NUMBERS] + [
        ("annual_revenue", "1e309"), ("annual_revenue", "nan"), ("annual_revenue", "-inf"),
        ("annual_revenue", "1" * 400), ("created_at", "9999-12-31T23:59:59Z"), ("created_at", "0001-01-01"),
        ("created_at", "30000-01-01"), ("updated_at", "1600-01-01"), ("created_at", "99999999999999"),
        ("updated_at", "2262-12-31T00:00:00Z")]
    assert len(bad_values) == 20
    hostile = [{**good[0], "email": f"bad{i}@acme.com", column: value} for i, (column, value) in enumerate(bad_values)]
    rows = [row for pair in zip(good[:20], hostile, strict=True) for row in pair] + good[20:]
    path = tmp_path / "hostile.csv"
    pd.DataFrame(rows).fillna("").to_csv(path, index=False)
    return path, len(rows)


@pytest.mark.prefect
def test_run_with_hostile_rows_exits_0_and_accounts_for_every_row(prefect_api: str, state_home: Path,
                                                                   tmp_path: Path) -> None:
    path, rows = _hostile_file(tmp_path)
    config = tmp_path / "leadflow.yaml"
    config.write_text("quality:\n  max_quarantine_share: 1.0\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["run", "--input", str(path), "--output", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, dtype="string", keep_default_na=False)
    quarantine = pd.read_csv(quarantine_path(out), dtype="string", keep_default_na=False)
    assert len(written) + len(quarantine) == rows
    assert len(quarantine) == 20 and set(quarantine["email"]) == {f"bad{i}@acme.com" for i in range(20)}
    assert all(e.startswith("good") for e in written["email"])
    reasons = " | ".join(quarantine["reason"])
    assert "employees: out of range for Int64 '9223372036854775808'" in reasons
    assert "created_at is not a parseable timestamp (value: '9999-12-31T23:59:59Z')" in reasons


@pytest.fixture
def hostile_lead(sandbox: RunningSalesforce) -> Iterator[str]:
    """A lead whose NumberOfEmployees is beyond Int64, as another integration could have stored it: the sandbox
    range-checks writes, so it goes into the org's store directly."""
    lead_id = next(iter(sandbox.org.objects["Lead"]))
    record = sandbox.org.objects["Lead"][lead_id]
    before = record.get("NumberOfEmployees")
    record["NumberOfEmployees"] = 10**19
    yield lead_id
    record["NumberOfEmployees"] = before


@pytest.mark.usefixtures("_reset_sandbox")
def test_salesforce_pull_gives_the_hostile_lead_a_pull_error(sandbox: RunningSalesforce, hostile_lead: str) -> None:
    creds = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                  client_secret=sandbox.client_secret)
    connector = salesforce_connector(creds, session=sandbox.session(), page_size=200, backoff=0.0, bulk_wait=0.0)
    pulled = pd.concat(list(connector.pull(None)), ignore_index=True)
    assert len(pulled) == LEADS
    broken = pulled[pulled["lead_id"] == hostile_lead].iloc[0]
    assert "NumberOfEmployees: out of range for Int64 ('10000000000000000000')" in broken[PULL_ERROR_COLUMN]
    assert pd.isna(broken["employees"])
    assert pulled[PULL_ERROR_COLUMN].notna().sum() == 1


@pytest.mark.parametrize(("value", "expected", "problem"), [
    ("1704067200000", "2024-01-01T00:00:00.000Z", None),
    ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000Z", None),
    ("99999999999999999", None, "datetime outside 1678-2261: '99999999999999999'"),
    ("9999-12-31T23:59:59Z", None, "datetime outside 1678-2261: '9999-12-31T23:59:59Z'"),
    ("0001-01-01T00:00:00Z", None, "datetime outside 1678-2261: '0001-01-01T00:00:00Z'")])
def test_hubspot_datetimes_outside_the_supported_years_are_a_problem(value: str, expected: str | None,
                                                                     problem: str | None) -> None:
    spec = FieldMap(property="createdate", type="datetime")
    assert _read_value(spec, value) == (expected, problem)


@pytest.mark.parametrize(("value", "expected"), [("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
                                                 ("0001-01-01T00:00:00+01:00", None), ("not a date", None)])
def test_marketo_utc_iso_never_overflows(value: str, expected: str | None) -> None:
    assert utc_iso(value) == expected
