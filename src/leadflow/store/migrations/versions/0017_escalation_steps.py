"""Escalation steps: each step of a rule's escalation chain fired (or superseded) for a lead, recorded once, so the
SLA watch never fires a step twice (`leadflow.store.escalations`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `escalation_steps`."""
    op.create_table(
        "escalation_steps",
        sa.Column("lead_key", sa.String(300), nullable=False),
        sa.Column("chain_start", _TIME, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("chain_owner", sa.String(100), nullable=True),
        sa.Column("last_step", sa.Boolean(), nullable=False),
        sa.Column("due_at", _TIME, nullable=False),
        sa.Column("fired_at", _TIME, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("lead_key", "chain_start", "step", name=op.f("pk_escalation_steps")),
    )


def downgrade() -> None:
    """Drop `escalation_steps`."""
    op.drop_table("escalation_steps")
