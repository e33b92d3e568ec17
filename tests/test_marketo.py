"""Marketo connector against the Marketo sandbox over real HTTP: tokens, paging, batching, limits, faults, payloads."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
from pydantic import SecretStr

from leadflow.connectors.base import CURSOR_COLUMN, ApiBudget, BudgetExhausted, CrmWriter, LeadSource, SourceStopped
from leadflow.connectors.marketo import (
    ACTIVITY_COLUMNS,
    PULL_ERROR,
    Backoff,
    MarketoConnector,
    MarketoCredentials,
    MarketoError,
    load_mapping,
    marketo_connector,
)
from leadflow.pipeline.errors import ConfigError
from leadflow.sandbox.marketo import RunningMarketo, running_marketo
from leadflow.sandbox.server import free_port
from leadflow.pipeline.schema import INPUT_COLUMNS
from tests.fakes import FakeClock

N_LEADS = 650
MARKETO_NOW = 1_800_000_000.0
"""Where the fake clock starts: epoch seconds in 2027."""


class Sleeps:
    """An injected sleeper: records the waits asked for and, optionally, advances a fake clock instead of waiting."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.waits: list[float] = []
        self.clock = clock

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.clock is not None:
            self.clock.now += seconds


@pytest.fixture(scope="module")
def mk() -> Iterator[RunningMarketo]:
    with running_marketo(n=N_LEADS, seed=11) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(mk: RunningMarketo) -> None:
    """Each test starts with default limits, no faults, no tokens and no recorded calls."""
    mk.instance.reset()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # no proxies or CA bundles from the environment for 127.0.0.1
        yield s


def connect(mk: RunningMarketo, session: requests.Session, **options: object) -> MarketoConnector:
    """A connector whose pacing and backoff run in fake time: one fake clock, advanced by its sleeps."""
    creds = MarketoCredentials(base_url=mk.url, client_id=mk.client_id, client_secret=SecretStr(mk.client_secret))
    sleep = options.setdefault("sleep", Sleeps())
    fallback = sleep.clock if isinstance(sleep, Sleeps) and sleep.clock else FakeClock(MARKETO_NOW)
    clock = options.setdefault("clock", fallback)
    if isinstance(sleep, Sleeps) and sleep.clock is None:
        sleep.clock = clock  # type: ignore[assignment]
    return marketo_connector(creds, session=session, **options)  # type: ignore[arg-type]


def calls(mk: RunningMarketo, fragment: str) -> int:
    return sum(fragment in c for c in mk.instance.calls)


def test_protocols_and_secret_hygiene(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session)
    assert isinstance(connector, LeadSource) and isinstance(connector, CrmWriter)
    assert mk.client_secret not in repr(connector) + repr(connector.credentials) + repr(mk) + repr(mk.instance)
    bad = MarketoCredentials(base_url=mk.url, client_id=mk.client_id, client_secret=SecretStr("wrong-secret-123"))
    with pytest.raises(MarketoError) as refused:
        next(marketo_connector(bad, session=session).pull(None))
    assert "wrong-secret-123" not in str(refused.value) and "401" in str(refused.value)
    # Nothing listens here: retried with backoff, then an error that does not leak the secret (it is in the URL).
    sleeps = Sleeps()
    gone = MarketoCredentials(
        base_url=f"http://127.0.0.1:{free_port()}", client_id="x", client_secret=SecretStr("s3cr3t-value")
    )
    with pytest.raises(MarketoError) as down:
        next(marketo_connector(gone, session=session, sleep=sleeps, backoff=Backoff(attempts=3)).pull(None))
    assert "s3cr3t-value" not in str(down.value) and "ConnectionError" in str(down.value)
    assert sleeps.waits == [2.0, 4.0]


def test_token_fetched_once_then_refreshed_on_601(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session)
    connector.activity_types()
    assert connector.activity_types()[100001] == "Request Demo"  # cached: one call
    mk.instance.revoke_tokens()  # the next call meets 601 "Access token invalid"
    pages = list(connector.pull(datetime(2026, 10, 20, tzinfo=UTC)))
    assert pages and calls(mk, "/identity/oauth/token") == 2
    assert calls(mk, "types.json") == 1


