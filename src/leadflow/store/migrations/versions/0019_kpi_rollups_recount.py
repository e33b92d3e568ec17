"""Recount the KPI rollups from the stored lead facts: counters' definitions changed (issue 19, honest numbers) —
lifecycle stages reached count a later stamp as passing the earlier stages (`skipped` counted apart), durations with
clock skew are clamped to 0 and counted (`skew_clamped`), and created → first touch has its own histogram. A run
subtracts a lead's old contribution as the code now counts it, so the counters must be counted the same way.
`published_run` marks are kept. No schema change.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Replace every counter but `published_run` with what the stored lead facts count to now."""
    from leadflow.audit.kpi_rollups import recount_rollups

    recount_rollups(op.get_bind())


def downgrade() -> None:
    """Nothing to undo: the counters stay as recounted (the older definitions cannot be told apart in them)."""
