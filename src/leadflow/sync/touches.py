"""CRM first touches kept in the state store: each source's pages (`connectors.salesforce_touches`) pulled from its
watermark minus the look-back and stored page by page with the watermark that follows it (one transaction each), so
a crash re-reads a page and a re-read changes nothing. Watermarks: `watermarks` rows `salesforce:first_touch:<source>`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd

from leadflow.connectors.salesforce_touches import TOUCH_QUERIES, touch_pages

WATERMARK_PREFIX: Final[str] = "salesforce:first_touch:"


def watermark_name(source: str) -> str:
    """The `watermarks` row of one touch source."""
    return f"{WATERMARK_PREFIX}{source}"


@dataclass
class TouchReport:
    """What one pull of one source did."""

    read: int = 0
    """Touches read (lead touches only)."""
    leads: int = 0
    """Leads whose earliest CRM touch is new or earlier."""
    assignments: int = 0
    """Assignments given their first touch from the CRM."""
    since: datetime | None = None


def store_touches(touches: pd.DataFrame, system: str = "salesforce") -> pd.DataFrame:
    """A connector's touches (lead_id, first_touch_at, source) as the store keeps them (lead_key, touched_at,
    source): the lead key is `<system>:<Id>`, as the audit trail and assignments have it."""
    return pd.DataFrame({"lead_key": (system + ":" + touches["lead_id"].astype("string")).to_numpy(),
                         "touched_at": touches["first_touch_at"].to_numpy(),
                         "source": touches["source"].astype("string").to_numpy()})


def pull_first_touches(connector: Any, store: Any, *, run_id: str, untouched_statuses: Collection[str] = (),
                       lookback: timedelta | None = None, now: datetime | None = None) -> dict[str, TouchReport]:
    """Pull every touch source from its watermark minus `lookback` (default the connector's) into the store. A
    source without a watermark starts at the first recorded assignment (earlier touches answer no assignment), or
    at `now` minus the look-back when nothing is assigned yet."""
    now = now or datetime.now(UTC)
    lookback = lookback if lookback is not None else getattr(connector, "lookback", timedelta(minutes=5))
    reports: dict[str, TouchReport] = {}
    for source in TOUCH_QUERIES:
        name = watermark_name(source)
        mark = store.get_watermark(name)
        since = mark - lookback if mark is not None else (store.earliest_assignment() or now) - lookback
        report = reports[source] = TouchReport(since=since)
        for page in touch_pages(connector, source, since, untouched_statuses=untouched_statuses):
            moved = page.newest if mark is None or (page.newest is not None and page.newest > mark) else None
            counts = store.record_first_touches(store_touches(page.touches), run_id=run_id, now=now,
                                                cursor=None if moved is None else (name, moved))
            mark = moved or mark
            report.read += len(page.touches)
            report.leads += counts.leads
            report.assignments += counts.assignments
    return reports
