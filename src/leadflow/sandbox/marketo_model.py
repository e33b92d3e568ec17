"""The Marketo sandbox's data model: the instance's state and limits, its lead fields and activity types.

`MarketoInstance` holds the leads, activities, tokens, rate/quota/concurrency counters and what clients did;
`iso`/`parse_iso` are Marketo's datetime format; `MarketoApiError` is an error reported inside an HTTP 200 body.
Shared by the server (`leadflow.sandbox.marketo`, which re-exports every name here) and the seeding
(`leadflow.sandbox.marketo_seed`), so neither imports the other's module to get them.
"""

from __future__ import annotations

import bisect
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadflow.sandbox.faults import MARKETO_FAULTS, FaultPlan

__all__ = [
    "ACTIVITY_TYPES", "ALL_FIELDS", "DEFAULT_LEAD_FIELDS", "ERROR_MESSAGES", "LEAD_FIELDS", "MAX_BATCH",
    "PRIMARY_ATTRIBUTES", "SYSTEM_FIELDS", "MarketoApiError", "MarketoInstance", "iso", "parse_iso",
]

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
    webhook: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    """Called with each lead created or changed through the REST API when a smart campaign's webhook pushes
    somewhere (`leadflow.sandbox.push.attach_marketo`)."""
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

    def lead_changed(self, lead: dict[str, Any]) -> None:
        """A lead was created or changed through the API: the webhook fires, when one is configured."""
        if self.webhook is not None:
            self.webhook(dict(lead))

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
