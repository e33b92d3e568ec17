"""The gate's per-process GX cache: suites compiled once and reused, with results equal to GX's own
`batch.validate(suite)`; edited suite files and other suites folders are picked up in the same process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leadflow.pipeline import quality, quality_gx
from leadflow.pipeline.errors import DataQualityError
from leadflow.pipeline.io import read_leads
from leadflow.pipeline.quality import QualityGate, compiled_suite, row_records
from leadflow.pipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SUITES = Settings().suites_dir()
STAGES = ["standardize", "enriched", "comply", "scored", "lifecycle", "assigned"]


def load(name: str) -> pd.DataFrame:
    return read_leads(FIXTURES / name).frame


def plain(compiled: quality_gx.CompiledSuite, checked: pd.DataFrame) -> list[Any]:
    return quality_gx.validate_plain(checked, compiled.suite, quality.RESULT_FORMAT)


def outcome(gate: QualityGate, frame: pd.DataFrame, stage: str, suite: str) -> dict[str, Any]:
    """Everything a caller can see of one check: the GateResult, or the DataQualityError and what it carries."""
    try:
        result = gate.check(frame, stage, suite)
    except DataQualityError as exc:
        summary = {k: v for k, v in exc.result.items() if k != "seconds"}
        return {"error": str(exc), "summary": summary, "quarantine": exc.quarantine, "stage": exc.stage}
    return {"summary": {k: v for k, v in result.summary().items() if k != "seconds"},
            "quarantine": result.quarantine, "passed": result.passed}


def assert_same(mine: dict[str, Any], reference: dict[str, Any]) -> None:
    assert mine.keys() == reference.keys()
    for key in mine:
        if isinstance(mine[key], pd.DataFrame):
            pd.testing.assert_frame_equal(mine[key], reference[key])
        else:
            assert mine[key] == reference[key], key


def batches() -> dict[str, tuple[str, pd.DataFrame]]:
    """label → (suite, frame): every fixture, and batch-level failures (a missing column, one a column-map
    expectation needs so that its metrics cannot be resolved, one a row condition needs)."""
    out = {}
    for suite in STAGES:
        for kind in ("pass", "fail"):
            out[f"{suite}.{kind}"] = (f"leads_{suite}", load(f"leads_{suite}.{kind}.csv"))
    comply = load("leads_comply.pass.csv")
    out["comply-no-mailable_reason"] = ("leads_comply", comply.drop(columns=["mailable_reason"]))
    out["comply-no-country_code"] = ("leads_comply", comply.drop(columns=["country_code"]))
    out["lifecycle-no-lifecycle_reason"] = ("leads_lifecycle",
                                            load("leads_lifecycle.fail.csv").drop(columns=["lifecycle_reason"]))
    return out


BATCHES = [f"{suite}.{kind}" for suite in STAGES for kind in ("pass", "fail")] + [
    "comply-no-mailable_reason", "comply-no-country_code", "lifecycle-no-lifecycle_reason"]


@pytest.mark.parametrize("label", BATCHES)
def test_gate_outcomes_equal_plain_gx_validation(label: str, monkeypatch: pytest.MonkeyPatch) -> None:
    suite, frame = batches()[label]
    shares = (1.0, 0.2) if label == "standardize.fail" else (1.0,)  # 0.2: over the share, the typed error
    for share in shares:
        mine = outcome(QualityGate(SUITES, share), frame, suite, suite)
        with monkeypatch.context() as patched:
            patched.setattr(quality, "_validate", plain)
            reference = outcome(QualityGate(SUITES, share), frame, suite, suite)
        assert_same(mine, reference)
        if share < 1.0 or label in ("comply-no-mailable_reason", "lifecycle-no-lifecycle_reason"):
            assert "error" in mine


def plan_results(compiled: quality_gx.CompiledSuite, checked: pd.DataFrame, result_format: dict[str, Any]) -> list[Any]:
    """A whole suite through one compiled Plan, in the order the gate would list it."""
    with quality_gx.GX_LOCK:
        validator = quality_gx.validator_for(checked)
        plan = compiled.plan(validator, result_format)
        results = plan.run(validator, list(range(len(plan.steps))))
        quality_gx.RowConditionMemo.install(validator.execution_engine).clear()
    return [result for _, (_, result) in sorted(results.items(), key=lambda item: (item[1][0], item[0]))]


def checked_frame(compiled: quality_gx.CompiledSuite, frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in compiled.columns if c in frame.columns]
    return frame[columns].assign(**{quality.ROW_POSITION: np.arange(len(frame))})


@pytest.mark.parametrize("label", [label for label in BATCHES if not label.endswith(".pass")])
def test_a_compiled_plan_gives_gx_results_field_for_field(label: str) -> None:
    # Every result, passing or failing, in COMPLETE format: the plan mirrors Validator.graph_validate exactly.
    suite, frame = batches()[label]
    compiled = compiled_suite(SUITES / f"{suite}.json")
    checked = checked_frame(compiled, frame)
    mine = [without_tracebacks(r.to_json_dict()) for r in plan_results(compiled, checked, quality.RESULT_FORMAT)]
    assert mine == [without_tracebacks(r.to_json_dict()) for r in plain(compiled, checked)]


def without_tracebacks(value: Any) -> Any:
    """A result with its exception tracebacks left out (their frames differ; the exception and message do not)."""
    if isinstance(value, dict):
        return {k: without_tracebacks(v) for k, v in value.items() if k != "exception_traceback"}
    if isinstance(value, list):
        return [without_tracebacks(v) for v in value]
    return value


def test_expectations_whose_dependencies_read_the_batch_are_worked_out_per_batch(tmp_path: Path) -> None:
    # expect_column_values_to_be_of_type picks its metrics from the batch's column types: no graph is kept for it.
    suite = {"name": "leads_typed", "expectations": [
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "n", "type_": "int"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "s", "value_set": ["a", "b"]}},
    ]}
    (tmp_path / "leads_typed.json").write_text(json.dumps(suite))
    compiled = compiled_suite(tmp_path / "leads_typed.json")
    for frame in (pd.DataFrame({"n": [1, 2, 3], "s": ["a", "b", "c"]}),
                  pd.DataFrame({"n": [1, "x", 3], "s": ["a", "a", "b"]}, dtype=object)):
        checked = checked_frame(compiled, frame)
        mine = [without_tracebacks(r.to_json_dict()) for r in plan_results(compiled, checked, quality.RESULT_FORMAT)]
        assert mine == [without_tracebacks(r.to_json_dict()) for r in plain(compiled, checked)]
    plan = next(iter(compiled.plans.values()))
    assert [step.graph is None for step in plan.steps] == [True, False]


def test_a_warm_gate_parses_and_compiles_nothing() -> None:
    frame = load("leads_lifecycle.fail.csv")
    QualityGate(SUITES, 1.0).check(frame, "lifecycle")
    compiled = compiled_suite(SUITES / "leads_lifecycle.json")
    built = compiled.compiled
    assert built == 2  # the BASIC screen, and the COMPLETE detail for the failing expectations
    for _ in range(3):
        QualityGate(SUITES, 1.0).check(frame, "lifecycle")
        QualityGate(SUITES, 1.0).check(load("leads_lifecycle.pass.csv"), "lifecycle")
    assert compiled_suite(SUITES / "leads_lifecycle.json") is compiled and compiled.compiled == built
    memo = quality_gx.RowConditionMemo.install(quality_gx.validator_for(frame).execution_engine)
    assert memo.data is None  # no batch is kept alive between gates


def test_each_row_condition_filters_a_batch_once(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = load("leads_lifecycle.fail.csv")
    QualityGate(SUITES, 1.0).check(frame, "lifecycle")  # warm
    memo = quality_gx.RowConditionMemo.install(quality_gx.validator_for(frame).execution_engine)
    asked: list[Any] = []
    filtered: list[Any] = []
    apply, call = memo.apply, quality_gx.RowConditionMemo.__call__
    monkeypatch.setattr(memo, "apply", lambda data, condition, kwargs: filtered.append(condition) or apply(
        data, condition, kwargs))
    monkeypatch.setattr(quality_gx.RowConditionMemo, "__call__", lambda self, data, condition, kwargs: asked.append(
        condition) or call(self, data, condition, kwargs))
    QualityGate(SUITES, 1.0).check(frame, "lifecycle")
    conditions = {e["kwargs"]["row_condition"] for e in json.loads((SUITES / "leads_lifecycle.json").read_text())[
        "expectations"] if "row_condition" in e["kwargs"]}
    assert len(filtered) == len({repr(c) for c in filtered}) == len(conditions)  # each once, none left out
    assert len(asked) > 2 * len(filtered)  # what GX would have parsed and filtered again


def test_an_edited_suite_file_is_used_at_once(tmp_path: Path) -> None:
    shutil.copy(SUITES / "leads_comply.json", tmp_path / "leads_comply.json")
    frame = load("leads_comply.pass.csv")
    assert QualityGate(tmp_path, 1.0).check(frame, "comply").quarantine.empty
    path = tmp_path / "leads_comply.json"
    document = json.loads(path.read_text())
    for expectation in document["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_in_set" and expectation["kwargs"]["column"] == "country_code":
            expectation["kwargs"]["value_set"] = [c for c in expectation["kwargs"]["value_set"] if c != "DE"]
    original = path.read_text()
    path.write_text(json.dumps(document))  # same process, possibly the same mtime tick
    gate = QualityGate(tmp_path, 1.0)
    edited = gate.check(frame, "comply")
    assert set(edited.quarantine["position"]) == set(np.flatnonzero(frame["country_code"].eq("DE").fillna(False)))
    assert not edited.quarantine.empty
    path.write_text(original)
    assert gate.check(frame, "comply").quarantine.empty  # and back


def test_each_suites_folder_gets_its_own_suite(tmp_path: Path) -> None:
    strict, lenient = tmp_path / "strict", tmp_path / "lenient"
    strict.mkdir(), lenient.mkdir()
    document = json.loads((SUITES / "leads_scored.json").read_text())
    (lenient / "leads_scored.json").write_text(json.dumps(document))
    for expectation in document["expectations"]:
        if expectation["kwargs"].get("column") == "grade" and expectation["type"].endswith("in_set"):
            expectation["kwargs"]["value_set"] = ["A"]
    (strict / "leads_scored.json").write_text(json.dumps(document))
    frame = load("leads_scored.pass.csv")
    for _ in range(2):
        assert QualityGate(lenient, 1.0).check(frame, "scored").quarantine.empty
        quarantined = QualityGate(strict, 1.0).check(frame, "scored").quarantine
        assert set(quarantined["position"]) == set(np.flatnonzero(frame["grade"].ne("A").fillna(True)))


def test_row_records_equal_the_object_conversion() -> None:
    mixed = pd.DataFrame({
        "s": pd.array(["a", None, "c"], dtype="string"),
        "b": pd.array([True, None, False], dtype="boolean"),
        "f": pd.array([1.5, None, float("nan")], dtype="Float64"),
        "i": pd.array([1, None, 3], dtype="Int64"),
        "x": [1.0, float("nan"), 2.0],
        "t": pd.to_datetime(["2026-01-01", None, "2026-01-03"]),
        "o": [{"k": 1}, None, "z"],
    }, index=[7, 3, 7])
    frames = [mixed] + [load(f"leads_{suite}.fail.csv") for suite in STAGES]
    for frame in frames:
        expected = frame.astype(object).where(frame.notna(), None).to_dict("records")
        got = row_records(frame)
        assert got == expected
        assert [{k: type(v) for k, v in r.items()} for r in got] == [{k: type(v) for k, v in r.items()} for r in expected]
