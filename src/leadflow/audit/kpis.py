"""Lead-flow KPIs from the state store: speed-to-lead, SLA attainment, funnel and stage velocity, data quality,
sync errors and owner distribution.

`load_kpi_data(store, since)` reads the frames once (read-only queries); every other function here is a pure
function of the `KpiData` it returns, so the numbers can be checked on tiny hand-made data. This full read is what
`leadflow report` draws; the KPIs published after every run come from hourly rollups each run keeps up to date
(`leadflow.audit.kpi_rollups`, same headline keys as `kpi_summary`), not from re-reading the window.

What each number means:

- **speed-to-lead**, per lead: created (the canonical `created_at` after standardizing, as `lead_runs` recorded it —
  for Marketo leads the first form fill — else the routing snapshot's; and the earliest of those across the records
  of the same person (e-mail) in other systems, so a lead the MAP passed to the CRM counts from the form fill, not
  the CRM record's creation) → pulled (the first run that staged the lead) → assigned (`assignments.assigned_at`)
  → written back (the first `writeback:*` audit event, or `assignments.written_at`, whichever is earlier).
  `speed_to_lead_min` is created → written back (the owner is on the lead in its system);
  `created_to_first_touch_min` is created → the first touch (`assignments.first_touch_at`: the CRM's Task, Event or
  status change, or the `pull` fallback, see `first_touch_source`); the segments are kept too.
- **clock skew**: a duration whose end is recorded before its start (clocks of two systems) is clamped to 0 and
  counted per measure (`skew_clamped`), so no duration is negative and none drags a percentile below 0.
- **SLA attainment**: of the assignments with an `sla_due_at` whose outcome is decided, the share met: met /
  (met + missed). Met: touched by the due time; missed: touched late, or untouched past the due time; open (untouched,
  unbreached, not yet due at `as_of`) is shown apart and counted neither way.
- **funnel**: leads per lifecycle stage, and how many reached MQL / SAL / SQL — a later stamp means the earlier stages
  were passed (a lead with `sal_at` but no `mql_at` reached MQL, counted in `skipped_mql`), so each stage holds a
  subset of the one before and no conversion exceeds 100 %: new→MQL = MQL / leads, MQL→SAL = SAL / MQL, SAL→SQL =
  SQL / SAL. Velocity: median days mql_at→sal_at, sal_at→sql_at (skew clamped).
- **data quality**: per run, quarantined / rows in, per stage and per expectation (`runs.stats`); by day, the sum
  over that day's runs. Sync errors: dead letters per `error_code`.

Windows: leads first seen (first run that staged them; in older stores, first audit event) at or after `since`, assignments made at or after `since`, lifecycle
rows updated at or after `since`, runs started at or after `since`, dead letters last seen at or after `since`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadflow.audit.picklists import lead_sources

if TYPE_CHECKING:
    from leadflow.store import StateStore

PERCENTILES: Final[tuple[int, ...]] = (50, 90, 95)
SEGMENTS: Final[dict[str, tuple[str, str]]] = {
    "created_to_pulled_min": ("pulled_at", "created_at"),
    "pulled_to_assigned_min": ("assigned_at", "pulled_at"),
    "assigned_to_written_min": ("written_at", "assigned_at"),
    "created_to_assigned_min": ("assigned_at", "created_at"),
    "created_to_first_touch_min": ("first_touch_at", "created_at"),
    "speed_to_lead_min": ("written_at", "created_at"),
}
"""Per-lead measure → (later, earlier) `KpiData.leads` columns; `speed_to_lead_min` = created → written back."""
SPEED_MEASURES: Final[tuple[str, ...]] = tuple(SEGMENTS)
HEADLINE_SKEW: Final[tuple[str, ...]] = ("created_to_assigned_min", "created_to_first_touch_min", "speed_to_lead_min",
                                         "mql_to_sal_days", "sal_to_sql_days")
"""The measures whose clamped skew `kpi_summary` (and the rollups) count."""
SKEW_TOLERANCE_SECONDS: Final[float] = 0.001
"""A duration below minus this is clock skew (clamped and counted); between it and 0, float noise (clamped only)."""
FUNNEL_STAGES: Final[tuple[str, ...]] = ("new", "mql", "sal", "sql", "recycled")
UNKNOWN: Final[str] = "(unknown)"
UNASSIGNED: Final[str] = "(no owner)"

_LEAD_COLUMNS: Final[list[str]] = ["lead_key", "source", "lead_source", "lead_source_raw", "created_at", "pulled_at",
                                   "assigned_at", "written_at", "first_touch_at", "first_touch_source", "owner_id"]


@dataclass
class KpiData:
    """The frames the KPIs are computed from (see the module docstring for the windows)."""

    since: datetime
    as_of: datetime
    leads: pd.DataFrame
    """One row per lead: lead_key, source (key prefix), lead_source (normalized: `leadflow.audit.picklists`),
    lead_source_raw (as recorded), created_at, pulled_at, assigned_at, written_at, first_touch_at (UTC timestamps,
    NaT when unknown), first_touch_source, owner_id."""
    assignments: pd.DataFrame
    """`StateStore.assignments` columns (times as UTC timestamps)."""
    lead_state: pd.DataFrame
    """lead_key, lifecycle_stage, mql_at, sal_at, sql_at, recycled_at, updated_at (UTC timestamps)."""
    runs: pd.DataFrame
    """run_id, flow, started_at, status, stats (dict or None)."""
    dead_letters: pd.DataFrame = field(default_factory=pd.DataFrame)
    """system, object, record_id, error_code, status, attempts, first_seen, last_seen."""


# --- loading ---------------------------------------------------------------------------------------------------------


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="object"), utc=True, errors="coerce", format="mixed")


def _select(store: StateStore, query: sa.Select[Any]) -> pd.DataFrame:
    with store.engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame.from_records(result.all(), columns=list(result.keys()))


def load_kpi_data(store: StateStore, since: datetime, as_of: datetime | None = None) -> KpiData:
    """Read what the KPIs need from `store` for the window starting at `since` (timezone-aware)."""
    from leadflow.store.tables import dead_letters, lead_events, lead_runs, lead_state, runs

    if since.tzinfo is None or since.utcoffset() is None:
        since = since.replace(tzinfo=UTC)
    as_of = as_of or datetime.now(UTC)
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        as_of = as_of.replace(tzinfo=UTC)
    ev, lr = lead_events, lead_runs

    # first seen: the earliest run that staged the lead (lead_runs) or, in an older store, its first event; an
    # erasure's anonymous tombstone (`erased:<sha256>`, `StateStore.forget_lead`) is no lead
    seen = sa.union_all(sa.select(lr.c.lead_key, lr.c.at), sa.select(ev.c.lead_key, ev.c.at).where(
        ev.c.lead_key.not_like("erased:%"))).subquery()
    first = _select(store, sa.select(seen.c.lead_key, sa.func.min(seen.c.at).label("pulled_at"))
                    .group_by(seen.c.lead_key).having(sa.func.min(seen.c.at) >= since))
    created, sources = [pd.concat([
        _select(store, sa.select(lr.c.lead_key, lr.c[column].label("new_value"), lr.c.at).where(
            lr.c.at >= since, lr.c[column].is_not(None)).order_by(lr.c.at, lr.c.id)),
        _select(store, sa.select(ev.c.lead_key, ev.c.new_value, ev.c.at).where(
            ev.c.column_name == column, ev.c.at >= since).order_by(ev.c.at, ev.c.id)),
    ], ignore_index=True) for column in ("created_at", "lead_source")]
    for frame in (created, sources):
        frame["at"] = _utc(frame["at"])
        frame.sort_values("at", kind="stable", inplace=True)
    written = _select(store, sa.select(ev.c.lead_key, sa.func.min(ev.c.at).label("written_at")).where(
        ev.c.stage.like("writeback:%"), ev.c.at >= since).group_by(ev.c.lead_key))
    assigned = store.assignments(since=since)

    state = _select(store, sa.select(lead_state.c.lead_key, lead_state.c.lifecycle_stage, lead_state.c.mql_at,
                                     lead_state.c.sal_at, lead_state.c.sql_at, lead_state.c.recycled_at,
                                     lead_state.c.updated_at).where(lead_state.c.updated_at >= since))
    for column in ("mql_at", "sal_at", "sql_at", "recycled_at", "updated_at"):
        state[column] = _utc(state[column])
    run_rows = _select(store, sa.select(runs.c.run_id, runs.c.flow, runs.c.started_at, runs.c.status, runs.c.stats)
                       .where(runs.c.started_at >= since).order_by(runs.c.started_at))
    run_rows["started_at"] = _utc(run_rows["started_at"])
    dl = dead_letters
    letters = _select(store, sa.select(dl.c.system, dl.c.object, dl.c.record_id, dl.c.error_code, dl.c.status,
                                       dl.c.attempts, dl.c.first_seen, dl.c.last_seen).where(dl.c.last_seen >= since))

    emails = _select(store, sa.select(lr.c.lead_key, lr.c.email).where(lr.c.at >= since, lr.c.email.is_not(None))
                     .distinct())
    leads = build_leads(first, created, sources, written, assigned, emails)
    return KpiData(since=since, as_of=as_of, leads=leads, assignments=assigned, lead_state=state, runs=run_rows,
                   dead_letters=letters)


def build_leads(first: pd.DataFrame, created: pd.DataFrame, sources: pd.DataFrame, written: pd.DataFrame,
                assigned: pd.DataFrame, emails: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-lead timeline from the audit-trail extracts and the assignments (see `KpiData.leads`).

    `emails` (lead_key, email) links the records of one person across systems: a lead's creation time is the
    earliest any of them recorded, so a lead the MAP passed to the CRM counts from the form fill, not from the CRM
    record's creation."""
    keys = list(dict.fromkeys([*first.get("lead_key", []), *assigned.get("lead_key", [])]))
    leads = pd.DataFrame({"lead_key": pd.Series(keys, dtype="object")})
    leads["source"] = [str(k).split(":", 1)[0] if ":" in str(k) else UNKNOWN for k in keys]

    def by_key(frame: pd.DataFrame, column: str, keep: str = "first") -> pd.Series:
        if frame.empty:
            return pd.Series(dtype="object")
        return frame.drop_duplicates("lead_key", keep=keep).set_index("lead_key")[column]  # type: ignore[arg-type]

    snapshots = {k: (v if isinstance(v, dict) else {}) for k, v in zip(
        assigned.get("lead_key", []), assigned.get("inputs", []), strict=True)}
    # canonical creation time: the earliest created_at the audit trail recorded; else the routing snapshot's
    created_text = leads["lead_key"].map(by_key(created, "new_value", "first"))
    snap_created = leads["lead_key"].map(lambda k: snapshots.get(k, {}).get("created_at"))
    leads["created_at"] = _utc(created_text).fillna(_utc(snap_created))
    own = pd.DataFrame({"lead_key": created["lead_key"], "created": _utc(created["new_value"])}).dropna()
    if emails is not None and len(emails) and len(own):
        person = emails.merge(own, on="lead_key").groupby("email", as_index=False)["created"].min()
        earliest = emails.merge(person, on="email").groupby("lead_key")["created"].min()
        linked = _utc(leads["lead_key"].map(earliest.astype("object")))
        leads["created_at"] = pd.concat([leads["created_at"], linked], axis=1).min(axis=1)
    # lead source: the latest value the audit trail recorded; else the routing snapshot's
    source_text = leads["lead_key"].map(by_key(sources, "new_value", "last"))
    snap_source = leads["lead_key"].map(lambda k: snapshots.get(k, {}).get("lead_source"))
    lead_source = source_text.where(source_text.notna() & (source_text.astype("string") != ""), snap_source)
    leads["lead_source_raw"] = lead_source.astype("object")
    leads["lead_source"] = lead_sources().normalize(lead_source, UNKNOWN)[0].to_numpy()
    pulled = _utc(leads["lead_key"].map(by_key(first, "pulled_at")))
    leads["assigned_at"] = _utc(leads["lead_key"].map(by_key(assigned, "assigned_at")))
    # Both stamps are leadflow's own clock, and it assigns only leads it has pulled: an assignment stamped before the
    # pull (a run's leads are assigned as of its start, to the second; the pull is stamped when the chunk's first
    # stage is recorded) dates the pull. Not clock skew, so never counted as such.
    leads["pulled_at"] = pulled.where(~(leads["assigned_at"] < pulled).to_numpy(dtype=bool), leads["assigned_at"])
    wb_event = _utc(leads["lead_key"].map(by_key(written, "written_at")))
    wb_stamp = _utc(leads["lead_key"].map(by_key(assigned, "written_at")))
    leads["written_at"] = pd.concat([wb_event, wb_stamp], axis=1).min(axis=1)
    leads["first_touch_at"] = _utc(leads["lead_key"].map(by_key(assigned, "first_touch_at"))
                                   if "first_touch_at" in assigned else [pd.NaT] * len(leads))
    touch_source = (leads["lead_key"].map(by_key(assigned, "first_touch_source"))
                    if "first_touch_source" in assigned else pd.Series(None, index=leads.index, dtype="object"))
    leads["first_touch_source"] = touch_source.where(leads["first_touch_at"].notna()).astype("object")
    owners = by_key(assigned, "owner_id")
    leads["owner_id"] = leads["lead_key"].map(owners).astype("object")
    return leads[_LEAD_COLUMNS]


