"""A lead's whole journey through the state store (`leadflow trace`), erasure (`leadflow forget`) and audit retention.

`trace(store, query)` finds a lead's keys — by e-mail (`email:<addr>` keys plus `source:id` keys whose audit events,
quarantined rows or assignments carry that address) or by id (`<source>:<id>` keys) — and returns, as plain JSON-able
data, each run it went through (flow, start, params) with the stages and the columns each changed (old → new, at),
quarantine (expectation, reason), routing, escalation steps (`escalation:<action>`), lifecycle, what was written back
and dead letters for its record ids.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadflow.store.escalations import step_history

if TYPE_CHECKING:
    from leadflow.store import StateStore

NON_RECORD_PREFIXES = ("email", "erased")
"""Key prefixes whose suffix is not a system's record id."""


def is_email(query: str) -> bool:
    """True when the query looks like an e-mail address rather than a lead id."""
    return "@" in query.strip()


def record_ids(lead_keys: list[str]) -> list[str]:
    """The record ids in `source:id` keys (what dead letters are filed under)."""
    ids: dict[str, None] = {}
    for key in lead_keys:
        prefix, sep, rest = key.partition(":")
        if sep and rest and prefix not in NON_RECORD_PREFIXES:
            ids[rest] = None
    return list(ids)


def find_keys(store: StateStore, query: str) -> list[str]:
    """The lead keys a trace or erasure of `query` (an e-mail address or a lead id) covers."""
    query = query.strip()
    return store.keys_for_email(query) if is_email(query) else store.keys_for_id(query)


def trace(store: StateStore, query: str) -> dict[str, Any]:
    """The journey of the lead(s) matching `query` (e-mail or id), in time order, as JSON-able data.

    Keys: query, kind (`email`/`id`), lead_keys, found, runs (time order; each with flow, started_at, finished_at,
    status, params, staged [{lead_key, at, created_at, lead_source}] (when the run took the lead in), stages [{stage,
    changes [{lead_key, column, old, new, at}]}] and quarantine), quarantine,
    assignments, lifecycle, writeback, dead_letters, escalations (the escalation steps recorded, in firing order: step
    (0-based), action, rule, due_at, fired_at, owner_id, outcome…), timeline (every item with its `at`, time order).
    """
    query = query.strip()
    kind = "email" if is_email(query) else "id"
    keys = find_keys(store, query)
    data = store.lead_journey(keys, record_ids(keys), email=query if kind == "email" else None)
    events = [_event(e) for e in data["events"]]
    quarantined = [_quarantine(q) for q in data["quarantine"]]
    assignments = [_iso_all(a) for a in data["assignments"]]
    lifecycle = [_iso_all(s) for s in data["lead_state"]]
    dead = [_iso_all(d) for d in data["dead_letters"]]
    escalations = [_iso_all(e) for e in step_history(store, keys)]
    run_info = {r["run_id"]: r for r in data["runs"]}

    by_run: dict[str, dict[str, Any]] = {}

    def run_entry(run_id: str, at: str | None) -> dict[str, Any]:
        if run_id not in by_run:
            info = run_info.get(run_id, {})
            by_run[run_id] = {
                "run_id": run_id, "flow": info.get("flow"), "started_at": _iso(info.get("started_at")),
                "finished_at": _iso(info.get("finished_at")), "status": info.get("status"),
                "params": info.get("params") or {}, "first_at": at, "staged": [], "stages": [], "quarantine": [],
            }
        return by_run[run_id]

    for staged in data.get("lead_runs", []):
        entry = run_entry(staged["run_id"], _iso(staged["at"]))
        entry["staged"].append({"lead_key": staged["lead_key"], "at": _iso(staged["at"]),
                                "created_at": staged["created_at"], "lead_source": staged["lead_source"]})
    for event in events:
        entry = run_entry(event["run_id"], event["at"])
        stages = entry["stages"]
        if not stages or stages[-1]["stage"] != event["stage"]:
            stages.append({"stage": event["stage"], "changes": []})
        stages[-1]["changes"].append({k: event[k] for k in ("lead_key", "column", "old", "new", "at")})
    for row in quarantined:
        run_entry(row["run_id"], row["at"])["quarantine"].append(row)
    ordered_runs = sorted(by_run.values(), key=lambda r: (r["started_at"] or r["first_at"] or "", r["run_id"]))

    timeline: list[dict[str, Any]] = []
    for event in events:
        what = next((k for k in ("writeback", "escalation") if event["stage"].startswith(f"{k}:")), "change")
        timeline.append({"at": event["at"], "kind": what, **event})
    timeline += [{"at": _iso(r["at"]), "kind": "staged", **_iso_all(r)} for r in data.get("lead_runs", [])]
    timeline += [{"at": q["at"], "kind": "quarantine", **q} for q in quarantined]
    for a in assignments:
        timeline.append({"at": a["assigned_at"], "kind": "assigned", **a})
        for stamp, what in (("first_touch_at", "first_touch"), ("breached_at", "sla_breach"),
                            ("written_at", "owner_written")):
            if a.get(stamp):
                timeline.append({"at": a[stamp], "kind": what, "lead_key": a["lead_key"], "owner_id": a["owner_id"]})
    for s in lifecycle:
        for stamp in ("mql_at", "sal_at", "sql_at", "recycled_at"):
            if s.get(stamp):
                timeline.append({"at": s[stamp], "kind": f"lifecycle:{stamp.removesuffix('_at')}",
                                 "lead_key": s["lead_key"]})
        timeline.append({"at": s["updated_at"], "kind": "lifecycle", **s})
    timeline += [{"at": d["first_seen"], "kind": "dead_letter", **d} for d in dead]
    timeline.sort(key=lambda item: item["at"] or "")

    return {
        "query": query,
        "kind": kind,
        "lead_keys": keys,
        "found": bool(keys or quarantined or dead),
        "runs": ordered_runs,
        "quarantine": quarantined,
        "assignments": assignments,
        "lifecycle": lifecycle,
        "writeback": [e for e in events if e["stage"].startswith("writeback:")],
        "dead_letters": dead,
        "escalations": escalations,
        "timeline": timeline,
    }


