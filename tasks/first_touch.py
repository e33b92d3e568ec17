"""The CRM first-touch pull: Tasks, Events and status changes of leads since the last pull, into the state store."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE

from tasks.io import BACKOFF, _transient, state_store
from tasks.runner import task


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pull_crm_first_touches(connector: Any, rules: Any, run_id: str) -> dict[str, dict[str, int]]:
    """Keep the first touches the CRM records (`leadflow.sync.touches`); an assignment's first touch becomes the
    CRM's where it has one, replacing the `pull` fallback. Returns per source: read, leads, assignments."""
    from leadflow.sync.touches import pull_first_touches

    before = getattr(getattr(connector, "budget", None), "used", 0)
    reports = pull_first_touches(connector, state_store(), run_id=run_id,
                                 untouched_statuses=rules.untouched_statuses)
    summary = {s: {"read": r.read, "leads": r.leads, "assignments": r.assignments} for s, r in reports.items()}
    get_run_logger().info("CRM first touches: %s; %d API calls", summary,
                          getattr(getattr(connector, "budget", None), "used", 0) - before)
    return summary
