"""`lead_backfill`: re-run the CRM/MAP sync over a date range, chunk by chunk, resumable, from a form in the UI.

Every parameter is typed so the Prefect UI renders a form (date-time pickers, a multi-select of systems, toggles, a
number). The parameters are checked before any work: a bad range fails the run at once with a message naming the
field. Each chunk [chunk_start, chunk_end) runs `crm_sync` as a subflow (a backfill is an intended bulk write, so the
export guard is overridden); a chunk that committed is recorded in the state store (`backfill_chunks`) and skipped
when the same backfill runs again, unless `reprocess`. Dry runs record nothing.

`parallel=True` runs the chunks as tasks on prefect-dask's `DaskTaskRunner`: a `distributed.LocalCluster` (threads)
here, or the scheduler at `LEADFLOW_DASK_ADDRESS` in production. Each chunk task does the same work as the sequential
path (the same `crm_sync` subflow); the routing state lock keeps concurrent chunks from handing out a slot twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from flows.crm_sync import crm_sync
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.settings import MAX_BACKFILL_DAYS
from tasks.io import BACKOFF, _transient, state_store, writer_lease

BackfillSystem = Literal["salesforce", "marketo", "hubspot"]
DASK_ADDRESS_ENV = "LEADFLOW_DASK_ADDRESS"
"""A running Dask scheduler (`tcp://host:8786`) for parallel backfills; unset: a local cluster of threads."""
DASK_WORKERS_ENV = "LEADFLOW_DASK_WORKERS"
"""Threads of the local cluster (default 2)."""
DASK_PROCESSES_ENV = "LEADFLOW_DASK_PROCESSES"
"""`1`: the local cluster runs worker processes instead of threads (the caller then needs a `__main__` guard)."""


class BackfillParameterError(LeadflowError):
    """A backfill parameter is out of bounds; `field` names it (as the form does)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"lead_backfill parameter {field!r}: {message}")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_parameters(start: datetime, end: datetime, sources: list[str], chunk_hours: int,
                     config_path: str) -> tuple[datetime, datetime]:
    """Refuse a bad backfill before any work, naming the field; returns (start, end) in UTC."""
    from leadflow.pipeline.config import load_rules

    start, end = _utc(start), _utc(end)
    if end <= start:
        raise BackfillParameterError("end", f"{end.isoformat()} must be after start ({start.isoformat()})")
    if end - start > timedelta(days=MAX_BACKFILL_DAYS):
        days = (end - start) / timedelta(days=1)
        raise BackfillParameterError(
            "end", f"the range start..end covers {days:.1f} days; one backfill covers at most {MAX_BACKFILL_DAYS} "
            "days (MAX_BACKFILL_DAYS): split it into several backfills")
    if chunk_hours < 1:
        raise BackfillParameterError("chunk_hours", f"{chunk_hours} must be at least 1")
    if not sources:
        raise BackfillParameterError("sources", "name at least one system")
    rules = load_rules(Path(config_path) if config_path else None)
    missing = [s for s in sources if s not in rules.systems.names]
    if missing:
        raise BackfillParameterError(
            "sources", f"{missing} not configured under `systems:` in {rules.source} (configured: "
            f"{list(rules.systems.names)})")
    return start, end


def backfill_key(start: datetime, end: datetime, sources: list[str], chunk_hours: int) -> str:
    """A stable id of one backfill: the same range, systems and chunk size give the same key."""
    document = {"start": _utc(start).isoformat(), "end": _utc(end).isoformat(), "sources": sorted(set(sources)),
                "chunk_hours": chunk_hours}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


