"""Owner notification task: tell the owners of a run's newly assigned leads (`leadflow.notify`). The senders retry
their own I/O (Slack 429 Retry-After, 5xx), so the task adds none; one owner's failure never stops the others."""

from __future__ import annotations

from datetime import datetime
import pandas as pd
from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.config import Rules
from tasks.runner import task


@task(cache_policy=NO_CACHE)
def notify_assigned_owners(assigned: pd.DataFrame, rules: Rules, since: datetime) -> dict[str, int]:
    """Send each owner of `assigned` (leads given an owner at `since` or later) one message per lead, or one digest
    over `notifications.batch_threshold` leads, on the configured channels; the delivery counts for the run summary
    (`slack_sent`, `email_failed`, …, `leads_notified`). Nothing to do without a `notifications:` section."""
    from leadflow.notify import notify_owners, summarize

    config = rules.notifications
    if config is None or assigned.empty:
        return {}
    salesforce = rules.systems.salesforce
    deliveries = notify_owners(assigned, config, since=since, routing=rules.routing, origin=rules.source,
                               record_url=str(salesforce.login_url) if salesforce is not None else None)
    logger = get_run_logger()
    for delivery in deliveries:
        if delivery.status == "failed":
            logger.warning("notifying %s by %s failed (%d lead(s)): %s", delivery.owner_id, delivery.channel,
                           delivery.leads, delivery.detail)
    counts = summarize(deliveries)
    if counts:
        logger.info("owner notifications: %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return counts


def notice_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns of `frame` a notification reads, so a run keeps little per lead until it notifies."""
    from leadflow.notify.messages import LEAD_COLUMNS, REQUIRED_COLUMNS

    wanted = dict.fromkeys([*REQUIRED_COLUMNS, *LEAD_COLUMNS.values()])
    return frame[[c for c in wanted if c in frame.columns]].copy()


def run_notices(notices: list[pd.DataFrame], rules: Rules, since: datetime) -> dict[str, int]:
    """Notify the owners of a run's collected notices (one message or digest per owner for the whole run)."""
    from leadflow.pipeline.errors import LeadflowError

    notices = [n for n in notices if len(n)]
    if not notices or rules.notifications is None:
        return {}
    try:
        return notify_assigned_owners(pd.concat(notices, ignore_index=True), rules, since)
    except LeadflowError as exc:  # a secret missing: the run's write-backs stand; the run says who was not told
        get_run_logger().error("owner notifications not sent: %s", exc)
        return {"not_sent": sum(len(n) for n in notices)}
