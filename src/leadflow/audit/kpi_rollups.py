"""KPIs kept incrementally: each run adds what it changed to hourly rollups, and a window's headline numbers
(`kpi_summary`'s keys) are read from the rollups, never by re-reading the audit trail.

Why: `kpi_summary(load_kpi_data(...))` re-reads a whole window of the audit trail (164 s after a 1M-lead run); here a
run's `record_run_kpis` costs what its leads cost, and `rollup_kpi_summary` reads at most hours x metrics x dimensions.

Tables (`leadflow.store.kpi_tables`, migration 0012):

- `kpi_rollups` (hour, metric, dimension) → count. Metrics (`ROLLUP_METRICS`), each in the hour bucket of the time that
  puts a row in `load_kpi_data`'s window:
  `leads` (hour of max(first seen, assigned): a lead is in the window when either is, as in the full read);
  `speed_to_lead_min` / `created_to_assigned_min` / `created_to_first_touch_min` (dimension: a histogram bin of the
  minutes, clock skew clamped to 0, same hour as `leads`); `skew_clamped` (dimension: the measure, at the hour of
  its histogram: durations below −`SKEW_TOLERANCE_SECONDS` clamped to 0);
  `assignments`, `owner` (dimension: owner id), `sla_with`, `sla_met`, `sla_pending` (dimension: the due minute of an
  untouched assignment; whether it is open or missed is decided when read, against `as_of`) — hour of `assigned_at`;
  `state`, `funnel` (dimension: lifecycle stage), `reached` (mql / sal / sql: a later stamp passes the earlier
  stages), `skipped` (mql / sal: reached without its own stamp), `mql_to_sal_days`, `sal_to_sql_days` (histogram bins,
  skew clamped) — hour of `lead_state.updated_at`; `published_run` (dimension: run id) marks a run as counted.
- `kpi_lead_facts`, one row per lead: the inputs the rollups last counted for it (first seen, creation time — its own
  and the earliest of the leads sharing its e-mail — assignment, write-back, SLA, lifecycle). A run reads the facts of
  the leads it staged (and of leads sharing their e-mails), computes their old and new contributions, and upserts the
  difference into `kpi_rollups` (one statement) and the changed facts (one statement), all in one transaction under
  a lock; so a lead seen in several runs counts once, and a lead that moves (re-assigned, new lifecycle stage) leaves
  its old hour and dimension. A run already marked `published_run` is not counted again (task retries). A run that
  changes assignments without staging their leads (`sla_watch`) recounts them (`record_lead_kpis`); an erasure
  takes the person's facts out of the counters before deleting them (`retract_lead_facts`).

Counts are exact for windows that start on the hour: `rollup_kpi_summary` starts the window at the hour of `since`.
Percentiles and medians come from log-spaced histograms: bins `HISTOGRAM_RATIO` (2 %) wide from `HISTOGRAM_FLOOR`
minutes (days for velocity), mirrored for negative values, each read as its geometric centre, so each value is off by
at most `PERCENTILE_ERROR` (< 1 %) relative, and so is a percentile interpolated between two values of one sign.
Runs (`runs`, `rows_in`, `rows_quarantined`) are read from `runs` (the running run's own stats passed in, as it is
closed after publishing) and sync errors from `dead_letters`, both small tables.

Differences from the full read, by design: a lead's creation time is the first one recorded (then the earliest
within its e-mail), its write-back time the earliest ever seen, not only those inside the window; SLA `open` is
decided to the minute of the due time (an untouched lead due in `as_of`'s minute counts as open); `breached_at` is
not read (it is only stamped after the due time, when the lead is missed either way); the rollups start with
migration 0012 (history before it is only in the full read, `leadflow report`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadflow.audit.kpis import (
    FUNNEL_STAGES,
    HEADLINE_SKEW,
    SKEW_TOLERANCE_SECONDS,
    UNASSIGNED,
    KpiData,
    _clean,
    _rates,
    quarantine_trend,
    sla_numbers,
    sync_errors,
)
from leadflow.audit.kpi_histograms import (
    HISTOGRAM_FLOOR,
    HISTOGRAM_RATIO,
    PERCENTILE_ERROR,
    bin_values,
    histogram_bins,
    histogram_percentiles,
)
from leadflow.audit.kpi_rollups_sql import (
    CHUNK_ROWS_TABLE,
    LEADS_TABLE,
    add_to_rollups,
    drop_temporary,
    record_fresh_leads,
    stage_chunk_rows,
    stage_run_leads,
    staged_chunk_leads,
    upsert_facts,
)
from leadflow.store.first_touch_tables import lead_first_touches
from leadflow.store.kpi_tables import FACT_COLUMNS, kpi_lead_facts, kpi_rollups
from leadflow.store.tables import assignments, dead_letters, lead_events, lead_runs, lead_state, runs

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from leadflow.store import StateStore

ROLLUP_METRICS: Final[tuple[str, ...]] = (
    "leads", "speed_to_lead_min", "created_to_assigned_min", "created_to_first_touch_min", "skew_clamped",
    "assignments", "owner", "sla_with", "sla_met", "sla_pending", "state", "funnel", "reached", "skipped",
    "mql_to_sal_days", "sal_to_sql_days", "published_run")
__all__ = ["HISTOGRAM_FLOOR", "HISTOGRAM_RATIO", "PERCENTILE_ERROR", "ROLLUP_METRICS", "bin_values", "histogram_bins",
           "histogram_percentiles", "record_lead_kpis", "record_run_kpis", "recount_rollups",
           "retract_lead_facts", "rollup_counts", "rollup_deltas", "rollup_kpi_summary", "window_start"]
"""The histogram helpers are re-exported from `leadflow.audit.kpi_histograms`."""
DUE_MINUTE_FORMAT: Final[str] = "%Y-%m-%dT%H:%MZ"
_KPI_LOCK: Final[int] = 0x1EAD_C0DE
"""PostgreSQL advisory lock key: one run at a time reads and rewrites lead facts and rollups (SQLite: its write lock)."""
_HOUR: Final[float] = 3600.0
USE_DATABASE_PATH: bool = True
"""Count a run's fresh leads inside the database (`kpi_rollups_sql`); False counts every lead in pandas (tests)."""


