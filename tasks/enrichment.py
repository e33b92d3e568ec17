"""Enrichment I/O: provider look-ups (cached in the state store) and CRM reference data, retried on transient errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from leadflow.config import Rules
from leadflow.connectors.enrichment import HttpFirmographicsProvider, lookup_firmographics, make_provider
from leadflow.enrichment import PROVIDER_COLUMNS
from tasks.io import BACKOFF, _transient, state_store

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


def with_provider_answers(rules: Rules, answers: pd.DataFrame) -> Rules:
    """`rules` whose reference data carries this batch's provider answers."""
    return replace(rules, reference=replace(rules.reference, provider=answers))


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pull_crm_reference(connector: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accounts and existing leads/contacts from the CRM, for matching and duplicate detection."""
    accounts, existing = connector.reference_data()
    get_run_logger().info("CRM reference: %d accounts, %d existing leads and contacts", len(accounts), len(existing))
    return accounts, existing


def with_crm_reference(rules: Rules, accounts: pd.DataFrame, existing: pd.DataFrame) -> Rules:
    """`rules` with the CRM's accounts and records, unless the config names reference files of its own."""
    reference = rules.reference
    if rules.enrichment.accounts is None:
        reference = replace(reference, accounts=accounts)
    if rules.enrichment.existing_records is None:
        reference = replace(reference, existing=existing)
    return replace(rules, reference=reference)


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pull_activities(connector: Any, since: datetime, until: datetime) -> pd.DataFrame:
    """Engagement activities from the MAP in [since, until), as the canonical activity frame for scoring."""
    from leadflow.sync import marketo_activities

    activities = marketo_activities(connector.activities(since, until))
    get_run_logger().info("MAP activities: %d since %s", len(activities), since.isoformat())
    return activities


def with_activities(rules: Rules, activities: pd.DataFrame) -> Rules:
    """`rules` whose reference data carries the run's activities (added to any the config names)."""
    from leadflow.scoring import conform_activities

    both = pd.concat([rules.reference.activities, conform_activities(activities)], ignore_index=True)
    return replace(rules, reference=replace(rules.reference, activities=conform_activities(both)))


@task(retries=2, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pull_inactive_users(connector: Any) -> list[str]:
    """Ids of CRM users who are no longer active: routing skips them even if the routing config still lists them."""
    frames = list(connector.pull_objects("User", fields=["Id", "IsActive"]))
    users = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["Id", "IsActive"])
    inactive = users.loc[users["IsActive"].astype("string").str.lower().eq("false").fillna(False), "Id"]
    return sorted(inactive.astype(str))


def with_inactive_users(rules: Rules, inactive: list[str]) -> Rules:
    """`rules` whose routing treats these users as inactive."""
    from leadflow.routing import with_availability

    if rules.routing is None or not inactive:
        return rules
    return replace(rules, routing=with_availability(rules.routing, inactive=set(inactive), origin=rules.source))
