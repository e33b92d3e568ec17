"""A lead CSV read in chunks by Arrow's streaming reader, giving exactly the frames `pandas.read_csv` gives.

`pandas.read_csv(..., dtype="string", chunksize=n)` tokenizes in C but builds every chunk's text columns through
Python objects; Arrow's reader parses straight into Arrow strings, which pandas takes as they are: a 1M-lead file
(243 MB, 19 columns) is read and checked (`iter_leads`) in ~4.3 s of CPU instead of ~7.2 s, its peak RSS 385-410 MB
instead of 355-373 MB.

Arrow is the fast path only. Whenever it refuses the file (a row with another number of fields than the header, which
pandas fills or reads as an index; text that is not UTF-8; a field larger than a block; anything else), the file is
read by pandas from its start and the rows Arrow already gave are skipped, so pandas decides, as before, whether the
file is read and with which error (naming the line). Where Arrow reads a file, it reads it as pandas does: empty and
`""` fields are missing, other text is kept verbatim (no `NA`/`null` words, no trimming), quoted fields may hold
delimiters, doubled quotes and line breaks, blank lines are skipped, a UTF-8 BOM is dropped
(tests/test_csv_in.py compares both on edge cases and fuzzed files). The header is pandas' own (so duplicate names
are mangled as pandas mangles them); a header line with a quote in it, or of one column, is left to pandas
altogether.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

BLOCK_BYTES = 1 << 20
"""Bytes Arrow parses at a time (its default); a row longer than this sends the file to pandas. Larger blocks cost
memory, not less CPU: reading the 1M-lead file peaks at 385 MB with 1 MB blocks (pandas: 355 MB), 445 MB with 2 MB,
671 MB with 16 MB (and Arrow's threads, which read ahead)."""

_STRING = pd.StringDtype("pyarrow")


def _header_line(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.readline()


def arrow_chunks(path: Path, columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
    """The CSV's data rows as frames of `rows` rows (the last one shorter), every column pandas' nullable string,
    indexed by position in the file (as `pandas.read_csv(chunksize=rows)` indexes them), under pandas' `columns`.
    Raises `pa.ArrowException` (or `ValueError`/`OSError`) when Arrow cannot read a row the way pandas would."""
    names = [f"c{i}" for i in range(len(columns))]  # pandas' names may repeat in Arrow's eyes; positions do not
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES, use_threads=False),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.large_string()), null_values=[""], strings_can_be_null=True,
            quoted_strings_can_be_null=True),
    )
    schema = reader.schema
    pending: list[pa.RecordBatch] = []
    held = start = 0
    try:
        for batch in reader:
            pending.append(batch)
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, rows), columns, start)
                start += rows
                rest = table.slice(rows)
                pending, held = rest.to_batches(), rest.num_rows
    finally:
        reader.close()
    if held or not start:  # a file of a header alone is one empty chunk, as pandas gives it
        yield _frame(pa.Table.from_batches(pending, schema=schema), columns, start)


def _frame(table: pa.Table, columns: list[str], start: int) -> pd.DataFrame:
    frame = table.combine_chunks().to_pandas(types_mapper={pa.large_string(): _STRING}.get)
    frame.columns = columns
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def csv_chunks(path: Path, rows: int, read_csv: Callable[..., Iterator[pd.DataFrame]], columns: list[str]
               ) -> Iterator[pd.DataFrame]:
    """`read_csv(path, chunksize=rows)`'s chunks (pandas, with the caller's options), read by Arrow where it can: on
    the first row Arrow refuses, pandas reads the file from its start and the chunks already given are skipped.
    `columns`: the header as `read_csv(path, nrows=0)` reads it (the caller has read it to check the file)."""
    given = 0
    # one column: pandas skips a line of blanks (a tab) there, where Arrow reads a value; with more, Arrow refuses it
    if len(columns) > 1 and b'"' not in _header_line(path):
        try:
            for frame in arrow_chunks(path, columns, rows):
                yield frame
                given += len(frame)
            return
        except (pa.ArrowException, ValueError, OSError):
            pass  # pandas decides: it reads the row, or says what is wrong with it and where
    chunks = read_csv(path, chunksize=rows)
    try:
        skipped = 0
        for chunk in chunks:
            if skipped < given:  # Arrow gave whole chunks only, so these line up with pandas' own
                skipped += len(chunk)
                continue
            yield chunk
    finally:
        chunks.close()
