"""Client-side pacing shared by the connectors: one sliding-window limiter.

`WindowLimiter(max_calls, period)` lets at most `max_calls` calls into any `period` seconds, counted the way HubSpot
and Marketo count (a sliding window: HubSpot's 190 calls per 10 s and 5 searches per second, Marketo's 100 calls per
20 s); `WindowLimiter.spaced(rate)` is one call per 1/rate s, evenly spaced (the enrichment provider's
requests_per_second: idle time is not banked into a burst). It takes an injected clock and sleep, so tests drive it
in fake time and nothing waits on the wall clock. Retries (policy, Retry-After, the loop) are in
`leadflow.connectors.http`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

__all__ = ["WindowLimiter"]


class WindowLimiter:
    """At most `max_calls` calls in any `period` seconds.

    `wait()` before a call sleeps just long enough and counts the call from then on; `mark()` after the response
    (optional) counts it from the response instead, which guarantees the server saw the call no later than we count
    it. One computed wait per call (no polling loop), so a fake clock and a recording sleep see exact waits. Safe to
    share between threads (a waiting caller holds the others back: they would wait for the same slot anyway).
    """

    def __init__(
        self, max_calls: int, period: float, *, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("max_calls must be >= 1 and period > 0")
        self.max_calls, self.period = max_calls, period
        self._clock, self._sleep = clock, sleep
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def spaced(cls, rate: float, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> WindowLimiter:
        """At most `rate` calls per second, each at least 1/rate s after the one before."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        return cls(1, 1.0 / rate, clock=clock, sleep=sleep)

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()

    def wait(self) -> float:
        """Sleep until one more call fits and count it; returns the seconds slept."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            waited = 0.0
            if len(self._times) >= self.max_calls:
                delay = self._times[0] + self.period - now  # until the oldest call leaves the window
                if delay > 0:
                    self._sleep(delay)
                    waited = delay
                    now = max(self._clock(), now + delay)
                    self._prune(now)
                while len(self._times) >= self.max_calls:
                    self._times.popleft()  # it has left: float rounding may keep it a hair inside by the clock
            self._times.append(now)
            return waited

    def mark(self) -> None:
        """The call `wait()` let through was answered: count it from now (single-threaded callers: the latest call)."""
        with self._lock:
            now = self._clock()
            if self._times:
                self._times[-1] = max(self._times[-1], now)
            else:
                self._times.append(now)
