"""Value conversion for the state store: frames and cells to SQL-ready values, JSON-safe payloads, the upsert."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

CACHE_CHUNK_KEYS: Final[int] = 500
"""Keys per `IN (...)` query / upsert: well under SQLite's bound-parameter limit."""
STATE_CHUNK_ROWS: Final[int] = 5_000


def _upsert(
    conn: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    keys: list[sa.Column[Any]],
    on_conflict: Callable[[Any], dict[str, Any]],
) -> None:
    """INSERT … ON CONFLICT DO UPDATE on PostgreSQL and SQLite; `on_conflict(excluded)` gives the SET clause."""
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(table)
    conn.execute(
        statement.on_conflict_do_update(index_elements=keys, set_=on_conflict(statement.excluded)), rows
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}; expected {list(columns)}")


def _texts(values: pd.Series) -> list[str | None]:
    """Values as Python str, missing (None/NaN/NA) as None; goes through Arrow, which is fast for millions."""
    texts: list[str | None] = pa.array(values.astype("string"), type=pa.large_string()).to_pylist()
    return texts


def _utc_times(values: pd.Series, what: str) -> pd.Series:
    """`values` as `datetime64[us, UTC]`; naive or missing times are refused rather than guessed."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        raise ValueError(f"{what} must be timezone-aware; got naive {values.dtype}")
    else:
        try:
            parsed = pd.to_datetime(values, format="ISO8601")
        except (ValueError, TypeError):
            # mixed UTC offsets cannot share one dtype until normalised
            parsed = pd.to_datetime(values, format="ISO8601", utc=True)
        if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
            raise ValueError(f"{what} must be timezone-aware; got values without a UTC offset")
    if parsed.isna().any():
        raise ValueError(f"{what} has {int(parsed.isna().sum())} missing value(s)")
    return parsed.dt.tz_convert("UTC").dt.floor("us").astype("datetime64[us, UTC]")


def _time_texts(values: pd.Series, *, naive: bool) -> list[str]:
    text = pa.array(values.dt.tz_localize(None).to_numpy("datetime64[us]")).cast(pa.string())
    if not naive:
        # appended as text: Arrow's own tz-aware formatting is ~8x slower
        text = pc.binary_join_element_wise(text, "+00", "")
    result: list[str] = text.to_pylist()
    return result


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return str(value)


def _row_json(row: Any, position: int) -> dict[str, str | None]:
    if isinstance(row, pd.Series):
        row = row.to_dict()
    if not isinstance(row, Mapping):
        raise ValueError(f"quarantine rows: `row` at position {position} is a {type(row).__name__}, not a dict")
    return {str(key): _cell_text(value) for key, value in row.items()}


def _jsonable(value: Any) -> Any:
    """`value` with numpy/pandas scalars, datetimes, paths and NaN made JSON-safe (PostgreSQL's json refuses NaN)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series, pd.Index)):
        return [_jsonable(item) for item in (value.tolist() if hasattr(value, "tolist") else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return value.as_posix()
    return value


def _json_dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False, default=str)


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


def _copy_rows(conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    # COPY on the DBAPI connection SQLAlchemy already holds, so it shares the open transaction.
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column) for column in columns)
    sql = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    dbapi_connection = conn.connection.driver_connection
    assert dbapi_connection is not None
    with dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
