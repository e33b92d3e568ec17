"""The CRM mirror keeps owners' names (issue 19): `mirror_owners.name` — a User's Name, a lead queue's Group name —
so the report names owners as the CRM does. The User and QueueSobject mirrors are dropped so the next refresh builds
them again with their names (an incremental refresh would fill in only the users changed since).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER_OBJECTS = ("User", "QueueSobject")


def _drop_owner_mirror() -> None:
    for name in ("mirror_owners", "mirror_objects", "mirror_snapshots"):
        table = sa.table(name, sa.column("object"))
        op.execute(table.delete().where(table.c.object.in_(_OWNER_OBJECTS)))


def upgrade() -> None:
    """Add mirror_owners.name; drop the owners' mirror so the next refresh builds it with names."""
    with op.batch_alter_table("mirror_owners") as batch:
        batch.add_column(sa.Column("name", sa.Text(), nullable=True))
    _drop_owner_mirror()


def downgrade() -> None:
    """Drop mirror_owners.name (the owners' mirror is rebuilt, as after the upgrade)."""
    _drop_owner_mirror()
    with op.batch_alter_table("mirror_owners") as batch:
        batch.drop_column("name")
