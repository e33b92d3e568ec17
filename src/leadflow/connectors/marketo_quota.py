"""Marketo REST quota arithmetic: what a pull or an activity read costs in calls, and whether it fits the limits.

Get Lead Activities and Get Lead Changes go through 300 activities of ALL types per call, whatever types were asked
for (Marketo KB "Get Lead Activities REST API Is Not Returning Any Activities":
https://experienceleague.adobe.com/en/docs/experience-cloud-kcs/kbarticles/ka-29362). The calls a window costs
therefore follow from how many activities the instance logged in it, not from how many leadflow keeps: a window
of 30,000 page visits and 12 data changes costs 100 calls per pass, not 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACTIVITIES_PER_CALL",
    "LEADS_PER_CALL",
    "TYPES_PER_CALL",
    "CallPlan",
    "MarketoQuota",
    "plan_activities",
    "plan_pull",
    "scan_calls",
]

ACTIVITIES_PER_CALL: Final[int] = 300
"""Activities (of all types) one activities.json / leadchanges.json call goes through (KB ka-29362 above)."""
LEADS_PER_CALL: Final[int] = 300
"""Ids per Get Leads by filter call (Marketo REST docs, "Leads": up to 300 filter values)."""
TYPES_PER_CALL: Final[int] = 10
"""activityTypeIds per Get Lead Activities call (Marketo REST docs, "Activities": up to 10 ids)."""


@dataclass(frozen=True)
class MarketoQuota:
    """Marketo's published REST limits per instance, shared by every integration on it.

    Marketo developer docs, "Marketo Integration Best Practices", API Limits
    (https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/marketo-integration-best-practices):
    most subscriptions get 50,000 calls per day (resets at 12:00 AM CST), 100 calls per 20 seconds per instance,
    at most ten concurrent calls; "assume that your application will compete for quota, rate, and concurrency
    resources with other applications". Over them: 607, 606, 615 (REST "Error Codes").
    """

    daily_calls: int = 50_000
    calls_per_window: int = 100
    window_seconds: float = 20.0
    max_concurrent: int = 10


def scan_calls(activities: int, per_call: int = ACTIVITIES_PER_CALL) -> int:
    """Calls to page once through `activities` activities: each call covers `per_call` of them, and the call that
    reaches the end says `moreResult: false`. An empty window still costs one call."""
    return max(1, math.ceil(max(0, activities) / per_call))


@dataclass(frozen=True)
class CallPlan:
    """What a read costs: `passes` scans of the activity log, lead lookups, and fixed calls (tokens, types)."""

    scan_calls: int
    passes: int
    lookup_calls: int
    fixed_calls: int

    @property
    def total(self) -> int:
        return self.scan_calls * self.passes + self.lookup_calls + self.fixed_calls

    def least_seconds(self, quota: MarketoQuota = MarketoQuota()) -> float:
        """The shortest time the calls can take at the rate limit (alone on the instance)."""
        return max(0, math.ceil(self.total / quota.calls_per_window) - 1) * quota.window_seconds

    def daily_share(self, quota: MarketoQuota = MarketoQuota()) -> float:
        """The share of the instance's daily calls (all integrations together) this read takes."""
        return self.total / quota.daily_calls


def plan_pull(activities_in_window: int, changed_leads: int, *, per_call: int = ACTIVITIES_PER_CALL,
              leads_per_call: int = LEADS_PER_CALL, with_token: bool = True) -> CallPlan:
    """Calls for `MarketoConnector.pull` over a window holding `activities_in_window` activities (all types) in
    which `changed_leads` leads changed: a paging token, two scans (lead changes; form fills and new leads), one
    lookup per 300 changed leads, and the access token unless one is cached."""
    return CallPlan(scan_calls=scan_calls(activities_in_window, per_call), passes=2,
                    lookup_calls=math.ceil(max(0, changed_leads) / leads_per_call),
                    fixed_calls=1 + int(with_token))


def plan_activities(activities_in_window: int, type_ids: int, *, per_call: int = ACTIVITIES_PER_CALL,
                    with_token: bool = True, with_types: bool = True) -> CallPlan:
    """Calls for `MarketoConnector.activities` over a window of `activities_in_window` activities: one scan per
    group of 10 activity types, a paging token, the type list (fetched once) and the access token unless cached."""
    return CallPlan(scan_calls=scan_calls(activities_in_window, per_call),
                    passes=math.ceil(max(1, type_ids) / TYPES_PER_CALL), lookup_calls=0,
                    fixed_calls=1 + int(with_token) + int(with_types))
