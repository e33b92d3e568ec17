"""Run reporting tasks: the summary becomes Prefect artifacts."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.ledger import summary_markdown, summary_table
from leadflow.pipeline.errors import first_line
from tasks.io import _transient, state_store
from tasks.runner import task


@task
def publish_summary(summary: dict[str, Any]) -> None:
    """A summary table and a markdown report for the run."""
    create_table_artifact(key="lead-sync-summary", table=summary_table(summary), description=f"run {summary['run_id']}")
    create_markdown_artifact(key="lead-sync-report", markdown=summary_markdown(summary))


KPI_WINDOW = timedelta(days=1)
"""The window of the KPIs published after every run, from the start of its first hour (the full picture, read from
the audit trail, is `leadflow report --since 30d`)."""


@task(retries=2, retry_delay_seconds=[1, 4], retry_condition_fn=_transient, cache_policy=NO_CACHE)
def publish_kpis(run_id: str | None = None, run_stats: dict[str, Any] | None = None,
                 staged_recorded: bool = False) -> dict[str, Any]:
    """Speed-to-lead, SLA attainment, funnel and data-quality KPIs since the hour a day ago, as a table artifact.

    With `run_id`, the run's own leads are first added to the hourly rollups (`leadflow.audit.kpi_rollups`); the
    window is then read from the rollups, never by re-reading the audit trail. `run_stats` (the run's summary) stands
    in for its stats, which the store gets only when the run is closed, after this task. `staged_recorded`: the run's
    staged leads were recorded chunk by chunk (`record_chunk_kpis`); only its write-backs and mark are left."""
    from leadflow.audit.kpi_rollups import record_run_kpis, rollup_kpi_summary, window_start
    from leadflow.audit.kpis import readable_rows

    store = state_store()
    if run_id is not None:
        record_run_kpis(store, run_id, staged=not staged_recorded)
    now = datetime.now(UTC)
    since = window_start(now - KPI_WINDOW)
    summary = rollup_kpi_summary(store, since, as_of=now, run_id=run_id, run_stats=run_stats)
    # durations as a person reads them (s / min / h / d), rates as percentages; the numbers stay in `summary`
    create_table_artifact(key="leadflow-kpis", table=readable_rows(summary),
                          description=f"leadflow KPIs since {since.isoformat(timespec='minutes')}")
    return summary


@task(retries=2, retry_delay_seconds=[1, 4], retry_condition_fn=_transient, cache_policy=NO_CACHE)
def record_chunk_kpis(run_id: str, chunks: range, since: datetime, by_chunk: bool = False) -> int:
    """Add the leads a streamed run staged in audit `chunks` (at or after `since`: the first chunk's start) to the KPI
    rollups, so the run's end never holds all its leads' facts at once; returns the changed counters. Idempotent: a
    retry counts nothing twice. `chunks` are one page's, unless `by_chunk`: pages of one audit chunk each, recorded
    as recording them one at a time would, for less: each recording rewrites most leaf pages of `kpi_lead_facts`' key
    and e-mail indexes once they are large."""
    from leadflow.audit.kpi_rollups import record_run_kpis

    return record_run_kpis(state_store(), run_id, chunks=chunks, since=since, by_chunk=by_chunk)


@task(retries=2, retry_delay_seconds=[1, 4], retry_condition_fn=_transient, cache_policy=NO_CACHE)
def record_lead_kpis(run_id: str, lead_keys: list[str]) -> int:
    """Recount in the KPI rollups the leads whose first touch, breach or owner run `run_id` changed without staging
    them (`sla_watch`): `lead_keys` and those whose CRM first touch the run moved; returns the changed counters.
    Idempotent: a retry counts nothing twice."""
    from leadflow.audit.kpi_rollups import record_lead_kpis as recount

    return recount(state_store(), lead_keys, run_id)


KPI_BATCH_CHUNKS = 4
"""Audit chunks a streamed run adds to the KPI rollups per recording: the same facts and counters as one by one, for
20-40 % less CPU (`record_chunk_kpis`; measured at 200k-1.2M stored leads)."""


class ChunkKpis:
    """A streamed run's KPI recordings, `every` pages at a time: `add` each processed page's audit chunks; the last
    ones are recorded when the block ends, also when it ends with an error (every finished page counted, as before;
    a failure to record then is logged and the run's own error raised). A page of several audit chunks (more rows
    than an audit chunk holds) is recorded on its own, as before. The time goes to the ledger's `kpis`."""

    def __init__(self, run_id: str, ledger: Any, every: int = KPI_BATCH_CHUNKS) -> None:
        self.run_id, self.ledger, self.every = run_id, ledger, every
        self._start: int | None = None
        self._stop = 0
        self._since: datetime | None = None

    def add(self, chunks: range, since: datetime) -> None:
        """Audit `chunks` of one processed page, which started at `since`."""
        if not len(chunks):
            return
        if len(chunks) > 1:  # its leads' facts are the whole page's, not chunk by chunk
            self.flush()
            self._record(chunks, since, by_chunk=False)
            return
        if self._start is None:
            self._start, self._since = chunks.start, since
        self._stop = chunks.stop
        if self._stop - self._start >= self.every:
            self.flush()

    def flush(self) -> None:
        """Record the pages added since the last recording."""
        if self._start is None or self._since is None:
            return
        pending, since = range(self._start, self._stop), self._since
        self._start = self._since = None
        self._record(pending, since, by_chunk=True)

    def _record(self, chunks: range, since: datetime, *, by_chunk: bool) -> None:
        started = time.perf_counter()
        try:
            record_chunk_kpis(self.run_id, chunks, since, by_chunk=by_chunk)
        finally:
            self.ledger.time("kpis", time.perf_counter() - started)

    def __enter__(self) -> ChunkKpis:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None:
            self.flush()
            return
        try:
            self.flush()
        except Exception as failed:  # the run's own error is the one to raise
            logging.getLogger("leadflow.kpis").warning("KPIs of the run's last chunks not recorded: %s: %s",
                                                       type(failed).__name__, first_line(failed))