def chunks(start: datetime, end: datetime, chunk_hours: int) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of `chunk_hours` (the last one may be shorter)."""
    step, out, at = timedelta(hours=chunk_hours), [], start
    while at < end:
        out.append((at, min(at + step, end)))
        at += step
    return out


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def committed_chunks(key: str) -> dict[str, dict[str, Any]]:
    """The chunks of this backfill already committed, by chunk start (ISO)."""
    return {_utc(row["chunk_start"]).isoformat(): row for row in state_store().backfill_chunks(key)
            if row["status"] == "completed"}


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def record_chunk(key: str, chunk_start: datetime, chunk_end: datetime, status: str, run_id: str | None,
                 counts: dict[str, Any] | None) -> None:
    state_store().record_backfill_chunk(key, chunk_start, chunk_end, status, run_id, counts)


def chunk_counts(summary: dict[str, Any]) -> dict[str, Any]:
    """What a chunk did, per system, for the state store and the artifact."""
    counts: dict[str, Any] = {"rows_in": summary.get("rows_in", 0), "rows_out": summary.get("rows_out", 0),
                              "rows_quarantined": summary.get("rows_quarantined", 0)}
    for system, report in summary.get("systems", {}).items():
        counts[system] = {k: report.get(k) for k in ("pulled", "written", "failed", "stopped")}
    return counts


def run_chunk(key: str, chunk_start: datetime, chunk_end: datetime, sources: list[str], dry_run: bool,
              config_path: str, writer_leases: dict[str, str] | None = None) -> dict[str, Any]:
    """One chunk: the `crm_sync` subflow over [chunk_start, chunk_end), recorded unless a dry run. The subflow takes
    each system's writer lease (waiting for the hourly sync or the fast lane), or joins `writer_leases` that the
    parallel backfill holds for all its chunks."""
    if not dry_run:
        record_chunk(key, chunk_start, chunk_end, "running", None, None)
    try:
        summary = crm_sync(systems=list(sources), start=chunk_start, end=chunk_end, dry_run=dry_run,
                           config_path=config_path, override_export_guard=True, writer_leases=writer_leases)
    except BaseException as exc:
        if not dry_run:
            record_chunk(key, chunk_start, chunk_end, "failed", None, {"error": f"{type(exc).__name__}: {exc}"})
        raise
    counts = chunk_counts(summary)
    if not dry_run:
        record_chunk(key, chunk_start, chunk_end, "completed", summary.get("run_id"), counts)
    return {"run_id": summary.get("run_id"), **counts}


@task(cache_policy=NO_CACHE)
def backfill_chunk(key: str, chunk_start: datetime, chunk_end: datetime, sources: list[str], dry_run: bool,
                   config_path: str, writer_leases: dict[str, str] | None = None) -> dict[str, Any]:
    """A chunk as a task, for the Dask task runner: the same work as the sequential path."""
    return run_chunk(key, chunk_start, chunk_end, sources, dry_run, config_path, writer_leases)


@flow(name="lead_backfill_chunks", log_prints=False)
def lead_backfill_chunks(key: str, windows: list[tuple[datetime, datetime]], sources: list[str], dry_run: bool,
                         config_path: str, writer_leases: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The chunks as tasks on this flow's task runner (a `DaskTaskRunner`, chosen by `lead_backfill`), all under the
    writer leases the backfill holds (`writer_leases`: system → token)."""
    futures = [backfill_chunk.submit(key, a, b, sources, dry_run, config_path, writer_leases) for a, b in windows]
    return [future.result() for future in futures]


def dask_task_runner() -> Any:
    """The Dask task runner: the scheduler at LEADFLOW_DASK_ADDRESS, else a LocalCluster of threads in-process (no
    `__main__` guard needed, which worker processes would need)."""
    from prefect_dask import DaskTaskRunner

    address = os.environ.get(DASK_ADDRESS_ENV)
    if address:
        return DaskTaskRunner(address=address)
    workers = int(os.environ.get(DASK_WORKERS_ENV, "2"))
    if os.environ.get(DASK_PROCESSES_ENV) == "1":
        return DaskTaskRunner(cluster_kwargs={"processes": True, "n_workers": workers, "threads_per_worker": 1,
                                              "dashboard_address": ":0"})
    return DaskTaskRunner(cluster_kwargs={"processes": False, "n_workers": 1, "threads_per_worker": workers,
                                          "dashboard_address": ":0"})


