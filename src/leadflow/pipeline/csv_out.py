"""CSV output at a fraction of pandas' CPU, byte for byte what `defuse(frame).to_csv(index=False)` writes.

`DataFrame.to_csv` spends most of its time turning every cell into a Python object and handing rows to the standard
library's csv writer one by one. Here each column becomes the text pandas would write for it, as a pyarrow string
array: numbers and booleans are formatted once per distinct value, with the very expressions pandas uses
(`values.astype(str)` for floats, `str()` of the value for integers and booleans) and put back in place with an
Arrow `take`; text columns are defused (`csvsafe.defuse_arrow`, OWASP CSV injection) and stay in Arrow. Cells are then
quoted as Python's csv writer quotes them with `QUOTE_MINIMAL` (a cell holding the delimiter, the quote character or
a line-terminator character is wrapped in quotes, its quotes doubled; a row that is one empty cell is written `""`).
The lines are written by Arrow's CSV writer, unquoted, with each cell that needs quotes first written as placeholder
bytes of its quoted length, then overwritten in place (`_written_by_arrow`); where Arrow will not write a cell
unquoted, and for a single column, the cells are joined into lines in Arrow instead (`_joined`).

Any other dtype (dates, times, periods, intervals, categoricals, object columns mixing types, Arrow-typed columns)
goes through pandas' own per-column CSV formatting (`get_values_for_csv`), on the same row chunks `to_csv` uses: a
datetime column's format depends on the values in its chunk (dates only, or down to the second, milli-, micro- or
nanosecond). The header is written by pandas itself. Only frames with no columns, or with repeated or multi-level
column names, take the old path, `defuse(frame).to_csv(...)`, as a whole (none of them is lead output).
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from pandas.api.types import infer_dtype

from leadflow.pipeline.csvsafe import (
    _defuse_column,
    cell_bytes,
    cells_holding,
    defuse,
    defuse_arrow,
    defused_names,
    filled_cells,
    is_text_column,
    replace_cells,
    valid_cells,
)

try:  # pandas' formatting of one column's values for the csv writer (what `to_csv` calls; pinned pandas 3.1)
    from pandas.core.indexes.base import get_values_for_csv as _pandas_values_for_csv
    from pandas.io.formats.csvs import _DEFAULT_CHUNKSIZE_CELLS
except ImportError:  # pragma: no cover - another pandas: such columns take the old path
    _pandas_values_for_csv = None
    _DEFAULT_CHUNKSIZE_CELLS = 100_000

SEPARATOR: Final = ","
QUOTE: Final = '"'
LINE_END: Final = os.linesep
"""What `to_csv` writes with its defaults: `sep=","`, `quotechar='"'`, `lineterminator=os.linesep`."""


def _quote_triggers() -> str:
    """The characters that make Python's csv writer quote a cell, as this Python does it (3.11 quotes a cell holding
    a line-terminator character; later versions also quote any CR or LF)."""
    candidates = [SEPARATOR, QUOTE, "\r", "\n", *LINE_END]
    found = []
    for char in dict.fromkeys(candidates):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator=LINE_END).writerow([f"a{char}b", "c"])
        if buffer.getvalue().startswith(QUOTE):
            found.append(char)
    return "".join(found)


QUOTE_TRIGGERS: Final[str] = _quote_triggers()
_STRING: Final = pa.large_string()


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, type=_STRING)


_QUOTE: Final = _text(QUOTE)
_EMPTY: Final = _text("")


def _arrow_strings(values: Any, mask: np.ndarray | None = None) -> pa.Array:
    """One contiguous large-string Arrow array."""
    array = pa.array(values, type=_STRING, mask=mask, from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _placed(texts: list[str], codes: np.ndarray) -> pa.Array:
    """`texts[code]` for each code; null where the code is -1 (a missing value)."""
    missing = codes < 0
    indices = pa.array(codes, type=pa.int64(), mask=missing if missing.any() else None)
    return pa.array(texts, type=_STRING).take(indices)


def _float_cells(series: pd.Series) -> pa.Array:
    """`values.astype(str)`, pandas' formatting of a float column for csv (`0.0`, `1e+20`, `-0.0`), once per
    distinct bit pattern (so that 0.0 and -0.0 stay apart)."""
    dtype = series.dtype
    numpy_dtype = np.dtype(getattr(dtype, "numpy_dtype", dtype))
    mask = series.isna().to_numpy(dtype=bool)
    data = series.to_numpy(dtype=numpy_dtype, na_value=np.nan)
    codes = np.full(len(data), -1, dtype=np.int64)
    present, uniques = pd.factorize(data[~mask].view(f"u{numpy_dtype.itemsize}"))
    codes[~mask] = present
    values = uniques.view(numpy_dtype)
    if isinstance(dtype, np.dtype):
        texts = values.astype(str).tolist()
    else:
        texts = list(np.asarray(pd.array(values, dtype=dtype).astype(str), dtype=object))
    return _placed(texts, codes)


def _exact_cells(series: pd.Series) -> pa.Array:
    """Integers and booleans: the csv writer's `str()` of the Python value pandas hands it (`np.array(values,
    dtype=object)`, or `astype(object)` for a nullable array), once per distinct value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    objects = np.asarray(uniques.astype(object), dtype=object)
    return _placed([str(value) for value in objects], np.asarray(codes, dtype=np.int64))


def _string_cells(series: pd.Series) -> pa.Array | None:
    """A text column (string dtype, or object holding only strings) defused; None when it holds anything else."""
    if isinstance(series.dtype, pd.StringDtype):
        return defuse_arrow(_arrow_strings(series.array))
    values = series.to_numpy()
    if infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    try:
        cells = _arrow_strings(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a missing-value marker Arrow does not read as null (NaT)
        return None
    if cells.null_count != int(series.isna().sum()):
        return None
    return defuse_arrow(cells)


def _csv_str(value: Any) -> str:
    """What Python's csv writer writes for one field (the value pandas gives it): text as is, None empty, else str."""
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


def _pandas_cells(series: pd.Series, chunk_rows: int) -> pa.Array:
    """Any other column: defused as `defuse` does, then formatted by pandas itself on `to_csv`'s row chunks."""
    if is_text_column(series):
        series = _defuse_column(series)
    extension = not isinstance(series.dtype, np.dtype) or series.dtype.kind in "mM"
    values = series.array if extension else series.to_numpy()
    texts: list[str] = []
    for start in range(0, len(values), chunk_rows):
        formatted = _pandas_values_for_csv(values[start:start + chunk_rows], date_format=None, na_rep="",
                                           quoting=csv.QUOTE_MINIMAL, float_format=None, decimal=".")
        texts.extend(map(_csv_str, np.asarray(formatted, dtype=object).ravel()))
    return _arrow_strings(texts)


_FLOATS: Final = (pd.Float32Dtype, pd.Float64Dtype)
_EXACT: Final = (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype, pd.UInt8Dtype, pd.UInt16Dtype,
                 pd.UInt32Dtype, pd.UInt64Dtype, pd.BooleanDtype)


def column_cells(series: pd.Series, chunk_rows: int) -> pa.Array:
    """One column as the unquoted text `defuse(frame).to_csv()` writes for each of its cells (null: empty)."""
    dtype = series.dtype
    numpy = isinstance(dtype, np.dtype)
    if isinstance(dtype, pd.StringDtype) or numpy and dtype.kind == "O":
        cells = _string_cells(series)
        if cells is not None:
            return cells
    elif numpy and dtype.kind == "f" or isinstance(dtype, _FLOATS):
        return _float_cells(series)
    elif numpy and dtype.kind in "iub" or isinstance(dtype, _EXACT):
        return _exact_cells(series)
    return _pandas_cells(series, chunk_rows)


def quoted(cells: pa.Array) -> pa.Array:
    """Cells as Python's csv writer writes them with QUOTE_MINIMAL (nulls stay null, written empty): a cell holding a
    quote trigger wrapped in quotes, its quotes doubled."""
    where, values = _quoting(cells)
    return replace_cells(cells, where, values) if len(where) else cells


_NONE: Final = np.zeros(0, dtype=np.int64)


def _quoting(cells: pa.Array) -> tuple[np.ndarray, pa.Array | None]:
    """The cells (ascending) the csv writer quotes, and what it writes for them: the cell in quotes, its quotes
    doubled. They are found from the bytes of the column (a trigger is an ASCII byte, never part of a multi-byte
    character); only they go through Arrow."""
    data, offsets = cell_bytes(cells)
    text = data.tobytes()  # searched at C speed (memchr), without numpy's temporaries
    found = [ord(char) for char in QUOTE_TRIGGERS if char.encode() in text]
    if not found:
        return _NONE, None
    positions = np.concatenate([np.flatnonzero(data == char) for char in found])
    where = cells_holding(positions, offsets, filled_cells(cells, offsets))
    if not len(where):
        return _NONE, None
    inner = pc.replace_substring(cells.take(pa.array(where)), QUOTE, QUOTE * 2)
    return where, pc.binary_join_element_wise(_QUOTE, inner, _QUOTE, _EMPTY)


def _filled(cells: pa.Array) -> pa.Array:
    """Nulls as empty cells, as `to_csv` writes them (`na_rep=""`). A null usually takes no bytes (Arrow's kernels
    and pandas leave its slot empty): then the same offsets and bytes without the validity bitmap, no copy."""
    if not cells.null_count:
        return cells
    buffers = cells.buffers()
    offsets = cell_bytes(cells)[1]
    if offsets[-1] and np.diff(offsets)[~valid_cells(cells)].any():  # a null holding bytes
        return pc.fill_null(cells, _EMPTY)
    data = buffers[2] if buffers[2] is not None else pa.py_buffer(b"")
    return pa.Array.from_buffers(cells.type, len(cells), [None, buffers[1], data], null_count=0, offset=cells.offset)


def fast_path_applies(frame: pd.DataFrame) -> bool:
    """Whether `body_bytes` can write this frame: at least one column, flat and unique column names (`defuse` leaves
    a repeated name's columns as they are), and pandas' formatting at hand for the dtypes not formatted here."""
    columns = frame.columns
    return (len(columns) > 0 and not isinstance(columns, pd.MultiIndex) and columns.is_unique
            and _pandas_values_for_csv is not None)


def body_bytes(frame: pd.DataFrame) -> bytes | memoryview:
    """The data lines (UTF-8) `defuse(frame).to_csv(index=False, header=False)` writes; `frame` must pass
    `fast_path_applies`."""
    if not len(frame):
        return b""
    chunk_rows = (_DEFAULT_CHUNKSIZE_CELLS // len(frame.columns)) or 1  # the rows per chunk `to_csv` formats
    cells = [column_cells(frame.iloc[:, i], chunk_rows) for i in range(len(frame.columns))]
    if len(cells) > 1:
        written = _written_by_arrow(cells)
        if written is not None:
            return written
    return _joined([_filled(quoted(column)) for column in cells])


def _joined(cells: list[pa.Array]) -> memoryview:
    """The lines of these (quoted, filled) columns, joined in Arrow cell by cell."""
    if len(cells) == 1:  # the csv writer quotes a row that is one empty field
        cells = [pc.if_else(pc.equal(cells[0], _EMPTY), _text(QUOTE * 2), cells[0])]
    cells[-1] = pc.binary_join_element_wise(cells[-1], _text(LINE_END), _EMPTY)  # each line's end, with its last cell
    lines = pc.binary_join_element_wise(*cells, _text(SEPARATOR)) if len(cells) > 1 else cells[-1]
    return _concatenated(lines)


_PLACEHOLDER: Final = 0x01
_ARROW_CSV: Final = pa_csv.WriteOptions(include_header=False, delimiter=SEPARATOR, eol=LINE_END, null_string="",
                                        quoting_style="none")


def _written_by_arrow(cells: list[pa.Array]) -> memoryview | None:
    """The lines of these (unquoted) columns as Arrow's CSV writer writes them unquoted (about twice as fast as
    joining them cell by cell), each cell the csv writer quotes first written as as many 0x01 bytes as it takes
    quoted, then overwritten in place: where each cell starts is known from the cells' lengths. None when a cell
    Arrow will not write unquoted is left unquoted (a CR, where the csv writer does not quote it)."""
    separator, line_end = len(SEPARATOR.encode()), len(LINE_END.encode())
    columns: list[pa.Array] = []
    before: np.ndarray | None = None  # each row's bytes in the columns so far, as offsets (rows + 1)
    patches: list[tuple[np.ndarray, Any, pa.Array]] = []  # the quoted cells' rows, start in their lines, text
    for index, column in enumerate(cells):
        where, values = _quoting(column)
        if len(where):
            column = replace_cells(column, where, _placeholders(values))
            within = index * separator + (before[where + 1] - before[where] if before is not None else 0)
            patches.append((where, within, values))
        column = _filled(column)  # each cell written as its bytes, a null as nothing
        offsets = cell_bytes(column)[1]
        if before is None:
            before = offsets.copy()
        else:
            before += offsets
        columns.append(column)
    sink = io.BytesIO()
    try:
        pa_csv.write_csv(pa.Table.from_arrays(columns, names=[str(i) for i in range(len(columns))]), sink, _ARROW_CSV)
    except pa.ArrowInvalid:
        return None
    body = sink.getbuffer()
    if not patches:
        return body
    step = (len(columns) - 1) * separator + line_end
    starts = np.concatenate([before[where] + where * step + within for where, within, _ in patches])
    texts = [cell_bytes(values) for _, _, values in patches]
    lengths = np.concatenate([np.diff(offsets) for _, offsets in texts])
    spots = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
    written = np.frombuffer(body, dtype=np.uint8)
    if not (written[spots] == _PLACEHOLDER).all():  # never: the placeholders are where the lengths say
        return None
    written[spots] = np.concatenate([data for data, _ in texts])
    return body


def _placeholders(values: pa.Array) -> pa.Array:
    """As many 0x01 bytes as each (non-null) cell of `values` holds."""
    data, offsets = cell_bytes(values)
    offsets_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    filler = np.full(len(data), _PLACEHOLDER, dtype=np.uint8)
    return pa.Array.from_buffers(values.type, len(values), [None, pa.py_buffer(offsets.astype(offsets_type)),
                                                            pa.py_buffer(filler)])


def _concatenated(lines: pa.Array) -> memoryview:
    """All of a string array's values one after the other: its data buffer between the first and last offsets."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset:lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[int(offsets[0]):int(offsets[-1])]


def write_csv(frame: pd.DataFrame, handle: Any, *, header: bool) -> None:
    """Write `frame` to the text `handle` exactly as `defuse(frame).to_csv(handle, index=False, header=header,
    quoting=csv.QUOTE_MINIMAL)` does."""
    if not fast_path_applies(frame):
        defuse(frame).to_csv(handle, index=False, header=header, quoting=csv.QUOTE_MINIMAL)
        return
    body = body_bytes(frame)  # first: a chunk that cannot be written leaves nothing behind
    if header:  # by pandas, with the names `defuse` gives the columns
        frame.iloc[:0].rename(columns=defused_names(frame.columns)).to_csv(handle, index=False,
                                                                         quoting=csv.QUOTE_MINIMAL)
    if not len(body):
        return
    raw = getattr(handle, "buffer", None)
    if raw is not None and getattr(handle, "encoding", "").lower().replace("-", "") == "utf8":
        handle.flush()
        raw.write(body)
    else:
        handle.write(bytes(body).decode("utf-8"))
