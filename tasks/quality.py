"""The data-quality gate task: validation through leadflow.pipeline.quality, results published as artifacts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.quality import GateResult, QualityGate
from tasks.events import emit_dq_failed
from tasks.runner import task


def publish_gate(gate: GateResult) -> None:
    """Every gate leaves a table artifact; a failed gate also leaves a markdown report saying why."""
    create_table_artifact(
        key=f"leads-{gate.stage}-gate",
        table=gate.expectations,
        description=(
            f"GX suite `{gate.suite}`: {gate.rows_in} rows in, {len(gate.passed)} passed, "
            f"{gate.rows_quarantined} quarantined in {gate.seconds:.2f}s"
        ),
    )
    if not gate.success:
        create_markdown_artifact(
            key=f"leads-{gate.stage}-gate-failure",
            markdown=f"# Data-quality gate `{gate.suite}` failed\n\n{gate.failure}\n",
            description=f"Batch-level failure of {gate.suite}",
        )
        emit_dq_failed(gate)  # before the gate raises DataQualityError


@task(cache_policy=NO_CACHE)
def gate_leads(
    frame: pd.DataFrame, stage: str, suites_dir: str, max_quarantine_share: float, suite: str | None = None
) -> GateResult:
    """Validate a stage's output with its suite (`leads_<stage>` unless named); failing rows come back in
    `quarantine`."""
    return QualityGate(Path(suites_dir), max_quarantine_share, publish=publish_gate).check(frame, stage, suite)
