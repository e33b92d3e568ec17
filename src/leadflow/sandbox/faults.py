"""Fault injection for the sandboxes: the next N matching requests fail, or every request fails with a probability.

Counted faults (`plan.inject(route, kind, times)`) script one failure exactly where a test wants it. A fault rate
(`plan.set_rate(0.1, kinds, seed=7)`) makes every non-admin request matching a route fail with that probability,
the kind picked from `kinds` by a seeded `random.Random`, so a whole run meets failures the way it would meet them
from a real service, reproducibly. Counted faults still work beside a rate and are served first. `plan.served`
counts the faults served per kind.

Each sandbox declares the kinds it knows in a `FaultKinds`: which may be served at a rate (transient failures a
client is expected to retry, each on the requests where the real service can send it) and which may not (a failure
that ends a run or outlives it, with the reason). The catalogs of the three CRM/MAP sandboxes, and the answers that
are the same across their modules, live here so the sandbox modules stay small.
"""

from __future__ import annotations

import math
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

from fastapi.responses import JSONResponse, Response

from leadflow.sandbox.hubspot_limits import TEN_SECONDLY_ROLLING, HubspotLimits, rate_limit_body

ADMIN_PREFIX: Final = "/__sandbox"
ANY_REQUEST: Final = ""
"""An applicability pattern that matches every request."""


@dataclass
class Fault:
    """Fail `times` requests whose `METHOD path` matches `route` (a regex) with `kind`, after letting `skip` through."""

    route: str
    kind: str
    times: int = 1
    detail: dict[str, Any] | None = None
    skip: int = 0


@dataclass(frozen=True)
class FaultKinds:
    """The fault kinds one sandbox knows.

    `rate`: kind → regex over "METHOD /path" of the requests the kind can hit when served at a rate (the real
    service sends it there); `default_rate`: the kinds a rate uses when none are named; `refused`: kinds known to
    the sandbox (injectable as counted faults) that a rate refuses, with the reason.
    """

    system: str
    rate: Mapping[str, str]
    default_rate: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)

    @property
    def known(self) -> tuple[str, ...]:
        return (*self.rate, *self.refused)

    def check(self, kind: str) -> None:
        """ValueError unless `kind` may be served at a rate by this sandbox, naming the kind and the usable ones."""
        usable = ", ".join(self.rate)
        if kind in self.refused:
            raise ValueError(f"fault kind {kind!r} cannot be served at a rate by the {self.system} sandbox: "
                             f"{self.refused[kind]} (kinds usable at a rate: {usable})")
        if kind not in self.rate:
            raise ValueError(f"unknown fault kind {kind!r} for the {self.system} sandbox (known kinds: "
                             f"{', '.join(self.known)}; usable at a rate: {usable})")

    def applies(self, kind: str, target: str) -> bool:
        return re.search(self.rate.get(kind, ANY_REQUEST), target) is not None


@dataclass(frozen=True)
class FaultRate:
    """A fault rate in force: `rate` of the requests matching `route` fail with one of `kinds`."""

    rate: float
    kinds: tuple[str, ...]
    seed: int | None
    route: str

    def describe(self) -> dict[str, Any]:
        return {"rate": self.rate, "kinds": list(self.kinds), "seed": self.seed, "route": self.route}


