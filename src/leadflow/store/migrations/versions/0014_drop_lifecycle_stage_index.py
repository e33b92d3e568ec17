"""Drop `ix_lead_state_lifecycle_stage`: no query reads lead state by stage (funnels group the rows a time window
selects), and every saved chunk of a streamed run paid for keeping it (~15 % of SQLite's insert CPU for lead state).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Drop the unused index."""
    op.drop_index("ix_lead_state_lifecycle_stage", table_name="lead_state")


def downgrade() -> None:
    """Recreate it."""
    op.create_index("ix_lead_state_lifecycle_stage", "lead_state", ["lifecycle_stage"])
