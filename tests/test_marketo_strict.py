"""The Marketo sandbox as strict as a real instance, and the connector coping with it.

- Access tokens only in the Authorization header: a query-string `access_token` is refused (HTTP 200, 600).
- activities.json / leadchanges.json go through 300 activities of ALL types per call: a window full of page visits
  with a handful of data changes gives mostly empty pages with `moreResult: true`. The connector pages to the end,
  finds every change, counts every call exactly as the sandbox does, and plans from activities scanned.
- The run budget and the 100-calls-per-20-s pacing follow from that arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import requests
from pydantic import SecretStr

from leadflow.connectors.base import ApiBudget, BudgetExhausted
from leadflow.connectors.marketo import MarketoConnector, MarketoCredentials, marketo_connector
from leadflow.connectors.marketo_quota import MarketoQuota, plan_activities, plan_pull, scan_calls
from leadflow.sandbox.marketo import ALL_FIELDS, MarketoInstance, RunningMarketo, iso, running_marketo
from tests.fakes import FakeClock

SINCE = datetime(2026, 11, 10, tzinfo=UTC)  # after every seeded activity
NOISE = 3000  # page visits in the window
CHANGE_AT = (5, 1290, 1295, 2200, 2999)  # where, among the visits, a mapped field changes
DEMO_AT = (700, 2600)  # two Request Demo activities: a sparse engagement type
NEW_LEAD_AT = 2500
FORM_AT = 100  # a form fill alone is no change

MARKETO_NOW = 1_800_000_000.0
"""Where the fake clock starts: epoch seconds in 2027."""


def add_window(instance: MarketoInstance) -> tuple[set[int], int]:
    """Fill [SINCE, …) with NOISE page visits and, among them, a few changes: (changed lead ids, activities added)."""
    leads = sorted(instance.leads)
    changed: set[int] = set()
    added = 0
    for i in range(NOISE):
        when = SINCE + timedelta(seconds=10 * i)
        lead = leads[i % len(leads)]
        instance.add_activity(lead, 1, when, "/pricing", {"Webpage URL": "/pricing"})
        added += 1
        if i in CHANGE_AT:
            target = leads[(7 * i) % len(leads)]
            old = instance.leads[target].get("title")
            change = {"id": ALL_FIELDS.index("title"), "name": "title", "newValue": f"Title {i}", "oldValue": old}
            instance.leads[target].update(title=f"Title {i}", updatedAt=iso(when))
            instance.add_activity(target, 13, when, "title", {"New Value": f"Title {i}", "Old Value": old}, [change])
            changed.add(target)
            added += 1
        if i in DEMO_AT:
            instance.add_activity(lead, 100001, when, "Leadflow Platform", {"Requested Via": "Website"})
            added += 1
        if i == FORM_AT:
            instance.add_activity(lead, 2, when, "Contact Us Form", {"Form Type": "Contact Us"})
            added += 1
        if i == NEW_LEAD_AT:
            new_id = max(instance.leads) + 1
            instance.leads[new_id] = {"id": new_id, **dict.fromkeys(ALL_FIELDS[1:]), "email": "new@example.org",
                                      "unsubscribed": False, "createdAt": iso(when), "updatedAt": iso(when)}
            instance.add_activity(new_id, 12, when, str(new_id), {"Source Type": "Web service API"})
            changed.add(new_id)
            added += 1
    return changed, added


@pytest.fixture
def mk() -> Iterator[tuple[RunningMarketo, set[int], int]]:
    with running_marketo(n=40, seed=5) as running:
        changed, added = add_window(running.instance)
        yield running, changed, added


def session_recording(seen: list[requests.PreparedRequest]) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request))
    return session


def connect(running: RunningMarketo, session: requests.Session | None = None, **options: Any) -> MarketoConnector:
    clock = options.pop("clock", None) or FakeClock(MARKETO_NOW)
    creds = MarketoCredentials(base_url=running.url, client_id=running.client_id,
                               client_secret=SecretStr(running.client_secret))
    return marketo_connector(creds, session=session or session_recording([]), clock=clock, sleep=clock.sleep,
                             **options)


def pages_served(instance: MarketoInstance, path: str) -> list[tuple[str, int, int]]:
    return [page for page in instance.activity_pages if page[0] == path]


# -- access tokens -------------------------------------------------------------------------------------------------
def test_access_token_only_in_the_authorization_header(mk: tuple[RunningMarketo, set[int], int]) -> None:
    running, changed, _ = mk
    with requests.Session() as plain:
        plain.trust_env = False
        token = plain.post(f"{running.url}/identity/oauth/token", data={
            "grant_type": "client_credentials", "client_id": running.client_id,
            "client_secret": running.client_secret}).json()["access_token"]
        refused = plain.get(f"{running.url}/rest/v1/activities/types.json", params={"access_token": token})
        assert refused.status_code == 200  # Marketo reports errors inside HTTP 200
        body = refused.json()
        assert body["success"] is False and body["errors"] == [{"code": "600", "message": "Access token missing"}]
        assert "result" not in body and running.instance.query_token_refusals == 1
        wrong = plain.get(f"{running.url}/rest/v1/activities/types.json",
                          headers={"Authorization": "Bearer not-a-token"}).json()
        assert wrong["errors"][0]["code"] == "601"
        ok = plain.get(f"{running.url}/rest/v1/activities/types.json", headers={"Authorization": f"Bearer {token}"})
        assert ok.json()["success"] is True
    # The connector sends the token in the header only, never in a URL, and gets its work done.
    seen: list[requests.PreparedRequest] = []
    frame = pd.concat(list(connect(running, session_recording(seen)).pull(SINCE)), ignore_index=True)
    assert {int(i.removeprefix("mkto-")) for i in frame["lead_id"]} == changed
    api = [r for r in seen if "/rest/" in str(r.url)]
    assert api and all(str(r.headers.get("Authorization", "")).startswith("Bearer ") for r in api)
    assert not any("access_token" in str(r.url) or "client_secret" in str(r.url) for r in seen)
    assert running.instance.query_token_refusals == 1  # only the request above


# -- 300 activities of all types per call --------------------------------------------------------------------------
def test_sparse_changes_among_thousands_of_visits_are_all_found(mk: tuple[RunningMarketo, set[int], int]) -> None:
    running, changed, in_window = mk
    instance = running.instance
    instance.reset()
    connector = connect(running)
    frame = pd.concat(list(connector.pull(SINCE)), ignore_index=True)
    assert {int(i.removeprefix("mkto-")) for i in frame["lead_id"]} == changed and len(changed) == 6
    # Each pass goes through every activity in the window, 300 per call, whatever it returns.
    assert in_window == NOISE + len(CHANGE_AT) + len(DEMO_AT) + 2 == 3009
    for path in ("leadchanges.json", "activities.json"):
        served = pages_served(instance, path)
        assert sum(scanned for _, scanned, _ in served) == in_window
        assert len(served) == scan_calls(in_window) == 11
        assert sum(returned for *_, returned in served) <= 7
    empty = sum(1 for *_, returned in instance.activity_pages if returned == 0)
    assert empty >= 12 and connector.stats["empty_activity_pages"] == empty  # pages kept coming while moreResult
    # The calls the connector reports are the calls Marketo counted, endpoint by endpoint.
    assert connector.stats["calls"] == len(instance.calls) == instance.calls_today + 1  # the token call is free
    for path in ("/identity/oauth/token", "/rest/v1/activities/pagingtoken.json",
                 "/rest/v1/activities/leadchanges.json", "/rest/v1/activities.json", "/rest/v1/leads.json"):
        assert connector.stats[f"calls {path}"] == sum(c.endswith(path) for c in instance.calls), path
    # And the plan made from activities scanned (not from the 6 results) is what it cost: 25 calls, not 5.
    plan = plan_pull(in_window, len(changed))
    assert plan.total == connector.stats["calls"] == connector.stats["planned_calls"] == 25
    assert plan_pull(len(changed), len(changed)).total == 5  # what counting results would have predicted


def test_a_sparse_engagement_type_costs_a_scan_of_the_window(mk: tuple[RunningMarketo, set[int], int]) -> None:
    running, _, in_window = mk
    running.instance.reset()
    connector = connect(running)
    demos = pd.concat(list(connector.activities(SINCE, types=["Request Demo"])), ignore_index=True)
    assert len(demos) == len(DEMO_AT) and demos["activity_type"].eq("Request Demo").all()
    assert connector.stats["calls"] == len(running.instance.calls) == plan_activities(in_window, 1).total == 14
    until = SINCE + timedelta(seconds=10 * 1000)  # a closed window stops at the first activity past it... if any
    early = pd.concat(list(connect(running).activities(SINCE, until, types=["Request Demo"])), ignore_index=True)
    assert list(early["activity_date"]) == [iso(SINCE + timedelta(seconds=10 * DEMO_AT[0]))]


def test_budget_too_small_for_the_second_scan_stops_before_spending_it(
    mk: tuple[RunningMarketo, set[int], int],
) -> None:
    running, _, in_window = mk
    running.instance.reset()
    budget = ApiBudget("marketo", limit=18)  # token + paging token + 11 scans leaves 5: the rest needs 12
    connector = connect(running, budget=budget)
    with pytest.raises(BudgetExhausted, match=r"needs about 12 more calls \(11 to scan"):
        list(connector.pull(SINCE))
    assert budget.used == 13 == len(running.instance.calls)  # nothing spent on a pass that could not finish
    assert connector.stats["scan_calls"] == scan_calls(in_window)


def test_pacing_keeps_a_long_pull_under_100_calls_per_20_seconds(mk: tuple[RunningMarketo, set[int], int]) -> None:
    running, changed, in_window = mk
    clock = FakeClock(MARKETO_NOW)
    running.instance.reset()
    running.instance.configure(page_size=30, clock=clock)  # 30 activities per call: > 200 calls for the window
    connector = connect(running, clock=clock)
    frame = pd.concat(list(connector.pull(SINCE)), ignore_index=True)
    assert {int(i.removeprefix("mkto-")) for i in frame["lead_id"]} == changed
    calls = connector.stats["calls"]
    assert calls == len(running.instance.calls) == plan_pull(in_window, len(changed), per_call=30).total > 200
    assert connector.stats["retries"] == 0  # paced: Marketo never had to say 606
    assert connector.stats["rate_wait_s"] > 0 and clock.now - 1_800_000_000.0 >= (calls // 100) * 20.0


@pytest.mark.parametrize(("activities", "changed", "expected"), [
    (0, 0, 4),  # an empty window still costs a call per pass
    (300, 1, 5),
    (301, 1, 7),
    (30_000, 12, 203),  # 100 scans per pass: the activities logged decide, not the 12 changes
    (30_000, 301, 204),
])
def test_pull_plans_follow_the_activities_scanned(activities: int, changed: int, expected: int) -> None:
    plan = plan_pull(activities, changed)
    assert plan.total == expected
    quota = MarketoQuota()
    assert plan.least_seconds(quota) == max(0, -(-expected // 100) - 1) * 20.0
    assert plan.daily_share(quota) == expected / 50_000
    # Engagement reads: one scan per 10 types, plus paging token, type list and access token.
    assert plan_activities(activities, 11).total == 2 * scan_calls(activities) + 3


def test_describe_and_daily_usage_speak_marketo(mk: tuple[RunningMarketo, set[int], int]) -> None:
    running, _, _ = mk
    running.instance.reset()
    connector = connect(running)
    fields = {f["rest"]["name"]: f for f in connector._call("GET", "/rest/v1/leads/describe.json")["result"]}
    assert {rule.source for rule in connector.mapping.fields.values()} <= set(fields)
    assert fields["updatedAt"]["rest"]["readOnly"] and not fields["title"]["rest"]["readOnly"]
    assert fields["email"]["dataType"] == "email" and fields["title"]["length"] == 255
    today = connector._call("GET", "/rest/v1/stats/usage.json")["result"]
    assert today[0]["total"] == running.instance.calls_today == 2  # describe and this call; the token call is free