# --- per-lead contributions ------------------------------------------------------------------------------------------


def rollup_counts(facts: pd.DataFrame) -> pd.DataFrame:
    """What the leads in `facts` (`kpi_lead_facts` columns, times in epoch seconds) add to the rollups: one row per
    (hour [epoch hours], metric, dimension) with its count (one GROUP BY over every metric's cells)."""
    hours: list[np.ndarray] = []
    metrics: list[np.ndarray] = []
    dimensions: list[np.ndarray] = []

    def add(metric: str, at: pd.Series, dimension: Any, mask: pd.Series) -> None:
        chosen = mask.to_numpy(dtype=bool)
        n = int(chosen.sum())
        if not n:
            return
        hours.append(np.floor(at.to_numpy()[chosen] / _HOUR).astype("int64"))
        metrics.append(np.full(n, metric, dtype=object))
        if isinstance(dimension, (pd.Series, np.ndarray)):
            values = dimension.to_numpy() if isinstance(dimension, pd.Series) else dimension
            dimensions.append(np.asarray(values[chosen]).astype(str).astype(object))
        else:
            dimensions.append(np.full(n, str(dimension), dtype=object))

    def known(column: str) -> pd.Series:
        return facts[column].astype("float64")

    def clamped(metric: str, at: pd.Series, seconds: pd.Series, per_unit: float, mask: pd.Series) -> None:
        # a histogram of the duration with clock skew clamped to 0, and the skew counted
        values = seconds.to_numpy()
        has = pd.Series(~np.isnan(values), index=facts.index) & mask
        add(metric, at, histogram_bins(np.maximum(np.nan_to_num(values), 0.0) / per_unit), has)
        add("skew_clamped", at, metric, has & pd.Series(values < -SKEW_TOLERANCE_SECONDS, index=facts.index))

    first, created, assigned, written = known("first_seen"), known("created"), known("assigned"), known("written")
    due, touched = known("due"), known("touched")
    lead_at = pd.Series(np.fmax(first.to_numpy(), assigned.to_numpy()), index=facts.index)
    everyone = lead_at.notna()
    add("leads", lead_at, "", everyone)
    for metric, later in (("speed_to_lead_min", written), ("created_to_assigned_min", assigned),
                          ("created_to_first_touch_min", touched)):
        clamped(metric, lead_at, later - created, 60.0, everyone)

    has_assignment = assigned.notna()
    add("assignments", assigned, "", has_assignment)
    owners = facts["owner_id"].astype("object")
    add("owner", assigned, owners.where(owners.notna(), UNASSIGNED), has_assignment)
    with_sla = has_assignment & due.notna()
    add("sla_with", assigned, "", with_sla)
    add("sla_met", assigned, "", with_sla & touched.notna() & (touched <= due))
    pending = with_sla & touched.isna()
    if pending.any():
        # rounded to the millisecond first (as the SQL path does): epoch seconds read through julianday carry float
        # noise; each distinct due minute is formatted once
        minutes = np.floor(np.round(due[pending].to_numpy(), 3) / 60.0).astype("int64")
        distinct, which = np.unique(minutes, return_inverse=True)
        texts = pd.to_datetime(distinct * 60, unit="s", utc=True).strftime(DUE_MINUTE_FORMAT).to_numpy(dtype=object)
        add("sla_pending", assigned[pending], texts[which], pending[pending])

    state_at = known("state_at")
    in_state = state_at.notna()
    add("state", state_at, "", in_state)
    stages = facts["stage"].astype("object")
    add("funnel", state_at, stages, in_state & stages.notna())
    stamps = {name: known(name) for name in ("mql", "sal", "sql")}
    has_mql, has_sal, has_sql = (stamps[name].notna() for name in ("mql", "sal", "sql"))
    reached_sal = has_sal | has_sql
    reached = {"mql": has_mql | reached_sal, "sal": reached_sal, "sql": has_sql}
    for name, passed in reached.items():
        add("reached", state_at, name, in_state & passed)
    add("skipped", state_at, "mql", in_state & reached["mql"] & ~has_mql)
    add("skipped", state_at, "sal", in_state & has_sql & ~has_sal)
    for metric, (a, b) in (("mql_to_sal_days", ("mql", "sal")), ("sal_to_sql_days", ("sal", "sql"))):
        clamped(metric, state_at, stamps[b] - stamps[a], 86400.0, in_state)

    if not hours:
        return pd.DataFrame({"hour": pd.Series(dtype="int64"), "metric": pd.Series(dtype="object"),
                             "dimension": pd.Series(dtype="object"), "count": pd.Series(dtype="int64")})
    cells = pd.DataFrame({"hour": np.concatenate(hours), "metric": np.concatenate(metrics),
                          "dimension": np.concatenate(dimensions)})
    counts = cells.groupby(["hour", "metric", "dimension"], sort=False).size().reset_index(name="count")
    counts["dimension"] = counts["dimension"].astype(str)
    return counts[["hour", "metric", "dimension", "count"]]