class FaultPlan:
    """Thread-safe counted faults and an optional fault rate; a sandbox asks `take(method, path)` on every request."""

    def __init__(self, kinds: FaultKinds | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.kinds = kinds
        """The sandbox's catalog: rate kinds are checked against it (any kind is accepted without one)."""
        self._rate: FaultRate | None = None
        self._rng = random.Random()
        self.served: Counter[str] = Counter()
        """Faults served so far, per kind (counted and rate faults alike); `clear()` leaves it alone."""

    def bind(self, kinds: FaultKinds) -> FaultPlan:
        """Declare the sandbox's fault kinds (for a plan created before its sandbox, e.g. by an Org)."""
        self.kinds = kinds
        return self

    def inject(self, route: str, kind: str, times: int = 1, *, skip: int = 0, **detail: Any) -> None:
        re.compile(route)
        with self._lock:
            self._faults.append(Fault(route, kind, times, detail or None, skip))

    def set_rate(self, rate: float, kinds: Sequence[str] | None = None, *, seed: int | None = None,
                 route: str = ".*") -> FaultRate:
        """From now on every non-admin request matching `route` fails with probability `rate` (0 to 1), with a kind
        drawn from `kinds` (default: the sandbox's default rate kinds) by a `random.Random(seed)`."""
        number = isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate)
        if not number or not 0 <= rate <= 1:
            raise ValueError(f"fault rate must be a number from 0 to 1, got {rate!r}")
        if kinds is None:
            if self.kinds is None:
                raise ValueError("name the fault kinds to serve at a rate")
            kinds = self.kinds.default_rate
        if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not all(isinstance(k, str) for k in kinds):
            raise ValueError(f"fault kinds must be a list of names, got {kinds!r}")
        if not kinds:
            raise ValueError("a fault rate needs at least one fault kind")
        for kind in kinds:
            if self.kinds is not None:
                self.kinds.check(kind)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"fault seed must be an integer, got {seed!r}")
        try:
            re.compile(route)
        except (re.error, TypeError) as exc:
            raise ValueError(f"fault route {route!r} is not a regular expression: {exc}") from None
        setting = FaultRate(float(rate), tuple(dict.fromkeys(kinds)), seed, route)
        with self._lock:
            self._rate, self._rng = setting, random.Random(seed)
        return setting

    @property
    def rate(self) -> FaultRate | None:
        return self._rate

    def clear(self) -> None:
        """No pending faults and no fault rate."""
        with self._lock:
            self._faults.clear()
            self._rate = None

    def take(self, method: str, path: str) -> Fault | None:
        """The fault to serve for this request, if any: the first pending counted fault matching it (consuming one
        of its `times`), else, under a fault rate, one drawn at the rate from the kinds that apply to it."""
        target = f"{method.upper()} {path}"
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and re.search(fault.route, target):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    self.served[fault.kind] += 1
                    return fault
            setting = self._rate
            if setting is None or path.startswith(ADMIN_PREFIX) or not re.search(setting.route, target):
                return None
            if self._rng.random() >= setting.rate:
                return None
            usable = [k for k in setting.kinds if self.kinds is None or self.kinds.applies(k, target)]
            if not usable:
                return None
            kind = self._rng.choice(usable)
            # Lock contention hits whichever rows another transaction holds: a random one of the request's records.
            detail = {"count": 1, "seed": self._rng.getrandbits(32)} if kind == "lock_row" else None
            self.served[kind] += 1
            return Fault(setting.route, kind, 0, detail)

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def stats(self) -> dict[str, Any]:
        """For a sandbox's `GET /__sandbox/stats`: faults served per kind and the fault rate in force."""
        with self._lock:
            return {"faults_served": dict(self.served),
                    "fault_rate": None if self._rate is None else self._rate.describe()}


def rate_request(plan: FaultPlan, body: Any) -> JSONResponse | None:
    """`POST /__sandbox/faults` with `{"rate": 0.1, "kinds": [...], "seed": 7, "route": ...}`: the fault rate set
    (or a 400 naming what is wrong); None for any other body (a counted fault, which the sandbox handles)."""
    if not isinstance(body, dict) or "rate" not in body:
        return None
    try:
        setting = plan.set_rate(body["rate"], body.get("kinds"), seed=body.get("seed"), route=body.get("route", ".*"))
    except ValueError as exc:
        return JSONResponse({"message": str(exc)}, status_code=400)
    return JSONResponse({"pending": len(plan.pending()), "fault_rate": setting.describe()})


# ------------------------------------------------------------------------------------------------- Salesforce

_SF_DATA: Final = r"^\S+ /services/data/"

