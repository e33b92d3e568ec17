"""The GX gate: a passing and a failing fixture for every suite, batch-level failures, artifacts on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline.errors import ConfigError, DataQualityError
from leadflow.pipeline.io import read_leads
from leadflow.pipeline.quality import GateResult, QualityGate, is_row_level
from leadflow.pipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SUITES = Settings().suites_dir()

# Suite → rows (0-based, in file order) that the failing fixture must quarantine, with an expectation each.
FAILING = {
    "leads_standardize": {
        1: {"expect_column_values_to_be_in_set"},  # country_code XX
        2: {"expect_column_values_to_match_regex"},  # state_code "California"
        3: {"expect_column_values_to_match_regex", "expect_column_values_to_be_in_set"},  # phone, seniority, created_at
    },
    "leads_enriched": {
        1: {"expect_column_values_to_be_in_set"},  # account_match_method "fuzzy"
        2: {"expect_column_values_to_not_be_null"},  # matched by domain, no account_id
        3: {"expect_column_values_to_be_between", "expect_column_values_to_match_regex"},  # 9M staff, source guess
        4: {"expect_column_values_to_be_between"},  # duplicate_confidence 1.5
    },
    "leads_scored": {
        1: {"expect_column_values_to_be_in_set", "expect_column_values_to_match_regex"},  # grade E, rating E4
        2: {"expect_column_values_to_be_between"},  # negative engagement
        3: {"expect_column_values_to_not_be_null"},  # no model version
    },
    "leads_lifecycle": {
        1: {"expect_column_values_to_be_in_set"},  # unknown stage
        2: {"expect_column_values_to_not_be_null"},  # SAL without sal_at
        3: {"expect_column_values_to_match_regex"},  # mql_at not a time
    },
    "leads_assigned": {
        1: {"expect_column_values_to_not_be_null"},  # no owner and no hold
        2: {"expect_column_pair_values_a_to_be_greater_than_b"},  # SLA due before assignment
        3: {"expect_column_values_to_not_be_null"},  # no rule, reason, time, owner
    },
    "leads_comply": {
        1: {"expect_column_values_to_not_be_null"},  # consent_required undecided
        2: {"expect_column_values_to_be_in_set"},  # unknown mailable_reason
    },
}


def load(name: str) -> pd.DataFrame:
    loaded = read_leads(FIXTURES / name)
    assert loaded.refused.empty
    return loaded.frame


def gate(share: float = 1.0, publish=None) -> QualityGate:  # type: ignore[no-untyped-def]
    return QualityGate(SUITES, max_quarantine_share=share, publish=publish)


@pytest.mark.parametrize("suite", sorted(FAILING))
def test_passing_fixture_passes(suite: str) -> None:
    frame = load(f"{suite}.pass.csv")
    result = gate().check(frame, suite.removeprefix("leads_"))
    assert result.success
    assert len(result.passed) == len(frame)
    assert result.quarantine.empty
    assert all(e["success"] for e in result.expectations)


@pytest.mark.parametrize("suite", sorted(FAILING))
def test_failing_fixture_quarantines_exactly_the_bad_rows(suite: str) -> None:
    frame = load(f"{suite}.fail.csv")
    result = gate().check(frame, suite.removeprefix("leads_"))
    expected = FAILING[suite]
    assert set(result.quarantine["position"]) == set(expected)
    for position, expectations in expected.items():
        got = set(result.quarantine.loc[result.quarantine["position"] == position, "expectation"])
        assert got == expectations, position
    assert len(result.passed) + result.rows_quarantined == len(frame)
    assert result.passed.index.tolist() == [i for i in range(len(frame)) if i not in expected]
    first = result.quarantine.iloc[0]
    assert first["lead_key"].startswith("salesforce:00Q")
    assert isinstance(first["row"], dict) and first["row"]["email"]
    assert "value:" in first["reason"]


def test_reason_uses_suite_meta() -> None:
    result = gate().check(load("leads_standardize.fail.csv"), "standardize")
    reasons = set(result.quarantine["reason"])
    assert any(r.startswith("country_code is not an ISO 3166-1 alpha-2 code (value: 'XX')") for r in reasons)
    assert any(r.startswith("created_at is not a parseable timestamp (value: 'yesterday')") for r in reasons)


def test_share_over_threshold_fails_the_batch_and_publishes() -> None:
    published: list[GateResult] = []
    with pytest.raises(DataQualityError) as info:
        gate(share=0.2, publish=published.append).check(load("leads_standardize.fail.csv"), "standardize")
    message = str(info.value)
    assert "leads_standardize" in message and "over the configured maximum of 20.0%" in message
    assert "expect_column_values_to" in message  # names the expectation with most failures
    assert info.value.result["rows_quarantined"] == 3
    assert len(published) == 1 and not published[0].success


def test_zero_rows_out_of_non_empty_input_fails() -> None:
    frame = load("leads_comply.fail.csv").iloc[[1, 2]]
    with pytest.raises(DataQualityError, match="zero rows out"):
        gate().check(frame, "comply")


def test_missing_column_is_a_batch_failure() -> None:
    frame = load("leads_comply.pass.csv").drop(columns=["mailable_reason"])
    with pytest.raises(DataQualityError, match="expect_column_to_exist"):
        gate().check(frame, "comply")


def test_publisher_sees_passing_batches_too() -> None:
    published: list[GateResult] = []
    gate(publish=published.append).check(load("leads_comply.pass.csv"), "comply")
    assert [p.suite for p in published] == ["leads_comply"]
    json.dumps(published[0].summary())  # artifact/event payloads must be JSON-able


def test_every_suite_file_is_valid_and_named_for_its_stage() -> None:
    for path in SUITES.glob("*.json"):
        document = json.loads(path.read_text())
        assert document["name"] == path.stem
        assert path.stem.startswith("leads_")
        assert any(is_row_level(e["type"]) for e in document["expectations"])


def test_malformed_suite_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "leads_comply.json").write_text("{not json")
    with pytest.raises(ConfigError, match="leads_comply.json"):
        QualityGate(tmp_path, 0.5).check(load("leads_comply.pass.csv"), "comply")
    with pytest.raises(ConfigError, match="not found"):
        QualityGate(tmp_path, 0.5).check(load("leads_comply.pass.csv"), "standardize")


def test_gates_in_parallel_threads_check_their_own_batches() -> None:
    # Backfill chunks run on a threaded Dask cluster: each gate must see its own frame, never another thread's.
    from concurrent.futures import ThreadPoolExecutor

    standardize, comply = load("leads_standardize.pass.csv"), load("leads_comply.pass.csv")
    jobs = [(standardize, "standardize"), (comply, "comply")] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: gate().check(*job), jobs))
    assert all(r.success and len(r.passed) == len(job[0]) for r, job in zip(results, jobs, strict=True))
