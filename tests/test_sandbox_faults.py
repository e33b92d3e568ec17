"""Fault rates on the Salesforce, HubSpot and Marketo sandboxes: a share of all calls fails the way the real service
fails, reproducibly from a seed, and leadflow's own connectors still pull every lead through them."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from pydantic import SecretStr
from simple_salesforce.exceptions import SalesforceGeneralError
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.connectors.hubspot import HubspotCredentials, hubspot_connector
from leadflow.connectors.marketo import MarketoConnector, MarketoCredentials, MarketoError, marketo_connector
from leadflow.connectors.salesforce import SalesforceConnector, SalesforceCredentials, salesforce_connector
from leadflow.sandbox.faults import HUBSPOT_FAULTS, MARKETO_FAULTS, SALESFORCE_FAULTS, FaultKinds, FaultPlan
from leadflow.sandbox.hubspot import HubspotLimits, RunningHubspot, running_hubspot
from leadflow.sandbox.launch import FaultSettingError, running_sandboxes
from leadflow.sandbox.marketo import RunningMarketo, running_marketo
from leadflow.sandbox.salesforce import DATA, RunningSalesforce
from tests.fakes import FakeClock

LEADS = 1000  # the Salesforce sandbox (tests/conftest.py `sandbox`): five query pages of 200
SEED = 7
COLLECTIONS = f"{DATA}/composite/sobjects"


# -- the plan itself --------------------------------------------------------------------------------------------
def draws(plan: FaultPlan, method: str, path: str, n: int) -> list[str | None]:
    """The kind served to each of `n` identical requests (None: not failed)."""
    return [None if (fault := plan.take(method, path)) is None else fault.kind for _ in range(n)]


def test_rate_zero_serves_nothing_and_rate_one_fails_every_request() -> None:
    plan = FaultPlan(SALESFORCE_FAULTS)
    plan.set_rate(0, ["503", "429"], seed=SEED)
    assert draws(plan, "GET", f"{DATA}/query/", 500) == [None] * 500 and not plan.served
    plan.set_rate(1, ["503", "429"], seed=SEED)
    kinds = draws(plan, "GET", f"{DATA}/query/", 500)
    assert None not in kinds and set(kinds) == {"503", "429"}
    assert plan.served == {"503": kinds.count("503"), "429": kinds.count("429")}
    assert plan.take("GET", "/__sandbox/stats") is None  # admin calls never fail


def test_a_rate_fails_about_that_share_of_calls() -> None:
    plan = FaultPlan(HUBSPOT_FAULTS)
    plan.set_rate(0.1, seed=SEED)
    kinds = draws(plan, "POST", "/crm/v3/objects/contacts/search", 4000)
    failed = sum(k is not None for k in kinds)
    assert abs(failed - 400) < 4 * math.sqrt(4000 * 0.1 * 0.9)  # binomial(4000, 0.1), four standard deviations
    assert set(kinds) - {None} == set(HUBSPOT_FAULTS.default_rate)


def test_a_seed_replays_the_same_faults_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan(MARKETO_FAULTS)
        plan.set_rate(0.3, seed=seed)
        return draws(plan, "GET", "/rest/v1/leads.json", 300)

    assert run(SEED) == run(SEED)
    assert run(SEED) != run(SEED + 1)
    plan = FaultPlan(MARKETO_FAULTS)
    plan.set_rate(0.3, seed=SEED)
    first = draws(plan, "GET", "/rest/v1/leads.json", 300)
    plan.set_rate(0.3, seed=SEED)  # setting the rate again restarts the sequence
    assert draws(plan, "GET", "/rest/v1/leads.json", 300) == first


def test_kinds_only_hit_requests_the_real_service_sends_them_on() -> None:
    sf = FaultPlan(SALESFORCE_FAULTS)
    sf.set_rate(1, ["429", "lock_row"], seed=SEED)
    assert sf.take("POST", "/services/oauth2/token") is None  # no 429 from the token endpoint, no rows to lock
    assert {sf.take("GET", f"{DATA}/limits/").kind for _ in range(50)} == {"429"}  # type: ignore[union-attr]
    assert {sf.take("PATCH", COLLECTIONS).kind for _ in range(50)} == {"429", "lock_row"}  # type: ignore[union-attr]
    mk = FaultPlan(MARKETO_FAULTS)
    mk.set_rate(1, ["606", "615", "604"], seed=SEED)
    assert mk.take("POST", "/identity/oauth/token") is None  # REST error codes come from the REST endpoints
    mk.set_rate(1, ["606", "503"], seed=SEED)
    assert {mk.take("POST", "/identity/oauth/token").kind for _ in range(20)} == {"503"}  # type: ignore[union-attr]


def test_counted_faults_come_first_and_clear_ends_the_rate() -> None:
    plan = FaultPlan(SALESFORCE_FAULTS)
    plan.set_rate(1, ["503"], seed=SEED)
    plan.inject("GET .*/query/", "403", times=2)
    assert draws(plan, "GET", f"{DATA}/query/", 4) == ["403", "403", "503", "503"]
    assert plan.served == {"403": 2, "503": 2}
    plan.clear()
    assert plan.rate is None and draws(plan, "GET", f"{DATA}/query/", 50) == [None] * 50
    assert plan.served == {"403": 2, "503": 2}  # what was served stays counted


@pytest.mark.parametrize(("kinds", "args", "message"), [
    (SALESFORCE_FAULTS, {"rate": -0.1}, "fault rate must be a number from 0 to 1, got -0.1"),
    (SALESFORCE_FAULTS, {"rate": 1.5}, "got 1.5"),
    (SALESFORCE_FAULTS, {"rate": float("nan")}, "got nan"),
    (SALESFORCE_FAULTS, {"rate": "0.1"}, "got '0.1'"),
    (SALESFORCE_FAULTS, {"rate": True}, "got True"),
    (SALESFORCE_FAULTS, {"kinds": []}, "at least one fault kind"),
    (SALESFORCE_FAULTS, {"kinds": "503"}, "must be a list"),
    (SALESFORCE_FAULTS, {"kinds": ["503", "606"]},
     "unknown fault kind '606' for the salesforce sandbox (known kinds: 503, 429, lock_row, slow, 401, 403"),
    (SALESFORCE_FAULTS, {"kinds": ["401"]}, "fault kind '401' cannot be served at a rate by the salesforce sandbox: "
                                             "it expires every session"),
    (SALESFORCE_FAULTS, {"kinds": ["403"]}, "24-hour API allocation spent"),
    (HUBSPOT_FAULTS, {"kinds": ["606"]}, "unknown fault kind '606' for the hubspot sandbox"),
    (HUBSPOT_FAULTS, {"kinds": ["401"]}, "cannot be served at a rate by the hubspot sandbox"),
    (MARKETO_FAULTS, {"kinds": ["607"]}, "cannot be served at a rate by the marketo sandbox: the daily quota"),
    (MARKETO_FAULTS, {"kinds": ["429"]}, "unknown fault kind '429' for the marketo sandbox"),
    (MARKETO_FAULTS, {"route": "GET (unclosed"}, "is not a regular expression"),
    (MARKETO_FAULTS, {"seed": "seven"}, "fault seed must be an integer"),
])
def test_invalid_rates_are_refused_by_name(kinds: FaultKinds, args: dict[str, Any], message: str) -> None:
    plan = FaultPlan(kinds)
    settings = {"rate": 0.1, "kinds": list(kinds.default_rate)} | args
    rate, chosen = settings.pop("rate"), settings.pop("kinds")
    with pytest.raises(ValueError) as refused:
        plan.set_rate(rate, chosen, **settings)
    assert message in str(refused.value)
    assert plan.rate is None  # nothing half-applied


# -- Salesforce ---------------------------------------------------------------------------------------------------
@pytest.fixture
def sfs(sandbox: RunningSalesforce) -> Iterator[tuple[RunningSalesforce, requests.Session, dict[str, str]]]:
    """The sandbox with no faults (none served yet), a session trusting it and a bearer header (the token fetched
    before any rate)."""
    sandbox.faults.clear()
    sandbox.faults.served.clear()
    sandbox.org.set_limits(max_calls=100_000, used=0)
    session = sandbox.session()
    yield sandbox, session, {"Authorization": f"Bearer {sandbox.token()}"}
    sandbox.faults.clear()


def open_leads(sandbox: RunningSalesforce, n: int) -> list[str]:
    leads = sandbox.org.objects["Lead"]
    return sorted(i for i, r in leads.items() if not r.get("IsConverted"))[:n]


def collections_update(session: requests.Session, sandbox: RunningSalesforce, auth: dict[str, str],
                       ids: list[str], title: str) -> requests.Response:
    records = [{"attributes": {"type": "Lead"}, "id": i, "Title": title} for i in ids]
    return session.patch(sandbox.url + COLLECTIONS, json={"allOrNone": False, "records": records}, headers=auth)


def test_salesforce_rate_one_answers_like_salesforce(
    sfs: tuple[RunningSalesforce, requests.Session, dict[str, str]],
) -> None:
    sandbox, session, auth = sfs
    used = sandbox.org.api_used
    sandbox.faults.set_rate(1, ["503"], seed=SEED)
    unavailable = session.get(f"{sandbox.url}{DATA}/limits/", headers=auth)
    assert unavailable.status_code == 503 and unavailable.json() == [
        {"errorCode": "SERVER_UNAVAILABLE", "message": "Service Unavailable"}]
    assert session.post(f"{sandbox.url}/services/oauth2/token", data={}).status_code == 503
    sandbox.faults.set_rate(1, ["429"], seed=SEED)
    throttled = session.get(f"{sandbox.url}{DATA}/limits/", headers=auth)
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    assert [e["errorCode"] for e in throttled.json()] == ["REQUEST_LIMIT_EXCEEDED"]
    assert sandbox.token()  # the token endpoint never answers 429
    assert sandbox.org.api_used == used  # refused calls are not counted against the org's allocation
    sandbox.faults.set_rate(1, ["lock_row"], seed=SEED)
    assert session.get(f"{sandbox.url}{DATA}/limits/", headers=auth).status_code == 200  # nothing to lock
    ids = open_leads(sandbox, 5)
    results = collections_update(session, sandbox, auth, ids, "Locked?").json()
    locked = [r["id"] for r in results if not r["success"]]
    assert len(locked) == 1 and [e["statusCode"] for r in results for e in r["errors"]] == ["UNABLE_TO_LOCK_ROW"]
    assert all(sandbox.org.objects["Lead"][i]["Title"] == "Locked?" for i in ids if i not in locked)
    stats = session.get(f"{sandbox.url}/__sandbox/stats").json()
    assert stats["faults_served"]["503"] == 2 and stats["faults_served"]["429"] == 1
    assert stats["faults_served"]["lock_row"] == 1
    assert stats["fault_rate"] == {"rate": 1.0, "kinds": ["lock_row"], "seed": SEED, "route": ".*"}


def test_salesforce_rate_locks_a_random_record_of_any_collections_update(
    sfs: tuple[RunningSalesforce, requests.Session, dict[str, str]],
) -> None:
    sandbox, session, auth = sfs
    ids = open_leads(sandbox, 5)

    def locked_positions(seed: int) -> list[int]:
        sandbox.faults.set_rate(1, ["lock_row"], seed=seed)
        answers = [collections_update(session, sandbox, auth, ids, f"t{k}").json() for k in range(12)]
        return [next(p for p, r in enumerate(a) if not r["success"]) for a in answers]

    positions = locked_positions(SEED)
    assert locked_positions(SEED) == positions  # reproducible
    assert len(set(positions)) > 1  # not always the first record


def test_salesforce_admin_endpoint_sets_and_refuses_rates(
    sfs: tuple[RunningSalesforce, requests.Session, dict[str, str]],
) -> None:
    sandbox, session, auth = sfs
    url = f"{sandbox.url}/__sandbox/faults"
    answer = session.post(url, json={"rate": 0.25, "kinds": ["503", "slow"], "seed": 3, "route": "GET .*/query/"})
    assert answer.status_code == 200
    assert answer.json()["fault_rate"] == {"rate": 0.25, "kinds": ["503", "slow"], "seed": 3, "route": "GET .*/query/"}
    assert sandbox.faults.rate is not None and sandbox.faults.rate.kinds == ("503", "slow")
    defaults = session.post(url, json={"rate": 0.1})
    assert defaults.json()["fault_rate"]["kinds"] == ["503", "429", "lock_row"]  # the default transient kinds
    for body, words in [({"rate": 0.1, "kinds": ["401"]}, "'401' cannot be served at a rate"),
                        ({"rate": 2}, "from 0 to 1"), ({"rate": 0.1, "kinds": ["nope"]}, "unknown fault kind 'nope'")]:
        refused = session.post(url, json=body)
        assert refused.status_code == 400 and words in refused.json()["message"]
    assert sandbox.faults.rate is not None and sandbox.faults.rate.rate == 0.1  # a refused body changes nothing
    assert session.delete(url).status_code == 204 and sandbox.faults.rate is None


@pytest.fixture
def sf_connect(sandbox: RunningSalesforce) -> Callable[..., SalesforceConnector]:
    def make(**options: Any) -> SalesforceConnector:
        creds = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                      client_secret=sandbox.client_secret)
        options = {"page_size": 200, "backoff": 0.0, "bulk_wait": 0.0, "lookback": timedelta(0)} | options
        return salesforce_connector(creds, session=sandbox.session(), **options)

    return make


def test_salesforce_connector_pulls_and_writes_every_lead_at_a_ten_percent_fault_rate(
    sfs: tuple[RunningSalesforce, requests.Session, dict[str, str]], sf_connect: Callable[..., SalesforceConnector],
) -> None:
    sandbox, _, _ = sfs
    sandbox.faults.set_rate(0.1, seed=SEED)  # the default transient kinds: 503 and lock_row
    everyone = set(sandbox.org.objects["Lead"])
    for _ in range(4):  # several whole pulls, so that the run meets a fair number of faults
        pulled = pd.concat(list(sf_connect().pull(None)), ignore_index=True)
        assert len(pulled) == LEADS and set(pulled["lead_id"]) == everyone
    assert sandbox.faults.served["503"] >= 2  # urllib3 retried them under simple-salesforce
    # Write-back: a locked row is reported as a retryable failure, and written by the next try.
    connector = sf_connect()
    assert len(pd.concat(list(connector.pull(None)))) == LEADS
    ids = open_leads(sandbox, 400)
    todo = pd.DataFrame({"record_id": ids, "title": ["Fault-tolerant"] * len(ids)})
    sandbox.faults.set_rate(0.5, ["lock_row"], seed=SEED)  # Collections updates are few: lock often
    locked = 0
    for _ in range(10):
        result = connector.write(todo)
        failures = result.failures
        assert set(failures["error_code"]) <= {"UNABLE_TO_LOCK_ROW"} and failures["retryable"].all()
        locked += len(failures)
        todo = todo[todo["record_id"].isin(failures["record_id"])]
        if todo.empty:
            break
    assert todo.empty and locked >= 1
    assert all(sandbox.org.objects["Lead"][i]["Title"] == "Fault-tolerant" for i in ids)


def test_salesforce_connector_rides_out_a_429(sfs: tuple[RunningSalesforce, requests.Session, dict[str, str]],
                                              sf_connect: Callable[..., SalesforceConnector]) -> None:
    sandbox, _, _ = sfs
    sandbox.faults.inject("GET .*/query/", "429")
    assert len(pd.concat(list(sf_connect().pull(None)))) == LEADS


# -- HubSpot ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub() -> Iterator[RunningHubspot]:
    with running_hubspot(n=300, seed=SEED, limits=HubspotLimits(max_results_per_query=50)) as running:
        yield running


@pytest.fixture
def hub_clock(hub: RunningHubspot) -> Iterator[FakeClock]:
    fake = FakeClock()
    hub.reset()
    hub.portal.clock = fake
    yield fake
    hub.reset()


def test_hubspot_rate_one_answers_like_hubspot(hub: RunningHubspot, hub_clock: FakeClock) -> None:
    auth = {"Authorization": f"Bearer {hub.token}"}
    contact = hub.portal.ids()[0]
    hub.faults.set_rate(1, ["429"], seed=SEED)
    search = requests.post(f"{hub.url}/crm/v3/objects/contacts/search", json={"limit": 1}, headers=auth, timeout=5)
    assert search.status_code == 429
    body = search.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "SECONDLY" and body["status"] == "error"
    assert body["correlationId"] and body["requestId"] and "X-HubSpot-RateLimit-Max" not in search.headers
    read = requests.get(f"{hub.url}/crm/v3/objects/contacts/{contact}", headers=auth, timeout=5)
    assert read.status_code == 429 and read.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert read.headers["X-HubSpot-RateLimit-Max"] == "190" and read.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert read.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000" and "Retry-After" not in read.headers
    for status in ("502", "503", "504"):
        hub.faults.set_rate(1, [status], seed=SEED)
        failed = requests.get(f"{hub.url}/crm/v3/objects/contacts/{contact}", headers=auth, timeout=5)
        assert failed.status_code == int(status)
        assert {"status", "message", "correlationId", "category"} <= set(failed.json())
    hub.faults.set_rate(0, seed=SEED)
    assert requests.get(f"{hub.url}/crm/v3/objects/contacts/{contact}", headers=auth, timeout=5).status_code == 200
    stats = requests.get(f"{hub.url}/__sandbox/stats", timeout=5).json()
    assert stats["faults_served"] == {"429": 2, "502": 1, "503": 1, "504": 1}
    assert stats["fault_rate"]["rate"] == 0 and stats.get("rate_limited", 0) == 0  # every 429 was a fault


def test_hubspot_connector_pulls_every_contact_at_a_ten_percent_fault_rate(hub: RunningHubspot,
                                                                          hub_clock: FakeClock) -> None:
    hub.faults.set_rate(0.1, seed=SEED)  # 429, 502, 503, 504
    served_before = sum(hub.faults.served.values())
    pulled = []
    for _ in range(3):
        hub_clock.now += 10  # runs apart: a new connector's limiter cannot know the last one's calls
        connector = hubspot_connector(HubspotCredentials(base_url=hub.url, token=SecretStr(hub.token)),
                                      clock=hub_clock, sleep=hub_clock.sleep, max_results_per_query=50,
                                      page_size=20, lookback=timedelta(0))
        frame = pd.concat(list(connector.pull(None)), ignore_index=True)
        assert frame["lead_id"].is_unique and set(frame["lead_id"]) == set(hub.portal.ids())
        pulled.append(connector.stats)
    served = sum(hub.faults.served.values()) - served_before
    assert served >= 3
    assert sum(s["retries"] for s in pulled) == served  # every fault retried once, nothing else failed
    assert sum(s["rate_limited"] for s in pulled) == hub.faults.served["429"]
    assert hub.portal.stats["rate_limited"] == 0  # no real 429: the connector kept to the limits


# -- Marketo ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mk() -> Iterator[RunningMarketo]:
    with running_marketo(n=400, seed=11) as running:
        yield running


@pytest.fixture
def fresh_mk(mk: RunningMarketo) -> Iterator[RunningMarketo]:
    mk.instance.reset()
    yield mk
    mk.instance.reset()


def mk_token(mk: RunningMarketo) -> dict[str, str]:
    reply = requests.post(f"{mk.url}/identity/oauth/token", timeout=5, data={
        "grant_type": "client_credentials", "client_id": mk.client_id, "client_secret": mk.client_secret})
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_marketo_rate_one_answers_like_marketo(fresh_mk: RunningMarketo) -> None:
    mk = fresh_mk
    auth = mk_token(mk)
    url = f"{mk.url}/rest/v1/activities/types.json"
    expected = {"606": "Max rate limit '100' exceeded with in '20' secs", "615": "Concurrent access limit reached",
                "604": "Request time-out"}
    for code, message in expected.items():
        mk.instance.faults.set_rate(1, [code], seed=SEED)
        answer = requests.get(url, headers=auth, timeout=5)
        assert answer.status_code == 200  # Marketo's errors come inside HTTP 200
        body = answer.json()
        assert body["success"] is False and body["errors"] == [{"code": code, "message": message}]
        assert body["requestId"]
        assert mk_token(mk)  # the identity endpoint does not answer REST error codes
    mk.instance.faults.set_rate(1, ["503"], seed=SEED)
    down = requests.get(url, headers=auth, timeout=5)
    assert down.status_code == 503 and down.headers["content-type"].startswith("text/html")
    assert mk.instance.calls_today == 0  # failed calls count against no quota
    stats = requests.get(f"{mk.url}/__sandbox/stats", timeout=5).json()
    assert stats["faults_served"] == {"606": 1, "615": 1, "604": 1, "503": 1}
    refused = requests.post(f"{mk.url}/__sandbox/faults", json={"rate": 0.1, "kinds": ["602"]}, timeout=5)
    assert refused.status_code == 400 and "'602' cannot be served at a rate" in refused.json()["message"]
    assert requests.post(f"{mk.url}/__sandbox/faults", json={"rate": 0.1, "seed": 1}, timeout=5).json()[
        "fault_rate"]["kinds"] == ["606", "615", "604", "503"]


class Sleeps:
    """Marketo backoff in fake time: record the waits and move the connector's clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.now += seconds