def test_expired_token_602_refreshed(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session)
    connector.activity_types()
    mk.instance.expire_tokens()
    assert list(connector.pull(datetime(2026, 10, 25, tzinfo=UTC)))
    assert calls(mk, "/identity/oauth/token") == 2
    # With the connector's clock past the token's lifetime it refreshes before Marketo has to say 602.
    clock = FakeClock(MARKETO_NOW)
    connector = connect(mk, session, clock=clock)
    connector.activity_types()
    clock.now += 3600
    list(connector.pull(datetime(2026, 10, 30, tzinfo=UTC)))
    assert calls(mk, "/identity/oauth/token") == 4
    assert mk.instance.calls.count("GET /rest/v1/activities/types.json") == 2
    # A token that fails again right after a refresh is not refreshed forever.
    mk.instance.faults.inject(r"GET /rest/v1/activities/pagingtoken", "601", times=2)
    with pytest.raises(MarketoError, match="601"):
        next(connector.pull(None))


def test_admin_endpoint_injects_faults(mk: RunningMarketo, session: requests.Session) -> None:
    fault = {"route": "pagingtoken", "kind": "602", "times": 1}
    session.post(f"{mk.url}/__sandbox/faults", json=fault).raise_for_status()
    connector = connect(mk, session)
    assert list(connector.pull(datetime(2026, 10, 25, tzinfo=UTC)))
    assert calls(mk, "/identity/oauth/token") == 2 and not mk.instance.faults.pending()


def test_full_pull_pages_and_lookup_batches(mk: RunningMarketo, session: requests.Session) -> None:
    mk.instance.configure(page_size=100, rate_limit=1000)
    connector = connect(mk, session)
    pages = list(connector.pull(None))
    frame = pd.concat(pages, ignore_index=True)
    assert len(frame) == len(mk.instance.leads) and frame["lead_id"].is_unique
    assert calls(mk, "leadchanges.json") >= 3 and calls(mk, "GET /rest/v1/activities.json") >= 3
    # Lookups: ≤ 300 ids per call, as Marketo demands, and full batches while there are enough.
    assert max(mk.instance.lookup_sizes) == 300 and sum(mk.instance.lookup_sizes) == len(frame)
    assert [len(p) for p in pages] == mk.instance.lookup_sizes
    assert list(frame.columns[: len(INPUT_COLUMNS)]) == list(INPUT_COLUMNS)
    assert (frame["source"] == "marketo").all() and frame["lead_id"].str.match(r"^mkto-\d+$").all()
    assert frame[CURSOR_COLUMN].is_monotonic_increasing and frame[PULL_ERROR].isna().all()
    assert frame["email_opt_in"].isin([False]).sum() > 0 and not frame["email_opt_in"].isin([True]).any()
    # The true creation is the first form fill: earlier than Marketo's createdAt for imported leads.
    stored = frame["lead_id"].str.removeprefix("mkto-").astype(int).map(
        {i: lead["createdAt"] for i, lead in mk.instance.leads.items()})
    assert (frame["created_at"] <= stored).all() and (frame["created_at"] < stored).sum() > 50
    assert connector.budget.used == len(mk.instance.calls)  # every call counted, token call included


def test_sandbox_refuses_more_than_300_ids(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session)
    with pytest.raises(MarketoError) as refused:
        connector._call("GET", "/rest/v1/leads.json",
                        params={"filterType": "id", "filterValues": ",".join(map(str, range(1, 302)))})
    assert refused.value.code == "1003"
    with pytest.raises(ValueError):
        connect(mk, session, batch_size=301)


def test_window_and_incremental_cursor(mk: RunningMarketo, session: requests.Session) -> None:
    since, until = datetime(2026, 10, 10, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC)
    frame = pd.concat(list(connect(mk, session).pull(since, until)), ignore_index=True)
    assert len(frame) > 0
    assert frame[CURSOR_COLUMN].between("2026-10-10T00:00:00Z", "2026-10-19T23:59:59Z").all()
    expected = {f"mkto-{i}" for i, lead in mk.instance.leads.items()
                if "2026-10-10" <= lead["updatedAt"] < "2026-10-20"}
    assert set(frame["lead_id"]) == expected


@pytest.mark.parametrize("code", ["606", "615"])
def test_throttling_backs_off_then_succeeds(mk: RunningMarketo, session: requests.Session, code: str) -> None:
    mk.instance.faults.inject(r"GET /rest/v1/leads\.json", code, times=3)
    sleeps = Sleeps()
    pages = list(connect(mk, session, sleep=sleeps).pull(datetime(2026, 10, 20, tzinfo=UTC)))
    assert pages and sleeps.waits == [2.0, 4.0, 8.0]  # exponential, explicit, never a real wait
    # Throttled for longer than our patience: a clean stop, not a crash.
    mk.instance.faults.inject(r"pagingtoken", code, times=5)
    with pytest.raises(SourceStopped, match=f"still throttled.*{code}"):
        next(connect(mk, session, backoff=Backoff(attempts=3)).pull(None))


