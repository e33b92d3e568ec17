"""Write receipts: per lead, a hash of what its system holds after leadflow's last write, so a sync skips the echo.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `write_receipts`."""
    op.create_table(
        "write_receipts",
        sa.Column("lead_key", sa.String(300), nullable=False),
        sa.Column("receipt", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("lead_key", name=op.f("pk_write_receipts")),
    )


def downgrade() -> None:
    """Drop `write_receipts`."""
    op.drop_table("write_receipts")
