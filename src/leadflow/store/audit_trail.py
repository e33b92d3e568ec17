"""The audit trail as read back, and erased or pruned: events (point events plus stage changes diffed from audit
chunks), lead runs, trace look-ups by email or id, a lead's journey, `forget_lead` and retention: `AuditTrailMixin`
of `StateStore`. The bulk writes (`add_events`, `add_changes`) live in `leadflow.store.store`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadflow.store.engine import StoreBase
from leadflow.store.tables import (
    EVENT_COLUMNS,
    assignments,
    audit_chunks,
    dead_letters,
    lead_events,
    lead_runs,
    lead_state,
    quarantine,
    runs,
    write_receipts,
)
from leadflow.store.escalation_tables import escalation_steps
from leadflow.store.first_touch_tables import lead_first_touches
from leadflow.store.inbox_tables import intake_inbox
from leadflow.store.kpi_tables import kpi_lead_facts
from leadflow.store.mirror_tables import mirror_records, mirror_snapshots
from leadflow.store.values import _json_dumps, _jsonable, _now, _require_aware


class AuditTrailMixin(StoreBase):
    """Audit events and stage changes, trace look-ups, erasure of one person and pruning by age."""

    def events(self, lead_key: str | None = None, run_id: str | None = None, *, stage_changes: bool = True
               ) -> pd.DataFrame:
        """Audit events, optionally for one lead and/or one run, ordered by `at`: the point events of `lead_events`
        (write-backs, SLA breaches, erasures) and, unless not `stage_changes`, each stage's changes diffed from
        `audit_chunks` (those have no `id`)."""
        query = sa.select(lead_events).order_by(lead_events.c.at, lead_events.c.id)
        if lead_key is not None:
            query = query.where(lead_events.c.lead_key == lead_key)
        if run_id is not None:
            query = query.where(lead_events.c.run_id == run_id)
        columns = [c.name for c in lead_events.columns]
        with self._engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            if stage_changes:
                rows += self._chunk_events(conn, [lead_key] if lead_key is not None else None, run_id)
        rows.sort(key=lambda r: r["at"])
        frame = pd.DataFrame.from_records(rows, columns=columns)
        for column in EVENT_COLUMNS[:-1]:
            frame[column] = frame[column].astype("string")
        frame["id"] = frame["id"].astype("Int64")
        frame["at"] = pd.to_datetime(frame["at"], utc=True).astype("datetime64[us, UTC]")
        return frame

    def _chunk_events(self, conn: Connection, keys: list[str] | None, run_id: str | None) -> list[dict[str, Any]]:
        """Stage changes diffed from the audit chunks holding `keys` (found through `lead_runs`) and/or of `run_id`."""
        from leadflow.audit.changes import change_events

        query = sa.select(audit_chunks.c.run_id, audit_chunks.c.stage, audit_chunks.c.at, audit_chunks.c.payload)
        if keys is not None:
            if not keys:
                return []
            places = sa.select(lead_runs.c.run_id, lead_runs.c.chunk).where(lead_runs.c.lead_key.in_(keys))
            if run_id is not None:
                places = places.where(lead_runs.c.run_id == run_id)
            ids = _chunk_ids(conn, {(r, c) for r, c in conn.execute(places)})
            if not ids:
                return []
            query = query.where(audit_chunks.c.id.in_(ids))
        elif run_id is not None:
            query = query.where(audit_chunks.c.run_id == run_id)
        out: list[dict[str, Any]] = []
        for row in conn.execute(query.order_by(audit_chunks.c.at, audit_chunks.c.id)):
            at = row.at
            changes = change_events(row.payload, keys)
            for key, column, old, new in zip(changes["lead_key"], changes["column_name"], changes["old_value"],
                                             changes["new_value"], strict=True):
                out.append({"id": None, "run_id": row.run_id, "lead_key": key, "stage": row.stage,
                            "column_name": column, "old_value": old, "new_value": new, "at": at})
        return out

    def lead_runs(self, lead_keys: list[str] | None = None, *, since: datetime | None = None) -> pd.DataFrame:
        """Rows of `lead_runs` (all, of `lead_keys`, or staged at or after `since`), `at` as UTC timestamps."""
        columns = [c.name for c in lead_runs.columns]
        query = sa.select(lead_runs).order_by(lead_runs.c.at, lead_runs.c.id)
        if lead_keys is not None:
            query = query.where(lead_runs.c.lead_key.in_(lead_keys))
        if since is not None:
            query = query.where(lead_runs.c.at >= since)
        frame = self._rows(query, columns)
        frame["at"] = pd.to_datetime(frame["at"], utc=True)
        return frame

    # -- trace, erasure, retention ---------------------------------------------------------------------------------------

    def keys_for_email(self, email: str) -> list[str]:
        """Every lead_key that mentions `email`: `email:<addr>` keys, keys whose audit events set or replaced the
        `email` column with it, and keys of quarantined rows and assignments whose row/inputs carry it."""
        values = _email_variants(email)
        if not values:
            return []
        found: dict[str, None] = {}
        by_email = [f"email:{v}" for v in values]
        with self._engine.connect() as conn:
            for table in (lead_runs, lead_events, quarantine, assignments, lead_state):
                query = sa.select(table.c.lead_key).where(table.c.lead_key.in_(by_email)).distinct()
                found.update((row[0], None) for row in conn.execute(query))
            query = sa.select(lead_runs.c.lead_key).where(lead_runs.c.email.in_(values)).distinct()
            found.update((row[0], None) for row in conn.execute(query))
            # the partial indexes of migration 0007: the predicate must be literal for SQLite's planner to use them
            for column in ("new_value", "old_value"):
                query = sa.select(lead_events.c.lead_key).where(
                    sa.text(f"column_name = 'email' AND length({column}) <= 320"),
                    lead_events.c[column].in_([v for v in values if len(v) <= 320])).distinct()
                found.update((row[0], None) for row in conn.execute(query))
            query = sa.select(quarantine.c.lead_key).where(
                quarantine.c.lead_key.is_not(None), _json_text(quarantine.c.row, "email").in_(values)).distinct()
            found.update((row[0], None) for row in conn.execute(query))
            query = sa.select(assignments.c.lead_key).where(
                assignments.c.inputs.is_not(None), _json_text(assignments.c.inputs, "email").in_(values))
            found.update((row[0], None) for row in conn.execute(query))
        return sorted(found)

    def keys_for_id(self, lead_id: str) -> list[str]:
        """Every `<source>:<lead_id>` key in the audit trail, quarantine, assignments or lead state.

        Sources are enumerated with index seeks (a loose index scan over the lead_key index), so this never scans
        the events; it relies on `:` sorting before `;` in the database's collation, and falls back to a scan if not.
        """
        lead_id = lead_id.strip()
        if not lead_id:
            return []
        found: dict[str, None] = {}
        with self._engine.connect() as conn:
            for table in (lead_runs, lead_events, quarantine, assignments, lead_state):
                sources = _key_prefixes(conn, table.c.lead_key)
                if sources is None:
                    query = sa.select(table.c.lead_key).where(table.c.lead_key.like(f"%:{_like_escape(lead_id)}",
                                                                                    escape="\\")).distinct()
                else:
                    wanted = [f"{s}:{lead_id}" for s in sources if s not in ("email", "erased")]
                    if not wanted:
                        continue
                    query = sa.select(table.c.lead_key).where(table.c.lead_key.in_(wanted)).distinct()
                found.update((row[0], None) for row in conn.execute(query) if row[0] is not None)
        return sorted(found)

    def lead_journey(self, lead_keys: list[str], record_ids: list[str], email: str | None = None) -> dict[str, Any]:
        """Everything the store holds on these leads: `events`, `quarantine` (also rows whose `email` is `email`),
        `assignments`, `lead_state`, `dead_letters` (by record id) and the `runs` they belong to; lists of dicts."""
        keys = list(dict.fromkeys(k for k in lead_keys if k))
        ids = list(dict.fromkeys(r for r in record_ids if r))
        out: dict[str, Any] = {}
        with self._engine.connect() as conn:
            out["events"] = _mappings(conn, sa.select(lead_events).where(lead_events.c.lead_key.in_(keys))
                                      .order_by(lead_events.c.at, lead_events.c.id)) if keys else []
            out["events"] = sorted(out["events"] + self._chunk_events(conn, keys, None), key=lambda e: e["at"])
            out["lead_runs"] = _mappings(conn, sa.select(lead_runs).where(lead_runs.c.lead_key.in_(keys))
                                         .order_by(lead_runs.c.at, lead_runs.c.id)) if keys else []
            out["quarantine"] = _mappings(conn, sa.select(quarantine).where(_quarantine_match(keys, email))
                                          .order_by(quarantine.c.at, quarantine.c.id))
            out["assignments"] = _mappings(conn, sa.select(assignments).where(
                assignments.c.lead_key.in_(keys))) if keys else []
            out["lead_state"] = _mappings(conn, sa.select(lead_state).where(
                lead_state.c.lead_key.in_(keys))) if keys else []
            out["dead_letters"] = _mappings(conn, sa.select(dead_letters).where(
                dead_letters.c.record_id.in_(ids)).order_by(dead_letters.c.first_seen)) if ids else []
            run_ids = sorted({r["run_id"] for part in ("events", "lead_runs", "quarantine", "assignments", "lead_state")
                              for r in out[part]} | {r[c] for r in out["dead_letters"]
                                                     for c in ("first_run_id", "last_run_id")})
            out["runs"] = _mappings(conn, sa.select(runs).where(runs.c.run_id.in_(run_ids))) if run_ids else []
        return out

    def forget_lead(
        self, subject: str, lead_keys: list[str], record_ids: list[str], email: str | None = None, *,
        dry_run: bool = False, retract_kpis: Callable[[Connection, Any], Any] | None = None,
    ) -> dict[str, Any]:
        """Erase one person: their audit events, quarantine rows, dead letters, assignments, lead state, write
        receipts, KPI facts, CRM first touches, escalation steps, pushed notifications and the CRM mirror's copy of
        their records.

        Runs (and their stats) and the enrichment cache (company domains) are left alone. Unless `dry_run`, one
        anonymous tombstone event records the erasure in a new `forget` run: lead_key `erased:<sha256(subject)>`,
        stage `forget`, column `erased`, new_value the number of rows removed, old_value a JSON object of the events
        and quarantine rows removed per run (so each run's audit counts stay explainable). `retract_kpis(conn,
        where)` is called before the KPI facts matching `where` are deleted, in the same transaction, to take them out
        of the hourly rollups (`leadflow.audit.kpi_rollups.retract_lead_facts`, which the store cannot import). One
        transaction.
        Returns {"tables": {table: rows}, "per_run": {run_id: rows}, "removed": total, "tombstone": lead_key}.
        """
        keys = list(dict.fromkeys(k for k in lead_keys if k))
        ids = list(dict.fromkeys(r for r in record_ids if r))
        digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()
        tables: dict[str, int] = {}
        per_run: dict[str, int] = {}
        facts_where = sa.or_(kpi_lead_facts.c.lead_key.in_(keys) if keys else sa.false(),
                             kpi_lead_facts.c.email == email.strip().lower() if email else sa.false())
        plan: list[tuple[sa.Table, Any]] = [
            (lead_events, lead_events.c.lead_key.in_(keys) if keys else sa.false()),
            (quarantine, _quarantine_match(keys, email)),
            (dead_letters, dead_letters.c.record_id.in_(ids) if ids else sa.false()),
            (assignments, assignments.c.lead_key.in_(keys) if keys else sa.false()),
            (lead_state, lead_state.c.lead_key.in_(keys) if keys else sa.false()),
            (write_receipts, write_receipts.c.lead_key.in_(keys) if keys else sa.false()),
            # KPI facts hold the address and timeline; `retract_kpis` takes them out of the hourly rollups first
            (kpi_lead_facts, facts_where),
            (lead_first_touches, lead_first_touches.c.lead_key.in_(keys) if keys else sa.false()),
            (escalation_steps, escalation_steps.c.lead_key.in_(keys) if keys else sa.false()),
            # pushed notifications carry the record's id and, for web forms and Marketo, the address itself
            (intake_inbox, _inbox_match(keys, email)),
            # The CRM mirror's copy of them: a refresh brings it back only if the CRM still holds and changes it.
            (mirror_records, sa.or_(mirror_records.c.record_id.in_(ids) if ids else sa.false(),
                                    mirror_records.c.email == email.strip().lower() if email else sa.false())),
        ]
        with self._writing() as conn:
            if retract_kpis is not None and not dry_run:
                retract_kpis(conn, facts_where)
            if keys:
                chunk_rows = self._forget_chunks(conn, keys, dry_run=dry_run)
                tables["audit_chunks"] = chunk_rows
                runs_where = lead_runs.c.lead_key.in_(keys)
                for run_id, count in conn.execute(sa.select(lead_runs.c.run_id, sa.func.count()).where(runs_where)
                                                  .group_by(lead_runs.c.run_id)):
                    per_run[run_id] = per_run.get(run_id, 0) + int(count)
                tables["lead_runs"] = int(conn.execute(sa.select(sa.func.count()).select_from(lead_runs)
                                                       .where(runs_where)).scalar_one())
                if not dry_run:
                    conn.execute(lead_runs.delete().where(runs_where))
            for table, where in plan:
                if "run_id" in table.c and table.name in ("lead_events", "quarantine"):
                    query = sa.select(table.c.run_id, sa.func.count()).where(where).group_by(table.c.run_id)
                    for run_id, count in conn.execute(query):
                        per_run[run_id] = per_run.get(run_id, 0) + int(count)
                count = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
                tables[table.name] = int(count)
                if not dry_run and count:
                    conn.execute(table.delete().where(where))
            if tables.get("mirror_records") and not dry_run:
                # The mirror's snapshots hold the same rows: the next load reads the tables and snapshots again.
                conn.execute(mirror_snapshots.delete().where(mirror_snapshots.c.object.in_(["Contact", "Lead"])))
            removed = sum(tables.values())
            tombstone = f"erased:{digest}"
            if not dry_run:
                now = _now()
                run_id = str(uuid.uuid4())
                conn.execute(runs.insert().values(
                    run_id=run_id, flow="forget", started_at=now, finished_at=now, status="completed",
                    params={"subject": tombstone}, stats=_jsonable({"removed": removed, "tables": tables})))
                conn.execute(lead_events.insert().values(
                    run_id=run_id, lead_key=tombstone, stage="forget", column_name="erased",
                    old_value=_json_dumps({"per_run": per_run, "tables": tables}), new_value=str(removed), at=now))
        return {"tables": tables, "per_run": per_run, "removed": removed, "tombstone": tombstone}

    def _forget_chunks(self, conn: Connection, keys: list[str], *, dry_run: bool) -> int:
        """Rewrite the audit chunks holding `keys` without their rows; returns the rows removed."""
        from leadflow.audit.changes import repack

        ids = _chunk_ids(conn, {(r, c) for r, c in conn.execute(
            sa.select(lead_runs.c.run_id, lead_runs.c.chunk).where(lead_runs.c.lead_key.in_(keys)))})
        removed = 0
        for start in range(0, len(ids), 500):
            query = sa.select(audit_chunks.c.id, audit_chunks.c.rows, audit_chunks.c.payload).where(
                audit_chunks.c.id.in_(ids[start : start + 500]))
            for chunk_id, rows, payload in conn.execute(query).all():
                kept, dropped = repack(payload, keys)
                removed += dropped
                if dry_run or not dropped:
                    continue
                if kept is None:
                    conn.execute(audit_chunks.delete().where(audit_chunks.c.id == chunk_id))
                else:
                    conn.execute(audit_chunks.update().where(audit_chunks.c.id == chunk_id)
                                 .values(payload=kept, rows=rows - dropped))
        return removed

    def prune_events(self, before: datetime, *, chunk_rows: int = 50_000) -> int:
        """Delete audit events older than `before` (timezone-aware), `chunk_rows` per transaction; returns the count."""
        return self._prune(lead_events, before, chunk_rows)

    def prune_changes(self, before: datetime, *, chunk_rows: int = 50_000) -> dict[str, int]:
        """Delete audit chunks and lead runs older than `before`; returns the rows deleted per table."""
        return {"audit_chunks": self._prune(audit_chunks, before, max(1, chunk_rows // 1_000)),
                "lead_runs": self._prune(lead_runs, before, chunk_rows)}

    def prune_quarantine(self, before: datetime, *, chunk_rows: int = 50_000) -> int:
        """Delete quarantine rows older than `before`, `chunk_rows` per transaction; returns the count."""
        return self._prune(quarantine, before, chunk_rows)

    def count_older(self, before: datetime) -> dict[str, int]:
        """How many audit events and quarantine rows are older than `before` (what a prune would delete)."""
        _require_aware(before, "before")
        with self._engine.connect() as conn:
            return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.at < before))
                                .scalar_one()) for t in (lead_events, audit_chunks, lead_runs, quarantine)}

    def _prune(self, table: sa.Table, before: datetime, chunk_rows: int) -> int:
        _require_aware(before, "before")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be positive")
        deleted = 0
        while True:
            chunk = sa.select(table.c.id).where(table.c.at < before).limit(chunk_rows).scalar_subquery()
            with self._writing() as conn:
                done = conn.execute(table.delete().where(table.c.id.in_(chunk))).rowcount or 0
            deleted += done
            if done < chunk_rows:
                return deleted


def _inbox_match(keys: list[str], email: str | None) -> Any:
    """The pushed notifications of these leads: by (system, record id) of their `system:id` keys (a Marketo key's id
    may carry the mapping's prefix before the numeric lead id), or by the address the payload carries."""
    t = intake_inbox
    matches = []
    for key in keys:
        system, _, record = key.partition(":")
        if system in ("salesforce", "hubspot") and record:
            matches.append(sa.and_(t.c.system == system, t.c.record_id == record))
        elif system == "marketo" and record:
            digits = record[len(record.rstrip("0123456789")):]
            matches.append(sa.and_(t.c.system == system, t.c.record_id.in_(sorted({record, digits} - {""}))))
    if email:
        matches.append(sa.func.lower(t.c.payload["email"].as_string()) == email.strip().lower())
        matches.append(sa.func.lower(t.c.payload["Email"].as_string()) == email.strip().lower())
    return sa.or_(*matches) if matches else sa.false()


def _chunk_ids(conn: Connection, pairs: set[tuple[str, int]]) -> list[int]:
    """Ids of the audit chunks at these (run_id, chunk) places. Looked up by run_id on the (run_id, chunk) index
    and matched here: SQLite's planner does not take a row-value IN list to an index, and a scan of the table would
    read past every payload."""
    runs_wanted = sorted({run_id for run_id, _ in pairs})
    ids: list[int] = []
    for start in range(0, len(runs_wanted), 500):
        query = sa.select(audit_chunks.c.id, audit_chunks.c.run_id, audit_chunks.c.chunk).where(
            audit_chunks.c.run_id.in_(runs_wanted[start : start + 500]))
        ids += [chunk_id for chunk_id, run_id, chunk in conn.execute(query) if (run_id, chunk) in pairs]
    return sorted(ids)


# -- trace, erasure, retention helpers -------------------------------------------------------------------------------


def _email_variants(email: str) -> list[str]:
    raw = email.strip()
    return list(dict.fromkeys(v for v in (raw, raw.lower()) if v))


def _json_text(column: sa.ColumnElement[Any], key: str) -> sa.ColumnElement[Any]:
    """`column[key]` as text on both backends (json_extract on SQLite, ->> on PostgreSQL)."""
    return column[key].as_string()


def _quarantine_match(keys: list[str], email: str | None) -> sa.ColumnElement[bool]:
    clauses: list[sa.ColumnElement[bool]] = []
    if keys:
        clauses.append(quarantine.c.lead_key.in_(keys))
    if email:
        clauses.append(_json_text(quarantine.c.row, "email").in_(_email_variants(email)))
    return sa.or_(*clauses) if clauses else sa.false()


def _mappings(conn: Connection, query: sa.Select[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(query).mappings()]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _key_prefixes(conn: Connection, column: sa.Column[Any], limit: int = 1_000) -> list[str] | None:
    """The distinct `<prefix>` of `<prefix>:<rest>` keys by index seeks, or None when the collation defeats it."""
    prefixes: list[str] = []
    bound: str | None = None
    for _ in range(limit):
        query = sa.select(sa.func.min(column)).where(column.is_not(None))
        if bound is not None:
            query = query.where(column >= bound)
        key = conn.execute(query).scalar_one_or_none()
        if key is None:
            return prefixes
        prefix = key.split(":", 1)[0]
        if prefix in prefixes:
            return None
        prefixes.append(prefix)
        bound = prefix + ";"  # the first key after every `<prefix>:…` in a byte-order collation
    return None
