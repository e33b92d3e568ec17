"""The warm micro-batch processor of `leadflow intake serve`: it drains the inbox (`leadflow.store.inbox`) in batches
that close after `batch.max_notifications` pending notifications or `batch.max_wait_ms` after the first pending one.

`Processor.step` makes one decision — process a batch now, or how long to wait — with an injectable monotonic
clock, so the batch rules are tested without sleeping; `Processor.run` loops over it in a background thread, woken
at once by `notify` (the HTTP app calls it after recording something: no polling delay) and every
`processing.wake_seconds` to pick up replays (claims of a killed process, older than `claim_timeout_seconds`) and
retries. The batch itself is the `handle` callable (the `intake_batch` flow: fetch by id, then exactly
`crm_sync`'s page path); the processor claims, hands over, and records the outcome: `done` only after the handler
returned, that is after the write-back was recorded, so a process killed before that leaves the claim to go stale
and be replayed — the write receipts make the replay of an already written record a no-op.

A system whose writer lease another run holds is left alone for `busy_backoff_seconds`: its notifications go back
to pending untouched and are not claimed meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import pandas as pd

from leadflow.intake.batches import WEB_CRM, BatchOutcome
from leadflow.intake.config import Processing
from leadflow.store.inbox_tables import INBOX_SYSTEMS

log = logging.getLogger("leadflow.intake.processor")

FAULT_ENV: Final[str] = "LEADFLOW_INTAKE_TEST_EXIT"
"""Test-only fault hook: `after_claim` or `after_write` ends the process at once (os._exit(137), what a kill -9
leaves behind: no cleanup, claims and leases held) at that point of its first batch; the kill -9 test uses it."""
FAULT_POINTS: Final[frozenset[str]] = frozenset({"after_claim", "after_write"})

Handler = Callable[[pd.DataFrame], BatchOutcome]


def worker_name() -> str:
    """host:pid:random: who claimed a row (another process on the host, or this one restarted, is someone else)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def gone_from_this_host(worker: str, me: str) -> bool:
    """Whether `worker` (a `worker_name`) was a process on this host that no longer runs: an earlier incarnation of
    this process id, or a process id nothing runs under. Workers of other hosts, and any whose process id runs
    (whatever runs under it now), are not judged: their claims wait for the claim timeout."""
    host, _, rest = worker.partition(":")
    pid_text, _, _ = rest.partition(":")
    if worker == me or host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # this process id, another incarnation: the one that held it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False


