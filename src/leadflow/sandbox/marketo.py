"""A local Marketo: the REST paths and JSON shapes leadflow uses, over an in-memory instance on 127.0.0.1.

Speaks `/identity/oauth/token`, `/rest/v1/activities/pagingtoken.json`, `/rest/v1/activities/leadchanges.json`,
`/rest/v1/activities.json`, `/rest/v1/activities/types.json` and `/rest/v1/leads.json` (GET by filter, POST
createOrUpdate). Like Marketo, API errors come inside HTTP 200 (`success: false`, codes 601/602/606/607/615/1003…).
The rate limit (100 calls per 20 s), daily quota (50,000) and concurrency limit (10) are enforced for real, and the
stock-instance rules with them: access tokens only in the Authorization header (a query-string token is refused
with 600), and activity paging that goes through 300 activities of ALL types per call, so a sparse type gives
empty pages with `moreResult: true`. `FaultPlan` (or `POST /__sandbox/faults`) makes the next N matching calls
fail, or a share of all calls (`faults.set_rate(0.1, ["606", "615", "604", "503"], seed=7)`). Seeded
deterministically from `synth.messy_leads` (`leadflow.sandbox.marketo_seed`).

What lives where: the instance's state, limits, field lists and activity types in `marketo_model.py`; seeding in
`marketo_seed.py`; the describe and usage payloads in `marketo_describe.py`. This module serves them (the ASGI app)
and runs the server (`running_marketo`, `main`); every public name of the model and `seed_instance` are re-exported
here, so `from leadflow.sandbox.marketo import MarketoInstance, running_marketo` keeps working.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from leadflow.sandbox.faults import marketo_unavailable, rate_request
from leadflow.sandbox.marketo_describe import lead_describe, usage
from leadflow.sandbox.marketo_model import (
    ACTIVITY_TYPES,
    ALL_FIELDS,
    DEFAULT_LEAD_FIELDS,
    ERROR_MESSAGES,
    LEAD_FIELDS,
    MAX_BATCH,
    PRIMARY_ATTRIBUTES,
    SYSTEM_FIELDS,
    MarketoApiError,
    MarketoInstance,
    iso,
    parse_iso,
)
from leadflow.sandbox.marketo_seed import seed_instance
from leadflow.sandbox.server import BackgroundServer

__all__ = [
    "ACTIVITY_TYPES", "ALL_FIELDS", "DEFAULT_LEAD_FIELDS", "ERROR_MESSAGES", "LEAD_FIELDS", "MAX_BATCH",
    "PRIMARY_ATTRIBUTES", "SYSTEM_FIELDS", "MarketoApiError", "MarketoInstance", "RunningMarketo", "create_app",
    "iso", "main", "parse_iso", "running_marketo", "seed_instance",
]


def _encode_token(after: int) -> str:
    # Opaque to clients, as Marketo's are; the position is the id of the last activity already returned.
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    return int(json.loads(base64.urlsafe_b64decode(padded.encode()))["after"])


def _ok(**body: Any) -> dict[str, Any]:
    return {"requestId": f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:12]}", "success": True, **body}


def _failure(error: MarketoApiError) -> JSONResponse:
    body = {"requestId": f"{uuid.uuid4().hex[:4]}#{uuid.uuid4().hex[:12]}", "success": False,
            "errors": [{"code": error.code, "message": error.message}]}
    return JSONResponse(body, status_code=200)


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _ints(value: str | None, name: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError:
        raise MarketoApiError("1003", f"Invalid value for '{name}'") from None


def create_app(instance: MarketoInstance) -> FastAPI:
    """The sandbox as an ASGI app over `instance`."""
    app = FastAPI(title="Marketo sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Any]) -> Response:
        path = request.url.path
        if path.startswith("/__sandbox"):
            return await call_next(request)
        instance.calls.append(f"{request.method} {path}")
        fault = instance.faults.take(request.method, path)
        if fault is not None:  # served before admit(): a failed call counts against no quota (REST "Error Codes")
            if fault.kind.isdigit() and int(fault.kind) >= 500 and int(fault.kind) < 600:
                return marketo_unavailable(int(fault.kind))
            code = fault.kind
            message = ERROR_MESSAGES.get(code, "Error").format(limit=instance.rate_limit,
                                                                window=int(instance.rate_window))
            return _failure(MarketoApiError(code, message))
        if path.startswith("/identity"):
            return await call_next(request)
        # Marketo REST docs, "Authentication" (https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/authentication):
        # "The access token must be sent as an HTTP header" (Authorization: Bearer); support for the access_token
        # query parameter is removed (announced for January 31, 2026). A token only in the query string is no
        # token at all: 600 "Access token missing" (REST "Error Codes", 600: "An Access Token parameter was not
        # included in the request": https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes).
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        if token is None and "access_token" in request.query_params:
            with instance._lock:
                instance.query_token_refusals += 1
        try:
            instance.check_token(token)
            instance.admit()
        except MarketoApiError as error:
            return _failure(error)
        try:
            return await call_next(request)
        finally:
            instance.release()

    @app.exception_handler(MarketoApiError)
    async def api_error(_: Request, error: MarketoApiError) -> JSONResponse:
        return _failure(error)

    @app.api_route("/identity/oauth/token", methods=["GET", "POST"])
    async def token(request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if request.method == "POST":  # an urlencoded form body, parsed without python-multipart
            params.update((k, v[-1]) for k, v in parse_qs((await request.body()).decode("utf-8")).items())
        issued = None
        if params.get("grant_type") == "client_credentials":
            issued = instance.issue_token(params.get("client_id", ""), params.get("client_secret", ""))
        if issued is None:
            return JSONResponse({"error": "unauthorized", "error_description": "Bad client credentials"}, 401)
        return JSONResponse(issued)

    @app.get("/rest/v1/activities/types.json")
    def types() -> dict[str, Any]:
        return _ok(result=[
            {"id": i, "name": name, "description": name,
             "primaryAttribute": {"name": PRIMARY_ATTRIBUTES[i], "dataType": "string"}, "attributes": []}
            for i, name in ACTIVITY_TYPES.items()
        ])

    @app.get("/rest/v1/leads/describe.json")
    def describe() -> dict[str, Any]:
        return _ok(result=lead_describe())

    @app.get("/rest/v1/stats/usage.json")
    def daily_usage() -> dict[str, Any]:
        return _ok(result=usage(instance.calls_today, instance.client_id, instance.clock()))

    @app.get("/rest/v1/activities/pagingtoken.json")
    def paging_token(sinceDatetime: str | None = None) -> dict[str, Any]:  # Marketo's parameter names
        if not sinceDatetime:
            raise MarketoApiError("701", "'sinceDatetime' cannot be blank")
        try:
            since = parse_iso(sinceDatetime)
        except ValueError:
            raise MarketoApiError("1003", "Invalid value for 'sinceDatetime'") from None
        return _ok(nextPageToken=_encode_token(instance.position_since(since)))

    def _position(token: str | None) -> int:
        if not token:
            raise MarketoApiError("1003", "'nextPageToken' cannot be blank")
        try:
            return _decode_token(token)
        except ValueError:
            raise MarketoApiError("1003", "Invalid value for 'nextPageToken'") from None

    def _scan(batch: str | None) -> int:
        # How many activities (of all types) one call goes through: 300, or fewer with a smaller batchSize
        # ("batchSize: maximum number of records to return; maximum and default is 300"). `page_size` lowers the
        # cap so tests page with few activities.
        try:
            size = instance.page_size if batch is None else int(batch)
        except ValueError:
            raise MarketoApiError("1003", "Invalid value for 'batchSize'") from None
        return max(1, min(size, instance.page_size, MAX_BATCH))

    def _served(path: str, after: int, found: tuple[list[dict[str, Any]], int, bool]) -> tuple[list, int, bool]:
        records, pos, more = found
        with instance._lock:
            instance.activity_pages.append((path, pos - after, len(records)))
        return records, pos, more

    def _paged(records: list[dict[str, Any]], pos: int, more: bool) -> dict[str, Any]:
        body = _ok(nextPageToken=_encode_token(pos), moreResult=more)
        if records:  # Marketo omits `result` on an empty page
            body["result"] = records
        return body

    @app.get("/rest/v1/activities/leadchanges.json")
    def lead_changes(nextPageToken: str | None = None, fields: str | None = None,
                     batchSize: str | None = None, leadIds: str | None = None) -> dict[str, Any]:
        wanted = {f.lower() for f in _csv(fields)}
        if not wanted:
            raise MarketoApiError("1003", "'fields' cannot be blank")
        leads = set(_ints(leadIds, "leadIds"))

        def accept(a: dict[str, Any]) -> bool:
            return (a["activityTypeId"] == 13 and (not leads or a["leadId"] in leads)
                    and any(f["name"].lower() in wanted for f in a.get("fields", [])))

        after = _position(nextPageToken)
        return _paged(*_served("leadchanges.json", after, instance.page(after, accept, _scan(batchSize))))

    @app.get("/rest/v1/activities.json")
    def activities(nextPageToken: str | None = None, activityTypeIds: str | None = None,
                   batchSize: str | None = None, leadIds: str | None = None) -> dict[str, Any]:
        type_ids = set(_ints(activityTypeIds, "activityTypeIds"))
        if not type_ids or len(type_ids) > 10:
            raise MarketoApiError("1003", "'activityTypeIds' needs 1 to 10 values")
        leads = set(_ints(leadIds, "leadIds"))
        if len(leads) > 30:
            raise MarketoApiError("1003", "'leadIds' takes at most 30 values")

        def accept(a: dict[str, Any]) -> bool:
            return a["activityTypeId"] in type_ids and (not leads or a["leadId"] in leads)

        after = _position(nextPageToken)
        records, pos, more = _served("activities.json", after, instance.page(after, accept, _scan(batchSize)))
        return _paged([{k: v for k, v in r.items() if k != "fields"} for r in records], pos, more)

    @app.get("/rest/v1/leads.json")
    def get_leads(filterType: str | None = None, filterValues: str | None = None,
                  fields: str | None = None) -> dict[str, Any]:
        values = _csv(filterValues)
        if filterType not in {"id", "email"} or not values:
            raise MarketoApiError("1003", "Invalid value for 'filterType' or 'filterValues'")
        if len(values) > MAX_BATCH:
            raise MarketoApiError("1003", f"Value for 'filterValues' exceeds the maximum of {MAX_BATCH}")
        instance.lookup_sizes.append(len(values))
        names = _csv(fields) or list(DEFAULT_LEAD_FIELDS)
        with instance._lock:
            if filterType == "id":
                wanted = set(_ints(filterValues, "filterValues"))
                found = [lead for lid, lead in instance.leads.items() if lid in wanted]
            else:
                emails = {v.lower() for v in values}
                found = [lead for lead in instance.leads.values() if str(lead.get("email") or "").lower() in emails]
            # Records are served as stored, wrong types included: that is what bad-payload tests rely on.
            result = [{"id": lead.get("id"), **{n: lead.get(n) for n in names if n != "id" and n in lead}}
                      for lead in found]
        return _ok(result=result)

    @app.post("/rest/v1/leads.json")
    async def upsert(request: Request) -> dict[str, Any]:
        try:
            payload = await request.json()
        except ValueError:
            raise MarketoApiError("609", "Invalid JSON") from None
        action = payload.get("action", "createOrUpdate")
        lookup = payload.get("lookupField", "email")
        rows = payload.get("input") or []
        if action not in {"createOrUpdate", "createOnly", "updateOnly"} or lookup not in {"id", "email"}:
            raise MarketoApiError("1003", "Invalid value for 'action' or 'lookupField'")
        if len(rows) > MAX_BATCH:
            raise MarketoApiError("1003", f"Value for 'input' exceeds the maximum of {MAX_BATCH}")
        instance.lookup_sizes.append(len(rows))
        results = [_upsert_one(instance, action, lookup, row) for row in rows]
        instance.save()
        return _ok(result=results)

    @app.post("/__sandbox/faults")
    async def add_fault(request: Request) -> Response:
        body = await request.json()
        rated = rate_request(instance.faults, body)  # {rate, kinds, seed, route}: a fault rate
        if rated is not None:
            return rated
        instance.faults.inject(body.get("route", ".*"), str(body["kind"]), int(body.get("times", 1)))
        return JSONResponse({"pending": len(instance.faults.pending())})

    @app.delete("/__sandbox/faults")
    def clear_faults() -> dict[str, Any]:
        instance.faults.clear()
        return {"pending": 0}

    @app.post("/__sandbox/expire-tokens")
    def expire() -> dict[str, Any]:
        instance.expire_tokens()
        return {"expired": True}

    @app.get("/__sandbox/stats")
    def stats() -> dict[str, Any]:
        return {"calls_today": instance.calls_today, "leads": len(instance.leads),
                "activities": len(instance.activities), "lookup_sizes": instance.lookup_sizes} | instance.faults.stats()

    return app


def _upsert_one(instance: MarketoInstance, action: str, lookup: str, row: dict[str, Any]) -> dict[str, Any]:
    def skipped(code: str, message: str) -> dict[str, Any]:
        return {"status": "skipped", "reasons": [{"code": code, "message": message}]}

    unknown = [k for k in row if k not in ALL_FIELDS or k in {"createdAt", "updatedAt"}]
    if unknown:
        return skipped("1006", f"Field '{unknown[0]}' not found")
    key = row.get(lookup)
    if key is None or key == "":
        return skipped("1003", f"Value for lookup field '{lookup}' not specified")
    now = datetime.fromtimestamp(time.time(), UTC).replace(microsecond=0)
    with instance._lock:
        if lookup == "id":
            try:
                lead = instance.leads.get(int(key))
            except (TypeError, ValueError):
                return skipped("1003", "Invalid value for 'id'")
        else:
            lead = next((ld for ld in instance.leads.values()
                         if str(ld.get("email") or "").lower() == str(key).lower()), None)
        if lead is None:
            if action == "updateOnly" or lookup == "id":
                return skipped("1004", "Lead not found")
            new_id = max(instance.leads, default=1000) + 1
            lead = {"id": new_id, **{n: None for n in ALL_FIELDS[1:]}, "unsubscribed": False,
                    "createdAt": iso(now), "updatedAt": iso(now)}
            lead.update({k: v for k, v in row.items() if k != "id"})
            instance.leads[new_id] = lead
            instance.add_activity(new_id, 12, now, str(new_id), {"Source Type": "Web service API"})
            instance.lead_changed(lead)
            return {"id": new_id, "status": "created"}
        if action == "createOnly":
            return skipped("1005", "Lead already exists")
        changes = [{"id": ALL_FIELDS.index(k), "name": k, "newValue": v, "oldValue": lead.get(k)}
                   for k, v in row.items() if k != "id" and lead.get(k) != v]
        for change in changes:
            lead[change["name"]] = change["newValue"]
            instance.add_activity(lead["id"], 13, now, change["name"],
                                  {"New Value": change["newValue"], "Old Value": change["oldValue"],
                                   "Source": "Web service API"}, [change])
        if changes:
            lead["updatedAt"] = iso(now)
            instance.lead_changed(lead)
        return {"id": lead["id"], "status": "updated"}


@dataclass
class RunningMarketo:
    """A started sandbox: its URL, credentials and instance (to configure limits and inspect calls)."""

    url: str
    client_id: str
    client_secret: str = field(repr=False)
    instance: MarketoInstance
    server: BackgroundServer = field(repr=False)


@contextmanager
def running_marketo(*, persist_to: Path | None = None, **seed_opts: Any) -> Iterator[RunningMarketo]:
    """Serve an instance on 127.0.0.1 over plain HTTP: `seed_instance(**seed_opts)`, or with `persist_to` the JSON
    file's contents when it exists (seeded and written there first when it does not); writes persist to it."""
    if persist_to is not None and persist_to.is_file():
        instance = MarketoInstance.load(persist_to)
    else:
        instance = seed_instance(**seed_opts, persist_to=persist_to)
        instance.save()
    with BackgroundServer(create_app(instance)) as server:
        yield RunningMarketo(server.url, instance.client_id, instance.client_secret, instance, server)


def main(argv: list[str] | None = None) -> int:
    """`python -m leadflow.sandbox.marketo [--port P] [--leads N] [--seed S] [--state FILE] --client-secret X`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m leadflow.sandbox.marketo", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--leads", type=int, default=500, help="leads to seed (default 500)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--state", type=Path, default=None, help="JSON file to load from and persist writes to")
    parser.add_argument("--client-id", default="leadflow-sandbox")
    parser.add_argument("--client-secret", required=True, help="the secret clients must present")
    args = parser.parse_args(argv)
    options = {"client_id": args.client_id, "client_secret": args.client_secret}
    if args.state is not None and args.state.is_file():
        instance = MarketoInstance.load(args.state, **options)
    else:
        instance = seed_instance(args.leads, args.seed, persist_to=args.state, **options)
        instance.save()
    with BackgroundServer(create_app(instance), port=args.port) as server:
        print(f"Marketo sandbox at {server.url} (client id {args.client_id}); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
