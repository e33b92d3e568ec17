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


def cell_bytes(cells: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A (large_)string array's UTF-8 bytes (no copy) and where each cell starts and ends in them: `len + 1` offsets
    from 0. A null's slot usually holds no bytes, but may."""
    offsets_type = np.int64 if pa.types.is_large_string(cells.type) else np.int32
    buffers = cells.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offsets_type)[cells.offset:cells.offset + len(cells) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    if first or offsets_type is not np.int64:
        offsets = offsets.astype(np.int64) - first
    data = np.frombuffer(buffers[2], dtype=np.uint8)[first:last] if last > first else np.zeros(0, dtype=np.uint8)
    return data, offsets


def valid_cells(cells: pa.Array) -> np.ndarray:
    """Which cells are not null, from the validity bitmap (the array must hold a null)."""
    bits = np.frombuffer(cells.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[cells.offset:cells.offset + len(cells)].view(bool)


def filled_cells(cells: pa.Array, offsets: np.ndarray) -> np.ndarray:
    """Which cells hold at least one byte of their own (not null, not empty); `offsets` from `cell_bytes`."""
    filled = offsets[1:] > offsets[:-1]
    if cells.null_count:
        filled &= valid_cells(cells)
    return filled


def first_bytes(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each cell's first byte; meaningless for a cell `filled_cells` does not count (`data` must not be empty)."""
    return data.take(offsets[:-1], mode="clip")


def cells_holding(data_positions: np.ndarray, offsets: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """The cells (ascending, each once) the bytes at these positions of `cell_bytes`' data belong to."""
    holding = np.unique(np.searchsorted(offsets[:-1], data_positions, side="right") - 1)
    return holding[filled[holding]]  # not a null slot's bytes


_SPLICE_MAX: Final = 300
"""Up to this many cells are replaced by splicing slices (cheap when few); more, with one Arrow mask kernel."""


def replace_cells(cells: pa.Array, where: np.ndarray, values: pa.Array) -> pa.Array:
    """`cells` with the cells at `where` (ascending) replaced by `values`, in order."""
    if len(where) > _SPLICE_MAX:
        mask = np.zeros(len(cells), dtype=bool)
        mask[where] = True
        return pc.replace_with_mask(cells, pa.array(mask), values)
    pieces = []
    done = 0
    for position, index in enumerate(where.tolist()):
        if index > done:
            pieces.append(cells.slice(done, index - done))
        pieces.append(values.slice(position, 1))
        done = index + 1
    if done < len(cells):
        pieces.append(cells.slice(done))
    return pa.concat_arrays(pieces)


_TRIGGER_BYTES: Final = np.zeros(256, dtype=bool)
_TRIGGER_BYTES[[ord(t) for t in FORMULA_TRIGGERS]] = True
_CONTROL_OR_CR: Final = r"[\x00-\x08\x0b-\x1f\x7f]"
_NUMBER_OR_E164_ASCII: Final = "^(?:{}|{})$".format(
    *(pattern.pattern.replace(r"\d", "[0-9]") for pattern in (_PLAIN_NUMBER, _E164)))
"""`_PLAIN_NUMBER` or `_E164` in Arrow's RE2, ASCII digits only: on an ASCII cell it agrees with Python's `re` (whose
`\\d` also takes other scripts' digits, so a non-ASCII cell is left to `defuse_cell`)."""


def _has_control(data: np.ndarray) -> bool:
    """Whether UTF-8 bytes hold a control character or CR (tab and newline aside): those are ASCII bytes, never part
    of a multi-byte character. The smallest and largest byte settle it for most columns."""
    if not len(data):
        return False
    if data.min() < 0x20:
        low = data < 0x20
        if (low & (data != 0x09) & (data != 0x0A)).any():
            return True
    return bool(data.max() >= 0x7F and (data == 0x7F).any())


def _as_bool(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


_SIGN_BYTES: Final = np.zeros(256, dtype=bool)
_SIGN_BYTES[[ord("+"), ord("-")]] = True
"""The triggers a plain number or an E.164 number may start with: a cell starting with any other trigger (`=`, `@`,
tab) is a formula whatever follows."""
_BY_VALUE_MIN_CELLS: Final = 4096
_BY_VALUE_SAMPLE: Final = 1024
_BY_VALUE_MAX_DISTINCT: Final = 256
"""A column with at least this many cells starting with a trigger is defused once per distinct value (its dictionary,
then a take) when a sample of those cells holds few distinct values: `score_reasons` (`+15 Director; ...`)."""


def defuse_arrow(cells: pa.Array, *, by_value: bool = True) -> pa.Array:
    """A (large_)string array with every cell defused exactly as `defuse_cell` does (nulls stay null), vectorised:
    a cell is looked at only when its first byte is a trigger or the column holds a control byte; a cell starting
    with `=`, `@` or tab is a formula; one starting with `+` or `-` is one unless it is an ASCII plain number or E.164
    number (one Arrow regex over those cells); formulas get their `'` in one Arrow call; only cells with control
    characters or CR, and non-ASCII ones starting with a sign that are no ASCII number, go through `defuse_cell`
    (once per distinct value). Many cells starting with a trigger but few distinct values: defused per value."""
    data, offsets = cell_bytes(cells)
    if not len(data):  # every cell empty or null
        return cells
    first = first_bytes(data, offsets)
    trigger = _TRIGGER_BYTES.take(first)
    if trigger.any():
        trigger &= filled_cells(cells, offsets)
    control = _has_control(data)
    if not control and not trigger.any():
        return cells
    if by_value and _few_values(cells, trigger):
        encoded = pc.dictionary_encode(cells)
        return defuse_arrow(encoded.dictionary, by_value=False).take(encoded.indices)
    one_by_one = _as_bool(pc.match_substring_regex(cells, _CONTROL_OR_CR)) if control else np.zeros(len(cells), bool)
    quote = trigger & ~one_by_one  # every candidate is a formula, but for the numbers found below
    signed = np.flatnonzero(quote & _SIGN_BYTES.take(first))
    if len(signed):
        starting = cells.take(pa.array(signed))
        formula = ~_as_bool(pc.match_substring_regex(starting, _NUMBER_OR_E164_ASCII))
        quote[signed[~formula]] = False
        if formula.any():
            ascii_only = _as_bool(pc.string_is_ascii(starting))
            other = signed[formula & ~ascii_only]  # Python's `\d` may find a number in them: one by one
            quote[other] = False
            one_by_one[other] = True
    out = cells
    if quote.any():
        where = np.flatnonzero(quote)
        prefixed = pc.binary_join_element_wise(pa.scalar("'", type=cells.type), cells.take(pa.array(where)),
                                               pa.scalar("", type=cells.type))
        out = replace_cells(out, where, prefixed)
    if one_by_one.any():
        where = np.flatnonzero(one_by_one)
        values = cells.take(pa.array(where)).to_pylist()
        changes = {value: defuse_cell(value) for value in dict.fromkeys(values)}
        out = replace_cells(out, where, pa.array([changes[v] for v in values], type=cells.type))
    return out


def _few_values(cells: pa.Array, trigger: np.ndarray) -> bool:
    """Whether many cells start with a trigger and a sample of them holds few distinct values."""
    if np.count_nonzero(trigger) < _BY_VALUE_MIN_CELLS:
        return False
    sample = np.flatnonzero(trigger)[:_BY_VALUE_SAMPLE]
    return pc.count_distinct(cells.take(pa.array(sample))).as_py() <= _BY_VALUE_MAX_DISTINCT


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
