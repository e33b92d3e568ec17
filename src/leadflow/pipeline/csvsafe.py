"""Cells safe to open in a spreadsheet: every CSV leadflow writes goes through `defuse` first.

OWASP, "CSV Injection" (https://owasp.org/www-community/attacks/CSV_Injection): a cell beginning with `=`, `+`, `-`,
`@`, tab (0x09) or carriage return (0x0D) may be run as a formula by Excel, LibreOffice or Google Sheets
(`=HYPERLINK(...)` exfiltrates, `+cmd|' /C calc'!A0` runs a program through DDE). OWASP's advice, followed here: prefix
such cells with a single quote so the spreadsheet shows them as text. Two kinds of value are left as they are because
they are data, not formulas, and a quote would corrupt them: plain numbers (`-12`, `+3.5`, `1e3`) and E.164 phone
numbers (`+14155550100`, ITU-T E.164: `+`, then at most 15 digits, the first not 0).

Control characters other than tab and newline (NUL, 0x01-0x08, 0x0B, 0x0C, 0x0E-0x1F, 0x7F) are removed from text
cells first: they have no place in lead data, NUL truncates the cell in many readers, and removing them first means
`"\\x00=1"` is seen as the formula it would become. A carriage return (0x0D) is quoted like the others when it leads,
and then, wherever it is, becomes a newline (CRLF too): Python's csv writer (3.11) does not quote a field holding a
bare CR when lines end in LF, and a spreadsheet reads that CR as a row break - splitting the row and letting the text
after it start a cell of its own (`"x\\r=1"` would become a live `=1`). A field holding a newline is always quoted.

Parquet output is not touched: it is a typed columnar format, not something a spreadsheet evaluates.
"""

from __future__ import annotations

import re
from typing import Any, Final

import pandas as pd
from pandas.api.types import is_object_dtype, is_string_dtype

FORMULA_TRIGGERS: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PLAIN_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_E164: Final = re.compile(r"\+[1-9]\d{1,14}")


def defuse_cell(value: str) -> str:
    """One text cell made inert: control characters removed, then a formula-looking start quoted with `'`."""
    value = _CONTROL.sub("", value)
    if value.startswith(FORMULA_TRIGGERS) and not (_PLAIN_NUMBER.fullmatch(value) or _E164.fullmatch(value)):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def is_live_formula(value: Any) -> bool:
    """True when `defuse_cell` would change this cell: it starts a formula, or holds a control character or CR.
    What a test of any CSV writer should find nowhere in the cells it reads back."""
    return isinstance(value, str) and defuse_cell(value) != value


_SUSPECT: Final = r"^[=+\-@\t\r]|[\x00-\x08\x0b-\x1f\x7f]"
"""A cell `defuse_cell` may change: it starts with a trigger, or holds a control character or CR (a superset,
checked with one vectorised regex so only these cells are looked at one by one)."""


def _defuse_column(series: pd.Series) -> pd.Series:
    if is_string_dtype(series.dtype) and not is_object_dtype(series.dtype):
        suspect = series.str.contains(_SUSPECT, regex=True).fillna(False).to_numpy(dtype=bool)
        if not suspect.any():
            return series
        candidates = series[suspect]
    else:
        candidates = series
    uniques = pd.unique(candidates.dropna())
    changes = {v: new for v in uniques if isinstance(v, str) and (new := defuse_cell(v)) != v}
    if not changes:
        return series
    mask = series.isin(list(changes))
    out = series.copy()
    out[mask] = series[mask].map(changes)
    return out


def defuse(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell (and column name) defused; numeric, boolean and date columns, and
    non-text values in object columns, are left as they are. Works on each column's unique values, so it costs
    little on large files with repeated values. The input frame is not modified."""
    columns = {c: defuse_cell(c) for c in frame.columns if isinstance(c, str) and defuse_cell(c) != c}
    out = frame.copy(deep=False)
    for column in frame.columns:
        series = frame[column]
        if isinstance(series, pd.Series) and (is_object_dtype(series.dtype) or is_string_dtype(series.dtype)):
            defused = _defuse_column(series)
            if defused is not series:
                out[column] = defused
    return out.rename(columns=columns) if columns else out
