"""Run per-value Python functions over the unique values of a Series only, across processes when there are many."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from leadflow.pipeline.settings import PARALLEL_MIN_UNIQUES, Settings

_CHUNKS_PER_WORKER = 4
"""Few, large chunks: per-task overhead stays negligible while a slow chunk cannot leave a core idle for long."""

_Task = Callable[[Any], list[Any]]

# Jobs reach forked workers through this module-level registry instead of being pickled, so `fn` may be any callable
# (closures, lambdas) and the inputs cross no pipe: workers see the parent's memory as it was at fork.
_JOBS: dict[int, tuple[_Task, Any]] = {}
_JOBS_LOCK = threading.Lock()
_job_ids = itertools.count()


def default_workers() -> int:
    """Processes to use: `LEADFLOW_WORKERS`, else one per CPU core."""
    return Settings().workers or os.cpu_count() or 1


def _fork_available() -> bool:
    # Daemonic processes (e.g. pool workers of a caller) may not start children of their own.
    if multiprocessing.current_process().daemon:
        return False
    return sys.platform != "win32" and "fork" in multiprocessing.get_all_start_methods()


def _python_values(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _run_slice(job: int, start: int, stop: int) -> Any:
    task, values = _JOBS[job]
    return task(values[start:stop])


def _run_chunked(values: Any, task: _Task, workers: int | None, parallel_min: int) -> list[Any]:
    """`[task(values)]` in-process, or `task` over contiguous slices of `values` in forked workers, in order."""
    n = len(values)
    if n < max(parallel_min, 1):  # small inputs never fork: no need to read the worker setting
        return [task(values)]
    procs = default_workers() if workers is None else max(1, workers)
    if procs < 2 or not _fork_available():
        return [task(values)]
    chunk = -(-n // (procs * _CHUNKS_PER_WORKER))
    starts = list(range(0, n, chunk))
    stops = [min(start + chunk, n) for start in starts]
    with _JOBS_LOCK:
        job = next(_job_ids)
        _JOBS[job] = (task, values)
    try:
        # With the fork start method the pool starts all its workers at the first submit, which is after the job
        # is registered; lookup tables `fn` built beforehand are shared copy-on-write.
        with ProcessPoolExecutor(max_workers=procs, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run_slice, itertools.repeat(job, len(starts)), starts, stops))
    finally:
        with _JOBS_LOCK:
            del _JOBS[job]


def compute_many(
    values: Sequence[Any],
    fn: Callable[[Any], Any],
    *,
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN_UNIQUES,
) -> list[Any]:
    """`[fn(v) for v in values]`, spread over forked worker processes when there are at least `parallel_min` values."""

    def task(chunk: Any) -> list[Any]:
        return [fn(v) for v in _python_values(chunk)]

    return list(itertools.chain.from_iterable(_run_chunked(values, task, workers, parallel_min)))


def _typed_task(fn: Callable[[Any], Any], dtypes: Sequence[str], multi: bool) -> _Task:
    # Workers return compact typed arrays rather than lists of Python objects: cheaper to pickle back, and the parent
    # never holds a Python object per result.
    def task(chunk: Any) -> list[ExtensionArray]:
        results = [fn(v) for v in _python_values(chunk)]
        columns = (list(zip(*results, strict=True)) or [()] * len(dtypes)) if multi else [results]
        if len(columns) != len(dtypes):
            raise ValueError(f"fn returned {len(columns)} values per input, expected {len(dtypes)}")
        return [pd.array(list(column), dtype=dtype) for column, dtype in zip(columns, dtypes, strict=True)]

    return task


def _map_typed(
    series: pd.Series,
    fn: Callable[[Any], Any],
    dtypes: Sequence[str],
    multi: bool,
    workers: int | None,
    parallel_min: int,
) -> list[pd.Series]:
    codes, uniques = series.factorize(use_na_sentinel=True)
    parts = _run_chunked(uniques, _typed_task(fn, dtypes, multi), workers, parallel_min)
    out: list[pd.Series] = []
    for i, dtype in enumerate(dtypes):
        pieces = [part[i] for part in parts]
        typed = pieces[0] if len(pieces) == 1 else pd.concat([pd.Series(p) for p in pieces], ignore_index=True).array
        # `take` with allow_fill maps the -1 code of missing inputs to NA without a Python loop over the rows.
        out.append(pd.Series(typed.take(np.asarray(codes), allow_fill=True), index=series.index, dtype=dtype))
    return out


def map_unique(
    series: pd.Series,
    fn: Callable[[Any], Any],
    *,
    dtype: str = "string",
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN_UNIQUES,
) -> pd.Series:
    """Apply `fn` to each distinct non-null value once and map the results back; missing inputs give NA.

    `fn` returns a value of `dtype` or None (→ NA). Same index and name as `series`. With at least `parallel_min`
    distinct values the work is spread over `workers` forked processes (default: `default_workers()`).
    """
    (result,) = _map_typed(series, fn, (dtype,), False, workers, parallel_min)
    result.name = series.name
    return result


def map_unique_multi(
    series: pd.Series,
    fn: Callable[[Any], tuple[Any, ...]],
    columns: Sequence[str],
    *,
    dtypes: Sequence[str] | str = "string",
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN_UNIQUES,
) -> pd.DataFrame:
    """Like `map_unique` for an `fn` returning one value per name in `columns`; missing inputs give NA everywhere."""
    kinds = [dtypes] * len(columns) if isinstance(dtypes, str) else list(dtypes)
    if len(kinds) != len(columns):
        raise ValueError(f"{len(columns)} columns but {len(kinds)} dtypes")
    results = _map_typed(series, fn, kinds, True, workers, parallel_min)
    return pd.DataFrame(dict(zip(columns, results, strict=True)), index=series.index)


__all__ = ["compute_many", "default_workers", "map_unique", "map_unique_multi"]
