"""Routing availability: `routing_pauses` (every `leadflow routing pause` / `resume` with who and when) and
`ix_assignments_open_owner_id` (assignments with no first touch, by owner: what `open_cap` counts).

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `routing_pauses` and the partial index of untouched assignments."""
    op.create_table(
        "routing_pauses",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(100), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("until", _TIME, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("by", sa.String(200), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.CheckConstraint("action IN ('pause', 'resume')", name=op.f("ck_routing_pauses_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_pauses")),
    )
    op.create_index(op.f("ix_routing_pauses_user_id_id"), "routing_pauses", ["user_id", "id"])
    untouched = sa.text("first_touch_at IS NULL")
    op.create_index("ix_assignments_open_owner_id", "assignments", ["owner_id"], sqlite_where=untouched,
                    postgresql_where=untouched)


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_assignments_open_owner_id", table_name="assignments")
    op.drop_index(op.f("ix_routing_pauses_user_id_id"), table_name="routing_pauses")
    op.drop_table("routing_pauses")
