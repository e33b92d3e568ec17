"""The HubSpot sandbox as strict as the real portal, and the connector coping with it.

- The search index trails writes: a created or updated contact is invisible to search for up to a minute, each
  change for its own time. Syncs run against a fake clock show the connector's look-back covers that lag (nothing
  skipped) and that a look-back shorter than the lag does skip changes.
- Search is limited to 5 requests/s per ACCOUNT and all calls to 190 per 10 s, shared by every app in the portal:
  two apps pulling at once get 429s with HubSpot's body, back off (Retry-After when sent) and lose nothing.

Time is injected everywhere (one fake clock for the rate windows, the write stamps and the index); nothing sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from pydantic import SecretStr

from leadflow.pipeline.connections import LOOKBACK_SECONDS, Connections
from leadflow.connectors.base import CURSOR_COLUMN
from leadflow.connectors.hubspot import (
    DEFAULT_LOOKBACK,
    SEARCH_INDEX_LAG,
    HubspotConnector,
    HubspotCredentials,
    hubspot_connector,
)
from leadflow.connectors.registry import connect as connect_system
from leadflow.sandbox.hubspot import HubspotLimits, RunningHubspot, running_hubspot
from tests.fakes import FakeClock

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)  # after every seeded stamp
LO, HI = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)
SEARCH = "/crm/v3/objects/contacts/search"


def make_connector(hub: RunningHubspot, clock: FakeClock, token: str | None = None, **options: Any) -> HubspotConnector:
    session = requests.Session()
    session.trust_env = False
    return hubspot_connector(HubspotCredentials(base_url=hub.url, token=SecretStr(token or hub.token)),
                             session=session, clock=clock, sleep=clock.sleep, **options)


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def find_by_id(hub: RunningHubspot, cid: str) -> list[dict[str, Any]]:
    body = {"filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": cid}]}],
            "properties": ["email", "city"]}
    response = requests.post(hub.url + SEARCH, json=body, headers=headers(hub.token), timeout=5)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


# -- the index lag -------------------------------------------------------------------------------------------------
@pytest.fixture
def lagging() -> Iterator[tuple[RunningHubspot, FakeClock]]:
    clock = FakeClock(T0.timestamp())
    with running_hubspot(n=40, seed=3, clock=clock, now_ms=clock.ms) as hub:
        assert hub.portal.limits.search_index_lag_ms == 60_000  # strict by default: the documented worst case
        yield hub, clock


def test_created_and_updated_contacts_are_invisible_to_search_until_indexed(
    lagging: tuple[RunningHubspot, FakeClock],
) -> None:
    hub, clock = lagging
    hub.portal.index_delay = lambda cid, ms: 30_000  # script it: every change takes 30 s to index
    base = hub.url + "/crm/v3/objects/contacts"
    created = requests.post(base, json={"properties": {"email": "fresh@example.org"}}, headers=headers(hub.token),
                            timeout=5)
    assert created.status_code == 201
    cid = created.json()["id"]
    assert find_by_id(hub, cid) == []  # search does not show it yet...
    got = requests.get(f"{base}/{cid}", headers=headers(hub.token), timeout=5).json()
    assert got["properties"]["email"] == "fresh@example.org"  # ...while a GET by id does
    clock.now += 29.9
    assert find_by_id(hub, cid) == []
    clock.now += 0.1
    assert [r["id"] for r in find_by_id(hub, cid)] == [cid]
    # An update hides it again, lastmodifieddate filter included, until the change is indexed.
    assert requests.patch(f"{base}/{cid}", json={"properties": {"city": "Lyon"}}, headers=headers(hub.token),
                          timeout=5).status_code == 200
    stamp = hub.portal.modified_ms(cid)
    since = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                            "value": str(stamp)}]}]}
    assert requests.post(hub.url + SEARCH, json=since, headers=headers(hub.token), timeout=5).json()["total"] == 0
    clock.now += 30
    found = requests.post(hub.url + SEARCH, json=since, headers=headers(hub.token), timeout=5).json()["results"]
    assert [r["id"] for r in found] == [cid]
    assert hub.portal.stats["search_hidden"] >= 3


def simulate_syncs(hub: RunningHubspot, clock: FakeClock, lookback: timedelta) -> tuple[int, set[tuple[str, int]]]:
    """An hourly-sync-like loop in fast forward: every 7 s three contacts change, every other step a sync pulls
    from its watermark (the newest stamp it read) as crm_sync does. Returns (changes made, changes never pulled)."""
    rng = np.random.default_rng(11)
    ids = hub.portal.ids()
    connector = make_connector(hub, clock, lookback=lookback, page_size=50)
    changes: list[tuple[str, int]] = []
    seen: dict[str, int] = {}  # contact id -> newest stamp pulled
    watermark: datetime | None = None

    def sync() -> None:
        nonlocal watermark
        for page in connector.pull(watermark):
            for cid, stamp in zip(page["lead_id"], page[CURSOR_COLUMN], strict=True):
                ms = int(datetime.fromisoformat(stamp).timestamp() * 1000)
                seen[cid] = max(seen.get(cid, 0), ms)
            newest = datetime.fromisoformat(page[CURSOR_COLUMN].max())
            watermark = newest if watermark is None else max(watermark, newest)

    sync()  # the first run reads everything
    for step in range(40):
        clock.now += 7
        for cid in rng.choice(ids, 3, replace=False):
            response = requests.patch(f"{hub.url}/crm/v3/objects/contacts/{cid}",
                                      json={"properties": {"city": f"City {step}"}}, headers=headers(hub.token),
                                      timeout=5)
            assert response.status_code == 200
            changes.append((str(cid), hub.portal.modified_ms(str(cid))))
        if step % 2:
            sync()
    clock.now += 120  # long after the last change: everything is indexed
    sync()
    missed = {(cid, ms) for cid, ms in changes if seen.get(cid, 0) < ms}
    return len(changes), missed


def test_lookback_covering_the_index_lag_skips_nothing(lagging: tuple[RunningHubspot, FakeClock]) -> None:
    hub, clock = lagging
    assert DEFAULT_LOOKBACK >= SEARCH_INDEX_LAG == timedelta(milliseconds=hub.portal.limits.search_index_lag_ms)
    made, missed = simulate_syncs(hub, clock, DEFAULT_LOOKBACK)
    assert made == 120 and missed == set()
    made, missed = simulate_syncs(hub, clock, SEARCH_INDEX_LAG)  # the lag itself is enough
    assert missed == set()


@pytest.mark.parametrize("lookback", [timedelta(0), timedelta(seconds=20)])
def test_lookback_shorter_than_the_lag_skips_changes(lagging: tuple[RunningHubspot, FakeClock],
                                                     lookback: timedelta, caplog: pytest.LogCaptureFixture) -> None:
    hub, clock = lagging
    caplog.set_level(logging.WARNING, "leadflow.connectors.hubspot")
    made, missed = simulate_syncs(hub, clock, lookback)
    # A change indexed late, behind a later change indexed early, is behind the watermark before search shows it.
    assert made == 120 and len(missed) >= 3
    assert "shorter than the search index lag" in caplog.text


def test_without_an_index_lag_no_lookback_is_needed() -> None:
    # The control: the same syncs against a portal whose search is current miss nothing even with no overlap, so
    # the misses above are the lag's doing.
    clock = FakeClock(T0.timestamp())
    with running_hubspot(n=40, seed=3, clock=clock, now_ms=clock.ms,
                         limits=HubspotLimits(search_index_lag_ms=0)) as hub:
        made, missed = simulate_syncs(hub, clock, timedelta(0))
    assert made == 120 and missed == set()


def test_configured_lookback_reaches_the_connector_and_defaults_cover_the_lag(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    assert timedelta(seconds=LOOKBACK_SECONDS.default) >= SEARCH_INDEX_LAG  # systems.hubspot.lookback_seconds
    monkeypatch.setenv("LF_TEST_HS_TOKEN", "pat-na1-test")
    for seconds, warns in ((600, False), (10, True)):
        caplog.clear()
        conf = Connections.model_validate({"hubspot": {"token": {"env": "LF_TEST_HS_TOKEN"},
                                                       "lookback_seconds": seconds}})
        with caplog.at_level(logging.WARNING, "leadflow.connectors.hubspot"):
            connector = connect_system("hubspot", conf, origin="test.yaml")
        assert connector.lookback == timedelta(seconds=seconds)
        assert ("shorter than the search index lag" in caplog.text) is warns
    with pytest.raises(ValueError, match="negative"):
        hubspot_connector(HubspotCredentials(token=SecretStr("x")), lookback=timedelta(seconds=-1))


# -- limits per account, shared by every app ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def portal_hub() -> Iterator[RunningHubspot]:
    with running_hubspot(n=300, seed=7) as hub:
        yield hub


@pytest.fixture
def shared(portal_hub: RunningHubspot) -> Iterator[tuple[RunningHubspot, FakeClock]]:
    clock = FakeClock(T0.timestamp())
    portal_hub.reset()
    portal_hub.portal.clock = clock
    yield portal_hub, clock
    portal_hub.reset()


def window_ids(hub: RunningHubspot) -> set[str]:
    lo, hi = int(LO.timestamp() * 1000), int(HI.timestamp() * 1000)
    return {cid for cid in hub.portal.ids() if lo <= hub.portal.modified_ms(cid) < hi}


def interleave(*pulls: Iterator[pd.DataFrame]) -> list[pd.DataFrame]:
    """One page from each pull in turn, until all are done: two apps working at the same time."""
    frames: list[list[pd.DataFrame]] = [[] for _ in pulls]
    live = list(range(len(pulls)))
    while live:
        for i in list(live):
            try:
                frames[i].append(next(pulls[i]))
            except StopIteration:
                live.remove(i)
    return [pd.concat(f, ignore_index=True) for f in frames]


def test_search_limit_is_per_account_not_per_app(shared: tuple[RunningHubspot, FakeClock]) -> None:
    hub, clock = shared
    other = hub.portal.install_app("marketing-sync")
    url, body = hub.url + SEARCH, {"limit": 1}
    for _ in range(5):
        assert requests.post(url, json=body, headers=headers(hub.token), timeout=5).status_code == 200
    refused = requests.post(url, json=body, headers=headers(other), timeout=5)  # another app, same second
    assert refused.status_code == 429
    error = refused.json()
    assert error["status"] == "error" and error["errorType"] == "RATE_LIMIT" and error["policyName"] == "SECONDLY"
    assert error["category"] == "RATE_LIMITS" and error["message"] == "You have reached your secondly limit."
    assert "Retry-After" not in refused.headers  # not documented: a client must cope without one
    # Non-search calls still pass (the 190 / 10 s budget), and the next second has room again.
    assert requests.get(hub.url + "/crm/v3/objects/contacts/101", headers=headers(other), timeout=5).ok
    clock.now += 1
    assert requests.post(url, json=body, headers=headers(other), timeout=5).status_code == 200
    assert hub.portal.stats["app_marketing-sync_rate_limited"] == 1


def test_two_apps_pulling_at_once_back_off_and_lose_nothing(shared: tuple[RunningHubspot, FakeClock]) -> None:
    hub, clock = shared
    mine = make_connector(hub, clock, lookback=timedelta(0), page_size=5)
    theirs = make_connector(hub, clock, token=hub.portal.install_app("other-integration"), lookback=timedelta(0),
                            page_size=5)
    ours, other = interleave(mine.pull(LO, HI), theirs.pull(LO, HI))
    expected = window_ids(hub)
    assert len(expected) > 30
    for frame in (ours, other):
        assert frame["lead_id"].is_unique and set(frame["lead_id"]) == expected
    # Each app kept to 5 searches/s on its own; together they broke the account's limit and were told so.
    limited = hub.portal.stats["rate_limited"]
    assert limited > 0 and mine.stats["rate_limited"] + theirs.stats["rate_limited"] == limited
    assert hub.portal.stats["status_429"] == limited
    assert 1.0 in clock.sleeps  # SECONDLY without Retry-After: the connector waits out the one-second window
    searches = mine.stats["calls"] + theirs.stats["calls"]
    assert hub.portal.stats["search"] == searches - limited


def test_shared_ten_second_limit_with_retry_after_honoured(shared: tuple[RunningHubspot, FakeClock],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    hub, clock = shared
    monkeypatch.setattr(hub.portal.limits, "calls_per_ten_seconds", 12)
    monkeypatch.setattr(hub.portal.limits, "retry_after", True)
    told: list[float] = []
    session = requests.Session()
    session.trust_env = False
    session.hooks["response"].append(
        lambda r, *a, **k: told.append(float(r.headers["Retry-After"])) if r.status_code == 429 else None)
    # Both apps believe the whole 12 calls / 10 s are theirs: together they hit TEN_SECONDLY_ROLLING.
    mine = hubspot_connector(HubspotCredentials(base_url=hub.url, token=SecretStr(hub.token)), session=session,
                             clock=clock, sleep=clock.sleep, lookback=timedelta(0), page_size=5,
                             calls_per_ten_seconds=12)
    theirs = make_connector(hub, clock, token=hub.portal.install_app("crm-bridge"), lookback=timedelta(0),
                            page_size=5, calls_per_ten_seconds=12)
    ours, other = interleave(mine.pull(LO, HI), theirs.pull(LO, HI))
    assert set(ours["lead_id"]) == set(other["lead_id"]) == window_ids(hub)
    assert told and mine.stats["rate_limited"] == len(told)
    assert all(1.0 <= wait <= 10.0 for wait in told) and min(told) < 10.0
    # Every Retry-After our connector was given is exactly a wait it made (not its 10 s fallback).
    remaining = list(clock.sleeps)
    for wait in told:
        assert wait in remaining
        remaining.remove(wait)


def test_properties_endpoint_lists_the_stock_contact_properties(shared: tuple[RunningHubspot, FakeClock]) -> None:
    hub, _ = shared
    response = requests.get(hub.url + "/crm/v3/properties/contacts", headers=headers(hub.token), timeout=5)
    assert response.status_code == 200
    props = {p["name"]: p for p in response.json()["results"]}
    assert props["lastmodifieddate"]["modificationMetadata"]["readOnlyValue"] is True
    assert props["jobtitle"]["modificationMetadata"]["readOnlyValue"] is False
    assert {o["value"] for o in props["hs_lead_status"]["options"]} >= {"NEW", "IN_PROGRESS", "UNQUALIFIED"}
    assert props["hs_lead_status"]["type"] == "enumeration" and props["hs_email_optout"]["type"] == "bool"
    assert requests.get(hub.url + "/crm/v3/properties/contacts", timeout=5).status_code == 401