class Processor:
    """Claims batches from `store`'s inbox for `handle` and records what became of them (see the module)."""

    def __init__(self, store: Any, handle: Handler, settings: Processing, *, worker: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.handle, self.settings = store, handle, settings
        self.worker = worker or worker_name()
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._first_pending: float | None = None
        self._next_replay = clock()  # look for a killed process's claims at once
        self._busy_until: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.fault = os.environ.get(FAULT_ENV) or None
        if self.fault is not None and self.fault not in FAULT_POINTS:
            raise ValueError(f"{FAULT_ENV}={self.fault!r}: one of {sorted(FAULT_POINTS)}")

    # -- signals --------------------------------------------------------------------------------------------------
    def notify(self, new: int = 1) -> None:
        """`new` notifications were just recorded: start the batch clock (if not running) and wake the loop."""
        if new <= 0:
            return
        with self._lock:
            if self._first_pending is None:
                self._first_pending = self._clock()
        self._wake.set()

    # -- one decision ---------------------------------------------------------------------------------------------
    def step(self) -> float:
        """Process one batch if one is due (returns 0.0: decide again at once), else return how long to wait."""
        now = self._clock()
        batch = self.settings.batch
        window = batch.max_wait_ms / 1000
        systems = self._claimable(now)
        pending = self._pending(systems)
        with self._lock:
            if not pending:
                self._first_pending = None
            elif self._first_pending is None:
                self._first_pending = now
            first = self._first_pending
        if pending and (pending >= batch.max_notifications or now - (first or now) >= window):
            self._batch(systems)
            return 0.0
        if not pending and now >= self._next_replay:
            self._next_replay = now + self.settings.wake_seconds
            if self._batch(systems):  # claims gone stale (their process was killed) or released retries
                return 0.0
        # Pending: the window's end (its batch claims stale rows too); idle: the next look for replays.
        waits = [(first or now) + window - now if pending else self._next_replay - now]
        waits += [until - now for until in self._busy_until.values() if until > now]
        return max(min(waits), 0.0)

    def _claimable(self, now: float) -> list[str]:
        busy = {system for system, until in self._busy_until.items() if until > now}
        if WEB_CRM in busy:
            busy.add("web")  # a web lead is written to the CRM it is created in
        return [system for system in INBOX_SYSTEMS if system not in busy]

    def _pending(self, systems: list[str]) -> int:
        if len(systems) == len(INBOX_SYSTEMS):
            return int(self.store.inbox_counts()["pending"])
        return sum(int(self.store.inbox_counts(system)["pending"]) for system in systems)

    def _batch(self, systems: list[str]) -> int:
        """Claim up to a batch (pending, and stale claims: the replay), hand it over, record the outcome; returns how
        many were claimed."""
        if not systems:
            return 0
        size = self.settings.batch.max_notifications
        rows = self.store.claim_notifications(self.worker, size, self.settings.claim_timeout_seconds,
                                              systems=systems)
        with self._lock:
            # Rows left behind have waited at least as long as this batch; new ones restart the clock (`notify`).
            self._first_pending = self._clock() if len(rows) >= size else None
        if rows.empty:
            return 0
        self._fault("after_claim")
        try:
            outcome = self.handle(rows)
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: its rows are settled by the error's kind
            log.warning("intake batch of %d failed: %s: %s", len(rows), type(exc).__name__, exc)
            outcome = BatchOutcome()
            outcome.fail(rows["id"].tolist(), exc)
        self._fault("after_write")
        self._record(rows, outcome)
        self.batches += 1
        return len(rows)

    def _fault(self, point: str) -> None:
        if self.fault == point and self.batches == 0:
            log.error("%s=%s: exiting now, as if killed", FAULT_ENV, point)
            os._exit(137)

    def _record(self, rows: pd.DataFrame, outcome: BatchOutcome) -> None:
        """Complete, release or fail the claimed rows as `outcome` says (a row it does not mention is retried)."""
        store, worker = self.store, self.worker
        attempts = dict(zip(rows["id"].astype(int), rows["attempts"].astype(int), strict=True))
        for row_id in outcome.unsettled(attempts):
            outcome.retry[row_id] = "not processed by its batch"
        until = self._clock() + self.settings.busy_backoff_seconds
        for system, holder in outcome.busy.items():
            self._busy_until[system] = until
            log.info("intake: %s is being written by %s; its notifications wait", system, holder)
        final = dict(outcome.failed)
        retry: dict[int, str] = {}
        for row_id, reason in outcome.retry.items():
            if attempts[row_id] >= self.settings.max_attempts:
                final[row_id] = f"gave up after {attempts[row_id]} attempts: {reason}"
            else:
                retry[row_id] = reason
        if outcome.done:
            store.complete_notifications(list(outcome.done), worker)
            notes = {i: note for i, note in outcome.done.items() if note}
            if notes:
                log.info("intake: %d notification(s) had nothing to process: %s", len(notes),
                         "; ".join(sorted(set(notes.values())))[:500])
        for reasons, again in ((outcome.released, True), (retry, True), (final, False)):
            for reason, ids in _by_reason(reasons).items():
                store.fail_notifications(ids, worker, reason, retry=again)
        if final:
            log.warning("intake: %d notification(s) failed for good: %s", len(final),
                        "; ".join(sorted(set(final.values())))[:500])

    # -- the loop -------------------------------------------------------------------------------------------------
    def release_dead_claims(self) -> int:
        """Replay now, not after `claim_timeout_seconds`, what a killed process on this host left claimed."""
        released = int(self.store.release_dead_claims(lambda worker: gone_from_this_host(worker, self.worker)))
        if released:
            log.warning("intake: %d notification(s) claimed by a process that is gone: replaying them", released)
            self.notify(released)
        return released

    def run(self) -> None:
        """Replay what a killed process left claimed; then decide, wait (woken early by `notify`), until `stop`."""
        try:
            self.release_dead_claims()
        except Exception as exc:  # noqa: BLE001 - the store is down: the claim timeout replays them later
            log.error("intake processor: releasing dead claims failed: %s: %s", type(exc).__name__, exc)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delay = self.step()
            except Exception as exc:  # noqa: BLE001 - the store is down or similar: the loop outlives it
                log.error("intake processor: %s: %s; trying again in %.0f s", type(exc).__name__, exc,
                          self.settings.wake_seconds)
                delay = self.settings.wake_seconds
            if delay > 0:
                self._wake.wait(delay)

    def start(self) -> Processor:
        self._thread = threading.Thread(target=self.run, name="leadflow-intake-processor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Finish the batch under way (if any) and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _by_reason(reasons: dict[int, str]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for row_id, reason in reasons.items():
        grouped.setdefault(reason, []).append(row_id)
    return grouped
