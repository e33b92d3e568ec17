"""`leadflow audit test-lead`: an end-to-end check of the lead flow with one clearly marked test lead.

`run_test_lead` creates the test lead in the source system (Salesforce), runs the flow a lead of that profile takes
(the fast lane for demo requests, the hourly incremental `crm_sync` otherwise), reads the lead's trace from the state
store and turns it into hops (created → pulled → each stage → assigned → written back) timed from creation, then
deletes the lead from the source system and erases it from the state store (unless `keep`) — cleanup runs even when
the flow fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROFILES: dict[str, str] = {"demo-request": "Demo Request", "webinar": "Webinar", "web-form": "Web Form"}
"""Profile name → the LeadSource the test lead gets."""
FASTLANE_ENTRYPOINT = "flows/fastlane.py:lead_fastlane"
CRM_SYNC_ENTRYPOINT = "flows/crm_sync.py:crm_sync"
TEST_LAST_NAME = "Leadflow-Test"  # already in the case standardize gives names: not rewritten
TEST_COMPANY = "leadflow test lead (safe to delete)"
TEST_TITLE = "leadflow test lead"
SYSTEM = "salesforce"

RunFlow = Callable[..., dict[str, Any]]
"""(entrypoint, **params) -> the flow's summary: the CLI's `_run_flow`."""


@dataclass
class TestLead:
    """The test lead as created in the source system."""

    __test__ = False  # not a pytest class

    record_id: str
    email: str
    lead_source: str
    created_at: datetime
    fields: dict[str, Any]


@dataclass
class AuditResult:
    lead: TestLead | None
    profile: str
    flow: str
    summary: dict[str, Any] | None = None
    error: BaseException | None = None
    trace: dict[str, Any] | None = None
    hops: list[dict[str, Any]] = field(default_factory=list)
    cleanup: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The flow ran and the cleanup (if any) left nothing behind."""
        return self.error is None and self.lead is not None and not self.cleanup.get("errors")


