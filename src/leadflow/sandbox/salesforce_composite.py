"""The Salesforce sandbox's Composite resource: `POST /services/data/vXX.X/composite` runs a series of subrequests in
one call. The sandbox runs GET subrequests of Query, QueryAll, their more-results locators and sObject Rows
(`salesforce_reads`); other subrequests are refused as unsupported by the sandbox (never silently accepted).

REST API Developer Guide, "Send Multiple Requests Using Composite" (https://developer.salesforce.com/docs/platform/
api-rest/guide/resources-composite-composite-post.html):
- "The entire series of requests counts as a single call toward your API limits": the gatekeeper counts the POST
  once, whatever it holds (and applies auth, the limit and faults to it like to any call).
- Up to 25 subrequests in a single call; up to 5 of them can be sObject Collections or query operations, Query and
  QueryAll requests included (the same page, as its ja-jp 242.0 edition words it: https://developer.salesforce.com/
  docs/atlas.ja-jp.242.0.api_rest.meta/api/resources_composite_composite_post.htm; the 226.0 edition counts the
  "Query More" requests that fetch the next batch among the query operations: https://developer.salesforce.com/docs/
  atlas.ja-jp.226.0.api_rest.meta/api/resources_composite_composite.htm).
- References `@{referenceId.field}` / `@{referenceId.list[0].field}` in a later subrequest's url (Composite
  Subrequest: "The . operator references a field on a JSON object in the response ... The [] operator indexes a JSON
  collection": https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-graph-composite-
  subrequest.html).
REST API Developer Guide, "Composite Request Body" (https://developer.salesforce.com/docs/platform/api-rest/guide/
requests-composite.html): `allOrNone` — true rolls the whole request back; false runs the subrequests that don't
depend on a failed one, "Dependent subrequests aren't executed"; "In either case, the top-level request returns HTTP
200 and includes responses for each subrequest". `collateSubrequests` (default true from v49.0) lets the API run
unrelated subrequests in any order; running them in the order received is one such order.
REST API Developer Guide, "Composite Subrequest Result" (https://developer.salesforce.com/docs/platform/api-rest/
guide/resources-composite-subrequest-result.html): {body, httpHeaders, httpStatusCode, referenceId}; an error body is
the usual [{"errorCode", "message"}]; "If allOrNone is set to true in the composite request and a subrequest returns
an error, all other subrequests return the 400 HTTP status code"; referenceIds hold only letters, numbers and
underscores.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from leadflow.sandbox.faults import Fault
from leadflow.sandbox.salesforce_reads import NOT_FOUND, Answer, Reads, batch_size, error

if TYPE_CHECKING:
    from leadflow.sandbox.salesforce_org import Org

MAX_SUBREQUESTS: Final = 25
MAX_QUERY_OPERATIONS: Final = 5
METHODS: Final = ("DELETE", "GET", "PATCH", "POST")
"""Composite Subrequest `method`: "Possible values are DELETE, GET, PATCH, and POST (case-sensitive)"."""
INHERITED_HEADERS: Final = frozenset({"accept", "authorization", "content-type"})
"""Composite Subrequest `httpHeaders`: subrequests inherit Accept, Authorization and Content-Type from the top-level
request; "Don't specify these headers in a subrequest. If you do, the top-level request fails and returns an HTTP
400 response" (the errorCode is not documented: the sandbox answers INVALID_INPUT)."""
HALTED: Final = "The transaction was rolled back since another operation in the same transaction failed."
"""PROCESSING_HALTED (SOAP API "StatusCode") on the subrequests of an allOrNone request that failed."""

_REFERENCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"@\{([^}]*)\}")
_VERSIONED = re.compile(r"/services/data/v\d+\.\d+(/[^?]*)")
_QUERY_RESOURCE = re.compile(r"/(query|queryAll)(?:/([^/]*))?")
_COLLECTIONS = re.compile(r"/composite/sobjects/?")
_RECORD = re.compile(r"/sobjects/([^/]+)/([^/]+)")