@flow(name="lead_backfill", log_prints=False)
def lead_backfill(
    start: datetime,
    end: datetime,
    sources: list[BackfillSystem] = ["salesforce"],  # noqa: B006 - Prefect reads the default into the form
    dry_run: bool = False,
    reprocess: bool = False,
    chunk_hours: int = 24,
    config_path: str = "leadflow.yaml",
    parallel: bool = False,
) -> dict[str, Any]:
    """Re-run the sync over leads modified in [start, end), in chunks of `chunk_hours`, without moving the
    incremental watermark. A re-run of the same backfill skips committed chunks; `reprocess` re-runs them all
    (stages re-run on leads already processed). `dry_run` writes nothing and records nothing. `parallel` runs the
    chunks on Dask."""
    logger = get_run_logger()
    start, end = check_parameters(start, end, list(sources), chunk_hours, config_path)
    key = backfill_key(start, end, list(sources), chunk_hours)
    windows = chunks(start, end, chunk_hours)
    done = {} if reprocess else committed_chunks(key)
    todo = [(a, b) for a, b in windows if a.isoformat() not in done]
    logger.info("backfill %s: %d chunks, %d already committed, %d to run", key, len(windows),
                len(windows) - len(todo), len(todo))
    progress = create_progress_artifact(
        progress=100.0 * (len(windows) - len(todo)) / len(windows),
        description=f"lead_backfill {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} UTC, {len(windows)} chunks")
    results: dict[str, dict[str, Any]] = {
        a.isoformat(): {"chunk_end": b.isoformat(), "status": "skipped (committed)", **(done[a.isoformat()].get(
            "counts") or {})} for a, b in windows if a.isoformat() in done}
    if parallel and todo:
        # Chunks run side by side: the backfill takes each system's writer lease once for all of them (chunks are
        # disjoint windows; the routing lock serialises the round robin) and hands it down.
        with ExitStack() as held:
            rules = load_rules(Path(config_path))
            leases = {} if dry_run else {
                s: held.enter_context(writer_lease(s, None, "lead_backfill", rules)).token for s in sources}
            ran = lead_backfill_chunks.with_options(task_runner=dask_task_runner())(
                key, todo, list(sources), dry_run, config_path, leases or None)
        for (a, b), result in zip(todo, ran, strict=True):
            results[a.isoformat()] = {"chunk_end": b.isoformat(), "status": "done", **result}
        update_progress_artifact(progress, 100.0)
    else:
        for n, (a, b) in enumerate(todo, start=1):
            result = run_chunk(key, a, b, list(sources), dry_run, config_path)
            results[a.isoformat()] = {"chunk_end": b.isoformat(), "status": "done", **result}
            update_progress_artifact(progress, 100.0 * (len(windows) - len(todo) + n) / len(windows))
    rows = []
    for a, _ in windows:
        row = results[a.isoformat()]
        line = {"chunk_start": a.isoformat(), "chunk_end": row["chunk_end"], "status": row["status"],
                "run_id": row.get("run_id") or "", "rows_in": row.get("rows_in", 0),
                "rows_quarantined": row.get("rows_quarantined", 0)}
        for system in sources:
            per = row.get(system) or {}
            line[f"{system}_pulled"] = per.get("pulled", 0)
            line[f"{system}_written"] = per.get("written", 0)
        rows.append(line)
    create_table_artifact(table=rows, key=f"backfill-{key[:16]}",
                          description=f"lead_backfill chunks ({'dry run' if dry_run else 'committed'})")
    return {"backfill_key": key, "start": start.isoformat(), "end": end.isoformat(), "sources": list(sources),
            "dry_run": dry_run, "runner": "dask" if parallel and todo else "sequential", "chunks": len(windows), "ran": len(todo), "skipped": len(windows) - len(todo),
            "rows_in": sum(r.get("rows_in", 0) for r in rows), "per_chunk": rows}
