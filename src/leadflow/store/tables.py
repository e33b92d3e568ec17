"""The state store's tables as SQLAlchemy Core objects, portable across SQLite and PostgreSQL.

The migrations under `migrations/versions/` own the DDL; these definitions are what the code queries with and what
`alembic revision --autogenerate` compares against, and a test checks that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

VERSION_TABLE: Final[str] = "leadflow_schema_version"
"""Alembic's version table; not `alembic_version`, so the store can share a database with Prefect or another app."""

RUN_STATUSES: Final[tuple[str, ...]] = ("running", "completed", "failed", "crashed")
FINAL_STATUSES: Final[tuple[str, ...]] = ("completed", "failed")
"""What a run sets itself when it ends; `crashed` is set by another run that found its process dead."""

NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no such type, so the value is stored as naive UTC text, which also
    keeps lexical order equal to time order there. Naive datetimes are refused rather than guessed at.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the state store only takes timezone-aware datetimes")
        # pd.Timestamp is a datetime subclass; a plain datetime keeps drivers from guessing about nanoseconds
        to_py = getattr(value, "to_pydatetime", None)
        utc = (to_py() if to_py is not None else value).astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# BIGINT primary keys are not rowid aliases in SQLite, so they would not autoincrement there.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("flow", sa.String(200), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON(), nullable=False),
    sa.Column("stats", sa.JSON(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    # host:pid of the process running it, so a later run can tell a dead run from a live one (migration 0009)
    sa.Column("holder", sa.String(200), nullable=True),
    sa.CheckConstraint("status IN ('running', 'completed', 'failed', 'crashed')", name="status"),
    sa.Index(None, "started_at"),
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("value", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    # nullable: a row refused while reading may have neither a lead_id nor an email to key it by
    sa.Column("lead_key", sa.Text(), nullable=True),
    sa.Column("stage", sa.String(100), nullable=False),
    sa.Column("expectation", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("row", sa.JSON(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index(None, "run_id"),
    sa.Index(None, "lead_key"),
)

lead_events = sa.Table(
    "lead_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("lead_key", sa.Text(), nullable=False),
    sa.Column("stage", sa.String(100), nullable=False),
    sa.Column("column_name", sa.String(100), nullable=False),
    sa.Column("old_value", sa.Text(), nullable=True),
    sa.Column("new_value", sa.Text(), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index(None, "lead_key", "at"),
    sa.Index(None, "run_id"),
    # `leadflow trace <email>`: which leads had this address (migration 0007)
    sa.Index("ix_lead_events_email_new", "new_value", sqlite_where=sa.text(
        "column_name = 'email' AND length(new_value) <= 320"), postgresql_where=sa.text(
        "column_name = 'email' AND length(new_value) <= 320")),
    sa.Index("ix_lead_events_email_old", "old_value", sqlite_where=sa.text(
        "column_name = 'email' AND length(old_value) <= 320"), postgresql_where=sa.text(
        "column_name = 'email' AND length(old_value) <= 320")),
)

audit_chunks = sa.Table(
    "audit_chunks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("stage", sa.String(100), nullable=False),
    sa.Column("chunk", sa.Integer(), nullable=False),
    sa.Column("rows", sa.Integer(), nullable=False),
    # zstd-compressed Arrow IPC: lead_key, then new:<column> and old:<column> for each column the stage writes
    sa.Column("payload", sa.LargeBinary(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index(None, "run_id", "chunk"),
    sa.Index(None, "at"),
)
"""Each stage's before/after values per chunk of leads (`leadflow.audit.changes`): the bulk of the audit trail."""

lead_runs = sa.Table(
    "lead_runs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("lead_key", sa.Text(), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("chunk", sa.Integer(), nullable=False),
    sa.Column("email", sa.Text(), nullable=True),  # lower-cased; not kept when longer than an index entry may be
    sa.Column("created_at", sa.Text(), nullable=True),
    sa.Column("lead_source", sa.Text(), nullable=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index(None, "lead_key"),
    # equality look-ups only: on PostgreSQL a hash index takes a million-lead run's e-mails ~1.5 s faster than a
    # B-tree, and BRIN suits `at`, which only grows; SQLite has neither and keeps B-trees
    sa.Index(None, "email", postgresql_using="hash"),
    sa.Index(None, "at", postgresql_using="brin"),
)
"""One row per lead per run that staged it: when, in which audit chunk, and the e-mail, creation time and lead
source it had after standardizing (what trace look-ups and speed-to-lead read)."""

LEAD_RUN_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "run_id", "chunk", "email", "created_at", "lead_source", "at")
"""Columns of `lead_runs` that `StateStore.add_changes` writes, in the order its bulk paths write them."""

EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "run_id",
    "lead_key",
    "stage",
    "column_name",
    "old_value",
    "new_value",
    "at",
)
"""Columns `StateStore.add_events` takes, in the order the bulk paths write them."""

DEAD_LETTER_STATUSES: Final[tuple[str, ...]] = ("pending", "resolved", "permanent")

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(50), nullable=False),
    sa.Column("object", sa.String(80), nullable=False),
    sa.Column("record_id", sa.String(100), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("error_code", sa.String(100), nullable=False),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Column("retryable", sa.Boolean(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("first_run_id", sa.String(36), nullable=False),
    sa.Column("last_run_id", sa.String(36), nullable=False),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
    sa.Column("last_seen", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'resolved', 'permanent')", name="status"),
    sa.UniqueConstraint("system", "object", "record_id"),
    sa.Index(None, "system", "status"),
)

CACHE_STATUSES: Final[tuple[str, ...]] = ("ok", "not_found")

enrichment_cache = sa.Table(
    "enrichment_cache",
    metadata,
    sa.Column("provider", sa.String(50), primary_key=True),
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    # {employees, annual_revenue, industry} for `ok`; {} for `not_found`
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("fetched_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint("status IN ('ok', 'not_found')", name="status"),
)
"""Firmographics provider answers per (provider, domain); errors are never cached, so they are retried next run."""


lead_state = sa.Table(
    "lead_state",
    metadata,
    sa.Column("lead_key", sa.String(300), primary_key=True),
    sa.Column("lifecycle_stage", sa.String(16), nullable=False),
    sa.Column("lifecycle_reason", sa.Text(), nullable=True),
    sa.Column("mql_at", UTCDateTime(), nullable=True),
    sa.Column("sal_at", UTCDateTime(), nullable=True),
    sa.Column("sql_at", UTCDateTime(), nullable=True),
    sa.Column("recycled_at", UTCDateTime(), nullable=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
"""Each lead's lifecycle stage and stamps as leadflow last decided them (the lifecycle stage's memory)."""


routing_state = sa.Table(
    "routing_state",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
"""Round-robin state (`leadflow.routing.RoutingState` as JSON); read and written under a lock by each routing run."""

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("lead_key", sa.String(300), primary_key=True),
    sa.Column("owner_id", sa.String(100), nullable=True),
    sa.Column("routing_rule", sa.String(100), nullable=False),
    sa.Column("routing_reason", sa.Text(), nullable=True),
    sa.Column("assigned_at", UTCDateTime(), nullable=False),
    sa.Column("sla_due_at", UTCDateTime(), nullable=True),
    sa.Column("first_touch_at", UTCDateTime(), nullable=True),
    sa.Column("breached_at", UTCDateTime(), nullable=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    # the lead's routing-relevant fields when it was assigned: `leadflow routing simulate --since` re-routes these
    sa.Column("inputs", sa.JSON(), nullable=True),
    # when the owner reached the lead's system; until then the CRM's owner is the stale one and ours wins
    sa.Column("written_at", UTCDateTime(), nullable=True),
    # where first_touch_at came from: "task", "event", "status_history" (the CRM's record) or "pull" (the time a pull
    # saw the lead worked: the fallback); migration 0018
    sa.Column("first_touch_source", sa.String(20), nullable=True),
    sa.Index("ix_assignments_sla_due_at", "sla_due_at"),
)
"""Each lead's current assignment and its first-touch SLA (what `leadflow sla check` watches)."""

backfill_chunks = sa.Table(
    "backfill_chunks",
    metadata,
    sa.Column("backfill_key", sa.String(64), primary_key=True),
    sa.Column("chunk_start", UTCDateTime(), primary_key=True),
    sa.Column("chunk_end", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("counts", sa.JSON(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name="status"),
)
"""One row per chunk of a backfill (key: a hash of its range, sources and chunk size); `completed` chunks are
skipped when the same backfill runs again."""

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("token", sa.String(36), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=True),
    sa.Column("flow", sa.String(200), nullable=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)
"""Who writes to a system right now (`writer:<system>`): one row per held lease, renewed by a heartbeat, taken over
once expired or once its process is gone (`leadflow.store.leases`)."""

write_receipts = sa.Table(
    "write_receipts",
    metadata,
    sa.Column("lead_key", sa.String(300), primary_key=True),
    # a hash of the lead as its system holds it after leadflow last processed (and wrote) it; null: process it
    # whenever it is pulled (its write failed, or it was quarantined)
    sa.Column("receipt", sa.BigInteger(), nullable=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)
"""One receipt per lead (`leadflow.sync.receipts`): a sync skips a pulled lead whose values hash to its receipt, the
echo of leadflow's own write."""
