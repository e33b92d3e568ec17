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
"""

from __future__ import annotations

import base64
import bisect
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from leadflow.sandbox.faults import MARKETO_FAULTS, FaultPlan, marketo_unavailable, rate_request
from leadflow.sandbox.marketo_describe import lead_describe, usage
from leadflow.sandbox.server import BackgroundServer

ACTIVITY_TYPES: dict[int, str] = {
    1: "Visit Webpage",
    2: "Fill Out Form",
    10: "Open Email",
    11: "Click Email",
    12: "New Lead",
    13: "Change Data Value",
    100001: "Request Demo",
    100002: "Attend Webinar",
}
PRIMARY_ATTRIBUTES: dict[int, str] = {
    1: "Webpage ID", 2: "Webform ID", 10: "Mailing ID", 11: "Mailing ID", 12: "Lead ID", 13: "Attribute Name",
    100001: "Product", 100002: "Webinar",
}
# Synth column -> Marketo REST field name.
LEAD_FIELDS: dict[str, str] = {
    "email": "email", "first_name": "firstName", "last_name": "lastName", "company": "company", "title": "title",
    "phone": "phone", "country": "country", "state": "state", "city": "city", "postal_code": "postalCode",
    "website": "website", "lead_source": "leadSource",
}
SYSTEM_FIELDS: tuple[str, ...] = ("id", "unsubscribed", "createdAt", "updatedAt")
ALL_FIELDS: tuple[str, ...] = (*SYSTEM_FIELDS[:1], *LEAD_FIELDS.values(), *SYSTEM_FIELDS[1:])
DEFAULT_LEAD_FIELDS: tuple[str, ...] = ("id", "email", "firstName", "lastName", "updatedAt", "createdAt")
MAX_BATCH = 300
ERROR_MESSAGES: dict[str, str] = {
    "600": "Access token missing",
    "601": "Access token invalid",
    "602": "Access token expired",
    "604": "Request time-out",  # REST "Error Codes", 604: the request ran too long (e.g. database contention)
    "606": "Max rate limit '{limit}' exceeded with in '{window}' secs",
    "607": "Daily quota reached",
    "615": "Concurrent access limit reached",
    "1003": "Invalid value",
}


def iso(moment: datetime) -> str:
    """Marketo's datetime format: ISO-8601 UTC with a `Z`, second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _encode_token(after: int) -> str:
    # Opaque to clients, as Marketo's are; the position is the id of the last activity already returned.
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    padded = token + "=" * (-len(token) % 4)
    return int(json.loads(base64.urlsafe_b64decode(padded.encode()))["after"])


