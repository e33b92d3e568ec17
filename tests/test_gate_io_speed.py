"""Issue 17's faster paths give what the plain ones gave: `lead_keys` in Arrow kernels equals the pandas
expression, and the gate's column-narrowed GX batches give GX's own results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadflow.pipeline import quality, quality_gx, schema
from leadflow.pipeline.io import read_leads
from leadflow.pipeline.quality import QualityGate, compiled_suite
from leadflow.pipeline.schema import pandas_lead_keys
from leadflow.pipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SUITES = Settings().suites_dir()


WEIRD = pd.DataFrame({
    "lead_id": pd.array([" a ", None, "\u2003x\u00a0", "", "  ", None, "Ü", None], dtype="string"),
    "email": pd.array(["A@B.COM ", " ÉX@Y.DE", None, "Q@Q", None, None, "İ@x", "\tMiXeD@Case.ORG\n"], dtype="string"),
    "source": pd.array([None, "crm", "x", None, "y", None, "z", "hubspot"], dtype="string"),
}, index=[5, 3, 9, 1, 2, 7, 7, 0])


@pytest.mark.parametrize("frame", [
    WEIRD, WEIRD.drop(columns=["source"]), WEIRD.drop(columns=["lead_id"]), WEIRD.drop(columns=["email"]),
    WEIRD[["source"]], WEIRD.iloc[:0], WEIRD.iloc[[1, 5]], WEIRD.iloc[[0, 2]], pd.concat([WEIRD, WEIRD]),
    WEIRD.astype(object), WEIRD.assign(lead_id=pd.array([1, 2, None, 4, 5, 6, 7, None], dtype="Int64")),
], ids=lambda f: f"{list(f.columns)}x{len(f)}")
def test_lead_keys_equal_the_pandas_expression(frame: pd.DataFrame) -> None:
    got, expected = schema.lead_keys(frame), pandas_lead_keys(frame)
    pd.testing.assert_series_equal(got, expected, check_exact=True)
    assert got.name == expected.name


def test_lead_keys_of_a_read_file_take_the_arrow_path() -> None:
    frame = read_leads(FIXTURES / "leads_standardize.fail.csv").frame
    assert schema._arrow_lead_keys(frame) is not None
    pd.testing.assert_series_equal(schema.lead_keys(frame), pandas_lead_keys(frame), check_exact=True)


def checked(suite: str, frame: pd.DataFrame) -> pd.DataFrame:
    compiled = compiled_suite(SUITES / f"{suite}.json")
    return frame[[c for c in compiled.columns if c in frame.columns]].assign(
        **{quality.ROW_POSITION: np.arange(len(frame))})


@pytest.mark.parametrize("suite", ["standardize", "enriched", "comply", "scored", "lifecycle", "assigned"])
def test_map_expectations_are_grouped_by_the_columns_they_read(suite: str) -> None:
    frame = checked(f"leads_{suite}", read_leads(FIXTURES / f"leads_{suite}.fail.csv").frame)
    compiled = compiled_suite(SUITES / f"leads_{suite}.json")
    with quality_gx.GX_LOCK:
        validator = quality_gx.validator_for(frame)
        plan = compiled.plan(validator, quality_gx.SCREEN_FORMAT)
    groups = quality_gx.column_groups(plan, list(frame.columns), [quality.ROW_POSITION])
    listed = sorted(i for _, steps in groups for i in steps)
    assert listed == list(range(len(plan.steps)))  # every step once
    conditions: dict[str, int] = {}
    for number, (columns, steps) in enumerate(groups):
        for i in steps:
            kwargs = plan.steps[i].config.kwargs
            if columns is None:  # the whole frame: no map expectation with a graph kept
                assert plan.steps[i].graph is None or not plan.steps[i].config.type.startswith(
                    quality.ROW_LEVEL_PREFIXES)
                continue
            assert quality.ROW_POSITION in columns
            named = [kwargs[a] for a in ("column", "column_A", "column_B") if kwargs.get(a)]
            assert set(named) <= set(columns)
            if kwargs.get("row_condition"):
                condition = str(kwargs["row_condition"])
                assert {c for c in frame.columns if c in condition} <= set(columns)
                assert conditions.setdefault(condition, number) == number  # one group per row condition


def test_a_column_missing_from_a_narrow_batch_fails_as_gx_fails(
        monkeypatch: pytest.MonkeyPatch) -> None:
    frame = read_leads(FIXTURES / "leads_comply.pass.csv").frame.drop(columns=["mailable_reason"])
    with pytest.raises(quality.DataQualityError) as mine:
        QualityGate(SUITES, 1.0).check(frame, "comply", "leads_comply")
    monkeypatch.setattr(quality, "_validate", lambda compiled, data: quality_gx.validate_plain(
        data, compiled.suite, quality.RESULT_FORMAT))
    with pytest.raises(quality.DataQualityError) as plain:
        QualityGate(SUITES, 1.0).check(frame, "comply", "leads_comply")
    assert str(mine.value) == str(plain.value)
    assert ({k: v for k, v in mine.value.result.items() if k != "seconds"}
            == {k: v for k, v in plain.value.result.items() if k != "seconds"})


def test_metrics_unresolved_as_a_whole_fail_every_expectation_as_gx_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # An error resolving a graph as a whole: GX fails every expectation of the validation with it; the narrowed
    # batches fall back to the whole frame, so the gate says what GX says.
    from great_expectations.validator.metrics_calculator import MetricsCalculator

    def boom(self: object, graph: object, *args: object, **kwargs: object) -> None:
        raise RuntimeError("resolution failed")

    frame = read_leads(FIXTURES / "leads_standardize.fail.csv").frame
    QualityGate(SUITES, 1.0).check(frame, "standardize")  # warm: plans built
    fallbacks: list[int] = []
    run = quality_gx.Plan.run
    monkeypatch.setattr(quality_gx.Plan, "run", lambda self, validator, indices, contain=True: fallbacks.append(
        contain) or run(self, validator, indices, contain=contain))
    monkeypatch.setattr(MetricsCalculator, "resolve_validation_graph", boom)
    with pytest.raises(quality.DataQualityError) as mine:
        QualityGate(SUITES, 1.0).check(frame, "standardize")
    assert True in fallbacks  # the whole-frame run after a narrowed batch could not be resolved
    monkeypatch.setattr(quality, "_validate", lambda compiled, data: quality_gx.validate_plain(
        data, compiled.suite, quality.RESULT_FORMAT))
    with pytest.raises(quality.DataQualityError) as plain:
        QualityGate(SUITES, 1.0).check(frame, "standardize")
    assert str(mine.value) == str(plain.value)
    assert ({k: v for k, v in mine.value.result.items() if k != "seconds"}
            == {k: v for k, v in plain.value.result.items() if k != "seconds"})
    assert "resolution failed" in str(mine.value)
