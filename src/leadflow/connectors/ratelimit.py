"""Client-side pacing shared by the REST connectors: a sliding-window limiter and an exponential retry policy.

Both take an injected clock and sleep, so tests drive them in fake time and nothing waits on the wall clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetryPolicy", "WindowLimiter"]


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per request and the exponential backoff between them (no jitter: one client, deterministic tests)."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2**attempt)


class WindowLimiter:
    """At most `max_calls` calls in any `period` seconds, counted the way HubSpot and Marketo count (a sliding window).

    `wait()` before a call sleeps just long enough; `mark()` after the response records it. Marking at the
    response, not the send, guarantees the server saw the call no later than we count it.
    """

    def __init__(
        self, max_calls: int, period: float, *, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("max_calls must be >= 1 and period > 0")
        self.max_calls, self.period = max_calls, period
        self._clock, self._sleep = clock, sleep
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()

    def wait(self) -> float:
        """Sleep until one more call fits; returns the seconds slept."""
        waited = 0.0
        now = self._clock()
        self._prune(now)
        while len(self._times) >= self.max_calls:
            delay = self._times[0] + self.period - now
            if delay > 0:
                self._sleep(delay)
                waited += delay
            now = self._clock()
            self._prune(now)
            if delay <= 0 and len(self._times) >= self.max_calls:
                self._times.popleft()  # float rounding left the oldest call a hair inside the window
        return waited

    def mark(self) -> None:
        self._times.append(self._clock())
