"""Writer leases: one writer per system at a time, from every entry point.

A run that writes to a system (`crm_sync` from the CLI, a deployment, a backfill chunk or the fast lane; `sla_watch`
when it reassigns) first takes the lease `writer:<system>` in the state store and holds it from before the pull
through the last write-back. The lease is a row (`leases`): who holds it (run, flow, host, pid), renewed by a
heartbeat thread every quarter of its lifetime. A second run waits for it, up to a configured time, then stops with a
message naming the run that holds it. A lease whose holder is gone — its process no longer exists on this host, or it
stopped renewing and the lease expired — is taken over, and the dead holder's run is marked `crashed`.

Writes are fenced: before each write the holder checks that the row still carries its token (`Lease.ensure`), so a
process that stalled past its lease and was taken over stops instead of writing beside the new holder. The same row
works on SQLite (its single-writer transactions serialise the take-over) and on PostgreSQL (`SELECT … FOR UPDATE`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.settings import WRITER_LEASE_SECONDS, WRITER_WAIT_SECONDS
from leadflow.store.tables import leases, runs

log = logging.getLogger(__name__)

WRITER_PREFIX = "writer:"
DEFAULT_WAIT_SECONDS = WRITER_WAIT_SECONDS
DEFAULT_LEASE_SECONDS = WRITER_LEASE_SECONDS


def writer_lease_name(system: str) -> str:
    """The lease a run holds while it writes to `system`."""
    return f"{WRITER_PREFIX}{system}"


def this_process() -> tuple[str, int]:
    """(host name, pid) of this process: what a lease and a run record as their holder."""
    return socket.gethostname(), os.getpid()


def process_gone(host: str, pid: int, since: datetime) -> bool:
    """Whether the process `pid` on `host` that started no later than `since` is certainly gone. Only this host's
    processes can be checked; elsewhere the lease's expiry decides. A pid now used by a process started after `since`
    is a different process; a zombie (killed, not yet reaped by its parent) is gone."""
    if host != socket.gethostname():
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return process.create_time() > since.timestamp() + 1.0
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:  # someone else's live process
        return False


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a lease, as the row says."""

    name: str
    token: str
    run_id: str | None
    flow: str | None
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "a run"
        return (f"{run} ({self.flow or 'unknown flow'}, pid {self.pid} on {self.host}, holding it since "
                f"{self.acquired_at:%Y-%m-%d %H:%M:%S} UTC)")

    @property
    def system(self) -> str:
        return self.name.removeprefix(WRITER_PREFIX)


class LeaseBusy(LeadflowError):
    """Another live run holds the lease and did not release it within the wait."""

    def __init__(self, name: str, holder: LeaseHolder | None, waited: float) -> None:
        self.name, self.holder, self.waited = name, holder, waited
        who = holder.describe() if holder is not None else "another run"
        what = name.removeprefix(WRITER_PREFIX) if name.startswith(WRITER_PREFIX) else name
        super().__init__(f"{what} is being written by {who}; waited {waited:.0f} s for it "
                         "(concurrency.writer_wait_seconds). This run pulled and wrote nothing; run it again later")


class LeaseLost(LeadflowError):
    """This run's lease was taken over (it stalled past its lifetime): it must not write any more."""

    def __init__(self, name: str, token: str, holder: LeaseHolder | None) -> None:
        self.name, self.token, self.holder = name, token, holder
        who = holder.describe() if holder is not None else "nobody (it was released)"
        super().__init__(f"{name}: this run's lease is now held by {who}; it stalled longer than "
                         "concurrency.lease_seconds and stopped before writing again")


@dataclass
class Acquired:
    """The outcome of one attempt: the lease, or who holds it; `took_over` names a dead holder that was replaced."""

    lease: Lease | None
    holder: LeaseHolder | None = None
    took_over: LeaseHolder | None = None


class Lease:
    """A held lease: renewed by `renew` (the heartbeat), checked by `ensure` before each write, ended by `release`."""

    def __init__(self, leases: Leases, name: str, token: str, run_id: str | None, seconds: float) -> None:
        self._leases, self.name, self.token, self.run_id, self.seconds = leases, name, token, run_id, seconds
        self.lost = False
        self.took_over: LeaseHolder | None = None

    def renew(self) -> bool:
        """Push the expiry out by the lease's lifetime; False (and `lost`) when the row is no longer ours."""
        if self.lost:
            return False
        now = _now()
        with self._leases.writing() as conn:
            result = conn.execute(leases.update().where(leases.c.name == self.name, leases.c.token == self.token)
                                  .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.seconds)))
        if result.rowcount == 0:
            self.lost = True
        return not self.lost

    def ensure(self) -> None:
        """Raise LeaseLost unless this lease is still held (call before every write)."""
        holder = self._leases.holder(self.name)
        if self.lost or holder is None or holder.token != self.token:
            self.lost = True
            raise LeaseLost(self.name, self.token, holder)

    def release(self) -> None:
        """Give the lease up (only if it is still ours)."""
        with self._leases.writing() as conn:
            conn.execute(leases.delete().where(leases.c.name == self.name, leases.c.token == self.token))


