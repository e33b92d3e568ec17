"""The set-based path of `leadflow.audit.kpi_rollups.record_run_kpis`: a run's leads read once in the database, and
its *fresh* leads — no facts yet, and an e-mail no other lead has — counted there, so a million new leads never travel
to Python.

One statement reads the run's staged leads (its `lead_runs` rows in scope, grouped by lead) into a temporary table
with a `fresh` flag and, for the fresh ones, their facts: for those the old contribution is nothing and the creation
time is their own, so their facts are one INSERT … SELECT into `kpi_lead_facts`, and their counters one GROUP BY with
conditional counts (plus one narrow GROUP BY per histogram or due-minute metric that has values), computing exactly
what `kpi_rollups.rollup_counts` computes (histogram bins with `ln`, hours, due minutes). Every other lead goes
through the pandas path, which reads its keys from the same table. `lead_runs.created_at` text is read by the
database (`julianday` on SQLite; on PostgreSQL a cast, with a text without offset taken as UTC); when it cannot read
one, the savepoint is rolled back and the whole run takes the pandas path.

Every recording ends with the same two writes, kept here: the changed facts (`upsert_facts`) and the counter deltas
(`add_to_rollups`).
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leadflow.pipeline.errors import first_line
from leadflow.store.kpi_tables import FACT_COLUMNS, kpi_lead_facts, kpi_rollups
from leadflow.store.tables import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

LEADS_TABLE: Final[str] = "kpi_run_leads"
UNASSIGNED_TEXT: Final[str] = "(no owner)"
_HOUR: Final[float] = 3600.0


class _Sql:
    """The few expressions SQLite and PostgreSQL spell differently."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    def epoch(self, column: str) -> str:
        if self.postgres:
            return f"extract(epoch from {column})::float8"
        return f"((julianday({column}) - 2440587.5) * 86400.0)"

    def parsed_epoch(self, text: str) -> str:
        if not self.postgres:
            return self.epoch(text)
        return (f"(CASE WHEN {text} IS NULL OR {text} = '' THEN NULL "
                f"WHEN {text} ~ '(Z|[+-]\\d{{2}}(:?\\d{{2}})?)$' THEN extract(epoch from {text}::timestamptz)::float8 "
                f"ELSE extract(epoch from ({text}::timestamp AT TIME ZONE 'UTC'))::float8 END)")

    def least(self, a: str, b: str) -> str:
        return f"least({a}, {b})" if self.postgres else f"min(coalesce({a}, {b}), coalesce({b}, {a}))"

    def greatest(self, a: str, b: str) -> str:
        return f"greatest({a}, {b})" if self.postgres else f"max({a}, {b})"

    def integer_text(self, value: str) -> str:
        return f"CAST(CAST({value} AS BIGINT) AS TEXT)" if self.postgres else f"CAST(CAST({value} AS INTEGER) AS TEXT)"

    def due_minute(self, due: str) -> str:
        # rounded to the millisecond first, as the pandas path does: epoch seconds from julianday carry float noise
        # (12:26:00 read as 12:25:59.9999 would land in the minute before)
        if self.postgres:
            return f"to_char(to_timestamp(round(({due})::numeric, 3)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI\"Z\"')"
        return f"strftime('%Y-%m-%dT%H:%MZ', round({due}, 3), 'unixepoch')"

    def floor(self, value: str) -> str:
        if self.postgres:
            return f"floor({value})"
        # SQLAlchemy gives SQLite a `floor` in Python (math.floor: a call per row, and an error on NULL); this is
        # the same integer for every finite value
        return f"(CAST({value} AS INTEGER) - ({value} < CAST({value} AS INTEGER)))"

    def hour(self, epoch: str) -> str:
        return self.floor(f"({epoch}) / 3600.0")

    def histogram_bin(self, value: str, floor: float, ratio: float) -> str:
        steps = self.floor(f"ln(abs({value}) / {floor!r}) / {math.log(ratio)!r}")
        return self.integer_text(f"(CASE WHEN abs({value}) < {floor!r} THEN 0 WHEN {value} > 0 THEN 1 + {steps} "
                                 f"ELSE -(1 + {steps}) END)")


def has_math(conn: Connection) -> bool:
    """Whether the database has `ln` (SQLite only when built with its math functions)."""
    if conn.dialect.name == "postgresql":
        return True
    try:
        conn.exec_driver_sql("SELECT ln(2.0)").all()
    except sa.exc.OperationalError:
        return False
    return True


CHUNK_ROWS_TABLE: Final[str] = "kpi_chunk_rows"
"""A chunk's `lead_runs` rows, read once when the whole run takes the pandas path."""


