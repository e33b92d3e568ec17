"""Routing: the round-robin state (one locked row) and each lead's assignment with its first-touch SLA.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `routing_state` and `assignments`."""
    op.create_table(
        "routing_state",
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_routing_state")),
    )
    op.create_table(
        "assignments",
        sa.Column("lead_key", sa.String(300), nullable=False),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("routing_rule", sa.String(100), nullable=False),
        sa.Column("routing_reason", sa.Text(), nullable=True),
        sa.Column("assigned_at", _TIME, nullable=False),
        sa.Column("sla_due_at", _TIME, nullable=True),
        sa.Column("first_touch_at", _TIME, nullable=True),
        sa.Column("breached_at", _TIME, nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("written_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("lead_key", name=op.f("pk_assignments")),
    )
    op.create_index(op.f("ix_assignments_sla_due_at"), "assignments", ["sla_due_at"])


def downgrade() -> None:
    """Drop `assignments` and `routing_state`."""
    op.drop_index(op.f("ix_assignments_sla_due_at"), table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("routing_state")
