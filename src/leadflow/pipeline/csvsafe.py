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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


def is_text_column(series: object) -> bool:
    """Whether `defuse` looks at this column's cells: an object or string column (a repeated name is a frame)."""
    return isinstance(series, pd.Series) and (is_object_dtype(series.dtype) or is_string_dtype(series.dtype))


def string_bytes(cells: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A (large_)string array's UTF-8 bytes, and each cell's start in them and length (0 for a null)."""
    offsets_type = np.int64 if pa.types.is_large_string(cells.type) else np.int32
    buffers = cells.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type)[cells.offset:cells.offset + len(cells) + 1]
    offsets = offsets.astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, dtype=np.uint8)
    data = data[int(offsets[0]):int(offsets[-1])]
    lengths = np.diff(offsets)
    if cells.null_count:
        lengths[~cells.is_valid().to_numpy(zero_copy_only=False)] = 0
    return data, offsets[:-1] - offsets[0], lengths


_TRIGGER_BYTES: Final = np.zeros(256, dtype=bool)
_TRIGGER_BYTES[[ord(t) for t in FORMULA_TRIGGERS]] = True
_CONTROL_OR_CR: Final = r"[\x00-\x08\x0b-\x1f\x7f]"
_NUMBER_OR_E164_ASCII: Final = "^(?:{}|{})$".format(
    *(pattern.pattern.replace(r"\d", "[0-9]") for pattern in (_PLAIN_NUMBER, _E164)))
"""`_PLAIN_NUMBER` or `_E164` in Arrow's RE2, ASCII digits only: on an ASCII cell it agrees with Python's `re` (whose
`\\d` also takes other scripts' digits, so a non-ASCII cell is left to `defuse_cell`)."""


def _has_control(data: np.ndarray) -> bool:
    """Whether UTF-8 bytes hold a control character or CR (tab and newline aside): those are ASCII bytes, never part
    of a multi-byte character."""
    low = data < 0x20
    if low.any() and (low & (data != 0x09) & (data != 0x0A)).any():
        return True
    return bool((data == 0x7F).any())


def _as_bool(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def defuse_arrow(cells: pa.Array) -> pa.Array:
    """A (large_)string array with every cell defused exactly as `defuse_cell` does (nulls stay null), vectorised:
    a cell is looked at only when its first byte is a trigger or the column holds a control byte; an ASCII cell
    starting with a trigger that is no plain number or E.164 number gets its `'` in one Arrow call; only cells with
    control characters or CR, and non-ASCII ones starting with a trigger, go through `defuse_cell` (once per distinct
    value)."""
    data, starts, lengths = string_bytes(cells)
    present = lengths > 0
    first = np.zeros(len(cells), dtype=np.uint8)
    first[present] = data[starts[present]]
    trigger = _TRIGGER_BYTES[first] & present
    control = _has_control(data)
    if not control and not trigger.any():
        return cells
    one_by_one = _as_bool(pc.match_substring_regex(cells, _CONTROL_OR_CR)) if control else np.zeros(len(cells), bool)
    quote = np.zeros(len(cells), dtype=bool)
    candidates = np.flatnonzero(trigger & ~one_by_one)
    if len(candidates):
        starting = cells.take(pa.array(candidates))
        formula = ~_as_bool(pc.match_substring_regex(starting, _NUMBER_OR_E164_ASCII))
        ascii_only = _as_bool(pc.string_is_ascii(starting))
        quote[candidates[formula & ascii_only]] = True
        one_by_one[candidates[formula & ~ascii_only]] = True
    out = cells
    if quote.any():
        mask = pa.array(quote)
        prefix = pa.scalar("'", type=cells.type)
        out = pc.replace_with_mask(out, mask, pc.binary_join_element_wise(prefix, cells.filter(mask),
                                                                           pa.scalar("", type=cells.type)))
    if one_by_one.any():
        mask = pa.array(one_by_one)
        values = cells.filter(mask).to_pylist()
        changes = {value: defuse_cell(value) for value in dict.fromkeys(values)}
        out = pc.replace_with_mask(out, mask, pa.array([changes[v] for v in values], type=cells.type))
    return out


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


def defused_names(columns: Any) -> dict[str, str]:
    """The column names `defuse` changes, old name to new."""
    return {c: new for c in columns if isinstance(c, str) and (new := defuse_cell(c)) != c}


def defuse(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell (and column name) defused; numeric, boolean and date columns, and
    non-text values in object columns, are left as they are. Works on each column's unique values, so it costs
    little on large files with repeated values. The input frame is not modified."""
    columns = defused_names(frame.columns)
    out = frame.copy(deep=False)
    for column in frame.columns:
        series = frame[column]
        if is_text_column(series):
            defused = _defuse_column(series)
            if defused is not series:
                out[column] = defused
    return out.rename(columns=columns) if columns else out
