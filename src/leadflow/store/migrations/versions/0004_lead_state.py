"""Lead state: each lead's lifecycle stage and stamps, kept by leadflow so runs from any source build on the last.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `lead_state`."""
    op.create_table(
        "lead_state",
        sa.Column("lead_key", sa.String(300), nullable=False),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False),
        sa.Column("lifecycle_reason", sa.Text(), nullable=True),
        sa.Column("mql_at", _TIME, nullable=True),
        sa.Column("sal_at", _TIME, nullable=True),
        sa.Column("sql_at", _TIME, nullable=True),
        sa.Column("recycled_at", _TIME, nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("lead_key", name=op.f("pk_lead_state")),
    )
    op.create_index(op.f("ix_lead_state_lifecycle_stage"), "lead_state", ["lifecycle_stage"])


def downgrade() -> None:
    """Drop `lead_state`."""
    op.drop_index(op.f("ix_lead_state_lifecycle_stage"), table_name="lead_state")
    op.drop_table("lead_state")
