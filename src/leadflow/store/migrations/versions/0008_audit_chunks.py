"""Compact audit trail: stage before/after values per chunk of leads (`audit_chunks`) and `lead_runs`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create `audit_chunks` and `lead_runs`; `lead_events` keeps the point events and what was written before."""
    op.create_table(
        "audit_chunks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chunks")),
    )
    op.create_index(op.f("ix_audit_chunks_run_id_chunk"), "audit_chunks", ["run_id", "chunk"])
    op.create_index(op.f("ix_audit_chunks_at"), "audit_chunks", ["at"])
    op.create_table(
        "lead_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("lead_key", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.Column("lead_source", sa.Text(), nullable=True),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_runs")),
    )
    op.create_index(op.f("ix_lead_runs_lead_key"), "lead_runs", ["lead_key"])
    op.create_index(op.f("ix_lead_runs_at"), "lead_runs", ["at"], postgresql_using="brin")
    op.create_index(op.f("ix_lead_runs_email"), "lead_runs", ["email"], postgresql_using="hash")


def downgrade() -> None:
    """Drop `lead_runs` and `audit_chunks`."""
    op.drop_table("lead_runs")
    op.drop_table("audit_chunks")
