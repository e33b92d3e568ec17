"""The connectors' one retry helper (`leadflow.connectors.http`) and their one rate limiter, in fake time.

Nothing here sleeps: the loop and the limiter take an injected sleep and clock; urllib3's waits are recorded by
replacing the `time.sleep` it calls.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from requests.adapters import HTTPAdapter
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry

from leadflow.connectors.http import (
    DONE,
    FAIL,
    Fail,
    RetriesExhausted,
    RetryLater,
    RetryPolicy,
    Transient,
    parse_retry_after,
    transient_only,
    urllib3_retry,
    with_retries,
)
from leadflow.connectors.ratelimit import WindowLimiter
from leadflow.pipeline.errors import LeadflowError
from tests.fakes import FakeClock

NOW = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)


# -- Retry-After ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), (" 2 ", 2.0), ("0", 0.0), ("2.5", 2.5), ("120", 120.0)])
def test_retry_after_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize("value", [
    "Wed, 21 Oct 2015 07:28:00 GMT",  # IMF-fixdate, the preferred form (RFC 9110 §5.6.7)
    "Wednesday, 21-Oct-15 07:28:00 GMT",  # obsolete RFC 850 form
    "Wed Oct 21 07:28:00 2015",  # obsolete asctime form (GMT by definition)
])
def test_retry_after_http_date_counts_from_now(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 30.0
    assert parse_retry_after(value, now=NOW + timedelta(seconds=20)) == 10.0
    assert parse_retry_after(value, now=NOW + timedelta(hours=1)) == 0.0  # already past: go now


def test_retry_after_is_capped_in_both_forms() -> None:
    assert parse_retry_after("3600", cap=5.0) == 5.0
    assert parse_retry_after("3", cap=5.0) == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 08:27:30 GMT", cap=60.0, now=NOW) == 60.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "nan", "inf", "5 s", "Wed, 99 Foo 2015 07:28:00 GMT"])
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, cap=10.0, now=NOW) is None


# -- the policy -------------------------------------------------------------------------------------------------------
def test_policy_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(attempts=8, base=0.5, factor=2.0, cap=4.0)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert RetryPolicy(base=2.0, factor=3.0, cap=100.0).delay(2) == 18.0
    assert policy.delay(5000) == 4.0  # no OverflowError however long it went on


def test_policy_server_wait_replaces_the_backoff_up_to_its_cap() -> None:
    policy = RetryPolicy(base=0.5, retry_after_cap=5.0)
    assert policy.wait(3) == 4.0
    assert policy.wait(3, 2.0) == 2.0  # shorter than the backoff: the server knows when its window reopens
    assert policy.wait(0, 3600.0) == 5.0
    assert policy.wait(0, -1.0) == 0.0
    assert policy.wait(1, float("nan")) == 1.0


def test_jitter_is_off_by_default_and_draws_below_the_backoff_when_on() -> None:
    assert RetryPolicy().jitter is False
    jittery = RetryPolicy(base=1.0, jitter=True)
    assert jittery.delay(2, random=lambda: 0.25) == 1.0
    assert jittery.wait(2, 7.0, random=lambda: 0.25) == 7.0  # a server's wait is not jittered


@pytest.mark.parametrize("options", [{"attempts": 0}, {"base": -1.0}, {"cap": -1.0}, {"retry_after_cap": -1.0},
                                     {"factor": 0.5}])
def test_policy_refuses_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)


# -- the loop ---------------------------------------------------------------------------------------------------------
class Script:
    """A call that plays back outcomes: values are returned, exceptions raised; counts its calls."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> Any:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def test_done_on_the_first_try_returns_without_waiting() -> None:
    clock, call = FakeClock(), Script("answer")
    assert with_retries(call, policy=RetryPolicy(), sleep=clock.sleep) == "answer"
    assert call.calls == 1 and clock.sleeps == []


def test_transient_failures_are_retried_with_backoff_then_succeed() -> None:
    clock, retries = FakeClock(), []
    call = Script(Transient("HTTP 503"), Transient("timeout"), "answer")
    result = with_retries(call, policy=RetryPolicy(base=0.5), sleep=clock.sleep,
                          on_retry=lambda n, verdict, delay: retries.append((n, verdict.reason, delay)))
    assert result == "answer" and call.calls == 3
    assert clock.sleeps == [0.5, 1.0]
    assert retries == [(1, "HTTP 503", 0.5), (2, "timeout", 1.0)]


def test_a_server_given_delay_is_waited_capped() -> None:
    clock = FakeClock()
    call = Script(Transient("429", after=7.0), Transient("429", after=3600.0), "answer")
    assert with_retries(call, policy=RetryPolicy(retry_after_cap=60.0), sleep=clock.sleep) == "answer"
    assert clock.sleeps == [7.0, 60.0]


