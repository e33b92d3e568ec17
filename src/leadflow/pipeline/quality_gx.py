"""The Great Expectations runtime behind `leadflow.pipeline.quality`: one ephemeral context per process, and every
suite compiled once into the metric graphs GX would otherwise rebuild for each batch.

Why: GX 1.x's `batch.validate(suite)` rebuilds, for every batch, each expectation's metric-dependency graph (every step
re-serialising the expectation through pydantic) and, in COMPLETE format, computes the unexpected values, index list
and index query of every expectation, passing or not. For the six gates on 100 leads that was over a second, almost
none of it spent looking at the data. Here a `CompiledSuite` keeps, per result format, a `Plan`: the expectations in
the order GX validates them, each with its metric graph built once. A batch then only resolves the metrics and runs
each expectation's own `_validate`, as `Validator.graph_validate` and `Expectation.metrics_validate` do. Each batch is
first screened in BASIC format (success and unexpected_count come from the same metrics in every format); only the
expectations that failed are run again in the caller's detail format (COMPLETE with the row ids). The results are the
ones `batch.validate(suite, result_format=detail)` gives for the failures, and success and unexpected_count for the
rest, in the same order; tests/test_quality_cache.py checks that against plain `batch.validate` on every fixture.
Within one batch frame, each row condition filters it once instead of once per metric, the detail pass resolves only
the metrics the screen did not, and the screen skips unexpected values GX would find empty (`Plan` and
`RowConditionMemo`, in `leadflow.pipeline.quality_gx_plan`); the batch is loaded without GX's data fingerprint
(`FingerprintFree`), and nullable numbers that only range and null checks look at are handed over as numpy numbers,
which GX compares vectorised (`numpy_number_columns`).

Graphs are reused only where they cannot depend on the data: an expectation class that overrides
`get_validation_dependencies` (some look at the batch's column types) has its dependencies worked out per batch, as
GX does. Written against great-expectations 1.24.1 (pinned in pyproject.toml), whose `graph_validate` this mirrors.
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from leadflow.pipeline.quality_gx_plan import Plan, RowConditionMemo, Unresolved

__all__ = ["GX_LOCK", "SCREEN_FORMAT", "CompiledSuite", "FingerprintFree", "Plan", "RowConditionMemo", "Unresolved",
           "batch_definition", "column_groups", "context", "numpy_number_columns", "numpy_numbers", "validate_plain",
           "validator_for"]

SCREEN_FORMAT: dict[str, Any] = {"result_format": "BASIC"}
"""Format of the first pass over a batch: success and unexpected_count for every expectation, nothing per row."""

GX_LOCK = threading.Lock()
"""One validation at a time per process: the GX context's batch bookkeeping is shared (every batch of the data source
has the same batch id), and two threads validating at once (backfill chunks on a threaded Dask cluster) were seen
checking each other's batch."""


@cache
def context() -> Any:
    """The process's ephemeral GX context (no stores, no data docs, progress bars off)."""
    import logging

    import great_expectations as gx

    # GX logs its ephemeral docs folder at INFO on every start; it means nothing to an ops user.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_context = gx.get_context(mode="ephemeral")
    gx_context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx_context


@cache
def batch_definition() -> Any:
    """The one in-memory pandas asset every gate validates through: a whole-DataFrame batch per call."""
    source = context().data_sources.add_pandas("leadflow")
    return source.add_dataframe_asset("leads").add_batch_definition_whole_dataframe("batch")


def validator_for(frame: pd.DataFrame) -> Any:
    """A GX Validator over `frame`, loaded into the data source's execution engine (which loads a batch without a
    fingerprint, `FingerprintFree`, and filters each row condition once per batch, `RowConditionMemo`)."""
    definition = batch_definition()
    FingerprintFree.install(definition.data_asset.datasource.get_execution_engine())
    batch = definition.get_batch(batch_parameters={"dataframe": frame})
    validator = context().get_validator_using_batch_list(expectation_suite=None, batch_list=[batch])
    RowConditionMemo.install(validator.execution_engine)
    return validator


