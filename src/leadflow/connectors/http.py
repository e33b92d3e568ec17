"""The one retry helper every connector's HTTP calls go through: policy, Retry-After, the loop, urllib3's Retry.

Retries happen on I/O only — a call that did not get through, or an answer that says "not now" — never on
transforms or validation. What is worth another try differs per API, so each connector passes a `classify` that says
so for its outcomes and cites its API's documentation; everything else (how long to wait, how often, what a server's
Retry-After may ask) lives here, once.

- `RetryPolicy`: tries in all, exponential backoff (base × factor**n, at most `cap`; jitter off by default so tests
  see exact waits) and the longest wait a server's Retry-After may impose (`retry_after_cap`).
- `parse_retry_after`: a Retry-After value in seconds, both forms of RFC 9110 §10.2.3 (delta-seconds, HTTP-date),
  capped; anything else is None (the caller falls back to its backoff).
- `with_retries(call, policy=, classify=, sleep=, on_retry=)`: the loop. `classify(result or exception)` answers
  `DONE`, `RetryLater(reason, after)` (after: a delay the server asked for) or `Fail(error)`; a call may also raise
  `Transient` and leave `classify` at its default. Out of tries: `RetriesExhausted`, carrying the last reason and the
  last outcome.
- `urllib3_retry(policy, statuses)`: the same policy as a urllib3 `Retry` for a session's adapter, for a client that
  makes its own requests (simple-salesforce).

The client-side rate limiter is `leadflow.connectors.ratelimit.WindowLimiter`.
"""

from __future__ import annotations

import math
import random as _random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from itertools import takewhile
from typing import Any, Final, TypeAlias, TypeVar

from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from leadflow.pipeline.errors import LeadflowError

__all__ = [
    "DONE",
    "FAIL",
    "Done",
    "Fail",
    "RetriesExhausted",
    "RetryLater",
    "RetryPolicy",
    "Transient",
    "Verdict",
    "parse_retry_after",
    "transient_only",
    "urllib3_retry",
    "with_retries",
]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often to try and how long to wait in between.

    Try `attempts` times in all; before retry n+1 (n = 0 for the first retry) wait `base * factor**n` seconds, at
    most `cap`, or, when the server said how long (Retry-After, a rate-limit window), that wait up to
    `retry_after_cap`. `jitter` draws each backoff uniformly from [0, wait) ("full jitter", AWS Architecture Blog,
    "Exponential Backoff And Jitter": https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/) so
    many clients do not retry in step; off by default, so one client's waits are exact and tests reproducible.
    """

    attempts: int = 5
    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    retry_after_cap: float = 60.0
    jitter: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0 or self.retry_after_cap < 0 or self.factor < 1:
            raise ValueError("base, cap and retry_after_cap cannot be negative, and factor must be at least 1")

    def delay(self, retry: int, *, random: Callable[[], float] = _random.random) -> float:
        """The backoff before retry `retry` + 1 (0: the first retry)."""
        try:
            wait = min(self.cap, self.base * self.factor**retry)
        except OverflowError:
            wait = self.cap
        return wait * random() if self.jitter else wait

    def wait(self, retry: int, after: float | None = None, *, random: Callable[[], float] = _random.random) -> float:
        """The wait before retry `retry` + 1: the server's `after` (capped at `retry_after_cap`) when it gave one,
        else the backoff. A server's wait replaces the backoff, as urllib3 does: it knows when its window reopens."""
        if after is not None and math.isfinite(after):
            return min(max(0.0, after), self.retry_after_cap)
        return self.delay(retry, random=random)


def parse_retry_after(value: str | None, *, cap: float | None = None, now: datetime | None = None) -> float | None:
    """A Retry-After header value in seconds, at most `cap`; None when absent or unreadable.

    RFC 9110 §10.2.3 (https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3): `Retry-After = HTTP-date /
    delay-seconds`. delay-seconds are read leniently (a decimal is taken; a negative, infinite or NaN value is not);
    an HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms, all GMT) counts from `now` (default: the
    wall clock), a date already past is 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
    else:
        if not math.isfinite(seconds) or seconds < 0:
            return None
    if seconds is None:
        return None
    return seconds if cap is None else min(seconds, cap)


def _seconds_until(text: str, now: datetime | None) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # HTTP-dates are GMT; the asctime form says so by omission
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


# -- the loop --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Done:
    """The outcome is the answer: return it (an exception outcome is raised as it is)."""


@dataclass(frozen=True)
class RetryLater:
    """Worth another try: `reason` says what happened (no URL, no secret: it ends up in error messages); `after` is
    a wait the server asked for (Retry-After, a rate-limit window), None for the policy's backoff."""

    reason: str
    after: float | None = None


