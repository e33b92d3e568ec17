"""Lead scoring: fit (who the lead is) plus engagement (what they did, decaying with age), as a pure function.

The model is data (`reference/scoring_model.yaml`, loaded with `load_scoring_model`):

- **fit rules** — a condition (`leadflow.pipeline.conditions`) and points (negative allowed); `fit_score` is the sum of the
  points of every rule whose condition holds.
- **engagement rules** — an activity type, optionally a regex on the activity's `detail` (a page path, a form
  name), points per activity decaying by half every `half_life_days`, and an optional per-lead `cap` on what the
  rule can add. An activity counts for every rule it matches. `engagement_score` is the sum over the rules of
  `min(cap, Σ points × 0.5^(age_days / half_life))` over the lead's activities with
  `as_of − lookback_days ≤ occurred_at ≤ as_of`. Activities after `as_of` are ignored: that is what makes a
  backfill score a lead as of its window end. (A negative-points rule's cap limits its magnitude.)
- `score = fit_score × weights.fit + engagement_score × weights.engagement`; `grade` A–D from `fit_score` against
  `grades`, the engagement band 1–4 from `engagement_score` against `engagement_bands`, `rating` = grade + band
  ("A1" is the best). `score_reasons` lists the `top_reasons` largest contributions by absolute points, e.g.
  `+25 VP or above; +20 Demo request (2); -30 Free-mail address` (engagement amounts rounded to whole points,
  the activity count in brackets when more than one; contributions under half a point are not listed; NA when
  nothing contributed).

Everything is vectorised: each fit rule is evaluated once over the whole frame, activities are reduced to integer
codes (lead, type, distinct detail) and summed per lead with `np.bincount`, and reason texts are built once per
distinct (rule, points, count) token and joined by Arrow.
"""

from __future__ import annotations

import math

import difflib
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow.pipeline.conditions import Condition, describe, evaluate
from leadflow.pipeline.schema import lead_keys
from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = [
    "ACTIVITY_COLUMNS",
    "ACTIVITY_TYPES",
    "DEFAULT_SCORING_MODEL",
    "SCORE_COLUMNS",
    "EngagementRule",
    "FitRule",
    "ScoringModel",
    "conform_activities",
    "load_scoring_model",
    "score_leads",
]

DEFAULT_SCORING_MODEL: Final[Path] = REFERENCE_DIR / "scoring_model.yaml"
ACTIVITY_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "activity_type", "occurred_at", "detail")
"""The canonical activity frame: `lead_key` as `leadflow.pipeline.schema.lead_keys` makes it, `occurred_at` tz-aware UTC."""
ACTIVITY_TYPES: Final[tuple[str, ...]] = (
    "page_visit",
    "form_fill",
    "demo_request",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "event_attended",
    "email_open",
    "email_click",
    "email_unsubscribe",
)
SCORE_COLUMNS: Final[tuple[str, ...]] = (
    "fit_score",
    "engagement_score",
    "score",
    "grade",
    "rating",
    "score_reasons",
    "score_model_version",
)
GRADES: Final[tuple[str, ...]] = ("A", "B", "C")
BANDS: Final[tuple[int, ...]] = (1, 2, 3)
_NS_PER_DAY: Final[float] = 86_400e9
_REASON_BLOCK: Final[int] = 100_000


# ------------------------------------------------------------------------------------------------------------ model


