"""CRM first touches: `lead_first_touches` (per lead, the earliest Task, Event or status change the CRM records) and
`assignments.first_touch_source` (where an assignment's first touch came from: the CRM, or `pull`, the fallback).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `lead_first_touches`; add `assignments.first_touch_source` and label the first touches recorded so far
    (all seen by a pull) as `pull`."""
    op.create_table(
        "lead_first_touches",
        sa.Column("lead_key", sa.String(300), nullable=False),
        sa.Column("first_touch_at", _TIME, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.CheckConstraint("source IN ('task', 'event', 'status_history')",
                           name=op.f("ck_lead_first_touches_source")),
        sa.PrimaryKeyConstraint("lead_key", name=op.f("pk_lead_first_touches")),
    )
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("first_touch_source", sa.String(20), nullable=True))
    op.execute("UPDATE assignments SET first_touch_source = 'pull' WHERE first_touch_at IS NOT NULL")


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("first_touch_source")
    op.drop_table("lead_first_touches")
