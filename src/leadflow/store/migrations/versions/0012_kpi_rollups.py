"""KPI rollups: hourly counters per metric and dimension, and the per-lead inputs they counted.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `kpi_rollups` and `kpi_lead_facts`."""
    op.create_table(
        "kpi_rollups",
        sa.Column("hour", _TIME, nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("dimension", sa.String(300), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "metric", "dimension", name=op.f("pk_kpi_rollups")),
    )
    op.create_table(
        "kpi_lead_facts",
        sa.Column("lead_key", sa.String(300), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in ("own_created", "created", "assigned", "written",
                                                                   "due", "touched")),
        sa.Column("owner_id", sa.String(100), nullable=True),
        sa.Column("stage", sa.String(16), nullable=True),
        *(sa.Column(name, sa.Float(), nullable=True) for name in ("mql", "sal", "sql", "state_at")),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("lead_key", name=op.f("pk_kpi_lead_facts")),
    )
    op.create_index(op.f("ix_kpi_lead_facts_email"), "kpi_lead_facts", ["email"])


def downgrade() -> None:
    """Drop `kpi_lead_facts` and `kpi_rollups`."""
    op.drop_index(op.f("ix_kpi_lead_facts_email"), table_name="kpi_lead_facts")
    op.drop_table("kpi_lead_facts")
    op.drop_table("kpi_rollups")
