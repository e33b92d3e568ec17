"""`sla_watch`: assignments past their first-touch SLA become breaches: recorded, published, and raised as events;
the due steps of the rules' escalation chains fire (reminders, manager notices, reassignment, queue), each once."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from leadflow.pipeline.config import load_rules
from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.connectors.registry import connect
from leadflow.routing.escalation import PLAN_COLUMNS, chain_rules
from leadflow.routing.escalation import summary as escalation_summary
from leadflow.routing.model import OWNER_ACTIONS
from leadflow.routing.ownership import converted_mask
from leadflow.routing.sla import breach_summary, owner_changes
from tasks.crm import write_back
from tasks.enrichment import refresh_crm_mirror, with_owner_directory
from tasks.escalation import escalate_owners, plan_escalations, send_escalation_notices
from tasks.events import emit_sla_breached
from tasks.first_touch import pull_crm_first_touches
from tasks.intake import fetch_records
from tasks.report import record_lead_kpis
from tasks.io import TRANSIENT, check_sla, close_run, open_run, reassign_breaches, writer_lease


@flow(name="sla_watch", log_prints=False)
def sla_watch(as_of: datetime | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Check every open assignment's first-touch SLA as of `as_of` (default now); each breach is recorded once. With
    a config whose routing rules say `on_sla_breach: reassign`, those leads are routed again to someone else and the
    new owner is written back to the CRM they came from; rules with an `escalation` chain fire their due steps
    (`leadflow.routing.escalation`), each once."""
    moment = as_of or datetime.now(UTC)
    rules = load_rules(Path(config_path)) if config_path else None
    run_id = open_run("sla_watch", {"as_of": moment.isoformat(), "config_path": config_path})
    summary: dict[str, Any] = {"run_id": run_id, "as_of": moment.isoformat()}
    try:
        return watch(rules, moment, run_id, summary)
    except Exception as exc:  # the run says it failed, with what it had done
        close_run(run_id, "failed", summary, f"{type(exc).__name__}: {exc}")
        raise