SALESFORCE_FAULTS: Final = FaultKinds(
    system="salesforce",
    rate={
        # REST API Developer Guide, "Status Codes and Error Responses": 503 "the server is unavailable to handle the
        # request ... down for maintenance or overloaded" (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm);
        # Connect REST API's per-user hourly limit also answers 503 (Salesforce App Limits Cheatsheet, "Connect
        # REST API Limits"). Any request, the OAuth token endpoint included.
        "503": ANY_REQUEST,
        # Not in the REST API's status code table (see `salesforce_refusal`): served on API calls only.
        "429": _SF_DATA,
        # UNABLE_TO_LOCK_ROW on a record of an sObject Collections update: another transaction holds its row and
        # "other clients have to wait until the transaction completes" (Apex Developer Guide, "Locking Records":
        # https://developer.salesforce.com/docs/platform/apex-dev/references/apex-dev/langcon-apex-locking-records.html);
        # the error is per record in the Collections result, the other records are written.
        "lock_row": r"^PATCH /services/data/v[\d.]+/composite/sobjects$",
        "slow": ANY_REQUEST,
    },
    default_rate=("503", "429", "lock_row"),
    refused={
        "401": "it expires every session of the org; sessions die of their timeout (Session Settings, 15 minutes "
               "to 24 hours), not of a dice roll per call, so inject it as a counted fault",
        "403": "REQUEST_LIMIT_EXCEEDED here is the org's 24-hour API allocation spent: a client must stop, not "
               "retry (API Request Limits and Allocations)",
        "malformed": "a broken payload is a data defect that a retry does not fix",
        "invalid_locator": "a query locator expires after sitting idle (15 minutes), not per call",
        "job_failed": "a failed Bulk API job stays failed",
    },
)


