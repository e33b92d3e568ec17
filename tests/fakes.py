"""Test doubles shared by the connector tests."""

from __future__ import annotations


class FakeClock:
    """Seconds (epoch or monotonic, from `now`) that move only when something sleeps or a test advances `now`;
    records every sleep. Hand it to a connector as its clock and `sleep`, and `ms` to a sandbox as its `now_ms`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(round(self.now * 1000))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