def watch(rules: Any, moment: datetime, run_id: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The watch's steps: CRM first touches → SLA check → escalation plan → reassign and write (under the writer
    leases) → notices → artifact and event; `summary` filled in as they go."""
    # First touches the CRM records (tasks, events, status changes) since the last run, pulled once per run before
    # the check: a lead a rep worked in the CRM is not a breach, and its SLA is measured to that touch.
    touches = crm_first_touches(rules, run_id)
    breaches = check_sla(moment, run_id)
    summary |= breach_summary(breaches)
    if touches is not None:
        summary["first_touches"] = touches
    plan = escalation_plan(rules, moment)
    summary |= escalation_summary(plan)
    reassign = breaches_to_reassign(rules, breaches)
    # A lead a person moved to another owner in the CRM since leadflow assigned it is theirs now: never taken back
    # (reassigned, escalated) nor reminded about.
    moved = moved_in_the_crm(rules, pd.concat([reassign[["lead_key", "owner_id"]], plan[["lead_key", "owner_id"]]]),
                             summary)
    reassign, plan = reassign[~reassign["lead_key"].isin(moved)], plan[~plan["lead_key"].isin(moved)]
    if rules is not None and rules.routing is not None and (len(reassign) or owner_steps_due(plan)):
        # Reassigning writes owners: one writer per system at a time, so hold the writer lease of every system
        # written back to (waiting for a running sync, as any writer does) from the routing to the write.
        written = [s for s in rules.systems.names if getattr(rules.systems, s).write_back]
        with ExitStack() as held:
            leases = {s: held.enter_context(writer_lease(s, run_id, "sla_watch", rules)) for s in written}
            summary |= reassign_and_write(rules, reassign, moment, run_id, leases, plan)
    if rules is not None and len(plan):
        summary |= send_escalation_notices(plan, rules, rules.routing, moment, run_id)
    if len(breaches):
        create_table_artifact(key="sla-breaches", table=breaches.astype(str).to_dict("records"),
                              description=f"{len(breaches)} leads past their first-touch SLA")
        emit_sla_breached(summary, run_id)
        get_run_logger().warning("%d leads past their first-touch SLA (worst %.0f minutes late)",
                                 len(breaches), summary["max_minutes_late"])
    # the KPI rollups follow what this run changed: first touches, breaches, breach and escalation owners
    record_lead_kpis(run_id, sorted({*breaches["lead_key"].astype(str), *plan["lead_key"].astype(str)}))
    close_run(run_id, "completed", summary)
    return summary


def crm_first_touches(rules: Any, run_id: str) -> dict[str, Any] | None:
    """Pull the CRM's first touches when the config has Salesforce (None otherwise); a CRM that stops or refuses
    leaves the check to the first touches known so far (logged)."""
    if rules is None or rules.systems.salesforce is None:
        return None
    try:
        with connect("salesforce", rules.systems, origin=rules.source) as crm:
            return pull_crm_first_touches(crm, rules, run_id)
    except (LeadflowError, *TRANSIENT) as exc:  # refused, stopped, or unreachable past its retries
        get_run_logger().warning("CRM first touches not pulled (%s: %s): SLAs checked against those known so far",
                                 type(exc).__name__, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def breaches_to_reassign(rules: Any, breaches: pd.DataFrame) -> pd.DataFrame:
    """The breaches whose routing rule says `on_sla_breach: reassign` (none without a routing config)."""
    if rules is None or rules.routing is None or breaches.empty:
        return breaches.iloc[:0]
    wanted = {rule.name for rule in rules.routing.rules if getattr(rule, "on_sla_breach", None) == "reassign"}
    return breaches[breaches["routing_rule"].isin(wanted)]


def moved_in_the_crm(rules: Any, due: pd.DataFrame, summary: dict[str, Any]) -> set[str]:
    """Keys of the Salesforce leads of `due` (lead_key, owner_id as leadflow assigned it) whose owner in Salesforce
    is someone else now (a person reassigned them after leadflow did), or that were converted since. Read by id in
    one query per chunk (`fetch_by_ids`). A CRM that cannot be read leaves every one of them alone this run (no owner is written
    unchecked); counted in `summary` (`kept_by_person`, `kept_converted`, `owner_check_error`)."""
    if rules is None or rules.systems.salesforce is None or due.empty:
        return set()
    ours = due[due["lead_key"].astype(str).str.startswith("salesforce:")].drop_duplicates("lead_key")
    if ours.empty:
        return set()
    ids = ours["lead_key"].astype(str).str.split(":", n=1).str[1]
    try:
        with connect("salesforce", rules.systems, origin=rules.source) as crm:
            now = fetch_records(crm, ids.tolist())
    except (LeadflowError, *TRANSIENT) as exc:
        get_run_logger().warning("owners in Salesforce not read (%s: %s): no lead is reassigned or escalated this "
                                 "run", type(exc).__name__, exc)
        summary["owner_check_error"] = f"{type(exc).__name__}: {exc}"
        return set(ours["lead_key"].astype(str))
    key_of = dict(zip(ids, ours["lead_key"].astype(str), strict=True))
    there = (dict(zip(now["lead_id"].astype(str), now["owner_id"], strict=True))
             if len(now) and "owner_id" in now else {})
    # a converted lead is never written (Salesforce refuses it: CANNOT_UPDATE_CONVERTED_LEAD; see drop_converted)
    converted = ({key_of[r] for r in now["lead_id"].astype(str)[converted_mask(now)] if r in key_of}
                 if len(now) else set())
    moved = {key_of[r] for r, owner in zip(ids, ours["owner_id"], strict=True)
             if key_of[r] not in converted and _present(there.get(r)) and _present(owner)
             and str(there[r])[:15] != str(owner)[:15]}
    if converted:
        summary["kept_converted"] = len(converted)
    if moved:
        summary["kept_by_person"] = len(moved)
        get_run_logger().info("%d lead(s) moved to another owner in Salesforce since leadflow assigned them: kept "
                              "with that owner (not reassigned, escalated or reminded)", len(moved))
    return moved | converted


def _present(value: Any) -> bool:
    return value is not None and not pd.isna(value) and str(value) != ""


def escalation_plan(rules: Any, moment: datetime) -> pd.DataFrame:
    """The escalation steps due now (none without a routing config or a rule with an `escalation` chain)."""
    if rules is None or rules.routing is None or not chain_rules(rules.routing):
        return pd.DataFrame(columns=list(PLAN_COLUMNS))
    return plan_escalations(rules.routing, moment)


def owner_steps_due(plan: pd.DataFrame) -> bool:
    """Whether a reassign_pool or queue step acts: the run then writes owners, under the writer leases."""
    return bool((plan["acts"].astype(bool) & plan["action"].isin(list(OWNER_ACTIONS))).any())


def reassign_and_write(rules: Any, breaches: Any, moment: datetime, run_id: str, leases: dict[str, Any],
                       plan: pd.DataFrame | None = None) -> dict[str, Any]:
    """Route the breached leads whose rule says so to someone else, fire the due reassign_pool and queue steps of
    `plan`, and write the new owners back (each system under its writer lease, checked before the write)."""
    summary: dict[str, Any] = {}
    inputs = RunInputs(as_of=moment)
    if rules.systems.salesforce is not None:
        # The CRM's users decide who may take a lead: an inactive user is never handed one (the org would refuse
        # the OwnerId), whatever the routing config still lists. They come from the CRM mirror, refreshed first.
        with connect("salesforce", rules.systems, origin=rules.source) as crm:
            inputs = with_owner_directory(inputs, refresh_crm_mirror(crm).owners)
    routing = inputs.routing_for(rules)
    assert routing is not None
    if len(breaches):
        made = reassign_breaches(breaches, routing, moment, run_id)
        summary["reassigned"] = len(made)
        summary |= write_owners(rules, made, leases, "reassigned_written")
    if plan is not None and owner_steps_due(plan):
        escalated = escalate_owners(plan, routing, moment, run_id)
        summary["escalation_owner_changes"] = len(escalated)
        summary |= write_owners(rules, escalated, leases, "escalation_written")
    return summary


def write_owners(rules: Any, made: pd.DataFrame, leases: dict[str, Any], key: str) -> dict[str, Any]:
    """Write new owners back to the systems their leads came from, each under its writer lease (checked first):
    `{key: {system: records written}}`."""
    written: dict[str, int] = {}
    for system, changes in owner_changes(made).items():
        if system not in leases:
            continue
        leases[system].ensure()
        crm = connect(system, rules.systems, origin=rules.source)
        try:
            result = write_back(crm, changes, False, True)
        finally:
            getattr(crm, "close", lambda: None)()  # its HTTP session (and login) end with the write
        written[system] = len(result.written)
    return {key: written} if written else {}
