"""Per-lead state between runs: lifecycle state, the enrichment cache and backfill chunks: `LeadStateMixin` of
`StateStore`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadflow.store.engine import StoreBase
from leadflow.store.tables import CACHE_STATUSES, backfill_chunks, enrichment_cache, lead_state
from leadflow.store.bulk import BULK_CHUNK_ROWS, bulk_upsert, stage_keys, stamp_text, stamp_texts, texts
from leadflow.store.values import CACHE_CHUNK_KEYS, _jsonable, _now, _require_columns, _upsert

if TYPE_CHECKING:
    from leadflow.connectors.enrichment import ProviderResult

STATE_SCAN_KEYS: Final[int] = 50_000
LIFECYCLE_STAMPS: Final[tuple[str, ...]] = ("mql_at", "sal_at", "sql_at", "recycled_at")
_MAX_DOMAIN: Final[int] = 255


class LeadStateMixin(StoreBase):
    """Lifecycle state (`lead_state`), cached firmographics (`enrichment_cache`) and backfill progress
    (`backfill_chunks`)."""

    # -- lead state ----------------------------------------------------------------------------------------------------

    def lifecycle_state(self, keys: list[str]) -> pd.DataFrame:
        """The last lifecycle state of these leads, indexed by lead_key (stamps as ISO-8601 UTC text).

        One query on the driver's own cursor (the keys as one JSON array parameter up to `STATE_SCAN_KEYS`, else
        joined as a staged key table), the stamps formatted by the database: no SQLAlchemy row, `datetime` or
        per-value parse per lead, and not one query per 500 keys."""
        wanted = list(dict.fromkeys(k for k in keys if k))
        if not wanted:
            return _lifecycle_frame([])
        with self._engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            select = _lifecycle_select(conn)
            if len(wanted) > STATE_SCAN_KEYS:
                # a batch this large costs less as one join with its keys staged (and, unlike a scan of the table,
                # costs what the batch has, however many leads the store holds)
                staged = conn.dialect.identifier_preparer.format_table(stage_keys(conn, "lifecycle", wanted))
                rows = _fetch(conn, f"{select} JOIN {staged} k ON k.lead_key = s.lead_key", ())
                conn.exec_driver_sql(f"DROP TABLE {staged}")
            elif postgres:
                # one JSON text, not a text[] adapted key by key (~5x the client's time); the array it becomes is an
                # index condition (a staged key table, never analyzed, is planned as a scan of the whole table)
                keyed = "s.lead_key = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
                rows = _fetch(conn, f"{select} WHERE {keyed}", (json.dumps(wanted, ensure_ascii=False),))
            else:
                # sent sorted and joined: SQLite walks the keys in index order, probing the lead_key index front to
                # back, with no list of its own to build and sort first (~20 % less CPU for 50k keys, of which a
                # new file's are nearly all absent)
                rows = _fetch(conn, _lifecycle_select(conn, "json_each(?) k CROSS JOIN", "ON s.lead_key = k.value"),
                              (json.dumps(sorted(wanted), ensure_ascii=False),))
        return _lifecycle_frame(rows)

    def save_lifecycle_state(self, state: pd.DataFrame, run_id: str) -> int:
        """Insert or replace leads' lifecycle state (`lead_key` plus the lifecycle columns; the last row of a lead_key
        wins); returns the row count. Built a column at a time and written in bulk (`leadflow.store.bulk`)."""
        _require_columns(state, ("lead_key", "lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS), "state")
        earlier = state["lead_key"].duplicated(keep="last").to_numpy()
        latest = state[~earlier] if earlier.any() else state  # a copy only when there is something to drop
        # parsed as whole columns (one format inferred per column, as before), converted to text chunk by chunk
        stamps = pd.DataFrame({c: _parsed_stamps(latest[c]) for c in LIFECYCLE_STAMPS})
        if self._engine.dialect.name == "sqlite":
            # then sent in key order (not before: the format is inferred from a column's first value), so SQLite
            # walks the lead_key index once front to back instead of jumping across it: ~40 % less executemany CPU
            # for 20 chunks of 50k leads into a growing store (PostgreSQL, upserting from a staged table: no gain
            # measured)
            order = pc.sort_indices(texts(latest["lead_key"])).to_numpy()
            latest, stamps = latest.iloc[order], stamps.iloc[order]
        now = _now()
        with self._writing() as conn:
            dialect = conn.dialect

            def chunks() -> Iterator[pa.Table]:
                for start in range(0, len(latest), BULK_CHUNK_ROWS):
                    part = latest.iloc[start : start + BULK_CHUNK_ROWS]
                    yield pa.table({
                        "lead_key": texts(part["lead_key"]),
                        "lifecycle_stage": texts(part["lifecycle_stage"]),
                        "lifecycle_reason": texts(part["lifecycle_reason"]),
                        **{c: stamp_texts(stamps[c].iloc[start : start + BULK_CHUNK_ROWS], dialect.name)
                           for c in LIFECYCLE_STAMPS},
                    })

            # what every row shares is sent once, not once per row
            return bulk_upsert(conn, lead_state, chunks(), ["lead_key"],
                               ("lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS, "run_id", "updated_at"),
                               {"run_id": run_id, "updated_at": stamp_text(now, dialect)})

    # -- enrichment cache --------------------------------------------------------------------------------------------

    def cached_firmographics(
        self, provider: str, domains: list[str], fresh_after: datetime
    ) -> dict[str, ProviderResult]:
        """Cached `ok` / `not_found` answers of `provider` for `domains`, fetched at or after `fresh_after`."""
        from leadflow.connectors.enrichment import (
            ProviderResult,  # lazy: the store must not import requests
        )

        wanted = list(dict.fromkeys(d for d in domains if d and len(d) <= _MAX_DOMAIN))
        found: dict[str, ProviderResult] = {}
        table = enrichment_cache
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                query = sa.select(table.c.domain, table.c.status, table.c.payload).where(
                    table.c.provider == provider,
                    table.c.domain.in_(wanted[start : start + CACHE_CHUNK_KEYS]),
                    table.c.fetched_at >= fresh_after,
                )
                for domain, status, payload in conn.execute(query):
                    data = payload or {}
                    revenue = data.get("annual_revenue")
                    found[domain] = ProviderResult(
                        domain,
                        status,
                        employees=data.get("employees"),
                        annual_revenue=float(revenue) if revenue is not None else None,
                        industry=data.get("industry"),
                    )
        return found

    def cache_firmographics(self, provider: str, results: list[ProviderResult], fetched_at: datetime) -> None:
        """Insert or replace `ok` / `not_found` answers; an `error` result is refused (errors are retried, not kept)."""
        if fetched_at.tzinfo is None or fetched_at.utcoffset() is None:
            raise ValueError(f"fetched_at must be timezone-aware, got {fetched_at!r}")
        errors = [r.domain for r in results if r.status not in CACHE_STATUSES]
        if errors:
            raise ValueError(f"only ok/not_found answers are cached; got errors for {errors[:5]}")
        # last answer per domain: PostgreSQL refuses to update one row twice in one statement
        latest = {r.domain: r for r in results if r.domain and len(r.domain) <= _MAX_DOMAIN}
        rows = [
            {
                "provider": provider,
                "domain": r.domain,
                "status": r.status,
                "payload": (
                    {"employees": r.employees, "annual_revenue": r.annual_revenue, "industry": r.industry}
                    if r.status == "ok"
                    else {}
                ),
                "fetched_at": fetched_at,
            }
            for r in latest.values()
        ]
        if not rows:
            return

        def on_conflict(excluded: Any) -> dict[str, Any]:
            return {"status": excluded.status, "payload": excluded.payload, "fetched_at": excluded.fetched_at}

        keys = [enrichment_cache.c.provider, enrichment_cache.c.domain]
        with self._writing() as conn:
            for start in range(0, len(rows), CACHE_CHUNK_KEYS):
                _upsert(conn, enrichment_cache, rows[start : start + CACHE_CHUNK_KEYS], keys, on_conflict)

    # -- backfill chunks -----------------------------------------------------------------------------------------------

    def backfill_chunks(self, backfill_key: str) -> list[dict[str, Any]]:
        """The recorded chunks of one backfill, oldest chunk first (chunk_start, chunk_end, status, run_id, ...)."""
        query = sa.select(backfill_chunks).where(backfill_chunks.c.backfill_key == backfill_key).order_by(
            backfill_chunks.c.chunk_start)
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def record_backfill_chunk(
        self, backfill_key: str, chunk_start: datetime, chunk_end: datetime, status: str, run_id: str | None = None,
        counts: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or replace the state of one backfill chunk (`running`, `completed` or `failed`)."""
        if status not in ("running", "completed", "failed"):
            raise ValueError(f"backfill chunk status must be running, completed or failed, not {status!r}")
        finished = None if status == "running" else _now()
        values = {"backfill_key": backfill_key, "chunk_start": chunk_start, "chunk_end": chunk_end, "status": status,
                  "run_id": run_id, "finished_at": finished, "counts": _jsonable(dict(counts or {}))}
        changed = {k: v for k, v in values.items() if k not in ("backfill_key", "chunk_start")}
        with self._writing() as conn:
            _upsert(conn, backfill_chunks, [values], [backfill_chunks.c.backfill_key, backfill_chunks.c.chunk_start],
                    lambda excluded: changed)


