"""A local Salesforce org: OAuth2, SOQL Query and QueryAll (+ pagination), sObjects, Collections, Composite, Bulk API
2.0, the Recycle Bin, limits, faults.

Speaks the real v59.0 paths, payloads and error shapes so unmodified simple-salesforce works against it over HTTPS.
State is in memory; `Org.save(path)` / `Org.load(path)` persist it as JSON so `leadflow sandbox` survives restarts.

Faults (`org.faults.inject(route_regex, kind, times, **detail)` or `POST /__sandbox/faults {route, kind, times,
detail}`; the route matches "METHOD /path"): "503"; "429" (detail retry_after=N); "403" (REQUEST_LIMIT_EXCEEDED);
"401" (every session expires); "slow" (detail seconds: the response is held back); "lock_row" (per-record
UNABLE_TO_LOCK_ROW in a Collections PATCH or at an ingest job's UploadComplete; detail ids=[...] or count=N);
"malformed" (a query page, also inside a Composite call: the first record loses a field, detail drop=Name; the
second gets detail set={field: bad value}); "invalid_locator" (a nextRecordsUrl has expired); "job_failed" (a Bulk API 2.0 query job's info GET: the
job ends Failed, detail message=...). A fault rate (`org.faults.set_rate(0.1, ["503", "lock_row"], seed=7)` or
`POST /__sandbox/faults {rate, kinds, seed, route}`) fails that share of all calls with the transient kinds 503,
429, lock_row (any Collections update, on a random record) and slow; see `leadflow.sandbox.faults`. Other admin
calls: DELETE /__sandbox/faults, POST /__sandbox/expire-sessions, POST /__sandbox/limits {max, used},
GET /__sandbox/stats (with faults served per kind and the Recycle Bin's size). Admin calls never count against the
API limit.

Strict like a stock org (each rule cites the API docs where it is modelled): the org state, field-level security and
write rules live in salesforce_org.py / salesforce_rules.py, field metadata in salesforce_schema.py, describe and the
Tooling API in salesforce_metadata.py, Bulk API 2.0 in salesforce_bulk.py, the SOQL subset in salesforce_soql.py,
the Recycle Bin and lead conversion in salesforce_recycle.py, the SystemModstamp index in salesforce_index.py, Query,
QueryAll and sObject GET in salesforce_reads.py, Composite in salesforce_composite.py. This module serves them
(OAuth2, sObject writes, Collections, admin) and starts the server.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import pandas as pd
import requests
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from leadflow.sandbox.faults import SALESFORCE_FAULTS, FaultPlan, locked_ids, rate_request, salesforce_refusal
from leadflow.sandbox.salesforce_bulk import register_bulk_routes
from leadflow.sandbox.salesforce_composite import register_composite_routes
from leadflow.sandbox.salesforce_metadata import register_metadata_routes
from leadflow.sandbox.salesforce_org import (
    DEFAULTS,
    INTEGRATION_USER_ID,
    ORG_ID,
    SEED_BASE,
    Org,
)
from leadflow.sandbox.salesforce_reads import register_read_routes
from leadflow.sandbox.salesforce_rules import rec_err as _rec_err
from leadflow.sandbox.salesforce_schema import (
    FULL_FIELDS,
    GRADES,
    LEAD_STATUSES,
    LIFECYCLE_STAGES,
    NUMBER_TYPES,
    PICKLISTS,
    SCHEMA,
    STANDARD,
)
from leadflow.sandbox.salesforce_seed import seed_org
from leadflow.sandbox.salesforce_soql import (
    Soql,
    SoqlError,
    parse_sf_datetime,
    parse_soql,
    sf_datetime,
)
from leadflow.sandbox.server import BackgroundServer
from leadflow.sandbox.tls import self_signed_certificate

API_VERSION: Final = "59.0"
DATA: Final = f"/services/data/v{API_VERSION}"
__all__ = [
    "API_VERSION", "DATA", "DEFAULTS", "FULL_FIELDS", "GRADES", "INTEGRATION_USER_ID", "LEAD_STATUSES",
    "LIFECYCLE_STAGES", "NUMBER_TYPES", "ORG_ID", "PICKLISTS", "SCHEMA", "SEED_BASE", "Org", "RunningSalesforce",
    "Soql", "SoqlError", "create_app", "parse_sf_datetime", "parse_soql", "running_salesforce", "sf_datetime",
]


def _err(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status, headers=headers)


def _host(request: Request) -> str:
    """The host name a request was addressed to (Host header without the port)."""
    host = request.headers.get("host", "").strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


# ------------------------------------------------------------------------------------------------- HTTP app


def create_app(org: Org) -> FastAPI:
    """The ASGI app serving `org`."""
    app = FastAPI(title="leadflow Salesforce sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    org.faults.bind(SALESFORCE_FAULTS)

    def limit_header() -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={org.api_used}/{org.api_max}"}

    @app.middleware("http")
    async def gatekeeper(request: Request, call_next: Any) -> Response:
        path = request.url.path
        org.requests_seen.append(f"{request.method} {path}")
        fault = None if path.startswith("/__sandbox") else org.faults.take(request.method, path)
        request.state.fault = fault
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(float((fault.detail or {}).get("seconds", 2.0)))
        refusal = salesforce_refusal(fault)  # "503" / "429": refused before authentication and counting
        if refusal is not None:
            return refusal
        if not path.startswith("/services/data/"):
            return await call_next(request)
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if fault is not None and fault.kind == "401":
            org.expire_sessions()
        if token not in org.tokens:
            return _err(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with org.lock:
            if (fault is not None and fault.kind == "403") or org.api_used >= org.api_max:
                return _err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", limit_header())
            org.api_used += 1
        try:
            response: Response = await call_next(request)
        except Exception:  # a payload the handlers did not foresee: answer like Salesforce, keep serving
            return _err(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you "
                        "contact support: sandbox", limit_header())
        response.headers.update(limit_header())
        return response

    register_metadata_routes(app, org, DATA)

    # -- OAuth2
    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, which leadflow does not depend on.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        ok_client = form.get("client_id") == org.client_id and form.get("client_secret") == org.client_secret
        if grant == "password":
            ok_client = ok_client and form.get("username") == org.username and form.get("password") == org.password
            if not ok_client:
                return JSONResponse({"error": "invalid_grant", "error_description": "authentication failure"}, 400)
        elif grant != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "grant type not supported"},
                                400)
        elif _host(request) != org.my_domain.lower():
            # The client credentials flow works only on the org's My Domain URL; login.salesforce.com and
            # test.salesforce.com answer 400 invalid_grant "request not supported on this domain". Salesforce Help,
            # "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration" (the token request goes to
            # https://MyDomainName.my.salesforce.com/services/oauth2/token):
            # https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm;
            # the error as orgs return it: https://github.com/pozil/pub-sub-api-node-client/issues/58
            return JSONResponse({"error": "invalid_grant", "error_description": "request not supported on this domain"},
                                400)
        if not ok_client:
            return JSONResponse({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "access_token": org.issue_token(), "instance_url": base,
            "id": f"{base}/id/{ORG_ID}/{org.integration_user_id}",
            "token_type": "Bearer", "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
        })

    # -- limits
    @app.get(f"{DATA}/limits/")
    async def limits() -> Response:
        return JSONResponse({"DailyApiRequests": {"Max": org.api_max, "Remaining": max(org.api_max - org.api_used, 0)},
                             "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000}})

    # -- Query, QueryAll (+ more results), sObject Rows GET; Composite runs them as subrequests
    reads = register_read_routes(app, org, DATA)
    register_composite_routes(app, org, DATA, reads)

    # -- sObjects
    def known(obj: str) -> bool:
        return obj in STANDARD

    async def validated_body(request: Request, obj: str, *, create: bool,
                             record_id: str | None = None) -> tuple[dict[str, Any] | None, Response | None]:
        """The request's fields, coerced; or the Salesforce-shaped 400 to answer with."""
        try:
            body = await request.json()
        except ValueError:
            return None, _err(400, "JSON_PARSER_ERROR", "Unexpected character in JSON body")
        if not isinstance(body, dict):
            return None, _err(400, "JSON_PARSER_ERROR", "Unexpected body: expected a JSON object")
        clean, errors = org.validate(obj, body, create=create, record_id=record_id)
        if errors:
            return None, JSONResponse(
                [{"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]} for e in errors],
                status_code=400,
            )
        return clean, None

    @app.post(DATA + "/sobjects/{obj}/")
    async def create(request: Request, obj: str) -> Response:
        if not known(obj):
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        clean, refusal = await validated_body(request, obj, create=True)
        if clean is None:
            return refusal  # type: ignore[return-value]
        return JSONResponse({"id": org.put(obj, clean), "success": True, "errors": []}, status_code=201)

    def missing(obj: str, record_id: str) -> Response:
        """404 for a record that is not live: ENTITY_IS_DELETED while it sits in the Recycle Bin, else NOT_FOUND
        (see `salesforce_reads`)."""
        if known(obj) and org.is_deleted(obj, record_id):
            return _err(404, "ENTITY_IS_DELETED", "entity is deleted")
        return _err(404, "NOT_FOUND", "The requested resource does not exist")

    @app.patch(DATA + "/sobjects/{obj}/{record_id}")
    async def update(request: Request, obj: str, record_id: str) -> Response:
        if not known(obj) or org.get(obj, record_id) is None:
            return missing(obj, record_id)
        clean, refusal = await validated_body(request, obj, create=False, record_id=record_id)
        if clean is None:
            return refusal  # type: ignore[return-value]
        org.put(obj, clean, record_id)
        return Response(status_code=204)

    @app.delete(DATA + "/sobjects/{obj}/{record_id}")
    async def delete(obj: str, record_id: str) -> Response:
        # Accounts, contacts and leads go to the Recycle Bin (`salesforce_recycle`); others are removed outright.
        if not known(obj) or not org.delete(obj, record_id):
            return missing(obj, record_id)
        return Response(status_code=204)

    # -- sObject Collections
    def apply(obj: str, record_id: str | None, values: dict[str, Any], locked: bool) -> list[dict[str, Any]]:
        if locked:
            return [_rec_err("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])]
        if record_id is None or org.get(obj, record_id) is None:
            return [_rec_err("ENTITY_IS_DELETED" if record_id else "MISSING_ARGUMENT",
                             "entity is deleted" if record_id else "Id not specified in an update call", [])]
        clean, errors = org.validate(obj, values, create=False, record_id=record_id)
        if not errors:
            org.put(obj, clean, record_id)
        return errors

    @app.patch(f"{DATA}/composite/sobjects")
    async def collections_update(request: Request) -> Response:
        try:
            body = await request.json()
            records = body["records"]
            all_or_none = bool(body.get("allOrNone", False))
        except (ValueError, KeyError, TypeError):
            return _err(400, "JSON_PARSER_ERROR", "Unexpected body: expected {allOrNone, records}")
        if len(records) > 200:
            return _err(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records in this "
                        "operation")
        ids = [r.get("id") or r.get("Id") for r in records]
        locked = locked_ids(request.state.fault, ids)
        results = []
        with org.lock:
            planned = []
            for record, record_id in zip(records, ids, strict=True):
                values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
                obj = (record.get("attributes") or {}).get("type", "Lead")
                if obj not in STANDARD:
                    planned.append((obj, record_id, values, [_rec_err("INVALID_TYPE", f"no sObject {obj}", [])]))
                    continue
                planned.append((obj, record_id, values, None))
            if all_or_none:
                # Validate everything first; any failure rolls the whole request back.
                checks = []
                for obj, record_id, values, pre in planned:
                    errs = pre or ([] if record_id not in locked else [_rec_err(
                        "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])])
                    if not errs:
                        errs = org.validate(obj, values, create=False, record_id=record_id)[1] if org.get(
                            obj, record_id) else [
                            _rec_err("ENTITY_IS_DELETED", "entity is deleted", [])]
                    checks.append(errs)
                if any(checks):
                    for (obj, record_id, _, _), errs in zip(planned, checks, strict=True):
                        results.append({"id": record_id, "success": False, "errors": errs or [_rec_err(
                            "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were "
                            "valid and the request was using AllOrNone header", [])]})
                    return JSONResponse(results)
            for obj, record_id, values, pre in planned:
                errors = pre or apply(obj, record_id, values, record_id in locked)
                results.append({"id": record_id, "success": not errors, "errors": errors})
        return JSONResponse(results)

    # -- Bulk API 2.0 (query and ingest jobs)
    register_bulk_routes(app, org, apply, locked_ids)

    # -- admin (not part of Salesforce; never counted against the API limit)
    @app.post("/__sandbox/faults")
    async def add_fault(request: Request) -> Response:
        body = await request.json()
        rated = rate_request(org.faults, body)  # {rate, kinds, seed, route}: a fault rate
        if rated is not None:
            return rated
        detail = body.get("detail") or {}
        org.faults.inject(body["route"], body["kind"], int(body.get("times", 1)), **detail)
        return JSONResponse({"pending": len(org.faults.pending())})

    @app.delete("/__sandbox/faults")
    async def clear_faults() -> Response:
        org.faults.clear()
        return Response(status_code=204)

    @app.post("/__sandbox/expire-sessions")
    async def expire() -> Response:
        org.expire_sessions()
        return Response(status_code=204)

    @app.post("/__sandbox/limits")
    async def set_limits(request: Request) -> Response:
        body = await request.json()
        org.set_limits(max_calls=body.get("max"), used=body.get("used"))
        return JSONResponse({"max": org.api_max, "used": org.api_used})

    @app.get("/__sandbox/stats")
    async def stats() -> Response:
        return JSONResponse({"api_used": org.api_used, "api_max": org.api_max,
                             "records": {o: len(v) for o, v in org.objects.items()},
                             "recycle_bin": {o: len(v) for o, v in org.recycle_bin.items()}} | org.faults.stats())

    return app


# ------------------------------------------------------------------------------------------------- running it


@dataclass
class RunningSalesforce:
    """A started sandbox: where it listens, how to trust it and log in, and the org behind it."""

    url: str
    cert_path: Path
    client_id: str
    client_secret: str
    org: Org
    _sessions: list[requests.Session] = field(default_factory=list, repr=False)

    @property
    def faults(self) -> FaultPlan:
        return self.org.faults

    def session(self) -> requests.Session:
        """A requests session that trusts the sandbox certificate and ignores REQUESTS_CA_BUNDLE/proxies."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.cert_path)
        self._sessions.append(session)
        return session

    def close_sessions(self) -> None:
        """Close every session handed out: an open TLS keep-alive connection holds up the server's shutdown."""
        for session in self._sessions:
            session.close()
        self._sessions.clear()

    def token(self) -> str:
        """A fresh access token (client-credentials grant)."""
        with self.session() as session:
            reply = session.post(f"{self.url}/services/oauth2/token", data={
                "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret,
            }, timeout=10)
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    def lead_frame(self) -> pd.DataFrame:
        """All leads in the org, as a DataFrame of Salesforce field names (for assertions)."""
        with self.org.lock:
            return pd.DataFrame(list(self.org.objects["Lead"].values()))


@contextmanager
def running_salesforce(
    folder: Path,
    *,
    leads: int = 1000,
    seed: int = 7,
    stamp_run: int = 250,
    page_size: int = 2000,
    api_max: int = 100_000,
    state_path: Path | None = None,
    port: int = 0,
    stock_org: bool = False,
    accounts: int | None = None,
    contacts: int | None = None,
    start: datetime | None = None,
    **org_options: Any,
) -> Iterator[RunningSalesforce]:
    """Start a seeded (or, with an existing `state_path`, reloaded) sandbox over HTTPS on 127.0.0.1.

    `stock_org=True`: only standard fields until leadflow's custom fields are created (Tooling API) and granted.
    `accounts` / `contacts`: how many to seed (default leads // 10 and leads // 4). `start`: the seed's base time
    (default `SEED_BASE`; see `seed_org`).
    `org_options`: other `Org` settings (api_user_can_customize, bulk_query_polls, my_domain, ...)."""
    if state_path is not None and state_path.is_file():
        org = Org.load(state_path, page_size=page_size, **org_options)
    else:
        org = seed_org(Org(api_max=api_max, page_size=page_size, stock_org=stock_org, **org_options), leads=leads,
                       seed=seed, stamp_run=stamp_run, accounts=accounts, contacts=contacts,
                       **({} if start is None else {"start": start})).fill_defaults()
    cert, key = self_signed_certificate(folder)
    server = BackgroundServer(create_app(org), port=port, certfile=cert, keyfile=key)
    with server:
        running = RunningSalesforce(server.url, cert, org.client_id, org.client_secret, org)
        try:
            yield running
        finally:
            running.close_sessions()
            if state_path is not None:
                org.save(state_path)
