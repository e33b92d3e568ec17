"""Run per-value Python functions over the unique values of a Series only, across processes when there are many."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from leadflow.settings import PARALLEL_MIN_UNIQUES, Settings

_CHUNKS_PER_WORKER = 4
"""Few, large chunks: per-task overhead stays negligible while a slow chunk cannot leave a core idle for long."""

# Jobs are handed to forked workers through this module-level registry rather than pickled, so `fn` may be any
# callable (closures, lambdas) and the input values are never serialised on the way in.
_JOBS: dict[int, tuple[Callable[[Any], Any], Sequence[Any]]] = {}
_JOBS_LOCK = threading.Lock()
_job_ids = itertools.count()


def default_workers() -> int:
    """Processes to use: `LEADFLOW_WORKERS`, else one per CPU core."""
    return Settings().workers or os.cpu_count() or 1


def _run_slice(job: int, start: int, stop: int) -> list[Any]:
    fn, values = _JOBS[job]
    return [fn(v) for v in values[start:stop]]


def _fork_available() -> bool:
    return sys.platform != "win32" and "fork" in multiprocessing.get_all_start_methods()


def compute_many(
    values: Sequence[Any],
    fn: Callable[[Any], Any],
    *,
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN_UNIQUES,
) -> list[Any]:
    """`[fn(v) for v in values]`, spread over forked worker processes when there are at least `parallel_min` values."""
    n = len(values)
    procs = default_workers() if workers is None else max(1, workers)
    if n < max(parallel_min, 1) or procs < 2 or not _fork_available():
        return [fn(v) for v in values]
    chunk = -(-n // (procs * _CHUNKS_PER_WORKER))
    bounds = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    with _JOBS_LOCK:
        job = next(_job_ids)
        _JOBS[job] = (fn, values)
    try:
        # The pool forks when the first task is submitted, i.e. after the job is registered; fork shares the job
        # (and any lookup tables `fn` has already built) copy-on-write.
        with ProcessPoolExecutor(max_workers=procs, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = pool.map(_run_slice, itertools.repeat(job), *zip(*bounds, strict=True))
            return list(itertools.chain.from_iterable(parts))
    finally:
        with _JOBS_LOCK:
            del _JOBS[job]


def _factorize(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = series.factorize(use_na_sentinel=True)
    return np.asarray(codes), np.asarray(uniques, dtype=object)


def _spread(results: Sequence[Any], codes: np.ndarray, dtype: str, index: pd.Index, name: Hashable) -> pd.Series:
    # `take` with allow_fill maps the -1 code of missing inputs to NA without a Python-level loop over the rows.
    typed = pd.array(list(results), dtype=dtype)
    return pd.Series(typed.take(codes, allow_fill=True), index=index, name=name)


def map_unique(
    series: pd.Series,
    fn: Callable[[Any], Any],
    *,
    dtype: str = "string",
    workers: int | None = None,
    parallel_min: int = PARALLEL_MIN_UNIQUES,
) -> pd.Series:
    """Apply `fn` to each distinct non-null value once and map the results back; missing inputs give NA.

    `fn` returns a value of `dtype` or None (→ NA). Same index and name as `series`.
    """
    codes, uniques = _factorize(series)
    results = compute_many(uniques, fn, workers=workers, parallel_min=parallel_min)
    return _spread(results, codes, dtype, series.index, series.name)


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
    codes, uniques = _factorize(series)
    results = compute_many(uniques, fn, workers=workers, parallel_min=parallel_min)
    per_column = list(zip(*results, strict=True)) if results else [()] * len(columns)
    if len(per_column) != len(columns):
        raise ValueError(f"fn returned {len(per_column)} values per input, expected {len(columns)}")
    return pd.DataFrame(
        {
            column: _spread(values, codes, kind, series.index, column)
            for column, values, kind in zip(columns, per_column, kinds, strict=True)
        },
        index=series.index,
    )
