"""CRM/MAP write-back task. Connectors retry their own I/O with explicit backoff, so the task adds none."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect.cache_policies import NO_CACHE

from leadflow.connectors.base import WriteResult
from tasks.runner import task


@task(cache_policy=NO_CACHE)
def write_back(connector: Any, changes: pd.DataFrame, dry_run: bool, override_export_guard: bool = False) -> WriteResult:
    """Write changed fields to the system the leads came from (or, with dry_run, only say what would be written)."""
    if changes.empty:
        return WriteResult(dry_run=dry_run)
    return connector.write(changes, dry_run=dry_run, override=override_export_guard)


@task(cache_policy=NO_CACHE)
def write_back_guarded(
    connector: Any, changes: pd.DataFrame, first_time: pd.Series, dry_run: bool, override_export_guard: bool = False
) -> WriteResult:
    """Write changes; leads processed for the first time (new since the last sync) do not count against the export
    guard — their first write is expected — while changes to leads leadflow processed before do."""
    fresh = first_time.reindex(changes.index).fillna(False).to_numpy(dtype=bool)
    known = write_back.fn(connector, changes[~fresh], dry_run, override_export_guard)
    new = write_back.fn(connector, changes[fresh], dry_run, True)
    return WriteResult(
        written=[*known.written, *new.written],
        failures=pd.concat([known.failures, new.failures], ignore_index=True),
        api_calls=known.api_calls + new.api_calls,
        dry_run=dry_run,
        refused=pd.concat([known.refused, new.refused], ignore_index=True),
        truncated=known.truncated + new.truncated,
    )


@task(cache_policy=NO_CACHE)
def check_dead_letter_replay(connector: Any, replay: pd.DataFrame, rules: Any, inputs: Any = None) -> Any:
    """Dead-letter changes checked against the leads as the CRM has them now (`leadflow.routing.ownership.check_replay`):
    converted or deleted leads are not written, owner changes a person has overtaken are dropped. Salesforce only
    (one query per 200 leads); other systems' replays pass unchanged. `inputs`: the run's `RunInputs` (its owner
    directory), None: the config's policy only."""
    from leadflow.routing.ownership import ReplayCheck, check_replay

    if getattr(connector, "system", None) != "salesforce" or replay.empty:
        return ReplayCheck(replay, [], 0)
    from leadflow.connectors.salesforce_history import current_leads

    current = current_leads(connector, replay["record_id"].astype(str).tolist())
    if inputs is None:
        return check_replay(replay, current, rules.ownership, rules.routing)
    return check_replay(replay, current, inputs.ownership_for(rules), inputs.routing_for(rules))

