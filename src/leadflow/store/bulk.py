"""Bulk writes for per-lead state: rows built as whole Arrow columns, never a Python dict per row.

`bulk_upsert` inserts or replaces an Arrow table's rows: on SQLite one `INSERT … ON CONFLICT DO UPDATE` per batch run
as DBAPI executemany with plain tuples, on PostgreSQL COPY (CSV written by Arrow) into a temporary table, then one
`INSERT … SELECT … ON CONFLICT DO UPDATE`. Values every row shares (a run id, a time) and, on SQLite, columns empty in
a whole batch go into the statement once rather than into every row. Values must already be what the driver would
have been given: text for times (`stamp_texts`, `stamp_text`), JSON as text (`json_objects`), None for NULL. SQLAlchemy's per-row bind
processing (a dict and a `datetime` per row and column) made a million-lead run's assignments take ~50 s and its
lifecycle state ~18-70 s; this path takes a fifth to a third of that (benchmarks/bench_state_saving.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadflow.store.tables import UTCDateTime

BULK_CHUNK_ROWS: Final[int] = 100_000
"""Rows converted and sent per round trip: bounds the Python objects alive at once to one chunk."""
JSON_NULL: Final[str] = "null"
"""What SQLAlchemy's `JSON` type stores for Python None (`none_as_null=False`, the default the tables use)."""

_TEXT = pa.large_string()
_CONTROL_ESCAPES: Final[dict[str, str]] = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def texts(values: pd.Series) -> pa.Array:
    """`values` as Arrow text (missing as null), converted as `astype("string")` converts: str(value) per value."""
    text = pa.array(values.astype("string"), type=_TEXT)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def stamp_texts(values: pd.Series, dialect: str) -> pa.Array:
    """Timezone-aware times (NaT: null) as the text the store's `UTCDateTime` binds: naive UTC with microseconds on
    SQLite (SQLAlchemy's storage format, so text order stays time order), with `+00` on PostgreSQL. Sub-microsecond
    digits are dropped as `Timestamp.to_pydatetime` drops them."""
    utc = values.dt.tz_convert("UTC").dt.floor("us").dt.tz_localize(None).astype("datetime64[us]")
    text = pa.Array.from_pandas(utc).cast(_TEXT)
    if dialect == "postgresql":
        # appended as text: Arrow's own tz-aware formatting is ~8x slower
        text = pc.binary_join_element_wise(text, pa.scalar("+00", _TEXT), pa.scalar("", _TEXT))
    return text


def stamp_text(moment: datetime, dialect: sa.engine.Dialect) -> str:
    """One aware time as the text `UTCDateTime` binds on `dialect` (for a value every row shares)."""
    stamp = UTCDateTime().process_bind_param(moment, dialect)
    assert stamp is not None
    return stamp.isoformat(sep=" ") if dialect.name == "postgresql" else stamp.isoformat(sep=" ", timespec="microseconds")


def repeat(value: Any, rows: int, kind: pa.DataType = _TEXT) -> pa.Array:
    """`value` (None: null) on every one of `rows` rows."""
    return pa.nulls(rows, kind) if value is None else pa.repeat(pa.scalar(value, kind), rows)


def json_objects(frame: pd.DataFrame) -> pa.Array:
    """Per row, a JSON object of its non-missing values as text (`astype("string")`), keys in column order: the same
    text `json.dumps({k: v, ...}, ensure_ascii=False)` gives (the store's serializer), built a column at a time."""
    rows = len(frame)
    values = [_json_escaped(texts(frame[name])) for name in frame.columns]
    # a row's first present value opens the object; every later one is joined with ", "
    first = np.full(rows, -1, dtype=np.int64)
    for position in reversed(range(len(values))):
        first[values[position].is_valid().to_numpy(zero_copy_only=False)] = position
    members = []
    for position, (name, text) in enumerate(zip(frame.columns, values, strict=True)):
        key = json.dumps(str(name), ensure_ascii=False) + ': "'
        opens = first == position
        prefix: pa.Scalar | pa.Array = pa.scalar(("{" if opens.all() else ", ") + key, _TEXT)
        if opens.any() and not opens.all():
            prefix = pc.if_else(pa.array(opens), pa.scalar("{" + key, _TEXT), prefix)
        members.append(pc.binary_join_element_wise(prefix, text, _QUOTE, _EMPTY))  # null when the value is
    # Nulls are replaced, not skipped: Arrow's `skip` drops a row whose inputs are all null (pyarrow 26).
    objects = pc.binary_join_element_wise(*members, pa.scalar("}", _TEXT), _EMPTY, null_handling="replace",
                                          null_replacement="")
    empty = first < 0  # no value at all: only the "}" was joined
    if empty.any():
        objects = pc.if_else(pa.array(empty), pa.scalar("{}", _TEXT), objects)
    return objects


