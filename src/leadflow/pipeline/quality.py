"""The one place leadflow talks to Great Expectations: gate a stage's output, quarantine failing rows."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pandas.core.arrays.masked import BaseMaskedArray
from pandas.core.dtypes.cast import maybe_box_native

from leadflow.pipeline import quality_gx
from leadflow.pipeline.errors import ConfigError, DataQualityError
from leadflow.pipeline.schema import lead_keys

ROW_POSITION = "_gx_row"
"""A positional row id column some callers (tests) add to a frame they validate. The gate adds none: it hands GX
its frame indexed 0..n-1, so GX's unexpected_index_list holds the failing rows' positions (`RESULT_FORMAT`)."""

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


_context = quality_gx.context
_batch_definition = quality_gx.batch_definition
_GX_LOCK = quality_gx.GX_LOCK
"""The process's GX context, batch definition and validation lock (`leadflow.pipeline.quality_gx`)."""

RESULT_FORMAT: dict[str, Any] = {"result_format": "COMPLETE"}
"""What GX reports for a failing expectation: every failing row's index (COMPLETE is not capped at 20), which is its
position in the gate's batch. Not `unexpected_index_column_names`: GX then reads the named columns' values row by row
(`DataFrame.at`, twice per failing row); with none it lists the failing rows' index at once."""

MAX_CACHED_SUITES = 64
_SUITES: OrderedDict[bytes, quality_gx.CompiledSuite] = OrderedDict()
_SUITES_LOCK = threading.Lock()


def compiled_suite(path: Path) -> quality_gx.CompiledSuite:
    """The suite in `path`, parsed and compiled once per process for each content a suite file has had: keyed by a
    digest of the bytes read now, so an edited file (even within one mtime tick) or another suites folder is never
    served a stale suite. Reading a few KB per gate costs microseconds; parsing and compiling are what is saved."""
    data = _read_suite(path)
    key = hashlib.blake2b(data, digest_size=16).digest()
    with _SUITES_LOCK:
        entry = _SUITES.get(key)
        if entry is not None:
            _SUITES.move_to_end(key)
            return entry
    suite = _parse_suite(path, data)
    entry = quality_gx.CompiledSuite(suite, columns=suite_columns(suite),
                                     numbers=quality_gx.numpy_number_columns(suite.expectation_configurations))
    with _SUITES_LOCK:
        entry = _SUITES.setdefault(key, entry)  # of two threads loading the same suite at once, both keep one
        _SUITES.move_to_end(key)
        while len(_SUITES) > MAX_CACHED_SUITES:
            _SUITES.popitem(last=False)
    return entry


def load_suite(path: Path) -> Any:
    """Load a suite JSON file (a new ExpectationSuite each call; gates use `compiled_suite`); a missing or malformed
    file names the file and the expectation at fault."""
    return _parse_suite(path, _read_suite(path))


def _read_suite(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(path), "expectation suite not found") from None
    except OSError as exc:
        raise ConfigError(str(path), f"not a readable JSON suite: {exc}") from None


def _parse_suite(path: Path, data: bytes) -> Any:
    import great_expectations as gx

    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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


_EMPTY_QUARANTINE = pd.DataFrame(
    {"lead_key": [], "expectation": [], "column": [], "reason": [], "row": [], "position": []}
).astype({"position": "int64"})


