"""advance_lifecycle over many leads at once: each lead comes out as it would alone, whatever its position and index.

The moves write their reasons and stamps only into the rows they move (texts built for those rows alone), so a mix of
moves, refusals and first sights in one frame, with an index that is not 0..n-1, checks that every text lands on its
own lead."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from leadflow.pipeline.schema import conform
from leadflow.scoring.lifecycle import LIFECYCLE_COLUMNS, advance_lifecycle, load_lifecycle_policy

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICY = load_lifecycle_policy()
ROWS = [
    {"score": "120"},
    {"score": "80"},
    {"score": "80", "status": "Working - Contacted"},
    {"score": "80", "status": "Working - Contacted", "lifecycle_stage": "new"},
    {"score": "80", "status": "Working - Contacted", "lifecycle_stage": "mql"},
    {"score": "80", "status": "Closed - Converted", "lifecycle_stage": "sal"},
    {"score": "80", "status": "Nurture", "lifecycle_stage": "sql"},
    {"score": "80", "status": "Nurture", "lifecycle_stage": "mql"},
    {"score": "130", "status": "Working - Contacted", "lifecycle_stage": "new"},
    {"score": "150", "lifecycle_stage": "recycled", "recycled_at": "2026-11-10T00:00:00Z"},
    {"score": "150", "lifecycle_stage": "recycled", "recycled_at": "2026-11-10T00:00:00Z"},
    {"score": "90", "lifecycle_stage": "bogus", "status": "Closed - Converted"},
    {"score": "101.25", "status": "Nurture"},
    {"score": None, "status": "Closed - Converted", "lifecycle_stage": "mql"},
]
ACTIVITY = [None] * 9 + ["2026-11-15T09:00:00Z", "2026-11-01T09:00:00Z", None, None, None]


def leads(rows: list[dict[str, object]], index: list[int]) -> pd.DataFrame:
    frame = conform(pd.DataFrame(rows).astype("string"))
    frame["score"] = pd.to_numeric(frame["score"]).astype("Float64")
    frame.index = index
    return frame


def advance(frame: pd.DataFrame, activity: list[str | None]) -> pd.DataFrame:
    when = pd.to_datetime(pd.Series(activity, index=frame.index), utc=True)
    return advance_lifecycle(frame, POLICY, mql_threshold=100, last_activity=when, as_of=NOW)


def test_each_lead_as_if_alone() -> None:
    n = len(ROWS)
    order = [(5 * i + 3) % n for i in range(n)]  # a shuffle: refusals and moves away from the first rows
    rows, activity = [ROWS[i] for i in order], [ACTIVITY[i] for i in order]
    index = [1000 - 13 * i for i in range(n)]  # neither 0..n-1 nor sorted
    together = advance(leads(rows, index), activity)
    assert list(together.index) == index
    assert list(together.columns) == list(LIFECYCLE_COLUMNS)
    assert sorted(order) == list(range(n))
    moved = 0
    for position, (row, when) in enumerate(zip(rows, activity, strict=True)):
        alone = advance(leads([row], [index[position]]), [when])
        pd.testing.assert_frame_equal(together.iloc[[position]], alone, check_exact=True)
        moved += int(together.iloc[position].notna().any())
    assert moved >= n - 1  # nearly every row moved, was refused or was stamped: the texts were really written
    reasons = together["lifecycle_reason"].dropna()
    assert reasons.str.startswith("refused ").sum() == 4
    assert reasons.str.startswith("first seen with crm status ").sum() == 2
