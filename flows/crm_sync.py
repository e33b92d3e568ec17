"""`crm_sync`: incremental pull from each configured CRM/MAP, every stage, write-back of changed fields.

The flow owns the state: a system's watermark moves only after a page is processed, written back and recorded, so a
crash anywhere re-pulls that page, and because only changed fields are written, a re-run writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger

from flows.stages import complete_run, recorded_run, run_stages
from leadflow.pipeline import progress
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.connectors.base import SourceStopped
from leadflow.connectors.registry import connect
from leadflow.pipeline.io import prepare_leads
from leadflow.pipeline.ledger import RunLedger, add_counts, enrichment_counts, mailable_counts, routing_counts, scoring_counts
from leadflow.pipeline.schema import conform, lead_keys
from leadflow.pipeline.settings import INPUT_STAGE, Settings
from leadflow.stages import pipeline_from_names
from leadflow.store.leases import LeaseLost
from leadflow.sync.mirror import MirrorView
from leadflow.sync.pages import (
    PULL_ERROR,
    PULL_STAGE,
    changes_from_dead_letters,
    dead_letter_failures,
    high_water,
    split_pull_errors,
)
from leadflow.sync.receipts import after_write_hashes, connector_receipt_spec, echo_mask, receipt_hashes, receipt_rows
from leadflow.sync.writeback import (
    changed_fields,
    drop_converted,
    merge_diff,
    owners_in_place,
    refused_events,
    without_refused,
    writeback_events,
)
from tasks.crm import check_dead_letter_replay, write_back, write_back_guarded
from tasks.enrichment import (
    join_activity_windows,
    pull_activities,
    pull_status_history,
    refresh_crm_mirror,
    with_activities,
    with_crm_reference,
    with_owner_directory,
    with_status_history,
)
from tasks.events import emit_budget_exhausted, emit_sync_errors
from tasks.io import (
    TRANSIENT,
    commit_watermark,
    confirm_owners_written,
    dead_letter_counts,
    load_lifecycle_state,
    load_receipts,
    load_watermark,
    pending_dead_letters,
    record_stage,
    record_write_outcome,
    save_receipts,
    seen_leads,
    writer_lease,
)
from tasks.notify import notice_rows, run_notices

System = Literal["salesforce", "marketo", "hubspot"]
LEAD_OBJECT = "Lead"


@flow(name="crm_sync", log_prints=False)
def crm_sync(
    systems: list[System] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    dry_run: bool = False,
    config_path: str | None = None,
    override_export_guard: bool = False,
    watermark_key: str | None = None,
    only_lead_sources: list[str] | None = None,
    writer_leases: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One sync of every configured system (or `systems`); with `start`, a backfill of [start, end) that leaves the
    incremental watermark alone. `dry_run` writes nothing back and moves no watermark. `override_export_guard` lets
    a write change more records than the connector's export guard allows. `watermark_key` gives an incremental sync
    its own watermark per system (`<system>:<watermark_key>`), so it never moves the plain one; `only_lead_sources`
    processes and writes only leads with one of those lead sources (the rest are left to the other syncs).

    Each system is written by one run at a time: its writer lease is taken before the pull and held through the last
    write-back (a run waits for another writer, then stops naming it). `writer_leases` hands down leases a parent
    run already holds (system → token), as a parallel backfill does for its chunks."""
    # A backfill scores "as of" its window end; an incremental sync as of now.
    rules = load_rules(Path(config_path) if config_path else None)
    inputs = RunInputs(as_of=(end or datetime.now(UTC)) if start is not None else datetime.now(UTC))
    pipeline = pipeline_from_names(rules.pipeline, origin=rules.source)
    names = list(systems or rules.systems.names)
    params = {"systems": names, "start": start, "end": end, "dry_run": dry_run, "config_path": config_path}
    if watermark_key is not None or only_lead_sources is not None:
        params |= {"watermark_key": watermark_key, "only_lead_sources": only_lead_sources}
    per_system: dict[str, dict[str, Any]] = {}
    recorded = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in params.items()}
    with recorded_run("crm_sync", recorded) as (run_id, ledger):
        # One connector per system for the whole run, so each API budget counts every call the run makes.
        crm_needed = bool({"enrich", "assign"} & set(pipeline.names))
        wanted = [*names, *(["salesforce"] if crm_needed and rules.systems.salesforce else []),
                  *(["marketo"] if "score" in pipeline.names and rules.systems.marketo else [])]
        connectors = {s: connect(s, rules.systems, origin=rules.source) for s in dict.fromkeys(wanted)}
        # The CRM mirror and the MAP's activities are read when the first page has leads to process: a run with
        # nothing new (the fast lane, most of the time) costs only its pulls.
        run_inputs = LazyInputs(lambda: reference_inputs(rules, pipeline, connectors, inputs))
        notices: list[pd.DataFrame] = []
        for system in names:
            per_system[system] = sync_system(
                SyncRun(run_id, ledger, rules, run_inputs, pipeline, start, end, dry_run, override_export_guard,
                        f"{system}:{watermark_key}" if watermark_key else system, only_lead_sources, notices),
                system, connectors[system], (writer_leases or {}).get(system))
        ledger.close(ledger.rows_out)
        notified = run_notices(notices, rules, inputs.as_of)
        return complete_run(run_id, {"run_id": run_id, **ledger.summary(), "systems": per_system, "dry_run": dry_run,
                                     **({"owner_notices": notified} if notified else {})})


