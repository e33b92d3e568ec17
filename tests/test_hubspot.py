"""HubSpot connector against the HubSpot sandbox over real HTTP on 127.0.0.1.

The sandbox and the connector share one fake clock: the sandbox enforces the real 5 searches/s per account in fake
time and the connector's limiter and backoff sleep in fake time, so nothing here waits on the wall clock.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from pydantic import SecretStr

from leadflow.connectors.base import CURSOR_COLUMN, ApiBudget, BudgetExhausted, CrmWriter, LeadSource, SourceStopped
from leadflow.connectors.hubspot import (
    ERROR_COLUMN,
    HubspotAuthError,
    HubspotConnector,
    HubspotCredentials,
    HubspotError,
    RetryPolicy,
    WindowLimiter,
    hubspot_connector,
    load_hubspot_mapping,
)
from leadflow.pipeline.errors import ConfigError
from leadflow.sandbox.hubspot import HubspotLimits, Portal, RunningHubspot, running_hubspot, seed_portal
from tests.fakes import FakeClock

CAP = 50  # results per query, small so that window splitting happens with a few hundred contacts
N, BURST, SAME = 400, 140, 70
BURST_AT = datetime(2026, 10, 15, 12, tzinfo=UTC)
BAD_AT = datetime(2026, 5, 1, tzinfo=UTC)  # bad payloads live in their own window, before every seeded contact
LO, HI = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC)  # 40-odd contacts: one query's worth
SEP, OCT = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)  # written to while being pulled
WRITE_NOW = datetime(2026, 11, 20, tzinfo=UTC)  # the sandbox's clock for writes starts here, 1 ms per tick


@pytest.fixture(scope="module")
def hub() -> Iterator[RunningHubspot]:
    limits = HubspotLimits(max_results_per_query=CAP)
    ticks = itertools.count(int(WRITE_NOW.timestamp() * 1000))
    with running_hubspot(
        n=N, burst=BURST, same_stamp=SAME, burst_at=BURST_AT, limits=limits, now_ms=lambda: next(ticks)
    ) as running:
        yield running


@pytest.fixture
def clock(hub: RunningHubspot) -> Iterator[FakeClock]:
    fake = FakeClock()
    hub.reset()
    hub.portal.clock = fake
    yield fake
    hub.reset()


@pytest.fixture
def connect(hub: RunningHubspot, clock: FakeClock) -> Callable[..., HubspotConnector]:
    def make(**options: Any) -> HubspotConnector:
        options.setdefault("max_results_per_query", CAP)
        options.setdefault("page_size", 20)
        options.setdefault("lookback", timedelta(0))  # exact windows here; the look-back has its own tests
        token = options.pop("token", hub.token)
        return hubspot_connector(
            HubspotCredentials(base_url=hub.url, token=SecretStr(token)), clock=clock, sleep=clock.sleep, **options
        )

    return make


def pull_all(connector: HubspotConnector, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
    pages = list(connector.pull(since, until))
    return pd.concat(pages, ignore_index=True) if pages else pd.DataFrame()


def seeded_ids(hub: RunningHubspot, lo: datetime | None = None, hi: datetime | None = None) -> set[str]:
    lo_ms = -1 if lo is None else int(lo.timestamp() * 1000)
    hi_ms = 2**62 if hi is None else int(hi.timestamp() * 1000)
    return {cid for cid in hub.portal.ids() if lo_ms <= hub.portal.modified_ms(cid) < hi_ms}


# -- pulling -------------------------------------------------------------------------------------------------------
def test_connector_implements_the_protocols(connect: Callable[..., HubspotConnector]) -> None:
    connector = connect()
    assert isinstance(connector, LeadSource) and isinstance(connector, CrmWriter)
    assert connector.system == "hubspot"
    assert "status" in connector.writable_columns and "email_opt_in" in connector.writable_columns
    assert not {"created_at", "updated_at", "hubspot_lifecycle_stage"} & set(connector.writable_columns)


def test_full_pull_reads_every_contact_exactly_once(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                                        clock: FakeClock) -> None:
    connector = connect()
    frame = pull_all(connector, None)  # open-ended: bounded by the newest stamp at the start
    expected = set(hub.portal.ids())
    assert len(expected) >= N
    assert frame["lead_id"].is_unique
    assert set(frame["lead_id"]) == expected
    assert frame[CURSOR_COLUMN].is_monotonic_increasing
    assert connector.stats["tie_stamps"] >= 1  # SAME > page size contacts share one millisecond
    assert len(expected) > 5 * CAP and hub.portal.stats["status_400"] == 0  # never asked past the cap
    assert hub.portal.stats["rate_limited"] == 0  # the limiter kept to 5 searches/s
    assert frame["source"].eq("hubspot").all()


def test_identical_timestamps_beyond_the_cap_are_all_pulled(hub: RunningHubspot,
                                                             connect: Callable[..., HubspotConnector]) -> None:
    connector = connect()
    frame = pull_all(connector, BURST_AT, BURST_AT + timedelta(milliseconds=1))
    assert len(frame) == SAME > CAP
    assert frame["lead_id"].is_unique
    assert set(frame["lead_id"]) == seeded_ids(hub, BURST_AT, BURST_AT + timedelta(milliseconds=1))
    assert frame[CURSOR_COLUMN].eq("2026-10-15T12:00:00.000Z").all()
    assert connector.stats["tie_stamps"] == 1
    assert connector.stats["calls"] == 1 + -(-SAME // 20)  # one query finds the tie, then pages by hs_object_id


def test_burst_window_is_split_and_resumable_from_the_cursor(hub: RunningHubspot,
                                                            connect: Callable[..., HubspotConnector]) -> None:
    lo, hi = BURST_AT - timedelta(hours=1), BURST_AT + timedelta(hours=1)
    first = pull_all(connect(), lo, hi)
    assert set(first["lead_id"]) == seeded_ids(hub, lo, hi) and len(first) > CAP
    # Resume from the last stamp seen (inclusive): only that stamp's contacts come again.
    cursor = datetime.fromisoformat(first[CURSOR_COLUMN].iloc[-1])
    again = pull_all(connect(), cursor, hi)
    assert set(again["lead_id"]) == set(first.loc[first[CURSOR_COLUMN] == first[CURSOR_COLUMN].iloc[-1], "lead_id"])


def test_writing_back_between_pages_loses_nothing(hub: RunningHubspot,
                                                   connect: Callable[..., HubspotConnector]) -> None:
    # What crm_sync does: write each page back before asking for the next. A write moves a contact to a new
    # lastmodifieddate; with `after` offsets that shifts unread contacts past the reader and they are never seen.
    expected = seeded_ids(hub, SEP)  # everything from September on, as the pull starts
    to_write = seeded_ids(hub, SEP, OCT)
    assert len(to_write) > 3 * 20
    connector = connect()
    pulled: list[str] = []
    for page in connector.pull(SEP, None):
        pulled += list(page["lead_id"])
        mine = page[page["lead_id"].isin(to_write)]
        if len(mine):
            changes = pd.DataFrame({"record_id": mine["lead_id"], "city": "Written back"}, dtype="string")
            assert not connector.write(changes).failures.shape[0]
    assert len(pulled) == len(set(pulled))  # the written contacts, now newer than the pull's end, come next run
    assert set(pulled) == expected
    assert all(hub.portal.modified_ms(cid) > int(WRITE_NOW.timestamp() * 1000) for cid in to_write)


def writable_ids(hub: RunningHubspot) -> list[str]:
    """Contacts outside the windows other tests pull with exact expectations (writes move them past WRITE_NOW)."""
    busy = (
        seeded_ids(hub, None, BAD_AT + timedelta(days=1)) | seeded_ids(hub, LO, HI) | seeded_ids(hub, SEP, OCT)
        | seeded_ids(hub, BURST_AT - timedelta(hours=1), BURST_AT + timedelta(hours=1))
    )
    return sorted(set(hub.portal.ids()) - busy, key=int)


def test_pages_hold_at_most_page_size(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    lo, hi = LO, HI
    expected = seeded_ids(hub, lo, hi)
    assert 7 < len(expected) <= CAP
    connector = connect(page_size=7)
    pages = list(connector.pull(lo, hi))
    assert all(1 <= len(p) <= 7 for p in pages) and len(pages) >= -(-len(expected) // 7)
    frame = pd.concat(pages)
    assert frame["lead_id"].is_unique and set(frame["lead_id"]) == expected
    assert connector.stats["calls"] in (len(pages), len(pages) + 1)  # + the query that finds nothing new


def test_sandbox_refuses_paging_past_the_cap_and_oversized_pages(hub: RunningHubspot, clock: FakeClock) -> None:
    headers = {"Authorization": f"Bearer {hub.token}"}
    url = hub.url + "/crm/v3/objects/contacts/search"
    past = requests.post(url, json={"limit": 10, "after": str(CAP)}, headers=headers, timeout=5)
    assert past.status_code == 400 and past.json()["category"] == "VALIDATION_ERROR"
    clock.sleep(1)
    big = requests.post(url, json={"limit": 201}, headers=headers, timeout=5)
    assert big.status_code == 400 and big.json()["category"] == "VALIDATION_ERROR"


def test_rows_are_canonical(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    frame = pull_all(connect(), LO, HI)
    row = frame.iloc[0]
    contact = hub.portal.contact(row["lead_id"], ["email", "hs_email_optout", "hs_lead_status"])
    assert contact is not None
    props = contact["properties"]
    assert row["email"] == props["email"]
    assert row["created_at"] == props["createdate"] and row[CURSOR_COLUMN] == props["lastmodifieddate"]
    assert row["updated_at"] == row[CURSOR_COLUMN]
    assert frame["email_opt_in"].dtype == "boolean"
    optout = frame.set_index("lead_id")["email_opt_in"]
    for cid, value in optout.dropna().items():
        stored = hub.portal.contact(str(cid), ["hs_email_optout"])
        assert stored is not None and stored["properties"]["hs_email_optout"] == ("false" if value else "true")
    assert frame[ERROR_COLUMN].isna().all()


# -- rate limits, retries, faults ----------------------------------------------------------------------------------
def test_window_limiter_computes_the_waits() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(4, 1.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    stamps = []
    for _ in range(10):
        limiter.wait()
        stamps.append(clock.now - start)
        limiter.mark()
        clock.now += 0.1  # each call takes 100 ms
    # Four calls fit at 0.0-0.3; the fifth waits for the first to leave the window (1.0), and so on.
    assert stamps == pytest.approx([0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 1.3, 2.0, 2.1])
    assert clock.sleeps == pytest.approx([0.6, 0.6])
    assert all(sum(1 for s in stamps if t - 1.0 < s <= t) <= 4 for t in stamps)


def test_client_rate_limit_never_trips_the_sandbox(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                                   clock: FakeClock) -> None:
    sent: list[float] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: sent.append(clock.now))
    connector = connect(session=session, page_size=5)
    frame = pull_all(connector, LO, HI)
    assert len(sent) == connector.stats["calls"] > 8
    assert hub.portal.stats["rate_limited"] == 0 and hub.portal.stats["status_429"] == 0
    # Requests take no fake time: five go at once, then the limiter waits exactly one second.
    assert clock.sleeps == [1.0] * ((len(sent) - 1) // 5)
    assert all(sum(1 for s in sent if t - 1.0 < s <= t) <= 5 for t in sent)
    assert len(frame) == len(seeded_ids(hub, LO, HI))


def test_ten_second_limit_is_kept_too(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                      clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub.portal.limits, "calls_per_ten_seconds", 6)
    connector = connect(calls_per_ten_seconds=6, page_size=5)
    frame = pull_all(connector, LO, HI)
    assert connector.stats["calls"] > 6 and hub.portal.stats["rate_limited"] == 0
    assert 9.0 in clock.sleeps  # call 6 waited 1 s for the search limit; call 7 waits for call 1 to age out
    assert set(frame["lead_id"]) == seeded_ids(hub, LO, HI)
    # A client unaware of the rolling limit is told TEN_SECONDLY_ROLLING and waits out the whole window.
    clock.sleep(10)
    naive = connect(page_size=5)
    assert set(pull_all(naive, LO, HI)["lead_id"]) == seeded_ids(hub, LO, HI)
    assert naive.stats["rate_limited"] >= 1 and 10.0 in clock.sleeps[-naive.stats["retries"]:]


def test_sandbox_429_is_backed_off_then_succeeds(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                                clock: FakeClock) -> None:
    # A client that believes in 10 searches/s meets the real 5/s: it gets 429 SECONDLY, waits, and finishes.
    connector = connect(requests_per_second=10, page_size=5)
    lo, hi = LO, HI
    frame = pull_all(connector, lo, hi)
    assert set(frame["lead_id"]) == seeded_ids(hub, lo, hi)
    assert hub.portal.stats["rate_limited"] > 0
    assert connector.stats["rate_limited"] == hub.portal.stats["rate_limited"]
    assert 1.0 in clock.sleeps  # SECONDLY without Retry-After: wait out the one-second window


def test_429_with_retry_after_is_honoured(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                          clock: FakeClock) -> None:
    hub.faults.inject(r"POST .*/search$", "429", times=2, retry_after=7)
    frame = pull_all(connect(), LO, HI)
    assert len(frame) > 0
    assert clock.sleeps[:2] == [7.0, 7.0]


def test_daily_limit_stops_the_source(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    hub.faults.inject(r"/search$", "429", policy="DAILY")
    with pytest.raises(SourceStopped, match="daily"):
        pull_all(connect(), LO)


@pytest.mark.parametrize("kind", ["500", "502", "503", "malformed"])
def test_transient_failures_are_retried_with_backoff(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                                     clock: FakeClock, kind: str) -> None:
    hub.faults.inject(r"/search$", kind, times=2)
    connector = connect(retry=RetryPolicy(attempts=4, base=0.5))
    lo, hi = LO, HI
    frame = pull_all(connector, lo, hi)
    assert set(frame["lead_id"]) == seeded_ids(hub, lo, hi)
    assert clock.sleeps[:2] == [0.5, 1.0]
    assert connector.stats["retries"] == 2


def test_persistent_5xx_gives_up_with_a_clear_error(hub: RunningHubspot,
                                                    connect: Callable[..., HubspotConnector]) -> None:
    hub.faults.inject(r"/search$", "503", times=10)
    connector = connect(retry=RetryPolicy(attempts=3))
    with pytest.raises(HubspotError, match=r"HubSpot.*gave up after 3 attempts \(HTTP 503\)"):
        pull_all(connector, LO)
    assert connector.stats["calls"] == 3


def test_slow_response_times_out_and_is_retried(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    hub.faults.inject(r"/search$", "slow", seconds=0.6)
    connector = connect(timeout=0.2)
    frame = pull_all(connector, LO, HI)
    assert len(frame) > 0 and connector.stats["retries"] == 1


def test_connection_refused_is_retried_then_reported(clock: FakeClock) -> None:
    from leadflow.sandbox.server import free_port

    connector = hubspot_connector(
        HubspotCredentials(base_url=f"http://127.0.0.1:{free_port()}", token=SecretStr("pat-secret-xyz")),
        clock=clock, sleep=clock.sleep, retry=RetryPolicy(attempts=3, base=1.0),
    )
    with pytest.raises(HubspotError, match="ConnectionError") as caught:
        pull_all(connector, None)
    assert clock.sleeps == [1.0, 2.0]
    assert "pat-secret-xyz" not in str(caught.value)


@pytest.mark.parametrize("how", ["wrong_token", "revoked_mid_run"])
def test_401_names_hubspot_and_never_the_token(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                               caplog: pytest.LogCaptureFixture, how: str) -> None:
    secret = "pat-na1-wrong-0000-secret-value" if how == "wrong_token" else hub.token
    if how == "revoked_mid_run":
        hub.faults.inject(r"/search$", "401")
    connector = connect(token=secret)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HubspotAuthError) as caught:
        pull_all(connector, None)
    message = str(caught.value)
    assert message.startswith("HubSpot (HTTP 401 INVALID_AUTHENTICATION)") and "token was refused" in message
    assert connector.stats["calls"] == 1  # not retried
    for text in (message, repr(caught.value), repr(connector), caplog.text, repr(connector._credentials)):
        assert secret not in text


def test_admin_endpoint_injects_faults(hub: RunningHubspot, connect: Callable[..., HubspotConnector],
                                       clock: FakeClock) -> None:
    response = requests.post(hub.url + "/__sandbox/faults", json={"route": "/search$", "kind": "5xx", "status": 504},
                             timeout=5)
    assert response.status_code == 200
    frame = pull_all(connect(), LO, HI)
    assert len(frame) > 0
    assert requests.get(hub.url + "/__sandbox/stats", timeout=5).json()["status_504"] == 1


def test_budget_stops_the_pull_cleanly(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    budget = ApiBudget("hubspot", limit=3)
    connector = connect(budget=budget, page_size=5)
    pages: list[pd.DataFrame] = []
    with pytest.raises(BudgetExhausted, match="hubspot"):
        for page in connector.pull(LO, HI):
            pages.append(page)
    assert budget.used == 3 and connector.stats["calls"] == 3
    assert len(pages) == 3
    assert pd.concat(pages)[CURSOR_COLUMN].is_monotonic_increasing  # the flow can keep the cursor reached


# -- bad payloads --------------------------------------------------------------------------------------------------
def test_bad_payloads_become_pull_errors_not_crashes(hub: RunningHubspot,
                                                     connect: Callable[..., HubspotConnector]) -> None:
    at = int(BAD_AT.timestamp() * 1000)

    def good(k: int) -> dict[str, Any]:
        stamp = f"2026-05-01T00:00:00.00{k}Z"  # the stamp HubSpot filters on is the one it returns
        return {"email": "ok@example.com", "lastmodifieddate": stamp, "createdate": stamp}

    ids = [
        hub.portal.put_raw({**good(0), "firstname": 12345}, modified_ms=at),
        hub.portal.put_raw({**good(1), "hs_lead_status": "SOMETHING_ELSE"}, modified_ms=at + 1),
        hub.portal.put_raw({**good(2), "hs_email_optout": "maybe", "createdate": "not a date"}, modified_ms=at + 2),
        hub.portal.put_raw({"email": "nostamp@example.com", "company": {"name": "Acme"}}, modified_ms=at + 3),
        hub.portal.put_raw({**good(4), "email": "clean@example.com"}, modified_ms=at + 4),
    ]
    frame = pull_all(connect(), BAD_AT, BAD_AT + timedelta(seconds=1)).set_index("lead_id")
    assert list(frame.index) == ids
    errors = frame[ERROR_COLUMN]
    assert "firstname: expected a string, got int" in errors[ids[0]] and frame.loc[ids[0], "first_name"] == "12345"
    assert "hs_lead_status: 'SOMETHING_ELSE' is not one of the property's options" in errors[ids[1]]
    assert "hs_email_optout: expected true/false" in errors[ids[2]] and "createdate: not a datetime" in errors[ids[2]]
    assert frame["email_opt_in"].isna()[ids[2]]
    assert "lastmodifieddate: missing" in errors[ids[3]] and "company: expected a string, got dict" in errors[ids[3]]
    assert frame.loc[ids[3], CURSOR_COLUMN] == "2026-05-01T00:00:00.003Z"  # falls back to updatedAt
    assert pd.isna(errors[ids[4]])


def test_garbage_results_are_rows_with_reasons(connect: Callable[..., HubspotConnector]) -> None:
    frame = connect().to_frame(["not a contact", {"id": None, "properties": []}])
    assert frame[ERROR_COLUMN].str.contains("not an object").all()
    assert "missing contact id" in frame[ERROR_COLUMN].iloc[1]


# -- write-back ----------------------------------------------------------------------------------------------------
def test_write_back_reports_per_record_failures(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    ids = writable_ids(hub)[:106]
    changes = pd.DataFrame({"record_id": ids, "title": pd.Series([f"Title {i}" for i in range(106)], dtype="string")})
    changes["status"] = pd.Series(pd.NA, index=changes.index, dtype="string")
    changes["email_opt_in"] = pd.Series(pd.NA, index=changes.index, dtype="boolean")
    changes.loc[0, "status"] = "CONNECTED"
    changes.loc[1, "status"] = "Hot Lead"  # not an option
    changes.loc[2, "email_opt_in"] = False
    changes["email_opt_in"] = changes["email_opt_in"].astype(object)
    changes.loc[3, "email_opt_in"] = "true"  # as a dead letter brings it back
    changes.loc[len(changes)] = {"record_id": "999999", "title": "Ghost", "status": pd.NA, "email_opt_in": pd.NA}
    connector = connect()
    result = connector.write(changes, override=True)  # nothing pulled first: past the export guard on purpose
    assert result.api_calls == 2  # 107 inputs in batches of at most 100
    failures = result.failures.set_index("record_id")
    assert set(failures.index) == {ids[1], "999999"}
    assert failures.loc[ids[1], "error_code"] == "INVALID_OPTION" and "Hot Lead" in str(failures.loc[ids[1], "message"])
    assert failures.loc["999999", "error_code"] == "OBJECT_NOT_FOUND"
    assert not failures["retryable"].any()
    assert sorted(result.written, key=int) == sorted(set(ids) - {ids[1]}, key=int)
    first = hub.portal.contact(ids[0], ["jobtitle", "hs_lead_status"])
    assert first is not None and first["properties"] == {**first["properties"], "jobtitle": "Title 0",
                                                           "hs_lead_status": "CONNECTED"}
    third = hub.portal.contact(ids[2], ["hs_email_optout"])
    assert third is not None and third["properties"]["hs_email_optout"] == "true"  # opt-in False = opted out
    fourth = hub.portal.contact(ids[3], ["hs_email_optout"])
    assert fourth is not None and fourth["properties"]["hs_email_optout"] == "false"
    unchanged = hub.portal.contact(ids[1], ["jobtitle"])
    assert unchanged is not None and unchanged["properties"]["jobtitle"] != "Title 1"
    assert hub.portal.modified_ms(ids[0]) >= int(WRITE_NOW.timestamp() * 1000)  # a write moves the cursor stamp


def test_dry_run_calls_nothing(hub: RunningHubspot, connect: Callable[..., HubspotConnector]) -> None:
    changes = pd.DataFrame({"record_id": ["101", "102"], "city": ["Paris", None]}, dtype="string")
    connector = connect()
    result = connector.write(changes, dry_run=True)
    assert result.dry_run and result.written == ["101"] and result.api_calls == 0  # 102 has nothing to change
    assert connector.stats["calls"] == 0 and hub.portal.stats["requests"] == 0


def test_write_refuses_unmapped_or_read_only_columns(connect: Callable[..., HubspotConnector]) -> None:
    with pytest.raises(ValueError, match="created_at"):
        connect().write(pd.DataFrame({"record_id": ["101"], "created_at": ["2026-01-01"]}), dry_run=True)


def test_write_stops_cleanly_when_the_budget_is_spent(hub: RunningHubspot,
                                                      connect: Callable[..., HubspotConnector]) -> None:
    ids = writable_ids(hub)[:120]
    changes = pd.DataFrame({"record_id": ids, "city": ["Lyon"] * len(ids)}, dtype="string")
    result = connect(budget=ApiBudget("hubspot", limit=1)).write(changes, override=True)
    assert len(result.written) == 100
    assert set(result.failures["error_code"]) == {"BUDGET_EXHAUSTED"} and result.failures["retryable"].all()
    assert len(result.failures) == 20


# -- sandbox odds and ends -----------------------------------------------------------------------------------------
def test_sandbox_create_get_patch_and_validation(hub: RunningHubspot, clock: FakeClock) -> None:
    headers = {"Authorization": f"Bearer {hub.token}"}
    base = hub.url + "/crm/v3/objects/contacts"
    created = requests.post(base, json={"properties": {"email": "new.lead@example.org", "firstname": "New"}},
                            headers=headers, timeout=5)
    assert created.status_code == 201
    cid = created.json()["id"]
    assert requests.post(base, json={"properties": {"email": "NEW.LEAD@example.org"}}, headers=headers,
                         timeout=5).status_code == 409
    unknown = requests.patch(f"{base}/{cid}", json={"properties": {"favourite_colour": "blue"}}, headers=headers,
                             timeout=5)
    assert unknown.status_code == 400 and "PROPERTY_DOESNT_EXIST" in unknown.json()["message"]
    bad = requests.patch(f"{base}/{cid}", json={"properties": {"lifecyclestage": "prospect"}}, headers=headers,
                         timeout=5)
    assert bad.status_code == 400 and "INVALID_OPTION" in bad.json()["message"]
    ok = requests.patch(f"{base}/{cid}", json={"properties": {"lifecyclestage": "lead"}}, headers=headers, timeout=5)
    assert ok.status_code == 200
    got = requests.get(f"{base}/{cid}?properties=firstname,lifecyclestage", headers=headers, timeout=5).json()
    assert got["properties"]["firstname"] == "New" and got["properties"]["lifecyclestage"] == "lead"
    assert requests.get(f"{base}/{cid}", timeout=5).json()["category"] == "INVALID_AUTHENTICATION"


def test_portal_persists_to_a_json_file(tmp_path: Path) -> None:
    state = tmp_path / "portal.json"
    portal = Portal(state_file=state)
    seed_portal(portal, 12, seed=3)
    again = Portal(state_file=state)
    assert again.ids() == portal.ids()
    assert again.contact("105") == portal.contact("105")


def test_mapping_errors_name_the_yaml_path(tmp_path: Path) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("fields:\n  status: {property: hs_lead_status, type: enumeration}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fields\.status.*options"):
        load_hubspot_mapping(bad)
    bad.write_text("fields:\n  lead_id: {property: hs_object_id}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="set by the connector"):
        load_hubspot_mapping(bad)
    assert "hs_email_optout" in load_hubspot_mapping().properties
