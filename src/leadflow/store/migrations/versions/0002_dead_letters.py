"""Dead letters: per-record write-back failures, retried on later runs until resolved or declared permanent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `dead_letters`."""
    op.create_table(
        "dead_letters",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("system", sa.String(50), nullable=False),
        sa.Column("object", sa.String(80), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(100), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_run_id", sa.String(36), nullable=False),
        sa.Column("last_run_id", sa.String(36), nullable=False),
        sa.Column("first_seen", _TIME, nullable=False),
        sa.Column("last_seen", _TIME, nullable=False),
        sa.Column("resolved_at", _TIME, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'resolved', 'permanent')", name=op.f("ck_dead_letters_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("system", "object", "record_id", name=op.f("uq_dead_letters_system_object_record_id")),
    )
    op.create_index(op.f("ix_dead_letters_system_status"), "dead_letters", ["system", "status"])


def downgrade() -> None:
    """Drop `dead_letters`."""
    op.drop_table("dead_letters")
