"""What to write back: only the fields a run changed, diffed against what was pulled."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from leadflow.pipeline import as_text

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
