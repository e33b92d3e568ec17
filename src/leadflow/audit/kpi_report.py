"""The KPI summary that `leadflow report` draws and `leadflow kpis --json` prints: one JSON-safe dict computed by
`report_summary` from the full read (`leadflow.audit.kpis.KpiData`), so the page and the JSON cannot disagree.

Keys are stable; every duration is {"seconds": number or null, "text": "12.5 min"} (`leadflow.audit.durations`),
rates are fractions (0.5 = 50 %), times ISO 8601 UTC. What it holds beyond `kpi_summary`'s headline:

- speed-to-lead per measure (created → first touch, created → assigned, created → written back and the segments):
  p50/p90/p95, and how many durations were clock skew clamped to 0; per source, lead source and owner; by week of
  creation (weeks start on Monday);
- first touch: where `assignments.first_touch_at` came from (the CRM's task / event / status_history, or `pull`,
  the fallback) and the fallback's share;
- the funnel as cohorts: of the leads created in the window (first seen when the creation time is unknown), how many
  reached each stage (a later stamp passes the earlier stages; those without their own stamp counted as skipped),
  overall, per month, week and lead source; stage velocity (created → MQL, MQL → SAL, SAL → SQL);
- owners by name (the CRM mirror's users and queues, routing.yaml's where the mirror has none), ids kept beside; lead source values the picklist does not know.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from leadflow.audit.charts import nice_max
from leadflow.audit.durations import duration, human_duration
from leadflow.audit.kpis import (
    PERCENTILES,
    SPEED_MEASURES,
    UNASSIGNED,
    UNKNOWN,
    KpiData,
    _clean,
    _rates,
    _reached,
    _utc,
    clamped_seconds,
    funnel_counts,
    kpi_summary,
    load_kpi_data,
    quarantine_rates,
    quarantine_trend,
    sla_attainment,
    speed_frame,
    sync_errors,
)
from leadflow.audit.picklists import lead_sources
from leadflow.store.first_touch_tables import PULL_SOURCE, TOUCH_SOURCES

if TYPE_CHECKING:
    from leadflow.routing.model import RoutingConfig
    from leadflow.store import StateStore

TREND_MEASURES: Final[tuple[str, ...]] = ("created_to_first_touch_min", "created_to_assigned_min")
"""The speed-to-lead measures broken down per group and week."""
STAGE_STEPS: Final[dict[str, tuple[str, str]]] = {"new_to_mql": ("mql_reached_at", "born"),
                                                  "mql_to_sal": ("sal_at", "mql_at"),
                                                  "sal_to_sql": ("sql_at", "sal_at")}


# --- owner names -----------------------------------------------------------------------------------------------------


def owner_names(routing: RoutingConfig | None, crm: Mapping[str, str] | None = None) -> dict[str, str]:
    """Owner id → name: the CRM's names (`crm`, the mirror's Users and lead queues:
    `StateStore.mirror_owner_names`) where it has one, the routing file's users and (named) queues for the rest.
    A CRM name replaces the routing file's for the same id in its 15- or 18-character form."""
    names: dict[str, str] = {}
    if routing is not None:
        names = {uid: user.name for uid, user in routing.users.items()}
        names.update({q.owner_id: q.name or key for key, q in routing.queues.items()})
    crm = {str(k): str(v) for k, v in (crm or {}).items() if v}
    if crm:
        short = {k[:15] for k in crm if len(k) in (15, 18)}
        names = {k: v for k, v in names.items() if k not in crm and not (len(k) in (15, 18) and k[:15] in short)}
        names.update(crm)
    return names


def name_of(owner_id: Any, names: dict[str, str]) -> str | None:
    """The name of `owner_id` (a Salesforce id matches in its 15- or 18-character form); None when unknown."""
    if owner_id is None or (isinstance(owner_id, float) and math.isnan(owner_id)):
        return None
    text = str(owner_id)
    if text in names:
        return names[text]
    if len(text) in (15, 18):
        short = {k[:15]: v for k, v in names.items() if len(k) in (15, 18)}
        return short.get(text[:15])
    return None


# --- durations -------------------------------------------------------------------------------------------------------


def duration_stats(seconds: pd.Series, skewed: pd.Series | None = None) -> dict[str, Any]:
    """n, p50/p90/p95 as durations, and how many were clock skew clamped to 0 (values already clamped)."""
    known = pd.Series(seconds, dtype="float64").dropna().to_numpy()
    out: dict[str, Any] = {"n": int(known.size)}
    for p in PERCENTILES:
        out[f"p{p}"] = duration(float(np.percentile(known, p)) if known.size else None)
    out["skew_clamped"] = int(skewed.sum()) if skewed is not None else 0
    return out


