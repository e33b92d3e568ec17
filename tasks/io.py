"""I/O tasks: retried with backoff on transient OS/database errors, never on bad input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect.cache_policies import NO_CACHE
from sqlalchemy.exc import OperationalError

from leadflow.pipeline.settings import Settings
from leadflow.store import StateStore
from tasks.runner import task

if TYPE_CHECKING:
    from leadflow.audit.changes import ChangeChunk
    from leadflow.store.leases import Lease

TRANSIENT = (OSError, OperationalError)
BACKOFF = [1, 4, 15]


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except TRANSIENT as exc:
        return not isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))
    except Exception:
        return False
    return False


@cache
def _open_store(url: str) -> StateStore:
    return StateStore.open(url)


def state_store() -> StateStore:
    """The configured store, opened (and migrated) once per process; its URL never travels as a task argument."""
    return _open_store(Settings().state_url())


@contextmanager
def writer_lease(system: str, run_id: str, flow: str, rules: Any, *, join: str | None = None) -> Iterator[Lease]:
    """Hold `system`'s writer lease (`leadflow.store.leases`) for the block: wait for another writer up to
    `concurrency.writer_wait_seconds`, then LeaseBusy naming it; a dead writer is taken over and its run marked
    crashed. `join`: the lease token a parent run (a parallel backfill) holds and hands down."""
    from prefect import get_run_logger

    from leadflow.store.leases import hold, writer_lease_name

    logger = get_run_logger()
    concurrency = rules.concurrency
    with hold(state_store().leases(), writer_lease_name(system), run_id=run_id, flow=flow, join=join,
              wait_seconds=concurrency.writer_wait_seconds, lease_seconds=concurrency.lease_seconds,
              on_wait=lambda holder: logger.info("%s: waiting while %s writes to it", system, holder.describe()),
              on_takeover=lambda holder: logger.warning(
                  "%s: took over the writer lease of %s: it is gone; its run is marked crashed", system,
                  holder.describe())) as lease:
        yield lease


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def open_run(flow: str, params: dict[str, Any]) -> str:
    """Start a run in the state store and return its id."""
    return state_store().start_run(flow, params)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def record_stage(
    run_id: str, stage: str, events: pd.DataFrame | None, quarantine: pd.DataFrame | None
) -> None:
    """Persist a stage's audit events and quarantined rows."""
    store = state_store()
    if events is not None and len(events):
        store.add_events(events)
    if quarantine is not None and len(quarantine):
        store.add_quarantine(run_id, stage, quarantine[["lead_key", "expectation", "reason", "row"]])


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def record_changes(
    run_id: str, stage: str, at: datetime, chunks: list[ChangeChunk], leads: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
) -> None:
    """Persist a stage's before/after chunks, from a page's first stage the leads it staged (`lead_runs`), and the
    rows its gate quarantined (one task per stage and chunk, not two)."""
    store = state_store()
    store.add_changes(run_id, stage, at, chunks, leads)
    if quarantine is not None and len(quarantine):
        store.add_quarantine(run_id, stage, quarantine[["lead_key", "expectation", "reason", "row"]])


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def close_run(run_id: str, status: str, stats: dict[str, Any], error: str | None = None) -> None:
    """Mark the run completed or failed, with its counts."""
    state_store().finish_run(run_id, status, stats, error)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def load_watermark(system: str) -> Any:
    """Where the last committed incremental pull of `system` ended (None: never synced)."""
    return state_store().get_watermark(system)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def commit_watermark(system: str, value: Any, run_id: str) -> None:
    """Advance the watermark: only after a page is processed, written back and recorded."""
    state_store().set_watermark(system, value, run_id)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def pending_dead_letters(system: str, limit: int | None = None) -> pd.DataFrame:
    """Write-backs that failed on earlier runs and may be retried, oldest first (at most `limit`)."""
    letters = state_store().dead_letters(system, "pending")
    return letters if limit is None else letters.head(limit)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def dead_letter_counts(system: str) -> dict[str, int]:
    """How many of a system's write failures are waiting for a retry and how many are permanent (need a person)."""
    letters = state_store().dead_letters(system)
    counts = letters["status"].value_counts() if len(letters) else {}
    return {"pending": int(counts.get("pending", 0)), "permanent": int(counts.get("permanent", 0))}


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def record_write_outcome(run_id: str, system: str, obj: str, written: list[str], failures: pd.DataFrame) -> None:
    """Failed records become (or stay) dead letters; records written now resolve theirs."""
    store = state_store()
    if len(failures):
        store.add_dead_letters(run_id, system, obj, failures)
    if written:
        store.resolve_dead_letters(system, obj, written, run_id)


