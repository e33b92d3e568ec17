"""The push-intake inbox's table (migration 0013), written by `leadflow intake serve` and drained by its processor.

One row per notification a CRM, MAP or web form pushed (`leadflow.intake`): which system and record it names, the
record's modification stamp as the notification gave it (or, for a web lead, a hash of the lead), what the
notification carried, and where it is in its processing (`pending` → `claimed` → `done` / `failed`). Unique on
(system, record_id, modstamp): the same notification delivered twice — a sender's retry — is one row.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from leadflow.store.tables import BigId, UTCDateTime, metadata

INBOX_STATES: Final[tuple[str, ...]] = ("pending", "claimed", "done", "failed")
INBOX_SYSTEMS: Final[tuple[str, ...]] = ("salesforce", "hubspot", "marketo", "web")
MAX_RECORD_ID: Final[int] = 100
MAX_MODSTAMP: Final[int] = 100

intake_inbox = sa.Table(
    "intake_inbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(16), nullable=False),
    sa.Column("object", sa.String(40), nullable=False),
    sa.Column("record_id", sa.String(MAX_RECORD_ID), nullable=False),
    # the record's LastModifiedDate/SystemModstamp, HubSpot's occurredAt, Marketo's updatedAt, a web lead's hash
    sa.Column("modstamp", sa.String(MAX_MODSTAMP), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'claimed', 'done', 'failed')", name="state"),
    sa.UniqueConstraint("system", "record_id", "modstamp"),
    sa.Index(None, "state", "id"),
)
"""The inbox: `leadflow.store.inbox.InboxMixin` records, claims, completes and fails its rows."""

INBOX_COLUMNS: Final[tuple[str, ...]] = tuple(c.name for c in intake_inbox.columns)
