"""Run reporting tasks: the summary becomes Prefect artifacts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.ledger import summary_markdown, summary_table
from tasks.io import _transient, state_store


@task
def publish_summary(summary: dict[str, Any]) -> None:
    """A summary table and a markdown report for the run."""
    create_table_artifact(key="lead-sync-summary", table=summary_table(summary), description=f"run {summary['run_id']}")
    create_markdown_artifact(key="lead-sync-report", markdown=summary_markdown(summary))


KPI_WINDOW = timedelta(days=1)
"""The window of the KPIs published after every run (the full picture is `leadflow report --since 30d`)."""


@task(retries=2, retry_delay_seconds=[1, 4], retry_condition_fn=_transient, cache_policy=NO_CACHE)
def publish_kpis() -> dict[str, Any]:
    """Speed-to-lead, SLA attainment, funnel and data-quality KPIs of the last day, as a table artifact."""
    from leadflow.audit.kpis import flatten_summary, kpi_summary, load_kpi_data

    now = datetime.now(UTC)
    summary = kpi_summary(load_kpi_data(state_store(), now - KPI_WINDOW, as_of=now))
    flat = flatten_summary(summary)
    create_table_artifact(key="leadflow-kpis", table=[{"kpi": k, "value": v} for k, v in flat.items()],
                          description=f"leadflow KPIs since {(now - KPI_WINDOW).isoformat(timespec='minutes')}")
    return summary