class FingerprintFree:
    """The pandas execution engine's batch loader, without the data fingerprint for an in-memory DataFrame.

    For every batch under 1 GB, `PandasExecutionEngine.get_batch_data_and_markers` hashes every cell of the frame
    (`hash_pandas_dataframe`, an md5 of `pd.util.hash_pandas_object`) into the batch markers: ~30 ms of a 50,000-row
    gate, nearly all of GX's batch loading. The fingerprint is only metadata of the batch (its `batch_markers`); no
    metric, expectation or result reads it, and leadflow keeps no suite-level result it would appear in. This does
    what GX 1.24.1's loader does for a `RuntimeDataBatchSpec` holding a DataFrame, less the hash; anything else goes
    to GX's loader. Installed on the leadflow data source's own engine only (`validate_plain` takes it off)."""

    def __init__(self, engine: Any, load: Any) -> None:
        self.engine = engine
        self.load = load

    @classmethod
    def install(cls, engine: Any) -> None:
        if not isinstance(engine.__dict__.get("get_batch_data_and_markers"), cls):
            engine.get_batch_data_and_markers = cls(engine, engine.get_batch_data_and_markers)

    def __call__(self, batch_spec: Any) -> tuple[Any, Any]:
        import datetime

        from great_expectations.core.batch import BatchMarkers
        from great_expectations.core.batch_spec import RuntimeDataBatchSpec
        from great_expectations.execution_engine.pandas_batch_data import PandasBatchData

        if not isinstance(batch_spec, RuntimeDataBatchSpec) or not isinstance(batch_spec.batch_data, pd.DataFrame):
            return self.load(batch_spec)  # type: ignore[no-any-return]
        markers = BatchMarkers(
            {"ge_load_time": datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")})
        frame = batch_spec.batch_data
        batch_spec.batch_data = "PandasDataFrame"
        frame = self.engine._apply_partitioning_and_sampling_methods(batch_spec, frame)
        return PandasBatchData(execution_engine=self.engine, dataframe=frame), markers


NUMBER_CHECKS = frozenset({"expect_column_to_exist", "expect_column_values_to_not_be_null",
                           "expect_column_values_to_be_null", "expect_column_values_to_be_between"})
"""Expectations that read a number column's values only (null or not, and for a range, how they compare with plain
number bounds), never its dtype: the same on a nullable pandas column and on its numpy copy."""
SHAPE_CHECKS = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal",
                          "expect_table_column_count_to_be_between", "expect_table_column_count_to_equal",
                          "expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list"})
"""Expectations that name no column and read only the table's row count or column names."""
_NUMBER_KWARGS = frozenset({"column", "min_value", "max_value", "strict_min", "strict_max", "mostly", "row_condition",
                            "condition_parser", "result_format", "catch_exceptions", "meta", "batch_id"})
_EXACT_FLOAT_INT = 2**53


def numpy_number_columns(configs: list[Any]) -> frozenset[str]:
    """The columns whose every expectation is a `NUMBER_CHECKS` one (range bounds plain numbers) and that no row
    condition mentions: GX compares a nullable (Int64, Float64) column row by row in Python (`is_between` mapped
    over the values, ~0.2 s per range on 50,000 rows), a numpy one vectorised, with the same outcome. Empty when the
    suite holds an expectation that might look at every column (anything not named here)."""
    columns: set[str] = set()
    refused: set[str] = set()
    conditions: list[str] = []
    for config in configs:
        kwargs = dict(config.kwargs)
        if kwargs.get("row_condition") is not None:  # text, or GX's parsed form: any mention counts
            conditions.append(repr(kwargs["row_condition"]))
        named = [kwargs[a] for a in ("column", "column_A", "column_B") if isinstance(kwargs.get(a), str)]
        named += list(kwargs.get("column_list") or [])
        if not named:
            if config.type not in SHAPE_CHECKS:
                return frozenset()
            continue
        bounds = [kwargs.get("min_value"), kwargs.get("max_value")]
        plain = all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in bounds)
        if config.type in NUMBER_CHECKS and plain and set(kwargs) <= _NUMBER_KWARGS and len(named) == 1:
            columns.add(named[0])
        else:
            refused.update(named)
    words = {word for condition in conditions for word in re.findall(r"\w+", condition)}
    return frozenset(c for c in columns - refused
                     if c not in words and (c.isidentifier() or not any(c in text for text in conditions)))


