"""The set-based path of `leadflow.audit.kpi_rollups.record_run_kpis`: a run's *fresh* leads — no facts yet, and an
e-mail no other lead has — counted inside the database, so a million new leads never travel to Python.

For those leads the old contribution is nothing and the creation time is their own, so their facts are one
INSERT … SELECT (into a temporary table, then `kpi_lead_facts`) and their counters one INSERT … SELECT … GROUP BY into
`kpi_rollups`, computing exactly what `kpi_rollups.rollup_counts` computes (histogram bins with `ln`, hours, due
minutes). Every other lead the run touched goes through the pandas path. `lead_runs.created_at` text is read by the
database (`julianday` on SQLite; on PostgreSQL a cast, with a text without offset taken as UTC); when it cannot read
one, the savepoint is rolled back and the whole run takes the pandas path.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa

from leadflow.store.kpi_tables import FACT_COLUMNS
from leadflow.store.tables import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

FRESH_TABLE: Final[str] = "kpi_fresh_leads"
UNASSIGNED_TEXT: Final[str] = "(no owner)"


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

    def hour_stamp(self, hour: str) -> str:
        if self.postgres:
            return f"to_timestamp({hour} * 3600)"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {hour} * 3600, 'unixepoch') || '.000000')"

    def due_minute(self, due: str) -> str:
        # rounded to the millisecond first, as the pandas path does: epoch seconds from julianday carry float noise
        # (12:26:00 read as 12:25:59.9999 would land in the minute before)
        if self.postgres:
            return f"to_char(to_timestamp(round(({due})::numeric, 3)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI\"Z\"')"
        return f"strftime('%Y-%m-%dT%H:%MZ', round({due}, 3), 'unixepoch')"

    def histogram_bin(self, value: str, floor: float, ratio: float) -> str:
        steps = f"floor(ln(abs({value}) / {floor!r}) / {math.log(ratio)!r})"
        return self.integer_text(f"(CASE WHEN abs({value}) < {floor!r} THEN 0 WHEN {value} > 0 THEN 1 + {steps} "
                                 f"ELSE -(1 + {steps}) END)")


def has_math(conn: Connection) -> bool:
    """Whether the database has `ln` and `floor` (SQLite only when built with its math functions)."""
    if conn.dialect.name == "postgresql":
        return True
    try:
        conn.exec_driver_sql("SELECT ln(2.0), floor(2.5)").all()
    except sa.exc.OperationalError:
        return False
    return True


CHUNK_ROWS_TABLE: Final[str] = "kpi_chunk_rows"


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


def stage_fresh_leads(conn: Connection, run_id: str, started: datetime, *, source: str = "lead_runs",
                      chunks: range | None = None, staged: bool = True, written: bool = True) -> bool:
    """Fill the temporary `FRESH_TABLE` with the facts of the run's fresh leads (see the module docstring) among its
    `lead_runs` rows (or `source`'s: `CHUNK_ROWS_TABLE`) at or after `started` (and in audit `chunks`, when given;
    none unless `staged`), with their write-backs unless `written` is False; False (and no table) when the database
    cannot do it, so the caller counts every lead in pandas."""
    if not has_math(conn):
        return False
    sql = _Sql(conn.dialect.name)
    drop_temporary(conn)
    when = sa.bindparam("started", started, type_=UTCDateTime())
    in_scope = "" if staged else " AND 1 = 0"
    if chunks is not None:
        in_scope += f" AND chunk >= {int(chunks.start)} AND chunk < {int(chunks.stop)}"
    staged_rows = ("SELECT lead_key, max(email) AS email, min(created_at) AS created_text, min(at) AS first_at "
                   f"FROM {source} WHERE at >= :started AND run_id = :run_id{in_scope} GROUP BY lead_key")
    written_rows = ("SELECT lead_key, min(at) AS wb_at FROM lead_events WHERE run_id = :run_id "
                    f"AND stage LIKE 'writeback:%'{'' if written else ' AND 1 = 0'} GROUP BY lead_key")
    created = sql.parsed_epoch("st.created_text")
    select = f"""
        WITH staged AS MATERIALIZED ({staged_rows}), written AS MATERIALIZED ({written_rows}),
             shared AS MATERIALIZED (SELECT email FROM staged WHERE email IS NOT NULL GROUP BY email
                                     HAVING count(*) > 1)
        SELECT st.lead_key, st.email, {sql.epoch('st.first_at')} AS first_seen, {created} AS own_created,
               {created} AS created, {sql.epoch('a.assigned_at')} AS assigned,
               {sql.least(sql.epoch('w.wb_at'), sql.epoch('a.written_at'))} AS written,
               {sql.epoch('a.sla_due_at')} AS due, {sql.epoch('a.first_touch_at')} AS touched, a.owner_id,
               s.lifecycle_stage AS stage, {sql.epoch('s.mql_at')} AS mql, {sql.epoch('s.sal_at')} AS sal,
               {sql.epoch('s.sql_at')} AS sql, {sql.epoch('s.updated_at')} AS state_at, :run_id AS run_id
        FROM staged st LEFT JOIN assignments a ON a.lead_key = st.lead_key
             LEFT JOIN lead_state s ON s.lead_key = st.lead_key LEFT JOIN written w ON w.lead_key = st.lead_key
        WHERE NOT EXISTS (SELECT 1 FROM kpi_lead_facts f WHERE f.lead_key = st.lead_key)
          AND (st.email IS NULL OR (NOT EXISTS (SELECT 1 FROM kpi_lead_facts f WHERE f.email = st.email)
                                    AND NOT EXISTS (SELECT 1 FROM shared WHERE shared.email = st.email)))"""
    create = (f"CREATE TEMPORARY TABLE {FRESH_TABLE} ON COMMIT DROP AS {select}" if sql.postgres
              else f"CREATE TEMPORARY TABLE {FRESH_TABLE} AS {select}")
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(create).bindparams(when), {"run_id": run_id})
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        log.warning("KPI rollups: the database could not read run %s's leads (%s); counting them in pandas",
                    run_id, str(getattr(exc, "orig", exc)).strip().splitlines()[0])
        return False
    savepoint.commit()
    # the pandas path keeps to the other leads with NOT EXISTS on this table: without an index, a scan per lead
    conn.exec_driver_sql(f"CREATE INDEX ix_{FRESH_TABLE}_lead_key ON {FRESH_TABLE} (lead_key)")
    if sql.postgres:
        conn.exec_driver_sql(f"ANALYZE {FRESH_TABLE}")
    return True


def count_fresh_leads(conn: Connection, floor: float, ratio: float) -> int:
    """Insert the fresh leads' facts and add their counters to `kpi_rollups` (see `kpi_rollups.rollup_counts`);
    returns the number of counters changed."""
    sql = _Sql(conn.dialect.name)
    names = ", ".join(FACT_COLUMNS)
    conn.exec_driver_sql(f"INSERT INTO kpi_lead_facts ({names}) SELECT {names} FROM {FRESH_TABLE}")
    lead_at = sql.greatest("first_seen", "coalesce(assigned, first_seen)")

    def cells(at: str, metric: str, dimension: str, where: str) -> str:
        return (f"SELECT floor({at} / 3600.0) AS h, '{metric}' AS metric, {dimension} AS dimension "
                f"FROM {FRESH_TABLE} WHERE {where}")

    def histogram(value: str) -> str:
        return sql.histogram_bin(value, floor, ratio)

    parts = [
        cells(lead_at, "leads", "''", "first_seen IS NOT NULL"),
        cells(lead_at, "speed_to_lead_min", histogram("(written - created) / 60.0"),
              "written IS NOT NULL AND created IS NOT NULL"),
        cells(lead_at, "created_to_assigned_min", histogram("(assigned - created) / 60.0"),
              "assigned IS NOT NULL AND created IS NOT NULL"),
        cells("assigned", "assignments", "''", "assigned IS NOT NULL"),
        cells("assigned", "owner", f"coalesce(owner_id, '{UNASSIGNED_TEXT}')", "assigned IS NOT NULL"),
        cells("assigned", "sla_with", "''", "assigned IS NOT NULL AND due IS NOT NULL"),
        cells("assigned", "sla_met", "''", "assigned IS NOT NULL AND due IS NOT NULL AND touched <= due"),
        cells("assigned", "sla_pending", sql.due_minute("due"),
              "assigned IS NOT NULL AND due IS NOT NULL AND touched IS NULL"),
        cells("state_at", "state", "''", "state_at IS NOT NULL"),
        cells("state_at", "funnel", "stage", "state_at IS NOT NULL AND stage IS NOT NULL"),
        *(cells("state_at", "reached", f"'{name}'", f"state_at IS NOT NULL AND {name} IS NOT NULL")
          for name in ("mql", "sal", "sql")),
        cells("state_at", "mql_to_sal_days", histogram("(sal - mql) / 86400.0"),
              "state_at IS NOT NULL AND mql IS NOT NULL AND sal IS NOT NULL"),
        cells("state_at", "sal_to_sql_days", histogram("(sql - sal) / 86400.0"),
              "state_at IS NOT NULL AND sal IS NOT NULL AND sql IS NOT NULL"),
    ]
    union = " UNION ALL ".join(parts)
    changed = conn.exec_driver_sql(
        f"INSERT INTO kpi_rollups (hour, metric, dimension, count) "
        f"SELECT {sql.hour_stamp('h')}, metric, dimension, count(*) FROM ({union}) AS cells WHERE true "
        f"GROUP BY h, metric, dimension "
        f"ON CONFLICT (hour, metric, dimension) DO UPDATE SET count = kpi_rollups.count + excluded.count").rowcount
    drop_temporary(conn)
    return max(int(changed or 0), 0)


def drop_temporary(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FRESH_TABLE}")
