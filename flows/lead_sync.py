"""`lead_sync`: read leads from a file, run every configured stage with a data-quality gate after each, write them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.stages import complete_run, recorded_run, run_stages
from leadflow.pipeline import progress
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.pipeline.errors import DataQualityError
from leadflow.identity.earlier_leads import EarlierLeads
from leadflow.pipeline.io import (
    DEFAULT_CHUNK_ROWS,
    LeadFileWriter,
    QuarantineFileWriter,
    iter_leads,
    quarantine_path,
)
from leadflow.pipeline.ledger import (
    RunLedger,
    add_counts,
    concat_quarantine,
    enrichment_counts,
    mailable_counts,
    routing_counts,
    scoring_counts,
)
from leadflow.pipeline.settings import INPUT_STAGE, Settings
from leadflow.stages import pipeline_from_names
from tasks.io import record_stage
from tasks.report import ChunkKpis
from tasks.runner import inline_tasks


@flow(name="lead_sync", log_prints=False)
def lead_sync(
    input_path: str, output_path: str | None = None, config_path: str | None = None, as_of: datetime | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    """Run the lead pipeline over a CSV/Parquet lead file, `chunk_rows` rows at a time (memory stays that of one
    chunk); returns the run summary. Scores and lifecycle moves are evaluated `as_of` (default: now). Output and
    quarantine are appended chunk by chunk and appear whole when the run completes.

    The tasks run inline (`tasks.runner.inline_tasks`): one flow run, whose log has every chunk's stages, instead of
    ~15 task runs per 50k-row chunk, whose orchestration cost ~1 s of CPU per chunk (with a temporary Prefect server:
    200k leads 31.7 -> 27.8 s). Their retries on I/O are the same."""
    logger = get_run_logger()
    rules = load_rules(Path(config_path) if config_path else None)
    inputs = RunInputs(as_of=as_of or datetime.now(UTC))
    pipeline = pipeline_from_names(rules.pipeline, origin=rules.source)
    params = {"input_path": input_path, "output_path": output_path, "config_path": config_path}
    counts: dict[str, Any] = {}
    with inline_tasks(), recorded_run("lead_sync", params) as (run_id, ledger), ExitStack() as files:
        chunks = timed(ledger, "read", iter_leads(input_path, chunk_rows))
        first = next(chunks)
        out = quarantine = None
        if output_path:
            out = files.enter_context(LeadFileWriter(output_path, first.ignored))
            quarantine = files.enter_context(QuarantineFileWriter(quarantine_path(output_path), first.ignored))
        earlier = files.enter_context(EarlierLeads())
        kpis = files.enter_context(ChunkKpis(run_id, ledger))  # the KPI rollups, a few chunks at a time
        addresses = None  # the last chunk's, added to `earlier` only once another chunk comes
        for number, loaded in enumerate(chain([first], chunks), start=1):
            if addresses is not None:
                earlier.add(addresses)
            ledger.rows_in += loaded.rows_in
            ledger.quarantine(INPUT_STAGE, loaded.refused)
            record_stage(run_id, INPUT_STAGE, None, loaded.refused)
            quarantined: list[Any] = [loaded.refused.assign(stage=INPUT_STAGE)]
            logger.info("chunk %d: read %d rows from %s, %d refused", number, loaded.rows_in, input_path,
                        len(loaded.refused))
            first_chunk, chunk_started = ledger.next_chunk, datetime.now(UTC)
            try:
                frame, _ = run_stages(loaded.frame, rules, replace(inputs, earlier_leads=earlier), pipeline,
                                      run_id=run_id, ledger=ledger, suites_dir=str(Settings().suites_dir()),
                                      quarantined=quarantined)
            except DataQualityError as failed:
                # A tripped gate still leaves what it refused, and what earlier gates refused, to inspect.
                raise keep_failed_gate(failed, run_id, quarantine, quarantined) from None
            addresses = frame[[c for c in ("email", "lead_id", "duplicate_of") if c in frame]]
            kpis.add(range(first_chunk, ledger.next_chunk), chunk_started)
            started = time.perf_counter()
            if out is not None and quarantine is not None:
                out.append(frame)
                quarantine.append(concat_quarantine(quarantined))
            ledger.time("write", time.perf_counter() - started)
            ledger.rows_out += len(frame)
            for summarize in (mailable_counts, enrichment_counts, scoring_counts, routing_counts):
                add_counts(counts, summarize(frame))
            progress.step(f"chunk {number}: {ledger.rows_in} rows", unit="chunks")
            del frame, quarantined, loaded
        kpis.flush()
        ledger.close(ledger.rows_out)
        outputs = {}
        if out is not None and quarantine is not None:
            started = time.perf_counter()
            outputs = {"output": str(out.commit()), "quarantine": str(quarantine.commit())}
            ledger.time("write", time.perf_counter() - started)
        progress.step("written", unit="chunks")
        return complete_run(run_id, {"run_id": run_id, **ledger.summary(), **counts, **outputs},
                            staged_kpis_recorded=True)


def timed(ledger: RunLedger, step: str, items: Iterator[Any]) -> Iterator[Any]:
    """`items`, with the time spent producing each added to the ledger's `step`."""
    while True:
        started = time.perf_counter()
        try:
            item = next(items)
        except StopIteration:
            return
        finally:
            ledger.time(step, time.perf_counter() - started)
        yield item


def keep_failed_gate(failed: DataQualityError, run_id: str, quarantine: QuarantineFileWriter | None,
                     earlier: list[Any]) -> DataQualityError:
    """Record the failing gate's quarantine in the state store, write every quarantined row so far (this chunk's
    `earlier` ones and the gate's; earlier chunks' are written already) to the quarantine file beside the output,
    and return the error saying where they are."""
    rows = failed.quarantine if failed.quarantine is not None else None
    if rows is not None and len(rows):
        record_stage(run_id, failed.stage or failed.suite, None, rows)
        earlier = [*earlier, rows.assign(stage=failed.stage or failed.suite)]
    where = f"state store run {run_id}"
    if quarantine is not None:
        quarantine.append(concat_quarantine(earlier))
        where = f"{quarantine.commit()} and the {where}"
    return DataQualityError(failed.suite, f"{failed.detail}; the rows quarantined so far are in {where}",
                            failed.result, quarantine=failed.quarantine, stage=failed.stage)
