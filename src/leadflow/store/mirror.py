"""`MirrorMixin`: the state store's side of the CRM mirror — its rows (upserts, tombstones, whole rebuilds), the
per-object build and watermark, and reads of the live rows or of the rows changed since a given `seq`.

The mirror's logic (what to read from the CRM, when to rebuild, how records become rows) is `leadflow.sync.mirror`;
this module only stores, in one transaction per call, so a crash leaves the previous state whole.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import sqlalchemy as sa

from leadflow.store.engine import StoreBase
from leadflow.store.tables import UTCDateTime
from leadflow.store.mirror_tables import (
    mirror_accounts,
    mirror_objects,
    mirror_owners,
    mirror_records,
    mirror_snapshots,
)
from leadflow.store.values import _copy_rows, _upsert

MIRROR_CHUNK_ROWS: Final[int] = 5_000
"""Rows per executemany batch when the mirror is written."""

TABLE_OF: Final[dict[str, sa.Table]] = {
    "Account": mirror_accounts, "Contact": mirror_records, "Lead": mirror_records,
    "User": mirror_owners, "QueueSobject": mirror_owners,
}
"""Which table holds each mirrored object (records and owners tables carry an `object` column)."""
_IPC_OPTIONS = ipc.IpcWriteOptions(compression=pa.Codec("zstd", 1))
_PANDAS_TYPES: Final = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.bool_(): pd.BooleanDtype(),
                        pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
"""Arrow → the pandas dtypes `mirror_rows` gives, so a snapshot and a read of the tables look alike."""
STATE_COLUMNS: Final = ("object", "generation", "method", "built_at", "refreshed_at", "watermark", "last_change_at",
                        "rows", "seq", "keys")


def _key(table: sa.Table) -> sa.Column[Any]:
    return next(iter(table.primary_key.columns))


def _of_object(table: sa.Table, obj: str) -> Any:
    return sa.true() if "object" not in table.c else table.c.object == obj


def _column_values(values: pd.Series, column: sa.Column[Any], sqlite: bool) -> list[Any]:
    """One column as plain Python values for the driver (None for missing)."""
    if isinstance(column.type, UTCDateTime):
        stamps = pd.to_datetime(values, utc=True)
        if sqlite:  # what UTCDateTime binds on SQLite: naive UTC text, so lexical order is time order
            texts = stamps.dt.tz_convert(None).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
            return texts.astype(object).where(stamps.notna(), None).tolist()
        return [None if pd.isna(v) else v.to_pydatetime() for v in stamps]
    if isinstance(column.type, sa.Boolean):
        return [None if pd.isna(v) else bool(v) for v in values.astype(object)]
    if isinstance(column.type, (sa.BigInteger, sa.Integer)):
        return [None if pd.isna(v) else int(v) for v in values.astype(object)]
    if isinstance(column.type, sa.Float):
        return [None if pd.isna(v) else float(v) for v in values.astype(object)]
    return values.astype(object).where(values.notna(), None).tolist()


def _insert_fast(conn: Any, table: sa.Table, rows: list[dict[str, Any]] | pd.DataFrame) -> None:
    """Insert a frame of `table`'s columns: COPY on PostgreSQL, DBAPI executemany with tuples on SQLite (a build
    writes hundreds of thousands of rows; SQLAlchemy's per-row binding would take minutes)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    sqlite = conn.dialect.name == "sqlite"
    names = [c.name for c in table.columns]
    columns = [_column_values(frame[n], table.c[n], sqlite) for n in names]
    tuples = list(zip(*columns, strict=True)) if columns else []
    if not tuples:
        return
    if sqlite:
        sql = str(table.insert().compile(dialect=conn.dialect, column_keys=names))
        for start in range(0, len(tuples), MIRROR_CHUNK_ROWS * 10):
            conn.exec_driver_sql(sql, tuples[start:start + MIRROR_CHUNK_ROWS * 10])
        return
    _copy_rows(conn, table, tuple(names), tuples)


