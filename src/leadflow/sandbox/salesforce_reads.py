"""The Salesforce sandbox's read resources: Query, QueryAll, their more-results locators and sObject Rows GET.

Each is a plain function answering (HTTP status, JSON body), so `/composite` runs them as subrequests exactly as the
routes registered here serve them. Sources (REST API Developer Guide):
- "Query" / "Query More Results": up to 2,000 records a page (`Sforce-Query-Options: batchSize=` 200-2,000),
  `nextRecordsUrl` `/services/data/vXX.X/query/<locator>-<offset>` while `done` is false:
  https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query-more-results.html
- "QueryAll": like Query, but returns records soft deleted by a delete or a merge, until they are purged from the
  Recycle Bin: https://developer.salesforce.com/docs/platform/api-rest/guide/resources-queryall.html
- "QueryAll More Results": "The URI specified in the nextRecordsUrl field of a QueryAll response body contains query
  instead of queryAll. To retrieve the next set of results, you can use either the Query More Results or the
  QueryAll More Results resources with the same query locator. The remaining results include deleted records that
  match the initial query": https://developer.salesforce.com/docs/platform/api-rest/guide/
  resources-queryall-more-results.html
- "sObject Rows" GET; a record in the Recycle Bin answers 404 ENTITY_IS_DELETED ("You can't reference an object that
  has been deleted": SOAP API Developer Guide, "StatusCode", https://developer.salesforce.com/docs/atlas.en-us.api.meta/
  api/sforce_api_calls_concepts_core_data_objects.htm), one purged or never created 404 NOT_FOUND ("Status Codes and
  Error Responses": https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from leadflow.sandbox.faults import Fault
from leadflow.sandbox.salesforce_rules import user_name
from leadflow.sandbox.salesforce_schema import STANDARD
from leadflow.sandbox.salesforce_soql import SoqlError, _field, parent_of

if TYPE_CHECKING:
    from leadflow.sandbox.salesforce_org import Org

Answer = tuple[int, Any]
NOT_FOUND: Final = "The requested resource does not exist"


def error(status: int, code: str, message: str) -> Answer:
    return status, [{"message": message, "errorCode": code}]


def project(data: str, obj: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """A record as the REST API serializes it: `attributes` (type, url), then the asked fields in order; a parent's
    field (`Queue.Name`) nested under the relationship, `"Queue": {"attributes": ..., "Name": ...}`, or
    `"Queue": null` when the lookup is empty (REST API Developer Guide, "Execute a SOQL Query" relationship example:
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm)."""
    out: dict[str, Any] = {"attributes": {"type": obj, "url": f"{data}/sobjects/{obj}/{record['Id']}"}}
    for name in fields:
        path = parent_of(obj, name)
        if path is None:
            out[name] = record.get(name)
            continue
        relation, reference, parent, attribute = path
        parent_id = record.get(reference)
        if parent_id is None:
            out[relation] = None
            continue
        url = f"{data}/sobjects/{parent}/{parent_id}"
        nested = out.setdefault(relation, {"attributes": {"type": parent, "url": url}})
        nested[attribute] = record.get(name)
    return out


def malform(records: list[dict[str, Any]], fault: Fault) -> None:
    """A broken payload: the first record loses a field, the second gets wrong types / unknown picklist values."""
    detail = fault.detail or {}
    if records:
        drop = detail.get("drop", "Email")
        records[0].pop(drop, None)
    if len(records) > 1:
        for name, value in (detail.get("set") or {"HasOptedOutOfEmail": "maybe", "Status": "Qualified??"}).items():
            if name in records[1]:
                records[1][name] = value


def batch_size(headers: Mapping[str, str], default: int) -> int:
    """The page size a request asks for: "Query Options Header" `Sforce-Query-Options: batchSize=N` (200 to 2,000;
    https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_queryoptions.htm)."""
    options = next((v for k, v in headers.items() if k.lower() == "sforce-query-options"), "")
    m = re.search(r"batchSize=(\d+)", options)
    return min(max(int(m.group(1)), 200), 2000) if m else default


class Reads:
    """The read resources of one org, as (status, body) answers."""

    def __init__(self, org: Org, data: str) -> None:
        self.org, self.data = org, data

    def page(self, obj: str, rows: list[dict[str, Any]], fields: list[str], start: int, size: int, key: str | None,
             fault: Fault | None) -> Answer:
        chunk = [project(self.data, obj, r, fields) for r in rows[start: start + size]]
        if fault is not None and fault.kind == "malformed":
            malform(chunk, fault)
        done = start + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": chunk}
        if not done:
            key = key or self.org.open_cursor(obj, rows, fields)
            # Query and QueryAll alike: the locator URL says `query` (see the module docstring).
            body["nextRecordsUrl"] = f"{self.data}/query/{key}-{start + size}"
        return 200, body

    def query(self, soql: str, *, include_deleted: bool, size: int, fault: Fault | None) -> Answer:
        """Query (`include_deleted=False`) or QueryAll."""
        try:
            parsed, rows = self.org.run_query(soql, include_deleted=include_deleted)
        except SoqlError as exc:
            return error(400, exc.code, exc.message)
        if parsed.count:
            return 200, {"totalSize": len(rows), "done": True, "records": []}
        return self.page(parsed.obj, rows, parsed.fields, 0, size, None, fault)

    def more(self, locator: str, *, size: int, fault: Fault | None) -> Answer:
        """Query More Results / QueryAll More Results: the same cursor either way."""
        key, _, offset = locator.rpartition("-")
        if fault is not None and fault.kind == "invalid_locator":  # as when a locator sits idle past 15 minutes
            self.org.cursors.pop(key, None)
        cursor = self.org.cursors.get(key)
        if cursor is None or not offset.isdigit():
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        obj, rows, fields = cursor
        return self.page(obj, rows, fields, int(offset), size, key, fault)

    def record(self, obj: str, record_id: str, fields: str | None) -> Answer:
        """sObject Rows GET (`fields`: a comma-separated list, default every field the user sees)."""
        record = self.org.get(obj, record_id) if obj in STANDARD else None
        if record is None:
            if obj in STANDARD and self.org.is_deleted(obj, record_id):
                return error(404, "ENTITY_IS_DELETED", "entity is deleted")
            return error(404, "NOT_FOUND", NOT_FOUND)
        try:
            schema = self.org.schema()
            names = [_field(obj, f.strip(), schema) for f in fields.split(",")] if fields else list(schema[obj])
        except SoqlError as exc:
            return error(400, exc.code, exc.message)
        return 200, project(self.data, obj, user_name(record) if obj == "User" else record, names)


def register_read_routes(app: FastAPI, org: Org, data: str) -> Reads:
    """Serve Query, QueryAll, their locators and sObject Rows GET for `org`; returns the `Reads` they answer with."""
    reads = Reads(org, data)

    def answer(result: Answer) -> Response:
        return JSONResponse(result[1], status_code=result[0])

    @app.get(f"{data}/query/")
    async def query(request: Request, q: str = "") -> Response:
        return answer(reads.query(q, include_deleted=False, size=batch_size(request.headers, org.page_size),
                                  fault=request.state.fault))

    @app.get(f"{data}/queryAll/")
    async def query_all(request: Request, q: str = "") -> Response:
        return answer(reads.query(q, include_deleted=True, size=batch_size(request.headers, org.page_size),
                                  fault=request.state.fault))

    @app.get(data + "/query/{locator}")
    async def query_more(request: Request, locator: str) -> Response:
        return answer(reads.more(locator, size=batch_size(request.headers, org.page_size), fault=request.state.fault))

    @app.get(data + "/queryAll/{locator}")
    async def query_all_more(request: Request, locator: str) -> Response:
        return answer(reads.more(locator, size=batch_size(request.headers, org.page_size), fault=request.state.fault))

    @app.get(data + "/sobjects/{obj}/{record_id}")
    async def read(obj: str, record_id: str, fields: str | None = None) -> Response:
        return answer(reads.record(obj, record_id, fields))

    return reads