def stage_chunk_rows(conn: Connection, run_id: str, since: datetime, chunks: range) -> None:
    """Copy run `run_id`'s `lead_runs` rows of audit `chunks` at or after `since` into the temporary
    `CHUNK_ROWS_TABLE` (same columns, indexed by lead key), which a chunk's recording then reads instead of
    `lead_runs`. On SQLite through the `at` index by name: without statistics its planner scans the whole table in
    `lead_key` order to save a GROUP BY sort, which made recording a streamed run chunk by chunk quadratic."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {CHUNK_ROWS_TABLE}")
    postgres = conn.dialect.name == "postgresql"
    hint = "" if postgres else " INDEXED BY ix_lead_runs_at"
    select = (f"SELECT lead_key, run_id, chunk, email, created_at, at FROM lead_runs{hint} WHERE at >= :since "
              f"AND run_id = :run_id AND chunk >= {int(chunks.start)} AND chunk < {int(chunks.stop)}")
    create = (f"CREATE TEMPORARY TABLE {CHUNK_ROWS_TABLE} ON COMMIT DROP AS {select}" if postgres
              else f"CREATE TEMPORARY TABLE {CHUNK_ROWS_TABLE} AS {select}")
    conn.execute(sa.text(create).bindparams(sa.bindparam("since", since, type_=UTCDateTime())), {"run_id": run_id})
    conn.exec_driver_sql(f"CREATE INDEX ix_{CHUNK_ROWS_TABLE}_lead_key ON {CHUNK_ROWS_TABLE} (lead_key)")
    if postgres:
        conn.exec_driver_sql(f"ANALYZE {CHUNK_ROWS_TABLE}")


def staged_leads_sql(table: str, where: str, *, postgres: bool, per_chunk: bool, hint: str = "",
                     key_hint: str = "") -> str:
    """One row per lead of the `table` rows (`lead_runs` columns) matching `where`: `lead_key`, `email`,
    `created_text`, `first_at` (its earliest `at`). `hint`: how SQLite reads those rows (an `INDEXED BY`).

    Unless `per_chunk`, the largest e-mail and the smallest creation text of all its rows. `per_chunk` (several audit
    chunks recorded in one go) gives what recording the chunks one at a time, in order, leaves in the facts of a lead
    staged in more than one: the largest e-mail of its last chunk that has one (a later recording replaces the
    e-mail) and the smallest creation text of its first chunk whose text the database reads (the first creation time
    recorded is kept; SQLite: the `julianday` the fresh leads' count uses; PostgreSQL: a text starting with a date),
    else of its first chunk with one; those few leads' rows are read again by key (`key_hint`). So a streamed run
    records the same facts whether its chunks are recorded one by one or several at a time."""
    if not per_chunk:
        return ("SELECT lead_key, max(email) AS email, min(created_at) AS created_text, min(at) AS first_at "
                f"FROM {table}{hint} WHERE {where} GROUP BY lead_key")
    # the chunk number, zero-padded, in front of a value: min / max then pick the first / last chunk's value
    pad = "lpad(CAST(chunk AS TEXT), 10, '0')" if postgres else "printf('%010d', chunk)"
    reads = ("created_text ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}'" if postgres
             else "julianday(created_text) IS NOT NULL")
    chunks = (f"(SELECT chunk, max(email) AS email, min(created_at) AS created_text FROM {table} AS i{key_hint} "
              f"WHERE i.lead_key = o.lead_key AND {where} GROUP BY chunk) AS c")
    last_email = f"(SELECT substr(max(CASE WHEN email IS NOT NULL THEN {pad} || email END), 11) FROM {chunks})"
    first_created = (f"(SELECT coalesce(substr(min(CASE WHEN {reads} THEN {pad} || created_text END), 11), "
                     f"substr(min(CASE WHEN created_text IS NOT NULL THEN {pad} || created_text END), 11)) "
                     f"FROM {chunks})")
    several = "min(o.chunk) < max(o.chunk)"
    return (f"SELECT o.lead_key AS lead_key, CASE WHEN {several} THEN {last_email} ELSE max(o.email) END AS email, "
            f"CASE WHEN {several} THEN {first_created} ELSE min(o.created_at) END AS created_text, "
            f"min(o.at) AS first_at FROM {table} AS o{hint} WHERE {where} GROUP BY o.lead_key")


def staged_chunk_leads(run_id: str, *, postgres: bool) -> sa.Subquery:
    """`staged_leads_sql` per chunk over the `CHUNK_ROWS_TABLE` rows of run `run_id`, as the pandas path reads a run's
    leads: `lead_key`, `email`, `run_created`, `run_at`."""
    text = sa.text(staged_leads_sql(CHUNK_ROWS_TABLE, "run_id = :run_id", postgres=postgres, per_chunk=True))
    rows = text.bindparams(run_id=run_id).columns(
        *(sa.column(c) for c in ("lead_key", "email", "created_text", "first_at"))).subquery("per_lead")
    return sa.select(rows.c.lead_key, rows.c.email, rows.c.created_text.label("run_created"),
                     rows.c.first_at.label("run_at")).subquery()


def stage_run_leads(conn: Connection, run_id: str, since: datetime, *, chunks: range | None = None,
                    staged: bool = True, written: bool = True, per_chunk: bool = False) -> bool:
    """Fill the temporary `LEADS_TABLE` with one row per lead run `run_id` staged (its `lead_runs` rows at or after
    `since`, in audit `chunks` when given; none unless `staged`): `lead_key`, `email`, `created_text`, `first_at` as
    the pandas path reads them, `fresh` (1 or 0, see the module docstring) and, for a fresh lead, its facts, with
    its write-backs unless `written` is False. `per_chunk`: each of `chunks` was a page of its own
    (`staged_leads_sql`). False (and no table) when the database cannot do it, so the caller counts every lead in
    pandas.

    A chunk's rows are read on SQLite through the `at` index by name: without statistics its planner scans the whole
    table in `lead_key` order to save a GROUP BY sort, which made recording a streamed run chunk by chunk quadratic."""
    if not has_math(conn):
        return False
    sql = _Sql(conn.dialect.name)
    drop_temporary(conn)
    in_scope, hint = "" if staged else " AND 1 = 0", ""
    if chunks is not None:
        in_scope += f" AND chunk >= {int(chunks.start)} AND chunk < {int(chunks.stop)}"
        hint = "" if sql.postgres else " INDEXED BY ix_lead_runs_at"
    staged_rows = staged_leads_sql("lead_runs", f"at >= :since AND run_id = :run_id{in_scope}", hint=hint,
                                   key_hint="" if sql.postgres else " INDEXED BY ix_lead_runs_lead_key",
                                   postgres=sql.postgres, per_chunk=per_chunk)
    written_rows = ("SELECT lead_key, min(at) AS wb_at FROM lead_events WHERE run_id = :run_id "
                    "AND stage LIKE 'writeback:%' GROUP BY lead_key")
    # the CASE stops at the first answer (an AND in a result column would run every look-up)
    flagged = """SELECT st.lead_key, st.email, st.created_text, st.first_at,
               CASE WHEN EXISTS (SELECT 1 FROM kpi_lead_facts f WHERE f.lead_key = st.lead_key) THEN 0
                    WHEN st.email IS NULL THEN 1
                    WHEN EXISTS (SELECT 1 FROM kpi_lead_facts f WHERE f.email = st.email) THEN 0
                    WHEN EXISTS (SELECT 1 FROM shared WHERE shared.email = st.email) THEN 0
                    ELSE 1 END AS fresh
        FROM staged st"""
    # only a fresh lead's creation text is read (a text PostgreSQL cannot read sends the run to pandas), and only a
    # fresh lead's assignment and state are looked up: the pandas path reads the others'
    created = f"CASE WHEN fl.fresh = 1 THEN {sql.parsed_epoch('fl.created_text')} END"
    fresh_key = "fl.lead_key AND fl.fresh = 1"
    written_at = sql.least(sql.epoch("w.wb_at"), sql.epoch("a.written_at")) if written else sql.epoch("a.written_at")
    written_join = f"LEFT JOIN written w ON w.lead_key = {fresh_key}" if written else ""
    select = f"""
        WITH staged AS MATERIALIZED ({staged_rows}),
             {f"written AS MATERIALIZED ({written_rows})," if written else ""}
             shared AS MATERIALIZED (SELECT email FROM staged WHERE email IS NOT NULL GROUP BY email
                                     HAVING count(*) > 1),
             flagged AS MATERIALIZED ({flagged})
        SELECT fl.lead_key, fl.email, fl.created_text, fl.first_at, fl.fresh, {sql.epoch('fl.first_at')} AS first_seen,
               {created} AS own_created, {created} AS created, {sql.epoch('a.assigned_at')} AS assigned,
               {written_at} AS written, {sql.epoch('a.sla_due_at')} AS due, {sql.epoch('a.first_touch_at')} AS touched,
               a.owner_id, s.lifecycle_stage AS stage, {sql.epoch('s.mql_at')} AS mql, {sql.epoch('s.sal_at')} AS sal,
               {sql.epoch('s.sql_at')} AS sql, {sql.epoch('s.updated_at')} AS state_at, :run_id AS run_id
        FROM flagged fl LEFT JOIN assignments a ON a.lead_key = {fresh_key}
             LEFT JOIN lead_state s ON s.lead_key = {fresh_key} {written_join}"""
    create = (f"CREATE TEMPORARY TABLE {LEADS_TABLE} ON COMMIT DROP AS {select}" if sql.postgres
              else f"CREATE TEMPORARY TABLE {LEADS_TABLE} AS {select}")
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(create).bindparams(sa.bindparam("since", since, type_=UTCDateTime())),
                     {"run_id": run_id})
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("KPI rollups: the database could not read run %s's leads (%s); counting them in pandas",
                    run_id, first_line(getattr(exc, "orig", exc)))
        return False
    savepoint.commit()
    if written:  # the write-back query keeps to the other leads with NOT EXISTS on this table: without an index, a
        # scan per lead
        conn.exec_driver_sql(f"CREATE INDEX ix_{LEADS_TABLE}_lead_key ON {LEADS_TABLE} (lead_key)")
    if sql.postgres:
        conn.exec_driver_sql(f"ANALYZE {LEADS_TABLE}")
    return True


def record_fresh_leads(conn: Connection, floor: float, ratio: float, skew_tolerance: float) -> pd.DataFrame:
    """Insert the fresh leads' facts and return their counters (`kpi_rollups.rollup_counts`' columns: hour in epoch
    hours, metric, dimension, count), from one GROUP BY over them, plus one narrow GROUP BY per histogram or due
    minute metric that some fresh lead has a value for. Durations below −`skew_tolerance` seconds are clock skew:
    clamped to 0 in their histogram and counted (`skew_clamped`)."""
    sql = _Sql(conn.dialect.name)
    names = ", ".join(FACT_COLUMNS)
    conn.exec_driver_sql(f"INSERT INTO kpi_lead_facts ({names}) SELECT {names} FROM {LEADS_TABLE} WHERE fresh = 1")
    lead_at = sql.greatest("first_seen", "coalesce(assigned, first_seen)")

    def count_if(condition: str) -> str:
        return f"count(CASE WHEN {condition} THEN 1 END)"

    # measure → (hour it counts in, later, earlier, seconds per histogram unit)
    durations = {"speed_to_lead_min": ("lead", "written", "created", 60.0),
                 "created_to_assigned_min": ("lead", "assigned", "created", 60.0),
                 "created_to_first_touch_min": ("lead", "touched", "created", 60.0),
                 "mql_to_sal_days": ("state", "sal", "mql", 86400.0),
                 "sal_to_sql_days": ("state", "sql", "sal", 86400.0)}
    both = {m: f"{later} IS NOT NULL AND {earlier} IS NOT NULL" for m, (_, later, earlier, _) in durations.items()}
    conditional = {
        "sla_with": "due IS NOT NULL", "sla_met": "touched <= due", "sla_pending": "due IS NOT NULL AND touched IS NULL",
        "reached:mql": "mql IS NOT NULL OR sal IS NOT NULL OR sql IS NOT NULL",
        "reached:sal": "sal IS NOT NULL OR sql IS NOT NULL", "reached:sql": "sql IS NOT NULL",
        "skipped:mql": "mql IS NULL AND (sal IS NOT NULL OR sql IS NOT NULL)",
        "skipped:sal": "sal IS NULL AND sql IS NOT NULL",
        **{f"has:{m}": condition for m, condition in both.items()},
        **{f"skew:{m}": f"{both[m]} AND {later} - {earlier} < -{skew_tolerance!r}"
           for m, (_, later, earlier, _) in durations.items()},
    }
    # the hour columns' nulls say which metrics a group counts in: a lead without an assignment has no assigned hour
    groups = conn.exec_driver_sql(f"""
        SELECT {sql.hour(lead_at)}, {sql.hour("assigned")}, {sql.hour("state_at")},
               CASE WHEN assigned IS NOT NULL THEN coalesce(owner_id, '{UNASSIGNED_TEXT}') END,
               CASE WHEN state_at IS NOT NULL THEN stage END, count(*),
               {", ".join(count_if(condition) for condition in conditional.values())}
        FROM {LEADS_TABLE} WHERE fresh = 1 GROUP BY 1, 2, 3, 4, 5""").all()
    counts: dict[tuple[int, str, str], int] = {}

    def add(hour: float | None, metric: str, dimension: str | None, n: int) -> None:
        if hour is not None and dimension is not None and n:
            key = (int(hour), metric, dimension)
            counts[key] = counts.get(key, 0) + int(n)

    totals = dict.fromkeys([*durations, "sla_pending"], 0)
    for lead_hour, assigned_hour, state_hour, owner, stage, n, *numbers in groups:
        got = dict(zip(conditional, numbers, strict=True))
        hours = {"lead": lead_hour, "state": state_hour}
        add(lead_hour, "leads", "", n)
        if assigned_hour is not None:
            for metric, dimension, count in (("assignments", "", n), ("owner", owner, n),
                                             ("sla_with", "", got["sla_with"]), ("sla_met", "", got["sla_met"])):
                add(assigned_hour, metric, dimension, count)
            totals["sla_pending"] += got["sla_pending"]
        if state_hour is not None:
            for metric, dimension, count in (("state", "", n), ("funnel", stage, n)):
                add(state_hour, metric, dimension, count)
            for name in ("reached:mql", "reached:sal", "reached:sql", "skipped:mql", "skipped:sal"):
                metric, dimension = name.split(":")
                add(state_hour, metric, dimension, got[name])
        for measure, (hour, *_) in durations.items():
            if hours[hour] is not None:
                totals[measure] += got[f"has:{measure}"]
                add(hours[hour], "skew_clamped", measure, got[f"skew:{measure}"])

    def histogram(later: str, earlier: str, per_unit: float) -> str:
        return sql.histogram_bin(sql.greatest("0.0", f"({later} - {earlier}) / {per_unit!r}"), floor, ratio)

    hour_of = {"lead": lead_at, "state": "state_at"}
    in_window = {"lead": "1 = 1", "state": "state_at IS NOT NULL"}
    narrow = {measure: (hour_of[hour], histogram(later, earlier, per_unit), f"{in_window[hour]} AND {both[measure]}")
              for measure, (hour, later, earlier, per_unit) in durations.items()}
    narrow["sla_pending"] = ("assigned", sql.due_minute("due"),
                             "assigned IS NOT NULL AND due IS NOT NULL AND touched IS NULL")
    parts = [f"SELECT '{metric}', {sql.hour(at)}, {dimension}, count(*) FROM {LEADS_TABLE} "
             f"WHERE fresh = 1 AND {where} GROUP BY 2, 3"
             for metric, (at, dimension, where) in narrow.items() if totals[metric]]
    if parts:
        for metric, hour, dimension, n in conn.exec_driver_sql(" UNION ALL ".join(parts)):
            add(hour, metric, dimension, n)
    return pd.DataFrame([(*key, n) for key, n in counts.items()], columns=["hour", "metric", "dimension", "count"])


def drop_temporary(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {LEADS_TABLE}")


def upsert_facts(conn: Connection, facts: pd.DataFrame) -> None:
    """One INSERT … ON CONFLICT DO UPDATE for all the changed facts (on PostgreSQL from a COPY-filled temp table)."""
    if not len(facts):
        return
    columns = list(FACT_COLUMNS)
    frame = facts[columns].astype("object")
    rows = list(zip(*(frame[c].where(frame[c].notna(), None).tolist() for c in columns), strict=True))
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in columns)
    updates = ", ".join(f"{preparer.quote(c)} = excluded.{preparer.quote(c)}" for c in columns if c != "lead_key")
    target = preparer.format_table(kpi_lead_facts)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("CREATE TEMP TABLE kpi_fact_batch (LIKE kpi_lead_facts) ON COMMIT DROP")
        dbapi_connection = conn.connection.driver_connection
        assert dbapi_connection is not None
        with dbapi_connection.cursor() as cursor, cursor.copy(f"COPY kpi_fact_batch ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.exec_driver_sql(f"INSERT INTO {target} ({names}) SELECT {names} FROM kpi_fact_batch "
                             f"ON CONFLICT (lead_key) DO UPDATE SET {updates}")
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks}) ON CONFLICT (lead_key) DO UPDATE SET "
                         f"{updates}", rows)


def add_to_rollups(conn: Connection, deltas: pd.DataFrame) -> None:
    """One INSERT … ON CONFLICT DO UPDATE SET count = count + delta for every changed counter."""
    if not len(deltas):
        return
    hours = [datetime.fromtimestamp(int(h) * _HOUR, UTC) for h in deltas["hour"]]
    rows = [{"hour": h, "metric": m, "dimension": d, "count": int(c)} for h, m, d, c in zip(
        hours, deltas["metric"], deltas["dimension"], deltas["count"], strict=True)]
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = dialect_insert(kpi_rollups)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[kpi_rollups.c.hour, kpi_rollups.c.metric, kpi_rollups.c.dimension],
        set_={"count": kpi_rollups.c.count + statement.excluded["count"]}), rows)