def marked_lead_fields(profile: str, token: str | None = None) -> dict[str, Any]:
    """Salesforce fields of a clearly marked test lead of `profile` (LastName, Company and Title say so)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    token = token or uuid.uuid4().hex[:8]
    return {
        "FirstName": "Test", "LastName": TEST_LAST_NAME, "Company": TEST_COMPANY, "Title": TEST_TITLE,
        "Email": f"leadflow-test+{token}@example.com", "LeadSource": PROFILES[profile],
        "Status": "Open - Not Contacted", "Country": "United States",
    }


def flow_for(profile: str) -> str:
    """The entrypoint a lead of `profile` goes through: the fast lane for demo requests, else the hourly sync."""
    return FASTLANE_ENTRYPOINT if profile == "demo-request" else CRM_SYNC_ENTRYPOINT


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hops(result: dict[str, Any], created_at: datetime) -> list[dict[str, Any]]:
    """The lead's hops from its trace: created; pulled (start of the first run that touched it); each stage that
    changed it (its first audit event); quarantine; assigned (when the assign stage recorded it, with the owner);
    written back (first write-back event; `owner_id` named when the owner was written); dead letters.
    Each: hop, at (UTC datetime or None), seconds since `created_at` (or None), detail."""
    out: list[dict[str, Any]] = [{"hop": "created", "at": created_at, "detail": ""}]
    timeline = result.get("timeline", [])
    runs = [r for r in result.get("runs", []) if r.get("staged") or r.get("stages") or r.get("quarantine")]
    if runs:
        first = runs[0]
        out.append({"hop": "pulled", "at": _parse(first.get("started_at") or first.get("first_at")),
                    "detail": f"run {first['run_id']} ({first.get('flow') or '?'})"})
    stage_at: dict[str, datetime | None] = {}
    for item in timeline:
        kind = item.get("kind")
        if kind == "change" and item["stage"] not in stage_at:
            name = item["stage"]
            stage_at[name] = _parse(item.get("at"))
            columns = sorted({e["column"] for e in timeline if e.get("kind") == "change" and e.get("stage") == name})
            out.append({"hop": name, "at": stage_at[name], "detail": ", ".join(columns)})
        elif kind == "quarantine":
            out.append({"hop": f"quarantined at {item['stage']}", "at": _parse(item.get("at")),
                        "detail": f"{item['expectation']}: {item.get('reason') or ''}"})
    for a in result.get("assignments", []):
        # assigned_at is the run's routing time (whole seconds); the assign stage's audit event is when it happened.
        at = stage_at.get("assign") or _parse(a.get("assigned_at"))
        out.append({"hop": "assigned", "at": at,
                    "detail": f"owner {a.get('owner_id') or '(none)'} by rule {a.get('routing_rule')}"})
    writes = [e for e in timeline if e.get("kind") == "writeback"]
    if writes:
        columns = sorted({e["column"] for e in writes})
        owner = [e for e in writes if e["column"] == "owner_id"]
        detail = ("owner_id + " if owner else "") + f"{len(columns)} fields: " + ", ".join(columns)
        out.append({"hop": "written back", "at": _parse((owner or writes)[0].get("at")), "detail": detail,
                    "owner": bool(owner)})
    for d in result.get("dead_letters", []):
        out.append({"hop": "dead letter", "at": _parse(d.get("first_seen")),
                    "detail": f"{d.get('error_code')} {d.get('message') or ''}"})
    for hop in out:
        hop["seconds"] = (hop["at"] - created_at).total_seconds() if hop["at"] is not None else None
    return out


def speed_to_lead(found: list[dict[str, Any]]) -> float | None:
    """Seconds from creation to the routed owner being written to the CRM (None if it never was)."""
    times = [h["seconds"] for h in found if h["hop"] == "written back" and h.get("owner") and h["seconds"] is not None]
    return times[0] if times else None


def create_test_lead(connector: Any, profile: str) -> TestLead:
    """Create the marked test lead in the source system; its creation time is when the create call returned."""
    fields = marked_lead_fields(profile)
    record_id = connector.create_lead(fields)
    return TestLead(record_id, fields["Email"], fields["LeadSource"], datetime.now(UTC), fields)


def cleanup(connector: Any, lead: TestLead) -> dict[str, Any]:
    """Delete the test lead from the source system and erase it from the state store; never raises."""
    from leadflow.store import StateStore
    from leadflow.audit.kpi_rollups import retract_lead_facts
    from leadflow.audit.trace import record_ids

    done: dict[str, Any] = {"deleted": False, "erased": 0, "errors": []}
    try:
        connector.delete_lead(lead.record_id)
        done["deleted"] = True
    except Exception as exc:  # noqa: BLE001 - report it, and still erase the state
        done["errors"].append(f"delete {lead.record_id}: {exc}")
    try:
        with StateStore.open() as store:
            keys = list(dict.fromkeys([*store.keys_for_email(lead.email), *store.keys_for_id(lead.record_id)]))
            erased = store.forget_lead(lead.email, keys, record_ids(keys) or [lead.record_id], email=lead.email,
                                       retract_kpis=retract_lead_facts)  # its KPI counts go with it
        done["erased"] = erased["removed"]
        done["lead_keys"] = keys
    except Exception as exc:  # noqa: BLE001
        done["errors"].append(f"erase {lead.email}: {exc}")
    return done


def run_test_lead(config: Path, profile: str, run_flow: RunFlow, *, keep: bool = False,
                  echo: Callable[[str], None] = print) -> AuditResult:
    """Create, flow, trace, clean up (see the module doc). Flow errors are kept in `error`, not raised."""
    from leadflow.pipeline.config import load_rules
    from leadflow.connectors.registry import connect
    from leadflow.pipeline.errors import ConfigError
    from leadflow.store import StateStore
    from leadflow.audit.trace import trace

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    rules = load_rules(config)
    if rules.systems.salesforce is None:
        raise ConfigError(rules.source, "the test lead is created in Salesforce: no salesforce system configured",
                          yaml_path="systems.salesforce")
    entrypoint = flow_for(profile)
    connector = connect(SYSTEM, rules.systems, origin=rules.source)
    result = AuditResult(None, profile, entrypoint)
    try:
        result.lead = lead = create_test_lead(connector, profile)
        echo(f"created test lead {lead.record_id} <{lead.email}> (LeadSource {lead.lead_source!r}) in {SYSTEM} "
             f"at {lead.created_at.isoformat(timespec='seconds')}")
        echo(f"running {entrypoint} ...")
        try:
            if entrypoint == FASTLANE_ENTRYPOINT:
                result.summary = run_flow(entrypoint, config_path=str(config))
            else:
                result.summary = run_flow(entrypoint, systems=[SYSTEM], config_path=str(config))
        except Exception as exc:  # noqa: BLE001 - the trace and the cleanup still run; the CLI exits non-zero
            result.error = exc
        with StateStore.open() as store:
            result.trace = trace(store, lead.record_id)
        result.hops = hops(result.trace, lead.created_at)
    finally:
        if result.lead is not None and not keep:
            result.cleanup = cleanup(connector, result.lead)
        connector.close()
    return result


def result_lines(result: AuditResult) -> list[str]:
    """The human-readable audit: hops with +seconds since creation, speed-to-lead, cleanup."""
    lead = result.lead
    if lead is None:
        return ["No test lead was created."]
    lines = ["", f"Test lead {lead.record_id} <{lead.email}>, profile {result.profile}, flow {result.flow}"]
    for hop in result.hops:
        when = f"{hop['seconds']:+.1f} s" if hop["seconds"] is not None else "?"
        lines.append(f"  {when:>10}  {hop['hop']:<22} {hop['detail']}")
    owners = [a.get("owner_id") for a in (result.trace or {}).get("assignments", [])]
    lines.append("")
    lines.append(f"  owner           {owners[-1] if owners and owners[-1] else '(not assigned)'}")
    if not (owners and owners[-1]):
        routed = {e["column"]: e["new"] for e in (result.trace or {}).get("timeline", [])
                  if e.get("kind") == "change" and e.get("stage") == "assign"}
        if routed.get("routing_rule"):
            lines.append(f"  routing         rule {routed['routing_rule']}: {routed.get('routing_reason') or ''}")
    speed = speed_to_lead(result.hops)
    lines.append(f"  speed-to-lead   {f'{speed:.1f} s' if speed is not None else '(no owner written back)'}"
                 + ("  (created → owner in the CRM)" if speed is not None else ""))
    if result.error is not None:
        lines.append(f"  FLOW FAILED     {type(result.error).__name__}: {result.error}")
    if result.cleanup:
        c = result.cleanup
        lines.append(f"  cleanup         {'deleted from ' + SYSTEM if c['deleted'] else 'NOT deleted'}; "
                     f"{c['erased']} state-store rows erased")
        for error in c["errors"]:
            lines.append(f"  cleanup error   {error}")
    else:
        lines.append(f"  kept            (--keep) delete it from {SYSTEM} and run `leadflow forget {lead.email}`")
    return lines
