"""The one place leadflow talks to Great Expectations: gate a stage's output, quarantine failing rows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadflow.pipeline.errors import ConfigError, DataQualityError
from leadflow.pipeline.schema import lead_keys

ROW_POSITION = "_gx_row"
"""Positional row id added for validation only, so GX reports failing rows unambiguously."""

ROW_LEVEL_PREFIXES = (
    "expect_column_values_to_",
    "expect_column_pair_values_to_",
    "expect_column_pair_values_a_to_be_",
    "expect_multicolumn_values_to_",
)


def is_row_level(expectation_type: str) -> bool:
    """Row-level expectations quarantine their failing rows; all others judge the whole batch."""
    return expectation_type.startswith(ROW_LEVEL_PREFIXES)


@dataclass
class GateResult:
    """What a gate decided for one batch."""

    suite: str
    stage: str
    rows_in: int
    passed: pd.DataFrame
    quarantine: pd.DataFrame
    """One record per (row, failing expectation): lead_key, expectation, column, reason, row (dict), position."""
    expectations: list[dict[str, Any]] = field(default_factory=list)
    """Per expectation: type, column, row_level, success, unexpected_count."""
    seconds: float = 0.0
    failure: str | None = None

    @property
    def rows_quarantined(self) -> int:
        return int(self.quarantine["position"].nunique()) if len(self.quarantine) else 0

    @property
    def success(self) -> bool:
        return self.failure is None

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary, small enough for an artifact or an event payload."""
        return {
            "suite": self.suite,
            "stage": self.stage,
            "success": self.success,
            "failure": self.failure,
            "rows_in": self.rows_in,
            "rows_passed": len(self.passed),
            "rows_quarantined": self.rows_quarantined,
            "seconds": round(self.seconds, 3),
            "expectations": self.expectations,
        }


Publisher = Callable[[GateResult], None]


@cache
def _context() -> Any:
    import logging

    import great_expectations as gx

    # GX logs its ephemeral docs folder at INFO on every start; it means nothing to an ops user.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


_GX_LOCK = threading.Lock()
"""One validation at a time per process: the GX context's batch bookkeeping is shared, and two threads validating at
once (backfill chunks on a threaded Dask cluster) were seen checking each other's batch."""


@cache
def _batch_definition() -> Any:
    source = _context().data_sources.add_pandas("leadflow")
    return source.add_dataframe_asset("leads").add_batch_definition_whole_dataframe("batch")


def load_suite(path: Path) -> Any:
    """Load a suite JSON file; a missing or malformed file names the file and the expectation at fault."""
    import great_expectations as gx

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "expectation suite not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(str(path), f"not a readable JSON suite: {exc}") from None
    try:
        return gx.ExpectationSuite(**document)
    except Exception as exc:  # GX raises a variety of types for bad suites
        raise ConfigError(str(path), f"invalid expectation suite: {exc}") from None


def suite_columns(suite: Any) -> list[str]:
    """The columns a suite's expectations refer to, in first-use order."""
    columns: list[str] = []
    for expectation in suite.expectations:
        for attr in ("column", "column_A", "column_B"):
            value = getattr(expectation, attr, None)
            if isinstance(value, str):
                columns.append(value)
        columns.extend(getattr(expectation, "column_list", None) or [])
    return list(dict.fromkeys(columns))


def _reason(config: Any) -> str:
    meta = config.meta or {}
    if meta.get("reason"):
        return str(meta["reason"])
    column = config.kwargs.get("column", "")
    return f"{column} failed {config.type}".strip()


