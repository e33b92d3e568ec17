"""The push-intake inbox (`intake_inbox`): notifications written before they are acknowledged, claimed by a processor
in batches, then completed or failed — `InboxMixin` of `StateStore`.

`leadflow intake serve` records each request's notifications in one transaction before it answers, so a crash after
the 2xx loses nothing and a crash before it makes the sender retry; recording the same notification again (same
system, record id and modstamp) is a no-op. A processor claims rows (`claim_notifications`), works them, and marks
them `done` or `failed` (or back to `pending` to retry). A claim older than `stale_after` — its worker was killed —
is claimed again: that is the replay after a `kill -9`. On PostgreSQL claims take `FOR UPDATE SKIP LOCKED`, so
processors on several machines never claim the same row; on SQLite the single-writer transaction serialises them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leadflow.store.engine import StoreBase
from leadflow.store.inbox_tables import (
    INBOX_COLUMNS,
    INBOX_STATES,
    INBOX_SYSTEMS,
    MAX_MODSTAMP,
    MAX_RECORD_ID,
    intake_inbox,
)
from leadflow.store.values import CACHE_CHUNK_KEYS, _jsonable, _now, _require_aware

__all__ = ["INBOX_COLUMNS", "INBOX_STATES", "INBOX_SYSTEMS", "InboxMixin", "InboxNotification"]

MAX_ERROR_CHARS: Final[int] = 2_000
"""A failure's message is kept up to this length: the inbox is not a log."""


@dataclass(frozen=True)
class InboxNotification:
    """One notification as the inbox records it: `system` (salesforce, hubspot, marketo, web), `object` (Lead,
    Contact, contact, lead), the record's id, its modification stamp as the notification gave it, and what the
    notification carried (`payload`: the record is fetched by id later, never trusted from this alone)."""

    system: str
    object: str
    record_id: str
    modstamp: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.system, self.record_id, self.modstamp


def _checked(row: InboxNotification | Mapping[str, Any], position: int) -> dict[str, Any]:
    if isinstance(row, InboxNotification):
        values: Mapping[str, Any] = {"system": row.system, "object": row.object, "record_id": row.record_id,
                                     "modstamp": row.modstamp, "payload": row.payload}
    else:
        values = row
    out: dict[str, Any] = {}
    for name, limit in (("system", 16), ("object", 40), ("record_id", MAX_RECORD_ID), ("modstamp", MAX_MODSTAMP)):
        value = values.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"inbox notifications: row {position} has no `{name}`")
        if len(value) > limit:
            raise ValueError(f"inbox notifications: row {position}: `{name}` is longer than {limit} characters")
        out[name] = value
    if out["system"] not in INBOX_SYSTEMS:
        raise ValueError(f"inbox notifications: row {position}: system {out['system']!r} is not one of "
                         f"{', '.join(INBOX_SYSTEMS)}")
    payload = values.get("payload") or {}
    if not isinstance(payload, Mapping):
        raise ValueError(f"inbox notifications: row {position}: `payload` is a {type(payload).__name__}, not a dict")
    out["payload"] = _jsonable(payload)
    return out