LIFECYCLE_COLUMNS = ("lifecycle_stage", "lifecycle_reason", "mql_at", "sal_at", "sql_at", "recycled_at")


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def load_lifecycle_state(frame: pd.DataFrame, rules: Any = None) -> pd.DataFrame:
    """`frame` with each known lead's last lifecycle state from the store (it wins over what the source carried);
    `rules` is unused (every stage-state loader takes the run's rules)."""
    from leadflow.pipeline.schema import lead_keys

    keys = lead_keys(frame)
    known = state_store().lifecycle_state(keys.dropna().tolist())
    if known.empty:
        return frame
    # each lead's row in `known` (-1: none), looked up once for every column
    at = known.index.get_indexer(keys)
    has = at >= 0
    out = frame.copy(deep=False)
    for column in LIFECYCLE_COLUMNS:
        stored = pd.Series(known[column].array.take(at, allow_fill=True), index=frame.index, dtype="string")
        out[column] = out[column].astype("string").mask(has, stored)
    return out


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def save_lifecycle_state(frame: pd.DataFrame, run_id: str) -> int:
    """Keep the lifecycle state of leads that passed the gate, for the next run from any source."""
    from leadflow.pipeline.schema import lead_keys

    if not len(frame):
        return 0
    state = frame[list(LIFECYCLE_COLUMNS)].assign(lead_key=lead_keys(frame).to_numpy())
    return state_store().save_lifecycle_state(state, run_id)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def load_assignments(frame: pd.DataFrame, rules: Any = None) -> pd.DataFrame:
    """`frame` with each lead's recorded assignment (`leadflow.routing.ownership.with_assignments`: assigned leads stay
    assigned; a worked or converted lead keeps the owner the source carries)."""
    from leadflow.routing.ownership import with_assignments
    from leadflow.pipeline.schema import lead_keys

    keys = lead_keys(frame).dropna().unique().tolist()
    return with_assignments(frame, state_store().assignments(keys, inputs=False), rules)  # no snapshots: not read


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def confirm_owners_written(lead_keys: list[str], at: Any) -> int:
    """Mark these leads' assignments as written back to their system (the CRM's owner is ours from now on)."""
    return state_store().mark_assignments(lead_keys, "written_at", at) if lead_keys else 0


STAGE_STATE = {
    "lifecycle": (load_lifecycle_state, save_lifecycle_state),
    "assign": (load_assignments, None),  # the assign task saves its state itself, under the routing lock
}
"""Stages with memory: state loaded before the stage (so the audit diff is against it) and saved after its gate."""


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def check_sla(as_of: Any, run_id: str) -> pd.DataFrame:
    """Record assignments past their first-touch SLA as breaches (each once); returns them."""
    from leadflow.routing.sla import check_sla as check

    return check(state_store(), as_of, run_id=run_id)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def reassign_breaches(breaches: pd.DataFrame, routing: Any, as_of: Any, run_id: str) -> pd.DataFrame:
    """Route again, to anyone but the current owner, the breached leads whose rule says so."""
    from leadflow.routing.sla import reassign_breaches as reassign

    return reassign(state_store(), breaches, routing, as_of, run_id=run_id)


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def seen_leads(lead_keys: list[str], run_id: str) -> list[str]:
    """Those of these leads that a run other than `run_id` already processed (they have an audit trail)."""
    return sorted(state_store().seen_leads(lead_keys, except_run=run_id))


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def load_receipts(lead_keys: list[str]) -> pd.Series:
    """The write receipts of these leads (lead_key → receipt hash, NA: process it whenever pulled)."""
    return state_store().receipts(lead_keys) if lead_keys else pd.Series(pd.array([], dtype="Int64"), dtype="Int64")


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def save_receipts(receipts: pd.DataFrame) -> int:
    """Keep a processed page's write receipts (`leadflow.sync.receipts.receipt_rows`), for the next pull."""
    return state_store().write_receipts(receipts) if len(receipts) else 0