def _compiles(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    return pattern


class FitRule(BaseModel):
    """Points for who the lead is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    when: Condition
    points: int
    reason: str | None = Field(default=None, description="Text for reps; default: the condition described.")

    @property
    def label(self) -> str:
        return self.reason or describe(self.when)


class EngagementRule(BaseModel):
    """Points per activity of a type (optionally with a matching detail), decaying with the activity's age."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    activity_type: str
    detail_regex: str | None = Field(default=None, description="re.search on the activity's detail.")
    points: float
    cap: float | None = Field(default=None, gt=0, description="At most this many points from this rule per lead.")
    half_life_days: float | None = Field(default=None, gt=0, description="Overrides the model's half_life_days.")
    reason: str | None = Field(default=None, description="Text for reps; default from the type and detail regex.")

    @field_validator("activity_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ACTIVITY_TYPES:
            close = difflib.get_close_matches(value, ACTIVITY_TYPES, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f" (known: {', '.join(ACTIVITY_TYPES)})"
            raise ValueError(f"{value!r} is not a canonical activity type{hint}")
        return value

    @field_validator("detail_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return _compiles(value)

    @property
    def label(self) -> str:
        if self.reason:
            return self.reason
        text = self.activity_type.replace("_", " ").capitalize()
        return f"{text} matching {self.detail_regex}" if self.detail_regex else text


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fit: float = Field(default=1.0, ge=0)
    engagement: float = Field(default=1.0, ge=0)


def _descending(thresholds: dict[Any, float], keys: tuple[Any, ...], what: str) -> dict[Any, float]:
    if set(thresholds) != set(keys):
        raise ValueError(f"{what} needs exactly the keys {', '.join(map(str, keys))}; got {', '.join(map(str, thresholds))}")
    values = [thresholds[k] for k in keys]
    if any(a <= b for a, b in zip(values, values[1:], strict=False)):
        shown = ", ".join(f"{k}: {thresholds[k]:g}" for k in keys)
        raise ValueError(f"{what} thresholds must be strictly descending ({shown})")
    return {k: thresholds[k] for k in keys}


class ScoringModel(BaseModel):
    """A versioned scoring model (YAML: `load_scoring_model`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    fit_rules: list[FitRule] = Field(default_factory=list)
    engagement_rules: list[EngagementRule] = Field(default_factory=list)
    half_life_days: float = Field(default=30.0, gt=0)
    lookback_days: float = Field(default=180.0, gt=0, description="Activities older than this are ignored.")
    grades: dict[str, float] = Field(default_factory=lambda: {"A": 60.0, "B": 40.0, "C": 20.0})
    engagement_bands: dict[int, float] = Field(default_factory=lambda: {1: 60.0, 2: 40.0, 3: 20.0})
    mql_threshold: float
    weights: Weights = Field(default_factory=Weights)
    top_reasons: int = Field(default=3, ge=0, le=20)

    @field_validator("version", mode="before")
    @classmethod
    def _text_version(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError(f'YAML read the version as {type(value).__name__} {value!r}: quote it ("2026.11")')
        return value.strip() if isinstance(value, str) else value

    @field_validator("grades")
    @classmethod
    def _grades(cls, value: dict[str, float]) -> dict[str, float]:
        return _descending(value, GRADES, "grades")

    @field_validator("engagement_bands")
    @classmethod
    def _bands(cls, value: dict[int, float]) -> dict[int, float]:
        return _descending(value, BANDS, "engagement_bands")

    @model_validator(mode="after")
    def _unique_names(self) -> ScoringModel:
        seen: dict[str, str] = {}
        for kind, rules in (("fit_rules", self.fit_rules), ("engagement_rules", self.engagement_rules)):
            for i, rule in enumerate(rules):
                where = f"{kind}[{i}]"
                if rule.name in seen:
                    raise ValueError(f"rule name {rule.name!r} is used twice ({seen[rule.name]} and {where})")
                seen[rule.name] = where
        return self

    def is_mql(self, score: pd.Series) -> pd.Series:
        """Marketing-qualified: `score` at or above `mql_threshold` (boolean, same index)."""
        return (score >= self.mql_threshold).astype("boolean")


def load_scoring_model(path: Path = DEFAULT_SCORING_MODEL) -> ScoringModel:
    """Load and validate a scoring model YAML; errors name the file and YAML path (`fit_rules[2].when.column`)."""
    return parse_model(ScoringModel, load_yaml(path), path)


# ------------------------------------------------------------------------------------------------------- activities


def _utc(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(UTC)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize(UTC)
    # ISO text (or anything pandas reads); unparseable values become NaT and are never in a scoring window.
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def conform_activities(activities: pd.DataFrame) -> pd.DataFrame:
    """`activities` as the canonical activity frame: ACTIVITY_COLUMNS typed (strings; `occurred_at` UTC datetimes).

    An empty frame may lack columns; a non-empty one must have `lead_key`, `activity_type` and `occurred_at`
    (`detail` is optional)."""
    if len(activities) == 0:
        return pd.DataFrame({
            "lead_key": pd.Series(dtype="string"),
            "activity_type": pd.Series(dtype="string"),
            "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "detail": pd.Series(dtype="string"),
        })
    missing = [c for c in ACTIVITY_COLUMNS[:3] if c not in activities.columns]
    if missing:
        raise ValueError(f"activities need column(s) {missing}; found {list(activities.columns)}")
    detail = activities["detail"] if "detail" in activities.columns else pd.Series(pd.NA, index=activities.index)
    return pd.DataFrame({
        "lead_key": activities["lead_key"].astype("string"),
        "activity_type": activities["activity_type"].astype("string"),
        "occurred_at": _utc(activities["occurred_at"]),
        "detail": detail.astype("string"),
    }, index=activities.index)


def _nanoseconds(values: pd.Series) -> np.ndarray:
    """int64 nanoseconds since the epoch (NaT: the smallest int64, before any window)."""
    utc = _utc(values)
    return pd.DatetimeIndex(utc).as_unit("ns").asi8


def _as_of_ns(as_of: datetime) -> int:
    stamp = pd.Timestamp(as_of)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return int(stamp.as_unit("ns").value)


def _codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes), pd.Index(uniques)


def _engagement(
    key_uniques: pd.Index, activities: pd.DataFrame, model: ScoringModel, as_of: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """(points, counts): arrays of shape (len(key_uniques), rules), capped points per lead key and rule."""
    k, rules = len(key_uniques), model.engagement_rules
    points = np.zeros((k, len(rules)), dtype=float)
    counts = np.zeros((k, len(rules)), dtype=np.int64)
    if not rules or k == 0 or len(activities) == 0:
        return points, counts
    missing = [c for c in ACTIVITY_COLUMNS[:3] if c not in activities.columns]
    if missing:
        raise ValueError(f"activities need column(s) {missing}; found {list(activities.columns)}")
    end = _as_of_ns(as_of)
    start = end - int(round(model.lookback_days * _NS_PER_DAY))
    stamps = _nanoseconds(activities["occurred_at"])
    window = (stamps >= start) & (stamps <= end)
    type_codes, types = _codes(activities["activity_type"].astype("string"))
    wanted = np.isin(type_codes, np.flatnonzero(types.isin([r.activity_type for r in rules])))
    keep = np.flatnonzero(window & wanted)
    if keep.size == 0:
        return points, counts
    act_codes, act_keys = _codes(activities["lead_key"].astype("string").iloc[keep])
    lead_of_key = np.append(key_uniques.get_indexer(act_keys), -1)[act_codes]
    known = lead_of_key >= 0
    keep, lead = keep[known], lead_of_key[known]
    age_days = (end - stamps[keep]) / _NS_PER_DAY
    type_codes = type_codes[keep]
    detail_codes: np.ndarray | None = None
    details: pd.Index | None = None
    for j, rule in enumerate(rules):
        code = types.get_indexer([rule.activity_type])[0]
        if code < 0:
            continue
        mask = type_codes == code
        if rule.detail_regex is not None:
            if detail_codes is None:
                detail = activities["detail"] if "detail" in activities.columns else pd.Series(pd.NA, index=activities.index)
                detail_codes, details = _codes(detail.astype("string").iloc[keep])
            assert details is not None
            pattern = re.compile(rule.detail_regex)
            matched = np.fromiter((pattern.search(str(d)) is not None for d in details), dtype=bool, count=len(details))
            mask &= np.append(matched, False)[detail_codes]
        if not mask.any():
            continue
        half_life = rule.half_life_days or model.half_life_days
        weights = rule.points * np.exp2(-age_days[mask] / half_life)
        total = np.bincount(lead[mask], weights=weights, minlength=k)
        if rule.cap is not None:
            total = np.clip(total, -rule.cap, rule.cap)
        points[:, j] = total
        counts[:, j] = np.bincount(lead[mask], minlength=k)
    return points, counts


# ---------------------------------------------------------------------------------------------------------- reasons


def _strings(values: pa.Array, index: pd.Index) -> pd.Series:
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([values.cast(pa.large_string())])), index=index)


def _factorize_columns(*columns: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Codes (in order of first appearance) and the distinct rows of equal-length int64 columns, as
    `MultiIndex.from_arrays(columns).factorize()` gives them, without building a tuple per row: the columns are
    combined into one int64 key when their ranges allow (else that MultiIndex)."""
    lows = [int(c.min()) for c in columns]
    spans = [int(c.max()) - low + 1 for c, low in zip(columns, lows, strict=True)]
    if math.prod(spans) >= 2**62:  # pragma: no cover - far beyond rules x points x counts
        codes, uniques = pd.MultiIndex.from_arrays(list(columns)).factorize()
        return codes, [tuple(int(v) for v in u) for u in uniques]
    key = np.zeros(len(columns[0]), dtype=np.int64)
    for column, low, span in zip(columns, lows, spans, strict=True):
        key = key * span + (column - low)
    codes, keys = pd.factorize(key)
    uniques = []
    for k in keys.tolist():
        row = []
        for low, span in zip(reversed(lows), reversed(spans), strict=True):
            k, part = divmod(k, span)
            row.append(part + low)
        uniques.append(tuple(reversed(row)))
    return codes, uniques


def _reasons(contrib: np.ndarray, counts: np.ndarray, labels: list[str], n_fit: int, top: int, index: pd.Index) -> pd.Series:
    n, r = contrib.shape
    if top == 0 or r == 0 or n == 0:
        return pd.Series(pd.NA, index=index, dtype="string")
    top = min(top, r)
    # Row blocks: sorting the whole (leads × rules) matrix at once needs three full-size temporaries (~0.5 GB at 1M).
    order = np.empty((n, top), dtype=np.int64)
    for start in range(0, n, _REASON_BLOCK):
        block = contrib[start : start + _REASON_BLOCK]
        order[start : start + _REASON_BLOCK] = np.argsort(-np.abs(block), axis=1, kind="stable")[:, :top]
    rows = np.arange(n)[:, None]
    values = contrib[rows, order]
    shown = np.rint(values).astype(np.int64)
    valid = shown != 0
    engaged = order >= n_fit
    count = np.where(engaged, counts[rows, np.maximum(order - n_fit, 0)] if counts.size else 0, 0)
    # One token per distinct (rule, shown points, count): a few thousand strings, however many leads.
    rule_v, shown_v, count_v = order[valid], shown[valid], count[valid]
    codes = np.full(order.shape, -1, dtype=np.int64)
    texts: list[str] = []
    if rule_v.size:
        token_codes, uniques = _factorize_columns(rule_v, shown_v, count_v.astype(np.int64, copy=False))
        codes[valid] = token_codes
        texts = [
            f"{p:+d} {labels[rule]}" + (f" ({c})" if c > 1 else "")
            for rule, p, c in uniques
        ]
    # Then one text per distinct combination of tokens.
    base = len(texts) + 1
    if base ** top < 2**62:
        combined = np.zeros(n, dtype=np.int64)
        for j in range(top):
            combined = combined * base + (codes[:, j] + 1)
        combos, inverse = np.unique(combined, return_inverse=True)
        rows_of = np.stack([(combos // base ** (top - 1 - j)) % base - 1 for j in range(top)], axis=1)
    else:  # pragma: no cover - more than ~2^62 possible combinations
        rows_of, inverse = np.unique(codes, axis=0, return_inverse=True)
    joined = ["; ".join(texts[c] for c in row if c >= 0) or None for row in rows_of.tolist()]
    table = pa.array(joined, type=pa.large_string())
    return _strings(table.take(pa.array(np.asarray(inverse).reshape(-1))), index)


# ---------------------------------------------------------------------------------------------------------- scoring


def score_leads(
    leads: pd.DataFrame,
    activities: pd.DataFrame,
    model: ScoringModel,
    *,
    as_of: datetime,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Score every lead as of `as_of`: a frame on `leads.index` with exactly SCORE_COLUMNS (see the module doc).

    Leads are tied to their activities by `leadflow.pipeline.schema.lead_keys(leads)`; leads without a key, or without
    activities, have engagement 0. `activities` is the canonical activity frame (`conform_activities`); it may be
    empty, with or without columns. A naive `as_of` is taken as UTC. `timings`, if given, receives seconds per part
    (`fit`, `engagement`, `reasons`)."""
    clock = time.perf_counter()
    n, n_fit = len(leads), len(model.fit_rules)
    rules = n_fit + len(model.engagement_rules)
    contrib = np.zeros((n, rules), dtype=float, order="F")
    for i, rule in enumerate(model.fit_rules):
        contrib[:, i] = np.where(evaluate(rule.when, leads), float(rule.points), 0.0)
    fit = contrib[:, :n_fit].sum(axis=1)
    now = time.perf_counter()
    if timings is not None:
        timings["fit"] = now - clock
    clock = now

    counts = np.zeros((n, len(model.engagement_rules)), dtype=np.int64)
    if model.engagement_rules and n and len(activities):
        lead_codes, key_uniques = _codes(lead_keys(leads))
        points, key_counts = _engagement(key_uniques, activities, model, as_of)
        # The -1 code of a lead without a key picks the appended row of zeros.
        take = np.where(lead_codes < 0, len(key_uniques), lead_codes)
        zeros = np.zeros((1, points.shape[1]))
        contrib[:, n_fit:] = np.vstack([points, zeros])[take]
        counts = np.vstack([key_counts, zeros.astype(np.int64)])[take]
    engagement = contrib[:, n_fit:].sum(axis=1)
    now = time.perf_counter()
    if timings is not None:
        timings["engagement"] = now - clock
    clock = now

    labels = [r.label for r in model.fit_rules] + [r.label for r in model.engagement_rules]
    reasons = _reasons(contrib, counts, labels, n_fit, model.top_reasons, leads.index)
    score = fit * model.weights.fit + engagement * model.weights.engagement
    g, b = model.grades, model.engagement_bands
    grade_code = (fit < g["A"]).astype(np.int64) + (fit < g["B"]) + (fit < g["C"])
    band_code = (engagement < b[1]).astype(np.int64) + (engagement < b[2]) + (engagement < b[3])
    letters = [*GRADES, "D"]
    grade_table = pa.array(letters, type=pa.large_string())
    rating_table = pa.array([f"{x}{y}" for x in letters for y in range(1, 5)], type=pa.large_string())
    out = pd.DataFrame(
        {
            "fit_score": pd.array(fit, dtype="Float64"),
            "engagement_score": pd.array(engagement, dtype="Float64"),
            "score": pd.array(score, dtype="Float64"),
            "grade": _strings(grade_table.take(pa.array(grade_code)), leads.index).array,
            "rating": _strings(rating_table.take(pa.array(grade_code * 4 + band_code)), leads.index).array,
            "score_reasons": reasons.array,
            "score_model_version": pd.Series(model.version, index=leads.index, dtype="string").array,
        },
        index=leads.index,
    )
    if timings is not None:
        timings["reasons"] = time.perf_counter() - clock
    return out
