"""Push intake: the inbox of lead notifications pushed by Salesforce, HubSpot, Marketo and web forms.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create `intake_inbox`."""
    op.create_table(
        "intake_inbox",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("object", sa.String(40), nullable=False),
        sa.Column("record_id", sa.String(100), nullable=False),
        sa.Column("modstamp", sa.String(100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("claimed_at", _TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'claimed', 'done', 'failed')", name=op.f("ck_intake_inbox_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intake_inbox")),
        sa.UniqueConstraint("system", "record_id", "modstamp",
                            name=op.f("uq_intake_inbox_system_record_id_modstamp")),
    )
    op.create_index(op.f("ix_intake_inbox_state_id"), "intake_inbox", ["state", "id"])


def downgrade() -> None:
    """Drop `intake_inbox`."""
    op.drop_index(op.f("ix_intake_inbox_state_id"), table_name="intake_inbox")
    op.drop_table("intake_inbox")