def test_server_errors_retried(mk: RunningMarketo, session: requests.Session) -> None:
    mk.instance.faults.inject(r"leadchanges", "503", times=1)
    mk.instance.faults.inject(r"GET /rest/v1/leads\.json", "500", times=1)
    sleeps = Sleeps()
    assert list(connect(mk, session, sleep=sleeps).pull(datetime(2026, 10, 20, tzinfo=UTC)))
    assert sleeps.waits == [2.0, 2.0]
    mk.instance.faults.inject(r"pagingtoken", "502", times=10)
    before = calls(mk, "pagingtoken")
    with pytest.raises(MarketoError, match="HTTP 502"):
        next(connect(mk, session, backoff=Backoff(attempts=4)).pull(None))
    assert calls(mk, "pagingtoken") - before == 4


def test_daily_quota_607_stops_cleanly_after_earlier_pages(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session, batch_size=100)
    pulled = connector.pull(None)
    first = next(pulled)
    # The real quota: everything used so far, and not one call more.
    mk.instance.configure(daily_quota=mk.instance.calls_today)
    with pytest.raises(SourceStopped, match="607") as stopped:
        next(pulled)
    assert not isinstance(stopped.value, BudgetExhausted)
    assert len(first) == 100 and first[PULL_ERROR].isna().all()  # the yielded page stays valid
    # An injected 607 behaves the same.
    mk.instance.reset()
    mk.instance.faults.inject(r"activities\.json", "607")
    with pytest.raises(SourceStopped):
        next(connect(mk, session).pull(None))