def row_records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per row, missing values as None, values as Python scalars: what
    `rows.astype(object).where(rows.notna(), None).to_dict("records")` gives, without first turning every column of a
    60-column stage output into objects (tests/test_quality_cache.py compares the two). Column by column: a nullable
    number or boolean column's values are its numpy data's Python scalars, a string column's its Arrow strings,
    any other column's what `to_dict` gives (`maybe_box_native` of each value); ~4× faster than `to_dict`, which
    boxes every value through a numpy or Arrow scalar."""
    columns = list(rows.columns)
    if not rows.columns.is_unique:
        records = rows.to_dict("records")
    else:
        values = [_python_values(column.array) for _, column in rows.items()]
        records = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
    for i, j in zip(*np.nonzero(rows.isna().to_numpy()), strict=True):
        records[i][columns[j]] = None
    return records


def kept_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """`frame[keep]` (`keep` a boolean mask), column by column: pandas turns a mask into row numbers and takes them,
    Arrow filters a string column by the mask itself, ~25 % cheaper over a 60-column stage output. The same frame:
    dtypes, columns, index, attrs and flags (tests/test_gate_feed.py compares the two)."""
    out = pd.DataFrame({i: column.array[keep] for i, (_, column) in enumerate(frame.items())},
                       index=frame.index[keep], copy=False)
    out.columns = frame.columns
    return out.__finalize__(frame)


def _python_values(array: Any) -> list[Any]:
    """`[maybe_box_native(v) for v in array]` (what `to_dict("records")` gives for an extension column), the same
    values read in bulk where the array allows; missing values are overwritten by the caller."""
    if isinstance(array, BaseMaskedArray):
        return array._data.tolist()  # type: ignore[no-any-return]
    chunked = getattr(array, "_pa_array", None)
    if isinstance(chunked, pa.ChunkedArray) and (pa.types.is_string(chunked.type)
                                                 or pa.types.is_large_string(chunked.type)):
        return chunked.to_pylist()
    return [maybe_box_native(value) for value in array]


def _validate(compiled: quality_gx.CompiledSuite, checked: pd.DataFrame) -> list[Any]:
    """GX's results for `checked` (the tests swap in `quality_gx.validate_plain` to compare)."""
    return compiled.validate(checked, RESULT_FORMAT)


class QualityGate:
    """Validates stage outputs with the suites in one folder and splits each batch into passed and quarantined.

    Cheap to make (one per task call): suites, their compiled GX validation and the GX context live per process."""

    def __init__(self, suites_dir: Path, max_quarantine_share: float, publish: Publisher | None = None) -> None:
        self.suites_dir = Path(suites_dir)
        self.max_quarantine_share = max_quarantine_share
        self.publish = publish

    def suite(self, name: str) -> Any:
        """The ExpectationSuite `name` as its file is now (shared by the process: read it, do not change it)."""
        return compiled_suite(self.suites_dir / f"{name}.json").suite

    def check(self, frame: pd.DataFrame, stage: str, suite_name: str | None = None) -> GateResult:
        """Validate `frame`; quarantine rows failing row-level expectations; raise on batch-level failure."""
        name = suite_name or f"leads_{stage}"
        compiled = compiled_suite(self.suites_dir / f"{name}.json")
        started = time.perf_counter()
        # GX filters and copies the whole frame per expectation: hand it only the columns the suite looks at.
        columns = [c for c in compiled.columns if c in frame.columns]
        checked = frame[columns]
        checked.attrs = {}  # pandas deep-copies attrs (a stage's new state) on every GX filter step otherwise
        # nullable numbers only range and null checks read, as numpy numbers: GX then compares them vectorised
        checked = checked.assign(**quality_gx.numpy_numbers(checked, compiled.numbers))
        checked.index = pd.RangeIndex(len(frame))  # GX lists failing rows by index: their positions, unambiguous
        results = _validate(compiled, checked)
        expectations: list[dict[str, Any]] = []
        failed_positions: list[np.ndarray] = []
        failed_expectation: list[str] = []
        failed_reason: list[str] = []
        failed_column: list[str] = []
        batch_failures: list[str] = []
        for item in results:
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
                rows = np.asarray(index_list, dtype=np.int64).reshape(-1)
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
            passed=frame if not len(bad) else kept_rows(frame, keep),  # no copy of a batch that passed whole
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
        if not positions or not sum(len(p) for p in positions):
            return _EMPTY_QUARANTINE.copy()
        pos = np.concatenate(positions)
        rows = frame.iloc[pos]
        records = row_records(rows)
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