ACTIVITY_OVERLAP = timedelta(minutes=5)
"""How far before the last pull's end a refresh reads MAP activities again. Marketo's date-based paging token returns
the activities recorded after a datetime (https://developers.marketo.com/rest-api/paging-tokens/), but an activity
can be recorded some time after its activityDate (Adobe KB ka-28493, "REST API Paging Tokens Use Case":
https://experienceleague.adobe.com/en/docs/experience-cloud-kcs/kbarticles/ka-28493): the overlap picks those up."""

REFRESH_FAILURES = (LeadflowError, *TRANSIENT)
"""What a refresh of reference data survives by keeping what it had: a source that stopped (quota, budget), an API
error, a dropped connection, a state store briefly unavailable."""


@dataclass(frozen=True)
class PulledActivities:
    """The MAP activities pulled so far (canonical activity frame), covering the scoring look-back up to `end`."""

    frame: pd.DataFrame
    end: datetime


@dataclass(frozen=True)
class ReferenceData:
    """What `reference_inputs` reads from the systems, kept so a long-lived process can refresh it: the CRM mirror
    and the MAP's activities (None: not needed, or not read)."""

    mirror: MirrorView | None = None
    activities: PulledActivities | None = None
    stale: tuple[str, ...] = ()
    """The sources whose last refresh failed (their previous data kept)."""


def reference_inputs(rules: Any, pipeline: Any, connectors: dict[str, Any], inputs: RunInputs) -> RunInputs:
    """`inputs` with what the stages need from the systems: the CRM mirror (accounts and existing records for
    matching and duplicates, users and queues for routing), refreshed by what changed since the last run, and the
    MAP's recent activities for scoring. A CRM that stops here stops the run's pages (enriching without the CRM
    would write "no account" over good matches); a MAP that stops only leaves scoring without activities."""
    assert inputs.as_of is not None
    return with_reference_data(rules, pipeline, inputs, read_reference_data(rules, pipeline, connectors,
                                                                             inputs.as_of))