@dataclass(frozen=True)
class Fail:
    """Not worth another try: raise `error`, or the outcome itself (an exception) when `error` is None."""

    error: BaseException | None = None


Verdict: TypeAlias = Done | RetryLater | Fail
DONE: Final = Done()
FAIL: Final = Fail()


class Transient(Exception):
    """Raised by a call for a failure worth another try (a dropped connection, a timeout, a throttle); `reason` and
    `after` as in `RetryLater`."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        self.reason, self.after = reason, after
        super().__init__(reason)


class RetriesExhausted(LeadflowError):
    """Every try failed in a retryable way: `reason` is the last failure's, `last` the last outcome (a result or an
    exception; an exception is also this error's `__cause__`)."""

    def __init__(self, attempts: int, reason: str, last: object) -> None:
        self.attempts, self.reason, self.last = attempts, reason, last
        super().__init__(f"gave up after {attempts} attempts ({reason})")


def transient_only(outcome: object) -> Verdict:
    """The default `classify`: retry a `Transient`, raise any other exception, return anything else."""
    if isinstance(outcome, Transient):
        return RetryLater(outcome.reason, outcome.after)
    return FAIL if isinstance(outcome, BaseException) else DONE


def with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    classify: Callable[[Any], Verdict] = transient_only,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, RetryLater, float], None] | None = None,
    random: Callable[[], float] = _random.random,
) -> T:
    """Call `call()` up to `policy.attempts` times; return its result once `classify` says DONE.

    `classify` gets the result, or the `Exception` the call raised, and answers DONE, RetryLater or Fail (it may also
    raise). Before each retry, `on_retry(retry number from 1, verdict, delay)` (count it, log it), then
    `sleep(delay)`. When the tries run out on a RetryLater: `RetriesExhausted`.
    """
    for attempt in range(policy.attempts):
        try:
            outcome: Any = call()
        except Exception as exc:  # noqa: BLE001 - handed to `classify`, which decides; re-raised unless retried
            outcome = exc
        verdict = classify(outcome)
        if isinstance(verdict, RetryLater):
            if attempt + 1 >= policy.attempts:
                cause = outcome if isinstance(outcome, BaseException) else None
                raise RetriesExhausted(policy.attempts, verdict.reason, outcome) from cause
            delay = policy.wait(attempt, verdict.after, random=random)
            if on_retry is not None:
                on_retry(attempt + 1, verdict, delay)
            sleep(delay)
            continue
        if isinstance(verdict, Fail) and verdict.error is not None:
            raise verdict.error
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(verdict, Fail):
            raise TypeError("Fail() without an error for an outcome that is not an exception")
        return outcome  # type: ignore[no-any-return]
    raise AssertionError("unreachable: attempts >= 1")


# -- urllib3 ---------------------------------------------------------------------------------------------------------
class _PolicyRetry(Retry):
    """urllib3's Retry waiting as a RetryPolicy says: its backoff from the first retry on, and a Retry-After read by
    `parse_retry_after` and capped at `retry_after_cap` (an unreadable one falls back to the backoff instead of
    raising InvalidHeader mid-request)."""

    def __init__(self, *args: Any, policy: RetryPolicy | None = None, **kwargs: Any) -> None:
        self.policy = policy if policy is not None else RetryPolicy()
        super().__init__(*args, **kwargs)

    def new(self, **kw: Any) -> _PolicyRetry:  # urllib3 makes a new Retry per try: carry the policy over
        return super().new(policy=self.policy, **kw)

    def get_backoff_time(self) -> float:
        errors = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        return self.policy.delay(errors - 1) if errors else 0.0

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"), cap=self.policy.retry_after_cap)


def urllib3_retry(
    policy: RetryPolicy, statuses: Collection[int], *, methods: Collection[str] | None = Retry.DEFAULT_ALLOWED_METHODS
) -> Retry:
    """A urllib3 `Retry` for `HTTPAdapter(max_retries=...)` with `policy`'s numbers: `policy.attempts` tries in all
    for connection errors, read errors and `statuses`; the policy's backoff; Retry-After honoured up to
    `policy.retry_after_cap`. The last answer is returned, not raised, when the tries run out (the client reports
    it). `methods`: the verbs retried, by default urllib3's idempotent ones; None retries every verb — only for a
    caller whose every call is safe to repeat. urllib3 `Retry` reference:
    https://urllib3.readthedocs.io/en/stable/reference/urllib3.util.html#urllib3.util.Retry.
    """
    retries = policy.attempts - 1
    return _PolicyRetry(total=retries, connect=retries, read=retries, status=retries,
                        status_forcelist=frozenset(statuses), allowed_methods=methods, raise_on_status=False,
                        policy=policy)