def test_classify_decides_on_results() -> None:
    """A result can be retried (a 503 answer) and an answer can fail (a 401): `classify` says which."""
    clock = FakeClock()

    def classify(outcome: object) -> Any:
        if outcome == 503:
            return RetryLater("HTTP 503", after=None)
        if outcome == 401:
            return Fail(PermissionError("refused"))
        return transient_only(outcome)

    assert with_retries(Script(503, 503, 200), policy=RetryPolicy(base=1.0), classify=classify,
                        sleep=clock.sleep) == 200
    assert clock.sleeps == [1.0, 2.0]
    refused = Script(503, 401, 200)
    with pytest.raises(PermissionError, match="refused"):
        with_retries(refused, policy=RetryPolicy(), classify=classify, sleep=clock.sleep)
    assert refused.calls == 2  # not retried past the 401


def test_errors_that_are_not_transient_are_raised_at_once() -> None:
    clock = FakeClock()
    call = Script(ValueError("a transform bug"), "never")
    with pytest.raises(ValueError, match="a transform bug"):
        with_retries(call, policy=RetryPolicy(), sleep=clock.sleep)
    assert call.calls == 1 and clock.sleeps == []
    # FAIL raises the call's own exception; DONE on an exception raises it too (an exception is never a result)
    for verdict in (FAIL, DONE):
        with pytest.raises(KeyError):
            with_retries(Script(KeyError("x")), policy=RetryPolicy(), classify=lambda _, v=verdict: v,
                         sleep=clock.sleep)
    with pytest.raises(TypeError, match="without an error"):
        with_retries(Script("value"), policy=RetryPolicy(), classify=lambda _: FAIL, sleep=clock.sleep)


def test_classify_may_raise_and_interrupts_are_never_swallowed() -> None:
    clock = FakeClock()

    def strict(outcome: object) -> Any:
        raise LookupError(f"cannot place {outcome!r}")

    with pytest.raises(LookupError, match="cannot place 'x'"):
        with_retries(Script("x"), policy=RetryPolicy(), classify=strict, sleep=clock.sleep)
    interrupted = Script(KeyboardInterrupt(), "never")
    with pytest.raises(KeyboardInterrupt):
        with_retries(interrupted, policy=RetryPolicy(), classify=lambda _: RetryLater("?"), sleep=clock.sleep)
    assert interrupted.calls == 1


def test_attempts_exhausted_raise_the_last_error() -> None:
    clock, last = FakeClock(), Transient("HTTP 502")
    call = Script(Transient("HTTP 503"), Transient("timeout"), last, "too late")
    with pytest.raises(RetriesExhausted) as caught:
        with_retries(call, policy=RetryPolicy(attempts=3, base=2.0), sleep=clock.sleep)
    error = caught.value
    assert call.calls == 3 and clock.sleeps == [2.0, 4.0]  # no wait after the last try
    assert (error.attempts, error.reason, error.last) == (3, "HTTP 502", last)
    assert error.__cause__ is last
    assert str(error) == "gave up after 3 attempts (HTTP 502)" and isinstance(error, LeadflowError)
    # Retried results: the last result is kept; there is no exception to chain
    with pytest.raises(RetriesExhausted) as results:
        with_retries(Script(503), policy=RetryPolicy(attempts=2), classify=lambda o: RetryLater(f"HTTP {o}"),
                     sleep=clock.sleep)
    assert results.value.last == 503 and results.value.__cause__ is None
    # One attempt: no retry at all
    once = Script(Transient("timeout"))
    with pytest.raises(RetriesExhausted):
        with_retries(once, policy=RetryPolicy(attempts=1), sleep=clock.sleep)
    assert once.calls == 1


# -- the limiter ------------------------------------------------------------------------------------------------------
def test_window_limiter_paces_a_burst_with_a_fake_clock() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(3, 10.0, clock=clock, sleep=clock.sleep)
    start, stamps = clock.now, []
    for _ in range(7):
        limiter.wait()
        stamps.append(clock.now - start)
        clock.now += 1.0  # each call takes a second; counted from its start (no mark)
    assert stamps == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 20.0]
    assert clock.sleeps == [7.0, 7.0]
    assert all(sum(1 for s in stamps if t - 10.0 < s <= t) <= 3 for t in stamps)