def rollup_deltas(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """new contributions minus old ones, per (hour, metric, dimension), zero rows dropped."""
    before, after = rollup_counts(old), rollup_counts(new)
    before["count"] = -before["count"]
    both = pd.concat([before, after], ignore_index=True)
    summed = both.groupby(["hour", "metric", "dimension"], sort=True, as_index=False)["count"].sum()
    return summed[summed["count"] != 0].reset_index(drop=True)


# --- recording a run -------------------------------------------------------------------------------------------------


def _epoch(column: Any, dialect: str) -> Any:
    """A time column as float epoch seconds in SQL (SQLite keeps naive UTC text, which `julianday` reads)."""
    if dialect == "postgresql":
        return sa.cast(sa.extract("epoch", column), sa.Float)
    return (sa.func.julianday(column) - 2440587.5) * 86400.0


def _epoch_seconds(texts: pd.Series) -> pd.Series:
    """Time texts (as `lead_runs.created_at` holds them) to epoch seconds; NaN when missing or unreadable."""
    parsed = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().sum() > texts.isna().sum():
        parsed = pd.to_datetime(texts.astype("object"), utc=True, errors="coerce", format="mixed")
    seconds = parsed.astype("datetime64[us, UTC]").astype("int64") / 1e6
    return seconds.where(parsed.notna())


def _joined(conn: Connection, driving: Any) -> pd.DataFrame:
    """`driving` (lead_key, email, run_created, run_at) with each lead's assignment, lifecycle state and facts."""
    a, s, f = assignments, lead_state, kpi_lead_facts
    dialect = conn.dialect.name
    query = sa.select(
        driving.c.lead_key, driving.c.email.label("run_email"), driving.c.run_created,
        _epoch(driving.c.run_at, dialect).label("run_at"),
        _epoch(a.c.assigned_at, dialect).label("a_assigned"), _epoch(a.c.written_at, dialect).label("a_written"),
        _epoch(a.c.sla_due_at, dialect).label("a_due"), _epoch(a.c.first_touch_at, dialect).label("a_touched"),
        a.c.owner_id.label("a_owner"), s.c.lifecycle_stage.label("s_stage"),
        *(_epoch(s.c[f"{name}_at"], dialect).label(f"s_{name}") for name in ("mql", "sal", "sql")),
        _epoch(s.c.updated_at, dialect).label("s_at"),
    ).select_from(driving.outerjoin(a, a.c.lead_key == driving.c.lead_key)
                  .outerjoin(s, s.c.lead_key == driving.c.lead_key))
    touched = _raw_frame(conn, query)
    # the facts in a query of their own: a run of new leads then fetches no column of nulls
    old = _raw_frame(conn, sa.select(*(f.c[c] for c in FACT_COLUMNS)).join(
        driving, driving.c.lead_key == f.c.lead_key))
    prefixed = {c: f"f_{c}" for c in FACT_COLUMNS}
    if not len(old):
        return touched.assign(**{name: None for name in prefixed.values()})
    old = old.drop_duplicates("lead_key").rename(columns=prefixed)
    return touched.merge(old, left_on="lead_key", right_on="f_lead_key", how="left")


def _raw_frame(conn: Connection, query: Any) -> pd.DataFrame:
    """The rows as the driver returns them (no SQLAlchemy row objects: ~3x faster at a million rows); only for
    columns that need no result processing (numbers, text)."""
    result = conn.execute(query)
    columns = list(result.keys())
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)


