"""Push-intake tasks: read the notified records by id, and create web leads in the CRM. Connectors retry their own
I/O with explicit backoff, so the tasks add none."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from prefect.cache_policies import NO_CACHE

from leadflow.intake.batches import soql_text, web_lead_fields
from tasks.runner import task

REPLAY_LOOKBACK = timedelta(minutes=1)
"""A replayed web lead looks for the Lead its earlier attempt created from this long before the form was received."""


@task(cache_policy=NO_CACHE)
def fetch_records(connector: Any, record_ids: list[str]) -> pd.DataFrame:
    """The records as their system has them now, in a pulled page's columns: one call per batch (the connector's
    `fetch_by_ids`: Salesforce `Id IN (…)`, HubSpot batch read, Marketo `leads.json?filterType=id`). A record
    deleted since is absent."""
    return connector.fetch_by_ids(sorted(set(record_ids)))


@task(cache_policy=NO_CACHE)
def create_web_leads(connector: Any, rows: pd.DataFrame) -> tuple[dict[int, str], dict[int, BaseException]]:
    """Create a Lead in the CRM for each web notification (`rows`: inbox rows, `payload` the form's lead); returns
    inbox id → the Lead's id, and inbox id → the error for those that could not be created.

    A notification claimed before (`attempts` > 1: its process may have been killed after creating the Lead) first
    looks for the Lead that attempt created: same e-mail, created since the form was received (less a minute of
    clock skew); found, it is used instead of creating another."""
    from leadflow.connectors.salesforce_org import query_records

    lead = connector.mapping.objects["Lead"]
    columns = {spec.column: name for name, spec in lead.fields.items() if spec.write}
    created: dict[int, str] = {}
    errors: dict[int, BaseException] = {}
    for row in rows.itertuples(index=False):
        payload = dict(row.payload or {})
        try:
            email = str(payload.get("email") or "").strip()
            if int(row.attempts) > 1 and email and "email" in columns:
                since = (pd.Timestamp(row.received_at) - REPLAY_LOOKBACK).strftime("%Y-%m-%dT%H:%M:%SZ")
                earlier = query_records(connector, f"SELECT Id FROM Lead WHERE {columns['email']} = {soql_text(email)} "
                                                   f"AND CreatedDate >= {since} ORDER BY CreatedDate LIMIT 1")
                if earlier:
                    created[int(row.id)] = str(earlier[0]["Id"])
                    continue
            created[int(row.id)] = connector.create_lead(web_lead_fields(payload, columns))
        except Exception as exc:  # noqa: BLE001 - per notification: the batch goes on, the outcome says why
            errors[int(row.id)] = exc
    return created, errors
