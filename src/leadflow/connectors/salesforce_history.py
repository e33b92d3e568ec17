"""Salesforce reads for ownership and the lifecycle: the org's users and queues, and leads' status-change history.

Functions take a `SalesforceConnector` and use only its public `pull_objects(...)` and its `_call(...)` (one API call,
counted against the run's budget, re-login on an expired session, REQUEST_LIMIT_EXCEEDED → SourceStopped).

API facts (Object Reference for the Salesforce Platform):
- User.IsActive: "User", https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_user.htm
- Queues are Group records with Type = 'Queue' (a lead's OwnerId may be one): "Group",
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_group.htm
- LeadHistory (LeadId, Field, OldValue, NewValue, CreatedDate) holds a row per change of a field with field history
  tracking on; Field = 'Status' for Lead Status: "LeadHistory",
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_leadhistory.htm
  An org without history tracking on Status returns no rows; a user without access to the object gets INVALID_TYPE
  (SOQL and SOSL Reference, "SOQL error codes"). Either way leadflow carries on without history.
- A SOQL statement is at most 100,000 characters (SOQL and SOSL Reference, "SOQL and SOSL Limits"):
  https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_soslsoql.htm
  and a REST query travels in the URL, where URI + headers may be at most 16,384 bytes (Salesforce Help, "Maximum
  number of rows returned by SOQL queries over the REST API", Knowledge Article 000386264:
  https://help.salesforce.com/s/articleView?id=000386264&type=1). 200 ids URL-encoded are ≈ 5,600 bytes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any, Final

import pandas as pd
from simple_salesforce.exceptions import SalesforceMalformedRequest

from leadflow.connectors.salesforce_org import query_records, remember_valid_owners, soql_ids
from leadflow.scoring.lifecycle import HISTORY_COLUMNS
from leadflow.routing.ownership import OwnerDirectory

log = logging.getLogger(__name__)

HISTORY_CHUNK: Final[int] = 200
"""Lead ids per LeadHistory query (one API call each)."""
_ID: Final = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
NO_HISTORY_CODES: Final[frozenset[str]] = frozenset({"INVALID_TYPE", "INVALID_FIELD"})
"""Error codes meaning this org/user cannot read lead history at all (no such object, or no access to it)."""


def _all(frames: Iterable[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    pages = list(frames)
    if pages:
        return pd.concat(pages, ignore_index=True)
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


def owner_directory(connector: Any) -> OwnerDirectory:
    """Active users, inactive users and the queues that take Leads: `User (Id, IsActive)` and `QueueSobject (QueueId)
    WHERE SobjectType = 'Lead'` (a Lead's queue owner is always one of these: Object Reference "QueueSobject"), REST
    pages through `pull_objects` (each call counted against the run's API budget). The connector's write fitting
    takes its valid owners from the same answer, so a run reads users and queues once."""
    users = _all(connector.pull_objects("User", fields=["Id", "IsActive"]), ["Id", "IsActive"])
    active = users["IsActive"].astype("string").str.lower()
    queues = _all(connector.pull_objects("QueueSobject", fields=["QueueId", "SobjectType"],
                                         where="SobjectType = 'Lead'"), ["QueueId", "SobjectType"])
    directory = OwnerDirectory(
        active=frozenset(users.loc[active.eq("true").fillna(False).to_numpy(dtype=bool), "Id"].dropna().astype(str)),
        inactive=frozenset(users.loc[active.eq("false").fillna(False).to_numpy(dtype=bool), "Id"].dropna().astype(str)),
        queues=frozenset(queues["QueueId"].dropna().astype(str)),
        integration_users=frozenset({connector.user_id} if getattr(connector, "user_id", None) else set()),
    )
    remember_valid_owners(connector, directory.active | directory.queues)
    return directory


def _error_code(exc: Exception) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


def _canonical(value: Any) -> str | None:
    stamp = pd.to_datetime(value, utc=True, errors="coerce", format="ISO8601") if isinstance(value, str) else None
    return None if stamp is None or pd.isna(stamp) else stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_history(connector: Any, lead_ids: Iterable[str], *, chunk: int = HISTORY_CHUNK,
                   source: str = "salesforce") -> pd.DataFrame:
    """Status changes of these leads (HISTORY_COLUMNS: lead_key `salesforce:<Id>`, the status changed to, when as
    canonical ISO UTC): `SELECT LeadId, NewValue, CreatedDate FROM LeadHistory WHERE Field = 'Status' AND LeadId IN
    (…)`, ≤ `chunk` ids per query, one call each (more only if a chunk's history spans result pages). An org
    without LeadHistory access or tracking gives an empty frame (and the remaining chunks are not asked)."""
    ids = sorted({str(i) for i in lead_ids if isinstance(i, str) and _ID.match(i)})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), chunk):
        quoted = soql_ids(ids[start:start + chunk])
        soql = f"SELECT LeadId, NewValue, CreatedDate FROM LeadHistory WHERE Field = 'Status' AND LeadId IN ({quoted})"
        try:
            records = query_records(connector, soql)
        except SalesforceMalformedRequest as exc:
            if _error_code(exc) in NO_HISTORY_CODES:
                log.info("salesforce: no lead history (%s): first-seen stages stay undated", _error_code(exc))
                break
            raise
        for record in records:
            status, when = record.get("NewValue"), _canonical(record.get("CreatedDate"))
            if isinstance(status, str) and when is not None and record.get("LeadId"):
                rows.append({"lead_key": f"{source}:{record['LeadId']}", "status": status, "changed_at": when})
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS), dtype="string")


CURRENT_COLUMNS: Final = ("record_id", "owner_id", "status", "is_converted")


def current_leads(connector: Any, lead_ids: Iterable[str], *, chunk: int = HISTORY_CHUNK) -> pd.DataFrame:
    """The leads as the org has them now (CURRENT_COLUMNS; `is_converted` boolean): `SELECT Id, OwnerId, Status,
    IsConverted FROM Lead WHERE Id IN (…)`, ≤ `chunk` ids per query, one call each. A lead deleted since is absent."""
    ids = sorted({str(i) for i in lead_ids if isinstance(i, str) and _ID.match(i)})
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), chunk):
        quoted = soql_ids(ids[start:start + chunk])
        soql = f"SELECT Id, OwnerId, Status, IsConverted FROM Lead WHERE Id IN ({quoted})"
        records = query_records(connector, soql)
        rows += [{"record_id": r.get("Id"), "owner_id": r.get("OwnerId"), "status": r.get("Status"),
                  "is_converted": bool(r.get("IsConverted"))} for r in records]
    frame = pd.DataFrame(rows, columns=list(CURRENT_COLUMNS))
    return frame.astype({"record_id": "string", "owner_id": "string", "status": "string", "is_converted": "boolean"})