def test_rate_limit_enforced_by_sandbox(mk: RunningMarketo, session: requests.Session) -> None:
    clock = FakeClock(MARKETO_NOW)
    mk.instance.configure(rate_limit=5, rate_window=20.0, clock=clock, page_size=100)
    token = session.get(f"{mk.url}/identity/oauth/token", params={
        "grant_type": "client_credentials", "client_id": mk.client_id, "client_secret": mk.client_secret}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    codes = [session.get(f"{mk.url}/rest/v1/activities/types.json", headers=headers).json().get("errors", [{}])[0]
             .get("code") for _ in range(6)]
    assert codes == [None] * 5 + ["606"]
    clock.now += 20.0
    assert session.get(f"{mk.url}/rest/v1/activities/types.json", headers=headers).json()["success"] is True
    # Concurrency: a call still in flight counts against the limit until released.
    mk.instance.configure(max_concurrent=1)
    clock.now += 20.0
    mk.instance.admit()
    try:
        assert session.get(f"{mk.url}/rest/v1/activities/types.json", headers=headers).json()["errors"][0]["code"] \
            == "615"
    finally:
        mk.instance.release()
    mk.instance.configure(max_concurrent=10)
    # The connector's backoff (advancing the same fake clock) gets a long pull through a 5-per-20-s limit.
    clock.now += 20.0
    sleeps = Sleeps(clock)
    frame = pd.concat(list(connect(mk, session, sleep=sleeps).pull(None)), ignore_index=True)
    assert len(frame) == len(mk.instance.leads)
    assert len(sleeps.waits) > 3 and max(sleeps.waits) >= 8.0


def test_budget_stops_the_pull(mk: RunningMarketo, session: requests.Session) -> None:
    budget = ApiBudget("marketo", limit=4)
    with pytest.raises(BudgetExhausted):
        list(connect(mk, session, budget=budget).pull(None))
    assert budget.used == 4 and len(mk.instance.calls) == 4


def test_bad_payload_rows_carry_pull_error(mk: RunningMarketo, session: requests.Session) -> None:
    leads = mk.instance.leads
    recent = sorted(leads, key=lambda i: leads[i]["updatedAt"])[-3:]
    saved = {i: copy.deepcopy(leads[i]) for i in recent}
    try:
        leads[recent[0]].update(updatedAt=12345, email=["not", "a", "string"])
        leads[recent[1]].update(unsubscribed="maybe", phone=4155550100)
        leads[recent[2]].pop("id")
        frame = pd.concat(list(connect(mk, session).pull(datetime(2026, 10, 25, tzinfo=UTC))), ignore_index=True)
    finally:
        leads.update(saved)
    errors = frame.set_index(frame["lead_id"].fillna("?"))[PULL_ERROR]
    assert "updatedAt" in errors[f"mkto-{recent[0]}"] and "email" in errors[f"mkto-{recent[0]}"]
    assert "unsubscribed" in errors[f"mkto-{recent[1]}"]
    assert "id" in errors["?"]
    phone = frame.loc[frame["lead_id"] == f"mkto-{recent[1]}", "phone"].iloc[0]
    assert phone == "4155550100"  # numbers are fine as text
    assert frame[PULL_ERROR].notna().sum() == 3


def test_activities_pull(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session)
    since, until = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    frame = pd.concat(list(connector.activities(since, until)), ignore_index=True)
    assert list(frame.columns) == list(ACTIVITY_COLUMNS)
    assert frame["activity_date"].between("2026-09-01T00:00:00Z", "2026-09-30T23:59:59Z").all()
    assert {"Request Demo", "Attend Webinar", "Visit Webpage", "Fill Out Form"} <= set(frame["activity_type"])
    assert "New Lead" not in set(frame["activity_type"]) and frame[PULL_ERROR].isna().all()
    visits = frame[frame["activity_type"] == "Visit Webpage"]
    assert (visits["primary_attribute"] == "/pricing").any()
    assert "Webpage URL" in json.loads(visits["attributes"].iloc[0])
    # A malformed activity becomes a row with a reason, not a crash.
    victim = next(a for a in mk.instance.activities if a["activityDate"] >= "2026-09-15" and a["activityTypeId"] == 1)
    saved = copy.deepcopy(victim)
    try:
        victim.update(leadId="abc", attributes="oops")
        bad = pd.concat(list(connector.activities(since, until, types=[1])), ignore_index=True)
    finally:
        victim.clear()
        victim.update(saved)
    error = bad.loc[bad["activity_id"] == str(saved["id"]), PULL_ERROR].iloc[0]
    assert "leadId" in error and "attributes" in error and bad[PULL_ERROR].notna().sum() == 1
    demos = list(connector.activities(since, until, types=["Request Demo"]))
    assert pd.concat(demos)["activity_type"].eq("Request Demo").all()
    with pytest.raises(MarketoError, match="unknown activity type"):
        next(connector.activities(since, types=["Juggle"]))


def test_write_back(mk: RunningMarketo, session: requests.Session) -> None:
    connector = connect(mk, session)
    target = min(mk.instance.leads)
    changes = pd.DataFrame({
        "record_id": [f"mkto-{target}", "mkto-999999", None, "nonsense"],
        "title": ["Chief Revenue Officer", "VP Sales", "Analyst", pd.NA],
        "email": [pd.NA, pd.NA, "new.person@example.org", pd.NA],
        "email_opt_in": pd.array([False, pd.NA, pd.NA, pd.NA], dtype="boolean"),
    })
    dry = connector.write(changes, dry_run=True)
    assert dry.dry_run and dry.api_calls == 0 and not mk.instance.calls
    before = datetime.now(UTC).replace(microsecond=0)
    result = connector.write(changes)
    assert mk.instance.leads[target]["title"] == "Chief Revenue Officer" and mk.instance.leads[target]["unsubscribed"]
    assert f"mkto-{target}" in result.written and len(result.written) == 2
    assert set(result.failures["error_code"]) == {"1004", "invalid_id"}
    assert result.api_calls == 3  # token + one call per lookup field
    created = [i for i, lead in mk.instance.leads.items() if lead.get("email") == "new.person@example.org"]
    assert f"mkto-{created[0]}" in result.written
    # The changes come back on the next incremental pull.
    pulled = pd.concat(list(connector.pull(before)), ignore_index=True)
    assert {f"mkto-{target}", f"mkto-{created[0]}"} <= set(pulled["lead_id"])


def test_sandbox_persists_to_json(tmp_path: Path, session: requests.Session) -> None:
    state = tmp_path / "marketo.json"
    with running_marketo(n=20, seed=3, persist_to=state) as first:
        connector = connect(first, session)
        result = connector.write(pd.DataFrame({"record_id": [None], "email": ["kept@example.org"]}))
        assert len(result.written) == 1
    with running_marketo(persist_to=state) as again:
        assert len(again.instance.leads) == 21
        frame = pd.concat(list(connect(again, session).pull(None)), ignore_index=True)
        assert "kept@example.org" in set(frame["email"])


def test_mapping_yaml_validated(tmp_path: Path) -> None:
    assert load_mapping().fields["email_opt_in"].source == "unsubscribed"
    bad = tmp_path / "mapping.yaml"
    bad.write_text("fields:\n  updated_at: {from: updatedAt, type: datetime}\n  shoe_size: {from: shoeSize}\n")
    with pytest.raises(ConfigError) as error:
        load_mapping(bad)
    assert "fields.shoe_size" in str(error.value)
    bad.write_text("fields:\n  email: {from: email}\n")
    with pytest.raises(ConfigError, match="updated_at"):
        load_mapping(bad)
