"""Salesforce connector: incremental pulls (REST query, Bulk API 2.0 for backfills) and write-back of changed fields.

`SalesforceConnector` is built here from one mixin per concern, each in a module beside this one (nothing touches the
network at import):

- salesforce_auth: `SalesforceCredentials` and the OAuth2 token request (client credentials or password grant, the
  connecting user's id from the identity URL, the My Domain hint when client credentials are refused).
- salesforce_session: `SessionMixin`, the transport of the `requests.Session` the connector owns (an adapter that
  retries 503s, 429s, connection errors and timeouts through `leadflow.connectors.http`, puts a default timeout on
  every call, spends the run's `ApiBudget` and watches the org-wide usage in `Sforce-Limit-Info`), login, re-login
  and `_call`; the error codes (`OrgNotReady`, `RETRYABLE_CODES`).
- salesforce_pull: `PullMixin`, SOQL paging in (SystemModstamp, Id) order, Leads as canonical frames, other objects
  raw, the enrich stage's reference data.
- salesforce_bulk: `BulkMixin`, Bulk API 2.0: backfill query jobs and bulk updates.
- salesforce_write: `WriteMixin`, the write-back (plan, fit, sObject Collections), `SalesforceWriteResult`,
  `WriteError`, single Leads for `leadflow audit test-lead`.
- salesforce_mapping: the field mapping models and `load_mapping`; salesforce_frames: pulled records → frames and
  the datetime/number readings pulls and writes share.

Around the connector: salesforce_org (the org's shape: describe, owners, versions), salesforce_fit (fitting writes to
the describe), salesforce_history (status history, owner directory), salesforce_setup (`leadflow setup salesforce`).
Every class, function and constant this module defined before the split is still importable from it (its private
helpers too, under their old names).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce

from leadflow.connectors.base import ApiBudget, ExportGuard
from leadflow.connectors.salesforce_auth import SalesforceAuthError, SalesforceCredentials
from leadflow.connectors.salesforce_frames import PULL_ERROR_COLUMN
from leadflow.connectors.salesforce_mapping import (
    DEFAULT_MAPPING_PATH,
    SYSTEM,
    FieldSpec,
    ObjectMapping,
    SalesforceMapping,
    load_mapping,
)
from leadflow.connectors.salesforce_pull import DEFAULT_OBJECT_FIELDS
from leadflow.connectors.salesforce_session import MAX_RETRY_AFTER, RETRYABLE_CODES, OrgNotReady
from leadflow.connectors.salesforce_write import COLLECTION_LIMIT, SalesforceWriteResult, WriteError, WriteMixin

# The former module's private helpers, still reachable as `leadflow.connectors.salesforce._name` (not part of the API).
from leadflow.connectors.salesforce_bulk import _bulk_value, _csv_records, _ordered_pages  # noqa: F401
from leadflow.connectors.salesforce_fit import empty_refused as _empty_refused  # noqa: F401
from leadflow.connectors.salesforce_frames import _FAST_STAMP, _canonical_datetime, _shown  # noqa: F401
from leadflow.connectors.salesforce_frames import iso_utc as _iso  # noqa: F401
from leadflow.connectors.salesforce_frames import pulled_number as _pulled_number  # noqa: F401
from leadflow.connectors.salesforce_frames import to_frame as _to_frame  # noqa: F401
from leadflow.connectors.salesforce_pull import _concat, _parse, _soql, _soql_datetime  # noqa: F401
from leadflow.connectors.salesforce_pull import dedup_pages as _dedup  # noqa: F401
from leadflow.connectors.salesforce_pull import soql_where as _where  # noqa: F401
from leadflow.connectors.salesforce_session import _error_message, _GuardedAdapter  # noqa: F401
from leadflow.connectors.salesforce_session import error_code as _error_code  # noqa: F401
from leadflow.connectors.salesforce_write import _as_bool, _as_datetime, _as_number, _plan  # noqa: F401

__all__ = [
    "COLLECTION_LIMIT",
    "DEFAULT_MAPPING_PATH",
    "DEFAULT_OBJECT_FIELDS",
    "MAX_RETRY_AFTER",
    "PULL_ERROR_COLUMN",
    "RETRYABLE_CODES",
    "SYSTEM",
    "FieldSpec",
    "ObjectMapping",
    "OrgNotReady",
    "SalesforceAuthError",
    "SalesforceConnector",
    "SalesforceCredentials",
    "SalesforceMapping",
    "SalesforceWriteResult",
    "WriteError",
    "load_mapping",
    "salesforce_connector",
]


class SalesforceConnector(WriteMixin):
    """A LeadSource and CrmWriter for Salesforce Leads (plus raw pulls of Contacts, Accounts, Users).

    Transport and login come from salesforce_session.SessionMixin, pulls from salesforce_pull.PullMixin, the backfill
    and bulk writes from salesforce_bulk.BulkMixin, writes from salesforce_write.WriteMixin (each builds on the one
    before)."""

    system = SYSTEM

    def __init__(
        self,
        credentials: SalesforceCredentials,
        *,
        session: requests.Session | None = None,
        mapping: SalesforceMapping | None = None,
        budget: ApiBudget | None = None,
        max_org_usage_share: float = 0.8,
        page_size: int = 2000,
        lookback: timedelta = timedelta(minutes=5),
        bulk_query_threshold: int = 10_000,
        bulk_page_size: int = 50_000,
        bulk_write_threshold: int = 2000,
        bulk_wait: float = 1.0,
        max_change_share: float = 0.5,
        guard_floor: int = 100,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 60.0,
    ) -> None:
        self.credentials = credentials
        self.mapping = mapping or load_mapping()
        self.budget = budget or ApiBudget(SYSTEM)
        self.max_org_usage_share = max_org_usage_share
        self.page_size = page_size
        self.lookback = lookback
        self.bulk_query_threshold = bulk_query_threshold
        self.bulk_page_size = bulk_page_size
        self.bulk_write_threshold = bulk_write_threshold
        self.bulk_wait = bulk_wait
        self.guard = ExportGuard(SYSTEM, max_change_share, guard_floor)
        self.api_calls = 0
        self.org_usage: tuple[int, int] | None = None
        """(used, max) of the org's daily API requests, as last reported by Salesforce."""
        self._owns_session = session is None
        self.session = session or requests.Session()
        self._mount_transport(retries, backoff, timeout)
        self._sf: Salesforce | None = None
        self._started = False
        self.user_id: str | None = None
        """The connecting (integration) user's id, from the token response once logged in."""

    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Canonical columns with a writable Lead field in the mapping."""
        return tuple(spec.column for spec in self.mapping.objects["Lead"].fields.values() if spec.write)

    def close(self) -> None:
        """Close the HTTP session if the connector created it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> SalesforceConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.credentials.instance_url or self.credentials.login_url
        return f"SalesforceConnector({where!r}, api_calls={self.api_calls})"


def salesforce_connector(
    credentials: SalesforceCredentials,
    *,
    session: requests.Session | None = None,
    mapping: SalesforceMapping | Path | None = None,
    budget: ApiBudget | None = None,
    page_size: int = 2000,
    lookback: timedelta = timedelta(minutes=5),
    **options: Any,
) -> SalesforceConnector:
    """Build a Salesforce connector; `mapping` is a parsed mapping or a YAML path (default: the bundled one)."""
    if isinstance(mapping, Path):
        mapping = load_mapping(mapping)
    return SalesforceConnector(credentials, session=session, mapping=mapping, budget=budget or ApiBudget(SYSTEM),
                               page_size=page_size, lookback=lookback, **options)
