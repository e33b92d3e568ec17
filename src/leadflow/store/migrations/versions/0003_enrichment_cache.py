"""Enrichment cache: firmographics provider answers per (provider, domain), reused while fresh.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `enrichment_cache`."""
    op.create_table(
        "enrichment_cache",
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("fetched_at", _TIME, nullable=False),
        sa.CheckConstraint("status IN ('ok', 'not_found')", name=op.f("ck_enrichment_cache_status")),
        sa.PrimaryKeyConstraint("provider", "domain", name=op.f("pk_enrichment_cache")),
    )


def downgrade() -> None:
    """Drop `enrichment_cache`."""
    op.drop_table("enrichment_cache")