_QUOTE = pa.scalar('"', _TEXT)
_EMPTY = pa.scalar("", _TEXT)


def _json_escaped(values: pa.Array) -> pa.Array:
    """Each value escaped for a JSON string, as Python's json module escapes with ensure_ascii=False; a column
    without backslashes, quotes or control characters (most) is returned as it is."""
    if not _has_special_bytes(values):
        return values
    values = pc.replace_substring(values, "\\", "\\\\")
    values = pc.replace_substring(values, '"', '\\"')
    if pc.any(pc.match_substring_regex(values, r"[\x00-\x1f]")).as_py():
        for code in range(0x20):
            char = chr(code)
            values = pc.replace_substring(values, char, _CONTROL_ESCAPES.get(char, f"\\u{code:04x}"))
    return values


def _has_special_bytes(values: pa.Array) -> bool:
    """Whether any byte of the array's text is a control character, `"` or a backslash (UTF-8 never uses these
    bytes inside a multi-byte character); a scan of the raw bytes, ~20x faster than a regex over the strings."""
    offsets_buffer, data = values.buffers()[1:3]
    if data is None or not len(values):
        return False
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[values.offset : values.offset + len(values) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]  # this slice's bytes only
    return bool(_SPECIAL_BYTES[raw].any())


_SPECIAL_BYTES = np.zeros(256, dtype=bool)
_SPECIAL_BYTES[:0x20] = _SPECIAL_BYTES[ord('"')] = _SPECIAL_BYTES[ord("\\")] = True


def bulk_upsert(conn: Connection, target: sa.Table, chunks: Iterable[pa.Table], keys: Sequence[str],
                update: Sequence[str], constants: Mapping[str, str | None] | None = None) -> int:
    """Insert `chunks` (Arrow tables with the same columns of `target`, driver-ready values) into `target`, replacing
    the `update` columns of rows whose `keys` exist already; returns the rows sent. A key may appear once only (in
    all chunks together): PostgreSQL refuses to update one row twice in one statement. `constants`: more columns,
    each with one driver-ready text (or None) every row shares, sent once per statement instead of once per row."""
    constants = dict(constants or {})
    if conn.dialect.name != "postgresql":
        return _executemany_upsert(conn, target, chunks, keys, update, constants)
    sent = 0
    staging: sa.TableClause | None = None
    for chunk in chunks:
        if not chunk.num_rows:
            continue
        if staging is None:
            staging = _staging_table(conn, target, chunk.column_names)
        copy_csv(conn, staging, chunk)
        sent += chunk.num_rows
    if staging is None:
        return 0
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in [*staging.c.keys(), *constants])
    # each constant a parameter cast to its column's type (the statement's only parameters: `%s` is psycopg's)
    values = ", ".join([*(preparer.quote(c) for c in staging.c.keys()),
                        *(f"CAST(%s AS {target.c[c].type.compile(dialect=conn.dialect)})" for c in constants)])
    sets = ", ".join(f"{preparer.quote(c)} = EXCLUDED.{preparer.quote(c)}" for c in update)
    conflict = ", ".join(preparer.quote(c) for c in keys)
    conn.exec_driver_sql(f"INSERT INTO {preparer.format_table(target)} ({names}) SELECT {values} FROM "
                         f"{preparer.format_table(staging)} ON CONFLICT ({conflict}) DO UPDATE SET {sets}",
                         tuple(constants.values()))
    # dropped now rather than at commit, so the transaction's next upsert does not carry it (after an error the
    # rollback removes it)
    conn.exec_driver_sql(f"DROP TABLE {preparer.format_table(staging)}")
    return sent


def _staging_table(conn: Connection, target: sa.Table, columns: Sequence[str]) -> sa.TableClause:
    """A temporary table with `columns` of `target` (same types, no constraints); gone at the transaction's end at
    the latest."""
    preparer = conn.dialect.identifier_preparer
    name = f"lf_stage_{target.name}_{uuid.uuid4().hex[:8]}"
    names = ", ".join(preparer.quote(c) for c in columns)
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {preparer.quote(name)} ON COMMIT DROP AS SELECT {names} FROM "
                         f"{preparer.format_table(target)} WITH NO DATA")
    return sa.table(name, *(sa.column(c) for c in columns))


