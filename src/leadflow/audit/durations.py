"""Durations as a person reads them: seconds shown in s, min, h or d, whichever keeps the number short."""

from __future__ import annotations

import math
from typing import Any, Final

_UNITS: Final[tuple[tuple[float, float, str], ...]] = (
    (90.0, 1.0, "s"), (90 * 60.0, 60.0, "min"), (48 * 3600.0, 3600.0, "h"), (math.inf, 86400.0, "d"))
"""(below this many seconds, seconds per unit, unit)."""


def _missing(seconds: Any) -> bool:
    return seconds is None or (isinstance(seconds, float) and math.isnan(seconds))


def human_duration(seconds: float | None) -> str:
    """"42 s", "12.5 min", "5.2 h", "105 d" (one decimal below 100 units, none above); "n/a" when unknown."""
    if _missing(seconds):
        return "n/a"
    value = float(seconds)  # type: ignore[arg-type]
    for below, per_unit, unit in _UNITS:
        if abs(value) < below:
            amount = value / per_unit
            text = f"{amount:,.1f}" if abs(amount) < 100 else f"{amount:,.0f}"
            return f"{text.removesuffix('.0')} {unit}"
    raise AssertionError("unreachable: the last unit has no bound")


def duration(seconds: float | None) -> dict[str, Any]:
    """A duration for JSON: {"seconds": float rounded to the millisecond or None, "text": `human_duration`}."""
    if _missing(seconds):
        return {"seconds": None, "text": "n/a"}
    return {"seconds": round(float(seconds), 3), "text": human_duration(seconds)}  # type: ignore[arg-type]
