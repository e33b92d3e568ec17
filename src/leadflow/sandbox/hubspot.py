"""A local HubSpot portal speaking the CRM v3 contacts API (search, get, update, batch update, create) on 127.0.0.1.

Shapes, caps and errors follow the real API: a private-app bearer token, search pages of at most 200 with an
`after` offset, no paging past 10,000 results of one query (400 VALIDATION_ERROR), 4 search requests per second
and 190 calls per 10 s per token (429 RATE_LIMIT), per-record errors of batch updates in a 207 multi-status.
Every cap is configurable (`HubspotLimits`) so tests stay small and fast; the rate-limit clock is injectable.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid
from collections import Counter, deque
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

from leadflow.sandbox.faults import FaultPlan
from leadflow.sandbox.server import BackgroundServer
from leadflow.schema import parse_bool
from leadflow.synth import DEFAULT_START, messy_leads

__all__ = [
    "DEFAULT_TOKEN",
    "HubspotLimits",
    "Portal",
    "RunningHubspot",
    "create_app",
    "running_hubspot",
    "seed_portal",
]

DEFAULT_TOKEN: Final[str] = "pat-na1-00000000-sandbox-0000-0000-000000000000"
"""The private-app token the sandbox accepts unless told otherwise (a test value, not a secret)."""

LEAD_STATUS_OPTIONS: Final[tuple[str, ...]] = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING",
)
LIFECYCLE_OPTIONS: Final[tuple[str, ...]] = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer", "evangelist",
    "other",
)
_STRING_PROPERTIES: Final[tuple[str, ...]] = (
    "email", "firstname", "lastname", "company", "jobtitle", "phone", "country", "state", "city", "zip", "website",
)


@dataclass(frozen=True)
class PropertyDef:
    """A contact property: its type, the options of an enumeration, and whether the API may write it."""

    type: str = "string"
    options: tuple[str, ...] = ()
    read_only: bool = False


PROPERTIES: Final[dict[str, PropertyDef]] = {
    **{name: PropertyDef() for name in _STRING_PROPERTIES},
    "hs_lead_status": PropertyDef("enumeration", LEAD_STATUS_OPTIONS),
    "lifecyclestage": PropertyDef("enumeration", LIFECYCLE_OPTIONS),
    "hs_email_optout": PropertyDef("bool", ("true", "false")),
    "hs_object_id": PropertyDef("number", read_only=True),
    "createdate": PropertyDef("datetime", read_only=True),
    "lastmodifieddate": PropertyDef("datetime", read_only=True),
}
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_OPERATORS: Final[frozenset[str]] = frozenset(
    {"EQ", "NEQ", "GT", "GTE", "LT", "LTE", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
)
_STATUS_MAP: Final[dict[str, str]] = {
    "Open - Not Contacted": "NEW",
    "Working - Contacted": "IN_PROGRESS",
    "Nurture": "BAD_TIMING",
    "Closed - Not Converted": "UNQUALIFIED",
    "Closed - Converted": "OPEN_DEAL",
}


@dataclass
class HubspotLimits:
    """The caps the sandbox enforces; the defaults are HubSpot's published figures (Pro/Enterprise)."""

    search_per_second: int = 4
    calls_per_ten_seconds: int = 190
    max_results_per_query: int = 10_000
    max_page_size: int = 200
    max_batch_inputs: int = 100


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot writes datetimes: `2026-10-15T12:00:00.123Z`."""
    # Integer arithmetic: a float round trip can turn .123 into .122999 and lose a millisecond.
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_stamp(value: Any) -> int | None:
    """A filter value for a datetime property: epoch ms (as HubSpot's docs use) or an ISO string."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}
    return JSONResponse(body, status_code=status)


def _property_errors(properties: Any) -> list[dict[str, Any]]:
    """HubSpot's per-property validation errors for a write (empty when every value is acceptable)."""
    if not isinstance(properties, dict):
        return [{"isValid": False, "message": "properties must be an object", "error": "INVALID_INPUT", "name": ""}]
    errors: list[dict[str, Any]] = []
    for name, value in properties.items():
        spec = PROPERTIES.get(name)
        if spec is None:
            message, code = f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"
        elif spec.read_only:
            message, code = f'"{name}" is a read only property; its value cannot be set.', "READ_ONLY_VALUE"
        elif value is None or value == "":
            continue  # clearing a property is allowed
        elif spec.options and str(value) not in spec.options:
            allowed = ", ".join(spec.options)
            message, code = f"{value} was not one of the allowed options: [{allowed}]", "INVALID_OPTION"
        else:
            continue
        errors.append({"isValid": False, "message": message, "error": code, "name": name})
    return errors


def _validation_message(errors: list[dict[str, Any]]) -> str:
    return f"Property values were not valid: {json.dumps(errors)}"


class Portal:
    """In-memory contacts of one HubSpot portal (optionally persisted to a JSON file), its token and its limits."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        limits: HubspotLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        state_file: Path | None = None,
    ) -> None:
        self.token = token
        self.limits = limits or HubspotLimits()
        self.clock = self.default_clock = clock
        """Rate-limit clock (seconds); share a fake one with the connector to test its limiter without sleeping."""
        self.now_ms = now_ms
        self.state_file = state_file
        self.stats: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._contacts: dict[int, dict[str, Any]] = {}
        self._next_id = 101
        self._search_times: deque[float] = deque()
        self._call_times: deque[float] = deque()
        if state_file is not None and state_file.is_file():
            saved = json.loads(state_file.read_text(encoding="utf-8"))
            self._contacts = {int(c["id"]): c for c in saved["contacts"]}
            self._next_id = int(saved["next_id"])

    def __repr__(self) -> str:  # the token stays out of reprs, even a sandbox one
        return f"Portal(contacts={len(self._contacts)}, state_file={self.state_file})"

    # -- storage -----------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the contacts to `state_file` (atomically), when there is one."""
        if self.state_file is None:
            return
        data = {"next_id": self._next_id, "contacts": list(self._contacts.values())}
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.state_file)

    def add(self, properties: dict[str, Any], *, created_ms: int, modified_ms: int, save: bool = True) -> str:
        """Store a contact with the given stamps; returns its id."""
        with self._lock:
            cid = self._next_id
            self._next_id += 1
            self._contacts[cid] = {"id": cid, "properties": dict(properties), "cd": created_ms, "lm": modified_ms}
            if save:
                self.save()
            return str(cid)

    def put_raw(self, properties: dict[str, Any], *, modified_ms: int, created_ms: int | None = None) -> str:
        """Store a contact whose returned properties are exactly `properties` (no stamps added): bad payloads."""
        with self._lock:
            cid = self.add({}, created_ms=created_ms or modified_ms, modified_ms=modified_ms, save=False)
            self._contacts[int(cid)]["raw"] = dict(properties)
            self.save()
            return cid

    def ids(self) -> list[str]:
        with self._lock:
            return [str(c) for c in self._contacts]

    def contact(self, contact_id: str, properties: list[str] | None = None) -> dict[str, Any] | None:
        """The API shape of one contact, or None."""
        with self._lock:
            record = self._contacts.get(int(contact_id)) if str(contact_id).isdigit() else None
            return None if record is None else self._shape(record, properties)

    def modified_ms(self, contact_id: str) -> int:
        with self._lock:
            return int(self._contacts[int(contact_id)]["lm"])

    def _shape(self, record: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
        if "raw" in record:
            props = dict(record["raw"])
        else:
            stored = record["properties"]
            wanted = properties if properties is not None else list(_STRING_PROPERTIES)
            props = {name: stored.get(name) for name in wanted if name in PROPERTIES}
            props.update(createdate=iso_ms(record["cd"]), lastmodifieddate=iso_ms(record["lm"]))
            props["hs_object_id"] = str(record["id"])
        return {
            "id": str(record["id"]),
            "properties": props,
            "createdAt": iso_ms(record["cd"]),
            "updatedAt": iso_ms(record["lm"]),
            "archived": False,
        }

    def update(self, contact_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        """Apply validated properties and bump lastmodifieddate, as HubSpot does."""
        with self._lock:
            record = self._contacts[int(contact_id)]
            record["properties"].update(properties)
            record.pop("raw", None)
            record["lm"] = max(self.now_ms(), record["lm"] + 1)
            self.save()
            return self._shape(record, list(properties) or None)

    # -- rate limits -------------------------------------------------------------------------------------------
    def admit(self, search: bool) -> str | None:
        """Record a call, or return the policy it would break ("SECONDLY" / "TEN_SECONDLY_ROLLING")."""
        with self._lock:
            now = self.clock()
            # Sliding windows: a call is in the window while it happened less than `period` seconds ago.
            for times, period in ((self._call_times, 10.0), (self._search_times, 1.0)):
                while times and times[0] <= now - period:
                    times.popleft()
            if len(self._call_times) >= self.limits.calls_per_ten_seconds:
                return "TEN_SECONDLY_ROLLING"
            if search and len(self._search_times) >= self.limits.search_per_second:
                return "SECONDLY"
            self._call_times.append(now)
            if search:
                self._search_times.append(now)
            return None

    def reset_rate_limits(self) -> None:
        with self._lock:
            self._call_times.clear()
            self._search_times.clear()

    # -- search ------------------------------------------------------------------------------------------------
    def _value(self, record: dict[str, Any], name: str) -> Any:
        if name == "lastmodifieddate":
            return record["lm"]
        if name == "createdate":
            return record["cd"]
        if name == "hs_object_id":
            return record["id"]
        source = record.get("raw", record["properties"])
        return source.get(name)

    def search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of a CRM search request."""
        limits = self.limits
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= limits.max_page_size:
            message = f"limit must be between 1 and {limits.max_page_size}"
            return 400, {"message": message, "category": "VALIDATION_ERROR"}
        after_text = str(body.get("after") or "0")
        if not after_text.isdigit():
            return 400, {"message": f"after must be a non-negative integer, got {after_text!r}",
                         "category": "VALIDATION_ERROR"}
        after = int(after_text)
        if after >= limits.max_results_per_query:
            return 400, {
                "message": f"Paging beyond {limits.max_results_per_query} results is not supported; "
                f"narrow the query (after={after}).",
                "category": "VALIDATION_ERROR",
            }
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list) or len(groups) > 5:
            return 400, {"message": "at most 5 filterGroups are allowed", "category": "VALIDATION_ERROR"}
        predicates: list[list[Callable[[dict[str, Any]], bool]]] = []
        for group in groups:
            filters = group.get("filters", []) if isinstance(group, dict) else None
            if not isinstance(filters, list) or len(filters) > 6:
                return 400, {"message": "each filterGroup holds at most 6 filters", "category": "VALIDATION_ERROR"}
            compiled = []
            for spec in filters:
                made = self._predicate(spec)
                if isinstance(made, str):
                    return 400, {"message": made, "category": "VALIDATION_ERROR"}
                compiled.append(made)
            predicates.append(compiled)
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            return 400, {"message": "only one sort is supported", "category": "VALIDATION_ERROR"}
        sort_name, descending = "hs_object_id", False
        if sorts:
            sort = sorts[0] if isinstance(sorts[0], dict) else {"propertyName": str(sorts[0])}
            sort_name = str(sort.get("propertyName", "hs_object_id"))
            descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
            if sort_name not in PROPERTIES:
                return 400, {"message": f'Property "{sort_name}" does not exist', "category": "VALIDATION_ERROR"}
        requested = body.get("properties")
        wanted = [p for p in requested if isinstance(p, str)] if isinstance(requested, list) else None
        with self._lock:
            matched = [
                r for r in self._contacts.values()
                if not predicates or any(all(p(r) for p in group) for group in predicates)
            ]

            def key(record: dict[str, Any]) -> tuple[Any, ...]:
                value = self._value(record, sort_name)
                return (value is None, value if isinstance(value, int) else str(value or ""))

            matched.sort(key=lambda r: r["id"])  # ties come back in id order (stable sorts)
            matched.sort(key=key, reverse=descending)
            end = min(after + limit, limits.max_results_per_query)
            page = [self._shape(r, wanted) for r in matched[after:end]]
        out: dict[str, Any] = {"total": len(matched), "results": page}
        if after + len(page) < len(matched):
            out["paging"] = {"next": {"after": str(after + len(page))}}
        return 200, out

    def _predicate(self, spec: Any) -> Callable[[dict[str, Any]], bool] | str:
        if not isinstance(spec, dict):
            return "a filter must be an object"
        name, operator = spec.get("propertyName"), str(spec.get("operator", "")).upper()
        if name not in PROPERTIES:
            return f'Property "{name}" does not exist'
        if operator not in _OPERATORS:
            return f"unknown operator {operator!r}"
        kind = PROPERTIES[name].type

        def convert(raw: Any) -> Any:
            if kind == "datetime":
                return _parse_stamp(raw)
            if kind == "number":
                return int(raw) if str(raw).lstrip("-").isdigit() else None
            return str(raw).lower()

        if operator in {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}:
            want = operator == "HAS_PROPERTY"
            return lambda r: (self._value(r, name) not in (None, "")) == want
        if operator in {"IN", "NOT_IN"}:
            values = {convert(v) for v in spec.get("values") or []}
            want = operator == "IN"
            return lambda r: (convert(self._value(r, name)) in values) == want
        target = convert(spec.get("value"))
        if target is None:
            return f"invalid value {spec.get('value')!r} for {name}"
        compare: dict[str, Callable[[Any, Any], bool]] = {
            "EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "GT": lambda a, b: a > b,
            "GTE": lambda a, b: a >= b, "LT": lambda a, b: a < b, "LTE": lambda a, b: a <= b,
        }
        op = compare[operator]

        def predicate(record: dict[str, Any]) -> bool:
            value = self._value(record, name)
            if value is None:
                return operator == "NEQ"
            value = value if kind in {"datetime", "number"} else str(value).lower()
            try:
                return bool(op(value, target))
            except TypeError:
                return False

        return predicate


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
        portal.add(props, created_ms=int(created[i]), modified_ms=int(modified[i]), save=False)
    portal.save()  # once, not once per contact


def create_app(portal: Portal, faults: FaultPlan | None = None) -> FastAPI:
    """The HubSpot API over `portal`, with fault injection from `faults` (and `POST /__sandbox/faults`)."""
    plan = faults or FaultPlan()
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
        response: Response | None = None
        delay = 0.0
        if fault is not None:
            detail = fault.detail or {}
            portal.stats[f"fault_{fault.kind}"] += 1
            if fault.kind == "slow":
                delay = float(detail.get("seconds", 1.0))
            elif fault.kind == "429":
                policy = str(detail.get("policy", "SECONDLY"))
                message = "You have reached your daily limit." if policy == "DAILY" else (
                    "You have reached your secondly limit.")
                response = JSONResponse(
                    {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                     "correlationId": str(uuid.uuid4()), "policyName": policy},
                    status_code=429,
                )
                if "retry_after" in detail:
                    response.headers["Retry-After"] = str(detail["retry_after"])
            elif fault.kind == "401":
                response = unauthorized()
            elif fault.kind == "malformed":
                response = Response("<html><body>upstream hiccup</body></html>", 200, media_type="text/html")
            elif fault.kind == "5xx" or (fault.kind.isdigit() and fault.kind.startswith("5")):
                status = int(detail.get("status", 500 if fault.kind == "5xx" else fault.kind))
                response = _error(status, "internal error", "INTERNAL_ERROR")
            else:
                response = _error(500, f"sandbox: unknown fault kind {fault.kind!r}", "INTERNAL_ERROR")
        if response is None:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), portal.token.encode()):
                response = unauthorized()
        if response is None:
            search = request.method == "POST" and path.endswith("/search")
            broken = portal.admit(search)
            if broken is not None:
                portal.stats["rate_limited"] += 1
                response = JSONResponse(
                    {"status": "error",
                     "message": "You have reached your secondly limit." if broken == "SECONDLY"
                     else "You have reached your ten_secondly_rolling limit.",
                     "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": broken},
                    status_code=429,
                )
            elif search:
                portal.stats["search"] += 1
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
            problems = _property_errors(item.get("properties"))
            if problems:
                errors.append({
                    "status": "error", "category": "VALIDATION_ERROR", "message": _validation_message(problems),
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

    @app.post("/crm/v3/objects/contacts")
    async def create(request: Request) -> JSONResponse:
        body = await json_body(request)
        properties = body.get("properties") if isinstance(body, dict) else None
        problems = _property_errors(properties)
        if problems:
            return _error(400, _validation_message(problems), "VALIDATION_ERROR")
        assert isinstance(properties, dict)
        email = str(properties.get("email") or "").lower()
        if email:
            for cid in portal.ids():
                existing = portal.contact(cid, ["email"])
                if existing and str(existing["properties"].get("email") or "").lower() == email:
                    return _error(409, f"Contact already exists. Existing ID: {cid}", "CONFLICT")
        now = portal.now_ms()
        cid = portal.add(properties, created_ms=now, modified_ms=now)
        return JSONResponse(portal.contact(cid, list(properties)), status_code=201)

    @app.get("/crm/v3/objects/contacts/{contact_id}")
    async def get_contact(contact_id: str, request: Request) -> JSONResponse:
        wanted = request.query_params.get("properties")
        found = portal.contact(contact_id, wanted.split(",") if wanted else None)
        if found is None:
            return _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        return JSONResponse(found)

    @app.patch("/crm/v3/objects/contacts/{contact_id}")
    async def patch_contact(contact_id: str, request: Request) -> JSONResponse:
        body = await json_body(request)
        properties = body.get("properties") if isinstance(body, dict) else None
        if portal.contact(contact_id) is None:
            return _error(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        problems = _property_errors(properties)
        if problems:
            return _error(400, _validation_message(problems), "VALIDATION_ERROR")
        assert isinstance(properties, dict)
        return JSONResponse(portal.update(contact_id, properties))

    @app.post("/__sandbox/faults")
    async def add_fault(request: Request) -> JSONResponse:
        body = await json_body(request)
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
        return JSONResponse(dict(portal.stats))

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
    **seed_opts: Any,
) -> Iterator[RunningHubspot]:
    """Serve a seeded portal on 127.0.0.1 (http) for the duration of the `with` block.

    `seed_opts` go to `seed_portal` (n, seed, burst, same_stamp, ...); a `state_file` that already holds contacts
    is served as it is, without seeding. `clock` drives the rate limits, `now_ms` the stamps writes set.
    """
    portal = Portal(token, limits=limits, clock=clock, now_ms=now_ms, state_file=state_file)
    if not portal.ids():
        seed_portal(portal, **seed_opts)
    plan = FaultPlan()
    with BackgroundServer(create_app(portal, plan)) as server:
        yield RunningHubspot(server.url, token, portal, plan, server)
