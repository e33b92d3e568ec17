"""First touches as Salesforce records them: the Tasks and Events logged on a lead (their CreatedDate) and the
lead's status changes (LeadHistory), pulled incrementally from watermarks the caller owns.

API facts (Object Reference for the Salesforce Platform, SOQL and SOSL Reference):
- Task and Event: WhoId "the ID of a related Contact or Lead" (polymorphic), WhatId the related Account,
  Opportunity, …; CreatedDate, SystemModstamp and IsDeleted are system fields; `query` leaves deleted records out:
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_event.htm
- A polymorphic reference is filtered by the type of the record it names: `WHERE Who.Type = 'Lead'` ("Understanding
  Polymorphic Keys and Relationships"): https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
  sforce_api_calls_soql_relationships_and_polymorph_keys.htm
- `SELECT WhoId, MIN(CreatedDate) … GROUP BY WhoId` would give the first touches in one query, but "In REST API,
  queries that include a GROUP BY clause can't use the query locator to get more results" ("Considerations for GROUP
  BY": https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
  sforce_api_calls_soql_select_group_by_considerations.htm): one page only, so a busy hour would be cut short. Plain
  records ordered by (stamp, Id) and paged (`PullMixin._rest_pages`) are read instead and reduced here.
- Tasks and Events are read by SystemModstamp (indexed; moves when a task is edited, e.g. linked to a lead after it
  was logged): a touch is re-read, never missed; the earliest wins downstream. LeadHistory has no SystemModstamp and
  is never edited: it is read by CreatedDate (Object Reference "LeadHistory"; see `salesforce_history`). An org
  without history tracking or access to it (INVALID_TYPE / INVALID_FIELD) gives no status touches.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pandas as pd
from simple_salesforce.exceptions import SalesforceMalformedRequest

from leadflow.connectors.salesforce_frames import iso_utc
from leadflow.connectors.salesforce_history import NO_HISTORY_CODES
from leadflow.connectors.salesforce_pull import dedup_pages
from leadflow.connectors.salesforce_session import error_code

log = logging.getLogger(__name__)

LEAD_PREFIX: Final[str] = "00Q"
"""The key prefix of every Lead id (a WhoId naming a Contact starts with 003)."""
TOUCH_FRAME_COLUMNS: Final = ("lead_id", "first_touch_at", "source")


@dataclass(frozen=True)
class TouchQuery:
    """Where one kind of touch is read: the object, its watermark field, the field naming the lead, a condition."""

    sobject: str
    stamp: str
    lead_field: str
    where: str

    def fields(self) -> list[str]:
        extra = ["NewValue"] if self.sobject == "LeadHistory" else []
        return list(dict.fromkeys(["Id", self.lead_field, *extra, "CreatedDate", self.stamp]))


TOUCH_QUERIES: Final[dict[str, TouchQuery]] = {
    "task": TouchQuery("Task", "SystemModstamp", "WhoId", "Who.Type = 'Lead'"),
    "event": TouchQuery("Event", "SystemModstamp", "WhoId", "Who.Type = 'Lead'"),
    "status_history": TouchQuery("LeadHistory", "CreatedDate", "LeadId", "Field = 'Status'"),
}
"""Source name (`first_touch_source`) → its query."""


@dataclass(frozen=True)
class TouchPage:
    """One result page of one source: its touches (TOUCH_FRAME_COLUMNS, one row per record) and the watermark to
    keep once they are stored (the newest stamp of the page)."""

    source: str
    touches: pd.DataFrame
    newest: datetime | None


def touch_pages(connector: Any, source: str, since: datetime | None, *,
                untouched_statuses: Collection[str] = ()) -> Iterator[TouchPage]:
    """Pages of `source` (a TOUCH_QUERIES key) stamped at or after `since` (all when None), in (stamp, Id) order. A
    status change counts when the lead moved to a status not in `untouched_statuses`."""
    spec = TOUCH_QUERIES[source]
    pages = connector._rest_pages(spec.sobject, spec.fields(), spec.stamp, "Id", since, None, spec.where)
    try:
        for records in dedup_pages(pages, "Id", spec.stamp):
            yield TouchPage(source, _touches(records, spec, source, untouched_statuses), _newest(records, spec.stamp))
    except SalesforceMalformedRequest as exc:
        if source != "status_history" or error_code(exc) not in NO_HISTORY_CODES:
            raise
        log.info("salesforce: no lead history (%s): first touches from tasks and events only", error_code(exc))


def first_touches(connector: Any, since: Mapping[str, datetime | None] | datetime | None, *,
                  untouched_statuses: Collection[str] = ()) -> tuple[pd.DataFrame, dict[str, datetime | None]]:
    """The earliest touch per lead (TOUCH_FRAME_COLUMNS) among the Tasks, Events and status changes stamped since
    `since` (one time for all sources, or per source), and each source's new watermark (None: nothing read)."""
    starts = since if isinstance(since, Mapping) else dict.fromkeys(TOUCH_QUERIES, since)
    frames: list[pd.DataFrame] = []
    marks: dict[str, datetime | None] = {}
    for source in TOUCH_QUERIES:
        marks[source] = None
        for page in touch_pages(connector, source, starts.get(source), untouched_statuses=untouched_statuses):
            frames.append(page.touches)
            marks[source] = page.newest or marks[source]
    return earliest_touches(frames), marks


def earliest_touches(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Per lead the earliest of these touches (ties: by source name, so every run picks the same)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty()
    both = pd.concat(frames, ignore_index=True)
    earliest = both.sort_values(["first_touch_at", "source"], kind="stable").drop_duplicates("lead_id")
    return earliest.reset_index(drop=True)


def _touches(records: list[dict[str, Any]], spec: TouchQuery, source: str,
             untouched: Collection[str]) -> pd.DataFrame:
    rows = []
    for record in records:
        lead_id, when = record.get(spec.lead_field), iso_utc(record.get("CreatedDate"))
        if not isinstance(lead_id, str) or not lead_id.startswith(LEAD_PREFIX) or when is None:
            continue  # a Contact's activity, or a record without its date
        if source == "status_history" and (not isinstance(record.get("NewValue"), str)
                                           or record["NewValue"] in untouched):
            continue  # not a move to a worked status
        rows.append((lead_id, when))
    if not rows:
        return _empty()
    return pd.DataFrame({"lead_id": pd.array([r[0] for r in rows], dtype="string"),
                         "first_touch_at": pd.to_datetime([r[1] for r in rows], utc=True, format="ISO8601"),
                         "source": pd.array([source] * len(rows), dtype="string")})


def _newest(records: list[dict[str, Any]], stamp: str) -> datetime | None:
    stamps = [s for s in (iso_utc(r.get(stamp)) for r in records) if s is not None]
    return pd.Timestamp(max(stamps)).to_pydatetime() if stamps else None


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"lead_id": pd.array([], dtype="string"),
                         "first_touch_at": pd.to_datetime(pd.Series([], dtype="object"), utc=True),
                         "source": pd.array([], dtype="string")})