def _measure_name(measure: str) -> str:
    return measure.removesuffix("_min")


def _speed_stats(frame: pd.DataFrame, measures: tuple[str, ...]) -> dict[str, Any]:
    return {_measure_name(m): duration_stats(frame[m] * 60.0, frame[f"{m}_skewed"]) for m in measures}


def _grouped(frame: pd.DataFrame, by: str, label: str = "group") -> list[dict[str, Any]]:
    rows = []
    for group, part in frame.groupby(by, sort=True, dropna=False):
        rows.append({label: str(group), "leads": int(len(part)), **_speed_stats(part, TREND_MEASURES)})
    return rows


def distribution(seconds: pd.Series, bins: int = 12) -> dict[str, Any]:
    """A histogram of the known durations: round-width bins labelled in a readable unit, and their counts."""
    known = pd.Series(seconds, dtype="float64").dropna().clip(lower=0).to_numpy()
    if not known.size:
        return {"labels": [], "counts": []}
    top = float(known.max())
    if top <= 0:
        return {"labels": ["0 s"], "counts": [int(known.size)]}
    step = nice_max(top / bins)
    count = max(1, math.ceil(top / step + 1e-9))
    if top >= count * step:
        count += 1
    edges = np.arange(count + 1) * step
    counts, _ = np.histogram(known, bins=edges)
    labels = [f"{human_duration(edges[i])}–{human_duration(edges[i + 1])}" for i in range(count)]
    return {"labels": labels, "counts": [int(c) for c in counts]}


# --- first touch, funnel cohorts, velocity ---------------------------------------------------------------------------


def first_touch_sources(data: KpiData) -> dict[str, Any]:
    """Of the assignments with a first touch: how many per source, and the share of the `pull` fallback."""
    a = data.assignments
    if a.empty or "first_touch_at" not in a:
        touched = pd.Series(dtype="object")
    else:
        source = a["first_touch_source"] if "first_touch_source" in a else pd.Series(None, index=a.index)
        touched = source[_utc(a["first_touch_at"]).notna()].astype("object")
    counts = touched.where(touched.notna(), UNKNOWN).value_counts()
    by_source = {name: int(counts.get(name, 0)) for name in (*TOUCH_SOURCES, PULL_SOURCE)}
    by_source.update({str(k): int(v) for k, v in counts.items() if k not in by_source})
    fallback = by_source[PULL_SOURCE]
    return {"touched": int(len(touched)), "by_source": by_source, "fallback": fallback,
            "fallback_share": fallback / len(touched) if len(touched) else math.nan}


