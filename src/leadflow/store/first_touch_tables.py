"""The CRM first touches' table (migration 0018): per lead, the earliest touch the CRM itself records — a Task or an
Event on the lead (its CreatedDate) or a change of its status (LeadHistory) — with where it came from.

`assignments.first_touch_source` (same migration) says where an assignment's `first_touch_at` came from: one of
`TOUCH_SOURCES` when the CRM recorded it, `pull` when it is only the time a later pull saw the lead's status worked
(the fallback, an upper bound of the real touch).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from leadflow.store.tables import UTCDateTime, metadata

TOUCH_SOURCES: Final[tuple[str, ...]] = ("task", "event", "status_history")
"""Where a CRM first touch comes from."""
PULL_SOURCE: Final[str] = "pull"
"""An assignment's first touch known only from the pull that saw the lead worked (no CRM record of it yet)."""

lead_first_touches = sa.Table(
    "lead_first_touches",
    metadata,
    sa.Column("lead_key", sa.String(300), primary_key=True),
    sa.Column("first_touch_at", UTCDateTime(), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    # the run that last moved this lead's first touch (this row's, or its assignment's)
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("source IN ('task', 'event', 'status_history')", name="source"),
)
"""Each lead's earliest first touch recorded in the CRM (`leadflow.connectors.salesforce_touches`)."""
