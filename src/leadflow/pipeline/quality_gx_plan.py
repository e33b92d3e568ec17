"""A suite compiled for GX validation: `Plan`, the expectations of one result format with their metric graphs built
once, and `RowConditionMemo`, what one validation keeps per batch frame (row-condition filters, resolved metrics).
Used by `leadflow.pipeline.quality_gx` (see its docstring for why); written against great-expectations 1.24.1, whose
`Validator.graph_validate` and `Expectation.metrics_validate` `Plan.run` mirrors.

Within one batch frame nothing is computed twice: each row condition filters it once (GX filters again for every
metric), and a metric resolved by the BASIC screen is not resolved again by the detail pass of the expectations that
failed (`RowConditionMemo.resolved`, handed to GX's resolution loop as metrics it already has). The screen leaves out
a column-map expectation's unexpected values where its unexpected count is 0 (`Plan._lean`): GX's metric is the
empty list there, and computing it filters and copies the column once more.
"""

from __future__ import annotations

import copy
import traceback
from dataclasses import dataclass
from functools import cache
from typing import Any

# Kinds of result, in the order Validator.graph_validate lists them: graphs that could not be built, then expectations
# whose metrics could not be resolved, then the ones validated (or that raised while validating), each in plan order.
_BUILD_FAILED, _METRICS_FAILED, _VALIDATED = 0, 1, 2


class RowConditionMemo:
    """The pandas execution engine's row-condition filter, applied once per (batch, condition); and the metrics
    resolved on each batch frame (`resolved`).

    GX filters the batch again for every metric of an expectation with a `row_condition` (its null count, unexpected
    count, values, index list, ...): five or six `DataFrame.query` parses of the same text per expectation, a third of
    the gates' time. The filtered frame is the same each time, so it is kept, per batch frame, until the validation
    ends (GX already hands every metric of an unconditioned expectation the one batch frame; no metric changes it).
    It is installed on the leadflow data source's own engine only, and `clear`ed after each validation."""

    def __init__(self, apply: Any) -> None:
        self.apply = apply
        self.data: Any = None
        self.filtered: dict[tuple[int, str, Any], Any] = {}
        self.metrics: dict[int, dict[Any, Any]] = {}
        self.frames: dict[int, Any] = {}
        """The batches filtered since the last `clear`, by id (held, so no id is reused meanwhile): a gate validates
        its map expectations on several column subsets (`column_groups`), each once in BASIC, again in detail."""

    @classmethod
    def install(cls, engine: Any) -> RowConditionMemo:
        memo = engine.__dict__.get("_apply_row_condition_filter")
        if not isinstance(memo, cls):
            memo = engine._apply_row_condition_filter = cls(engine._apply_row_condition_filter)
        return memo

    def __call__(self, data: Any, row_condition: Any, domain_kwargs: dict[str, Any]) -> Any:
        self.data = self.frames.setdefault(id(data), data)
        key = (id(data), repr(row_condition), domain_kwargs.get("condition_parser"))
        if key not in self.filtered:
            self.filtered[key] = self.apply(data, row_condition, domain_kwargs)
        return self.filtered[key]

    def resolved(self, data: Any) -> dict[Any, Any]:
        """The metrics resolved so far on batch frame `data`, by metric id. A metric's id names its batch id, domain
        and value kwargs, not the frame (every batch of the data source has the same batch id): one dict per frame."""
        self.frames.setdefault(id(data), data)
        return self.metrics.setdefault(id(data), {})

    def clear(self) -> None:
        self.data, self.filtered, self.metrics, self.frames = None, {}, {}, {}


