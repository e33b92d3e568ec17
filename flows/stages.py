"""The stage loop both sync flows share: each stage as a task, a GX gate after it, audit and quarantine recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import get_run_logger

from leadflow.pipeline import progress
from leadflow.audit.changes import ChunkPlan, lead_run_rows, pack_changes
from leadflow.pipeline.config import Rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.pipeline.ledger import RunLedger
from leadflow.pipeline.schema import lead_keys
from leadflow.pipeline.stage import Pipeline
from tasks.io import STAGE_STATE, close_run, open_run, record_changes
from tasks.quality import gate_leads
from tasks.report import publish_kpis, publish_summary
from tasks.routing import assign_leads
from tasks.stages import STAGE_TASKS

KEY_COLUMNS = frozenset({"source", "lead_id", "email"})
"""What `lead_keys` reads."""
STATEFUL_TASKS = {"assign": assign_leads}
"""Stages whose task keeps state in the store itself (under a lock), so it needs the run id and dry-run switch."""


def run_stages(
    frame: pd.DataFrame, rules: Rules, inputs: RunInputs, pipeline: Pipeline, *, run_id: str, ledger: RunLedger,
    suites_dir: str, keep_state: bool = True, quarantined: list[pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Run every stage over `frame` with this run's (or page's) `inputs`; returns the rows that passed every gate
    and each stage's quarantine records (appended to `quarantined` as they come, when given, so a failed gate leaves
    the earlier ones to its caller). `keep_state=False` (a dry run) leaves the stages' memory, such as the lifecycle
    state, as it was."""
    logger = get_run_logger()
    quarantined = [] if quarantined is None else quarantined
    plan: ChunkPlan | None = None  # the audit trail's chunks, fixed by the first stage's rows
    keys: pd.Series | None = None  # the rows' lead keys, computed again only after a stage that writes a key column
    for stage in pipeline:
        memory = STAGE_STATE.get(stage.name)
        if memory is not None:
            started = time.perf_counter()
            frame = memory[0](frame, rules)
            ledger.time("state", time.perf_counter() - started)
        started = time.perf_counter()
        if stage.name in STATEFUL_TASKS:
            changed = STATEFUL_TASKS[stage.name](frame, rules, inputs, run_id, keep_state)
        else:
            changed = STAGE_TASKS[stage.name](frame, rules, inputs)
        ledger.stage_seconds[stage.name] = ledger.stage_seconds.get(stage.name, 0.0) + time.perf_counter() - started
        gate = gate_leads(changed, stage.name, suites_dir, rules.max_quarantine_share, stage.suite)
        ledger.gate_seconds[stage.name] = ledger.gate_seconds.get(stage.name, 0.0) + gate.seconds
        ledger.quarantine(stage.name, gate.quarantine)
        started = time.perf_counter()
        if keys is None or KEY_COLUMNS.intersection(stage.writes):
            keys = lead_keys(changed)
        else:  # the stage kept the rows' key columns (its contract: it writes `writes` only, on the same index)
            keys = keys.reindex(changed.index)
        leads = None
        if plan is None:
            plan = ChunkPlan.for_frame(changed.index, ledger.next_chunk)
            ledger.next_chunk = plan.next_chunk
            leads = lead_run_rows(changed, keys, plan)
        chunks = pack_changes(frame, changed, stage.writes, keys, plan)
        record_changes(run_id, stage.name, datetime.now(UTC), chunks, leads, gate.quarantine)
        ledger.audit_seconds += time.perf_counter() - started
        quarantined.append(gate.quarantine.assign(stage=stage.name))
        frame = gate.passed
        if memory is not None and memory[1] is not None and keep_state:
            started = time.perf_counter()
            memory[1](frame, run_id)
            ledger.time("state", time.perf_counter() - started)
        logger.info("%s: %d rows passed, %d quarantined", stage.name, len(frame), gate.rows_quarantined)
        progress.step(stage.name, unit="stages")
        del changed, gate, chunks, leads  # the full stage output must not stay alive through the next stage
    return frame, quarantined


@contextmanager
def recorded_run(flow: str, params: dict[str, Any]) -> Iterator[tuple[str, RunLedger]]:
    """A run in the state store and its ledger; an exception marks the run failed (with the counts so far)."""
    run_id = open_run(flow, params)
    ledger = RunLedger()
    try:
        yield run_id, ledger
    except Exception as exc:
        close_run(run_id, "failed", ledger.summary(), f"{type(exc).__name__}: {exc}")
        raise


def complete_run(run_id: str, summary: dict[str, Any], *, staged_kpis_recorded: bool = False) -> dict[str, Any]:
    """Publish the run's artifacts (summary, report, KPIs) and mark it completed. `staged_kpis_recorded`: the run
    recorded its staged leads' KPIs chunk by chunk (`record_chunk_kpis`)."""
    publish_summary(summary)
    started = time.perf_counter()
    publish_kpis(run_id, summary, staged_recorded=staged_kpis_recorded)
    timings = summary.setdefault("timings", {})
    timings["kpis_seconds"] = round(timings.get("kpis_seconds", 0.0) + time.perf_counter() - started, 3)
    close_run(run_id, "completed", summary)
    return summary
