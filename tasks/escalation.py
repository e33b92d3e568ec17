"""Escalation tasks (`leadflow.routing.escalation`): plan the due steps, fire the owner-changing ones under the routing
lock, record and send the reminders and manager notices (`leadflow.notify`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from tasks.io import BACKOFF, _transient, state_store
from tasks.runner import task


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def plan_escalations(routing: Any, as_of: datetime) -> pd.DataFrame:
    """The escalation steps due at `as_of` and not recorded yet (`leadflow.routing.escalation.due_steps`)."""
    from leadflow.routing.escalation import ESCALATED, PLAN_COLUMNS, chain_rules, due_steps
    from leadflow.store.escalations import fired_steps, open_assignments

    rules = chain_rules(routing)
    if not rules:
        return pd.DataFrame(columns=list(PLAN_COLUMNS))
    store = state_store()
    open_ = open_assignments(store, list(rules), ESCALATED)
    return due_steps(open_, fired_steps(store, open_["lead_key"].tolist()), routing, as_of)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def escalate_owners(plan: pd.DataFrame, routing: Any, as_of: datetime, run_id: str) -> pd.DataFrame:
    """Fire the due reassign_pool and queue steps: new assignments, steps and audit events in one transaction."""
    from leadflow.routing.escalation import escalate_owners as escalate

    return escalate(state_store(), plan, routing, as_of, run_id=run_id)


@task(cache_policy=NO_CACHE)
def send_escalation_notices(plan: pd.DataFrame, rules: Any, routing: Any, as_of: datetime, run_id: str
                            ) -> dict[str, int]:
    """Record the due reminders and manager notices (never sent twice: recorded first), then send them through
    `leadflow.notify`; each step's outcome says how it went. No retries: a retry would find them recorded."""
    from leadflow.notify.messages import build_escalation_messages
    from leadflow.notify.senders import send_notifications, summarize
    from leadflow.pipeline.errors import LeadflowError
    from leadflow.routing.escalation import claim_notices, step_label, waiting
    from leadflow.store.escalations import set_outcomes

    store = state_store()
    notices = claim_notices(store, plan, routing, as_of, run_id=run_id)
    if notices.empty:
        return {}
    notices["waiting"] = [waiting(row, as_of) for row in notices.to_dict("records")]
    notices["step_text"] = [step_label(row) for row in notices.to_dict("records")]
    config = rules.notifications
    keys = [(r["lead_key"], pd.Timestamp(r["chain_start"]).to_pydatetime(), int(r["step"]))
            for r in notices.to_dict("records")]
    logger = get_run_logger()
    if config is None:
        set_outcomes(store, [(*k, f"not sent: the run config has no notifications section ({rules.source})")
                             for k in keys])
        logger.warning("%d escalation notice(s) not sent: no notifications section in %s", len(keys), rules.source)
        return {"escalation_not_sent": len(keys)}
    salesforce = rules.systems.salesforce
    messages = build_escalation_messages(notices, config, routing=routing,
                                         record_url=str(salesforce.login_url) if salesforce is not None else None)
    try:
        deliveries = send_notifications(messages, config, origin=rules.source)
    except LeadflowError as exc:  # a secret missing: recorded as not sent, never retried
        set_outcomes(store, [(*k, f"not sent: {exc}") for k in keys])
        logger.error("escalation notices not sent: %s", exc)
        return {"escalation_not_sent": len(keys)}
    by_recipient: dict[str, list[str]] = {}
    for d in deliveries:
        by_recipient.setdefault(d.owner_id, []).append(f"{d.channel} {d.status}" + (f" ({d.detail})" if d.detail
                                                                                    else ""))
    set_outcomes(store, [(*k, f"{'notified' if action == 'notify_manager' else 'reminded'} {recipient}: "
                              + ", ".join(by_recipient.get(str(recipient), ["no channel"])))
                         for k, recipient, action in zip(keys, notices["recipient_id"], notices["action"],
                                                         strict=True)])
    counts = {f"escalation_notice_{k}": v for k, v in summarize(deliveries).items()}
    logger.info("escalation notices: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    return counts