def read_reference_data(rules: Any, pipeline: Any, connectors: dict[str, Any], as_of: datetime) -> ReferenceData:
    """The CRM mirror and the MAP's activities of the scoring look-back up to `as_of`, as `reference_inputs` reads
    them (a CRM stop raises; a MAP stop leaves the activities out)."""
    logger = get_run_logger()
    mirror = activities = None
    if _needs_crm(pipeline, connectors):
        try:
            mirror = refresh_crm_mirror(connectors["salesforce"])
        except SourceStopped as stop:
            logger.warning("salesforce stopped while refreshing the CRM mirror (%s): nothing synced", stop.reason)
            raise SourceStopped(stop.system, f"CRM mirror: {stop.reason}") from None
    if _needs_activities(pipeline, connectors):
        try:
            activities = pulled_activities(rules, connectors["marketo"], as_of, None)
        except SourceStopped as stop:
            logger.warning("marketo stopped while pulling activities (%s): scoring without them", stop.reason)
    return ReferenceData(mirror, activities)


def refresh_reference_data(rules: Any, pipeline: Any, connectors: dict[str, Any], as_of: datetime,
                           kept: ReferenceData) -> ReferenceData:
    """`kept` brought up to `as_of` reading only what changed: the CRM mirror through `refresh_crm_mirror`, the
    activities of [last pull's end − ACTIVITY_OVERLAP, as_of). A source whose refresh fails keeps its `kept` data
    (named in `stale`, logged)."""
    stale: list[str] = []
    mirror, activities = kept.mirror, kept.activities
    if _needs_crm(pipeline, connectors):
        mirror = _kept_on_failure("salesforce", lambda: refresh_crm_mirror(connectors["salesforce"]), mirror, stale)
    if _needs_activities(pipeline, connectors):
        activities = _kept_on_failure("marketo", lambda: pulled_activities(rules, connectors["marketo"], as_of,
                                                                            kept.activities), activities, stale)
    return ReferenceData(mirror, activities, tuple(stale))


def _kept_on_failure(system: str, refresh: Callable[[], Any], kept: Any, stale: list[str]) -> Any:
    """`refresh()`, or `kept` when it fails with one of REFRESH_FAILURES (logged; `system` added to `stale`)."""
    try:
        return refresh()
    except REFRESH_FAILURES as exc:
        stale.append(system)
        get_run_logger().warning("refreshing %s reference data failed (%s: %s): the previous data is kept and the "
                                 "refresh tried again next batch", system, type(exc).__name__, exc)
        return kept


def pulled_activities(rules: Any, connector: Any, as_of: datetime, kept: PulledActivities | None) -> PulledActivities:
    """The MAP activities of the scoring look-back up to `as_of`: the whole look-back the first time, then only
    [kept.end − ACTIVITY_OVERLAP, as_of), joined to `kept` (`join_activity_windows`)."""
    window_start = as_of - timedelta(days=rules.scoring_model.lookback_days)
    since = window_start if kept is None else min(max(window_start, kept.end - ACTIVITY_OVERLAP), as_of)
    since = since.replace(microsecond=0)  # the paging token's sinceDatetime is whole seconds
    pulled = pull_activities(connector, since, as_of)
    earlier = kept.frame if kept is not None else pulled.iloc[:0]
    return PulledActivities(join_activity_windows(earlier, pulled, since, window_start), as_of)


def with_reference_data(rules: Any, pipeline: Any, inputs: RunInputs, data: ReferenceData) -> RunInputs:
    """`inputs` carrying `data` as the stages use it (accounts and records, owner directory, activities)."""
    if data.mirror is not None:
        if "enrich" in pipeline.names:
            inputs = with_crm_reference(inputs, rules, data.mirror.accounts, data.mirror.existing)
        if "assign" in pipeline.names:
            # Who is a person, who left, which ids are queues: only leads nobody works are routed.
            inputs = with_owner_directory(inputs, data.mirror.owners)
    if data.activities is not None:
        inputs = with_activities(inputs, rules, data.activities.frame)
    return inputs


def _needs_crm(pipeline: Any, connectors: dict[str, Any]) -> bool:
    return "salesforce" in connectors and bool({"enrich", "assign"} & set(pipeline.names))


