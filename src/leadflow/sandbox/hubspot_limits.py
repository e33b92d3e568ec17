"""The HubSpot sandbox's limits: per-account rate windows, 429 bodies, and how long the search index trails writes.

Everything here is counted per portal (account), never per token: HubSpot's limits are shared by every app in the
account. Clocks are injected, so tests move time instead of sleeping.
"""

from __future__ import annotations

import hashlib
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "HubspotLimits",
    "PortalRateLimiter",
    "RateLimited",
    "rate_limit_body",
    "retry_after_seconds",
    "spread_index_delay",
]

SECONDLY: Final[str] = "SECONDLY"
TEN_SECONDLY_ROLLING: Final[str] = "TEN_SECONDLY_ROLLING"


@dataclass
class HubspotLimits:
    """The caps the sandbox enforces; the defaults are HubSpot's published figures (Professional/Enterprise)."""

    search_per_second: int = 5
    """HubSpot developer docs, CRM API "Search", Limitations: the search endpoints are rate limited to five requests
    per second per account (https://developers.hubspot.com/docs/guides/api/crm/search#limitations); older docs said
    four per token (changelog "CRM Search API Rate Limit Increase")."""
    calls_per_ten_seconds: int = 190
    """HubSpot developer docs, "API usage guidelines and limits": 190 calls per 10 s for Professional/Enterprise
    private apps, per account (https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details;
    https://developers.hubspot.com/changelog/increasing-our-api-limits)."""
    max_results_per_query: int = 10_000
    """CRM API "Search", Limitations: at most 10,000 results per query; paging past them is a 400."""
    max_page_size: int = 200
    """CRM API "Search": `limit` up to 200 per page."""
    max_batch_inputs: int = 100
    """CRM API "Contacts", batch endpoints: at most 100 inputs per batch call."""
    max_filter_groups: int = 5
    max_filters_per_group: int = 10
    max_filters: int = 25
    """Changelog "Breaking Change: Expanded Filtering Capabilities and Error Messaging in HubSpot's Search API"
    (https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api):
    five filter groups, ten filters per group, twenty-five filters in all."""
    search_index_lag_ms: int = 60_000
    """Longest time a created or updated contact stays invisible to search. CRM API "Search", Limitations: "it may
    take a few moments for newly created or updated objects to appear in search results"; up to about a minute is
    what integrations observe. Each change gets its own delay in [0, this] (see `spread_index_delay`)."""
    retry_after: bool = False
    """Send `Retry-After` on 429s. HubSpot's usage guide documents the 429 body, not a Retry-After header, so by
    default the sandbox sends none and a client must cope without it; switch it on to test a client honours one."""


def spread_index_delay(max_lag_ms: int) -> Callable[[int, int], int]:
    """Per-change indexing delay in [0, max_lag_ms], deterministic in (contact id, change stamp).

    A constant lag would hide the real hazard: a change made earlier but indexed later than another one, so a
    watermark taken from what search showed can already be past it.
    """

    def delay(contact_id: int, changed_ms: int) -> int:
        if max_lag_ms <= 0:
            return 0
        digest = hashlib.blake2b(f"{contact_id}:{changed_ms}".encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") % (max_lag_ms + 1)

    return delay


class RateLimited(Exception):
    """A call the portal refuses: which policy it would break and when the window has room again."""

    def __init__(self, policy: str, retry_in: float) -> None:
        self.policy, self.retry_in = policy, retry_in
        super().__init__(policy)


class PortalRateLimiter:
    """Sliding windows for one portal, shared by every token (app) of it: all calls, and search calls."""

    def __init__(self, limits: HubspotLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self._searches: deque[float] = deque()

    def admit(self, search: bool) -> None:
        """Record a call, or raise RateLimited naming the policy it would break."""
        with self._lock:
            now = self.clock()
            # A call is in the window while it happened less than `period` seconds ago.
            for times, period in ((self._calls, 10.0), (self._searches, 1.0)):
                while times and times[0] <= now - period:
                    times.popleft()
            if len(self._calls) >= self.limits.calls_per_ten_seconds:
                raise RateLimited(TEN_SECONDLY_ROLLING, self._calls[0] + 10.0 - now)
            if search and len(self._searches) >= self.limits.search_per_second:
                raise RateLimited(SECONDLY, self._searches[0] + 1.0 - now)
            self._calls.append(now)
            if search:
                self._searches.append(now)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._searches.clear()


def rate_limit_body(policy: str) -> dict[str, Any]:
    """A 429 body as HubSpot documents it ("API usage guidelines and limits", the 429 example:
    https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details): status, message, errorType RATE_LIMIT,
    correlationId, policyName (DAILY, SECONDLY, TEN_SECONDLY_ROLLING) and requestId. CRM v3 errors also carry a
    `category` (RATE_LIMITS for these)."""
    message = {
        "DAILY": "You have reached your daily limit.",
        SECONDLY: "You have reached your secondly limit.",
        TEN_SECONDLY_ROLLING: "You have reached your ten_secondly_rolling limit.",
    }.get(policy, "You have reached your secondly limit.")
    return {"status": "error", "message": message, "errorType": "RATE_LIMIT", "category": "RATE_LIMITS",
            "correlationId": str(uuid.uuid4()), "policyName": policy, "requestId": str(uuid.uuid4())}


def retry_after_seconds(retry_in: float) -> str:
    """Retry-After in whole seconds (RFC 9110 delay-seconds), never 0 while the window is still full."""
    return str(max(1, math.ceil(retry_in)))