def _static_dependency_methods() -> frozenset[Any]:
    """The `get_validation_dependencies` implementations that read only the expectation's configuration and the
    result format, never the batch: an expectation using one of them can keep its metric graph across batches."""
    from great_expectations.expectations.expectation import (
        BatchExpectation,
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        Expectation,
        MulticolumnMapExpectation,
    )

    classes = (Expectation, BatchExpectation, ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
    return frozenset(cls.get_validation_dependencies for cls in classes)


def _exception_result(config: Any, exc: BaseException) -> Any:
    """The failed result GX records for an expectation that raised (Validator's catch_exceptions behaviour)."""
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult
    from great_expectations.validator.exception_info import ExceptionInfo

    info = ExceptionInfo(exception_traceback=traceback.format_exc(), exception_message=str(exc))
    return ExpectationValidationResult(success=False, exception_info=info, expectation_config=config)


@dataclass
class _Step:
    """One expectation of a plan: its configuration as validated (with the batch id) and, when they do not depend
    on the batch, its domain object, metrics by name and metric graph, built once."""

    config: Any
    expectation: Any = None
    metrics: dict[str, Any] | None = None
    result_format: dict[str, Any] | None = None
    graph: Any = None
    build_failure: Any = None
    """The failed result of an expectation whose metric graph could not be built (the same for every batch)."""
    lean: Any = None
    """(BASIC plans, column-map steps) `graph` without the unexpected-values metric (`Plan._lean`)."""
    implied: tuple[str, str] | None = None
    """(with `lean`) the names of the unexpected-values metric and of the unexpected count that decides it."""


class Plan:
    """A suite's expectations, in GX's validation order, with their metric graphs for one result format. `lazy`:
    each step is compiled when first run (a detail plan runs only the expectations that failed)."""

    def __init__(self, configs: list[Any], validator: Any, result_format: dict[str, Any], *, lazy: bool = False
                 ) -> None:
        if result_format.get("result_format") == "BOOLEAN_ONLY":
            raise ValueError("a Plan does not strip results to BOOLEAN_ONLY; screen with BASIC")
        self.runtime = {"result_format": copy.deepcopy(result_format)}
        self.batch_id = validator.active_batch_id
        self.configs = configs
        # the data source's engine (one per process) and its calculator: building a graph reads no batch
        self._engine, self._calculator = validator.execution_engine, validator.metrics_calculator
        self._steps: list[_Step | None] = [None] * len(configs)
        for i in range(0 if lazy else len(configs)):
            self.step(i)

    @property
    def steps(self) -> list[_Step]:
        return [self.step(i) for i in range(len(self._steps))]

    def step(self, i: int) -> _Step:
        step = self._steps[i]
        if step is None:
            step = self._steps[i] = self._compile(self.configs[i])
        return step

    def _compile(self, config: Any) -> _Step:
        from great_expectations.validator.validation_graph import ExpectationValidationGraph

        step = _Step(config=copy.deepcopy(config))
        if self.batch_id:
            step.config.kwargs.update({"batch_id": self.batch_id})
        expectation = step.config.to_domain_obj()
        if type(expectation).get_validation_dependencies in _static_dependency_methods():
            expectation = _frozen(expectation)
            dependencies = expectation.get_validation_dependencies(
                execution_engine=self._engine, runtime_configuration=self.runtime)
            try:
                graph = self._calculator.build_metric_dependency_graph(
                    metric_configurations=dependencies.get_metric_configurations(),
                    runtime_configuration=self.runtime,
                )
            except Exception as exc:  # GX records the failure against the expectation and goes on
                step.build_failure = _exception_result(step.config, exc)
            else:
                step.expectation = expectation
                step.metrics = dict(dependencies.metric_configurations)
                step.result_format = dependencies.result_format
                step.graph = ExpectationValidationGraph(configuration=step.config, graph=graph)
                if self.runtime["result_format"].get("result_format") == "BASIC":
                    self._lean(step)
        return step

    def _lean(self, step: _Step) -> None:
        """Give a column-map step of a BASIC plan its graph without `<map metric>.unexpected_values`. What GX's
        metric gives (`_pandas_column_map_condition_values`: the domain's values where the unexpected condition is
        true, as a list) is the empty list wherever `<map metric>.unexpected_count` (the number of rows where that
        same condition is true) is 0: most expectations on most batches."""
        from great_expectations.expectations.expectation import ColumnMapExpectation
        from great_expectations.validator.validation_graph import ExpectationValidationGraph, ValidationGraph

        assert step.metrics is not None
        metric = getattr(step.expectation, "map_metric", None)
        values, count = f"{metric}.unexpected_values", f"{metric}.unexpected_count"
        if not isinstance(step.expectation, ColumnMapExpectation) or values not in step.metrics or (
                count not in step.metrics):
            return
        # the edges the other metrics need, walked from them through `graph` (left: a metric, right: what it needs)
        edges: dict[Any, list[Any]] = {}
        for edge in step.graph.graph.edges:
            edges.setdefault(edge.left.id, []).append(edge)
        todo = [config.id for name, config in step.metrics.items() if name != values]
        seen: set[Any] = set()
        kept: list[Any] = []
        while todo:
            metric_id = todo.pop()
            if metric_id not in seen:
                seen.add(metric_id)
                kept.extend(edges.get(metric_id, ()))
                todo.extend(edge.right.id for edge in edges.get(metric_id, ()) if edge.right is not None)
        step.lean = ExpectationValidationGraph(
            configuration=step.config, graph=ValidationGraph(execution_engine=self._engine, edges=kept))
        step.implied = (values, count)

    def run(self, validator: Any, indices: list[int], *, contain: bool = True) -> dict[int, tuple[int, Any]]:
        """Validate the steps at `indices` on the validator's batch: {index: (kind, result)}. `contain=False`: an
        exception resolving the metrics as a whole is raised (`Unresolved`) instead of failing every step with it.
        Metrics already resolved on the same batch frame (`RowConditionMemo.resolved`) are not computed again."""
        from great_expectations.validator.validation_graph import ExpectationValidationGraph

        engine = validator.execution_engine
        known = RowConditionMemo.install(engine).resolved(engine.batch_manager.active_batch_data.dataframe)
        out: dict[int, tuple[int, Any]] = {}
        graphs: dict[int, Any] = {}
        fresh: dict[int, Any] = {}  # domain objects of the steps whose dependencies are worked out per batch
        for i in indices:
            step = self.step(i)
            if step.build_failure is not None:
                out[i] = (_BUILD_FAILED, step.build_failure)
            elif step.graph is not None:
                graphs[i] = step.lean or step.graph
            else:
                expectation = step.config.to_domain_obj()
                dependencies = expectation.get_validation_dependencies(
                    execution_engine=engine, runtime_configuration=self.runtime)
                try:
                    graph = validator.metrics_calculator.build_metric_dependency_graph(
                        metric_configurations=dependencies.get_metric_configurations(),
                        runtime_configuration=self.runtime,
                    )
                except Exception as exc:
                    out[i] = (_BUILD_FAILED, _exception_result(step.config, exc))
                    continue
                graphs[i] = ExpectationValidationGraph(configuration=step.config, graph=graph)
                fresh[i] = expectation
        implied: dict[int, str] = {}
        try:
            metrics, aborted = self._resolve(validator, list(graphs.values()), known)
            fuller = []
            for i, graph in graphs.items():
                step = self.step(i)
                if graph is step.lean:
                    assert step.implied is not None and step.metrics is not None
                    if metrics.get(step.metrics[step.implied[1]].id, -1) == 0:
                        implied[i] = step.implied[0]
                    else:  # a row unexpected (or no count): GX's values are needed
                        graphs[i] = step.graph
                        fuller.append(step.graph)
            if fuller:
                aborted = {**aborted, **self._resolve(validator, fuller, metrics)[1]}
        except Exception as exc:  # nothing can be attributed to one metric: every expectation fails with it
            if not contain:
                raise Unresolved from exc
            for i in graphs:
                out[i] = (_VALIDATED, _exception_result(self.step(i).config, exc))
            return out
        for i, graph in graphs.items():
            info = graph.get_exception_info(metric_info=aborted)
            if info:
                from great_expectations.core.expectation_validation_result import ExpectationValidationResult

                out[i] = (_METRICS_FAILED, ExpectationValidationResult(
                    success=False, exception_info=info, expectation_config=graph.configuration))
                continue
            try:
                out[i] = (_VALIDATED, self._validate(self.step(i), fresh.get(i), metrics, engine, implied.get(i)))
            except Exception as exc:
                out[i] = (_VALIDATED, _exception_result(self.step(i).config, exc))
        return out

    def _resolve(self, validator: Any, graphs: list[Any], known: dict[Any, Any]) -> tuple[dict[Any, Any], Any]:
        """GX's resolution of the metrics of `graphs` on the validator's batch, as `Validator.graph_validate` calls
        it, starting from the `known` ones (GX's loop resolves only the metrics not in that dict, and adds them)."""
        edges = [edge for graph in graphs for edge in graph.graph.edges]
        return validator.metrics_calculator.resolve_validation_graph(  # type: ignore[no-any-return]
            graph=_seeded_graph_class()(execution_engine=validator.execution_engine, edges=edges, known=known),
            runtime_configuration=self.runtime,
            min_graph_edges_pbar_enable=0,
        )

    def _validate(self, step: _Step, fresh: Any, metrics: dict[Any, Any], engine: Any, empty: str | None) -> Any:
        """`Expectation.metrics_validate`, without working the expectation's dependencies out again; `empty`: the
        metric (by name) whose value is the empty list (`_lean`)."""
        from great_expectations.expectations.expectation import _validate_dependencies_against_available_metrics

        runtime = copy.deepcopy(self.runtime)
        if fresh is not None:
            return fresh.metrics_validate(metrics=metrics, runtime_configuration=runtime, execution_engine=engine)
        assert step.metrics is not None
        runtime["result_format"] = copy.deepcopy(step.result_format)
        _validate_dependencies_against_available_metrics(
            validation_dependencies=[metric for name, metric in step.metrics.items() if name != empty],
            metrics=metrics)
        provided = {name: [] if name == empty else metrics[metric.id] for name, metric in step.metrics.items()}
        raw = step.expectation._validate(metrics=provided, runtime_configuration=runtime, execution_engine=engine)
        return step.expectation._build_evr(raw_response=raw)


def _frozen(expectation: Any) -> Any:
    """The same expectation, as an instance of a subclass (`_frozen_class`) whose `configuration` is built once.

    GX's `Expectation.configuration` is a property that builds a new ExpectationConfiguration from a pydantic `dict()`
    of every field each time it is read, and an expectation reads it whenever it looks at one of its kwargs: three or
    four times per expectation and batch when validating, a dozen when its dependencies are worked out (~25 µs each,
    ~200 µs with a 250-country value set; ~5 % of a gate, ~10 % of a process's first gates). A compiled step's
    expectation is never changed (its suite's configurations are copied into the plan), so its configuration is read
    once; the instance holds the same field values (`construct` validates nothing again)."""
    frozen = _frozen_class(type(expectation)).construct(_fields_set=set(expectation.__fields_set__),
                                                        **expectation.__dict__)
    object.__setattr__(frozen, "_leadflow_configuration", expectation.configuration)
    return frozen


@cache
def _frozen_class(cls: type) -> type:
    """`cls`, same name, fields and methods, but `configuration` read from the instance (`_frozen`). Made with pydantic's
    model metaclass directly: GX's `MetaExpectation.__new__` would register it as the implementation of its
    expectation type, in place of `cls` (the subclass inherits `cls.expectation_type` and is registered nowhere)."""
    from great_expectations.compatibility import pydantic
    from great_expectations.compatibility.pydantic import ModelMetaclass

    namespace = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__annotations__": {"_leadflow_configuration": Any},
        "_leadflow_configuration": pydantic.PrivateAttr(default=None),
        "configuration": property(lambda self: self._leadflow_configuration,
                                  doc="The configuration `_frozen` read from the expectation, built once."),
    }
    return ModelMetaclass.__new__(type(cls), cls.__name__, (cls,), namespace)  # type: ignore[no-any-return]


class Unresolved(Exception):
    """A plan's metrics could not be resolved as a whole (`Plan.run(..., contain=False)`)."""


@cache
def _seeded_graph_class() -> type:
    from great_expectations.validator.validation_graph import ValidationGraph

    class SeededValidationGraph(ValidationGraph):  # type: ignore[misc]
        """A ValidationGraph whose `resolve` starts from metrics already resolved on the same batch frame: GX's own
        `_resolve` loop then computes only the metrics not among them (it sorts ready from needed by that dict)."""

        def __init__(self, execution_engine: Any, edges: list[Any], known: dict[Any, Any]) -> None:
            super().__init__(execution_engine=execution_engine, edges=edges)
            self.known = known

        def resolve(self, runtime_configuration: dict[str, Any] | None = None, min_graph_edges_pbar_enable: int = 0,
                    show_progress_bars: bool = True) -> tuple[dict[Any, Any], Any]:
            aborted = self._resolve(metrics=self.known, runtime_configuration=runtime_configuration,
                                    min_graph_edges_pbar_enable=min_graph_edges_pbar_enable,
                                    show_progress_bars=show_progress_bars)
            return self.known, aborted

    return SeededValidationGraph
