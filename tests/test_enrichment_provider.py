"""The HTTP firmographics provider against the enrichment emulator over HTTPS, and its state-store cache."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from leadflow.connectors.enrichment import (
    HttpFirmographicsProvider,
    MemoryFirmographicsCache,
    ProviderConnection,
    ProviderResult,
    RateLimiter,
    lookup_firmographics,
    make_provider,
)
from leadflow.pipeline.errors import ConfigError
from leadflow.sandbox.enrichment import RunningEnrichment, running_enrichment
from leadflow.ops.secrets import SecretRef
from leadflow.store import StateStore, alembic_config
from tests.dbs import backend_params, store_url

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEnrichment]:
    with running_enrichment(tmp_path_factory.mktemp("enrich"), seed=7) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults(emulator: RunningEnrichment) -> None:
    emulator.faults.clear()


class FakeTime:
    """A clock that only moves when slept on, and a record of every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _key_file(folder: Path, key: str) -> SecretRef:
    path = folder / "enrichment.secret"
    path.write_text(key + "\n", encoding="utf-8")
    return SecretRef(file=path)


def _provider(
    emulator: RunningEnrichment, tmp_path: Path, *, key: str | None = None, fake: FakeTime | None = None,
    **settings: Any,
) -> HttpFirmographicsProvider:
    settings.setdefault("requests_per_second", 1000.0)
    connection = ProviderConnection(
        base_url=emulator.url, api_key=_key_file(tmp_path, key or emulator.api_key), **settings
    )
    fake = fake or FakeTime()
    return HttpFirmographicsProvider(connection, emulator.session(), clock=fake.clock, sleep=fake.sleep)


def _domains(emulator: RunningEnrichment, known: bool, n: int, prefix: str = "co") -> list[str]:
    found = [d for d in (f"{prefix}{i}.example.com" for i in range(500)) if (emulator.truth(d) is not None) == known]
    return found[:n]


# -- single lookups --------------------------------------------------------------------------------------------------


def test_known_domain_is_ok_with_the_emulators_firmographics(emulator: RunningEnrichment, tmp_path: Path) -> None:
    domain = _domains(emulator, True, 1)[0]
    truth = emulator.truth(domain)
    assert truth is not None and 1 <= truth["employees"] <= 200_000
    # make_provider with the connection's ca_bundle (the way a run builds it) rather than a sandbox session
    connection = ProviderConnection(base_url=emulator.url, api_key=_key_file(tmp_path, emulator.api_key),
                                    ca_bundle=emulator.cert_path)
    with make_provider(connection) as provider:
        result = provider.lookup(domain.upper())
    assert result == ProviderResult(domain, "ok", truth["employees"], truth["annual_revenue"], truth["industry"])
    assert provider.calls_made == 1


