"""Enrichment I/O: provider look-ups (cached in the state store) and CRM reference data, retried on transient errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prefect import get_run_logger
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from leadflow.pipeline.config import Rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.connectors.enrichment import HttpFirmographicsProvider, lookup_firmographics, make_provider
from leadflow.identity.enrichment import PROVIDER_COLUMNS
from leadflow.routing.ownership import OwnerDirectory
from leadflow.sync.mirror import MirrorView
from tasks.io import BACKOFF, _transient, state_store
from tasks.runner import task

_providers: dict[str, HttpFirmographicsProvider] = {}


def _provider(rules: Rules) -> HttpFirmographicsProvider:
    # One provider per flow run, so `max_calls_per_run` is a budget for the run, not for each page of it.
    key = f"{flow_run.get_id() or 'local'}:{rules.source}"
    if key not in _providers:
        assert rules.enrichment.provider is not None
        _providers[key] = make_provider(rules.enrichment.provider)
    return _providers[key]


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def look_up_firmographics(domains: list[str], rules: Rules) -> pd.DataFrame:
    """Provider answers for `domains`, from the cache when fresh; a failed look-up is an answer with a reason."""
    connection = rules.enrichment.provider
    if connection is None or not domains:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in PROVIDER_COLUMNS})
    provider = _provider(rules)
    before = provider.calls_made
    answers = lookup_firmographics(
        provider, domains, state_store(), now=datetime.now(UTC), ttl=timedelta(days=connection.cache_ttl_days)
    )
    counts = answers["status"].value_counts().to_dict()
    get_run_logger().info(
        "firmographics provider: %d domains, %d from cache, %d calls (%d used this run): %s", len(answers),
        int(answers["from_cache"].sum()), provider.calls_made - before, provider.calls_made, counts,
    )
    return answers


def with_provider_answers(inputs: RunInputs, rules: Rules, answers: pd.DataFrame) -> RunInputs:
    """`inputs` whose reference data carries this batch's provider answers."""
    return inputs.with_reference(replace(inputs.reference_for(rules), provider=answers))


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def refresh_crm_mirror(connector: Any) -> MirrorView:
    """Bring the CRM mirror up to date (built the first time, then only what changed: one Composite call) and load
    it: accounts and existing records for matching and duplicates, users and queues for routing."""
    from leadflow.connectors.salesforce_org import remember_valid_owners
    from leadflow.sync.mirror import refresh_and_load

    before = getattr(getattr(connector, "budget", None), "used", 0)
    report, view = refresh_and_load(connector, state_store())
    # The write fitting takes its valid owners from the same answer, so a run reads users and queues once.
    remember_valid_owners(connector, view.owners.active | view.owners.queues)
    changed = {o: f"{r.method} +{r.changed}/-{r.deleted}" for o, r in report.items() if r.changed or r.deleted
               or r.method not in ("incremental", "reread")}
    get_run_logger().info(
        "CRM mirror: %d accounts, %d existing leads and contacts, %d active users, %d queues; %s; %d API calls",
        len(view.accounts), len(view.existing), len(view.owners.active), len(view.owners.queues),
        changed or "no changes", getattr(getattr(connector, "budget", None), "used", 0) - before)
    return view


def with_crm_reference(inputs: RunInputs, rules: Rules, accounts: pd.DataFrame, existing: pd.DataFrame) -> RunInputs:
    """`inputs` with the CRM's accounts and records, unless the config names reference files of its own."""
    reference = inputs.reference_for(rules)
    if rules.enrichment.accounts is None:
        reference = replace(reference, accounts=accounts)
    if rules.enrichment.existing_records is None:
        reference = replace(reference, existing=existing)
    return inputs.with_reference(reference)


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pull_activities(connector: Any, since: datetime, until: datetime) -> pd.DataFrame:
    """Engagement activities from the MAP in [since, until), as the canonical activity frame for scoring."""
    from leadflow.sync.pages import marketo_activities

    activities = marketo_activities(connector.activities(since, until))
    get_run_logger().info("MAP activities: %d since %s", len(activities), since.isoformat())
    return activities


def with_activities(inputs: RunInputs, rules: Rules, activities: pd.DataFrame) -> RunInputs:
    """`inputs` whose reference data carries the run's activities (added to any the config names)."""
    from leadflow.scoring.model import conform_activities

    reference = inputs.reference_for(rules)
    both = pd.concat([reference.activities, conform_activities(activities)], ignore_index=True)
    return inputs.with_reference(replace(reference, activities=conform_activities(both)))


def join_activity_windows(earlier: pd.DataFrame, pulled: pd.DataFrame, since: datetime,
                          window_start: datetime) -> pd.DataFrame:
    """One canonical activity frame from activities kept from earlier pulls and `pulled`, the pull of [since, …):
    the earlier ones before `since` (from `window_start` on), the pulled ones from `since` on. Each instant comes
    from one pull, so an activity both pulls saw (the overlap) is counted once, while two alike activities of one
    pull stay two, as a single pull of the whole window would give them."""
    from leadflow.scoring.model import conform_activities

    earlier, pulled = conform_activities(earlier), conform_activities(pulled)
    start, cut = pd.Timestamp(window_start), pd.Timestamp(since)
    kept = earlier[(earlier["occurred_at"] >= start) & (earlier["occurred_at"] < cut)]
    fresh = pulled[pulled["occurred_at"] >= max(start, cut)]
    return conform_activities(pd.concat([kept, fresh], ignore_index=True))


def with_owner_directory(inputs: RunInputs, directory: OwnerDirectory) -> RunInputs:
    """`inputs` whose ownership knows the CRM's users and queues, and whose routing treats inactive users as such
    (`RunInputs.ownership_for`, `RunInputs.routing_for`)."""
    return replace(inputs, owners=directory)


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pull_status_history(connector: Any, lead_ids: list[str]) -> pd.DataFrame:
    """Status changes of these leads from the CRM (Salesforce LeadHistory), for stamping first-seen lifecycle
    stages; empty when the org keeps no such history."""
    from leadflow.connectors.salesforce_history import status_history

    history = status_history(connector, lead_ids)
    get_run_logger().info("CRM status history: %d changes for %d leads seen the first time", len(history),
                          len(lead_ids))
    return history


def with_status_history(inputs: RunInputs, history: pd.DataFrame | None) -> RunInputs:
    """`inputs` carrying this page's status history (None: none)."""
    return replace(inputs, status_history=history)
