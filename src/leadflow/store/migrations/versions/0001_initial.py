"""Initial state store: runs, watermarks, quarantine, lead_events.

Revision ID: 0001
Revises:
Create Date: 2025-11-22

Names are wrapped in `op.f()` so the naming convention of `target_metadata` is not applied on top of them.
Written out in full rather than importing `leadflow.store.tables`, so this revision keeps creating the same schema
when the table definitions move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("flow", sa.String(200), nullable=False),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name=op.f("ck_runs_status")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])

    op.create_table(
        "watermarks",
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("value", _TIME, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_watermarks")),
    )

    op.create_table(
        "quarantine",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("lead_key", sa.Text(), nullable=True),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("expectation", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_run_id"), "quarantine", ["run_id"])
    op.create_index(op.f("ix_quarantine_lead_key"), "quarantine", ["lead_key"])

    op.create_table(
        "lead_events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("lead_key", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("column_name", sa.String(100), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_events")),
    )
    op.create_index(op.f("ix_lead_events_lead_key_at"), "lead_events", ["lead_key", "at"])
    op.create_index(op.f("ix_lead_events_run_id"), "lead_events", ["run_id"])


def downgrade() -> None:
    """Drop everything `upgrade` created."""
    op.drop_table("lead_events")
    op.drop_table("quarantine")
    op.drop_table("watermarks")
    op.drop_table("runs")