def _frame(frame: pd.DataFrame, table: sa.Table, obj: str, seq: int) -> pd.DataFrame:
    """`frame` with exactly `table`'s columns (missing ones null), stamped with `seq` and the object."""
    names = [c.name for c in table.columns if c.name not in ("seq", "object")]
    out = pd.DataFrame({n: (frame[n] if n in frame.columns else pd.Series(None, index=frame.index, dtype=object))
                        for n in names})
    out["seq"] = seq
    if "object" in table.c:
        out["object"] = obj
    return out


def _payload(frame: pd.DataFrame, table: sa.Table, obj: str, seq: int) -> list[dict[str, Any]]:
    """`_frame`'s rows as dicts, missing values as None (for the Core upsert)."""
    rows = _frame(frame, table, obj, seq).astype(object)
    return rows.where(rows.notna(), None).to_dict("records")


class MirrorMixin(StoreBase):
    """The CRM mirror's rows and per-object state."""

    def mirror_state(self) -> dict[str, dict[str, Any]]:
        """Per mirrored object: generation, method, built_at, refreshed_at, watermark, last_change_at, rows, seq."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(*[mirror_objects.c[c] for c in STATE_COLUMNS])).mappings().all()
        return {row["object"]: dict(row) for row in rows}

    def replace_mirror(self, obj: str, frame: pd.DataFrame, *, method: str, watermark: datetime | None,
                       last_change_at: datetime | None, now: datetime, keys: str | None = None) -> str:
        """Make `frame` (live records only) the whole mirror of `obj`, as a new generation; returns its id."""
        table, generation = TABLE_OF[obj], str(uuid.uuid4())
        rows = _frame(frame.assign(is_deleted=False), table, obj, 1)
        with self._writing() as conn:
            conn.execute(table.delete().where(_of_object(table, obj)))
            _insert_fast(conn, table, rows)
            conn.execute(mirror_objects.delete().where(mirror_objects.c.object == obj))
            conn.execute(mirror_objects.insert().values(
                object=obj, generation=generation, method=method, built_at=now, refreshed_at=now,
                watermark=watermark, last_change_at=last_change_at, rows=len(rows), seq=1, keys=keys))
        return generation

    def apply_mirror_changes(self, obj: str, frame: pd.DataFrame, *, watermark: datetime | None,
                             last_change_at: datetime | None, now: datetime, keys: str | None = None) -> int:
        """Upsert `frame` (records changed in the CRM; `is_deleted` true for deletions, kept as tombstones) into the
        mirror of `obj`, move its watermark forward (never back) and its refresh time (and record `keys`, the key
        fingerprint, when given); returns the new `seq`."""
        table = TABLE_OF[obj]
        key = _key(table)
        with self._writing() as conn:
            state = conn.execute(sa.select(mirror_objects.c.seq, mirror_objects.c.rows, mirror_objects.c.watermark,
                                           mirror_objects.c.last_change_at)
                                 .where(mirror_objects.c.object == obj)).one()
            seq = int(state.seq) + (1 if len(frame) else 0)
            rows = _payload(frame, table, obj, seq)
            updated = [c.name for c in table.columns if c.name != key.name]
            for start in range(0, len(rows), MIRROR_CHUNK_ROWS):
                _upsert(conn, table, rows[start:start + MIRROR_CHUNK_ROWS], [key],
                        lambda excluded: {n: excluded[n] for n in updated})
            live = state.rows if not rows else conn.execute(sa.select(sa.func.count()).select_from(table).where(
                _of_object(table, obj), table.c.is_deleted.is_(False))).scalar_one()
            marks = [m for m in (state.watermark, watermark) if m is not None]
            changes = [m for m in (state.last_change_at, last_change_at) if m is not None]
            conn.execute(mirror_objects.update().where(mirror_objects.c.object == obj).values(
                seq=seq, rows=int(live), refreshed_at=now, watermark=max(marks) if marks else None,
                last_change_at=max(changes) if changes else None, **({"keys": keys} if keys else {})))
        return seq

    def mirror_rows(self, obj: str, *, after_seq: int | None = None) -> pd.DataFrame:
        """The mirror's rows of `obj` (every column but `modstamp`): the live ones, or with `after_seq` every row
        changed after that refresh (tombstones included, `is_deleted` true)."""
        table = TABLE_OF[obj]
        names = [c.name for c in table.columns if c.name != "modstamp"]
        query = sa.select(*[table.c[n] for n in names]).where(_of_object(table, obj))
        query = query.where(table.c.is_deleted.is_(False)) if after_seq is None else query.where(
            table.c.seq > after_seq)
        with self._engine.connect() as conn:
            # The driver's plain tuples: SQLAlchemy's per-row Row objects and result processing cost more than the
            # read itself on hundreds of thousands of rows.
            compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
            tuples = conn.exec_driver_sql(str(compiled)).fetchall()
        columns = list(zip(*tuples, strict=True)) if tuples else [()] * len(names)
        frame = pd.DataFrame({n: pd.Series(list(v), dtype=object) for n, v in zip(names, columns, strict=True)})
        for name in names:
            kind = table.c[name].type
            if isinstance(kind, sa.Boolean):
                frame[name] = frame[name].astype("boolean")
            elif isinstance(kind, (sa.BigInteger, sa.Integer)):
                frame[name] = frame[name].astype("Int64")
            elif isinstance(kind, sa.Float):
                frame[name] = frame[name].astype("Float64")
            else:
                frame[name] = frame[name].astype("string")
        return frame

    def mirror_owner_names(self) -> dict[str, str]:
        """Owner id → name as the CRM mirror holds them: Users' Name and the lead queues' name (deactivated users
        included: their past assignments still carry their id); empty without a mirror."""
        t = mirror_owners
        query = sa.select(t.c.owner_id, t.c.name).where(t.c.is_deleted.is_(False), t.c.owner_id.is_not(None),
                                                        t.c.name.is_not(None), t.c.name != "")
        with self._engine.connect() as conn:
            return {str(owner): str(name) for owner, name in conn.execute(query)}

    def mirror_snapshot(self, obj: str) -> tuple[str, int, pd.DataFrame] | None:
        """(generation, seq, live rows as of seq) of `obj`'s last snapshot, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(mirror_snapshots.c.generation, mirror_snapshots.c.seq,
                                         mirror_snapshots.c.payload)
                               .where(mirror_snapshots.c.object == obj)).one_or_none()
        if row is None:
            return None
        table = ipc.open_stream(pa.py_buffer(row.payload)).read_all()
        return row.generation, int(row.seq), table.to_pandas(types_mapper=_PANDAS_TYPES.get)

    def mirror_snapshot_seq(self, obj: str) -> tuple[str, int] | None:
        """(generation, seq) of `obj`'s last snapshot, or None (the payload is not read)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(mirror_snapshots.c.generation, mirror_snapshots.c.seq)
                               .where(mirror_snapshots.c.object == obj)).one_or_none()
        return None if row is None else (row.generation, int(row.seq))

    def save_mirror_snapshot(self, obj: str, generation: str, seq: int, rows: pd.DataFrame, now: datetime) -> int:
        """Keep `rows` (`obj`'s live rows as of `seq`) as its snapshot; returns the payload's size in bytes."""
        sink = pa.BufferOutputStream()
        table = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
        with ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
            writer.write_table(table)
        payload = sink.getvalue().to_pybytes()
        with self._writing() as conn:
            conn.execute(mirror_snapshots.delete().where(mirror_snapshots.c.object == obj))
            conn.execute(mirror_snapshots.insert().values(object=obj, generation=generation, seq=seq,
                                                          rows=len(rows), payload=payload, at=now))
        return len(payload)

    def mirror_changed_since(self, obj: str, seq: int) -> int:
        """How many of `obj`'s rows changed after refresh `seq` (tombstones included)."""
        table = TABLE_OF[obj]
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(
                _of_object(table, obj), table.c.seq > seq)).scalar_one())

    def drop_mirror(self, objects: list[str] | None = None) -> None:
        """Forget the mirror of `objects` (all when None): the next refresh builds it again from the CRM."""
        names = objects or list(TABLE_OF)
        with self._writing() as conn:
            for obj in names:
                table = TABLE_OF[obj]
                conn.execute(table.delete().where(_of_object(table, obj)))
                conn.execute(mirror_objects.delete().where(mirror_objects.c.object == obj))
                conn.execute(mirror_snapshots.delete().where(mirror_snapshots.c.object == obj))
