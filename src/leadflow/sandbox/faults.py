"""Fault injection for the sandboxes: switch a failure on for the next N matching requests."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    """Fail `times` requests whose `METHOD path` matches `route` (a regex) with `kind`, after letting `skip` through."""

    route: str
    kind: str
    times: int = 1
    detail: dict[str, Any] | None = None
    skip: int = 0


class FaultPlan:
    """Thread-safe list of pending faults; a sandbox asks `take(method, path)` on every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(self, route: str, kind: str, times: int = 1, *, skip: int = 0, **detail: Any) -> None:
        re.compile(route)
        with self._lock:
            self._faults.append(Fault(route, kind, times, detail or None, skip))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        """The first pending fault matching this request, consuming one of its `times`."""
        target = f"{method.upper()} {path}"
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and re.search(fault.route, target):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
