"""The condition language shared by scoring (and routing): rules as data, evaluated vectorised over a lead frame.

A condition is YAML; which kind it is follows from the key used::

    {column: seniority, equals: vp}
    {column: country_code, in: [US, CA]}
    {column: industry, not_in: [Education]}
    {column: employees, range: {min: 100, max: 999}}     # inclusive; either bound optional (numeric columns)
    {column: title, regex: "(?i)student"}                # re.search, on text columns
    {column: phone_e164, exists: true}                   # false: the value is missing
    {all: [...]}  {any: [...]}  {not: {...}}             # nestable

Semantics (documented contract):

- Leaves are SQL-like: an unknown value (NA) never satisfies a positive test, and `not_in` is a positive test too
  ("industry is known and not Education"), so NA gives False for `equals`, `in`, `not_in`, `range`, `regex`.
  `exists: true` is True exactly for known values (for text columns: not NA and not blank), `exists: false` the
  opposite. A column absent from the frame counts as all-unknown.
- `not` is plain negation of the boolean its child evaluated to: `not {column: industry, equals: Education}` is
  True for an unknown industry ("unknown is false" inside, then negated). Use `not_in` to exclude unknowns.
- `all: []` is True, `any: []` is False.
- Text comparisons are exact (case-sensitive): the stages standardize values first. Regexes are applied to each
  distinct value once.

Validation: `column` must be a canonical column (`leadflow.pipeline.schema.CANONICAL_COLUMNS`) or one of the score columns
(`SCORE_OUTPUT_COLUMNS`, for routing); values must fit the column's type (booleans for boolean columns, numbers for
numeric ones, text for the rest — YAML reads an unquoted `NO` or `yes` as a boolean, so a boolean given for a text
column is refused with a hint to quote it); `country_code` values must be ISO 3166-1 alpha-2 codes; regexes must
compile; `range` needs min ≤ max and a numeric column; exactly one operator per leaf.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Final

import numpy as np
import pandas as pd
import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadflow.pipeline.schema import BOOLEAN_COLUMNS, CANONICAL_COLUMNS, NUMERIC_COLUMNS

__all__ = [
    "CONDITION_COLUMNS",
    "OPERATORS",
    "SCORE_OUTPUT_COLUMNS",
    "Condition",
    "Range",
    "describe",
    "evaluate",
]

SCORE_OUTPUT_COLUMNS: Final[tuple[str, ...]] = ("fit_score", "engagement_score", "score", "grade", "rating")
"""Columns the scoring step adds that a (routing) condition may test."""
CONDITION_COLUMNS: Final[tuple[str, ...]] = tuple(dict.fromkeys(CANONICAL_COLUMNS + SCORE_OUTPUT_COLUMNS))
_NUMERIC: Final[frozenset[str]] = frozenset(NUMERIC_COLUMNS) | {"fit_score", "engagement_score", "score"}

LEAF_OPERATORS: Final[tuple[str, ...]] = ("equals", "in", "not_in", "range", "regex", "exists")
COMBINATORS: Final[tuple[str, ...]] = ("all", "any", "not")
OPERATORS: Final[tuple[str, ...]] = LEAF_OPERATORS + COMBINATORS

Scalar = bool | int | float | str


class Range(BaseModel):
    """Inclusive numeric bounds; either may be omitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int | float | None = None
    max: int | float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min is None and self.max is None:
            raise ValueError("range needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range min {self.min} is greater than max {self.max}")
        return self


def _kind(column: str) -> str:
    if column in BOOLEAN_COLUMNS:
        return "boolean"
    if column in _NUMERIC:
        return "number"
    return "text"


def _check_value(column: str, value: Any) -> Scalar:
    kind = _kind(column)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"column {column!r} is boolean: give true or false, not {value!r}")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"column {column!r} is numeric: give a number, not {value!r}")
        return value
    if isinstance(value, bool):
        raise ValueError(
            f"column {column!r} is text but YAML read {value!r} as a boolean: quote the value "
            f'(e.g. "NO" for Norway, "yes")'
        )
    if not isinstance(value, str):
        raise ValueError(f"column {column!r} is text: quote the value {value!r}")
    if column == "country_code":
        code = value.strip().upper()
        if pycountry.countries.get(alpha_2=code) is None:
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
        return code
    return value