class Leases:
    """The `leases` table of one state store."""

    def __init__(self, engine: Engine, writing: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._engine, self.writing = engine, writing

    def holder(self, name: str) -> LeaseHolder | None:
        with self._engine.connect() as conn:
            return self._holder(conn, name)

    def held(self) -> list[LeaseHolder]:
        """Every lease in the table, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(leases).order_by(leases.c.name)).mappings().all()
        return [LeaseHolder(**row) for row in rows]

    def join(self, name: str, token: str) -> Lease:
        """The lease `token` that a parent run holds (a parallel backfill hands it to its chunks); LeaseLost if the
        row carries another token."""
        holder = self.holder(name)
        if holder is None or holder.token != token:
            raise LeaseLost(name, token, holder)
        return Lease(self, name, token, holder.run_id, (holder.expires_at - holder.heartbeat_at).total_seconds())

    def try_acquire(self, name: str, *, run_id: str | None, flow: str | None, seconds: float) -> Acquired:
        """Take the lease if it is free, expired, or its holder's process is gone (marking that holder's run
        `crashed`); otherwise say who holds it. One transaction: two runs never both get it."""
        host, pid = this_process()
        now = _now()
        values = {"name": name, "token": str(uuid.uuid4()), "run_id": run_id, "flow": flow, "host": host, "pid": pid,
                  "acquired_at": now, "heartbeat_at": now, "expires_at": now + timedelta(seconds=seconds)}
        with self.writing() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name).with_for_update()).mappings().first()
            if row is None:
                insert = (postgresql.insert(leases) if conn.dialect.name == "postgresql" else sqlite.insert(leases))
                if conn.execute(insert.values(**values).on_conflict_do_nothing()).rowcount == 0:
                    return Acquired(None, self._holder(conn, name))  # another run inserted it first
                return Acquired(Lease(self, name, values["token"], run_id, seconds))
            current = LeaseHolder(**row)
            expired = current.expires_at <= now
            if not expired and not process_gone(current.host, current.pid, current.acquired_at):
                return Acquired(None, current)
            taken = conn.execute(leases.update().where(leases.c.name == name, leases.c.token == current.token)
                                 .values(**values))
            if taken.rowcount == 0:
                return Acquired(None, self._holder(conn, name))
            why = "its lease expired" if expired else "its process is gone"
            if current.run_id:
                mark_crashed(conn, current.run_id, f"{why} (pid {current.pid} on {current.host}); "
                                                   f"{name} taken over by run {run_id}")
        lease = Lease(self, name, values["token"], run_id, seconds)
        lease.took_over = current
        return Acquired(lease, None, current)

    @staticmethod
    def _holder(conn: Connection, name: str) -> LeaseHolder | None:
        row = conn.execute(sa.select(leases).where(leases.c.name == name)).mappings().first()
        return None if row is None else LeaseHolder(**row)


def mark_crashed(conn: Connection, run_id: str, why: str) -> int:
    """Mark a run still recorded as `running` as `crashed`, with why; returns 1 if it was."""
    return conn.execute(runs.update().where(runs.c.run_id == run_id, runs.c.status == "running")
                        .values(status="crashed", finished_at=_now(), error=f"crashed: {why}")).rowcount


def sweep_crashed_runs(conn: Connection) -> list[str]:
    """Mark `crashed` the runs still `running` whose process on this host is gone (killed, out of memory): a
    killed run never stays `running` past the next run started on the same host. Returns their ids."""
    host, _ = this_process()
    rows = conn.execute(sa.select(runs.c.run_id, runs.c.holder, runs.c.started_at).where(
        runs.c.status == "running", runs.c.holder.like(f"{_like_escape(host)}:%", escape="\\"))).all()
    crashed = []
    for run_id, holder, started_at in rows:
        pid_text = str(holder).rpartition(":")[2]
        if pid_text.isdigit() and process_gone(host, int(pid_text), started_at):
            if mark_crashed(conn, run_id, f"its process is gone (pid {pid_text} on {host})"):
                crashed.append(run_id)
    return crashed


@contextmanager
def hold(
    store_leases: Leases, name: str, *, run_id: str | None, flow: str | None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS, lease_seconds: float = DEFAULT_LEASE_SECONDS,
    join: str | None = None, on_wait: Callable[[LeaseHolder], Any] | None = None,
    on_takeover: Callable[[LeaseHolder], Any] | None = None,
) -> Iterator[Lease]:
    """Hold the lease `name` for the block: wait up to `wait_seconds` for a live holder (LeaseBusy after that), take
    over a dead one, renew it in the background, release it at the end. `join` (a token the caller's parent holds)
    uses that lease instead, without renewing or releasing it."""
    if join is not None:
        yield store_leases.join(name, join)
        return
    started = time.monotonic()
    delay, told = 0.2, False
    while True:
        got = store_leases.try_acquire(name, run_id=run_id, flow=flow, seconds=lease_seconds)
        if got.lease is not None:
            lease = got.lease
            break
        waited = time.monotonic() - started
        if waited >= wait_seconds:
            raise LeaseBusy(name, got.holder, waited)
        if not told and got.holder is not None and on_wait is not None:
            on_wait(got.holder)
            told = True
        # Waiting for another process to finish: nothing to be notified by on SQLite, so ask again, backing off.
        threading.Event().wait(min(delay, max(wait_seconds - waited, 0.0)))
        delay = min(delay * 2, 5.0)
    if lease.took_over is not None and on_takeover is not None:
        on_takeover(lease.took_over)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(lease, stop), name=f"lease-{name}", daemon=True)
    beat.start()
    try:
        yield lease
    finally:
        stop.set()
        beat.join(timeout=lease_seconds)
        if not lease.lost:
            lease.release()


def _heartbeat(lease: Lease, stop: threading.Event) -> None:
    interval = max(lease.seconds / 4, 0.05)
    while not stop.wait(interval):
        try:
            if not lease.renew():
                log.warning("%s: the lease was taken over by another run; this run stops before its next write",
                            lease.name)
                return
        except Exception as exc:  # a database hiccup: the next beat tries again; expiry is several beats away
            log.warning("%s: renewing the lease failed (%s: %s); trying again at the next beat", lease.name,
                        type(exc).__name__, exc)


def _now() -> datetime:
    return datetime.now(UTC)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
