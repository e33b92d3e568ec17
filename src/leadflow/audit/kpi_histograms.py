"""The log-spaced histograms the KPI rollups keep durations in (`leadflow.audit.kpi_rollups`): a value's bin, the
value a bin stands for, and percentiles read from bin counts, each within `PERCENTILE_ERROR` of the exact one."""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from leadflow.audit.kpis import PERCENTILES

HISTOGRAM_FLOOR: Final[float] = 0.01
"""Values closer to 0 than this (minutes, or days for velocity) fall in bin 0, read as 0."""
HISTOGRAM_RATIO: Final[float] = 1.02
PERCENTILE_ERROR: Final[float] = math.sqrt(HISTOGRAM_RATIO) - 1
"""Largest relative error of a value read from its bin (~0.995 %)."""



def histogram_bins(values: np.ndarray) -> np.ndarray:
    """The log-spaced bin (int64) of each known value; 0 for |value| < HISTOGRAM_FLOOR, negative for negatives."""
    magnitude = np.abs(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.floor(np.log(np.maximum(magnitude, HISTOGRAM_FLOOR) / HISTOGRAM_FLOOR) / math.log(HISTOGRAM_RATIO))
    bins = np.where(magnitude < HISTOGRAM_FLOOR, 0, steps + 1) * np.sign(values)
    return bins.astype("int64")


def bin_values(bins: np.ndarray) -> np.ndarray:
    """The value each bin is read as: its geometric centre (0 for bin 0)."""
    bins = np.asarray(bins, dtype="int64")
    centre = HISTOGRAM_FLOOR * np.power(HISTOGRAM_RATIO, np.abs(bins) - 0.5)
    return np.where(bins == 0, 0.0, np.sign(bins) * centre)


def histogram_percentiles(histogram: dict[int, int]) -> dict[str, float]:
    """p50/p90/p95 and n from bin → count, as `kpis.percentiles` computes them (linear interpolation between the
    two nearest ranks) over the values the bins stand for."""
    known = sorted((b, c) for b, c in histogram.items() if c > 0)
    total = int(sum(c for _, c in known))
    out: dict[str, float] = {"n": total}
    if not total:
        return {**out, **{f"p{p}": math.nan for p in PERCENTILES}}
    values = bin_values(np.array([b for b, _ in known]))
    ends = np.cumsum([c for _, c in known])  # values[i] holds ranks [ends[i-1], ends[i])
    for p in PERCENTILES:
        rank = p / 100 * (total - 1)
        low, high = math.floor(rank), math.ceil(rank)
        a = values[np.searchsorted(ends, low, side="right")]
        b = values[np.searchsorted(ends, high, side="right")]
        out[f"p{p}"] = float(a + (b - a) * (rank - low))
    return out