def cohort_frame(data: KpiData) -> pd.DataFrame:
    """The lead state of the leads created in the window (first seen when the creation time is unknown), with
    `born`, `month`, `week` (its Monday) and `lead_source`."""
    state = data.lead_state.copy()
    info = data.leads.set_index("lead_key") if len(data.leads) else pd.DataFrame(
        columns=["created_at", "pulled_at", "lead_source"])
    born = _utc(state["lead_key"].map(info["created_at"])).fillna(_utc(state["lead_key"].map(info["pulled_at"])))
    state["born"] = born
    state = state[born >= pd.Timestamp(data.since).tz_convert("UTC")].copy()
    day = state["born"].dt.tz_convert("UTC").dt.normalize()
    state["month"] = state["born"].dt.strftime("%Y-%m")
    state["week"] = (day - pd.to_timedelta(day.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    source = state["lead_key"].map(info["lead_source"])
    state["lead_source"] = source.where(source.notna(), UNKNOWN)
    stamps = [_utc(state[c]) for c in ("mql_at", "sal_at", "sql_at")]
    state["mql_reached_at"] = stamps[0].fillna(stamps[1]).fillna(stamps[2])
    return state


def _funnel_row(state: pd.DataFrame) -> dict[str, Any]:
    reached = _reached(state)
    return {**reached, **_rates(reached)}


def cohort_funnel(state: pd.DataFrame, by: str | None = None) -> list[dict[str, Any]] | dict[str, Any]:
    """The cohort's funnel (leads, mql, sal, sql, skipped_mql, skipped_sal and the step rates), overall or per `by`."""
    if by is None:
        return _funnel_row(state)
    return [{by: str(group), **_funnel_row(part)} for group, part in state.groupby(by, sort=True)]


def stage_velocity_stats(state: pd.DataFrame) -> dict[str, Any]:
    """Per step (created → MQL reached, MQL → SAL, SAL → SQL): duration stats over the leads with both times."""
    out = {}
    for step, (later, earlier) in STAGE_STEPS.items():
        if state.empty:
            out[step] = duration_stats(pd.Series(dtype="float64"))
            continue
        seconds, skewed = clamped_seconds(state[later], state[earlier])
        out[step] = duration_stats(seconds, skewed)
    return out


# --- the summary -----------------------------------------------------------------------------------------------------


def report_summary(data: KpiData, names: dict[str, str] | None = None) -> dict[str, Any]:
    """Every number `leadflow report` shows, JSON-safe (see the module docstring)."""
    names = names or {}
    headline = kpi_summary(data)
    speed = speed_frame(data)
    speed["owner"] = speed["owner_id"].where(speed["owner_id"].notna(), UNASSIGNED)
    speed["week"] = _week(speed["created_at"].where(speed["created_at"].notna(), speed["pulled_at"]))
    cohort = cohort_frame(data)
    _, unknown = lead_sources().normalize(data.leads.get("lead_source_raw", pd.Series(dtype="object")), UNKNOWN)
    owners = data.assignments["owner_id"] if len(data.assignments) else pd.Series(dtype="object")
    owner_counts = owners.astype("object").where(owners.notna(), UNASSIGNED).value_counts()
    by_owner = {row["group"]: row for row in _grouped(speed, "owner")}
    quality = quarantine_trend(data)
    errors = sync_errors(data)
    shown = "speed_to_lead_min" if speed["speed_to_lead_min"].notna().any() else "created_to_assigned_min"
    summary = {
        "window": {"since": _iso(data.since), "as_of": _iso(data.as_of)},
        "leads": headline["leads"],
        "assignments": headline["assignments"],
        "speed_to_lead": {
            **_speed_stats(speed, SPEED_MEASURES),
            "distribution": {"measure": _measure_name(shown), **distribution(speed[shown] * 60.0)},
            "by_source": _grouped(speed, "source"),
            "by_lead_source": _grouped(speed, "lead_source"),
            "by_owner": [{"owner_id": owner, "owner_name": name_of(owner, names), **{
                k: v for k, v in row.items() if k != "group"}} for owner, row in by_owner.items()],
            "weekly": _grouped(speed[speed["week"].notna()], "week", "week"),
        },
        "first_touch": first_touch_sources(data),
        "sla": sla_attainment(data),
        "funnel": {
            "cohort": cohort_funnel(cohort),
            "by_month": cohort_funnel(cohort, "month"),
            "by_week": cohort_funnel(cohort, "week"),
            "by_lead_source": cohort_funnel(cohort, "lead_source"),
            "current_stage": funnel_counts(data),
            "velocity": stage_velocity_stats(cohort),
        },
        "quality": {
            "runs": headline["runs"], "rows_in": headline["rows_in"], "rows_quarantined": headline["rows_quarantined"],
            "quarantine_rate": headline["quarantine_rate"],
            "by_day": [{"day": r.day, "rows_in": int(r.rows_in), "quarantined": int(r.quarantined), "rate": r.rate}
                       for r in quality.itertuples(index=False)],
            "by_run": [{"run_id": str(r.run_id), "flow": r.flow, "started_at": _iso(r.started_at), "stage": r.stage,
                        "expectation": r.expectation or None, "rows_in": int(r.rows_in),
                        "quarantined": int(r.quarantined), "rate": r.rate}
                       for r in quarantine_rates(data).itertuples(index=False)],
        },
        "sync_errors": {"dead_letters": headline["dead_letters"],
                        "by_code": [{"error_code": str(r.error_code), "count": int(r.count), "pending": int(r.pending),
                                     "permanent": int(r.permanent), "resolved": int(r.resolved)}
                                    for r in errors.itertuples(index=False)]},
        "owners": [{"owner_id": str(k), "owner_name": name_of(k, names) if k != UNASSIGNED else None,
                    "assignments": int(v)}
                   for k, v in sorted(owner_counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))],
        "lead_sources": {"unknown": unknown},
        "skew_clamped": headline["skew_clamped"],
    }
    return _clean(summary)


def load_summary(store: StateStore, since: datetime, as_of: datetime, names: dict[str, str] | None = None
                 ) -> dict[str, Any]:
    """`report_summary` of the window from `since` (the full read)."""
    return report_summary(load_kpi_data(store, since, as_of=as_of), names)


def _week(times: pd.Series) -> pd.Series:
    stamps = _utc(times)
    day = stamps.dt.normalize()
    monday = (day - pd.to_timedelta(day.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    return monday.where(stamps.notna())


def _iso(moment: Any) -> str | None:
    if moment is None or pd.isna(moment):
        return None
    return pd.Timestamp(moment).tz_convert("UTC").isoformat().replace("+00:00", "Z")
