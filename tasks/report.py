"""Run reporting tasks: the summary becomes Prefect artifacts."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from leadflow.pipeline import summary_markdown, summary_table


@task
def publish_summary(summary: dict[str, Any]) -> None:
    """A summary table and a markdown report for the run."""
    create_table_artifact(key="lead-sync-summary", table=summary_table(summary), description=f"run {summary['run_id']}")
    create_markdown_artifact(key="lead-sync-report", markdown=summary_markdown(summary))
