"""`lead_fastlane`: speed-to-lead. Every minute, an incremental pull with its own watermark; only hot leads (a demo
request, contact sales) go through the stages, routing and write-back. The others are left to the hourly sync, whose
watermark this lane never moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.crm_sync import crm_sync
from leadflow.pipeline.config import load_rules
from tasks.io import BACKOFF, _transient, state_store

FASTLANE_WATERMARK = "fastlane"
"""The lane's watermark per system is stored as `<system>:fastlane`."""
HOT_SOURCES = ["Demo Request", "Contact Sales"]
FIRST_LOOKBACK = timedelta(hours=1)
"""Where a lane with no watermark starts when the hourly sync has none either: the last hour, not all history."""


@task(retries=3, retry_delay_seconds=BACKOFF, retry_condition_fn=_transient, cache_policy=NO_CACHE)
def seed_lane_watermarks(systems: list[str]) -> dict[str, str]:
    """A lane's first run starts where the hourly sync is (or an hour back), never from the beginning of time:
    older hot leads are the hourly sync's. Returns the watermarks seeded."""
    store, seeded = state_store(), {}
    for system in systems:
        key = f"{system}:{FASTLANE_WATERMARK}"
        if store.get_watermark(key) is None:
            start = store.get_watermark(system) or datetime.now(UTC) - FIRST_LOOKBACK
            store.set_watermark(key, start, "fastlane-seed")
            seeded[key] = start.isoformat()
    return seeded


@flow(name="lead_fastlane", log_prints=False)
def lead_fastlane(
    config_path: str = "leadflow.yaml",
    lead_sources: list[str] = HOT_SOURCES,  # noqa: B006 - Prefect reads the default into the form
) -> dict[str, Any]:
    """Pull what changed since the lane's own watermark from the configured systems; process and write back only
    leads whose lead source is one of `lead_sources` (case and spaces ignored)."""
    systems = list(load_rules(Path(config_path) if config_path else None).systems.names)
    seeded = seed_lane_watermarks(systems)
    if seeded:
        get_run_logger().info("fast lane starts at %s", seeded)
    summary = crm_sync(config_path=config_path, watermark_key=FASTLANE_WATERMARK, only_lead_sources=list(lead_sources))
    hot = sum(report["pulled"] for report in summary["systems"].values())
    others = sum(report.get("skipped", 0) for report in summary["systems"].values())
    return {**summary, "hot_leads": hot, "left_to_hourly": others}