def salesforce_refusal(fault: Fault | None) -> JSONResponse | None:
    """A "503" or "429" fault as Salesforce answers it, before the request is authenticated or counted."""
    if fault is None or fault.kind not in ("503", "429"):
        return None
    detail = fault.detail or {}
    if fault.kind == "503":
        # The REST API error body: a JSON array of {message, errorCode} ("Status Codes and Error Responses").
        return JSONResponse([{"errorCode": "SERVER_UNAVAILABLE", "message": "Service Unavailable"}], status_code=503)
    # 429 is not among the REST API's documented status codes: the platform's request limits answer 403
    # REQUEST_LIMIT_EXCEEDED (daily allocation, concurrent long-running requests: "API Request Limits and
    # Allocations", https://developer.salesforce.com/docs/atlas.en-us.salesforce_app_limits_cheatsheet.meta/salesforce_app_limits_cheatsheet/salesforce_app_limits_platform_api.htm)
    # and 503 (above). Modelled for clients that meet one anyway (an edge or proxy throttling): the platform's
    # error envelope with its request-limit code. No Retry-After by default, since no Salesforce Platform doc
    # promises one; detail retry_after=N adds it, as Marketing Cloud's REST API sends it with its 429 ("Rate
    # Limiting Errors": Retry-After: 5, https://developer.salesforce.com/docs/atlas.en-us.noversion.mc-apis.meta/mc-apis/rate-limiting-errors.htm).
    headers = {"Retry-After": str(detail["retry_after"])} if "retry_after" in detail else None
    return JSONResponse([{"message": "Too many requests. Retry later.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                        status_code=429, headers=headers)


def locked_ids(fault: Fault | None, ids: list[str | None]) -> set[str | None]:
    """The records a "lock_row" fault locks: detail ids=[...], or count=N of them (the first N; a random N when the
    fault came from a fault rate, which sets detail seed)."""
    if fault is None or fault.kind != "lock_row":
        return set()
    detail = fault.detail or {}
    if "ids" in detail:
        return set(detail["ids"])
    count = min(int(detail.get("count", 1)), len(ids))
    if "seed" in detail:
        return set(random.Random(detail["seed"]).sample(ids, count))
    return set(ids[:count])


# ------------------------------------------------------------------------------------------------- HubSpot

HUBSPOT_FAULTS: Final = FaultKinds(
    system="hubspot",
    # HubSpot developer docs, "Error handling" (https://developers.hubspot.com/docs/api/error-handling): 429 when the
    # account or app is over its rate limits; "502/504 timeouts ... pause your requests for a few seconds, then
    # retry"; "503 service temporarily unavailable ... pause your requests for a few seconds, then retry".
    rate={"429": ANY_REQUEST, "502": ANY_REQUEST, "503": ANY_REQUEST, "504": ANY_REQUEST, "slow": ANY_REQUEST},
    default_rate=("429", "502", "503", "504"),
    refused={
        "401": "\"authentication provided is invalid\" (Error handling): a revoked or wrong token stays refused",
        "500": "not among the errors HubSpot's error guide tells a client to retry; inject it as a counted fault",
        "5xx": "not among the errors HubSpot's error guide tells a client to retry; inject it as a counted fault",
        "malformed": "a non-JSON page is not a documented HubSpot answer; inject it as a counted fault",
    },
)
_HUBSPOT_5XX: Final = {502: "Bad Gateway", 503: "Service temporarily unavailable", 504: "Gateway Timeout"}


def hubspot_fault_response(kind: str, detail: Mapping[str, Any], *, search: bool,
                           limits: HubspotLimits) -> JSONResponse | None:
    """A "429" or 5xx fault as HubSpot answers it (None for other kinds)."""
    if kind == "429":
        # The 429 body HubSpot documents ("API usage guidelines and limits", rate_limit_body). A search call meets
        # the per-second search limit (SECONDLY), any other call the account's ten-second one.
        policy = str(detail.get("policy") or ("SECONDLY" if search else TEN_SECONDLY_ROLLING))
        response = JSONResponse(rate_limit_body(policy), status_code=429)
        if policy == TEN_SECONDLY_ROLLING:
            # X-HubSpot-RateLimit-Max / -Remaining / -Interval-Milliseconds describe that ten-second window ("API
            # usage guidelines and limits", https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details;
            # changelog "Rate limit headers will now appear for OAuth authenticated calls"). The Daily headers are
            # left out: OAuth calls never carry them (same changelog) and the sandbox models no daily cap.
            response.headers.update({"X-HubSpot-RateLimit-Max": str(limits.calls_per_ten_seconds),
                                     "X-HubSpot-RateLimit-Remaining": "0",
                                     "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
        retry_after = detail.get("retry_after")
        if retry_after is None and limits.retry_after:
            retry_after = 10 if policy == TEN_SECONDLY_ROLLING else 1
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response
    if kind == "5xx" or (kind.isdigit() and kind.startswith("5")):
        status = int(detail.get("status", 500 if kind == "5xx" else kind))
        # HubSpot's error envelope ("Error handling": status, message, correlationId, category).
        body = {"status": "error", "message": _HUBSPOT_5XX.get(status, "internal error"),
                "correlationId": str(uuid.uuid4()), "category": "INTERNAL_ERROR"}
        return JSONResponse(body, status_code=status)
    return None


# ------------------------------------------------------------------------------------------------- Marketo

_MARKETO_REST: Final = r"^\S+ /rest/"

MARKETO_FAULTS: Final = FaultKinds(
    system="marketo",
    # Marketo REST docs, "Error Codes" (https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes):
    # response-level errors come in HTTP 200 with success false; 606 "Max rate limit exceeded", 615 "Concurrent
    # access limit reached", 604 "Request time-out" (the request ran too long, e.g. database contention) all mean
    # the call was not executed and may be retried. They are answers of the REST endpoints (/rest/...), not of the
    # OAuth identity endpoint. 502 "Bad Gateway ... should be retried with exponential backoff" (same table); 503
    # comes from the edge when Marketo is down or in maintenance (the REST layer itself only returns 413/414).
    rate={"606": _MARKETO_REST, "615": _MARKETO_REST, "604": _MARKETO_REST, "502": ANY_REQUEST,
          "503": ANY_REQUEST},
    default_rate=("606", "615", "604", "503"),
    refused={
        "601": "an invalid token stays invalid; token expiry (602, then 601) follows expires_in, not a dice roll",
        "602": "tokens expire after expires_in, not per call; inject it as a counted fault",
        "607": "the daily quota, once reached, holds until the next day: a client must stop",
    },
)


def marketo_unavailable(status: int) -> Response:
    """An HTTP 5xx from in front of Marketo: no REST envelope (Error Codes: "Under normal operating circumstances
    Marketo should only return two HTTP status code errors, 413 ... and 414"), a short HTML page."""
    page = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"
    return Response(page, status_code=status, media_type="text/html")
