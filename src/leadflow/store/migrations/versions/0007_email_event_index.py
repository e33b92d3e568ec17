"""Partial indexes on the `email` audit events' values, so `leadflow trace <email>` finds a lead's keys by seek.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# must match `leadflow.store.tables.EMAIL_EVENT_WHERE` (kept literal here: migrations do not import app code)
_NEW = "column_name = 'email' AND length(new_value) <= 320"
_OLD = "column_name = 'email' AND length(old_value) <= 320"


def upgrade() -> None:
    """Create `ix_lead_events_email_new` and `ix_lead_events_email_old` (only `email` events, only sane lengths)."""
    for name, column, where in (("ix_lead_events_email_new", "new_value", _NEW),
                                ("ix_lead_events_email_old", "old_value", _OLD)):
        op.create_index(name, "lead_events", [column], sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_lead_events_email_old", table_name="lead_events")
    op.drop_index("ix_lead_events_email_new", table_name="lead_events")
