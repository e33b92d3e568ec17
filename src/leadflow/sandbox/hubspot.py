"""A local HubSpot portal speaking the CRM v3 contacts API (search, get, update, batch update, create) on 127.0.0.1.

Shapes, caps and errors follow the real API, strict by default: private-app bearer tokens (several apps may share
the portal), search pages of at most 200 with an `after` offset, no paging past 10,000 results of one query (400
VALIDATION_ERROR), 5 search requests per second and 190 calls per 10 s per ACCOUNT, shared by every app (429 with
HubSpot's RATE_LIMIT body), a search index that shows a change only up to a minute after it was made, and
per-record errors of batch updates in a 207 multi-status. Every cap is configurable (`HubspotLimits`) so tests
stay small and fast; both clocks (rate windows, write stamps / index) are injectable. Faults: counted
(`faults.inject`) or at a rate (`faults.set_rate(0.1, ["429", "502", "503", "504"], seed=7)`, or
`POST /__sandbox/faults {rate, kinds, seed, route}`), see `leadflow.sandbox.faults`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from leadflow.sandbox.faults import HUBSPOT_FAULTS, FaultPlan, hubspot_fault_response, rate_request
from leadflow.sandbox.hubspot_limits import (
    HubspotLimits,
    PortalRateLimiter,
    RateLimited,
    rate_limit_body,
    retry_after_seconds,
    spread_index_delay,
)
from leadflow.sandbox.hubspot_model import (
    LEAD_STATUS_OPTIONS,
    LIFECYCLE_OPTIONS,
    PROPERTIES,
    iso_ms,
    property_definitions,
    property_errors,
    search_records,
    shape,
    validation_message,
)
from leadflow.sandbox.server import BackgroundServer
from leadflow.pipeline.schema import parse_bool
from leadflow.synth import DEFAULT_START, messy_leads

__all__ = [
    "DEFAULT_TOKEN",
    "LEAD_STATUS_OPTIONS",
    "LIFECYCLE_OPTIONS",
    "PROPERTIES",
    "HubspotLimits",
    "Portal",
    "RunningHubspot",
    "create_app",
    "running_hubspot",
    "seed_portal",
]

DEFAULT_TOKEN: Final[str] = "pat-na1-00000000-sandbox-0000-0000-000000000000"
"""The private-app token the sandbox accepts unless told otherwise (a test value, not a secret)."""

_STATUS_MAP: Final[dict[str, str]] = {
    "Open - Not Contacted": "NEW",
    "Working - Contacted": "IN_PROGRESS",
    "Nurture": "BAD_TIMING",
    "Closed - Not Converted": "UNQUALIFIED",
    "Closed - Converted": "OPEN_DEAL",
}
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)


def _error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    return JSONResponse(body, status_code=status)


class Portal:
    """In-memory contacts of one HubSpot portal (optionally persisted to a JSON file), its apps' tokens and limits.

    Two clocks, both injectable: `clock` (monotonic seconds) drives the rate windows, `now_ms` (epoch ms) stamps
    writes and decides what the search index already shows. Nothing sleeps.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        limits: HubspotLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        state_file: Path | None = None,
        index_delay: Callable[[int, int], int] | None = None,
    ) -> None:
        self.token = token
        self.limits = limits or HubspotLimits()
        self.now_ms = now_ms
        self.state_file = state_file
        self.stats: Counter[str] = Counter()
        self.apps: dict[str, str] = {token: "default"}
        """Token → app name. HubSpot's limits are per account: every app here shares one `rate_limiter`."""
        self.rate_limiter = PortalRateLimiter(self.limits, clock)
        self.default_clock = clock
        self.index_delay = index_delay or spread_index_delay(self.limits.search_index_lag_ms)
        """(contact id, change stamp ms) → ms until search shows the change; replace it to script a test."""
        self.webhooks: Callable[[str, Any, dict[str, Any], int], None] | None = None
        """(kind "creation" / "propertyChange", contact id, properties, ms) on API creates and changes, when webhooks
        push somewhere (`leadflow.sandbox.push.attach_hubspot`)."""
        self._lock = threading.RLock()
        self._contacts: dict[int, dict[str, Any]] = {}
        self._next_id = 101
        if state_file is not None and state_file.is_file():
            saved = json.loads(state_file.read_text(encoding="utf-8"))
            self._contacts = {int(c["id"]): c for c in saved["contacts"]}
            self._next_id = int(saved["next_id"])

    def __repr__(self) -> str:  # tokens stay out of reprs, even sandbox ones
        return f"Portal(contacts={len(self._contacts)}, apps={len(self.apps)}, state_file={self.state_file})"

    @property
    def clock(self) -> Callable[[], float]:
        """Rate-limit clock (seconds); share a fake one with the connector to test its limiter without sleeping."""
        return self.rate_limiter.clock

    @clock.setter
    def clock(self, value: Callable[[], float]) -> None:
        self.rate_limiter.clock = value

    def install_app(self, name: str) -> str:
        """Another private app in this portal: returns its token. Its calls count against the same limits."""
        token = f"pat-na1-{uuid.uuid5(uuid.NAMESPACE_URL, name + ':' + self.token)}"
        with self._lock:
            self.apps[token] = name
        return token

    # -- storage -----------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the contacts to `state_file` (atomically), when there is one."""
        if self.state_file is None:
            return
        data = {"next_id": self._next_id, "contacts": list(self._contacts.values())}
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.state_file)

    def add(self, properties: dict[str, Any], *, created_ms: int, modified_ms: int, save: bool = True,
            indexed: bool = False) -> str:
        """Store a contact with the given stamps; returns its id. Search shows it once its change is indexed
        (`modified_ms` + its index delay), or at once with `indexed` (history that predates the sandbox)."""
        with self._lock:
            cid = self._next_id
            self._next_id += 1
            record = {"id": cid, "properties": dict(properties), "cd": created_ms, "lm": modified_ms}
            record["ix"] = modified_ms if indexed else modified_ms + self.index_delay(cid, modified_ms)
            self._contacts[cid] = record
            if save:
                self.save()
            return str(cid)

    def put_raw(self, properties: dict[str, Any], *, modified_ms: int, created_ms: int | None = None) -> str:
        """Store a contact whose returned properties are exactly `properties` (no stamps added): bad payloads."""
        with self._lock:
            cid = self.add({}, created_ms=created_ms or modified_ms, modified_ms=modified_ms, save=False,
                           indexed=True)
            self._contacts[int(cid)]["raw"] = dict(properties)
            self.save()
            return cid

    def ids(self) -> list[str]:
        with self._lock:
            return [str(c) for c in self._contacts]

    def contact(self, contact_id: str, properties: list[str] | None = None) -> dict[str, Any] | None:
        """The API shape of one contact (as GET by id reads it: the record, not the search index), or None."""
        with self._lock:
            record = self._contacts.get(int(contact_id)) if str(contact_id).isdigit() else None
            return None if record is None else shape(record, properties)

    def modified_ms(self, contact_id: str) -> int:
        with self._lock:
            return int(self._contacts[int(contact_id)]["lm"])

    def searchable_from_ms(self, contact_id: str) -> int:
        """When search shows the contact's current version (epoch ms)."""
        with self._lock:
            record = self._contacts[int(contact_id)]
            return int(record.get("ix", record["lm"]))

    def update(self, contact_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        """Apply validated properties and bump lastmodifieddate, as HubSpot does; search loses sight of the
        contact until the change is indexed."""
        with self._lock:
            record = self._contacts[int(contact_id)]
            changed = {k: v for k, v in properties.items() if record["properties"].get(k) != v}
            record["properties"].update(properties)
            record.pop("raw", None)
            record["lm"] = max(self.now_ms(), record["lm"] + 1)
            record["ix"] = record["lm"] + self.index_delay(record["id"], record["lm"])
            self.save()
            if self.webhooks is not None and changed:
                self.webhooks("propertyChange", record["id"], changed, record["lm"])
            return shape(record, list(properties) or None)

    def reset_rate_limits(self) -> None:
        self.rate_limiter.reset()

    # -- search ------------------------------------------------------------------------------------------------
    def search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of a CRM search request, over what the search index shows now.

        HubSpot developer docs, CRM API "Search", Limitations: "it may take a few moments for newly created or
        updated objects to appear in search results" (https://developers.hubspot.com/docs/guides/api/crm/search).
        A contact created or updated is invisible to search (its `lastmodifieddate` filter included) until its
        change is indexed; GET by id reads the record itself and sees it at once.
        """
        now = self.now_ms()
        with self._lock:
            visible = [r for r in self._contacts.values() if r.get("ix", r["lm"]) <= now]
            self.stats["search_hidden"] += len(self._contacts) - len(visible)
            return search_records(visible, body, self.limits)


def seed_portal(
    portal: Portal,
    n: int = 300,
    *,
    seed: int = 7,
    burst: int = 0,
    same_stamp: int = 0,
    burst_at: datetime = datetime(2026, 10, 15, 12, tzinfo=UTC),
    burst_span: timedelta = timedelta(minutes=1),
) -> None:
    """Add `n` contacts built from `messy_leads(n, seed)`, deterministically.

    `burst` of them are modified within `burst_span` after `burst_at` (a narrow window with more results than a
    small cap), and `same_stamp` of those share exactly `burst_at` (a window no time split can narrow).
    """
    if not 0 <= same_stamp <= burst <= n:
        raise ValueError("need 0 <= same_stamp <= burst <= n")
    leads = messy_leads(n, seed)
    rng = np.random.default_rng([seed, 4242])
    start_ms = (DEFAULT_START - _EPOCH) // timedelta(milliseconds=1)
    day = 86_400_000
    created = start_ms - rng.integers(day, 90 * day, n)
    modified = np.minimum(created + rng.integers(0, 20 * day, n), start_ms)
    chosen = rng.permutation(n)[:burst]
    at_ms = (burst_at - _EPOCH) // timedelta(milliseconds=1)
    modified[chosen] = at_ms + rng.integers(0, max(1, int(burst_span.total_seconds() * 1000)), burst)
    modified[chosen[:same_stamp]] = at_ms
    created = np.minimum(created, modified)
    opt_in, _ = parse_bool(leads["email_opt_in"])
    lifecycle = rng.choice(np.array(LIFECYCLE_OPTIONS[:5]), n)
    columns = {
        "email": "email", "firstname": "first_name", "lastname": "last_name", "company": "company",
        "jobtitle": "title", "phone": "phone", "country": "country", "state": "state", "city": "city",
        "zip": "postal_code", "website": "website",
    }
    records = leads.astype(object).where(leads.notna(), None).to_dict("records")
    order = np.argsort(created, kind="stable")  # HubSpot ids grow with creation time
    for i in order:
        row = records[i]
        props: dict[str, Any] = {prop: row[col] for prop, col in columns.items()}
        props["hs_lead_status"] = _STATUS_MAP.get(row["status"] or "")
        props["lifecyclestage"] = str(lifecycle[i])
        flag = opt_in.iloc[i]
        props["hs_email_optout"] = None if pd.isna(flag) else ("false" if flag else "true")
        # Seeded history predates the sandbox: already indexed.
        portal.add(props, created_ms=int(created[i]), modified_ms=int(modified[i]), save=False, indexed=True)
    portal.save()  # once, not once per contact


def create_app(portal: Portal, faults: FaultPlan | None = None) -> FastAPI:
    """The HubSpot API over `portal`, with fault injection from `faults` (and `POST /__sandbox/faults`)."""
    plan = (faults or FaultPlan()).bind(HUBSPOT_FAULTS)
    app = FastAPI(title="leadflow HubSpot sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.portal, app.state.faults = portal, plan

    def unauthorized() -> JSONResponse:
        return _error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
            "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            "INVALID_AUTHENTICATION",
        )

    @app.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Any]) -> Response:
        path = request.url.path
        if path.startswith("/__sandbox"):
            return await call_next(request)
        portal.stats["requests"] += 1
        fault = plan.take(request.method, path)
        search = request.method == "POST" and path.endswith("/search")
        response: Response | None = None
        delay = 0.0
        if fault is not None:
            detail = fault.detail or {}
            portal.stats[f"fault_{fault.kind}"] += 1
            if fault.kind == "slow":
                delay = float(detail.get("seconds", 1.0))
            elif fault.kind == "401":
                response = unauthorized()
            elif fault.kind == "malformed":
                response = Response("<html><body>upstream hiccup</body></html>", 200, media_type="text/html")
            else:  # 429 and 5xx as HubSpot answers them
                response = hubspot_fault_response(fault.kind, detail, search=search, limits=portal.limits) or _error(
                    500, f"sandbox: unknown fault kind {fault.kind!r}", "INTERNAL_ERROR")
        app_name: str | None = None
        if response is None:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer":
                app_name = next((name for known, name in portal.apps.items()
                                 if hmac.compare_digest(token.encode(), known.encode())), None)
            if app_name is None:
                response = unauthorized()
        if response is None:
            portal.stats[f"app_{app_name}_calls"] += 1
            try:
                # HubSpot developer docs, "API usage guidelines and limits": limits are per account, shared by
                # every app in it (https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details); CRM
                # API "Search", Limitations: five search requests per second per account.
                portal.rate_limiter.admit(search)
            except RateLimited as refused:
                portal.stats["rate_limited"] += 1
                portal.stats[f"app_{app_name}_rate_limited"] += 1
                response = JSONResponse(rate_limit_body(refused.policy), status_code=429)
                if portal.limits.retry_after:
                    response.headers["Retry-After"] = retry_after_seconds(refused.retry_in)
            else:
                if search:
                    portal.stats["search"] += 1
                    portal.stats[f"app_{app_name}_search"] += 1
        if response is None:
            response = await call_next(request)
        portal.stats[f"status_{response.status_code}"] += 1
        if delay:
            # Slow to answer, not slow to act: the call is counted and applied on arrival, as a real server does,
            # so a client that gave up leaves nothing behind that lands later.
            await asyncio.sleep(delay)
        return response

    async def json_body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    @app.post("/crm/v3/objects/contacts/search")
    async def search(request: Request) -> JSONResponse:
        body = await json_body(request)
        if not isinstance(body, dict):
            return _error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        status, out = portal.search(body)
        if status != 200:
            return _error(status, out["message"], out["category"])
        return JSONResponse(out)

    @app.post("/crm/v3/objects/contacts/batch/update")
    async def batch_update(request: Request) -> JSONResponse:
        started = iso_ms(portal.now_ms())
        body = await json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return _error(400, "inputs must be a non-empty list", "VALIDATION_ERROR")
        if len(inputs) > portal.limits.max_batch_inputs:
            return _error(400, f"Batch input must contain at most {portal.limits.max_batch_inputs} inputs "
                          f"(got {len(inputs)})", "VALIDATION_ERROR")
        ids = [str(item.get("id")) if isinstance(item, dict) else "" for item in inputs]
        if len(set(ids)) != len(ids):
            return _error(400, "Duplicate IDs found in batch input", "VALIDATION_ERROR")
        results, errors, missing = [], [], []
        for item, cid in zip(inputs, ids, strict=True):
            if portal.contact(cid) is None:
                missing.append(cid)
                continue
            problems = property_errors(item.get("properties"))
            if problems:
                errors.append({
                    "status": "error", "category": "VALIDATION_ERROR", "message": validation_message(problems),
                    "context": {"id": [cid]},
                    "errors": [{"message": p["message"], "code": p["error"], "context": {"propertyName": [p["name"]]}}
                               for p in problems],
                })
                continue
            results.append(portal.update(cid, item["properties"]))
        if missing:
            errors.append({
                "status": "error", "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            })
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                               "completedAt": iso_ms(portal.now_ms())}
        if errors:
            out.update(numErrors=len(errors), errors=errors)
        return JSONResponse(out, status_code=207 if errors else 200)

    @app.post("/crm/v3/objects/contacts/batch/read")
    async def batch_read(request: Request) -> JSONResponse:
        # HubSpot API reference, CRM Contacts "Retrieve a batch of contacts" (the records themselves, not the search
        # index); unknown ids: 207 with an OBJECT_NOT_FOUND error naming them.
        started = iso_ms(portal.now_ms())
        body = await json_body(request)
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs or len(inputs) > portal.limits.max_batch_inputs:
            return _error(400, f"inputs must be a list of 1 to {portal.limits.max_batch_inputs} objects",
                          "VALIDATION_ERROR")
        wanted = body.get("properties") if isinstance(body.get("properties"), list) else None
        ids = [str(item.get("id")) if isinstance(item, dict) else "" for item in inputs]
        found = {cid: portal.contact(cid, wanted) for cid in dict.fromkeys(ids)}
        portal.stats["batch_read"] += 1
        missing = [cid for cid, record in found.items() if record is None]
        out: dict[str, Any] = {"status": "COMPLETE", "results": [r for r in found.values() if r is not None],
                               "startedAt": started, "completedAt": iso_ms(portal.now_ms())}
        if missing:
            out.update(numErrors=1, errors=[{"status": "error", "category": "OBJECT_NOT_FOUND", "context": {
                "ids": missing}, "message": "Could not get some CONTACT objects, they may be deleted or not exist."}])
        return JSONResponse(out, status_code=207 if missing else 200)

    @app.post("/crm/v3/objects/contacts")
    async def create(request: Request) -> JSONResponse:
        body = await json_body(request)
        properties = body.get("properties") if isinstance(body, dict) else None
        problems = property_errors(properties)
        if problems:
            return _error(400, validation_message(problems), "VALIDATION_ERROR")
        assert isinstance(properties, dict)
        email = str(properties.get("email") or "").lower()
        if email:
            for cid in portal.ids():
                existing = portal.contact(cid, ["email"])
                if existing and str(existing["properties"].get("email") or "").lower() == email:
                    return _error(409, f"Contact already exists. Existing ID: {cid}", "CONFLICT")
        now = portal.now_ms()
        cid = portal.add(properties, created_ms=now, modified_ms=now)
        if portal.webhooks is not None:
            portal.webhooks("creation", cid, properties, now)
        return JSONResponse(portal.contact(cid, list(properties)), status_code=201)

    @app.get("/crm/v3/properties/contacts")
    async def properties() -> JSONResponse:
        return JSONResponse({"results": property_definitions()})

    @app.get("/crm/v3/objects/contacts/{contact_id}")
    async def get_contact(contact_id: str, request: Request) -> JSONResponse:
        # HubSpot API reference, CRM Contacts "Retrieve a contact"
        # (https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/get-crm-v3-objects-contacts-contactId):
        # `properties` is an array query parameter, sent repeated (`?properties=a&properties=b`, as the official
        # hubspot-api-client does) or comma separated; unknown names are ignored.
        wanted = [name for value in request.query_params.getlist("properties") for name in value.split(",") if name]
        found = portal.contact(contact_id, wanted or None)
        if found is None:
            return _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        return JSONResponse(found)

    @app.patch("/crm/v3/objects/contacts/{contact_id}")
    async def patch_contact(contact_id: str, request: Request) -> JSONResponse:
        body = await json_body(request)
        properties = body.get("properties") if isinstance(body, dict) else None
        if portal.contact(contact_id) is None:
            return _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        problems = property_errors(properties)
        if problems:
            return _error(400, validation_message(problems), "VALIDATION_ERROR")
        assert isinstance(properties, dict)
        return JSONResponse(portal.update(contact_id, properties))

    @app.post("/__sandbox/faults")
    async def add_fault(request: Request) -> JSONResponse:
        body = await json_body(request)
        rated = rate_request(plan, body)  # {rate, kinds, seed, route}: a fault rate
        if rated is not None:
            return rated
        if not isinstance(body, dict) or "route" not in body or "kind" not in body:
            return JSONResponse({"message": "need route and kind"}, status_code=400)
        detail = {k: v for k, v in body.items() if k not in {"route", "kind", "times"}}
        plan.inject(str(body["route"]), str(body["kind"]), int(body.get("times", 1)), **detail)
        return JSONResponse({"pending": len(plan.pending())})

    @app.delete("/__sandbox/faults")
    async def clear_faults() -> JSONResponse:
        plan.clear()
        return JSONResponse({"pending": 0})

    @app.get("/__sandbox/stats")
    async def stats() -> JSONResponse:
        return JSONResponse(dict(portal.stats) | plan.stats())

    return app


@dataclass
class RunningHubspot:
    """A sandbox portal being served: `url` to pass as `base_url`, the `token` it accepts, and its `portal`."""

    url: str
    token: str = field(repr=False)
    portal: Portal
    faults: FaultPlan
    server: BackgroundServer = field(repr=False)

    def reset(self) -> None:
        """Forget pending faults, counters and rate-limit history (between tests)."""
        self.faults.clear()
        self.faults.served.clear()
        self.portal.stats.clear()
        self.portal.clock = self.portal.default_clock
        self.portal.reset_rate_limits()


@contextmanager
def running_hubspot(
    *,
    token: str = DEFAULT_TOKEN,
    limits: HubspotLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    state_file: Path | None = None,
    index_delay: Callable[[int, int], int] | None = None,
    **seed_opts: Any,
) -> Iterator[RunningHubspot]:
    """Serve a seeded portal on 127.0.0.1 (http) for the duration of the `with` block.

    `seed_opts` go to `seed_portal` (n, seed, burst, same_stamp, ...); a `state_file` that already holds contacts
    is served as it is, without seeding. `clock` drives the rate limits, `now_ms` the stamps writes set and what the
    search index shows (`limits.search_index_lag_ms`, or a scripted `index_delay`).
    """
    portal = Portal(token, limits=limits, clock=clock, now_ms=now_ms, state_file=state_file, index_delay=index_delay)
    if not portal.ids():
        seed_portal(portal, **seed_opts)
    plan = FaultPlan(HUBSPOT_FAULTS)
    with BackgroundServer(create_app(portal, plan)) as server:
        yield RunningHubspot(server.url, token, portal, plan, server)
