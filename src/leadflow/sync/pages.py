"""Pure helpers of an incremental sync: pull errors to quarantine, the page's high-water mark, dead-letter payloads."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from leadflow.connectors.base import CURSOR_COLUMN
from leadflow.pipeline.schema import lead_keys
from leadflow.sync.writeback import RECORD_ID

PULL_ERROR = "_pull_error"
PULL_STAGE = "pull"


def split_pull_errors(page: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows the connector could not read cleanly become quarantine records (stage `pull`), the rest go on."""
    if PULL_ERROR not in page.columns:
        return page, _empty_quarantine()
    bad = page[PULL_ERROR].notna().to_numpy()
    rows = page[bad]
    records = rows.drop(columns=[PULL_ERROR]).astype(object).where(rows.drop(columns=[PULL_ERROR]).notna(), None)
    quarantine = pd.DataFrame(
        {
            "lead_key": lead_keys(rows).to_numpy() if len(rows) else [],
            "expectation": "leadflow_pull_payload",
            "column": "",
            "reason": rows[PULL_ERROR].astype("string").to_numpy(),
            "row": records.to_dict("records"),
            "position": rows.index.to_numpy(),
        },
        index=rows.index,
    )
    return page[~bad].drop(columns=[PULL_ERROR]), quarantine


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({"lead_key": [], "expectation": [], "column": [], "reason": [], "row": [], "position": []})


def high_water(page: pd.DataFrame) -> datetime | None:
    """The latest modification stamp in a page: the watermark once the page is committed."""
    if CURSOR_COLUMN not in page.columns or page.empty:
        return None
    stamps = pd.to_datetime(page[CURSOR_COLUMN], utc=True, errors="coerce").dropna()
    return None if stamps.empty else stamps.max().to_pydatetime().astimezone(UTC)


def dead_letter_failures(changes: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Failures with `payload` = the canonical changes of that record, so a later run can write them again."""
    if failures.empty:
        return failures
    by_id = changes.set_index(RECORD_ID)
    out = failures.copy()

    def payload(record_id: Any) -> dict[str, Any]:
        if record_id not in by_id.index:
            return {}
        row = by_id.loc[record_id]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        return {k: (bool(v) if isinstance(v, bool) else str(v)) for k, v in row.items() if not pd.isna(v)}

    out["payload"] = [payload(r) for r in out["record_id"]]
    out["record_id"] = out["record_id"].astype(str)
    return out


def changes_from_dead_letters(letters: pd.DataFrame) -> pd.DataFrame:
    """The canonical changes stored with pending dead letters, ready to write again."""
    if letters.empty:
        return pd.DataFrame(columns=[RECORD_ID])
    rows = [{RECORD_ID: rid, **(payload or {})} for rid, payload in zip(letters["record_id"], letters["payload"], strict=True)]
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column != RECORD_ID and frame[column].isin(["True", "False"]).any():
            frame[column] = frame[column].map({"True": True, "False": False}).astype("boolean")
    return frame


MARKETO_ACTIVITY_TYPES: dict[str, str] = {
    "visit webpage": "page_visit",
    "fill out form": "form_fill",
    "open email": "email_open",
    "click email": "email_click",
    "request demo": "demo_request",
    "attend webinar": "webinar_attended",
}
"""Marketo activity type name → leadflow's canonical activity type (what scoring models name)."""


def marketo_activities(pages: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Marketo activity pages as the canonical activity frame (lead_key `marketo:<leadId>`); unreadable or unmapped
    activities are left out."""
    frames = [page for page in pages if len(page)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in ("lead_key", "activity_type", "occurred_at",
                                                                     "detail")})
    raw = pd.concat(frames, ignore_index=True)
    ok = raw["_pull_error"].isna() if "_pull_error" in raw else pd.Series(True, index=raw.index)
    kind = raw["activity_type"].astype("string").str.lower().map(MARKETO_ACTIVITY_TYPES)
    keep = ok & kind.notna()
    return pd.DataFrame({
        "lead_key": "marketo:" + raw.loc[keep, "lead_id"].astype("string"),
        "activity_type": kind[keep].astype("string"),
        "occurred_at": raw.loc[keep, "activity_date"].astype("string"),
        "detail": raw.loc[keep, "primary_attribute"].astype("string"),
    }).reset_index(drop=True)