def trace_lines(result: dict[str, Any]) -> list[str]:
    """The human-readable trace: grouped by run, then stage, then routing, lifecycle and dead letters."""
    if not result["found"]:
        return [f"Nothing in the state store for {result['query']!r}."]
    lines = [f"Trace of {result['query']} ({result['kind']}): lead keys {', '.join(result['lead_keys']) or '-'}"]
    for run in result["runs"]:
        params = json.dumps(run["params"], sort_keys=True, default=str)
        if len(params) > 100:
            params = params[:97] + "..."
        lines.append("")
        lines.append(f"run {run['run_id']}  {run['flow'] or '?'}  started {_short(run['started_at'])}  "
                     f"{run['status'] or ''}  params {params}")
        for staged in run.get("staged", []):
            lines.append(f"  staged {_short(staged['at'])}  {staged['lead_key']}  created {_short(staged['created_at'])}"
                         f"  lead source {staged['lead_source'] or '-'}")
        for stage in run["stages"]:
            lines.append(f"  {stage['stage']}")
            for change in stage["changes"]:
                lines.append(f"    {_short(change['at'])}  {change['lead_key']:<24} {change['column']:<20} "
                             f"{change['old']!r} -> {change['new']!r}")
        for q in run["quarantine"]:
            lines.append(f"  QUARANTINED at {q['stage']} {_short(q['at'])}: {q['expectation']} — {q['reason'] or ''}")
    if result["assignments"]:
        lines += ["", "routing"]
        for a in result["assignments"]:
            lines.append(f"  {a['lead_key']}: owner {a['owner_id'] or '(none)'} by rule {a['routing_rule']} "
                         f"({a['routing_reason'] or ''}) assigned {_short(a['assigned_at'])}, SLA due "
                         f"{_short(a['sla_due_at'])}, first touch {_short(a['first_touch_at'])}, breach "
                         f"{_short(a['breached_at'])}, written {_short(a['written_at'])}")
    if result.get("escalations"):
        lines += ["", "escalation"]
        for e in result["escalations"]:
            lines.append(f"  {_short(e['fired_at'])}  {e['lead_key']}: step {e['step'] + 1}"
                         f"{' (last)' if e['last_step'] else ''} {e['action']} of rule {e['rule']}, due "
                         f"{_short(e['due_at'])} (chain from {_short(e['chain_start'])}), owner "
                         f"{e['owner_id'] or '(none)'}: {e['outcome'] or ''}")
    if result["lifecycle"]:
        lines += ["", "lifecycle"]
        for s in result["lifecycle"]:
            stamps = ", ".join(f"{c.removesuffix('_at')} {_short(s[c])}" for c in ("mql_at", "sal_at", "sql_at",
                                                                                   "recycled_at") if s.get(c))
            lines.append(f"  {s['lead_key']}: {s['lifecycle_stage']} ({s['lifecycle_reason'] or ''})"
                         f"{'; ' + stamps if stamps else ''}; updated {_short(s['updated_at'])}")
    if result["writeback"]:
        lines += ["", "written back"]
        for w in result["writeback"]:
            lines.append(f"  {_short(w['at'])}  {w['stage'].removeprefix('writeback:'):<12} {w['column']:<20} "
                         f"{w['old']!r} -> {w['new']!r}")
    if result["dead_letters"]:
        lines += ["", "dead letters"]
        for d in result["dead_letters"]:
            lines.append(f"  {d['system']} {d['object']} {d['record_id']}: {d['status']} after {d['attempts']} "
                         f"attempt(s), {d['error_code']} {d['message'] or ''}; first {_short(d['first_seen'])}, "
                         f"last {_short(d['last_seen'])}")
    return lines