def _needs_activities(pipeline: Any, connectors: dict[str, Any]) -> bool:
    return "score" in pipeline.names and "marketo" in connectors


class LazyInputs:
    """The run's inputs, prepared on first use and kept for the rest of the run; a preparation that failed is tried
    again by the next use (another system's pages)."""

    def __init__(self, prepare: Callable[[], RunInputs]) -> None:
        self._prepare, self._inputs = prepare, None

    def get(self) -> RunInputs:
        if self._inputs is None:
            self._inputs = self._prepare()
        return self._inputs


@dataclass(frozen=True)
class SyncRun:
    """What every step of one system's sync needs from its run."""

    run_id: str
    ledger: RunLedger
    rules: Any
    lazy_inputs: LazyInputs
    pipeline: Any
    start: datetime | None
    end: datetime | None
    dry_run: bool
    override_export_guard: bool
    mark_key: str | None
    """The watermark a processed page moves; None moves none (push intake: the records came by id, not by time)."""
    only_lead_sources: list[str] | None
    notices: list[pd.DataFrame] = field(default_factory=list)
    """The run's newly assigned leads whose owners are told at its end (`tasks.notify.run_notices`)."""

    @property
    def inputs(self) -> RunInputs:
        """The run's per-run data (time, CRM/MAP reference, owner directory), read from the systems on first use; a
        page adds its status history."""
        return self.lazy_inputs.get()


def sync_system(run: SyncRun, system: str, connector: Any, lease_token: str | None) -> dict[str, Any]:
    """One system: under its writer lease, replay dead letters, then pull → process_page for each page; the
    system's report."""
    logger = get_run_logger()
    # write_back: false in the config makes a system pull-only: processed and recorded, never written to.
    writes = bool(getattr(run.rules.systems, system).write_back)
    report: dict[str, Any] = {"pulled": 0, "written": 0, "failed": 0, "retried": 0, "stopped": None,
                              "write_back": writes, "changes": {}}
    # A dry run writes nothing and keeps no state: it needs no lease and waits for nobody.
    lease_held = nullcontext() if run.dry_run else writer_lease(system, run.run_id, "crm_sync", run.rules,
                                                                join=lease_token)
    try:
        with lease_held as lease:
            # Read under the lease: the watermark and dead letters are as the previous writer left them.
            since = run.start or load_watermark(run.mark_key)
            if run.start is None and since is not None and not hasattr(connector, "lookback"):
                # Connectors without their own look-back overlap get the configured one here.
                since -= timedelta(seconds=getattr(run.rules.systems, system).lookback_seconds)
            if writes and not run.dry_run and run.only_lead_sources is None:
                replay_dead_letters(run, system, connector, report)
            if run.start is not None and hasattr(connector, "backfill"):
                pages = connector.backfill(run.start, run.end or datetime.now(UTC))  # Bulk API 2.0
            else:
                pages = connector.pull(since, run.end)
            for page in pages:
                process_page(run, system, connector, page, since, writes, lease, report)
    except SourceStopped as stop:
        report["stopped"] = stop.reason
        logger.warning("%s stopped cleanly: %s (watermark kept at the last committed page)", system, stop.reason)
        emit_budget_exhausted(stop, run.run_id, getattr(getattr(connector, "budget", None), "used", None))
    report["dead_letters"] = dead_letter_counts(system)
    budget = getattr(connector, "budget", None)
    report["api_calls"] = getattr(budget, "used", None)
    emit_sync_errors(system, report, run.run_id)
    if report["dead_letters"]["permanent"]:
        logger.warning("%s: %d write-back failures are permanent and need a person (table dead_letters)",
                       system, report["dead_letters"]["permanent"])
    logger.info("%s: pulled %d, written %d, failed %d", system, report["pulled"], report["written"],
                report["failed"])
    return report