def stage_keys(conn: Connection, what: str, keys: Sequence[str]) -> sa.TableClause:
    """A temporary table `(lead_key)` holding `keys` (COPY on PostgreSQL, executemany elsewhere), to join instead of
    thousands of `IN (...)` lists; gone at the transaction's or connection's end at the latest (drop it sooner)."""
    name = f"lf_keys_{what}_{uuid.uuid4().hex[:8]}"
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} (lead_key TEXT NOT NULL)"
                         + (" ON COMMIT DROP" if postgres else ""))
    staged = sa.table(name, sa.column("lead_key", sa.Text()))
    if postgres:
        copy_csv(conn, staged, pa.table({"lead_key": pa.array(keys, type=_TEXT)}))
    else:
        conn.exec_driver_sql(f"INSERT INTO {name} (lead_key) VALUES (?)", list(zip(keys)))
    return staged


def _executemany_upsert(conn: Connection, target: sa.Table, chunks: Iterable[pa.Table], keys: Sequence[str],
                        update: Sequence[str], constants: Mapping[str, str | None]) -> int:
    sent = 0
    for chunk in chunks:
        for batch in chunk.to_batches(BULK_CHUNK_ROWS):
            if not batch.num_rows:
                continue
            # a column null in every row of the batch is a constant too: fewer values bound per row (the binding,
            # a Python object per value, is most of what executemany costs beside SQLite's own B-tree work)
            empty = {name: None for name, column in zip(batch.schema.names, batch.columns, strict=True)
                     if column.null_count == batch.num_rows and name not in keys}
            sent_columns = [name for name in batch.schema.names if name not in empty]
            sql = _sqlite_upsert_sql(conn, target, sent_columns, {**empty, **constants}, keys, update)
            rows = zip(*(batch.column(name).to_pylist() for name in sent_columns), strict=True)
            conn.exec_driver_sql(sql, list(rows))
            sent += batch.num_rows
    return sent


def executemany_insert(conn: Connection, target: sa.Table, table: pa.Table,
                       constants: Mapping[str, str | None] | None = None) -> int:
    """Insert an Arrow table's rows (driver-ready values) into `target` on SQLite as DBAPI executemany with plain
    tuples, `BULK_CHUNK_ROWS` at a time; `constants`: more columns, each with one text (or None) every row shares,
    written into the statement once instead of bound per row (a run id and a time on every `lead_runs` row: ~1 s of
    CPU less per million rows, measured). Returns the rows sent."""
    constants = dict(constants or {})
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in [*table.column_names, *constants])
    values = ", ".join(["?"] * table.num_columns + [_sqlite_literal(value) for value in constants.values()])
    sql = f"INSERT INTO {preparer.format_table(target)} ({names}) VALUES ({values})"
    for batch in table.to_batches(BULK_CHUNK_ROWS):
        if batch.num_rows:
            conn.exec_driver_sql(sql, list(zip(*(column.to_pylist() for column in batch.columns), strict=True)))
    return table.num_rows


def _sqlite_upsert_sql(conn: Connection, target: sa.Table, columns: Sequence[str], constants: Mapping[str, str | None],
                       keys: Sequence[str], update: Sequence[str]) -> str:
    """`INSERT … VALUES (?, …, 'constant', …) ON CONFLICT (keys) DO UPDATE SET …` for SQLite's executemany."""
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in [*columns, *constants])
    values = ", ".join(["?"] * len(columns) + [_sqlite_literal(value) for value in constants.values()])
    sets = ", ".join(f"{preparer.quote(c)} = excluded.{preparer.quote(c)}" for c in update)
    conflict = ", ".join(preparer.quote(c) for c in keys)
    return (f"INSERT INTO {preparer.format_table(target)} ({names}) VALUES ({values}) "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {sets}")


def _sqlite_literal(value: str | None) -> str:
    """A text (or NULL) as an SQLite literal: quotes doubled, the only escape SQL text has."""
    if value is None:
        return "NULL"
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(f"a bulk constant must be text without NUL, not {value!r}")
    return "'" + value.replace("'", "''") + "'"


def copy_csv(conn: Connection, target: sa.TableClause, table: pa.Table) -> None:
    """COPY an Arrow table in CSV, written by Arrow: a null is an unquoted empty field, which COPY reads as NULL, and
    an empty string is quoted; ~5x faster than a Python `write_row` per row."""
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column) for column in table.column_names)
    sql = f"COPY {preparer.format_table(target)} ({names}) FROM STDIN WITH (FORMAT csv)"
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    dbapi_connection = conn.connection.driver_connection
    assert dbapi_connection is not None
    with dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
        for batch in table.to_batches(BULK_CHUNK_ROWS):
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(pa.Table.from_batches([batch]), sink, options)
            copy.write(sink.getvalue().to_pybytes())
