"""The numbers the report page shows beyond `leadflow.audit.kpi_report.report_summary`, each a pure function of a
`KpiData` (or of two summaries), JSON-safe like the summary:

- `previous_window` / `clip_window`: the window of equal length before the report's, and a `KpiData` cut at its end,
  so the same `report_summary` can be computed for it; `tile_trend` compares the headline tiles of two summaries;
- `sla_by`: first-touch SLA met / missed / open and attainment = met / (met + missed) per routing rule or owner
  (the same classification as `kpis.sla_attainment`, per group);
- `owner_load`: per owner, of the leads assigned in the window: touched, waiting (untouched, not past due) and
  overdue (untouched past its SLA due time or breached);
- `quarantine_breakdown`: rows quarantined per stage and expectation over the window's runs, and their share of the
  rows those runs took in.

`report_sections(data, names, previous_summary)` returns all of them in one dict (what `render_report` draws).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

import pandas as pd

from leadflow.audit.kpi_report import name_of
from leadflow.audit.kpis import UNASSIGNED, KpiData, _clean, _utc, quarantine_rates, quarantine_trend, sla_attainment

__all__ = ["TILE_DIRECTIONS", "clip_window", "owner_load", "previous_window", "quarantine_breakdown",
           "report_sections", "sla_by", "tile_numbers", "tile_trend"]

TILE_DIRECTIONS: Final[dict[str, int]] = {
    "leads": 0, "assignments": 0,
    "speed_to_lead.created_to_first_touch.p50": -1, "speed_to_lead.created_to_first_touch.p90": -1,
    "speed_to_lead.created_to_assigned.p50": -1, "speed_to_lead.speed_to_lead.p50": -1,
    "first_touch.fallback_share": -1, "sla.attainment": 1, "sla.met": 1, "sla.missed": -1, "sla.open": 0,
    "funnel.cohort.new_to_mql": 1, "funnel.cohort.mql_to_sal": 1, "funnel.cohort.sal_to_sql": 1,
    "quality.quarantine_rate": -1, "sync_errors.dead_letters": -1,
}
"""Headline tile key → which way is better: 1 higher, -1 lower, 0 neither (a volume)."""


# --- the previous window -----------------------------------------------------------------------------------------------


def previous_window(since: datetime, as_of: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the window of the same length that ends where the report's window starts."""
    return since - (as_of - since), since


def _before(frame: pd.DataFrame, column: str, end: pd.Timestamp) -> pd.DataFrame:
    if frame.empty or column not in frame:
        return frame
    return frame[(_utc(frame[column]) < end).to_numpy()].reset_index(drop=True)


def clip_window(data: KpiData, end: datetime) -> KpiData:
    """`data` (read from some `since`) cut to what was recorded before `end`: leads first seen, assignments made,
    lifecycle rows of those leads, runs started and dead letters last seen before `end`; `as_of` = `end`. What
    happened to those leads later (a touch, a write-back) is kept: the previous period's leads as they turned out."""
    cut = pd.Timestamp(end).tz_convert("UTC")
    leads = data.leads
    if len(leads):
        seen = _utc(leads["pulled_at"]).fillna(_utc(leads["assigned_at"]))
        leads = leads[(seen < cut).to_numpy()].reset_index(drop=True)
    keys = set(leads["lead_key"]) if len(leads) else set()
    state = data.lead_state
    if len(state):
        state = state[state["lead_key"].isin(keys).to_numpy()].reset_index(drop=True)
    return replace(data, as_of=end, leads=leads, assignments=_before(data.assignments, "assigned_at", cut),
                   lead_state=state, runs=_before(data.runs, "started_at", cut),
                   dead_letters=_before(data.dead_letters, "last_seen", cut))


# --- headline trend ----------------------------------------------------------------------------------------------------


def _lookup(summary: dict[str, Any], key: str) -> Any:
    value: Any = summary
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict):  # a duration: {"seconds": ..., "text": ...}
        value = value.get("seconds")
    return value