def replay_dead_letters(run: SyncRun, system: str, connector: Any, report: dict[str, Any]) -> None:
    """Write again, before the pull, the oldest pending write-back failures (up to the system's
    `dead_letter_retries`). They are changes approved once already: outside the export guard's count. A replay that
    fails again stays a dead letter (permanent after its attempts) and never stops the sync."""
    letters = pending_dead_letters(system, getattr(run.rules.systems, system).dead_letter_retries)
    if not len(letters):
        return
    try:
        checked = check_dead_letter_replay(connector, changes_from_dead_letters(letters), run.rules, run.inputs)
        replay = checked.replay
        retry = write_back(connector, replay, False, True)
    except (SourceStopped, LeaseLost):
        raise
    except Exception as exc:  # noqa: BLE001 - the letters stay pending for the next run; the sync goes on
        report["retry_error"] = f"{type(exc).__name__}: {exc}"
        get_run_logger().warning("%s: replaying %d dead letters failed (%s); they stay pending, the sync goes on",
                                 system, len(letters), report["retry_error"])
        return
    record_write_outcome(run.run_id, system, LEAD_OBJECT, [*retry.written, *checked.settled],
                         dead_letter_failures(replay, retry.failures))
    report["retried"] = len(retry.written)
    report["retry_failed"] = len(retry.failures)
    if checked.settled or checked.owners_dropped:
        report["retry_settled"] = len(checked.settled)
        report["retry_owners_dropped"] = checked.owners_dropped