def mk_connect(mk: RunningMarketo, session: requests.Session) -> MarketoConnector:
    clock = FakeClock(1_800_000_000.0)
    creds = MarketoCredentials(base_url=mk.url, client_id=mk.client_id, client_secret=SecretStr(mk.client_secret))
    return marketo_connector(creds, session=session, sleep=Sleeps(clock), clock=clock)


def test_marketo_connector_pulls_every_lead_at_a_ten_percent_fault_rate(fresh_mk: RunningMarketo) -> None:
    mk = fresh_mk
    mk.instance.configure(page_size=50, rate_limit=10_000)  # many pages, and no real 606 in fake time
    mk.instance.faults.set_rate(0.1, ["606", "615", "503"], seed=SEED)
    retries = 0
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(2):
            connector = mk_connect(mk, session)
            frame = pd.concat(list(connector.pull(None)), ignore_index=True)
            assert frame["lead_id"].is_unique and len(frame) == len(mk.instance.leads)
            retries += connector.stats["retries"]
    served = sum(mk.instance.faults.served.values())
    assert served >= 3 and retries == served  # every fault retried once, nothing else failed


def test_marketo_connector_rides_out_a_604(fresh_mk: RunningMarketo) -> None:
    fresh_mk.instance.faults.inject(r"GET /rest/v1/leads\.json", "604")
    with requests.Session() as session:
        session.trust_env = False
        frame = pd.concat(list(mk_connect(fresh_mk, session).pull(None)), ignore_index=True)
    assert len(frame) == len(fresh_mk.instance.leads)


