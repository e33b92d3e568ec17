"""`intake_batch`: one micro-batch of pushed notifications (`leadflow intake serve`'s processor) through exactly
`crm_sync`'s page path: per system, under its writer lease (never waited for: a busy system's notifications stay
pending), the records are fetched by id in one call and the page goes through `process_page` — echoes skipped,
stages, gates, guard, write-back, audit trail, receipts, events — as one `intake` run in the state store. No
watermark moves: polling stays the safety net and keeps its own.

`WarmSystems` keeps what a run builds lazily — connectors (logged in, rate limiters warm), the CRM mirror and MAP
activities (`read_reference_data`), the GX contexts (cached per process by the gate) — between batches; every
`processing.refresh_seconds` the reference data is brought up to date with only what changed
(`refresh_reference_data`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from flows.crm_sync import (
    LEAD_OBJECT,
    ReferenceData,
    SyncRun,
    process_page,
    read_reference_data,
    refresh_reference_data,
    with_reference_data,
)
from flows.stages import complete_run, recorded_run
from leadflow.connectors.registry import connect
from leadflow.intake.batches import WEB_CRM, BatchOutcome, crm_groups
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.stages import pipeline_from_names
from leadflow.store.leases import LeaseBusy
from tasks.events import emit_sync_errors
from tasks.intake import create_web_leads, fetch_records
from tasks.io import dead_letter_counts, writer_lease
from tasks.notify import run_notices
from tasks.runner import inline_tasks


class WarmSystems:
    """The run config, pipeline, connectors and reference inputs, kept between batches. Connectors live as long as
    the process; the reference data (CRM mirror, MAP activities) is read once, then refreshed with only what changed
    once older than `refresh_seconds` (0: every batch; a refresh that failed is tried again next batch). Each batch
    starts its connectors' API budgets and export guards afresh, as a run does."""

    def __init__(self, config_path: Path | None, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config_path, self.refresh_seconds, self._clock = config_path, refresh_seconds, clock
        self.rules = load_rules(config_path)
        self.pipeline = pipeline_from_names(self.rules.pipeline, origin=self.rules.source)
        self._connectors: dict[str, Any] = {}
        self._data: ReferenceData | None = None
        self._inputs: RunInputs | None = None
        self._read_at = clock()
        self.refreshes = 0

    def start_batch(self) -> None:
        for connector in self._connectors.values():
            budget, guard = getattr(connector, "budget", None), getattr(connector, "guard", None)
            if budget is not None:
                budget.used = 0
            if guard is not None:
                connector.guard = replace(guard, pulled=set(), changed=set(), pages=0)

    def connectors(self) -> dict[str, Any]:
        """One connector per configured system (and the CRM/MAP the stages read), built on first use."""
        if not self._connectors:
            rules, names = self.rules, set(self.pipeline.names)
            wanted = [*rules.systems.names, *(["salesforce"] if {"enrich", "assign"} & names and
                                              rules.systems.salesforce else [])]
            self._connectors = {s: connect(s, rules.systems, origin=rules.source) for s in dict.fromkeys(wanted)}
        return self._connectors

    def inputs(self, as_of: datetime) -> RunInputs:
        """The reference inputs (CRM mirror, owners, activities) evaluated at `as_of`: read the first time,
        brought up to `as_of` with only what changed once older than `refresh_seconds`."""
        now = self._clock()
        if self._data is None:
            self._keep(read_reference_data(self.rules, self.pipeline, self.connectors(), as_of), as_of)
            self._read_at = now
        elif now - self._read_at >= self.refresh_seconds:
            self._keep(refresh_reference_data(self.rules, self.pipeline, self.connectors(), as_of, self._data), as_of)
            self.refreshes += 1
            if not self._data.stale:  # a failed source is tried again at the next batch
                self._read_at = now
        assert self._inputs is not None
        return replace(self._inputs, as_of=as_of)

    def _keep(self, data: ReferenceData, as_of: datetime) -> None:
        self._data, self._inputs = data, with_reference_data(self.rules, self.pipeline, RunInputs(as_of=as_of), data)

    def close(self) -> None:
        for connector in self._connectors.values():
            getattr(connector, "close", lambda: None)()
        self._connectors, self._data, self._inputs = {}, None, None


class BatchInputs:
    """`SyncRun.lazy_inputs` for a batch: the warm inputs at the batch's time, prepared on first use."""

    def __init__(self, warm: WarmSystems, as_of: datetime) -> None:
        self._warm, self._as_of, self._inputs = warm, as_of, None

    def get(self) -> RunInputs:
        if self._inputs is None:
            self._inputs = self._warm.inputs(self._as_of)
        return self._inputs


class IntakeBatch:
    """A claimed batch and the warm systems it runs with. Iterating it gives the summary Prefect records as the
    flow run's parameter (no payloads, no connectors)."""

    def __init__(self, rows: pd.DataFrame, warm: WarmSystems) -> None:
        self.rows, self.warm = rows, warm

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        yield "notifications", len(self.rows)
        yield "systems", self.rows["system"].value_counts().to_dict() if len(self.rows) else {}


@flow(name="intake_batch", log_prints=False, validate_parameters=False)
def intake_batch(batch: IntakeBatch) -> BatchOutcome:
    """Process one claimed batch; the outcome per notification (the processor completes, retries or fails them)."""
    started = datetime.now(UTC)
    warm, rows = batch.warm, batch.rows
    warm.start_batch()
    outcome = BatchOutcome()
    configured = set(warm.rules.systems.names)
    # Seconds count: the batch's steps run inline in this flow run, not as ~30 task runs per system (tasks.runner).
    with inline_tasks(), recorded_run("intake", dict(batch)) as (run_id, ledger):
        run = SyncRun(run_id, ledger, warm.rules, BatchInputs(warm, started), warm.pipeline, None, None, False,
                      False, None, None)
        per_system: dict[str, dict[str, Any]] = {}
        for system, group in crm_groups(rows, WEB_CRM).items():
            if system not in configured:
                outcome.fail(group["id"], f"{system} is not configured in the run config {warm.rules.source}")
                continue
            per_system[system] = intake_system(run, system, group, warm, started, outcome)
        ledger.close(ledger.rows_out)
        # After the batch's write-backs: a failure to notify never holds back a routed lead.
        notified = run_notices(run.notices, warm.rules, run.inputs.as_of) if run.notices else {}
        outcome.summary = complete_run(run_id, {"run_id": run_id, **ledger.summary(), "systems": per_system,
                                                "notifications": len(rows), "dry_run": False,
                                                **({"owner_notices": notified} if notified else {})})
    return outcome


def intake_system(run: SyncRun, system: str, rows: pd.DataFrame, warm: WarmSystems, since: datetime,
                  outcome: BatchOutcome) -> dict[str, Any]:
    """One system's notifications (web ones included for the CRM): under its writer lease, create the web leads,
    fetch every record by id in one call, run `process_page`; settle each notification in `outcome`."""
    logger = get_run_logger()
    writes = bool(getattr(warm.rules.systems, system).write_back)
    report: dict[str, Any] = {"pulled": 0, "written": 0, "failed": 0, "stopped": None, "write_back": writes,
                              "changes": {}, "not_found": 0}
    # One writer per system from every entry point, never waited for: busy, the notifications stay pending.
    no_wait = SimpleNamespace(concurrency=warm.rules.concurrency.model_copy(update={"writer_wait_seconds": 0}))
    try:
        with writer_lease(system, run.run_id, "intake", no_wait) as lease:
            connector = warm.connectors()[system]
            ids = rows.set_index("id")["record_id"].astype(str)
            web = rows[rows["system"] == "web"]
            if len(web):
                created, errors = create_web_leads(connector, web)
                ids.loc[list(created)] = list(created.values())
                for row_id, error in errors.items():
                    outcome.fail([row_id], error)
                ids = ids.drop(list(errors))
            # Outbound Messages may be about Contacts: leads are what the sync processes.
            by_id = rows.set_index("id").reindex(ids.index)
            others = ids.index[((by_id["system"] == "salesforce") & (by_id["object"] != LEAD_OBJECT)).to_numpy()]
            outcome.settle(others, "not a Lead: contacts reach leadflow through the CRM mirror")
            ids = ids.drop(others)
            page = fetch_records(connector, ids.tolist()) if len(ids) else pd.DataFrame()
            found = set(page["lead_id"].dropna().astype(str)) if len(page) else set()
            if len(page):
                process_page(run, system, connector, page, since, writes, lease, report)
            as_fetched = ids.map(lambda record_id: _fetched_id(connector, system, record_id))
            missing = ids.index[~as_fetched.isin(found).to_numpy()]
            report["not_found"] = len(missing)
            outcome.settle(missing, f"not found in {system}: deleted or merged since it was notified")
            outcome.settle(ids.index.difference(missing))
    except LeaseBusy as busy:
        outcome.busy[system] = str(busy)
        outcome.released.update(dict.fromkeys(outcome.unsettled(rows["id"]), f"waiting: {busy}"))
        return report | {"stopped": "writer busy"}
    except Exception as exc:  # noqa: BLE001 - settled by kind: transient ones retried, the rest failed with why
        logger.warning("intake: %s: %d notification(s) not processed: %s: %s", system, len(rows),
                       type(exc).__name__, exc)
        outcome.fail(outcome.unsettled(rows["id"]), exc)
        report["stopped"] = f"{type(exc).__name__}: {exc}"
    report["dead_letters"] = dead_letter_counts(system)
    emit_sync_errors(system, report, run.run_id)
    logger.info("intake %s: %d notification(s), fetched %d, written %d", system, len(rows), report["pulled"],
                report["written"])
    return report


def _fetched_id(connector: Any, system: str, record_id: str) -> str:
    """A notification's record id as the fetched page's `lead_id` spells it (Marketo's carry the mapping's prefix)."""
    if system == "marketo":
        return f"{connector.mapping.id_prefix}{record_id}"
    return record_id
