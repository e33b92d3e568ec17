"""Per-lead state between runs: lifecycle state, the enrichment cache and backfill chunks: `LeadStateMixin` of
`StateStore`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from leadflow.store.engine import StoreBase
from leadflow.store.tables import CACHE_STATUSES, backfill_chunks, enrichment_cache, lead_state
from leadflow.store.bulk import BULK_CHUNK_ROWS, bulk_upsert, repeat, stage_keys, stamp_text, stamp_texts, texts
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
        """The last lifecycle state of these leads, indexed by lead_key (stamps as ISO-8601 UTC text)."""
        columns = ["lead_key", "lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS]
        wanted = list(dict.fromkeys(k for k in keys if k))
        parts: list[pd.DataFrame] = []
        query = sa.select(*(lead_state.c[c] for c in columns))
        if len(wanted) > STATE_SCAN_KEYS:
            # A batch this large costs less as one join with its keys staged than as thousands of IN lists (and,
            # unlike a scan of the table, costs what the batch has, however many leads the store holds).
            with self._engine.begin() as conn:
                staged = stage_keys(conn, "lifecycle", wanted)
                joined = query.select_from(lead_state.join(staged, lead_state.c.lead_key == staged.c.lead_key))
                result = conn.execute(joined)
                parts.append(pd.DataFrame.from_records(result.all(), columns=columns))
                conn.exec_driver_sql(f"DROP TABLE {staged.name}")
        else:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                chunk = query.where(lead_state.c.lead_key.in_(wanted[start : start + CACHE_CHUNK_KEYS]))
                parts.append(self._rows(chunk, columns))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        for column in LIFECYCLE_STAMPS:
            stamps = pd.to_datetime(frame[column], utc=True)
            frame[column] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
        for column in ("lead_key", "lifecycle_stage", "lifecycle_reason"):
            frame[column] = frame[column].astype("string")
        return frame.set_index("lead_key")

    def save_lifecycle_state(self, state: pd.DataFrame, run_id: str) -> int:
        """Insert or replace leads' lifecycle state (`lead_key` plus the lifecycle columns; the last row of a lead_key
        wins); returns the row count. Built a column at a time and written in bulk (`leadflow.store.bulk`)."""
        _require_columns(state, ("lead_key", "lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS), "state")
        earlier = state["lead_key"].duplicated(keep="last").to_numpy()
        latest = state[~earlier] if earlier.any() else state  # a copy only when there is something to drop
        # parsed as whole columns (one format inferred per column, as before), converted to text chunk by chunk
        stamps = pd.DataFrame({c: pd.to_datetime(latest[c], utc=True, errors="coerce") for c in LIFECYCLE_STAMPS})
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
                        "run_id": repeat(run_id, len(part)),
                        "updated_at": repeat(stamp_text(now, dialect), len(part)),
                    })

            return bulk_upsert(conn, lead_state, chunks(), ["lead_key"],
                               ("lifecycle_stage", "lifecycle_reason", *LIFECYCLE_STAMPS, "run_id", "updated_at"))

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
