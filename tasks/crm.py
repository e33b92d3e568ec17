"""CRM/MAP write-back task. Connectors retry their own I/O with explicit backoff, so the task adds none."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from leadflow.connectors.base import WriteResult


@task(cache_policy=NO_CACHE)
def write_back(connector: Any, changes: pd.DataFrame, dry_run: bool, override_export_guard: bool = False) -> WriteResult:
    """Write changed fields to the system the leads came from (or, with dry_run, only say what would be written)."""
    if changes.empty:
        return WriteResult(dry_run=dry_run)
    return connector.write(changes, dry_run=dry_run, override=override_export_guard)