def process_page(run: SyncRun, system: str, connector: Any, page: pd.DataFrame, since: datetime | None,
                 writes: bool, lease: Any, report: dict[str, Any]) -> None:
    """One page: skip echoes → prepare → stages → diff → guard → write → record → receipts → watermark.

    A lead whose values hash to its write receipt changed only by our own last write (or not at all): it is not
    processed (`echo_skipped`, outside rows in/out); a backfill processes every lead."""
    rules, pipeline, ledger, run_id = run.rules, run.pipeline, run.ledger, run.run_id
    page_mark = high_water(page)
    if run.only_lead_sources is not None:
        page, others = only_sources(page, run.only_lead_sources)
        report["skipped"] = report.get("skipped", 0) + others
    page, echoes = without_echoes(run, connector, page)
    if echoes:
        report["echo_skipped"] = report.get("echo_skipped", 0) + echoes
    if page.empty and (run.only_lead_sources is not None or echoes):
        if run.start is None and not run.dry_run and page_mark is not None and run.mark_key is not None:
            commit_watermark(run.mark_key, page_mark, run_id)
        progress.step(f"{system}: {report['pulled']} pulled, {report.get('echo_skipped', 0)} echoes skipped", echoes,
                      unit="leads")
        return
    # The first page with leads to process reads the CRM mirror and activities (a stop there leaves this page
    # uncounted and unprocessed, its watermark unmoved).
    run.lazy_inputs.get()
    report["pulled"] += len(page)
    ledger.rows_in += len(page)
    readable, unreadable = split_pull_errors(page)
    ledger.quarantine(PULL_STAGE, unreadable)
    loaded = prepare_leads(readable, f"{system} page")
    ledger.quarantine(INPUT_STAGE, loaded.refused)
    record_stage(run_id, PULL_STAGE, None, unreadable)
    record_stage(run_id, INPUT_STAGE, None, loaded.refused)
    page_inputs = run.inputs
    if system == "salesforce" and "lifecycle" in pipeline.names:
        # Leads seen the first time take their stage from the CRM status, dated by its history.
        first = first_sight_ids(loaded.frame, rules)
        page_inputs = with_status_history(run.inputs, pull_status_history(connector, first) if first else None)
    frame, _ = run_stages(
        loaded.frame, rules, page_inputs, pipeline, run_id=run_id, ledger=ledger,
        suites_dir=str(Settings().suites_dir()), keep_state=not run.dry_run,
    )
    ledger.rows_out += len(frame)
    # Diff against the values as pulled (prepare_leads already trimmed them), aligned by position.
    as_pulled = conform(readable.reset_index(drop=True))
    changes = changed_fields(as_pulled, frame, connector.writable_columns)
    # A converted lead is never written (Salesforce refuses it: CANNOT_UPDATE_CONVERTED_LEAD).
    changes, converted = drop_converted(changes, frame)
    report["skipped_converted"] = report.get("skipped_converted", 0) + converted
    merge_diff(report["changes"], changes, as_pulled)
    # After the first sync, new leads' first write is expected: only changes to leads processed before count
    # against the export guard (an initial load still needs the override).
    first_time = pd.Series(False, index=frame.index)
    if since is not None and run.start is None and len(changes):
        keys = lead_keys(frame)
        first_time = ~keys.isin(seen_leads(keys.loc[changes.index].tolist(), run_id))
    if lease is not None:
        lease.ensure()  # taken over while this run stalled: stop before writing beside the new writer
    result = write_back_guarded(connector, changes if writes else changes.iloc[:0], first_time, run.dry_run,
                                run.override_export_guard)
    report["written"] += len(result.written)
    report["failed"] += len(result.failures)
    # Values the target would refuse were left out of the request (never a dead letter): counted per reason, and
    # kept out of the write-back events, which record only what was sent.
    column_of = field_columns(connector)
    add_counts(report, {"refused": result.refused["reason"].astype(str).value_counts().to_dict(),
                        "truncated": result.truncated})
    sent = without_refused(changes, result.refused, column_of)
    if not run.dry_run:
        record_write_outcome(run_id, system, LEAD_OBJECT, result.written,
                             dead_letter_failures(changes, result.failures))
        written = writeback_events(sent, as_pulled, lead_keys(frame), result.written, run_id=run_id,
                                   stage=f"writeback:{system}")
        record_stage(run_id, f"writeback:{system}", written, None)
        if len(result.refused):  # its own stage: never counted as written by KPIs or trace
            refused = refused_events(result.refused, changes, as_pulled, lead_keys(frame), column_of,
                                     run_id=run_id, stage=f"refused:{system}")
            record_stage(run_id, f"refused:{system}", refused, None)
        if "assign" in pipeline.names and "owner_id" in connector.writable_columns:
            placed = owners_in_place(sent, frame, result.written) & frame["assigned_at"].notna()
            confirm_owners_written(lead_keys(frame)[placed.to_numpy()].tolist(), run.inputs.as_of)
        if "assign" in pipeline.names and rules.notifications is not None:
            run.notices.append(owners_to_tell(frame, sent, result.written, connector, writes, run.inputs.as_of))
        # Recorded last: a crash before this re-pulls the page and processes it again (no receipt yet).
        save_page_receipts(run, connector, as_pulled, sent, result.written,
                           [str(r) for r in result.failures["record_id"]] if len(result.failures) else [])
        if run.start is None and page_mark is not None and run.mark_key is not None:
            commit_watermark(run.mark_key, page_mark, run_id)
            report["watermark"] = page_mark.isoformat()
    progress.step(f"{system}: {report['pulled']} pulled, {report['written']} written", len(page) + echoes,
                  unit="leads")
    add_counts(report, mailable_counts(frame))
    add_counts(report, enrichment_counts(frame))
    add_counts(report, scoring_counts(frame))
    add_counts(report, routing_counts(frame))


def owners_to_tell(frame: pd.DataFrame, sent: pd.DataFrame, written: list[str], connector: Any, writes: bool,
                   as_of: datetime | None) -> pd.DataFrame:
    """The page's leads assigned by this run whose owner may be told: where leadflow writes owners to the system,
    only those whose owner is now in place there (a lead whose owner write failed is not told: its dead letter
    is replayed later without a notice)."""
    from leadflow.notify import newly_assigned

    fresh = newly_assigned(frame, since=as_of)
    if writes and "owner_id" in connector.writable_columns and len(fresh):
        placed = owners_in_place(sent, frame, written)
        fresh = fresh[placed.loc[fresh.index].to_numpy(dtype=bool)]
    return notice_rows(fresh)


