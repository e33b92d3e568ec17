"""Runs, watermarks and quarantined rows: `RunsMixin` of `StateStore`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from leadflow.store.engine import StoreBase
from leadflow.store.leases import sweep_crashed_runs, this_process
from leadflow.store.tables import FINAL_STATUSES, quarantine, runs, watermarks
from leadflow.store.values import _jsonable, _now, _require_columns, _row_json, _texts, _upsert, _utc_times

QUARANTINE_CHUNK_ROWS: Final[int] = 10_000
_QUARANTINE_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "expectation", "reason", "row")


class RunsMixin(StoreBase):
    """Run history (`runs`), high-water marks (`watermarks`) and refused rows (`quarantine`)."""

    # -- runs --------------------------------------------------------------------------------------------------------

    def start_run(self, flow: str, params: Mapping[str, Any]) -> str:
        """Record a run of `flow` as running and return its new run_id (a UUID string)."""
        if not flow:
            raise ValueError("flow must be a non-empty name")
        run_id = str(uuid.uuid4())
        host, pid = this_process()
        with self._writing() as conn:
            sweep_crashed_runs(conn)  # earlier runs on this host whose process died are not `running` any more
            conn.execute(
                runs.insert().values(
                    run_id=run_id, flow=flow, started_at=_now(), status="running", params=_jsonable(dict(params)),
                    holder=f"{host}:{pid}",
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: str, stats: Mapping[str, Any], error: str | None = None) -> None:
        """Mark a run `completed` or `failed` with its stats (and error text); raises KeyError for an unknown run."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"status must be one of {FINAL_STATUSES}, not {status!r}")
        with self._writing() as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(finished_at=_now(), status=status, stats=_jsonable(dict(stats)), error=error)
            )
            if result.rowcount == 0:
                raise KeyError(f"no run {run_id!r} in the state store")


    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run as a dict (run_id, flow, started_at, finished_at, status, params, stats, error), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        return dict(row) if row is not None else None

    def runs(self, limit: int = 20, flow: str | None = None) -> list[dict[str, Any]]:
        """The latest `limit` runs (optionally of one flow), newest first."""
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        if flow is not None:
            query = query.where(runs.c.flow == flow)
        with self._engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- watermarks --------------------------------------------------------------------------------------------------

    def get_watermark(self, source: str) -> datetime | None:
        """The high-water mark recorded for `source` (UTC), or None if there is none yet."""
        with self._engine.connect() as conn:
            value: datetime | None = conn.execute(
                sa.select(watermarks.c.value).where(watermarks.c.source == source)
            ).scalar_one_or_none()
        return value

    def set_watermark(self, source: str, value: datetime, run_id: str) -> None:
        """Insert or replace the high-water mark for `source`; `value` must be timezone-aware."""
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"watermark for {source!r} must be timezone-aware, got {value!r}")
        values = {"source": source, "value": value, "run_id": run_id, "updated_at": _now()}
        changed = {"value": value, "run_id": run_id, "updated_at": values["updated_at"]}
        with self._writing() as conn:
            _upsert(conn, watermarks, [values], [watermarks.c.source], lambda excluded: changed)

    # -- quarantine --------------------------------------------------------------------------------------------------

    def add_quarantine(self, run_id: str, stage: str, rows: pd.DataFrame) -> int:
        """Store refused rows: columns `lead_key`, `expectation`, `reason`, `row` (a dict per row); returns the count.

        `row` values are stored as strings (None for missing), so any dtype survives the JSON round trip. An `at`
        column, if present, gives each row's time; otherwise all rows get the time of this call.
        """
        _require_columns(rows, _QUARANTINE_COLUMNS, "quarantine rows")
        if rows.empty:
            return 0
        if rows["expectation"].isna().any():
            raise ValueError("quarantine rows: `expectation` has missing values")
        at = _utc_times(rows["at"], "quarantine rows `at`") if "at" in rows else pd.Series(_now(), index=rows.index)
        records = [
            {
                "run_id": run_id,
                "lead_key": lead_key,
                "stage": stage,
                "expectation": expectation,
                "reason": reason,
                "row": _row_json(row, position),
                "at": when,
            }
            for position, (lead_key, expectation, reason, row, when) in enumerate(
                zip(
                    _texts(rows["lead_key"]),
                    _texts(rows["expectation"]),
                    _texts(rows["reason"]),
                    rows["row"].tolist(),
                    at.tolist(),
                    strict=True,
                )
            )
        ]
        with self._writing() as conn:
            for start in range(0, len(records), QUARANTINE_CHUNK_ROWS):
                conn.execute(quarantine.insert(), records[start : start + QUARANTINE_CHUNK_ROWS])
        return len(records)

    def quarantine(self, run_id: str | None = None) -> pd.DataFrame:
        """Quarantined rows (all, or one run's) in insertion order, with `row` as a dict and `at` in UTC."""
        query = sa.select(quarantine).order_by(quarantine.c.id)
        if run_id is not None:
            query = query.where(quarantine.c.run_id == run_id)
        frame = self._read_frame(query, [c.name for c in quarantine.columns])
        for column in ("run_id", "lead_key", "stage", "expectation", "reason"):
            frame[column] = frame[column].astype("string")
        return frame
