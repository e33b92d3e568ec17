"""The audit trail's compact form: each stage's values before and after, per chunk of leads, as compressed Arrow.

A row per changed (lead, column) cost more to write than the run itself took (26 rows a lead). Instead each stage
stores the columns it writes, as they were and as it left them, for every lead it returned: one zstd-compressed
Arrow IPC stream per chunk of up to `AUDIT_CHUNK_ROWS` leads. Nothing is diffed while the run writes;
`change_events` diffs at read time — one lead for `leadflow trace`, one run for its summary — into the same
(lead_key, column, old → new) events the rest of the audit trail uses.

Chunks are numbered by the lead's position in the first stage's frame (`ChunkPlan`), and later stages only drop
rows, so each stage's chunk `n` holds the same leads (less any quarantined) and is a contiguous slice: no sorting.
`lead_runs` records each lead's chunk, so a trace decodes only the chunks that hold it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from leadflow.pipeline.ledger import as_text
from leadflow.pipeline.settings import AUDIT_CHUNK_ROWS

KEY_COLUMN = "lead_key"
OLD_PREFIX = "old:"
NEW_PREFIX = "new:"
_WRITE_OPTIONS = ipc.IpcWriteOptions(compression=pa.Codec("zstd", 1))
_PANDAS_TYPES = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype(),
                 pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}


@dataclass(frozen=True)
class ChangeChunk:
    """One chunk of one stage's before/after values, ready to store."""

    chunk: int
    rows: int
    payload: bytes


@dataclass(frozen=True)
class ChunkPlan:
    """Which chunk each lead of a page belongs to, fixed at the page's first stage (by index label)."""

    chunks: pd.Series
    next_chunk: int
    """The first chunk number free for the run's next page."""

    @classmethod
    def for_frame(cls, index: pd.Index, first_chunk: int = 0, rows_per_chunk: int = AUDIT_CHUNK_ROWS) -> ChunkPlan:
        """Consecutive chunks of `rows_per_chunk` rows in frame order, numbered from `first_chunk`."""
        if not index.is_unique:
            raise ValueError("the audit trail needs a unique frame index to follow leads from stage to stage")
        size = max(1, rows_per_chunk)
        numbers = first_chunk + np.arange(len(index), dtype=np.int64) // size
        return cls(pd.Series(numbers, index=index), first_chunk + -(-len(index) // size))

    def numbers(self, index: pd.Index) -> np.ndarray:
        """The chunk of each row of a later stage's frame (a subset of the first, in the same order)."""
        found = self.chunks.reindex(index)
        if found.isna().any():
            raise ValueError("a stage returned rows the page's first stage did not have; the audit trail cannot place "
                             "them")
        numbers = found.to_numpy(dtype=np.int64)
        if len(numbers) > 1 and (np.diff(numbers) < 0).any():
            raise ValueError("a stage reordered the page's rows; the audit trail's chunks follow the first order")
        return numbers


def lead_run_rows(frame: pd.DataFrame, keys: pd.Series, plan: ChunkPlan) -> pd.DataFrame:
    """What `lead_runs` records for a page's leads: key, chunk, and the e-mail, creation time and lead source."""
    missing = pd.Series(pd.NA, index=frame.index, dtype="string")
    # Series, not `.to_numpy()`: an object array would be millions of Python strings, whose freed memory a long run
    # keeps (~0.3 GB at 1M leads)
    return pd.DataFrame({
        "lead_key": keys.astype("string"),
        "chunk": plan.numbers(frame.index),
        **{c: (frame[c] if c in frame else missing).astype("string") for c in ("email", "created_at", "lead_source")},
    }, index=frame.index).reset_index(drop=True)


def _arrow(values: pd.Series) -> pa.Array:
    try:
        return pa.Array.from_pandas(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.Array.from_pandas(as_text(values))  # mixed objects: stored as the text the diff compares anyway


def pack_changes(
    before: pd.DataFrame, after: pd.DataFrame, columns: Iterable[str], keys: pd.Series, plan: ChunkPlan
) -> list[ChangeChunk]:
    """A stage's `columns` as they were (`before`) and as it left them (`after`), for every row of `after`, keyed by
    `keys` and cut into the chunks of `plan`. `before` must share `after`'s index (Stage.apply guarantees it)."""
    if not len(after):
        return []
    if not before.index.equals(after.index):
        before = before.reindex(after.index)
    keys = keys.astype("string")
    sources = [(NEW_PREFIX + c, after[c]) for c in columns]
    sources += [(OLD_PREFIX + c, before[c]) for c in columns if c in before.columns]
    numbers = plan.numbers(after.index)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(numbers)) + 1))
    stops = np.append(starts[1:], len(numbers))
    out = []
    # converted chunk by chunk, so only one chunk's uncompressed Arrow copy exists at a time
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        table = pa.Table.from_arrays([_arrow(keys.iloc[start:stop]), *(_arrow(v.iloc[start:stop]) for _, v in sources)],
                                     names=[KEY_COLUMN, *(name for name, _ in sources)])
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema, options=_WRITE_OPTIONS) as writer:
            writer.write_table(table)
        out.append(ChangeChunk(int(numbers[start]), stop - start, sink.getvalue().to_pybytes()))
    return out


def unpack(payload: bytes) -> pa.Table:
    """A stored chunk back as an Arrow table."""
    return ipc.open_stream(pa.py_buffer(payload)).read_all()


def repack(payload: bytes, drop_keys: Collection[str]) -> tuple[bytes | None, int]:
    """The chunk without the rows of `drop_keys` (for erasure): (new payload or None when empty, rows dropped)."""
    table = unpack(payload)
    hit = pc.is_in(table.column(KEY_COLUMN), value_set=pa.array(list(drop_keys), type=pa.string()))
    dropped = int(pc.sum(hit).as_py() or 0)
    if not dropped:
        return payload, 0
    kept = table.filter(pc.invert(hit))
    if not len(kept):
        return None, dropped
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, kept.schema, options=_WRITE_OPTIONS) as writer:
        writer.write_table(kept)
    return sink.getvalue().to_pybytes(), dropped


def change_events(payload: bytes, keys: Collection[str] | None = None) -> pd.DataFrame:
    """The (lead_key, column_name, old_value, new_value) changes in a chunk, optionally only for `keys`; values as
    text, as the row-per-change audit trail held them, and only where old and new differ."""
    table = unpack(payload)
    if keys is not None:
        table = table.filter(pc.is_in(table.column(KEY_COLUMN), value_set=pa.array(list(keys), type=pa.string())))
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in ("lead_key", "column_name", "old_value", "new_value")})
    if not len(table):
        return empty
    frame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
    lead_key = frame[KEY_COLUMN]
    parts = []
    for name in table.column_names:
        if not name.startswith(NEW_PREFIX):
            continue
        column = name.removeprefix(NEW_PREFIX)
        new = as_text(frame[name].rename(column))
        old_name = OLD_PREFIX + column
        old = (as_text(frame[old_name].rename(column)) if old_name in frame
               else pd.Series(pd.NA, index=frame.index, dtype="string"))
        same = (new == old).fillna(False).astype(bool) | (new.isna() & old.isna())
        changed = ~same.to_numpy()
        if changed.any():
            parts.append(pd.DataFrame({"lead_key": lead_key[changed].to_numpy(), "column_name": column,
                                       "old_value": old[changed].to_numpy(), "new_value": new[changed].to_numpy()}))
    if not parts:
        return empty
    events = pd.concat(parts, ignore_index=True)
    return events.astype({"old_value": "object", "new_value": "object"}).replace({pd.NA: None})


