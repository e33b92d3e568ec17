"""Salesforce reads that keep the CRM mirror: a full snapshot of an object (Bulk API 2.0 for a large org, REST below
the connector's `bulk_query_threshold`) and the changes of several objects since their watermarks in ONE API call.

API facts this module relies on (REST API Developer Guide unless said otherwise):
- QueryAll returns records soft-deleted by a delete or a merge (IsDeleted = true) until they are purged from the
  Recycle Bin; its `nextRecordsUrl` still says `query` and pages on through deleted records too:
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm
- Deleted records stay in the Recycle Bin 15 days, then are permanently deleted (Salesforce Help, "Manage Your
  Recycle Bin": https://help.salesforce.com/s/articleView?id=sf.home_delete.htm): a mirror whose last refresh is older
  than that can have missed deletions and is built again (`RECYCLE_BIN_DAYS`).
- Composite executes up to 25 subrequests in one call, "The entire series of requests counts as a single call
  toward your API limits", at most 5 of them query operations (Query, QueryAll, query more):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm
  Response: {"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}; a failed subrequest's
  body is the usual error list [{"errorCode", "message"}].
- A query job of Bulk API 2.0 returns CSV, every value as text, an empty field as "" (booleans `true`/`false`):
  https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm
- SystemModstamp moves on every change a user or the system makes, deletion included; it is indexed, unlike
  LastModifiedDate (Object Reference, "System Fields":
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/system_fields.htm).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from leadflow.connectors.base import SourceStopped
from leadflow.connectors.salesforce_mapping import SYSTEM
from leadflow.connectors.salesforce_pull import dedup_pages, soql_where
from leadflow.pipeline.errors import LeadflowError

RECYCLE_BIN_DAYS: Final[int] = 15
COMPOSITE_QUERY_LIMIT: Final[int] = 5
"""Query operations per Composite request (the rest of the 25 subrequests would have to be other resources)."""


@dataclass(frozen=True)
class MirrorObject:
    """One object the mirror keeps: the fields it reads, an extra SOQL condition, and how deletions are seen.

    `deletions`: "queryall" — the object has IsDeleted and soft-deletes into the Recycle Bin (QueryAll sees them);
    "none" — its records are never deleted (Users are deactivated, never deleted: Object Reference "User");
    "reread" — a small object read whole on every refresh (its set replaces the mirror's)."""

    name: str
    fields: tuple[str, ...]
    where: str | None = None
    deletions: str = "queryall"

    def select(self) -> list[str]:
        extra = ["IsDeleted"] if self.deletions == "queryall" else []
        return list(dict.fromkeys(["Id", *self.fields, *extra, "SystemModstamp"]))


MIRROR_OBJECTS: Final[dict[str, MirrorObject]] = {
    obj.name: obj for obj in (
        MirrorObject("Account", ("Name", "Website", "BillingCountry", "OwnerId", "NumberOfEmployees",
                                 "AnnualRevenue", "Industry", "LastActivityDate")),
        MirrorObject("Contact", ("FirstName", "LastName", "Email", "AccountId")),
        # Converted leads are read too: a conversion is a change that takes the lead out of the mirror.
        MirrorObject("Lead", ("FirstName", "LastName", "Email", "Company", "IsConverted")),
        # Object Reference "User": Name is the read-only full name (FirstName LastName) the CRM shows:
        # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_user.htm
        MirrorObject("User", ("Name", "IsActive"), deletions="none"),
        # Object Reference "QueueSobject": the objects a queue takes; a Lead's queue owner is one with SobjectType
        # 'Lead'. A queue that stops taking leads loses its row, so the few rows are read whole every time. The
        # queue's name is its Group's Name, read through the `Queue` lookup (QueueId → Group): REST nests it as
        # {"Queue": {"Name": ...}}, Bulk API 2.0 gives a `Queue.Name` column (Object Reference "QueueSobject":
        # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_queuesobject.htm).
        MirrorObject("QueueSobject", ("QueueId", "SobjectType", "Queue.Name"), where="SobjectType = 'Lead'",
                     deletions="reread"),
    )
}


class MirrorReadError(LeadflowError):
    """Salesforce refused a mirror query (its error code and message)."""


def soql(obj: MirrorObject, since: datetime | None) -> str:
    """The mirror's query of `obj`: records changed since `since` (all when None), in (SystemModstamp, Id) order."""
    window = None if obj.deletions == "reread" else since
    return (f"SELECT {', '.join(obj.select())} FROM {obj.name}{soql_where('SystemModstamp', window, None, obj.where)}"
            " ORDER BY SystemModstamp, Id")


def count(connector: Any, obj: MirrorObject) -> int:
    """How many live records of `obj` the org holds (one call)."""
    where = soql_where("SystemModstamp", None, None, obj.where)
    return int(connector._call(lambda sf: sf.query(f"SELECT COUNT() FROM {obj.name}{where}"))["totalSize"])


def snapshot(connector: Any, obj: MirrorObject, *, bulk: bool) -> Iterator[list[dict[str, Any]]]:
    """Every live record of `obj`, in pages: a Bulk API 2.0 query job when `bulk`, else REST query pages.

    Bulk results come in chunks whose order is not the query's (no ORDER BY: "Understanding Bulk API 2.0 Query"), so
    they are not ordered here; the mirror applies a snapshot as a whole."""
    fields = [f for f in obj.select() if f != "IsDeleted"]
    if not bulk:
        pages = connector._rest_pages(obj.name, fields, "SystemModstamp", "Id", None, None, obj.where)
        yield from dedup_pages(pages, "Id", "SystemModstamp")
        return
    text_soql = f"SELECT {', '.join(fields)} FROM {obj.name}{soql_where('SystemModstamp', None, None, obj.where)}"
    for text in connector._bulk_pages(obj.name, text_soql):
        yield [_bulk_record(row) for row in csv.DictReader(io.StringIO(text))]


def _bulk_record(row: dict[str, str]) -> dict[str, Any]:
    """A Bulk CSV row as REST would give it: "" is null, `true`/`false` are booleans."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value == "":
            out[name] = None
        elif value in ("true", "false"):
            out[name] = value == "true"
        else:
            out[name] = value
    return out


def changes(connector: Any, since: dict[str, datetime | None]) -> dict[str, Iterator[list[dict[str, Any]]]]:
    """The changes of each object in `since` (object name → from when), deletions included, read with one Composite
    call of QueryAll subrequests (≤ 5 per call; more objects take more calls). A subrequest whose answer runs over
    one page continues with query-more calls (each one call). Returns object → pages of records."""
    names = list(since)
    firsts: dict[str, dict[str, Any]] = {}
    for start in range(0, len(names), COMPOSITE_QUERY_LIMIT):
        group = names[start:start + COMPOSITE_QUERY_LIMIT]
        firsts |= _composite(connector, {n: soql(MIRROR_OBJECTS[n], since[n]) for n in group})
    return {name: _pages(connector, firsts[name]) for name in names}


def _composite(connector: Any, queries: dict[str, str]) -> dict[str, dict[str, Any]]:
    # A subrequest takes the query's batch size header like a plain query ("Composite Subrequest": httpHeaders).
    headers = {"Sforce-Query-Options": f"batchSize={connector.page_size}"}

    def post(sf: Any) -> Any:
        base = f"/services/data/v{sf.sf_version}"
        body = {"allOrNone": False, "compositeRequest": [
            {"method": "GET", "referenceId": name, "httpHeaders": headers,
             "url": f"{base}/{'queryAll' if MIRROR_OBJECTS[name].deletions == 'queryall' else 'query'}/"
                    f"?q={quote(text)}"}
            for name, text in queries.items()]}
        return sf.restful("composite", method="POST", json=body)

    answer = connector._call(post)
    results: dict[str, dict[str, Any]] = {}
    for sub in answer.get("compositeResponse", []):
        name, status, body = sub.get("referenceId"), int(sub.get("httpStatusCode", 0)), sub.get("body")
        if status >= 400:
            first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
            code, message = str(first.get("errorCode", status)), str(first.get("message", "")).strip()
            if code == "REQUEST_LIMIT_EXCEEDED":
                raise SourceStopped(SYSTEM, "REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent")
            raise MirrorReadError(f"salesforce: reading {name} for the CRM mirror failed: {code}: {message}")
        results[str(name)] = body
    missing = [n for n in queries if n not in results]
    if missing:
        raise MirrorReadError(f"salesforce: the composite answer lacks {', '.join(missing)}")
    return results


def _pages(connector: Any, first: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    headers = {"Sforce-Query-Options": f"batchSize={connector.page_size}"}
    result = first
    while True:
        yield list(result.get("records", []))
        if result.get("done", True):
            return
        next_url = result["nextRecordsUrl"]
        result = connector._call(lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=headers))