def _facts_frame(rows: Any, columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
    for column in columns:
        if column not in ("lead_key", "email", "owner_id", "stage", "run_id"):
            frame[column] = frame[column].astype("float64")
    return frame


def _new_facts(touched: pd.DataFrame, written_back: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(old facts of the leads this run touched that had facts, their new facts) from `_joined` rows."""
    touched = touched.merge(written_back, on="lead_key", how="left") if len(written_back) else touched.assign(
        wb_at=np.nan)
    had = touched["f_lead_key"].notna()
    old = touched.loc[had, ["lead_key", *(f"f_{c}" for c in FACT_COLUMNS if c != "lead_key")]]
    old = _facts_frame(old.to_numpy(), list(FACT_COLUMNS))

    def num(column: str) -> pd.Series:
        return touched[column].astype("float64")

    new = pd.DataFrame({"lead_key": touched["lead_key"].astype("object")})
    new["email"] = touched["run_email"].where(touched["run_email"].notna(), touched["f_email"]).astype("object")
    new["first_seen"] = np.fmin(num("f_first_seen"), num("run_at"))
    own = num("f_own_created")
    new["own_created"] = own.where(own.notna(), _epoch_seconds(touched["run_created"].astype("string")))
    new["created"] = new["own_created"]  # the e-mail link comes after (`_link_created`)
    new["assigned"] = num("a_assigned")
    new["written"] = np.fmin(np.fmin(num("f_written"), num("wb_at")), num("a_written"))
    new["due"], new["touched"] = num("a_due"), num("a_touched")
    new["owner_id"] = touched["a_owner"].astype("object")
    new["stage"] = touched["s_stage"].astype("object")
    for name in ("mql", "sal", "sql"):
        new[name] = num(f"s_{name}")
    new["state_at"] = num("s_at")
    new["run_id"] = run_id
    new = new[new["first_seen"].notna()].reset_index(drop=True)
    return old, new[list(FACT_COLUMNS)]


def _link_created(new: pd.DataFrame, others: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Creation time = the earliest own creation time of the leads sharing the e-mail. Returns `new` linked, and the
    other leads (not touched by the run) whose creation time this moves: (their old facts, their new facts)."""
    pool = pd.concat([new[["email", "own_created"]], others[["email", "own_created"]]], ignore_index=True).dropna()
    if not len(pool):
        return new, others.iloc[:0], others.iloc[:0]
    earliest = pool.groupby("email")["own_created"].min()
    new = new.copy()
    new["created"] = np.fmin(new["own_created"], new["email"].map(earliest).astype("float64"))
    linked = np.fmin(others["own_created"], others["email"].map(earliest).astype("float64"))
    moved = ~((linked == others["created"]) | (linked.isna() & others["created"].isna()))
    old_others = others[moved]
    return new, old_others, old_others.assign(created=linked[moved])


def _changed(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The rows of `new` that differ from `old` (same key) in any column but run_id, or have no old row."""
    if not len(old):
        return new
    columns = [c for c in FACT_COLUMNS if c not in ("lead_key", "run_id")]
    before = old.set_index("lead_key")[columns].reindex(new["lead_key"])
    after = new.set_index("lead_key")[columns]
    same = (before.eq(after) | (before.isna() & after.isna())).all(axis=1)
    return new[~same.to_numpy()]


def record_run_kpis(store: StateStore, run_id: str, *, chunks: range | None = None, since: datetime | None = None,
                    staged: bool = True, by_chunk: bool = False) -> int:
    """Add what run `run_id` recorded (the leads it staged or wrote back, their assignments and lifecycle state) to
    the rollups and mark the run counted; returns the number of changed counters (0 when the run was counted already).

    A streamed run records as it goes, so the end of a 10M-lead run does not hold 10M leads' facts at once: `chunks`
    (audit chunk numbers, `lead_runs.chunk`) records only the leads staged in those chunks at or after `since` (the
    chunk's start; it keeps the scan on the `at` index), without write-backs and without marking the run; the closing
    call passes `staged=False` (its staged leads are counted) to add the write-backs and the mark. Recording a lead
    twice changes nothing (its facts are unchanged), so a retried chunk counts once. `chunks` are one page's (a page
    of more rows than an audit chunk holds has several), unless `by_chunk`: then each of them is a page, recorded as
    recording them one at a time, in order, would (`kpi_rollups_sql.staged_leads_sql`), in one transaction."""
    scope = _Scope(chunks, since, staged, chunks is None, by_chunk and chunks is not None and len(chunks) > 1)
    with store._writing() as conn:  # one transaction; the lock keeps two runs from counting one lead twice
        _lock(conn)
        started = conn.execute(sa.select(runs.c.started_at).where(runs.c.run_id == run_id)).scalar_one_or_none()
        if started is None:
            raise KeyError(f"runs: no run {run_id!r} to record KPIs for")
        run_hour = math.floor(started.timestamp() / _HOUR)
        marker = conn.execute(sa.select(kpi_rollups.c.count).where(
            kpi_rollups.c.hour == datetime.fromtimestamp(run_hour * _HOUR, UTC),
            kpi_rollups.c.metric == "published_run", kpi_rollups.c.dimension == run_id)).first()
        if marker is not None:
            return 0
        parts = [_run_deltas(conn, run_id, started, scope)]
        if chunks is None:
            parts.append(pd.DataFrame({"hour": [run_hour], "metric": ["published_run"], "dimension": [run_id],
                                       "count": [1]}))
        deltas = _summed(parts)
        add_to_rollups(conn, deltas)
        return len(deltas)


class _Scope(NamedTuple):
    """Which of a run's rows `record_run_kpis` reads: staged leads (in `chunks` at or after `since`, or all) and
    write-backs."""

    chunks: range | None
    since: datetime | None
    staged: bool
    written: bool
    per_chunk: bool = False  # each of several `chunks` was a page of its own (see `record_run_kpis`)

    def first_at(self, started: datetime) -> datetime:
        """The earliest `lead_runs.at` in scope: the chunk's start, or the run's."""
        return max(started, self.since or started) if self.chunks is not None else started

    def lead_run_filters(self, started: datetime) -> list[Any]:
        """`lead_runs` filters of the run's rows in scope (but `run_id`)."""
        if not self.staged:
            return [sa.false()]
        chunked = [] if self.chunks is None else [lead_runs.c.chunk >= self.chunks.start,
                                                   lead_runs.c.chunk < self.chunks.stop]
        return [lead_runs.c.at >= self.first_at(started), *chunked]


def _summed(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Counter deltas (hour, metric, dimension, count) added up per counter, zero rows dropped."""
    counted = [part for part in parts if len(part)]
    if len(counted) < 2:
        return (counted or parts)[0].reset_index(drop=True)
    summed = pd.concat(counted, ignore_index=True).groupby(
        ["hour", "metric", "dimension"], sort=True, as_index=False)["count"].sum()
    return summed[summed["count"] != 0].reset_index(drop=True)


def _run_deltas(conn: Connection, run_id: str, started: datetime, scope: _Scope) -> pd.DataFrame:
    """Read the run's leads (those in `scope`) with their facts, write their new facts, and return the rollup
    deltas: of the fresh leads counted in the database (`kpi_rollups_sql`), and of the others, counted in pandas."""
    dialect = conn.dialect.name
    ev, f = lead_events, kpi_lead_facts
    since = scope.first_at(started)
    in_database = USE_DATABASE_PATH and stage_run_leads(
        conn, run_id, since, chunks=scope.chunks, staged=scope.staged, written=scope.written,
        per_chunk=scope.per_chunk)
    if in_database:  # the leads not counted in the database, as `stage_run_leads` read them
        leads = sa.table(LEADS_TABLE, *(sa.column(c) for c in ("lead_key", "email", "created_text", "first_at",
                                                               "fresh")))
        staged = sa.select(leads.c.lead_key, leads.c.email, leads.c.created_text.label("run_created"),
                           leads.c.first_at.label("run_at")).where(leads.c.fresh == 0).subquery()
        lr = lead_runs
        run_rows = [*scope.lead_run_filters(started), lr.c.run_id == run_id,
                    lr.c.lead_key.in_(sa.select(leads.c.lead_key).where(leads.c.fresh == 0))]
        # NOT EXISTS: an anti-join (NOT IN over a million keys is quadratic on PG)
        not_fresh = [~sa.exists().where(leads.c.lead_key == ev.c.lead_key, leads.c.fresh == 1)]
    else:
        lr, run_rows = lead_runs, [*scope.lead_run_filters(started), lead_runs.c.run_id == run_id]
        if scope.chunks is not None:  # read the chunk's rows once, on the `at` index
            stage_chunk_rows(conn, run_id, since, scope.chunks)
            lr = sa.table(CHUNK_ROWS_TABLE, *(sa.column(c.name, c.type) for c in lead_runs.c if c.name != "id"))
            run_rows = [lr.c.run_id == run_id]
        if scope.per_chunk:  # as recorded one chunk at a time
            staged = staged_chunk_leads(run_id, postgres=dialect == "postgresql")
        else:
            staged = sa.select(lr.c.lead_key, sa.func.max(lr.c.email).label("email"),
                               sa.func.min(lr.c.created_at).label("run_created"),
                               sa.func.min(lr.c.at).label("run_at")).where(*run_rows).group_by(lr.c.lead_key).subquery()
        not_fresh = []
    touched = _joined(conn, staged)
    written_back = _raw_frame(conn, sa.select(ev.c.lead_key, _epoch(sa.func.min(ev.c.at), dialect).label("wb_at"))
                              .where(ev.c.run_id == run_id, ev.c.stage.like("writeback:%"),
                                     *not_fresh, *([] if scope.written else [sa.false()]))
                              .group_by(ev.c.lead_key))
    # written back, not staged (a replayed dead letter): from its facts
    extra = sorted(set(written_back["lead_key"]) - set(touched["lead_key"]))
    touched = pd.concat([touched, *_known_leads(conn, extra)], ignore_index=True)
    old, new = _new_facts(touched, written_back, run_id)

    emails = sa.select(lr.c.email).where(*run_rows, lr.c.email.is_not(None)).distinct().subquery()
    others = _raw_frame(conn, sa.select(*(f.c[c] for c in FACT_COLUMNS)).join(emails, f.c.email == emails.c.email))
    others = _facts_frame(others.to_numpy(), list(FACT_COLUMNS))
    others = others[~others["lead_key"].isin(new["lead_key"])]
    new, old_others, new_others = _link_created(new, others)

    changed = _changed(old, new)
    upsert_facts(conn, pd.concat([changed, new_others.assign(run_id=run_id)], ignore_index=True))
    before = pd.concat([old[old["lead_key"].isin(changed["lead_key"])], old_others], ignore_index=True)
    deltas = rollup_deltas(before, pd.concat([changed, new_others], ignore_index=True))
    if in_database:
        deltas = _summed([deltas, record_fresh_leads(conn, HISTOGRAM_FLOOR, HISTOGRAM_RATIO,
                                                              SKEW_TOLERANCE_SECONDS)])
        drop_temporary(conn)
    elif lr is not lead_runs:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {CHUNK_ROWS_TABLE}")
    return deltas


def _lock(conn: Connection) -> None:
    """Hold the KPI lock until the transaction ends: one recording at a time reads and rewrites lead facts and
    rollups (PostgreSQL: an advisory lock; SQLite: its write lock does it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _KPI_LOCK})


def _known_leads(conn: Connection, keys: list[str]) -> list[pd.DataFrame]:
    """`_joined` rows of those of `keys` that have facts, driven by the facts alone (no run rows), 500 keys a query.
    `run_at` is a typed null: PostgreSQL reads an untyped one as text, which `extract` refuses."""
    f, no_time = kpi_lead_facts, sa.cast(sa.null(), sa.DateTime(timezone=True))
    return [_joined(conn, sa.select(f.c.lead_key, sa.null().label("email"), sa.null().label("run_created"),
                                    no_time.label("run_at")).where(f.c.lead_key.in_(keys[start:start + 500]))
                    .subquery()) for start in range(0, len(keys), 500)]


def record_lead_kpis(store: StateStore, lead_keys: list[str], run_id: str) -> int:
    """Recount the leads of `lead_keys`, and those whose CRM first touch run `run_id` moved (`lead_first_touches`),
    from their assignment and lifecycle state as stored now, and move their counters (old facts out, new in), stamping
    `run_id` on the facts that changed: for a run that changes assignments without staging leads (`sla_watch`: first
    touches, breach and escalation reassignments). Leads without facts are left to the run that stages them; creation
    time, e-mail, first seen and write-back stay as counted (only a run staging or writing back the lead moves them).
    Returns the number of changed counters; idempotent (a second call finds the facts unchanged)."""
    with store._writing() as conn:
        _lock(conn)
        moved = conn.execute(sa.select(lead_first_touches.c.lead_key).where(lead_first_touches.c.run_id == run_id))
        keys = sorted({*(str(key) for key in lead_keys if key), *moved.scalars()})
        touched = _known_leads(conn, keys)
        if not sum(len(part) for part in touched):
            return 0
        old, new = _new_facts(pd.concat(touched, ignore_index=True), pd.DataFrame(), run_id)
        new["created"] = new["lead_key"].map(old.set_index("lead_key")["created"]).astype("float64")
        changed = _changed(old, new)
        upsert_facts(conn, changed)
        deltas = rollup_deltas(old[old["lead_key"].isin(changed["lead_key"])], changed)
        add_to_rollups(conn, deltas)
        return len(deltas)


def retract_lead_facts(conn: Connection, where: Any) -> int:
    """Take the leads whose `kpi_lead_facts` rows match `where` out of the rollups, in the caller's transaction and
    before it deletes those facts (`StateStore.forget_lead`), so a forgotten lead staged again counts once. Returns the
    number of changed counters."""
    _lock(conn)
    columns = list(FACT_COLUMNS)
    facts = _raw_frame(conn, sa.select(*(kpi_lead_facts.c[c] for c in columns)).where(where))
    if not len(facts):
        return 0
    facts = _facts_frame(facts.to_numpy(), columns)
    deltas = rollup_deltas(facts, facts.iloc[:0])
    add_to_rollups(conn, deltas)
    return len(deltas)


def recount_rollups(conn: Connection, batch: int = 200_000) -> int:
    """Replace every counter but `published_run` with `rollup_counts` of all the stored lead facts (read `batch` leads
    at a time, in key order): what a migration runs when a counter's definition changes, so that later runs, which
    subtract a lead's old contribution as the code now counts it, start from counters counted the same way. Returns
    the number of counters written."""
    total: pd.DataFrame | None = None
    last: str | None = None
    columns = list(FACT_COLUMNS)
    while True:
        query = sa.select(*(kpi_lead_facts.c[c] for c in columns)).order_by(kpi_lead_facts.c.lead_key).limit(batch)
        if last is not None:
            query = query.where(kpi_lead_facts.c.lead_key > last)
        facts = _facts_frame(_raw_frame(conn, query).to_numpy(), columns)
        if not len(facts):
            break
        last = str(facts["lead_key"].iloc[-1])
        counted = rollup_counts(facts)
        total = counted if total is None else _summed([total, counted])
    conn.execute(kpi_rollups.delete().where(kpi_rollups.c.metric != "published_run"))
    if total is not None and len(total):
        add_to_rollups(conn, total)
    return 0 if total is None else len(total)


# --- reading a window ------------------------------------------------------------------------------------------------


def window_start(since: datetime) -> datetime:
    """The hour `since` falls in: where a rollup window starts."""
    if since.tzinfo is None or since.utcoffset() is None:
        since = since.replace(tzinfo=UTC)
    since = since.astimezone(UTC)
    return since.replace(minute=0, second=0, microsecond=0)


def rollup_kpi_summary(store: StateStore, since: datetime, as_of: datetime | None = None, *,
                       run_id: str | None = None, run_stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """`kpi_summary`'s numbers for the window from the hour of `since`, from the rollups (plus the `runs` and
    `dead_letters` rows of the window). `run_stats` stands in for run `run_id`'s stats while it is still running."""
    start = window_start(since)
    as_of = as_of or datetime.now(UTC)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        as_of = as_of.replace(tzinfo=UTC)
    r = kpi_rollups
    total = sa.func.sum(r.c.count)
    with store.engine.connect() as conn:
        counters = conn.execute(sa.select(r.c.metric, r.c.dimension, total).where(r.c.hour >= start)
                                .group_by(r.c.metric, r.c.dimension).having(total != 0)).all()
        run_rows = conn.execute(sa.select(runs.c.run_id, runs.c.flow, runs.c.started_at, runs.c.status,
                                          runs.c.stats).where(runs.c.started_at >= start)).all()
        letters = conn.execute(sa.select(dead_letters.c.error_code, dead_letters.c.status).where(
            dead_letters.c.last_seen >= start)).all()
    by_metric: dict[str, dict[str, int]] = {}
    for metric, dimension, count in counters:
        by_metric.setdefault(metric, {})[dimension] = int(count)

    def count(metric: str, dimension: str = "") -> int:
        return by_metric.get(metric, {}).get(dimension, 0)

    def histogram(metric: str) -> dict[int, int]:
        return {int(b): c for b, c in by_metric.get(metric, {}).items()}

    run_frame = pd.DataFrame.from_records(run_rows, columns=["run_id", "flow", "started_at", "status", "stats"])
    if run_id is not None and run_stats is not None:
        run_frame["stats"] = [run_stats if rid == run_id else stats for rid, stats in zip(
            run_frame["run_id"], run_frame["stats"], strict=True)]
    frames = KpiData(since=start, as_of=as_of, leads=pd.DataFrame(), assignments=pd.DataFrame(),
                     lead_state=pd.DataFrame(), runs=run_frame,
                     dead_letters=pd.DataFrame.from_records(letters, columns=["error_code", "status"]))
    quality, errors = quarantine_trend(frames), sync_errors(frames)
    rows_in = int(quality["rows_in"].sum()) if len(quality) else 0
    quarantined = int(quality["quarantined"].sum()) if len(quality) else 0

    still_open = sum(n for due, n in by_metric.get("sla_pending", {}).items()
                     if datetime.strptime(due, DUE_MINUTE_FORMAT).replace(tzinfo=UTC) + timedelta(minutes=1) > as_of)
    funnel = {stage: count("funnel", stage) for stage in FUNNEL_STAGES}
    funnel.update({stage: n for stage, n in by_metric.get("funnel", {}).items() if stage not in funnel and n})
    reached = {"leads": count("state"), **{name: count("reached", name) for name in ("mql", "sal", "sql")},
               "skipped_mql": count("skipped", "mql"), "skipped_sal": count("skipped", "sal")}
    summary = {
        "leads": count("leads"),
        "assignments": count("assignments"),
        "speed_to_lead_min": histogram_percentiles(histogram("speed_to_lead_min")),
        "created_to_assigned_min": histogram_percentiles(histogram("created_to_assigned_min")),
        "created_to_first_touch_min": histogram_percentiles(histogram("created_to_first_touch_min")),
        "skew_clamped": {measure: count("skew_clamped", measure) for measure in HEADLINE_SKEW},
        "sla": sla_numbers(count("sla_with"), count("sla_met"), still_open),
        "funnel": funnel,
        "conversion": {**reached, **_rates(reached)},
        "velocity_days": {f"{metric}": histogram_percentiles(histogram(metric))["p50"]
                          for metric in ("mql_to_sal_days", "sal_to_sql_days")},
        "runs": int(len(run_frame)),
        "rows_in": rows_in,
        "rows_quarantined": quarantined,
        "quarantine_rate": quarantined / rows_in if rows_in else math.nan,
        "dead_letters": int(errors["count"].sum()) if len(errors) else 0,
        "dead_letters_by_code": {str(row.error_code): int(row.count) for row in errors.itertuples(index=False)},
        "owners": sum(1 for n in by_metric.get("owner", {}).values() if n > 0),
    }
    return _clean(summary)
