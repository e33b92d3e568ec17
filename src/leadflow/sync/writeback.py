"""What to write back: only the fields a run changed, diffed against what was pulled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from leadflow.pipeline.ledger import EVENT_COLUMNS, as_text

RECORD_ID = "record_id"


def changed_fields(pulled: pd.DataFrame, processed: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """One row per record with at least one changed value: `record_id` plus `columns`, NA where unchanged.

    `pulled` and `processed` share an index (processed may have fewer rows: quarantined ones are not written).
    Values compare as text, so `True` and `"true"` or `1` and `"1"` do not count as changes. A value the run
    cleared (known → empty) is not written: leadflow never blanks a field in the CRM.
    """
    before = pulled.loc[processed.index]
    out = pd.DataFrame({RECORD_ID: processed["lead_id"].astype("string")}, index=processed.index)
    any_change = pd.Series(False, index=processed.index)
    for column in columns:
        if column not in processed.columns:
            continue
        new = as_text(processed[column].rename(column))
        old = as_text(before[column].rename(column)) if column in before.columns else pd.Series(
            pd.NA, index=processed.index, dtype="string"
        )
        changed = (new.notna() & (old.isna() | (new != old).fillna(True))).astype(bool)
        out[column] = processed[column].where(changed)
        any_change |= changed
    keep = any_change & out[RECORD_ID].notna()
    return out[keep.to_numpy()]


def writeback_events(
    changes: pd.DataFrame, pulled: pd.DataFrame, keys: pd.Series, written: list[str], *, run_id: str, stage: str,
    at: datetime | None = None,
) -> pd.DataFrame:
    """Audit events for fields actually written back: one per (record, field), old = as pulled, new = as written."""
    at = at or datetime.now(UTC)
    done = changes[changes[RECORD_ID].isin([str(w) for w in written])]
    parts = []
    for column in done.columns:
        if column == RECORD_ID:
            continue
        values = done[column]
        mask = values.notna().to_numpy()
        if not mask.any():
            continue
        index = done.index[mask]
        old = as_text(pulled[column].rename(column)).loc[index] if column in pulled else pd.Series(pd.NA, index=index)
        parts.append(
            pd.DataFrame(
                {
                    "lead_key": keys.loc[index].to_numpy(),
                    "column_name": column,
                    "old_value": old.to_numpy(),
                    "new_value": as_text(values[mask].rename(column)).to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    events = pd.concat(parts, ignore_index=True)
    events.insert(0, "run_id", run_id)
    events.insert(2, "stage", stage)
    events["at"] = at
    return events[list(EVENT_COLUMNS)]


def merge_diff(summary: dict[str, dict[str, Any]], changes: pd.DataFrame, pulled: pd.DataFrame, examples: int = 3) -> None:
    """Add a page's changes to `summary`: per column, how many records change and a few `(old, new)` examples."""
    for column in changes.columns:
        if column == RECORD_ID:
            continue
        values = changes[column]
        mask = values.notna().to_numpy()
        if not mask.any():
            continue
        entry = summary.setdefault(column, {"count": 0, "examples": []})
        entry["count"] += int(mask.sum())
        index = changes.index[mask][: max(0, examples - len(entry["examples"]))]
        old = as_text(pulled[column].rename(column)) if column in pulled else pd.Series(pd.NA, index=pulled.index)
        new = as_text(values.rename(column))
        for i in index:
            entry["examples"].append(
                (changes.at[i, RECORD_ID], None if pd.isna(old.get(i)) else str(old.get(i)), str(new.at[i]))
            )


def owners_in_place(changes: pd.DataFrame, processed: pd.DataFrame, written: list[str]) -> pd.Series:
    """Per processed lead: is the owner leadflow decided now what the system holds? True where the owner needed no
    change or its change was written."""
    if "owner_id" not in processed.columns:
        return pd.Series(False, index=processed.index)
    decided = processed["owner_id"].notna()
    pending = pd.Series(False, index=processed.index)
    if "owner_id" in changes.columns:
        needed = changes["owner_id"].notna()
        not_written = ~changes[RECORD_ID].isin([str(w) for w in written])
        pending.loc[changes.index[(needed & not_written).to_numpy()]] = True
    return decided & ~pending


def drop_converted(changes: pd.DataFrame, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`changes` without the rows of converted leads (`is_converted`), and how many were dropped. Salesforce
    refuses any update of a converted lead (CANNOT_UPDATE_CONVERTED_LEAD; SOAP API Developer Guide, StatusCode:
    https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm)."""
    if not len(changes) or "is_converted" not in frame.columns:
        return changes, 0
    converted = frame["is_converted"].reindex(changes.index).astype("boolean").fillna(False).to_numpy(dtype=bool)
    return changes[~converted], int(converted.sum())


def without_refused(changes: pd.DataFrame, refused: pd.DataFrame, column_of: dict[str, str]) -> pd.DataFrame:
    """`changes` with every refused (record, field) cleared: what the connector actually sent. `refused` has
    `record_id` and `field` (the system's field name); `column_of` maps field names to canonical columns."""
    if refused is None or refused.empty or changes.empty:
        return changes
    out = changes.copy()
    ids = out[RECORD_ID].astype("string")
    for field_name, group in refused.groupby("field", sort=False):
        column = column_of.get(str(field_name), str(field_name))
        if column not in out.columns:
            continue
        hit = ids.isin([str(r) for r in group["record_id"]]).to_numpy(dtype=bool)
        out[column] = out[column].mask(hit)
    return out


def refused_events(
    refused: pd.DataFrame, changes: pd.DataFrame, pulled: pd.DataFrame, keys: pd.Series, column_of: dict[str, str],
    *, run_id: str, stage: str, at: datetime | None = None,
) -> pd.DataFrame:
    """Audit events for values a write left out because the target would refuse them: old = as pulled, new = the
    value not written, column `<column> (refused: <reason>)`, so `trace` shows why a field did not change."""
    if refused is None or refused.empty or changes.empty:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    at = at or datetime.now(UTC)
    position = pd.Series(changes.index, index=changes[RECORD_ID].astype("string").to_numpy())
    position = position[~position.index.duplicated()]
    rows = []
    for record_id, field_name, value, reason in zip(refused["record_id"], refused["field"], refused["value"],
                                                     refused["reason"], strict=True):
        index = position.get(str(record_id))
        if index is None:
            continue
        column = column_of.get(str(field_name), str(field_name))
        old = as_text(pulled[column].rename(column)).loc[index] if column in pulled.columns else pd.NA
        rows.append({"run_id": run_id, "lead_key": keys.loc[index], "stage": stage,
                     "column_name": f"{column} (refused: {reason})", "old_value": old,
                     "new_value": None if value is None else str(value), "at": at})
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS))

