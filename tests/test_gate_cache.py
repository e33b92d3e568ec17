"""The gate's per-call cost: a suite file parsed once per content for any number of gates (and again once it changes),
the cached suite left as parsed, batches loaded without GX's data fingerprint, and nullable numbers that only range
and null checks read handed to GX as numpy numbers — with outcomes equal to GX's own validation of the frame as is."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from leadflow.pipeline import quality, quality_gx
from leadflow.pipeline.errors import DataQualityError
from leadflow.pipeline.io import read_leads
from leadflow.pipeline.quality import QualityGate, compiled_suite, load_suite
from leadflow.pipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SUITES = Settings().suites_dir()


def load(name: str) -> pd.DataFrame:
    return read_leads(FIXTURES / name).frame


def counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[Any]:
    """Count the calls of `owner.name` (still calling it)."""
    calls: list[Any] = []
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def outcome(gate: QualityGate, frame: pd.DataFrame, stage: str, suite: str) -> dict[str, Any]:
    try:
        result = gate.check(frame, stage, suite)
    except DataQualityError as exc:
        return {"error": str(exc), "summary": {k: v for k, v in exc.result.items() if k != "seconds"},
                "quarantine": exc.quarantine}
    return {"summary": {k: v for k, v in result.summary().items() if k != "seconds"},
            "quarantine": result.quarantine, "passed": result.passed}


def as_gx_alone(monkeypatch: pytest.MonkeyPatch, gate: QualityGate, frame: pd.DataFrame, stage: str,
                suite: str) -> dict[str, Any]:
    """The outcome with GX's own `batch.validate` over the frame's columns as they are (no numpy numbers)."""
    with monkeypatch.context() as patched:
        patched.setattr(quality, "_validate", lambda compiled, checked: quality_gx.validate_plain(
            checked, compiled.suite, quality.RESULT_FORMAT))
        patched.setattr(quality_gx, "numpy_numbers", lambda frame, columns: {})
        return outcome(gate, frame, stage, suite)


def assert_same(mine: dict[str, Any], reference: dict[str, Any]) -> None:
    assert mine.keys() == reference.keys()
    for key in mine:
        if isinstance(mine[key], pd.DataFrame):
            pd.testing.assert_frame_equal(mine[key], reference[key])
        else:
            assert mine[key] == reference[key], key


def test_a_suite_is_parsed_once_for_many_gates_and_again_when_its_file_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = json.loads((SUITES / "leads_comply.json").read_text())
    document.setdefault("meta", {})["test_folder"] = str(tmp_path)  # content no other test has cached
    path = tmp_path / "leads_comply.json"
    path.write_text(json.dumps(document))
    parsed = counting(monkeypatch, quality, "_parse_suite")
    frame = load("leads_comply.pass.csv")
    for _ in range(5):
        assert QualityGate(tmp_path, 1.0).check(frame, "comply").quarantine.empty
    assert len(parsed) == 1
    original = path.read_text()
    for expectation in document["expectations"]:
        if expectation["kwargs"].get("column") == "country_code":
            expectation["kwargs"]["value_set"] = [c for c in expectation["kwargs"]["value_set"] if c != "DE"]
    path.write_text(json.dumps(document))
    for _ in range(3):
        edited = QualityGate(tmp_path, 1.0).check(frame, "comply")
        assert set(edited.quarantine["position"]) == set(np.flatnonzero(frame["country_code"].eq("DE").fillna(False)))
    assert len(parsed) == 2
    path.write_text(original)  # the first content again: still cached
    assert QualityGate(tmp_path, 1.0).check(frame, "comply").quarantine.empty
    assert len(parsed) == 2


def test_gates_leave_the_cached_suite_and_the_callers_frame_as_they_were() -> None:
    path = SUITES / "leads_scored.json"
    compiled = compiled_suite(path)
    before = (compiled.suite.to_json_dict(), list(compiled.columns), compiled.numbers)
    frames = [load("leads_scored.fail.csv"), load("leads_scored.pass.csv")]
    copies = [frame.copy() for frame in frames]
    for _ in range(2):
        for frame in frames:
            QualityGate(SUITES, 1.0).check(frame, "scored")
    assert compiled_suite(path) is compiled
    assert (compiled.suite.to_json_dict(), list(compiled.columns), compiled.numbers) == before
    assert compiled.suite.to_json_dict() == load_suite(path).to_json_dict()  # as the file says
    for frame, copy in zip(frames, copies, strict=True):
        pd.testing.assert_frame_equal(frame, copy)  # nullable dtypes kept: only GX's view is numpy


def test_a_gate_loads_its_batch_without_hashing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from great_expectations.execution_engine import pandas_execution_engine

    frame = load("leads_enriched.fail.csv")
    QualityGate(SUITES, 1.0).check(frame, "enriched")  # warm
    hashed = counting(monkeypatch, pandas_execution_engine, "hash_pandas_dataframe")
    for _ in range(3):
        QualityGate(SUITES, 1.0).check(frame, "enriched")
    assert hashed == []
    quality_gx.validate_plain(frame[["employees"]], compiled_suite(SUITES / "leads_enriched.json").suite,
                              quality.RESULT_FORMAT)
    plain = len(hashed)
    assert plain  # the reference is GX's own loader
    QualityGate(SUITES, 1.0).check(frame, "enriched")  # and the gate's loader is back after it
    assert len(hashed) == plain


def test_range_checked_nullable_numbers_reach_gx_as_numpy_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[pd.DataFrame] = []
    validate = quality._validate
    monkeypatch.setattr(quality, "_validate", lambda compiled, checked: seen.append(checked) or validate(
        compiled, checked))
    frame = load("leads_scored.fail.csv")
    assert str(frame["score"].dtype) == "Float64"
    QualityGate(SUITES, 1.0).check(frame, "scored")
    assert {c: str(seen[0][c].dtype) for c in ("fit_score", "engagement_score", "score")} == dict.fromkeys(
        ("fit_score", "engagement_score", "score"), "float64")


@pytest.mark.parametrize("stage", ["enriched", "scored"])
@pytest.mark.parametrize("kind", ["pass", "fail"])
def test_gate_outcomes_equal_gx_on_the_nullable_frame(stage: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = load(f"leads_{stage}.{kind}.csv")
    suite = f"leads_{stage}"
    for share in (1.0, 0.01):
        gate = QualityGate(SUITES, share)
        assert_same(outcome(gate, frame, stage, suite), as_gx_alone(monkeypatch, gate, frame, stage, suite))


def numbers_suite(folder: Path, expectations: list[dict[str, Any]]) -> None:
    (folder / "leads_numbers.json").write_text(json.dumps({"name": "leads_numbers", "expectations": expectations}))


def test_edge_numbers_give_gx_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    between = "expect_column_values_to_be_between"
    numbers_suite(tmp_path, [
        {"type": between, "kwargs": {"column": "n", "min_value": 0, "max_value": 10}},
        {"type": between, "kwargs": {"column": "full", "min_value": 0, "strict_min": True}},
        {"type": between, "kwargs": {"column": "big", "max_value": 2**60}},
        {"type": between, "kwargs": {"column": "f", "min_value": -1.5, "max_value": 1.5, "strict_max": True,
                                     "mostly": 0.5}},
        {"type": between, "kwargs": {"column": "nan", "min_value": 0, "max_value": 1}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "f"}},
        {"type": "expect_column_values_to_be_null", "kwargs": {"column": "n"}, "meta": {"reason": "n given"}},
    ])
    # a NaN that is a value, not a missing one (GX checks it)
    nan = pd.arrays.FloatingArray(np.array([0.5, np.nan, 0.2, 0.1, 0.9, 0.3]), np.zeros(6, dtype=bool))
    frame = pd.DataFrame({
        "n": pd.array([1, None, 11, -1, 5, None], dtype="Int64"),
        "full": pd.array([1, 2, 0, 4, 5, 6], dtype="Int64"),
        "big": pd.array([2**62, None, 1, 2**60, 3, 2**60 + 1], dtype="Int64"),
        "f": pd.array([1.5, None, -1.5, 0.0, 1.49, 2.0], dtype="Float64"),
        "nan": nan,
    }, index=[10, 11, 12, 13, 14, 15])
    converted = quality_gx.numpy_numbers(frame, compiled_suite(tmp_path / "leads_numbers.json").numbers)
    assert {c: str(v.dtype) for c, v in converted.items()} == {"n": "float64", "full": "int64", "f": "float64"}
    for share in (1.0, 0.5):
        gate = QualityGate(tmp_path, share)
        mine = outcome(gate, frame, "numbers", "leads_numbers")
        assert_same(mine, as_gx_alone(monkeypatch, gate, frame, "numbers", "leads_numbers"))
    assert set(mine["quarantine"]["position"]) == {0, 1, 2, 3, 4, 5}


def test_only_columns_read_for_their_values_alone_are_converted(tmp_path: Path) -> None:
    between = "expect_column_values_to_be_between"
    expectations: list[dict[str, Any]] = [
        {"type": between, "kwargs": {"column": "a", "min_value": 0, "max_value": 1}},
        {"type": between, "kwargs": {"column": "b", "min_value": 0, "max_value": 1}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "b", "value_set": [0, 1]}},
        {"type": between, "kwargs": {"column": "e", "min_value": 0}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "f", "row_condition": 'e > 0',
                                                                    "condition_parser": "pandas"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "h", "row_condition": '`x y` > 0',
                                                                    "condition_parser": "pandas"}},
        {"type": between, "kwargs": {"column": "x y", "min_value": 0}},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b", "kwargs": {"column_A": "g", "column_B": "a"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ]
    numbers_suite(tmp_path, expectations)
    assert compiled_suite(tmp_path / "leads_numbers.json").numbers == {"f", "h"}
    other = tmp_path / "other"
    other.mkdir()
    numbers_suite(other, [*expectations, {"type": "expect_column_values_to_be_of_type", "kwargs": {
        "column": "f", "type_": "Float64"}}])
    assert compiled_suite(other / "leads_numbers.json").numbers == {"h"}  # a dtype check refuses its column
    unknown = SimpleNamespace(type="expect_table_something_new", kwargs={})  # might read any column: none converted
    configs = load_suite(tmp_path / "leads_numbers.json").expectation_configurations
    assert quality_gx.numpy_number_columns([*configs, unknown]) == set()
