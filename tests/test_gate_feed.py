"""How the gates feed GX (issue 17, second pass), each with outcomes equal to what they were:

- a value with Arabic-Indic digits is judged as before (the suites' `\\d` stays Python's, Unicode-aware);
- the BASIC screen leaves out unexpected values GX would find empty, and the detail pass does not compute again
  what the screen computed (each regex condition runs once per gate);
- GX lists failing rows by the batch's index 0..n-1 (no position column read row by row);
- the passed rows and the quarantine's row dicts are built column by column, equal to pandas' own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leadflow.pipeline import quality, quality_gx
from leadflow.pipeline.io import read_leads
from leadflow.pipeline.quality import QualityGate, compiled_suite, kept_rows, row_records
from leadflow.pipeline.settings import Settings
from tests.test_quality_cache import without_tracebacks

FIXTURES = Path(__file__).parent / "fixtures"
SUITES = Settings().suites_dir()


def load(name: str) -> pd.DataFrame:
    return read_leads(FIXTURES / name).frame


def suite_regex(suite: str, column: str, suites: Path = SUITES) -> str:
    document = json.loads((suites / f"{suite}.json").read_text())
    [regex] = [e["kwargs"]["regex"] for e in document["expectations"]
               if e["type"] == "expect_column_values_to_match_regex" and e["kwargs"]["column"] == column]
    return str(regex)


def test_a_timestamp_with_arabic_indic_digits_is_judged_as_before() -> None:
    # `\d` is unchanged: pandas matches it with Python's re (Unicode digits) whenever a column holds non-ASCII text,
    # so a created_at with Arabic-Indic digits, which standardize keeps unparsed, still passes the regex as before.
    frame = load("leads_standardize.pass.csv").iloc[[0, 0, 0]].reset_index(drop=True)
    frame["created_at"] = pd.array(["2026-\u0661\u0660-01T09:00:00Z", "2026-10-01T09:00:00Z", "2026-1O-01T09:00:00Z"],
                                   dtype="string")
    gate = QualityGate(SUITES, 1.0).check(frame, "standardize")
    assert list(gate.quarantine["position"]) == [2]
    assert "\\d" in suite_regex("leads_standardize", "created_at")


def basic_results(compiled: quality_gx.CompiledSuite, checked: pd.DataFrame) -> list[Any]:
    with quality_gx.GX_LOCK:
        validator = quality_gx.validator_for(checked)
        plan = compiled.plan(validator, quality_gx.SCREEN_FORMAT)
        results = plan.run(validator, list(range(len(plan.steps))))
        quality_gx.RowConditionMemo.install(validator.execution_engine).clear()
    return [result for _, (_, result) in sorted(results.items(), key=lambda item: (item[1][0], item[0]))]


@pytest.mark.parametrize("label", [f"{s}.{k}" for s in ("standardize", "enriched", "comply", "scored", "lifecycle",
                                                        "assigned") for k in ("pass", "fail")])
def test_the_lean_screen_gives_gx_basic_results_field_for_field(label: str) -> None:
    suite = f"leads_{label.split('.')[0]}"
    compiled = compiled_suite(SUITES / f"{suite}.json")
    frame = load(f"{suite}.{label.split('.')[1]}.csv")
    checked = frame[[c for c in compiled.columns if c in frame.columns]]
    mine = [without_tracebacks(r.to_json_dict()) for r in basic_results(compiled, checked)]
    plain = quality_gx.validate_plain(checked, compiled.suite, quality_gx.SCREEN_FORMAT)
    assert mine == [without_tracebacks(r.to_json_dict()) for r in plain]
    plan = compiled.plan(quality_gx.validator_for(checked), quality_gx.SCREEN_FORMAT)
    assert any(step.lean is not None for step in plan.steps)


def test_each_regex_condition_is_computed_once_per_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = load("leads_standardize.fail.csv")
    QualityGate(SUITES, 1.0).check(frame, "standardize")  # warm
    calls: list[Any] = []
    contains = pd.core.strings.accessor.StringMethods.contains
    monkeypatch.setattr(pd.core.strings.accessor.StringMethods, "contains",
                        lambda self, pat, *a, **k: calls.append(pat) or contains(self, pat, *a, **k))
    gate = QualityGate(SUITES, 1.0).check(frame, "standardize")
    regexes = [e["kwargs"]["regex"] for e in json.loads((SUITES / "leads_standardize.json").read_text())[
        "expectations"] if "regex" in e["kwargs"]]
    failed = {e["column"] for e in gate.expectations if not e["success"]}
    assert {"created_at", "state_code", "phone_e164"} <= failed  # validated twice, their condition still once
    assert sorted(calls) == sorted(regexes)


def test_failing_rows_are_found_by_position_whatever_the_index() -> None:
    # GX lists failing rows by the checked batch's index, which the gate sets to 0..n-1; the caller's index (here
    # shuffled, with repeated labels) is kept for the passed rows and the quarantine.
    frame = load("leads_standardize.fail.csv")
    frame.index = pd.Index(np.resize([7, 3, 7, 1], len(frame)))
    gate = QualityGate(SUITES, 1.0).check(frame, "standardize")
    compiled = compiled_suite(SUITES / "leads_standardize.json")
    checked = frame[[c for c in compiled.columns if c in frame.columns]].assign(
        **{quality.ROW_POSITION: np.arange(len(frame))})
    named = {"result_format": "COMPLETE", "unexpected_index_column_names": [quality.ROW_POSITION]}
    expected = sorted((int(entry[quality.ROW_POSITION]), r.expectation_config.type)
                      for r in quality_gx.validate_plain(checked, compiled.suite, named) if not r.success
                      for entry in r.result["unexpected_index_list"])
    assert expected and sorted(zip(gate.quarantine["position"], gate.quarantine["expectation"])) == expected
    keep = np.ones(len(frame), dtype=bool)
    keep[gate.quarantine["position"].to_numpy()] = False
    pd.testing.assert_frame_equal(gate.passed, frame[keep])
    assert list(gate.quarantine.index) == list(frame.index[gate.quarantine["position"].to_numpy()])


def mixed_frame() -> pd.DataFrame:
    frame = pd.DataFrame({
        "s": pd.array(["a", None, "c", "d"], dtype="string"),
        "t": pd.array(["a", None, "c", "d"], dtype="str"),
        "b": pd.array([True, None, False, True], dtype="boolean"),
        "f": pd.array([1.5, None, 2.5, 0.0], dtype="Float64"),
        "i": pd.array([1, None, 3, 4], dtype="Int64"),
        "x": [1.0, float("nan"), 2.0, 3.0],
        "n": [1, 2, 3, 4],
        "d": pd.to_datetime(["2026-01-01", None, "2026-01-03", "2026-01-04"]),
        "o": [{"k": 1}, None, "z", 5],
        "c": pd.Categorical(["u", "v", None, "u"]),
    }, index=[7, 3, 7, 9])
    frame.attrs = {"state": {"n": 1}}
    return frame


def test_kept_rows_equal_boolean_indexing() -> None:
    frames = [mixed_frame()] + [load(f"leads_{s}.fail.csv") for s in ("standardize", "enriched", "lifecycle")]
    for frame in frames:
        for keep in (np.arange(len(frame)) % 3 != 1, np.zeros(len(frame), dtype=bool)):
            mine, pandas = kept_rows(frame, keep), frame[keep]
            pd.testing.assert_frame_equal(mine, pandas, check_index_type=True, check_column_type=True)
            assert mine.attrs == pandas.attrs and mine.attrs is not frame.attrs
            assert mine.flags == pandas.flags and mine.columns.dtype == pandas.columns.dtype


def test_row_records_of_a_stage_output_and_of_other_dtypes() -> None:
    for frame in (mixed_frame(), load("leads_lifecycle.fail.csv").iloc[::-1]):
        expected = frame.astype(object).where(frame.notna(), None).to_dict("records")
        got = row_records(frame)
        assert got == expected
        assert [{k: type(v) for k, v in r.items()} for r in got] == [
            {k: type(v) for k, v in r.items()} for r in expected]


def test_compiled_expectations_build_their_configuration_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.expectations.expectation import Expectation
    from great_expectations.expectations.registry import _registered_expectations

    registered = dict(_registered_expectations)
    frame = load("leads_standardize.fail.csv")
    QualityGate(SUITES, 1.0).check(frame, "standardize")  # warm: plans compiled
    assert dict(_registered_expectations) == registered  # the frozen subclasses replace no GX expectation
    plan = next(iter(compiled_suite(SUITES / "leads_standardize.json").plans.values()))
    for step in plan.steps:
        original = step.config.to_domain_obj()
        assert type(step.expectation).__name__ == type(original).__name__ and isinstance(step.expectation,
                                                                                        type(original))
        assert step.expectation.dict() == original.dict()
        assert step.expectation.configuration.to_json_dict() == original.configuration.to_json_dict()
    built: list[Any] = []
    configuration = Expectation.configuration
    monkeypatch.setattr(Expectation, "configuration", property(lambda self: built.append(self) or
                                                               configuration.fget(self)))
    gate = QualityGate(SUITES, 1.0).check(frame, "standardize")
    assert not built and not all(e["success"] for e in gate.expectations)
