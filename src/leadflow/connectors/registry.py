"""Build connectors from a run config's `systems:` section; secrets are resolved here, at connect time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from leadflow.pipeline.connections import Connections
from leadflow.connectors.base import ApiBudget
from leadflow.pipeline.errors import ConfigError
from leadflow.ops.secrets import resolve_secret


def connect(system: str, connections: Connections, *, origin: str, session: Any = None) -> Any:
    """A ready-to-use connector for `system` (no network I/O until it is used)."""
    if system == "salesforce" and connections.salesforce is not None:
        import requests

        from leadflow.connectors.salesforce import SalesforceCredentials, salesforce_connector

        sf = connections.salesforce
        secret = resolve_secret(sf.client_secret, origin=origin, yaml_path="systems.salesforce.client_secret")
        if session is None and sf.ca_bundle is not None:
            session = requests.Session()
            # REQUESTS_CA_BUNDLE in the environment would override `verify`; the configured bundle must win.
            session.trust_env = False
            session.verify = str(sf.ca_bundle)
        return salesforce_connector(
            SalesforceCredentials(login_url=str(sf.login_url).rstrip("/"), client_id=sf.client_id, client_secret=secret),
            session=session,
            budget=ApiBudget("salesforce", sf.max_calls_per_run),
            max_org_usage_share=sf.max_org_usage_share,
            max_change_share=sf.max_change_share,
            page_size=sf.page_size,
            lookback=timedelta(seconds=sf.lookback_seconds),
        )
    if system == "marketo" and connections.marketo is not None:
        from leadflow.connectors.marketo import MarketoCredentials, marketo_connector

        conf = connections.marketo
        credentials = MarketoCredentials(
            base_url=str(conf.base_url).rstrip("/"),
            client_id=conf.client_id,
            client_secret=resolve_secret(conf.client_secret, origin=origin, yaml_path="systems.marketo.client_secret"),
        )
        return marketo_connector(
            credentials,
            session=session,
            budget=ApiBudget("marketo", conf.max_calls_per_run),
            max_change_share=conf.max_change_share,
        )
    if system == "hubspot" and connections.hubspot is not None:
        from leadflow.connectors.hubspot import HubspotCredentials, hubspot_connector

        hub = connections.hubspot
        token = resolve_secret(hub.token, origin=origin, yaml_path="systems.hubspot.token")
        return hubspot_connector(
            HubspotCredentials(base_url=str(hub.base_url).rstrip("/"), token=token),
            session=session,
            budget=ApiBudget("hubspot", hub.max_calls_per_run),
            max_change_share=hub.max_change_share,
            lookback=timedelta(seconds=hub.lookback_seconds),  # the connector warns below the search index lag
        )
    configured = connections.names
    raise ConfigError(
        origin, f"system {system!r} is not configured (configured: {configured or 'none'})", yaml_path="systems"
    )