# -- starting with faults -----------------------------------------------------------------------------------------
def test_running_sandboxes_sets_each_sandbox_its_fault_rate(tmp_path: Path) -> None:
    faults = {"rate": 0.2, "kinds": ["503", "606"], "seed": 5}
    with running_sandboxes(tmp_path / "all", leads=40, setup=False, faults=faults) as boxes:
        assert boxes.faults == {
            "salesforce": {"rate": 0.2, "kinds": ["503"], "seed": 5, "route": ".*"},
            "marketo": {"rate": 0.2, "kinds": ["503", "606"], "seed": 5, "route": ".*"},
            "hubspot": {"rate": 0.2, "kinds": ["503"], "seed": 5, "route": ".*"},
        }
        sf, hubspot, marketo = (boxes.handles[n] for n in ("salesforce", "hubspot", "marketo"))
        assert marketo.instance.faults.rate.kinds == ("503", "606") and hubspot.faults.rate.kinds == ("503",)
        stats = sf.session().get(f"{sf.url}/__sandbox/stats").json()
        assert stats["fault_rate"]["kinds"] == ["503"] and stats["faults_served"] == {}
    only = {"rate": 0.1, "systems": ["hubspot"]}
    with running_sandboxes(tmp_path / "one", leads=40, systems=("hubspot", "marketo"), faults=only) as boxes:
        assert list(boxes.faults) == ["hubspot"] and boxes.faults["hubspot"]["kinds"] == ["429", "502", "503", "504"]
        assert isinstance(boxes.faults["hubspot"]["seed"], int)  # drawn, so the run can be replayed
        assert boxes.handles["marketo"].instance.faults.rate is None


