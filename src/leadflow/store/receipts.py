"""Write receipts (`write_receipts`): per lead, a hash of what its system holds after leadflow last processed it, so
a sync recognizes the echo of its own write (`leadflow.sync.receipts`): `ReceiptsMixin` of `StateStore`."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from leadflow.store.engine import StoreBase
from leadflow.store.tables import write_receipts
from leadflow.store.values import CACHE_CHUNK_KEYS, STATE_CHUNK_ROWS, _require_columns, _upsert, _utc_times

RECEIPT_COLUMNS = ("lead_key", "receipt", "run_id", "at")


class ReceiptsMixin(StoreBase):
    """Each lead's write receipt (`write_receipts`)."""

    def write_receipts(self, frame: pd.DataFrame) -> int:
        """Insert or replace receipts (`lead_key`, `receipt` int64 or NA for "process it whenever pulled", `run_id`,
        `at` timezone-aware); the last row of a lead_key wins. Returns the rows written."""
        _require_columns(frame, RECEIPT_COLUMNS, "receipts")
        if frame.empty:
            return 0
        if frame["lead_key"].isna().any():
            raise ValueError(f"receipts: {int(frame['lead_key'].isna().sum())} row(s) have no `lead_key`")
        latest = frame.drop_duplicates("lead_key", keep="last")  # one row per key: PostgreSQL updates a row once
        at = _utc_times(latest["at"], "receipts `at`")
        receipts = pd.array(latest["receipt"], dtype="Int64")
        rows = [
            {"lead_key": str(key), "receipt": None if pd.isna(receipt) else int(receipt), "run_id": str(run_id),
             "at": moment.to_pydatetime()}
            for key, receipt, run_id, moment in zip(latest["lead_key"], receipts, latest["run_id"], at, strict=True)
        ]

        def on_conflict(excluded: Any) -> dict[str, Any]:
            return {"receipt": excluded.receipt, "run_id": excluded.run_id, "at": excluded.at}

        with self._writing() as conn:
            for start in range(0, len(rows), STATE_CHUNK_ROWS):
                _upsert(conn, write_receipts, rows[start : start + STATE_CHUNK_ROWS], [write_receipts.c.lead_key],
                        on_conflict)
        return len(rows)

    def receipts(self, lead_keys: list[str]) -> pd.Series:
        """The receipts of these leads: lead_key → receipt (Int64; NA: "process it whenever pulled"); leads without
        a receipt are absent."""
        wanted = list(dict.fromkeys(str(k) for k in lead_keys if k is not None and not pd.isna(k)))
        found: list[tuple[str, int | None]] = []
        table = write_receipts
        with self._engine.connect() as conn:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                query = sa.select(table.c.lead_key, table.c.receipt).where(
                    table.c.lead_key.in_(wanted[start : start + CACHE_CHUNK_KEYS]))
                found.extend((key, receipt) for key, receipt in conn.execute(query))
        return pd.Series(pd.array([r for _, r in found], dtype="Int64"),
                         index=pd.Index([k for k, _ in found], dtype="string", name="lead_key"), name="receipt")