class MarketoApiError(Exception):
    """An error the sandbox reports inside an HTTP 200 body."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code, self.message = code, message or ERROR_MESSAGES.get(code, "Error")
        super().__init__(f"{self.code}: {self.message}")


@dataclass
class MarketoInstance:
    """The sandbox's state: leads, activities, tokens, limits and what clients did (for assertions)."""

    client_id: str = "leadflow-sandbox"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    activities: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = MAX_BATCH
    rate_limit: int = 100
    rate_window: float = 20.0
    daily_quota: int = 50_000
    max_concurrent: int = 10
    token_ttl: int = 3600
    clock: Callable[[], float] = time.time
    persist_to: Path | None = None
    faults: FaultPlan = field(default_factory=lambda: FaultPlan(MARKETO_FAULTS))
    # Observations.
    calls: list[str] = field(default_factory=list)
    lookup_sizes: list[int] = field(default_factory=list)
    activity_pages: list[tuple[str, int, int]] = field(default_factory=list)
    """(path, activities scanned, activities returned) of every activities.json / leadchanges.json page served."""
    query_token_refusals: int = 0
    """Calls that carried `access_token` in the query string and no Authorization header (refused with 600)."""
    calls_today: int = 0
    _tokens: dict[str, float] = field(default_factory=dict, repr=False)
    _window: deque[float] = field(default_factory=deque, repr=False)
    _in_flight: int = field(default=0, repr=False)
    _day: int = field(default=-1, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _defaults: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._defaults = {k: getattr(self, k) for k in self._tunables()}

    @staticmethod
    def _tunables() -> tuple[str, ...]:
        return ("page_size", "rate_limit", "rate_window", "daily_quota", "max_concurrent", "token_ttl", "clock")

    def __repr__(self) -> str:  # the client secret stays out of reprs
        return f"MarketoInstance(leads={len(self.leads)}, activities={len(self.activities)})"

    # -- test controls -------------------------------------------------------------------------------------------
    def configure(self, **settings: Any) -> None:
        """Change limits: `page_size`, `rate_limit`, `rate_window`, `daily_quota`, `max_concurrent`, `token_ttl`,
        `clock`."""
        with self._lock:
            for key, value in settings.items():
                if key not in self._tunables():
                    raise TypeError(f"unknown sandbox setting {key!r}")
                setattr(self, key, value)

    def reset(self) -> None:
        """Back to default limits, no faults, no observations, no tokens (lead data is kept)."""
        with self._lock:
            for key, value in self._defaults.items():
                setattr(self, key, value)
            self.faults.clear()
            self.faults.served.clear()
            self.calls.clear()
            self.lookup_sizes.clear()
            self.activity_pages.clear()
            self.query_token_refusals = 0
            self._tokens.clear()
            self._window.clear()
            self.calls_today = 0

    def expire_tokens(self) -> None:
        """Every issued token is now expired (602 on next use)."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = self.clock() - 1

    def revoke_tokens(self) -> None:
        """Forget every issued token (601 on next use)."""
        with self._lock:
            self._tokens.clear()

    # -- gates ---------------------------------------------------------------------------------------------------
    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        if not (secrets.compare_digest(client_id, self.client_id)
                and secrets.compare_digest(client_secret, self.client_secret)):
            return None
        token = f"{uuid.uuid4()}:ab"
        with self._lock:
            self._tokens[token] = self.clock() + self.token_ttl
        return {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl - 1,
                "scope": "leadflow@sandbox.local"}

    def check_token(self, token: str | None) -> None:
        if not token:
            raise MarketoApiError("600")
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            raise MarketoApiError("601")
        if expires <= self.clock():
            raise MarketoApiError("602")

    def admit(self) -> None:
        """Count one API call against the daily quota and rate window, or refuse it (607/606/615)."""
        with self._lock:
            now = self.clock()
            day = int(now // 86_400)
            if day != self._day:
                self._day, self.calls_today = day, 0
            if self.calls_today >= self.daily_quota:
                raise MarketoApiError("607")
            while self._window and self._window[0] <= now - self.rate_window:
                self._window.popleft()
            if len(self._window) >= self.rate_limit:
                raise MarketoApiError(
                    "606", ERROR_MESSAGES["606"].format(limit=self.rate_limit, window=int(self.rate_window))
                )
            if self._in_flight >= self.max_concurrent:
                raise MarketoApiError("615")
            self._window.append(now)
            self.calls_today += 1
            self._in_flight += 1

    def release(self) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    # -- data ----------------------------------------------------------------------------------------------------
    def add_activity(self, lead_id: int, type_id: int, when: datetime, primary: str,
                     attributes: dict[str, Any] | None = None, fields: list[dict[str, Any]] | None = None) -> None:
        """Append an activity (ids and dates only grow, as the paging tokens assume)."""
        with self._lock:
            last = self.activities[-1]["activityDate"] if self.activities else None
            stamp = iso(when)
            if last is not None and stamp < last:
                stamp = last
            new_id = len(self.activities) + 1
            record: dict[str, Any] = {
                "id": new_id,
                "marketoGUID": str(uuid.UUID(int=new_id)),
                "leadId": lead_id,
                "activityDate": stamp,
                "activityTypeId": type_id,
                "primaryAttributeValue": primary,
                "attributes": [{"name": k, "value": v} for k, v in (attributes or {}).items()],
            }
            if fields is not None:
                record["fields"] = fields
            self.activities.append(record)

    def position_since(self, since: datetime) -> int:
        """Id of the last activity strictly before `since` (0 = from the start)."""
        stamps = [a["activityDate"] for a in self.activities]
        return bisect.bisect_left(stamps, iso(since))

    def page(self, after: int, accept: Callable[[dict[str, Any]], bool], scan: int) -> tuple[list[dict], int, bool]:
        """The accepted activities among the next `scan` activities of ALL types after position `after`:
        (records, new position, more to come). Sparse types give short or empty pages that still move on.

        Marketo KB "Get Lead Activities REST API Is Not Returning Any Activities"
        (https://experienceleague.adobe.com/en/docs/experience-cloud-kcs/kbarticles/ka-29362): "Each Get Lead
        Activity call will go through 300 activities of ALL types from the timestamp placed on the nextPageToken";
        a page without activities of the requested types comes back empty with `moreResult: true`. Marketo REST
        docs, "Activities" (https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/activities):
        "Continue to call the endpoint until the moreResult attribute returns false".
        """
        with self._lock:
            end = min(after + max(1, scan), len(self.activities))
            return [r for r in self.activities[after:end] if accept(r)], end, end < len(self.activities)

    def save(self, path: Path | None = None) -> None:
        """Write leads and activities as JSON (to `path` or `persist_to`)."""
        target = path or self.persist_to
        if target is None:
            return
        with self._lock:
            payload = {"leads": list(self.leads.values()), "activities": self.activities}
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        tmp.replace(target)

    @classmethod
    def load(cls, path: Path, **options: Any) -> MarketoInstance:
        """An instance from a JSON file written by `save`; later writes persist back to it."""
        data = json.loads(path.read_text(encoding="utf-8"))
        instance = cls(persist_to=path, **options)
        instance.leads = {int(lead["id"]): lead for lead in data["leads"]}
        instance.activities = list(data["activities"])
        return instance


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
    from leadflow.sandbox.marketo_seed import seed_instance  # it builds on this module

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
    from leadflow.sandbox.marketo_seed import seed_instance
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


def __getattr__(name: str) -> Any:
    """`seed_instance` moved to `leadflow.sandbox.marketo_seed`; it stays importable from here."""
    if name == "seed_instance":
        from leadflow.sandbox.marketo_seed import seed_instance

        return seed_instance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
