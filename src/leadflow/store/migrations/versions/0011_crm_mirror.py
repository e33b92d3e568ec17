"""The CRM mirror: accounts, contacts and leads, owners, and per object its build and watermark.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def _tracking() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("modstamp", _TIME, nullable=True), sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("is_deleted", sa.Boolean(), nullable=False)]


def upgrade() -> None:
    """Create mirror_accounts, mirror_records, mirror_owners, mirror_objects and mirror_snapshots."""
    op.create_table(
        "mirror_accounts",
        sa.Column("account_id", sa.String(18), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("website", sa.Text(), nullable=True),
        sa.Column("billing_country", sa.Text(), nullable=True),
        sa.Column("country_code", sa.String(2), nullable=True),
        sa.Column("owner_id", sa.String(18), nullable=True),
        sa.Column("employees", sa.BigInteger(), nullable=True),
        sa.Column("annual_revenue", sa.Float(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("last_activity_at", sa.String(40), nullable=True),
        sa.Column("domain_key", sa.Text(), nullable=True),
        sa.Column("name_key", sa.Text(), nullable=True),
        *_tracking(),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_mirror_accounts")),
    )
    op.create_index(op.f("ix_mirror_accounts_seq"), "mirror_accounts", ["seq"])
    op.create_table(
        "mirror_records",
        sa.Column("record_id", sa.String(18), nullable=False),
        sa.Column("object", sa.String(16), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column("account_id", sa.String(18), nullable=True),
        sa.Column("email_key", sa.Text(), nullable=True),
        sa.Column("first_key", sa.Text(), nullable=True),
        sa.Column("last_key", sa.Text(), nullable=True),
        sa.Column("company_key", sa.Text(), nullable=True),
        sa.Column("domain_key", sa.Text(), nullable=True),
        *_tracking(),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_mirror_records")),
    )
    op.create_index(op.f("ix_mirror_records_object_seq"), "mirror_records", ["object", "seq"])
    op.create_table(
        "mirror_owners",
        sa.Column("record_id", sa.String(18), nullable=False),
        sa.Column("object", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(18), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=True),
        *_tracking(),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_mirror_owners")),
    )
    op.create_index(op.f("ix_mirror_owners_object_seq"), "mirror_owners", ["object", "seq"])
    op.create_table(
        "mirror_objects",
        sa.Column("object", sa.String(40), nullable=False),
        sa.Column("generation", sa.String(36), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("built_at", _TIME, nullable=False),
        sa.Column("refreshed_at", _TIME, nullable=False),
        sa.Column("watermark", _TIME, nullable=True),
        sa.Column("last_change_at", _TIME, nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("keys", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("object", name=op.f("pk_mirror_objects")),
    )
    op.create_table(
        "mirror_snapshots",
        sa.Column("object", sa.String(40), nullable=False),
        sa.Column("generation", sa.String(36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("object", name=op.f("pk_mirror_snapshots")),
    )


def downgrade() -> None:
    """Drop the mirror (it is rebuilt from the CRM on the next run)."""
    for table in ("mirror_snapshots", "mirror_objects", "mirror_owners", "mirror_records", "mirror_accounts"):
        op.drop_table(table)