def numpy_numbers(frame: pd.DataFrame, columns: frozenset[str]) -> dict[str, np.ndarray]:
    """`frame`'s nullable number columns among `columns` as numpy arrays holding the same numbers: int64 when no value
    is missing, else float64 with NaN for missing (integers only while every one is exact as a float). A Float64
    column holding a NaN that is not missing (GX would check it as a value) is left as it is."""
    out: dict[str, np.ndarray] = {}
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column].array
        if not isinstance(values, pd.arrays.IntegerArray | pd.arrays.FloatingArray):
            continue
        data, mask = values._data, values._mask
        if isinstance(values, pd.arrays.FloatingArray):
            if np.isnan(data[~mask]).any():
                continue
            out[column] = np.where(mask, np.nan, data).astype(np.float64)
        elif not mask.any():
            out[column] = data.astype(np.int64)
        elif not len(data) or np.abs(data[~mask]).max(initial=0) <= _EXACT_FLOAT_INT:
            out[column] = np.where(mask, np.nan, data.astype(np.float64))
    return out


def validate_plain(frame: pd.DataFrame, suite: Any, result_format: dict[str, Any]) -> list[Any]:
    """GX's own `batch.validate(suite)`, row-condition memo taken off: the reference the compiled path must agree
    with (used by the tests)."""
    with GX_LOCK:
        engine = batch_definition().data_asset.datasource.get_execution_engine()
        loader = engine.__dict__.pop("get_batch_data_and_markers", None)
        memo = engine.__dict__.pop("_apply_row_condition_filter", None)
        try:
            batch = batch_definition().get_batch(batch_parameters={"dataframe": frame})
            return list(batch.validate(suite, result_format=copy.deepcopy(result_format)).results)
        finally:
            if memo is not None:
                memo.clear()
                engine._apply_row_condition_filter = memo
            if loader is not None:
                engine.get_batch_data_and_markers = loader


def _map_expectation_classes() -> tuple[type, ...]:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation


def column_groups(plan: Plan, columns: list[str], keep: list[str]) -> list[tuple[list[str] | None, list[int]]]:
    """The plan's steps split into batches GX can validate apart: each row-level (map) expectation with a graph
    kept across batches goes with the others on the same column(s) and those sharing its row condition, onto a
    frame of only the columns they name, their row conditions mention and `keep` (the result format's index
    columns); every other step (table and aggregate expectations, ones whose graph is worked out per batch or
    could not be built) stays on the whole frame (columns None), listed first.

    Why: GX's pandas metrics filter their whole batch for each column-map metric (`df[df[column].notnull()]`, in
    the condition, its unexpected values and its index list); on a 12-column stage output that copy was ~40% of a
    gate. A map expectation's metrics read only its domain columns, its row condition's and the index columns."""
    classes = _map_expectation_classes()
    present = set(columns)
    whole: list[int] = []
    parent: dict[Any, Any] = {}

    def root(key: Any) -> Any:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    needs: dict[int, tuple[Any, set[str]]] = {}
    for i, step in enumerate(plan.steps):
        kwargs = step.config.kwargs
        named = [kwargs[a] for a in ("column", "column_A", "column_B") if isinstance(kwargs.get(a), str)]
        named += [c for c in kwargs.get("column_list") or [] if isinstance(c, str)]
        if step.graph is None or not isinstance(step.expectation, classes) or not named:
            whole.append(i)
            continue
        used = set(named)
        domain = ("domain", tuple(named))
        condition = kwargs.get("row_condition")
        if condition is not None:
            text = repr(condition)
            used |= {c for c in present if c in text}  # every column its text could mean (more costs nothing)
            parent[root(("condition", text, kwargs.get("condition_parser")))] = root(domain)
        root(domain)
        needs[i] = (domain, used)
    groups: dict[Any, tuple[set[str], list[int]]] = {}
    for i, (domain, used) in needs.items():
        group = groups.setdefault(root(domain), (set(), []))
        group[0].update(used)
        group[1].append(i)
    out: list[tuple[list[str] | None, list[int]]] = [(None, whole)] if whole else []
    for used, steps in groups.values():
        wanted = used | set(keep)
        out.append(([c for c in columns if c in wanted], steps))
    return out


