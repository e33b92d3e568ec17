"""The `escalation_steps` table (migration 0017): each step of an escalation chain fired for a lead, once
(`leadflow.store.escalations`)."""

from __future__ import annotations

import sqlalchemy as sa

from leadflow.store.tables import UTCDateTime, metadata

escalation_steps = sa.Table(
    "escalation_steps",
    metadata,
    sa.Column("lead_key", sa.String(300), primary_key=True),
    sa.Column("chain_start", UTCDateTime(), primary_key=True),
    sa.Column("step", sa.Integer(), primary_key=True),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    # whose working time the chain counts in (the owner the chain started with)
    sa.Column("chain_owner", sa.String(100), nullable=True),
    sa.Column("last_step", sa.Boolean(), nullable=False),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    sa.Column("fired_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("owner_id", sa.String(100), nullable=True),
    sa.Column("outcome", sa.Text(), nullable=True),
)
"""One row per escalation step fired or superseded, per lead and chain."""
