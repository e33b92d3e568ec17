"""`lead_sync`: read leads, run every configured stage with a data-quality gate after each, write the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from leadflow.config import load_rules
from leadflow.pipeline import RunLedger, audit_events, concat_quarantine, mailable_counts
from leadflow.settings import INPUT_STAGE, Settings
from leadflow.stages import pipeline_from_names
from tasks.io import close_run, open_run, read_leads, record_stage, write_leads
from tasks.quality import gate_leads
from tasks.report import publish_summary
from tasks.stages import STAGE_TASKS


@flow(name="lead_sync", log_prints=False)
def lead_sync(input_path: str, output_path: str | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Run the lead pipeline over a CSV/Parquet lead file; returns the run summary."""
    logger = get_run_logger()
    rules = load_rules(Path(config_path) if config_path else None)
    pipeline = pipeline_from_names(rules.pipeline, origin=rules.source)
    settings = Settings()
    run_id = open_run("lead_sync", {"input_path": input_path, "output_path": output_path,
                                                "config_path": config_path})
    ledger = RunLedger()
    try:
        loaded = read_leads(input_path)
        ledger.rows_in = loaded.rows_in
        ledger.quarantine(INPUT_STAGE, loaded.refused)
        record_stage(run_id, INPUT_STAGE, None, loaded.refused)
        quarantined = [loaded.refused.assign(stage=INPUT_STAGE)]
        frame = loaded.frame
        logger.info("read %d rows from %s, %d refused", loaded.rows_in, input_path, len(loaded.refused))
        for stage in pipeline:
            started = time.perf_counter()
            changed = STAGE_TASKS[stage.name](frame, rules)
            ledger.stage_seconds[stage.name] = time.perf_counter() - started
            gate = gate_leads(changed, stage.name, str(settings.suites_dir()), rules.max_quarantine_share)
            ledger.gate_seconds[stage.name] = gate.seconds
            ledger.quarantine(stage.name, gate.quarantine)
            events = audit_events(frame, changed, stage.writes, run_id=run_id, stage=stage.name)
            record_stage(run_id, stage.name, events, gate.quarantine)
            quarantined.append(gate.quarantine.assign(stage=stage.name))
            frame = gate.passed
            logger.info("%s: %d rows passed, %d quarantined", stage.name, len(frame), gate.rows_quarantined)
        ledger.close(len(frame))
        outputs = write_leads(frame, output_path, concat_quarantine(quarantined)) if output_path else {}
        summary = {"run_id": run_id, **ledger.summary(), **mailable_counts(frame), **outputs}
        publish_summary(summary)
        close_run(run_id, "completed", summary)
        return summary
    except Exception as exc:
        close_run(run_id, "failed", ledger.summary(), f"{type(exc).__name__}: {exc}")
        raise