class Condition(BaseModel):
    """One condition: a leaf (`column` + one operator) or a combinator (`all`, `any`, `not`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    column: str | None = None
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    range: Range | None = None
    regex: str | None = None
    exists: bool | None = None
    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if isinstance(data, Condition):
            return data
        if not isinstance(data, dict):
            raise ValueError(
                "a condition is a mapping such as {column: seniority, equals: vp} or {all: [...]}"
            )
        present = [op for op in OPERATORS if op in data or f"{op}_" in data]
        used = [op for op in present if data.get(op, data.get(f"{op}_")) is not None]
        unknown = [k for k in data if k != "column" and k.rstrip("_") not in OPERATORS]
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), ("column", *OPERATORS), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else f" (operators: {', '.join(OPERATORS)})"
            raise ValueError(f"unknown condition key {unknown[0]!r}{hint}")
        if not used and present:
            raise ValueError(f"{present[0]!r} needs a value")
        if len(used) != 1:
            what = "no operator" if not used else f"several operators ({', '.join(used)})"
            raise ValueError(f"a condition needs exactly one operator, found {what}")
        op = used[0]
        has_column = data.get("column") is not None
        if op in COMBINATORS and has_column:
            raise ValueError(f"{op!r} combines conditions and takes no column")
        if op in LEAF_OPERATORS and not has_column:
            raise ValueError(f"{op!r} needs a column")
        return data

    @field_validator("column")
    @classmethod
    def _canonical(cls, column: str | None) -> str | None:
        if column is not None and column not in CONDITION_COLUMNS:
            close = difflib.get_close_matches(column, CONDITION_COLUMNS, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{column!r} is not a canonical column{hint}")
        return column

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return pattern

    @field_validator("in_", "not_in")
    @classmethod
    def _non_empty(cls, values: list[Scalar] | None) -> list[Scalar] | None:
        if values is not None and not values:
            raise ValueError("give at least one value")
        return values

    @model_validator(mode="after")
    def _typed(self) -> Condition:
        column = self.column
        if column is None:
            return self
        # Values are normalized in place (frozen model: via object.__setattr__), e.g. country codes upper-cased.
        if self.equals is not None:
            object.__setattr__(self, "equals", _check_value(column, self.equals))
        for name in ("in_", "not_in"):
            values = getattr(self, name)
            if values is not None:
                object.__setattr__(self, name, [_check_value(column, v) for v in values])
        if self.range is not None and _kind(column) != "number":
            numeric = ", ".join(sorted(_NUMERIC))
            raise ValueError(f"range needs a numeric column ({numeric}), not {column!r}")
        if self.regex is not None and _kind(column) != "text":
            raise ValueError(f"regex needs a text column, not the {_kind(column)} column {column!r}")
        return self

    def __repr_args__(self) -> Any:
        return [(k, v) for k, v in super().__repr_args__() if v is not None]

    @property
    def operator(self) -> str:
        """The operator this condition uses (`equals`, `in`, …, `all`, `any`, `not`)."""
        for op in OPERATORS:
            if getattr(self, op if op in ("equals", "not_in", "range", "regex", "exists") else f"{op}_") is not None:
                return op
        raise AssertionError("unreachable: validated conditions have one operator")  # pragma: no cover


# ---------------------------------------------------------------------------------------------------- evaluation


def _column(frame: pd.DataFrame, column: str) -> pd.Series | None:
    return frame[column] if column in frame.columns else None


def _known(series: pd.Series) -> np.ndarray:
    known = series.notna().to_numpy(dtype=bool)
    if _kind(str(series.name)) == "text" or series.dtype == object:
        text = series.astype("string")
        known = known & (text.str.strip() != "").to_numpy(dtype=bool, na_value=False)
    return known


def _numbers(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _isin(series: pd.Series, values: list[Scalar]) -> np.ndarray:
    if _kind(str(series.name)) == "number":
        return np.isin(_numbers(series), np.asarray(values, dtype=float))
    if _kind(str(series.name)) == "boolean":
        flags = series.astype("boolean")
        return flags.isin(values).to_numpy(dtype=bool, na_value=False) & flags.notna().to_numpy(dtype=bool)
    text = series.astype("string")
    return text.isin([str(v) for v in values]).to_numpy(dtype=bool, na_value=False) & text.notna().to_numpy(bool)


def _regex(series: pd.Series, pattern: str) -> np.ndarray:
    codes, uniques = pd.factorize(series.astype("string"), use_na_sentinel=True)
    compiled = re.compile(pattern)
    # One extra False at the end: the -1 code of missing values picks it.
    lookup = np.fromiter((compiled.search(str(u)) is not None for u in uniques), dtype=bool, count=len(uniques))
    return np.append(lookup, False)[codes]


def evaluate(condition: Condition, frame: pd.DataFrame) -> np.ndarray:
    """A boolean numpy array, one value per row of `frame` (in order): does the row satisfy `condition`?"""
    n = len(frame)
    op = condition.operator
    if op == "all":
        out = np.ones(n, dtype=bool)
        for child in condition.all_ or []:
            out &= evaluate(child, frame)
        return out
    if op == "any":
        out = np.zeros(n, dtype=bool)
        for child in condition.any_ or []:
            out |= evaluate(child, frame)
        return out
    if op == "not":
        assert condition.not_ is not None
        return ~evaluate(condition.not_, frame)
    assert condition.column is not None
    series = _column(frame, condition.column)
    if series is None:  # absent column: all unknown
        return np.full(n, op == "exists" and condition.exists is False, dtype=bool)
    series = series.rename(condition.column)
    if op == "exists":
        known = _known(series)
        return known if condition.exists else ~known
    if op == "equals":
        return _isin(series, [condition.equals])  # type: ignore[list-item]
    if op == "in":
        return _isin(series, list(condition.in_ or []))
    if op == "not_in":
        return _known(series) & ~_isin(series, list(condition.not_in or []))
    if op == "range":
        assert condition.range is not None
        values = _numbers(series)
        out = ~np.isnan(values)
        if condition.range.min is not None:
            out &= values >= condition.range.min
        if condition.range.max is not None:
            out &= values <= condition.range.max
        return out
    assert condition.regex is not None
    return _regex(series, condition.regex)


# --------------------------------------------------------------------------------------------------- description


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:,.0f}".replace(",", "")
    return str(value)


def describe(condition: Condition) -> str:
    """Short human text: "seniority is vp", "employees 100–999", "country_code in US, CA"."""
    op = condition.operator
    if op in ("all", "any"):
        children = condition.all_ if op == "all" else condition.any_
        parts = [describe(c) for c in children or []]
        if not parts:
            return "always" if op == "all" else "never"
        joiner = " and " if op == "all" else " or "
        return joiner.join(f"({p})" if (" and " in p or " or " in p) else p for p in parts)
    if op == "not":
        assert condition.not_ is not None
        inner = describe(condition.not_)
        return f"not ({inner})" if " " in inner else f"not {inner}"
    column = condition.column
    if op == "equals":
        return f"{column} is {_show(condition.equals)}"
    if op == "in":
        return f"{column} in {', '.join(_show(v) for v in condition.in_ or [])}"
    if op == "not_in":
        return f"{column} not in {', '.join(_show(v) for v in condition.not_in or [])}"
    if op == "range":
        assert condition.range is not None
        low, high = condition.range.min, condition.range.max
        if low is not None and high is not None:
            return f"{column} {_show(low)}–{_show(high)}"
        return f"{column} ≥ {_show(low)}" if low is not None else f"{column} ≤ {_show(high)}"
    if op == "regex":
        return f"{column} matches {condition.regex}"
    return f"{column} {'present' if condition.exists else 'missing'}"
