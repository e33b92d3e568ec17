"""Backfill chunks: which chunk of which backfill committed, so a re-run of the same backfill resumes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `backfill_chunks`."""
    op.create_table(
        "backfill_chunks",
        sa.Column("backfill_key", sa.String(64), nullable=False),
        sa.Column("chunk_start", _TIME, nullable=False),
        sa.Column("chunk_end", _TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name=op.f("ck_backfill_chunks_status")),
        sa.PrimaryKeyConstraint("backfill_key", "chunk_start", name=op.f("pk_backfill_chunks")),
    )


def downgrade() -> None:
    """Drop `backfill_chunks`."""
    op.drop_table("backfill_chunks")
