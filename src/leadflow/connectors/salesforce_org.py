"""Reads of an org's shape through a SalesforceConnector (its budget, retries, re-login), cached per connector:
the Lead describe as rules, the owners a Lead may have, the API versions, routing users and queues.

- REST API "sObject Describe": GET /services/data/vXX.X/sobjects/Lead/describe/
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
- REST API "Versions": GET /services/data/ → [{label, url, version}]
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_versions.htm
- Object Reference "User" (IsActive), "Group" (Type = 'Queue') and "QueueSobject" (QueueId, SobjectType: which
  objects a queue may own):
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_user.htm
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_group.htm
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_queuesobject.htm
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from leadflow.connectors.salesforce_fit import FieldRule, rules_from_describe

_T = TypeVar("_T")


class OrgConnector(Protocol):
    """What these reads need of a connector: a `leadflow.connectors.salesforce.SalesforceConnector`, whose `_call(fn)`
    runs `fn` on its simple_salesforce client with its budget, retries and re-login. A protocol rather than an import
    of that class: the connector imports this module."""

    def _call(self, fn: Callable[[Any], _T]) -> _T: ...


_RULES_ATTR: Final = "_leadflow_lead_rules"
_OWNERS_ATTR: Final = "_leadflow_valid_owners"
IN_CHUNK: Final = 200


def lead_rules(connector: OrgConnector, *, refresh: bool = False) -> dict[str, FieldRule]:
    """The Lead describe as FieldRules, fetched once per connector (one API call)."""
    cached = getattr(connector, _RULES_ATTR, None)
    if cached is None or refresh:
        cached = rules_from_describe(connector._call(lambda sf: sf.Lead.describe()))
        setattr(connector, _RULES_ATTR, cached)
    return dict(cached)


def cached_lead_rules(connector: OrgConnector) -> dict[str, FieldRule] | None:
    """The Lead rules if this connector already fetched them (no API call), else None."""
    cached = getattr(connector, _RULES_ATTR, None)
    return None if cached is None else dict(cached)


def query_records(connector: Any, soql: str) -> list[dict[str, Any]]:
    """Every record of one SOQL query (all result pages), through the connector: each call counted, one re-login."""
    return list(connector._call(lambda sf: sf.query_all(soql))["records"])


def valid_owners(connector: OrgConnector) -> frozenset[str]:
    """Ids a Lead may be owned by: every active user and every queue that takes Leads; fetched once per connector."""
    cached = getattr(connector, _OWNERS_ATTR, None)
    if cached is None:
        users = query_records(connector, "SELECT Id FROM User WHERE IsActive = true")
        queues = query_records(connector, "SELECT QueueId FROM QueueSobject WHERE SobjectType = 'Lead'")
        cached = frozenset([str(r["Id"]) for r in users] + [str(r["QueueId"]) for r in queues])
        setattr(connector, _OWNERS_ATTR, cached)
    return frozenset(cached)


def remember_valid_owners(connector: Any, owners: frozenset[str]) -> None:
    """Give the connector the valid owners a caller already read (active users and Lead queues), saving the calls."""
    setattr(connector, _OWNERS_ATTR, frozenset(owners))


def cached_valid_owners(connector: OrgConnector) -> frozenset[str] | None:
    """The valid owners if this connector already fetched them (no API call), else None."""
    cached = getattr(connector, _OWNERS_ATTR, None)
    return None if cached is None else frozenset(cached)


def api_versions(connector: OrgConnector) -> list[str] | None:
    """Versions the org serves (GET /services/data/), or None when that resource does not answer."""
    def call(sf: Any) -> Any:
        reply = sf.session.get(f"https://{sf.sf_instance}/services/data/", headers=sf.headers)
        return reply.json() if reply.status_code == 200 else None

    body = connector._call(call)
    if not isinstance(body, list):
        return None
    return [str(v.get("version")) for v in body if isinstance(v, dict) and v.get("version")]


def soql_ids(ids: Iterable[str]) -> str:
    """Ids as the inside of a SOQL `IN (…)` list (quotes stripped from the ids themselves)."""
    return ", ".join("'" + i.replace("'", "") + "'" for i in ids)


@dataclass(frozen=True)
class OrgOwner:
    """A user or queue as the org knows it."""

    id: str
    name: str
    kind: str
    """`user`, `queue` or the Group Type (`Regular`, ...) when a configured queue id is some other group."""
    active: bool
    takes_leads: bool = True


def routing_owners(connector: OrgConnector, user_ids: list[str], queue_ids: list[str]) -> dict[str, OrgOwner]:
    """15-character id → OrgOwner for the configured routing users and queues that exist in the org."""
    found: dict[str, OrgOwner] = {}
    for start in range(0, len(user_ids), IN_CHUNK):
        chunk = user_ids[start:start + IN_CHUNK]
        for r in query_records(connector, f"SELECT Id, Name, IsActive FROM User WHERE Id IN ({soql_ids(chunk)})"):
            found[str(r["Id"])[:15]] = OrgOwner(str(r["Id"]), str(r.get("Name") or ""), "user", bool(r["IsActive"]))
    for start in range(0, len(queue_ids), IN_CHUNK):
        chunk = queue_ids[start:start + IN_CHUNK]
        groups = query_records(connector, f"SELECT Id, Name, Type FROM Group WHERE Id IN ({soql_ids(chunk)})")
        soql = f"SELECT QueueId FROM QueueSobject WHERE SobjectType = 'Lead' AND QueueId IN ({soql_ids(chunk)})"
        lead_queues = {str(r["QueueId"])[:15] for r in query_records(connector, soql)}
        for r in groups:
            kind = "queue" if r.get("Type") == "Queue" else str(r.get("Type") or "group")
            key = str(r["Id"])[:15]
            found[key] = OrgOwner(str(r["Id"]), str(r.get("Name") or ""), kind, True, key in lead_queues)
    return found
