"""Routing availability in the state store (migration 0016): `routing_pauses`, every `leadflow routing pause` and
`resume` with who and when, and the index that counts each owner's untouched assignments (what `open_cap` caps).

`routing_pauses` is append-only: a user's latest row says whether they are paused and until when
(`leadflow.store.routing`); the rows before it are the history.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from leadflow.store.tables import BigId, UTCDateTime, assignments, metadata

PAUSE_ACTIONS: Final[tuple[str, ...]] = ("pause", "resume")

routing_pauses = sa.Table(
    "routing_pauses",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.String(100), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("until", UTCDateTime(), nullable=True),  # a pause's end; none on a resume
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("by", sa.String(200), nullable=False),  # the OS user, or `--by`
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("action IN ('pause', 'resume')", name="action"),
    sa.Index(None, "user_id", "id"),
)
"""Pauses and resumes, oldest first by id."""

PAUSE_COLUMNS: Final[tuple[str, ...]] = tuple(c.name for c in routing_pauses.columns)

ix_assignments_open = sa.Index(
    "ix_assignments_open_owner_id", assignments.c.owner_id,
    sqlite_where=assignments.c.first_touch_at.is_(None), postgresql_where=assignments.c.first_touch_at.is_(None))
"""Assignments nobody has touched yet, by owner (partial: only those rows), so a routing session counts them in
proportion to the untouched ones, not to every assignment ever made."""
