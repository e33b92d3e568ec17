"""Dead letters, per-record write failures kept for replay: `DeadLettersMixin` of `StateStore`."""

from __future__ import annotations

from typing import Any, Final

import pandas as pd
import sqlalchemy as sa

from leadflow.store.engine import StoreBase
from leadflow.store.tables import dead_letters
from leadflow.store.values import _jsonable, _now, _require_columns, _upsert

_DEAD_LETTER_COLUMNS: Final[tuple[str, ...]] = ("record_id", "error_code", "message", "retryable", "payload")


class DeadLettersMixin(StoreBase):
    """Record, list and resolve per-record write failures (`dead_letters`)."""

    def add_dead_letters(
        self, run_id: str, system: str, obj: str, failures: pd.DataFrame, *, max_attempts: int = 5
    ) -> int:
        """Record per-record write failures (`record_id`, `error_code`, `message`, `retryable`, `payload`).

        A record failing again counts one more attempt and keeps its latest payload; it turns `permanent` when the
        error is not retryable or after `max_attempts`, so it is reported rather than retried forever.
        """
        _require_columns(failures, _DEAD_LETTER_COLUMNS, "dead letters")
        if failures.empty:
            return 0
        # One upsert per record: PostgreSQL refuses to update the same row twice in one statement.
        failures = failures.drop_duplicates(subset="record_id", keep="last")
        now = _now()
        rows = [
            {
                "system": system,
                "object": obj,
                "record_id": str(record_id),
                "payload": _jsonable(payload) if payload is not None else {},
                "error_code": str(code),
                "message": None if message is None or message is pd.NA else str(message),
                "retryable": bool(retryable),
                "status": "pending" if bool(retryable) and max_attempts > 1 else "permanent",
                "attempts": 1,
                "first_run_id": run_id,
                "last_run_id": run_id,
                "first_seen": now,
                "last_seen": now,
                "resolved_at": None,
            }
            for record_id, code, message, retryable, payload in zip(
                failures["record_id"], failures["error_code"], failures["message"], failures["retryable"],
                failures["payload"], strict=True,
            )
        ]

        def on_conflict(excluded: Any) -> dict[str, Any]:
            attempts = sa.case((dead_letters.c.status == "resolved", 1), else_=dead_letters.c.attempts + 1)
            return {
                "payload": excluded.payload,
                "error_code": excluded.error_code,
                "message": excluded.message,
                "retryable": excluded.retryable,
                "attempts": attempts,
                "status": sa.case(
                    (sa.or_(sa.not_(excluded.retryable), attempts >= max_attempts), "permanent"), else_="pending"
                ),
                "last_run_id": excluded.last_run_id,
                "last_seen": excluded.last_seen,
                "resolved_at": None,
            }

        keys = [dead_letters.c.system, dead_letters.c.object, dead_letters.c.record_id]
        with self._writing() as conn:
            _upsert(conn, dead_letters, rows, keys, on_conflict)
        return len(rows)

    def dead_letters(self, system: str | None = None, status: str | None = None) -> pd.DataFrame:
        """Dead letters, optionally of one system and/or status, oldest first."""
        query = sa.select(dead_letters).order_by(dead_letters.c.first_seen, dead_letters.c.id)
        if system is not None:
            query = query.where(dead_letters.c.system == system)
        if status is not None:
            query = query.where(dead_letters.c.status == status)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame.from_records(rows, columns=[c.name for c in dead_letters.columns])

    def resolve_dead_letters(self, system: str, obj: str, record_ids: list[str], run_id: str) -> int:
        """Mark pending dead letters written successfully on a later run as resolved; returns how many."""
        if not record_ids:
            return 0
        resolved = 0
        with self._writing() as conn:
            for start in range(0, len(record_ids), 500):
                result = conn.execute(
                    dead_letters.update()
                    .where(
                        dead_letters.c.system == system,
                        dead_letters.c.object == obj,
                        dead_letters.c.record_id.in_([str(r) for r in record_ids[start : start + 500]]),
                        dead_letters.c.status == "pending",
                    )
                    .values(status="resolved", resolved_at=_now(), last_run_id=run_id)
                )
                resolved += result.rowcount
        return resolved