def test_mark_counts_a_slow_call_from_its_answer() -> None:
    clock = FakeClock()
    limiter = WindowLimiter(1, 1.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 0.5  # the call took half a second: the server may have counted it at its end
    limiter.mark()
    assert limiter.wait() == 1.0 and clock.sleeps == [1.0]


def test_spaced_limiter_does_not_bank_idle_time() -> None:
    clock = FakeClock()
    limiter = WindowLimiter.spaced(4.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.wait()
    assert clock.sleeps == [0.25, 0.25]
    clock.now += 10
    limiter.wait()
    limiter.wait()
    assert clock.sleeps == [0.25, 0.25, 0.25]
    clock.now += 0.1
    assert limiter.wait() == pytest.approx(0.15)


def test_limiter_waits_once_even_when_the_clock_rounds_short() -> None:
    """A clock that comes back a hair early from a sleep must not cause a second, tiny sleep (or a spin)."""
    clock = FakeClock()

    def short_sleep(seconds: float) -> None:
        clock.sleeps.append(seconds)
        clock.now += seconds - 1e-9

    limiter = WindowLimiter(2, 1.0, clock=clock, sleep=short_sleep)
    for _ in range(6):
        limiter.wait()
    assert clock.sleeps == pytest.approx([1.0, 1.0])
    assert len(clock.sleeps) == 2


def test_limiter_is_shared_safely_between_threads() -> None:
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleeps.append(seconds)
            clock.now += seconds

    limiter = WindowLimiter(5, 1.0, clock=clock, sleep=sleep)
    done: list[int] = []

    def worker() -> None:
        for _ in range(10):
            limiter.wait()
            with lock:
                done.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 40 calls, 5 per second, time moving only when one sleeps: exactly 7 one-second waits, whatever the
    # interleaving; two threads let into one slot would show as fewer.
    assert len(done) == 40
    assert clock.sleeps == [1.0] * 7


def test_limiter_refuses_nonsense() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        WindowLimiter(0, 1.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError):
        WindowLimiter(1, 0.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(ValueError, match="rate must be positive"):
        WindowLimiter.spaced(0.0, clock=clock, sleep=clock.sleep)


# -- urllib3 ----------------------------------------------------------------------------------------------------------
def _failed(retry: Retry, status: int = 503, headers: dict[str, str] | None = None) -> Retry:
    return retry.increment(method="GET", url="/x", response=HTTPResponse(status=status, headers=headers or {}))


def test_urllib3_retry_carries_the_policy_numbers() -> None:
    policy = RetryPolicy(attempts=4, base=0.5, cap=1.5, retry_after_cap=60.0)
    retry = urllib3_retry(policy, (429, 503))
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, 3, 3, 3)
    assert retry.status_forcelist == {429, 503} and retry.raise_on_status is False
    assert retry.allowed_methods == Retry.DEFAULT_ALLOWED_METHODS  # idempotent verbs unless the caller says so
    assert urllib3_retry(policy, (503,), methods=None).allowed_methods is None
    waits = []
    for _ in range(3):
        retry = _failed(retry)
        waits.append(retry.get_backoff_time())
    assert waits == [0.5, 1.0, 1.5]  # the policy's backoff from the first retry, capped
    assert retry.total == 0


def test_urllib3_retry_after_is_capped_and_garbage_falls_back() -> None:
    retry = urllib3_retry(RetryPolicy(retry_after_cap=60.0), (429,))
    assert retry.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "7"})) == 7.0
    assert retry.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "86400"})) == 60.0
    assert retry.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "later"})) is None
    assert retry.get_retry_after(HTTPResponse(status=429)) is None


class _Flaky(BaseHTTPRequestHandler):
    """Answers the queued (status, Retry-After) pairs in turn, then 200."""

    script: list[tuple[int, str | None]] = []
    seen = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen += 1
        status, retry_after = self.script.pop(0) if self.script else (200, None)
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Flaky.script, _Flaky.seen = [], 0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x"
    finally:
        server.shutdown()
        server.server_close()


def test_a_mounted_urllib3_retry_waits_as_the_policy_says(flaky: str, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", waits.append)
    with requests.Session() as session:
        session.trust_env = False
        policy = RetryPolicy(attempts=4, base=0.5, retry_after_cap=30.0)
        session.mount("http://", HTTPAdapter(max_retries=urllib3_retry(policy, (429, 503))))
        _Flaky.script = [(503, None), (429, "7"), (429, "3600"), (503, "garbage")]
        answer = session.get(flaky, timeout=5)
        # Four tries in all: the last 503 is handed back (the client reports it), not raised.
        assert answer.status_code == 503 and _Flaky.seen == 4
        assert waits == [0.5, 7.0, 30.0]
        waits.clear()
        _Flaky.script, _Flaky.seen = [(503, "bogus"), (503, None)], 0
        assert session.get(flaky, timeout=5).status_code == 200 and _Flaky.seen == 3
        assert waits == [0.5, 1.0]


def test_salesforce_mounts_the_policy_it_was_given() -> None:
    from leadflow.connectors.salesforce import MAX_RETRY_AFTER, SalesforceConnector, SalesforceCredentials

    creds = SalesforceCredentials(instance_url="https://example.my.salesforce.com", session_token=SecretStr("t"))
    with SalesforceConnector(creds, retries=2, backoff=0.25) as connector:
        assert connector.retry == RetryPolicy(attempts=3, base=0.25, retry_after_cap=MAX_RETRY_AFTER)
        mounted = connector.session.get_adapter("https://example.my.salesforce.com/services/data/").max_retries
        assert mounted.total == 2 and mounted.status_forcelist == {429, 503} and mounted.allowed_methods is None
        assert _failed(mounted).get_backoff_time() == 0.25
        assert mounted.get_retry_after(HTTPResponse(status=429, headers={"Retry-After": "600"})) == MAX_RETRY_AFTER