_LIFECYCLE_READ: Final[tuple[str, ...]] = ("lead_key", "lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS)


def _lifecycle_select(conn: Connection, before: str = "", after: str = "") -> str:
    """SELECT of `_LIFECYCLE_READ` from `lead_state` aliased `s` (`before` and `after` it in the FROM clause, for a
    join that must drive the look-up), each stamp as `YYYY-MM-DDTHH:MM:SSZ` text (seconds
    truncated, as `strftime` of the parsed time gives): cut from the stored naive-UTC text on SQLite (whose own
    date functions round to milliseconds), `to_char` of the UTC time on PostgreSQL."""
    if conn.dialect.name == "postgresql":
        stamps = [f"""to_char(s.{c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')""" for c in LIFECYCLE_STAMPS]
    else:  # stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]' (`UTCDateTime`); NULL stays NULL
        stamps = [f"substr(s.{c}, 1, 10) || 'T' || substr(s.{c}, 12, 8) || 'Z'" for c in LIFECYCLE_STAMPS]
    table = conn.dialect.identifier_preparer.format_table(lead_state)
    source = " ".join(part for part in (before, f"{table} s", after) if part)
    return f"SELECT s.lead_key, s.lifecycle_stage, s.lifecycle_reason, {', '.join(stamps)} FROM {source}"


def _fetch(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Every row of `sql` as the driver's own tuples, inside `conn`'s transaction."""
    dbapi_connection = conn.connection.driver_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _lifecycle_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """`rows` of `_LIFECYCLE_READ` as the frame `lifecycle_state` returns: text columns, indexed by lead_key."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(_LIFECYCLE_READ)
    # through Arrow: pandas builds a text array from Arrow ~7x faster than from a list of str
    frame = pd.DataFrame({name: pd.array(pa.array(values, type=pa.large_string()), dtype="string")
                          for name, values in zip(_LIFECYCLE_READ, columns, strict=True)})
    return frame.set_index("lead_key")


def _parsed_stamps(values: pd.Series) -> pd.Series:
    """`pd.to_datetime(values, utc=True, errors="coerce")`, parsing each distinct value once (a column holds a few
    distinct stamps, most rows none) and mapping back: the same format is inferred (from the first value present,
    which is the first distinct one), the same values come out."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        return pd.to_datetime(values, utc=True, errors="coerce")
    codes, uniques = pd.factorize(values)  # missing: -1
    parsed = pd.to_datetime(pd.Series(uniques), utc=True, errors="coerce")
    return pd.Series(parsed.array.take(codes, allow_fill=True), index=values.index)
