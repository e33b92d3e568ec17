"""Lifecycle stage: new → MQL → SAL → SQL and recycling, per the lifecycle policy (`leadflow.scoring.lifecycle`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from leadflow.scoring.lifecycle import HISTORY_COLUMNS, LIFECYCLE_COLUMNS, advance_lifecycle
from leadflow.pipeline.schema import lead_keys
from leadflow.pipeline.stage import Stage

if TYPE_CHECKING:
    from leadflow.pipeline.config import Rules
    from leadflow.pipeline.run_inputs import RunInputs


def last_activity(frame: pd.DataFrame, activities: pd.DataFrame, as_of: datetime) -> pd.Series:
    """Each lead's latest activity at or before `as_of` (NaT when none)."""
    keys = lead_keys(frame)
    if not len(activities):
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    when = pd.to_datetime(activities["occurred_at"], utc=True, errors="coerce").astype("datetime64[ns, UTC]")
    seen = when <= pd.Timestamp(as_of).tz_convert("UTC")
    latest = when[seen].groupby(activities["lead_key"][seen].to_numpy()).max()
    found = latest.reindex(keys.to_numpy())  # reindex, not map: map cannot hand back an empty datetime lookup
    return pd.Series(found.to_numpy(), index=frame.index, dtype="datetime64[ns, UTC]")


def status_since(frame: pd.DataFrame, history: pd.DataFrame | None, as_of: datetime) -> pd.Series:
    """Per lead: when the CRM last changed its status to the value it has now (canonical `YYYY-MM-DDTHH:MM:SSZ`), at
    or before `as_of`; NA when the history does not say."""
    empty = pd.Series(pd.NA, index=frame.index, dtype="string")
    assert history is None or set(HISTORY_COLUMNS) <= set(history.columns), "status history needs HISTORY_COLUMNS"
    if history is None or not len(history) or not len(frame):
        return empty
    when = pd.to_datetime(history["changed_at"], utc=True, errors="coerce", format="ISO8601")
    usable = when.notna() & (when <= pd.Timestamp(as_of).tz_convert("UTC"))
    latest = (pd.DataFrame({"key": history["lead_key"].astype("string") + "\x1f" + history["status"].astype("string"),
                            "when": when})[usable.to_numpy()]
              .groupby("key")["when"].max())
    keys = lead_keys(frame) + "\x1f" + frame["status"].astype("string")
    found = latest.reindex(keys.to_numpy())
    text = pd.Series(found.to_numpy(), index=frame.index, dtype="datetime64[ns, UTC]").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.astype("string")


def lifecycle(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """Apply the score and the CRM status to each lead's lifecycle stage; refused moves are reported. A lead seen
    the first time is stamped from `inputs.status_history` (or not at all)."""
    as_of = inputs.now()
    return advance_lifecycle(
        frame,
        rules.lifecycle,
        mql_threshold=rules.scoring_model.mql_threshold,
        last_activity=last_activity(frame, inputs.reference_for(rules).activities, as_of),
        as_of=as_of,
        first_seen=status_since(frame, inputs.status_history, as_of),
    )


LIFECYCLE = Stage(
    name="lifecycle",
    reads=("lead_id", "source", "email", "status", "updated_at", "score", *LIFECYCLE_COLUMNS),
    writes=LIFECYCLE_COLUMNS,
    fn=lifecycle,
    description="MQL on score, SAL/SQL/recycled on CRM status; illegal moves refused and reported.",
)