def test_unknown_and_free_mail_domains_are_not_found(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider = _provider(emulator, tmp_path)
    unknown = _domains(emulator, False, 1)[0]
    assert emulator.truth("gmail.com") is None
    assert provider.lookup(unknown) == ProviderResult(unknown, "not_found")
    assert provider.lookup("gmail.com").status == "not_found"
    assert provider.lookup("  ").reason == "invalid_domain"
    assert provider.calls_made == 2


def test_wrong_key_is_unauthorized_and_stops_calling(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider = _provider(emulator, tmp_path, key="not-the-key")
    before = emulator.calls
    results = [provider.lookup(d) for d in _domains(emulator, True, 3)]
    assert {(r.status, r.reason) for r in results} == {("error", "unauthorized")}
    assert emulator.calls - before == 1


def test_no_key_at_all_is_unauthorized(emulator: RunningEnrichment) -> None:
    provider = HttpFirmographicsProvider(ProviderConnection(base_url=emulator.url), emulator.session())
    assert provider.lookup("acme.example.com").reason == "unauthorized"


def test_missing_secret_is_a_config_error_at_construction(tmp_path: Path) -> None:
    connection = ProviderConnection(base_url="https://127.0.0.1:1", api_key=SecretRef(file=tmp_path / "nope"))
    with pytest.raises(ConfigError, match="enrichment.provider.api_key"):
        make_provider(connection)


def test_a_500_is_retried_with_backoff_then_succeeds(emulator: RunningEnrichment, tmp_path: Path) -> None:
    fake = FakeTime()
    provider = _provider(emulator, tmp_path, fake=fake)
    domain = _domains(emulator, True, 1)[0]
    emulator.faults.inject("companies/find", "status", status=500)
    before = emulator.calls
    assert provider.lookup(domain).status == "ok"
    assert emulator.calls - before == 2
    assert 0.5 in fake.sleeps


def test_persistent_5xx_gives_up_after_max_retries(emulator: RunningEnrichment, tmp_path: Path) -> None:
    fake = FakeTime()
    provider = _provider(emulator, tmp_path, fake=fake, max_retries=2)
    emulator.faults.inject("companies/find", "status", times=5, status=503)
    before = emulator.calls
    result = provider.lookup(_domains(emulator, True, 1)[0])
    assert (result.status, result.reason) == ("error", "http_503")
    assert emulator.calls - before == 3
    backoffs = [s for s in fake.sleeps if s >= 0.5]
    assert backoffs == [0.5, 1.0]  # exponential


def test_429_honours_retry_after_up_to_a_cap(emulator: RunningEnrichment, tmp_path: Path) -> None:
    fake = FakeTime()
    provider = _provider(emulator, tmp_path, fake=fake)
    emulator.faults.inject("companies/find", "status", status=429, retry_after=2)
    emulator.faults.inject("companies/find", "status", status=429, retry_after=3600)
    assert provider.lookup(_domains(emulator, True, 1)[0]).status == "ok"
    assert [s for s in fake.sleeps if s >= 0.5] == [2.0, 5.0]


def test_4xx_is_not_retried(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider = _provider(emulator, tmp_path)
    emulator.faults.inject("companies/find", "status", times=3, status=422)
    before = emulator.calls
    assert provider.lookup("acme.example.com").reason == "http_422"
    assert emulator.calls - before == 1


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("malformed", "bad_response: not JSON"), ("wrong_types", "bad_response: employees is not an integer")],
)
def test_bad_bodies_are_errors_not_exceptions(
    emulator: RunningEnrichment, tmp_path: Path, kind: str, reason: str
) -> None:
    provider = _provider(emulator, tmp_path)
    emulator.faults.inject("companies/find", kind)
    before = emulator.calls
    result = provider.lookup(_domains(emulator, True, 1)[0])
    assert (result.status, result.reason) == ("error", reason)
    assert emulator.calls - before == 1  # a bad body is not transient


def test_a_slow_provider_times_out(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider = _provider(emulator, tmp_path, timeout_seconds=0.2, max_retries=1)
    domain = _domains(emulator, True, 1)[0]
    emulator.faults.inject("companies/find", "delay", times=2, seconds=1.0)
    result = provider.lookup(domain)
    assert (result.status, result.reason) == ("error", "timeout")
    assert provider.calls_made == 2
    emulator.faults.inject("companies/find", "delay", seconds=1.0)
    assert provider.lookup(domain).status == "ok"  # one slow answer, then the retry gets through


def test_unreachable_provider_is_a_connection_error(tmp_path: Path) -> None:
    from leadflow.sandbox.server import free_port

    fake = FakeTime()
    connection = ProviderConnection(base_url=f"https://127.0.0.1:{free_port()}", max_retries=1)
    provider = HttpFirmographicsProvider(connection, clock=fake.clock, sleep=fake.sleep)
    assert provider.lookup("acme.example.com").reason == "connection_error"
    assert provider.calls_made == 2


def test_budget_is_never_exceeded(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider = _provider(emulator, tmp_path, max_calls_per_run=3)
    domains = _domains(emulator, True, 5)
    before = emulator.calls
    results = [provider.lookup(d) for d in domains]
    assert [r.status for r in results] == ["ok", "ok", "ok", "error", "error"]
    assert {r.reason for r in results[3:]} == {"budget_exhausted"}
    assert emulator.calls - before == 3 and provider.calls_made == 3
    # retries spend the budget too, and stop when it is spent
    provider = _provider(emulator, tmp_path, max_calls_per_run=2, max_retries=5)
    emulator.faults.inject("companies/find", "status", times=5, status=500)
    assert provider.lookup(domains[0]).reason == "budget_exhausted"
    assert provider.calls_made == 2
    zero = _provider(emulator, tmp_path, max_calls_per_run=0)
    before = emulator.calls
    assert zero.lookup(domains[0]).reason == "budget_exhausted" and emulator.calls == before


# -- rate limit ------------------------------------------------------------------------------------------------------


def test_rate_limiter_spaces_requests_with_a_fake_clock() -> None:
    fake = FakeTime()
    limiter = RateLimiter(4.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        limiter.wait()
    assert fake.sleeps == [0.25, 0.25]
    fake.now += 10  # idle time is not banked into a burst
    limiter.wait()
    limiter.wait()
    assert fake.sleeps == [0.25, 0.25, 0.25]
    fake.now += 0.1
    limiter.wait()
    assert fake.sleeps[-1] == pytest.approx(0.15)


def test_provider_requests_go_through_the_rate_limiter(emulator: RunningEnrichment, tmp_path: Path) -> None:
    fake = FakeTime()
    provider = _provider(emulator, tmp_path, fake=fake, requests_per_second=2.0)
    for domain in _domains(emulator, True, 3):
        assert provider.lookup(domain).status == "ok"
    assert fake.sleeps == [0.5, 0.5]


# -- batch lookups and the cache -------------------------------------------------------------------------------------


@pytest.fixture(params=backend_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    with store_url(request.param, tmp_path) as url, StateStore.open(url) as opened:
        yield opened


def test_lookup_frame_shape_and_dedup(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider = _provider(emulator, tmp_path)
    known, unknown = _domains(emulator, True, 1)[0], _domains(emulator, False, 1)[0]
    frame = lookup_firmographics(provider, [known, "", None, known.upper(), unknown, pd.NA], None,  # type: ignore[list-item]
                                 now=NOW, ttl=DAY)
    assert list(frame.columns) == ["domain", "status", "employees", "annual_revenue", "industry", "reason", "from_cache"]
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        "domain": "string", "status": "string", "employees": "Int64", "annual_revenue": "Float64",
        "industry": "string", "reason": "string", "from_cache": "boolean",
    }
    assert frame["domain"].tolist() == [known, unknown]
    assert frame["status"].tolist() == ["ok", "not_found"]
    assert provider.calls_made == 2
    empty = lookup_firmographics(provider, [], None, now=NOW, ttl=DAY)
    assert empty.empty and list(empty.columns) == list(frame.columns)


def test_cache_reuse_expiry_and_errors_not_cached(
    emulator: RunningEnrichment, tmp_path: Path, store: StateStore
) -> None:
    provider = _provider(emulator, tmp_path)
    known = _domains(emulator, True, 3)
    unknown = _domains(emulator, False, 1)
    flaky = known[2]
    emulator.faults.inject(f"domain={flaky}$", "status", times=3, status=500)

    first = lookup_firmographics(provider, known + unknown, store, now=NOW, ttl=DAY)
    assert first.set_index("domain")["status"].to_dict() == {
        known[0]: "ok", known[1]: "ok", flaky: "error", unknown[0]: "not_found"
    }
    assert not first["from_cache"].any()
    calls = provider.calls_made

    # a second run within the TTL: cached answers, and only the errored domain is asked again
    second = lookup_firmographics(provider, known + unknown, store, now=NOW + timedelta(hours=1), ttl=DAY)
    assert provider.calls_made - calls == 1
    assert second.set_index("domain")["from_cache"].to_dict() == {
        known[0]: True, known[1]: True, flaky: False, unknown[0]: True
    }
    truth = emulator.truth(known[0])
    assert truth is not None
    row = second.set_index("domain").loc[known[0]]
    assert (row["employees"], row["annual_revenue"], row["industry"]) == (
        truth["employees"], truth["annual_revenue"], truth["industry"]
    )
    pd.testing.assert_frame_equal(
        first.drop(columns="from_cache").iloc[[0, 1, 3]].reset_index(drop=True),
        second.drop(columns="from_cache").iloc[[0, 1, 3]].reset_index(drop=True),
    )

    # the third run: all four cached, no calls
    calls = provider.calls_made
    third = lookup_firmographics(provider, known + unknown, store, now=NOW + timedelta(hours=2), ttl=DAY)
    assert provider.calls_made == calls and third["from_cache"].all()

    # past the TTL every domain is asked again, and the refreshed answers are cached
    later = NOW + 3 * DAY
    fourth = lookup_firmographics(provider, known + unknown, store, now=later, ttl=DAY)
    assert provider.calls_made - calls == 4 and not fourth["from_cache"].any()
    cached = store.cached_firmographics(provider.name, known + unknown, later)
    assert set(cached) == set(known + unknown)
    # namespaced by provider name
    assert store.cached_firmographics("other", known, NOW) == {}


def test_store_refuses_to_cache_errors_and_naive_times(store: StateStore) -> None:
    with pytest.raises(ValueError, match="only ok/not_found"):
        store.cache_firmographics("http", [ProviderResult("a.com", "error", reason="timeout")], NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.cache_firmographics("http", [ProviderResult("a.com", "not_found")], datetime(2026, 1, 1))


def test_store_cache_chunks_large_in_lists_and_upserts(store: StateStore) -> None:
    domains = [f"d{i}.example.com" for i in range(1200)]
    results = [ProviderResult(d, "ok", i, float(i) * 1e5, "Software") for i, d in enumerate(domains)]
    store.cache_firmographics("http", results + [ProviderResult(domains[0], "not_found")], NOW)
    found = store.cached_firmographics("http", domains + ["missing.example.com"], NOW - DAY)
    assert len(found) == 1200
    assert found[domains[0]] == ProviderResult(domains[0], "not_found")
    assert found[domains[7]] == ProviderResult(domains[7], "ok", 7, 7e5, "Software")
    store.cache_firmographics("http", [ProviderResult(domains[7], "not_found")], NOW + DAY)
    assert store.cached_firmographics("http", [domains[7]], NOW)[domains[7]].status == "not_found"
    assert store.cached_firmographics("http", [domains[8]], NOW + DAY / 2) == {}


def test_memory_cache_works_like_the_store(emulator: RunningEnrichment, tmp_path: Path) -> None:
    provider, cache = _provider(emulator, tmp_path), MemoryFirmographicsCache()
    domains = _domains(emulator, True, 2)
    lookup_firmographics(provider, domains, cache, now=NOW, ttl=DAY)
    again = lookup_firmographics(provider, domains, cache, now=NOW, ttl=DAY)
    assert again["from_cache"].all() and provider.calls_made == 2


@pytest.mark.parametrize("backend", backend_params())
def test_a_store_at_0002_upgrades_to_the_cache(backend: str, tmp_path: Path) -> None:
    with store_url(backend, tmp_path) as url:
        with StateStore.open(url) as store:
            with store.engine.begin() as conn:
                command.downgrade(alembic_config(connection=conn), "0002")
            assert "enrichment_cache" not in sa.inspect(store.engine).get_table_names()
        with StateStore.open(url) as store:
            assert "enrichment_cache" in sa.inspect(store.engine).get_table_names()
            store.cache_firmographics("http", [ProviderResult("a.com", "not_found")], NOW)
            assert store.cached_firmographics("http", ["a.com"], NOW) == {"a.com": ProviderResult("a.com", "not_found")}


# -- secrets ---------------------------------------------------------------------------------------------------------


def test_the_api_key_never_leaks(emulator: RunningEnrichment, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-live-TOPSECRET-0123456789"
    wrong = _provider(emulator, tmp_path, key=secret)
    results = [wrong.lookup("acme.example.com")]
    texts = [repr(wrong), repr(wrong.connection)]
    right = _provider(emulator, tmp_path, timeout_seconds=0.2, max_retries=0)
    for kind, detail in [("status", {"status": 500}), ("malformed", {}), ("wrong_types", {}),
                         ("delay", {"seconds": 1.0}), ("status", {"status": 429})]:
        emulator.faults.inject("companies/find", kind, **detail)
        results.append(right.lookup("acme.example.com"))
    unreachable = HttpFirmographicsProvider(
        ProviderConnection(base_url="https://127.0.0.1:1", api_key=_key_file(tmp_path, secret), max_retries=0)
    )
    results.append(unreachable.lookup("acme.example.com"))
    with pytest.raises(ConfigError) as missing:
        make_provider(ProviderConnection(base_url=emulator.url, api_key=SecretRef(env="LEADFLOW_NO_SUCH_KEY_X")))
    texts.append(str(missing.value))
    reasons = [r.reason or "" for r in results]
    assert reasons == ["unauthorized", "http_500", "bad_response: not JSON", "bad_response: employees is not an "
                       "integer", "timeout", "http_429", "connection_error"]
    joined = "\n".join(texts + [str(r) for r in results] + [caplog.text])
    assert secret not in joined and emulator.api_key not in joined
    assert not any("://" in reason for reason in reasons)


def test_running_sandboxes_can_add_the_provider_to_the_config(tmp_path: Path) -> None:
    import yaml

    from leadflow.sandbox.launch import running_sandboxes

    with running_sandboxes(tmp_path, systems=(), enrichment=True) as boxes:
        document = yaml.safe_load(boxes.config_path.read_text(encoding="utf-8"))
        assert document["systems"] == {}
        connection = ProviderConnection.model_validate(document["enrichment"]["provider"])
        running = boxes.handles["enrichment"]
        domain = _domains(running, True, 1)[0]
        with make_provider(connection) as provider:
            assert provider.lookup(domain).status == "ok"
    with running_sandboxes(tmp_path / "plain", systems=()) as boxes:
        assert "enrichment" not in yaml.safe_load(boxes.config_path.read_text(encoding="utf-8"))