def _refusal(code: str, message: str) -> Response:
    """A request refused as a whole before any subrequest ran: one result without a referenceId. The shape is the
    one orgs send for more than 25 subrequests: {"compositeResponse":[{"body":[{"errorCode":"LIMIT_EXCEEDED",
    "message":"The request can’t contain more than 25 operations."}],"httpHeaders":{},"httpStatusCode":400,
    "referenceId":null}]} (as logged by a production client: https://github.com/guardian/support-service-lambdas/
    pull/766)."""
    return JSONResponse({"compositeResponse": [{"body": [{"errorCode": code, "message": message}], "httpHeaders": {},
                                                "httpStatusCode": 400, "referenceId": None}]})


def _top_error(code: str, message: str) -> Response:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=400)


def _path(url: str) -> str:
    m = _VERSIONED.match(url)
    return m.group(1) if m else ""


def _counts_as_query(sub: dict[str, Any]) -> bool:
    """A query operation (Query, QueryAll, or their more results) or sObject Collections: the kinds limited to 5."""
    path = _path(str(sub["url"]))
    return _QUERY_RESOURCE.fullmatch(path.rstrip("/") or "/") is not None or _COLLECTIONS.fullmatch(path) is not None


def _shape_problem(body: Any) -> str | None:
    """Why the request body is not a Composite request (a JSON_PARSER_ERROR), or None."""
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        return "Unexpected body: expected {allOrNone, collateSubrequests, compositeRequest: [...]}"
    for flag in ("allOrNone", "collateSubrequests"):
        if flag in body and not isinstance(body[flag], bool):
            return f"Cannot deserialize instance of boolean from value {body[flag]!r} for {flag}"
    for k, sub in enumerate(body["compositeRequest"]):
        if not isinstance(sub, dict):
            return f"compositeRequest[{k}]: expected a subrequest object"
        for name in ("method", "url", "referenceId"):  # Composite Subrequest: all three are Required
            if not isinstance(sub.get(name), str) or not sub[name]:
                return f"compositeRequest[{k}]: {name} is required"
        if sub["method"] not in METHODS:
            return f"compositeRequest[{k}]: method must be one of {', '.join(METHODS)} (case-sensitive)"
        headers = sub.get("httpHeaders", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            return f"compositeRequest[{k}]: httpHeaders must map header names to strings"
    return None


def _resolve(text: str, done: dict[str, Answer]) -> str | None:
    """`text` with every @{referenceId.path} replaced by that value of an earlier, successful subrequest's body;
    None when one cannot be resolved (the subrequest depends on a failed or unknown one)."""
    failed = False

    def value(m: re.Match[str]) -> str:
        nonlocal failed
        ref, _, rest = m.group(1).partition(".")
        answer = done.get(ref)
        if answer is None or answer[0] >= 400 or not rest:
            failed = True
            return ""
        current: Any = answer[1]
        for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", rest):
            if index:
                ok = isinstance(current, list) and int(index) < len(current)
                current = current[int(index)] if ok else None
            else:
                current = current.get(name) if isinstance(current, dict) else None
            if current is None:
                failed = True
                return ""
        if isinstance(current, bool):
            return "true" if current else "false"
        return str(current)

    out = _REFERENCE.sub(value, text)
    return None if failed else out


def register_composite_routes(app: FastAPI, org: Org, data: str, reads: Reads) -> None:
    """Serve `POST {data}/composite` for `org`, running subrequests with `reads` (see the module docstring)."""

    def run(method: str, url: str, headers: dict[str, str], fault: Fault | None) -> Answer:
        path = _path(url)
        if not path:
            return error(404, "NOT_FOUND", NOT_FOUND)
        if method != "GET":
            return error(501, "SANDBOX_UNSUPPORTED", "The sandbox's Composite runs GET subrequests of Query, QueryAll "
                         "and sObject Rows only")
        size = batch_size(headers, org.page_size)
        query = _QUERY_RESOURCE.fullmatch(path.rstrip("/") or "/")
        if query is not None:
            locator = query.group(2)
            if locator:
                return reads.more(locator, size=size, fault=fault)
            soql = parse_qs(urlsplit(url).query, keep_blank_values=True).get("q", [""])[0]
            return reads.query(soql, include_deleted=query.group(1) == "queryAll", size=size, fault=fault)
        record = _RECORD.fullmatch(path.rstrip("/"))
        if record is not None:
            fields = parse_qs(urlsplit(url).query).get("fields", [None])[0]
            return reads.record(record.group(1), record.group(2), fields)
        return error(404, "NOT_FOUND", NOT_FOUND)

    @app.post(f"{data}/composite")
    async def composite(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _top_error("JSON_PARSER_ERROR", "Unexpected character in JSON body")
        problem = _shape_problem(body)
        if problem is not None:
            return _top_error("JSON_PARSER_ERROR", problem)
        subs: list[dict[str, Any]] = body["compositeRequest"]
        inherited = next((h for sub in subs for h in sub.get("httpHeaders", {}) if h.lower() in INHERITED_HEADERS),
                         None)
        if inherited is not None:
            return _top_error("INVALID_INPUT", f"The {inherited} header can't be set on a subrequest: subrequests "
                              "inherit it from the composite request")
        if len(subs) > MAX_SUBREQUESTS:
            return _refusal("LIMIT_EXCEEDED", f"The request can’t contain more than {MAX_SUBREQUESTS} operations.")
        if sum(_counts_as_query(sub) for sub in subs) > MAX_QUERY_OPERATIONS:
            # The limit is documented (module docstring); this refusal's wording is the sandbox's, in the shape of
            # the 25-operation one.
            return _refusal("LIMIT_EXCEEDED", f"The request can’t contain more than {MAX_QUERY_OPERATIONS} query or "
                            "sObject Collections operations.")
        bad = next((sub["referenceId"] for sub in subs if not _REFERENCE_ID.fullmatch(sub["referenceId"])), None)
        if bad is not None:
            # The wording orgs answer from API version 54.0 (https://github.com/forcedotcom/SalesforceMobileSDK-Android/
            # pull/2515 on v59.0; https://github.com/guardian/support-service-lambdas/pull/1512); its errorCode is not
            # documented: the sandbox answers INVALID_INPUT.
            return _refusal("INVALID_INPUT", f"Provided referenceId ('{bad}') must start with a letter or a number, "
                            "and it can contain only letters, numbers and underscores ('_').")
        all_or_none = bool(body.get("allOrNone", False))
        fault = request.state.fault
        done: dict[str, Answer] = {}
        results: list[dict[str, Any]] = []
        for sub in subs:
            url = _resolve(sub["url"], done)
            if all_or_none and any(r["httpStatusCode"] >= 400 for r in results):
                answer = error(400, "PROCESSING_HALTED", HALTED)  # halted: a subrequest before it failed
            elif url is None:
                answer = error(400, "PROCESSING_HALTED", f"Subrequest {sub['referenceId']} was not executed: it "
                               "references a subrequest that failed or a value its response does not have")
            else:
                answer = run(sub["method"], url, sub.get("httpHeaders", {}), fault)
            done[sub["referenceId"]] = answer
            results.append({"body": answer[1], "httpHeaders": {}, "httpStatusCode": answer[0],
                            "referenceId": sub["referenceId"]})
        failed = [k for k, r in enumerate(results) if r["httpStatusCode"] >= 400]
        if all_or_none and failed:
            # Rolled back: every other subrequest answers 400 PROCESSING_HALTED; the one that failed keeps its error.
            for k, result in enumerate(results):
                if k != failed[0]:
                    result.update(body=[{"errorCode": "PROCESSING_HALTED", "message": HALTED}], httpStatusCode=400)
        return JSONResponse({"compositeResponse": results})
