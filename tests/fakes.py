"""Test doubles shared by the connector tests, and a real process holding a writer lease."""

from __future__ import annotations

import subprocess
import sys


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


LEASE_HOLDER = """
import sys
from leadflow.store import StateStore
store = StateStore.open(sys.argv[1])
run_id = store.start_run("crm_sync", {})
got = store.leases().try_acquire(sys.argv[2], run_id=run_id, flow="crm_sync", seconds=float(sys.argv[3]))
print(run_id if got.lease else "busy", flush=True)
sys.stdin.read()
"""


def lease_holder_process(url: str, name: str = "writer:salesforce",
                         seconds: float = 600.0) -> tuple[subprocess.Popen[str], str]:
    """A real process that starts a run on the store at `url`, takes the lease `name` and then blocks until killed
    (or its stdin closes); returns it and its run id."""
    proc = subprocess.Popen([sys.executable, "-c", LEASE_HOLDER, url, name, str(seconds)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id and run_id != "busy"
    return proc, run_id