def tile_numbers(summary: dict[str, Any]) -> dict[str, float | None]:
    """The headline tiles' numbers (durations in seconds, rates as fractions, counts), keyed like `tile_values`."""
    out: dict[str, float | None] = {}
    for key in TILE_DIRECTIONS:
        value = _lookup(summary, key)
        out[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return out


def tile_trend(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per headline tile: current and previous number, change (current − previous; for rates, in points of a
    fraction), relative change (None from 0) and `verdict`: "better", "worse", "same" or None (a volume, or a side
    unknown). No previous summary: previous None everywhere."""
    now = tile_numbers(current)
    before = tile_numbers(previous) if previous is not None else dict.fromkeys(TILE_DIRECTIONS)
    out: dict[str, dict[str, Any]] = {}
    for key, better in TILE_DIRECTIONS.items():
        a, b = now[key], before[key]
        change = None if a is None or b is None else a - b
        relative = change / b if change is not None and b else None
        if change is None or better == 0:
            verdict = None
        elif abs(change) < 1e-9:
            verdict = "same"
        else:
            verdict = "better" if change * better > 0 else "worse"
        out[key] = {"current": a, "previous": b, "change": change, "relative": relative, "verdict": verdict}
    return _clean(out)


# --- SLA and owner load ------------------------------------------------------------------------------------------------


def _group_column(assignments: pd.DataFrame, by: str) -> pd.Series:
    values = assignments[by].astype("object")
    return values.where(values.notna(), UNASSIGNED if by == "owner_id" else "(none)")


def sla_by(data: KpiData, by: str, names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """First-touch SLA per `by` ("routing_rule" or "owner_id"): with_sla, met, missed, open and attainment, groups
    with an SLA only, most assignments with an SLA first; owners carry `name` (None when unknown)."""
    a = data.assignments
    if a.empty:
        return []
    groups = _group_column(a, by)
    rows = []
    for group, part in a.groupby(groups.to_numpy(), sort=True):
        numbers = sla_attainment(replace(data, assignments=part.reset_index(drop=True)))
        if not numbers["with_sla"]:
            continue
        row: dict[str, Any] = {"group": str(group), **numbers}
        if by == "owner_id":
            row["name"] = name_of(group, names or {}) if group != UNASSIGNED else None
        rows.append(row)
    rows.sort(key=lambda r: (-r["with_sla"], r["group"]))
    return _clean(rows)


def owner_load(data: KpiData, names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per owner, of the leads assigned in the window: assignments, touched, waiting (untouched, not past due or
    without an SLA) and overdue (untouched, breached or past its due time at `as_of`), most assignments first."""
    a = data.assignments
    if a.empty:
        return []
    now = pd.Timestamp(data.as_of).tz_convert("UTC")
    touched = _utc(a["first_touch_at"]).notna() if "first_touch_at" in a else pd.Series(False, index=a.index)
    breached = _utc(a["breached_at"]).notna() if "breached_at" in a else pd.Series(False, index=a.index)
    due = _utc(a["sla_due_at"]) if "sla_due_at" in a else _utc([pd.NaT] * len(a))
    overdue = ~touched & (breached | (due <= now).fillna(False))
    frame = pd.DataFrame({"owner": _group_column(a, "owner_id").to_numpy(), "touched": touched.to_numpy(),
                          "overdue": overdue.to_numpy()})
    frame["waiting"] = ~frame["touched"] & ~frame["overdue"]
    counts = frame.groupby("owner", sort=True).agg(assignments=("touched", "size"), touched=("touched", "sum"),
                                                   waiting=("waiting", "sum"), overdue=("overdue", "sum"))
    rows = [{"owner_id": str(owner), "name": name_of(owner, names or {}) if owner != UNASSIGNED else None,
             **{k: int(v) for k, v in r.items()}} for owner, r in counts.iterrows()]
    rows.sort(key=lambda r: (-r["assignments"], r["owner_id"]))
    return rows


# --- data quality ------------------------------------------------------------------------------------------------------


def quarantine_breakdown(data: KpiData) -> list[dict[str, Any]]:
    """Rows quarantined per stage and expectation, summed over the window's runs, with their share of all rows those
    runs took in; most quarantined first, none of 0. A stage whose runs recorded no expectation detail has expectation None."""
    rates = quarantine_rates(data)
    if rates.empty:
        return []
    rows_in = int(quarantine_trend(data)["rows_in"].sum())
    detailed = rates[rates["expectation"] != ""]
    stages_with_detail = set(detailed["stage"])
    bare = rates[(rates["expectation"] == "") & ~rates["stage"].isin(stages_with_detail)]
    parts = pd.concat([detailed, bare], ignore_index=True)
    summed = parts.groupby(["stage", "expectation"], sort=True, as_index=False)["quarantined"].sum()
    summed = summed[summed["quarantined"] > 0]
    summed = summed.sort_values(["quarantined", "stage", "expectation"], ascending=[False, True, True])
    return _clean([{"stage": str(r.stage), "expectation": str(r.expectation) or None, "quarantined": int(r.quarantined),
                    "rate": int(r.quarantined) / rows_in if rows_in else math.nan}
                   for r in summed.itertuples(index=False)])


# --- all of them -------------------------------------------------------------------------------------------------------


def report_sections(data: KpiData, names: dict[str, str] | None = None,
                    previous_summary: dict[str, Any] | None = None, current_summary: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """{"trend", "previous_window", "sla_by_rule", "sla_by_owner", "owner_load", "quarantine"}: the page's numbers
    beyond the summary (`trend` only when `current_summary` is given: `tile_trend(current_summary, previous_summary)`;
    `previous_window`: the previous summary's window, None without one)."""
    return {
        "trend": tile_trend(current_summary, previous_summary) if current_summary is not None else {},
        "previous_window": previous_summary["window"] if previous_summary is not None else None,
        "sla_by_rule": sla_by(data, "routing_rule", names),
        "sla_by_owner": sla_by(data, "owner_id", names),
        "owner_load": owner_load(data, names),
        "quarantine": quarantine_breakdown(data),
    }