# --- speed-to-lead ---------------------------------------------------------------------------------------------------


def clamped_seconds(later: pd.Series, earlier: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(later − earlier in seconds with negatives clamped to 0 (NaN when an end is unknown), which were clock skew:
    below −`SKEW_TOLERANCE_SECONDS`)."""
    seconds = ((_utc(later) - _utc(earlier)).dt.total_seconds()).astype("float64")
    skewed = (seconds < -SKEW_TOLERANCE_SECONDS).fillna(False).astype(bool)
    return seconds.clip(lower=0.0), skewed


def speed_frame(data: KpiData) -> pd.DataFrame:
    """Per lead: the timeline plus minutes per segment (`SPEED_MEASURES`; NaN when an end is unknown, 0 for clock
    skew) and, per segment, `<measure>_skewed` (True where skew was clamped)."""
    leads = data.leads.copy()
    for measure, (later, earlier) in SEGMENTS.items():
        seconds, skewed = clamped_seconds(leads[later], leads[earlier])
        leads[measure] = seconds / 60.0
        leads[f"{measure}_skewed"] = skewed
    return leads


def percentiles(values: pd.Series | np.ndarray | list[float]) -> dict[str, float]:
    """p50/p90/p95 (linear interpolation) of the known values, and their count; NaN when there are none."""
    known = pd.Series(values, dtype="float64").dropna().to_numpy()
    out: dict[str, float] = {"n": int(known.size)}
    for p in PERCENTILES:
        out[f"p{p}"] = float(np.percentile(known, p)) if known.size else math.nan
    return out


def speed_percentiles(data: KpiData, by: str | None = "source", measure: str = "speed_to_lead_min") -> pd.DataFrame:
    """p50/p90/p95 minutes of `measure` per `by` (`source`, `lead_source`, or None for all leads)."""
    frame = speed_frame(data)
    rows = []
    if by is None:
        rows.append({"group": "all", **percentiles(frame[measure])})
    else:
        for group, part in frame.groupby(by, sort=True, dropna=False):
            rows.append({"group": str(group), **percentiles(part[measure])})
    return pd.DataFrame(rows, columns=["group", "n", *(f"p{p}" for p in PERCENTILES)])


def sla_attainment(data: KpiData) -> dict[str, float]:
    """Of the assignments with an SLA: met (touched by the due time), open (untouched, unbreached, not yet due:
    undecided), missed (the rest) and attainment = met / (met + missed) (NaN when none is decided)."""
    a = data.assignments
    if a.empty:
        return {"with_sla": 0, "met": 0, "open": 0, "missed": 0, "attainment": math.nan}
    due = _utc(a["sla_due_at"])
    touch = _utc(a["first_touch_at"])
    breached = _utc(a["breached_at"])
    has = due.notna()
    met = has & touch.notna() & (touch <= due)
    still_open = has & touch.isna() & breached.isna() & (due > pd.Timestamp(data.as_of).tz_convert("UTC"))
    with_sla, met_n, open_n = int(has.sum()), int(met.sum()), int(still_open.sum())
    return sla_numbers(with_sla, met_n, open_n)


def sla_numbers(with_sla: int, met: int, still_open: int) -> dict[str, float]:
    """The SLA counts and attainment = met / (met + missed), open (not yet due) counted neither way."""
    missed = with_sla - met - still_open
    decided = met + missed
    return {"with_sla": with_sla, "met": met, "open": still_open, "missed": missed,
            "attainment": met / decided if decided else math.nan}


# --- funnel ----------------------------------------------------------------------------------------------------------


def funnel_counts(data: KpiData) -> dict[str, int]:
    """Leads per current lifecycle stage (every stage listed, 0 when none)."""
    counts = data.lead_state["lifecycle_stage"].astype("string").value_counts() if len(data.lead_state) else {}
    out = {stage: int(counts.get(stage, 0)) for stage in FUNNEL_STAGES}
    for stage, n in dict(counts).items():
        out.setdefault(str(stage), int(n))
    return out


def _reached(state: pd.DataFrame) -> dict[str, int]:
    """Leads, and how many reached MQL / SAL / SQL: a later stage's stamp means the earlier stages were passed
    (`skipped_mql`, `skipped_sal`: reached without that stage's own stamp)."""
    if state.empty:
        return {"leads": 0, "mql": 0, "sal": 0, "sql": 0, "skipped_mql": 0, "skipped_sal": 0}
    mql, sal, sql = (state[f"{name}_at"].notna() for name in ("mql", "sal", "sql"))
    reached_sal = sal | sql
    reached_mql = mql | reached_sal
    return {"leads": int(len(state)), "mql": int(reached_mql.sum()), "sal": int(reached_sal.sum()),
            "sql": int(sql.sum()), "skipped_mql": int((reached_mql & ~mql).sum()),
            "skipped_sal": int((sql & ~sal).sum())}


def _rates(reached: dict[str, int]) -> dict[str, float]:
    def ratio(a: int, b: int) -> float:
        return a / b if b else math.nan

    return {"new_to_mql": ratio(reached["mql"], reached["leads"]), "mql_to_sal": ratio(reached["sal"], reached["mql"]),
            "sal_to_sql": ratio(reached["sql"], reached["sal"])}


def _state_with_leads(data: KpiData) -> pd.DataFrame:
    state = data.lead_state.copy()
    info = data.leads.set_index("lead_key")
    created = _utc(state["lead_key"].map(info["created_at"])) if len(info) else _utc([pd.NaT] * len(state))
    pulled = _utc(state["lead_key"].map(info["pulled_at"])) if len(info) else _utc([pd.NaT] * len(state))
    born = created.fillna(pulled)
    state["month"] = born.dt.strftime("%Y-%m").where(born.notna(), UNKNOWN)
    source = state["lead_key"].map(info["lead_source"]) if len(info) else pd.Series(pd.NA, index=state.index)
    state["lead_source"] = source.where(source.notna(), UNKNOWN)
    return state


def conversion(data: KpiData, by: str | None = None) -> pd.DataFrame:
    """Leads reaching MQL / SAL / SQL and the step conversion rates, overall or per `month` (of creation; first
    seen when the creation time is unknown) or `lead_source`."""
    columns = ["group", "leads", "mql", "sal", "sql", "skipped_mql", "skipped_sal", "new_to_mql", "mql_to_sal",
               "sal_to_sql"]
    if by is None:
        reached = _reached(data.lead_state)
        return pd.DataFrame([{"group": "all", **reached, **_rates(reached)}], columns=columns)
    state = _state_with_leads(data)
    rows = []
    for group, part in state.groupby(by, sort=True):
        reached = _reached(part)
        rows.append({"group": str(group), **reached, **_rates(reached)})
    return pd.DataFrame(rows, columns=columns)


VELOCITY_STEPS: Final[dict[str, tuple[str, str]]] = {"mql_to_sal_days": ("sal_at", "mql_at"),
                                                     "sal_to_sql_days": ("sql_at", "sal_at")}


def velocity_frame(data: KpiData) -> pd.DataFrame:
    """Per lead state row: days of each `VELOCITY_STEPS` step (NaN unless both stamps; skew clamped to 0) and
    `<step>_skewed`."""
    s = data.lead_state
    out = pd.DataFrame(index=s.index)
    for step, (later, earlier) in VELOCITY_STEPS.items():
        if s.empty:
            out[step], out[f"{step}_skewed"] = pd.Series(dtype="float64"), pd.Series(dtype=bool)
            continue
        seconds, skewed = clamped_seconds(s[later], s[earlier])
        out[step], out[f"{step}_skewed"] = seconds / 86400.0, skewed
    return out


def stage_velocity(data: KpiData) -> dict[str, float]:
    """Median days mql_at → sal_at and sal_at → sql_at over the leads with both stamps (NaN when none)."""
    frame = velocity_frame(data)
    return {step: float(frame[step].median()) if frame[step].notna().any() else math.nan for step in VELOCITY_STEPS}


def skew_counts(data: KpiData, measures: tuple[str, ...] = HEADLINE_SKEW) -> dict[str, int]:
    """Per measure (speed segment or velocity step), how many durations were clock skew clamped to 0."""
    speed, velocity = speed_frame(data), velocity_frame(data)
    return {m: int((speed if m in SEGMENTS else velocity)[f"{m}_skewed"].sum()) for m in measures}


def mql_by_month(data: KpiData) -> dict[str, int]:
    """MQLs per month of their `mql_at`."""
    stamps = _utc(data.lead_state["mql_at"]).dropna() if len(data.lead_state) else pd.Series(dtype="object")
    if not len(stamps):
        return {}
    counts = stamps.dt.strftime("%Y-%m").value_counts().sort_index()
    return {str(k): int(v) for k, v in counts.items()}


# --- data quality ----------------------------------------------------------------------------------------------------


def quarantine_rates(data: KpiData) -> pd.DataFrame:
    """Per run with stats: one row per stage (expectation empty) and per stage and expectation — quarantined,
    rows_in and rate = quarantined / rows_in."""
    rows = []
    for run in data.runs.itertuples(index=False):
        stats = run.stats if isinstance(run.stats, dict) else {}
        rows_in = stats.get("rows_in")
        if not rows_in:
            continue
        base = {"run_id": run.run_id, "flow": run.flow, "started_at": run.started_at, "rows_in": int(rows_in)}
        for stage, count in (stats.get("quarantined_by_stage") or {}).items():
            rows.append({**base, "stage": str(stage), "expectation": "", "quarantined": int(count),
                         "rate": int(count) / int(rows_in)})
        for stage, expectations in (stats.get("quarantined_by_expectation") or {}).items():
            for name, count in (expectations or {}).items():
                rows.append({**base, "stage": str(stage), "expectation": str(name), "quarantined": int(count),
                             "rate": int(count) / int(rows_in)})
    return pd.DataFrame(rows, columns=["run_id", "flow", "started_at", "rows_in", "stage", "expectation",
                                       "quarantined", "rate"])


def quarantine_trend(data: KpiData) -> pd.DataFrame:
    """Per day (of run start): rows in, rows quarantined and the rate, over the runs with stats."""
    rows = []
    for run in data.runs.itertuples(index=False):
        stats = run.stats if isinstance(run.stats, dict) else {}
        if not stats.get("rows_in"):
            continue
        quarantined = stats.get("rows_quarantined")
        if quarantined is None:
            quarantined = sum(int(v) for v in (stats.get("quarantined_by_stage") or {}).values())
        rows.append({"day": pd.Timestamp(run.started_at).strftime("%Y-%m-%d"), "rows_in": int(stats["rows_in"]),
                     "quarantined": int(quarantined)})
    frame = pd.DataFrame(rows, columns=["day", "rows_in", "quarantined"])
    trend = frame.groupby("day", sort=True, as_index=False)[["rows_in", "quarantined"]].sum()
    trend["rate"] = (trend["quarantined"] / trend["rows_in"]).astype("float64")
    return trend


def sync_errors(data: KpiData) -> pd.DataFrame:
    """Dead letters per error_code (and how many are pending / permanent / resolved), most frequent first."""
    columns = ["error_code", "count", "pending", "permanent", "resolved"]
    letters = data.dead_letters
    if letters.empty:
        return pd.DataFrame(columns=columns)
    table = pd.crosstab(letters["error_code"], letters["status"])
    for status in ("pending", "permanent", "resolved"):
        if status not in table:
            table[status] = 0
    table["count"] = table[["pending", "permanent", "resolved"]].sum(axis=1)
    table = table.reset_index().sort_values(["count", "error_code"], ascending=[False, True])
    return table[columns].reset_index(drop=True).astype({c: "int64" for c in columns[1:]})


# --- owners ----------------------------------------------------------------------------------------------------------


def owner_distribution(data: KpiData) -> dict[str, int]:
    """Assignments per owner (most first; no owner as `(no owner)`)."""
    if data.assignments.empty:
        return {}
    owners = data.assignments["owner_id"].astype("object").where(data.assignments["owner_id"].notna(), UNASSIGNED)
    counts = owners.value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return {str(k): int(v) for k, v in ordered}


# --- summary ---------------------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else round(number, 4)
    return value


def kpi_summary(data: KpiData) -> dict[str, Any]:
    """The headline numbers (JSON-safe: numbers, None for undefined) for a Prefect artifact or a log line."""
    speed = speed_frame(data)
    quality = quarantine_trend(data)
    rows_in = int(quality["rows_in"].sum()) if len(quality) else 0
    quarantined = int(quality["quarantined"].sum()) if len(quality) else 0
    errors = sync_errors(data)
    summary = {
        "leads": int(len(data.leads)),
        "assignments": int(len(data.assignments)),
        "speed_to_lead_min": percentiles(speed["speed_to_lead_min"]),
        "created_to_assigned_min": percentiles(speed["created_to_assigned_min"]),
        "created_to_first_touch_min": percentiles(speed["created_to_first_touch_min"]),
        "skew_clamped": skew_counts(data),
        "sla": sla_attainment(data),
        "funnel": funnel_counts(data),
        "conversion": {k: v for k, v in conversion(data).iloc[0].items() if k != "group"},
        "velocity_days": stage_velocity(data),
        "runs": int(len(data.runs)),
        "rows_in": rows_in,
        "rows_quarantined": quarantined,
        "quarantine_rate": quarantined / rows_in if rows_in else math.nan,
        "dead_letters": int(errors["count"].sum()) if len(errors) else 0,
        "dead_letters_by_code": {str(r.error_code): int(r.count) for r in errors.itertuples(index=False)},
        "owners": int(len(owner_distribution(data))),
    }
    return _clean(summary)


def flatten_summary(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`kpi_summary` with nested keys joined by dots (`sla.attainment`), e.g. for a one-row table artifact."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_summary(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def readable_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """`kpi_summary` as (kpi, value) rows for a person: durations in s / min / h / d, rates as percentages."""
    from leadflow.audit.durations import human_duration

    rows = []
    for key, value in flatten_summary(summary).items():
        name = key.rsplit(".", 1)[-1]
        head = key.split(".", 1)[0]
        if value is not None and head.endswith("_min") and name in {f"p{p}" for p in PERCENTILES}:
            value = human_duration(float(value) * 60.0)
        elif value is not None and head == "velocity_days":
            value = human_duration(float(value) * 86400.0)
        elif value is not None and (name in ("attainment", "quarantine_rate") or "_to_" in name) and \
                head != "skew_clamped":
            value = f"{float(value):.1%}"
        rows.append({"kpi": key, "value": value})
    return rows
