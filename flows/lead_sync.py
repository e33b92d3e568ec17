"""`lead_sync`: read leads from a file, run every configured stage with a data-quality gate after each, write them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.stages import complete_run, recorded_run, run_stages
from leadflow.pipeline import progress
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.pipeline.errors import DataQualityError
from leadflow.pipeline.io import quarantine_path
from leadflow.pipeline.ledger import (
    concat_quarantine,
    enrichment_counts,
    mailable_counts,
    routing_counts,
    scoring_counts,
)
from leadflow.pipeline.settings import INPUT_STAGE, Settings
from leadflow.stages import pipeline_from_names
from tasks.io import read_leads, record_stage, write_leads, write_quarantine_file


@flow(name="lead_sync", log_prints=False)
def lead_sync(
    input_path: str, output_path: str | None = None, config_path: str | None = None, as_of: datetime | None = None
) -> dict[str, Any]:
    """Run the lead pipeline over a CSV/Parquet lead file; returns the run summary. Scores and lifecycle moves are
    evaluated `as_of` (default: now)."""
    logger = get_run_logger()
    rules = load_rules(Path(config_path) if config_path else None)
    inputs = RunInputs(as_of=as_of or datetime.now(UTC))
    pipeline = pipeline_from_names(rules.pipeline, origin=rules.source)
    params = {"input_path": input_path, "output_path": output_path, "config_path": config_path}
    with recorded_run("lead_sync", params) as (run_id, ledger):
        loaded = read_leads(input_path)
        ledger.rows_in = loaded.rows_in
        ledger.quarantine(INPUT_STAGE, loaded.refused)
        record_stage(run_id, INPUT_STAGE, None, loaded.refused)
        logger.info("read %d rows from %s, %d refused", loaded.rows_in, input_path, len(loaded.refused))
        progress.step(f"read {loaded.rows_in} rows", unit="stages")
        quarantined: list[Any] = []
        try:
            frame, _ = run_stages(loaded.frame, rules, inputs, pipeline, run_id=run_id, ledger=ledger,
                                  suites_dir=str(Settings().suites_dir()), quarantined=quarantined)
        except DataQualityError as failed:
            # A tripped gate still leaves what it refused, and what earlier gates refused, to inspect.
            raise keep_failed_gate(failed, run_id, output_path, [loaded.refused.assign(stage=INPUT_STAGE),
                                                                 *quarantined]) from None
        ledger.close(len(frame))
        everything = concat_quarantine([loaded.refused.assign(stage=INPUT_STAGE), *quarantined])
        outputs = write_leads(frame, output_path, everything) if output_path else {}
        progress.step("written", unit="stages")
        return complete_run(run_id, {"run_id": run_id, **ledger.summary(), **mailable_counts(frame), **enrichment_counts(frame),
                                         **scoring_counts(frame), **routing_counts(frame), **outputs})


def keep_failed_gate(failed: DataQualityError, run_id: str, output_path: str | None,
                     earlier: list[Any]) -> DataQualityError:
    """Record the failing gate's quarantine in the state store, write every quarantined row so far to the
    quarantine file beside the output, and return the error saying where they are."""
    rows = failed.quarantine if failed.quarantine is not None else None
    if rows is not None and len(rows):
        record_stage(run_id, failed.stage or failed.suite, None, rows)
        earlier = [*earlier, rows.assign(stage=failed.stage or failed.suite)]
    where = f"state store run {run_id}"
    if output_path:
        path = write_quarantine_file(concat_quarantine(earlier), str(quarantine_path(output_path)))
        where = f"{path} and the {where}"
    return DataQualityError(failed.suite, f"{failed.detail}; the rows quarantined so far are in {where}",
                            failed.result, quarantine=failed.quarantine, stage=failed.stage)
