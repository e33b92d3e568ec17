"""The KPI rollups' tables (migration 0012), maintained by `leadflow.audit.kpi_rollups` at the end of every run.

`kpi_rollups` holds hourly counters: per hour bucket, metric and dimension (a lifecycle stage, an owner, a histogram
bin of minutes, an SLA due minute), a count that each run adds its deltas to. `kpi_lead_facts` holds, per lead, the
inputs the rollups last counted for it (times as epoch seconds), so a later run that changes a lead takes its old
contribution out of the rollups before adding the new one: a lead seen in several runs is counted once.
"""

from __future__ import annotations

import sqlalchemy as sa

from leadflow.store.tables import UTCDateTime, metadata

kpi_rollups = sa.Table(
    "kpi_rollups",
    metadata,
    sa.Column("hour", UTCDateTime(), primary_key=True),
    sa.Column("metric", sa.String(40), primary_key=True),
    sa.Column("dimension", sa.String(300), primary_key=True),
    sa.Column("count", sa.BigInteger(), nullable=False),
)
"""Hourly counters (`leadflow.audit.kpi_rollups.ROLLUP_METRICS`); the count may drop to 0 when leads move away."""

kpi_lead_facts = sa.Table(
    "kpi_lead_facts",
    metadata,
    sa.Column("lead_key", sa.String(300), primary_key=True),
    sa.Column("email", sa.Text(), nullable=True),
    sa.Column("first_seen", sa.Float(), nullable=False),
    sa.Column("own_created", sa.Float(), nullable=True),
    sa.Column("created", sa.Float(), nullable=True),
    sa.Column("assigned", sa.Float(), nullable=True),
    sa.Column("written", sa.Float(), nullable=True),
    sa.Column("due", sa.Float(), nullable=True),
    sa.Column("touched", sa.Float(), nullable=True),
    sa.Column("owner_id", sa.String(100), nullable=True),
    sa.Column("stage", sa.String(16), nullable=True),
    sa.Column("mql", sa.Float(), nullable=True),
    sa.Column("sal", sa.Float(), nullable=True),
    sa.Column("sql", sa.Float(), nullable=True),
    sa.Column("state_at", sa.Float(), nullable=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Index(None, "email"),
)
"""Per lead, what the rollups counted: first seen, creation (own and linked by e-mail), assignment, write-back, SLA
and lifecycle inputs, as epoch seconds (null when unknown), and the run that last changed them."""

FACT_COLUMNS: tuple[str, ...] = tuple(c.name for c in kpi_lead_facts.columns)