@dataclass
class CompiledSuite:
    """An expectation suite with its plans, built on its first batch and reused for every later one."""

    suite: Any
    columns: list[str] = field(default_factory=list)
    """The columns the suite's expectations refer to (the caller hands GX only these)."""
    numbers: frozenset[str] = frozenset()
    """The columns the caller may hand GX as numpy numbers (`numpy_number_columns`)."""
    plans: dict[str, Plan] = field(default_factory=dict)
    configs: list[Any] | None = None
    compiled: int = 0
    """How many plans were built (a test sees that a warm gate builds none)."""
    groups: dict[tuple[str, ...], list[tuple[list[str] | None, list[int]]]] = field(default_factory=dict)
    """`column_groups` of the plans, by the batch's columns and the index columns kept."""

    def plan(self, validator: Any, result_format: dict[str, Any]) -> Plan:
        key = repr(sorted(result_format.items()))
        plan = self.plans.get(key)
        if plan is None or plan.batch_id != validator.active_batch_id:
            if self.configs is None:
                self.configs = validator.process_expectations_for_validation(self.suite.expectation_configurations)
            # the screen runs every step; a detail plan only those that failed: compiled as they are first run
            plan = self.plans[key] = Plan(self.configs, validator, result_format, lazy=result_format != SCREEN_FORMAT)
            self.compiled += 1
        return plan

    def validate(self, frame: pd.DataFrame, detail_format: dict[str, Any]) -> list[Any]:
        """The suite's results on `frame`: screened in BASIC, failures again in `detail_format`, in GX's order.
        Map expectations are validated on frames of only the columns they read (`column_groups`); should the
        metrics of such a batch fail to resolve as a whole, the steps of that pass run on the whole frame as GX
        would run them (every one failing with that exception)."""
        with GX_LOCK:
            validator = validator_for(frame)
            try:
                screen = self.plan(validator, SCREEN_FORMAT)
                groups = self._groups(screen, frame, [SCREEN_FORMAT, detail_format])
                narrowed: dict[int, pd.DataFrame] = {}
                results = self._run(screen, frame, validator, groups, list(range(len(screen.steps))), narrowed)
                failed = [i for i, (_, result) in sorted(results.items()) if not result.success]
                if failed:
                    detail = self.plan(validator, detail_format)
                    results.update(self._run(detail, frame, validator, groups, failed, narrowed))
            finally:
                RowConditionMemo.install(validator.execution_engine).clear()  # keeps no batch alive after the gate
        return [result for _, (_, result) in sorted(results.items(), key=lambda item: (item[1][0], item[0]))]

    def _groups(self, plan: Plan, frame: pd.DataFrame, formats: list[dict[str, Any]]
                ) -> list[tuple[list[str] | None, list[int]]]:
        if any(f.get("include_unexpected_rows") for f in formats):  # whole rows asked for: GX sees the whole frame
            return [(None, list(range(len(plan.steps))))]
        columns = [str(c) for c in frame.columns]
        keep = [c for f in formats for c in f.get("unexpected_index_column_names") or [] if c in columns]
        if len(columns) != len(frame.columns) or len(set(columns)) != len(columns):
            return [(None, list(range(len(plan.steps))))]
        key = (*columns, "\x1f", *keep)
        if key not in self.groups:
            self.groups[key] = column_groups(plan, columns, keep)
        return self.groups[key]

    @staticmethod
    def _run(plan: Plan, frame: pd.DataFrame, validator: Any, groups: list[tuple[list[str] | None, list[int]]],
             indices: list[int], narrowed: dict[int, pd.DataFrame]) -> dict[int, tuple[int, Any]]:
        """`plan.run` of `indices`, each group on its own batch (`narrowed`: the group frames made so far, the same
        objects in both passes, so each row condition filters once); the whole frame is the validator's batch again
        afterwards."""
        wanted = set(indices)
        out: dict[int, tuple[int, Any]] = {}
        loaded = True  # whether `validator`'s batch (the whole frame) is the engine's active one
        try:
            for columns, steps in groups:
                mine = [i for i in steps if i in wanted]
                if not mine:
                    continue
                if columns is None:
                    if not loaded:
                        validator = validator_for(frame)
                        loaded = True
                    out.update(plan.run(validator, mine, contain=False))
                    continue
                narrow = narrowed.get(id(columns))
                if narrow is None:
                    narrow = narrowed[id(columns)] = frame[columns]
                    narrow.attrs = {}
                loaded = False
                out.update(plan.run(validator_for(narrow), mine, contain=False))
        except Unresolved:
            return plan.run(validator_for(frame), indices)
        if not loaded:
            validator_for(frame)
        return out