@pytest.mark.parametrize(("faults", "message"), [
    ({"rate": 0.1, "kinds": ["lock_row"]}, "'lock_row' is not served at a rate by any sandbox started"),
    ({"rate": 0.1, "kinds": ["401"]}, "hubspot refuses it"),
    ({"rate": 3}, "fault rate must be a number from 0 to 1"),
    ({"rate": 0.1, "systems": ["salesforce"]}, "not among the sandboxes started"),
    ({"kinds": ["503"]}, "rate is required"),
    ({"rate": 0.1, "burst": 3}, "unknown setting(s) ['burst']"),
])
def test_running_sandboxes_refuses_bad_fault_settings_before_starting(tmp_path: Path, faults: dict[str, Any],
                                                                      message: str) -> None:
    with pytest.raises(FaultSettingError) as refused, running_sandboxes(
            tmp_path, leads=40, systems=("hubspot", "marketo"), faults=faults):
        pass
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "leadflow.yaml").exists()


runner = CliRunner()


@pytest.mark.parametrize(("args", "message"), [
    (["--fault-rate", "0.1", "--fault-kinds", "503,bogus"], "error: fault kind 'bogus' is not served at a rate"),
    (["--fault-rate", "1.5"], "error: faults: fault rate must be a number from 0 to 1, got 1.5"),
    (["--fault-kinds", "503"], "error: --fault-kinds and --fault-seed need --fault-rate"),
])
def test_cli_refuses_bad_fault_options_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["sandbox", "--folder", str(tmp_path / "box"), *args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.output.strip().splitlines() == [result.output.strip()] and result.output.startswith(message)
    assert not (tmp_path / "box").exists()


def test_cli_serves_the_sandboxes_with_a_fault_rate_until_ctrl_c(tmp_path: Path) -> None:
    command = [str(Path(sys.executable).with_name("leadflow")), "sandbox", "--folder", str(tmp_path / "box"),
               "--leads", "40", "--fault-rate", "0.1", "--fault-kinds", "503,429", "--fault-seed", "11"]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        watchdog = threading.Timer(180, proc.kill)  # a hung start fails the test instead of hanging it
        watchdog.start()
        try:
            lines = []
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.append(line.rstrip("\n"))
                if line.startswith("Stop with Ctrl-C."):
                    proc.send_signal(signal.SIGINT)
                    break
            rest, _ = proc.communicate(timeout=60)
        finally:
            watchdog.cancel()
    lines += rest.splitlines()
    assert proc.returncode == 0, "\n".join(lines)
    assert "  faults       salesforce: 10% of calls fail (503, 429), seed 11" in lines
    assert "  faults       marketo: 10% of calls fail (503), seed 11" in lines
    assert "  faults       hubspot: 10% of calls fail (503, 429), seed 11" in lines
    assert lines[-1] == "stopping sandboxes"