def _seconds(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


class InboxMixin(StoreBase):
    """Record, claim, complete and fail pushed notifications (`intake_inbox`)."""

    def record_notifications(
        self, rows: Iterable[InboxNotification | Mapping[str, Any]], *, now: datetime | None = None
    ) -> tuple[int, int]:
        """Record notifications in one transaction (INSERT … ON CONFLICT DO NOTHING); returns (new, duplicate).

        A row already in the inbox — whatever its state — or repeated within `rows` counts as a duplicate and
        changes nothing. Raises ValueError (nothing recorded) for a row without system, object, record_id or
        modstamp, or with values too long for the table."""
        received = now or _now()
        _require_aware(received, "now")
        unique: dict[tuple[str, str, str], dict[str, Any]] = {}
        total = 0
        for position, row in enumerate(rows):
            checked = _checked(row, position)
            total += 1
            unique.setdefault((checked["system"], checked["record_id"], checked["modstamp"]), checked)
        if not unique:
            return 0, 0
        values = [row | {"received_at": received, "state": "pending", "attempts": 0} for row in unique.values()]
        t = intake_inbox
        with self._writing() as conn:
            dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = dialect_insert(t).on_conflict_do_nothing(
                index_elements=[t.c.system, t.c.record_id, t.c.modstamp]).returning(t.c.id)
            new = len(conn.execute(statement, values).all())
        return new, total - new

    def claim_notifications(
        self, worker: str, limit: int, stale_after: timedelta | float, *, now: datetime | None = None,
        systems: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Claim up to `limit` rows for `worker`, oldest first: pending ones, and ones claimed longer than
        `stale_after` (a timedelta or seconds) ago by a worker that never finished them (killed: the replay). Each
        claim counts one attempt. Returns the claimed rows (`INBOX_COLUMNS`, `payload` as dicts), by id."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if not worker:
            raise ValueError("worker must name the claiming process")
        moment = now or _now()
        _require_aware(moment, "now")
        t = intake_inbox
        claimable = sa.or_(t.c.state == "pending",
                           sa.and_(t.c.state == "claimed", t.c.claimed_at < moment - _seconds(stale_after)))
        query = sa.select(t.c.id).where(claimable).order_by(t.c.id).limit(limit)
        if systems is not None:
            query = query.where(t.c.system.in_(list(systems)))
        with self._writing() as conn:
            if conn.dialect.name == "postgresql":
                # rows another processor is claiming right now are skipped, not waited for
                query = query.with_for_update(skip_locked=True)
            ids = [row_id for (row_id,) in conn.execute(query)]
            if ids:
                conn.execute(t.update().where(t.c.id.in_(ids), claimable).values(
                    state="claimed", claimed_by=worker, claimed_at=moment, attempts=t.c.attempts + 1))
                rows = conn.execute(sa.select(t).where(t.c.id.in_(ids)).order_by(t.c.id)).all()
            else:
                rows = []
        return pd.DataFrame.from_records(rows, columns=list(INBOX_COLUMNS))

    def complete_notifications(self, ids: Sequence[int], worker: str) -> int:
        """Mark `worker`'s claimed rows `done`; returns how many. A row claimed since by another worker (this one
        stalled past `stale_after`) is left to that worker and not counted."""
        return self._finish(ids, worker, state="done", error=None, release=False)

    def fail_notifications(self, ids: Sequence[int], worker: str, error: str, *, retry: bool) -> int:
        """Record why `worker`'s claimed rows failed: back to `pending` for another attempt when `retry`, else
        `failed` for good. Returns how many rows changed (only rows this worker still holds)."""
        text = str(error)[:MAX_ERROR_CHARS]
        return self._finish(ids, worker, state="pending" if retry else "failed", error=text, release=retry)

    def _finish(self, ids: Sequence[int], worker: str, *, state: str, error: str | None, release: bool) -> int:
        wanted = [int(i) for i in ids]
        if not wanted:
            return 0
        t = intake_inbox
        values: dict[str, Any] = {"state": state, "error": error}
        if release:
            values |= {"claimed_by": None, "claimed_at": None}
        changed = 0
        with self._writing() as conn:
            for start in range(0, len(wanted), CACHE_CHUNK_KEYS):
                changed += conn.execute(t.update().where(
                    t.c.id.in_(wanted[start : start + CACHE_CHUNK_KEYS]), t.c.state == "claimed",
                    t.c.claimed_by == worker).values(**values)).rowcount
        return changed

    def release_dead_claims(self, dead: Callable[[str], bool]) -> int:
        """Put back to pending the claimed rows of every worker `dead` says is gone (a process on this host that no
        longer runs), so a restart replays them at once instead of after the claim timeout; the claim already
        counted its attempt. Returns how many rows went back."""
        t = intake_inbox
        with self._writing() as conn:
            holders = [w for (w,) in conn.execute(sa.select(t.c.claimed_by).where(t.c.state == "claimed").distinct())
                       if w and dead(w)]
            if not holders:
                return 0
            return conn.execute(t.update().where(t.c.state == "claimed", t.c.claimed_by.in_(holders)).values(
                state="pending", claimed_by=None, claimed_at=None)).rowcount

    def prune_inbox(self, before: datetime, *, chunk_rows: int = 50_000, dry_run: bool = False) -> int:
        """Delete the notifications settled (`done` or `failed`) and received before `before`, `chunk_rows` per
        transaction; pending and claimed ones are never deleted. Returns the count (only counts when `dry_run`)."""
        _require_aware(before, "before")
        t = intake_inbox
        settled = sa.and_(t.c.state.in_(["done", "failed"]), t.c.received_at < before)
        if dry_run:
            with self._engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.count()).select_from(t).where(settled)).scalar_one())
        deleted = 0
        while True:
            chunk = sa.select(t.c.id).where(settled).limit(chunk_rows).scalar_subquery()
            with self._writing() as conn:
                done = conn.execute(t.delete().where(t.c.id.in_(chunk))).rowcount or 0
            deleted += done
            if done < chunk_rows:
                return deleted

    def inbox_counts(self, system: str | None = None) -> dict[str, int]:
        """Rows per state (every state, 0 when none), of one system or all."""
        t = intake_inbox
        query = sa.select(t.c.state, sa.func.count()).group_by(t.c.state)
        if system is not None:
            query = query.where(t.c.system == system)
        with self._engine.connect() as conn:
            found = {state: int(n) for state, n in conn.execute(query)}
        return {state: found.get(state, 0) for state in INBOX_STATES}

    def inbox_notifications(self, *, system: str | None = None, state: str | None = None) -> pd.DataFrame:
        """The inbox's rows (`INBOX_COLUMNS`), optionally of one system and/or state, by id."""
        t = intake_inbox
        query = sa.select(t).order_by(t.c.id)
        if system is not None:
            query = query.where(t.c.system == system)
        if state is not None:
            query = query.where(t.c.state == state)
        return self._rows(query, list(INBOX_COLUMNS))