def forget(store: StateStore, email: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Erase the person with this e-mail address from the state store (see `StateStore.forget_lead`), taking
    their leads out of the KPI rollups in the same transaction."""
    from leadflow.audit.kpi_rollups import retract_lead_facts

    email = email.strip()
    if not is_email(email):
        raise ValueError(f"{email!r} is not an e-mail address")
    keys = store.keys_for_email(email)
    result = store.forget_lead(email, keys, record_ids(keys), email=email, dry_run=dry_run,
                               retract_kpis=retract_lead_facts)
    return {"email": email, "lead_keys": keys, "dry_run": dry_run, **result}


def retention(store: StateStore, days: int, *, dry_run: bool = False, now: datetime | None = None,
              chunk_rows: int = 50_000) -> dict[str, Any]:
    """Delete the audit trail (events, change chunks, lead runs), quarantine rows and settled pushed notifications
    older than `days` days (counts only when `dry_run`)."""
    if days < 0:
        raise ValueError("days must not be negative")
    before = (now or datetime.now(UTC)) - timedelta(days=days)
    from leadflow.pipeline import progress

    if dry_run:
        counts = store.count_older(before) | {"intake_inbox": store.prune_inbox(before, dry_run=True)}
        progress.step("counted", 5, unit="tables")
    else:
        counts = {"lead_events": store.prune_events(before, chunk_rows=chunk_rows)}
        progress.step("lead_events", unit="tables")
        counts |= store.prune_changes(before, chunk_rows=chunk_rows)
        progress.step("audit_chunks, lead_runs", 2, unit="tables")
        counts["quarantine"] = store.prune_quarantine(before, chunk_rows=chunk_rows)
        progress.step("quarantine", unit="tables")
        counts["intake_inbox"] = store.prune_inbox(before, chunk_rows=chunk_rows)  # settled notifications only
        progress.step("intake_inbox", unit="tables")
    return {"before": before.isoformat(), "dry_run": dry_run, "tables": counts}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _iso_all(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in row.items()}


def _event(row: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": row["run_id"], "lead_key": row["lead_key"], "stage": row["stage"],
            "column": row["column_name"], "old": row["old_value"], "new": row["new_value"], "at": _iso(row["at"])}


def _quarantine(row: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": row["run_id"], "lead_key": row["lead_key"], "stage": row["stage"],
            "expectation": row["expectation"], "reason": row["reason"], "row": row["row"], "at": _iso(row["at"])}


def _short(value: str | None) -> str:
    if not value:
        return "-"
    return value.replace("+00:00", "Z")