def first_sight_ids(frame: pd.DataFrame, rules: Any) -> list[str]:
    """Ids of leads the lifecycle has never tracked (no stage from the CRM or the state store) whose status means a
    stage: the leads whose status-change history dates their first stage."""
    mapped = frame["status"].astype("string").isin(list(rules.lifecycle.status_map)).to_numpy(dtype=bool)
    candidates = frame[mapped & frame["lifecycle_stage"].isna().to_numpy(dtype=bool)]
    if candidates.empty:
        return []
    tracked = load_lifecycle_state(candidates)["lifecycle_stage"].notna().to_numpy(dtype=bool)
    return candidates.loc[~tracked, "lead_id"].dropna().astype(str).tolist()


def only_sources(page: Any, lead_sources: list[str]) -> tuple[Any, int]:
    """The leads of `page` whose lead source is one of `lead_sources` (case and spaces ignored), and how many
    others the page held."""
    import pandas as pd

    wanted = {s.strip().casefold() for s in lead_sources}
    column = page["lead_source"] if "lead_source" in page.columns else pd.Series(pd.NA, index=page.index)
    keep = column.astype("string").str.strip().str.casefold().isin(wanted).fillna(False).to_numpy(dtype=bool)
    return page[keep], int((~keep).sum())


def field_columns(connector: Any) -> dict[str, str]:
    """The connector's Lead field name → canonical column (empty for connectors without a Salesforce-style mapping)."""
    mapping = getattr(connector, "mapping", None)
    lead = getattr(mapping, "objects", {}).get(LEAD_OBJECT) if mapping is not None else None
    return {} if lead is None else {name: spec.column for name, spec in lead.fields.items()}


def without_echoes(run: SyncRun, connector: Any, page: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """`page` without the leads whose values hash to their write receipt (the echo of our own last write, or a
    look-back re-pull of a lead unchanged since we processed it), and how many were left out. A backfill keeps
    every lead (it exists to reprocess them); rows the connector could not read are always kept (quarantined)."""
    if run.start is not None or page.empty:
        return page, 0
    readable = (page[PULL_ERROR].isna() if PULL_ERROR in page.columns
                else pd.Series(True, index=page.index)).to_numpy(dtype=bool)
    pulled = conform(page[readable].drop(columns=[PULL_ERROR], errors="ignore"))
    keys = lead_keys(pulled)
    stored = load_receipts(keys.dropna().unique().tolist())
    if stored.dropna().empty:
        return page, 0
    echo = echo_mask(keys, receipt_hashes(pulled, connector_receipt_spec(connector)), stored)
    skip = np.zeros(len(page), dtype=bool)
    skip[np.flatnonzero(readable)[echo]] = True
    return page[~skip], int(skip.sum())


def save_page_receipts(run: SyncRun, connector: Any, as_pulled: pd.DataFrame, sent: pd.DataFrame, written: list[str],
                       failed: list[str]) -> None:
    """Store a processed page's write receipts: per lead of `as_pulled`, the hash of what its system holds now (as
    pulled, overlaid with the values `sent` to the records in `written`; as pulled for leads not written, quarantined
    ones included: unchanged, they would be quarantined again), and a null receipt ("process it whenever it is
    pulled") for the leads whose write failed."""
    if as_pulled.empty:
        return
    hashes = after_write_hashes(as_pulled, sent, written, connector_receipt_spec(connector)).astype("Int64")
    failures = as_pulled["lead_id"].astype("string").isin(failed).fillna(False).to_numpy(dtype=bool)
    save_receipts(receipt_rows(lead_keys(as_pulled), hashes.mask(failures), run.run_id, datetime.now(UTC)))