class QualityGate:
    """Validates stage outputs with the suites in one folder and splits each batch into passed and quarantined."""

    def __init__(self, suites_dir: Path, max_quarantine_share: float, publish: Publisher | None = None) -> None:
        self.suites_dir = Path(suites_dir)
        self.max_quarantine_share = max_quarantine_share
        self.publish = publish
        self._suites: dict[str, Any] = {}

    def suite(self, name: str) -> Any:
        if name not in self._suites:
            self._suites[name] = load_suite(self.suites_dir / f"{name}.json")
        return self._suites[name]

    def check(self, frame: pd.DataFrame, stage: str, suite_name: str | None = None) -> GateResult:
        """Validate `frame`; quarantine rows failing row-level expectations; raise on batch-level failure."""
        name = suite_name or f"leads_{stage}"
        suite = self.suite(name)
        started = time.perf_counter()
        # GX filters and copies the whole frame per expectation: hand it only the columns the suite looks at.
        columns = [c for c in suite_columns(suite) if c in frame.columns]
        checked = frame[columns].assign(**{ROW_POSITION: np.arange(len(frame))})
        with _GX_LOCK:
            batch = _batch_definition().get_batch(batch_parameters={"dataframe": checked})
            result = batch.validate(
                suite,
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_POSITION]},
            )
        expectations: list[dict[str, Any]] = []
        failed_positions: list[np.ndarray] = []
        failed_expectation: list[str] = []
        failed_reason: list[str] = []
        failed_column: list[str] = []
        batch_failures: list[str] = []
        for item in result.results:
            config = item.expectation_config
            row_level = is_row_level(config.type)
            unexpected = int(item.result.get("unexpected_count") or 0)
            column = str(config.kwargs.get("column") or config.kwargs.get("column_list") or (
                f"{config.kwargs['column_A']}, {config.kwargs['column_B']}" if "column_A" in config.kwargs else ""))
            expectations.append(
                {
                    "expectation": config.type,
                    "column": column,
                    "row_level": row_level,
                    "success": bool(item.success),
                    "unexpected_count": unexpected,
                }
            )
            if item.success:
                continue
            if item.exception_info and item.exception_info.get("raised_exception"):
                batch_failures.append(f"{config.type}({column}) raised {item.exception_info.get('exception_message')}")
            elif row_level:
                index_list = item.result.get("unexpected_index_list") or []
                rows = np.fromiter((entry[ROW_POSITION] for entry in index_list), dtype=np.int64, count=len(index_list))
                failed_positions.append(rows)
                failed_expectation.extend([config.type] * len(rows))
                failed_column.extend([column] * len(rows))
                failed_reason.extend([_reason(config)] * len(rows))
            else:
                batch_failures.append(f"{config.type}({column}): {_reason(config)}; observed {item.result}")

        quarantine = self._quarantine_records(frame, failed_positions, failed_expectation, failed_column, failed_reason)
        bad = np.unique(quarantine["position"].to_numpy()) if len(quarantine) else np.array([], dtype=np.int64)
        keep = np.ones(len(frame), dtype=bool)
        keep[bad] = False
        gate = GateResult(
            suite=name,
            stage=stage,
            rows_in=len(frame),
            passed=frame if not len(bad) else frame[keep],  # no copy of a batch that passed whole
            quarantine=quarantine,
            expectations=expectations,
        )
        if batch_failures:
            gate.failure = "; ".join(batch_failures)
        elif len(frame) and not keep.any():
            gate.failure = f"all {len(frame)} rows failed row-level expectations (zero rows out of a non-empty batch)"
        elif len(frame) and len(bad) / len(frame) > self.max_quarantine_share:
            worst = max(expectations, key=lambda e: e["unexpected_count"])
            gate.failure = (
                f"{len(bad)} of {len(frame)} rows ({len(bad) / len(frame):.1%}) quarantined, over the configured "
                f"maximum of {self.max_quarantine_share:.1%}; most failures: {worst['expectation']}({worst['column']}) "
                f"with {worst['unexpected_count']} rows"
            )
        gate.seconds = time.perf_counter() - started
        if self.publish is not None:
            self.publish(gate)
        if gate.failure:
            raise DataQualityError(name, gate.failure, result=gate.summary(), quarantine=gate.quarantine, stage=stage)
        return gate

    @staticmethod
    def _quarantine_records(
        frame: pd.DataFrame,
        positions: list[np.ndarray],
        expectations: list[str],
        columns: list[str],
        reasons: list[str],
    ) -> pd.DataFrame:
        empty = pd.DataFrame(
            {"lead_key": [], "expectation": [], "column": [], "reason": [], "row": [], "position": []}
        ).astype({"position": "int64"})
        if not positions:
            return empty
        pos = np.concatenate(positions)
        if not len(pos):
            return empty
        rows = frame.iloc[pos]
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        return pd.DataFrame(
            {
                "lead_key": lead_keys(rows).to_numpy(),
                "expectation": expectations,
                "column": columns,
                "reason": [
                    f"{reason} (value: {record.get(column)!r})" if column in record else reason
                    for reason, column, record in zip(reasons, columns, records, strict=True)
                ],
                "row": records,
                "position": pos,
            },
            index=rows.index,
        )
