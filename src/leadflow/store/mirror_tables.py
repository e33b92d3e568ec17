"""The CRM mirror's tables (migration 0011): Accounts, Contacts and unconverted Leads, Users and lead queues as the
CRM holds them, with the keys matching and duplicate detection compare (computed once, when a record changes), and
per object the watermark and build of the mirror (`leadflow.store.mirror`, `leadflow.sync.mirror`).

Every row carries `seq`, the refresh of its object that last changed it, and `is_deleted` (a tombstone), so a process
that holds the mirror in memory catches up by reading only the rows changed since its copy.
"""

from __future__ import annotations

import sqlalchemy as sa

from leadflow.store.tables import UTCDateTime, metadata


def _tracking() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("modstamp", UTCDateTime(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
    ]


mirror_accounts = sa.Table(
    "mirror_accounts",
    metadata,
    sa.Column("account_id", sa.String(18), primary_key=True),
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
    sa.Index(None, "seq"),
)
"""Accounts: the enrich stage's ACCOUNT_COLUMNS plus BillingCountry and the matching keys."""

mirror_records = sa.Table(
    "mirror_records",
    metadata,
    sa.Column("record_id", sa.String(18), primary_key=True),
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
    sa.Index(None, "object", "seq"),
)
"""Contacts (company: their account's name, joined when read) and unconverted Leads: duplicate detection's
EXISTING_COLUMNS plus the keys it compares."""

mirror_owners = sa.Table(
    "mirror_owners",
    metadata,
    sa.Column("record_id", sa.String(18), primary_key=True),
    sa.Column("object", sa.String(16), nullable=False),
    sa.Column("owner_id", sa.String(18), nullable=True),
    sa.Column("is_active", sa.Boolean(), nullable=True),
    sa.Column("name", sa.Text(), nullable=True),
    *_tracking(),
    sa.Index(None, "object", "seq"),
)
"""Users (owner_id = Id, is_active, name = User.Name) and the queues that take Leads (QueueSobject rows; owner_id =
QueueId, name = the queue's Group.Name; migration 0020 added `name`)."""

mirror_objects = sa.Table(
    "mirror_objects",
    metadata,
    sa.Column("object", sa.String(40), primary_key=True),
    sa.Column("generation", sa.String(36), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("built_at", UTCDateTime(), nullable=False),
    sa.Column("refreshed_at", UTCDateTime(), nullable=False),
    sa.Column("watermark", UTCDateTime(), nullable=True),
    sa.Column("last_change_at", UTCDateTime(), nullable=True),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("keys", sa.String(32), nullable=True),
)
"""Per mirrored object: its build (a new `generation` per rebuild, `method` bulk/rest), the last refresh, the
watermark the next refresh reads from (minus the look-back), the newest SystemModstamp seen, live rows, and the
`seq` of its last change, and the fingerprint of the key definitions its rows' keys were computed with
(`leadflow.identity.prepared.keys_fingerprint`)."""

mirror_snapshots = sa.Table(
    "mirror_snapshots",
    metadata,
    sa.Column("object", sa.String(40), primary_key=True),
    sa.Column("generation", sa.String(36), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("rows", sa.BigInteger(), nullable=False),
    # zstd-compressed Arrow IPC of the object's live rows as of `seq`
    sa.Column("payload", sa.LargeBinary(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
)
"""Per object, its live rows at one `seq` in one blob: a fresh process reads it and then only the rows changed since
(reading hundreds of thousands of rows one by one through the driver takes seconds; the blob a fraction)."""

MIRROR_TABLES = (mirror_accounts, mirror_records, mirror_owners, mirror_objects, mirror_snapshots)
