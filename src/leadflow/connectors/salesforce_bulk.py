"""Bulk API 2.0 paths of the Salesforce connector: backfill query jobs (above `bulk_query_threshold` records) and
bulk updates (above `bulk_write_threshold` changed records), through simple-salesforce's `bulk2`.

- Query jobs: results in CSV, fetched in sets of `maxRecords` ("Get Results for a Query Job"):
  https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm
  No ORDER BY: the chunks' order is not the query's, so records are ordered by (SystemModstamp, Id) and
  de-duplicated here ("Understanding Bulk API 2.0 Query", SOQL considerations):
  https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/queries.htm
- Ingest jobs (update): CSV rows, booleans as `true`/`false`; per-record failures from "Get Job Failed Record Results"
  (`sf__Id`, `sf__Error` = `CODE:message:fields`):
  https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/get_job_failed_results.htm

`BulkMixin` builds on salesforce_pull.PullMixin (a small backfill goes through REST); salesforce_write.WriteMixin
calls `_write_bulk` for a large write.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pandas as pd
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceRefusedRequest

from leadflow.connectors.base import SourceStopped
from leadflow.connectors.salesforce_frames import iso_utc
from leadflow.connectors.salesforce_mapping import SYSTEM, ObjectMapping
from leadflow.connectors.salesforce_pull import PullMixin, dedup_pages, soql_where
from leadflow.connectors.salesforce_session import RETRYABLE_CODES, error_code, log


class BulkMixin(PullMixin):
    """Backfill and bulk writes of a `SalesforceConnector` (whose constructor sets these attributes)."""

    bulk_query_threshold: int
    bulk_page_size: int
    bulk_wait: float

    def backfill(self, start: datetime, end: datetime) -> Iterator[pd.DataFrame]:
        """Leads modified in [start, end): Bulk API 2.0 above `bulk_query_threshold` records (a COUNT() first)."""
        lead = self.mapping.objects["Lead"]
        where = soql_where(lead.modstamp_field, start, end)
        total = int(self._call(lambda sf: sf.query(f"SELECT COUNT() FROM Lead{where}"))["totalSize"])
        log.info("salesforce: backfill of %d leads via %s", total,
                 "REST query" if total < self.bulk_query_threshold else "Bulk API 2.0")
        if total < self.bulk_query_threshold:
            pages: Iterator[list[dict[str, Any]]] = self._rest_pages(
                "Lead", lead.select(), lead.modstamp_field, lead.id_field, start, end)
        else:
            # No ORDER BY for Bulk API 2.0: results come in chunks whose order is not the query's ("Understanding
            # Bulk API 2.0 Query", SOQL considerations: ORDER BY disables PK chunking and may time out), so the
            # records are ordered by (SystemModstamp, Id) and de-duplicated here.
            soql = f"SELECT {', '.join(lead.select())} FROM Lead{soql_where(lead.modstamp_field, start, end)}"
            texts = self._bulk_pages("Lead", soql)
            pages = _ordered_pages((r for text in texts for r in _csv_records(text, lead)), lead.id_field,
                                   lead.modstamp_field, self.bulk_page_size)
        for records in dedup_pages(pages, lead.id_field, lead.modstamp_field):
            yield self._lead_frame(records, lead)

    def _bulk_pages(self, sobject: str, soql: str) -> Iterator[str]:
        for attempt in (0, 1):
            yielded = False
            try:
                for text in getattr(self._client().bulk2, sobject).query(
                    soql, max_records=self.bulk_page_size, wait=self.bulk_wait
                ):
                    yielded = True
                    yield text
                return
            except SalesforceExpiredSession:
                if yielded or attempt or not self.credentials.login_url:
                    raise
                self._sf = None
            except SalesforceRefusedRequest as exc:
                if error_code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise SourceStopped(SYSTEM, "REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent") from None
                raise

    def _write_bulk(self, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        rows = [{"Id": rid, **{k: _bulk_value(v) for k, v in values.items()}} for rid, values in planned]
        by_id = dict(planned)
        jobs = self._call(lambda sf: sf.bulk2.Lead.update(records=rows, wait=self.bulk_wait))
        failures: list[dict[str, Any]] = []
        for job in jobs:
            if not int(job.get("numberRecordsFailed", 0)):
                continue
            text = self._call(lambda sf, job_id=job["job_id"]: sf.bulk2.Lead.get_failed_records(job_id))
            for row in csv.DictReader(io.StringIO(text)):
                code, _, rest = row.get("sf__Error", "").partition(":")
                message = rest.rsplit(":", 1)[0] if ":" in rest else rest
                rid = row.get("sf__Id") or row.get("Id", "")
                failures.append({"record_id": rid, "error_code": code, "message": message,
                                 "retryable": code in RETRYABLE_CODES, "payload": by_id.get(rid, {})})
        return failures


# ------------------------------------------------------------------------------------------------- CSV


def _ordered_pages(records: Iterator[dict[str, Any]], id_field: str, stamp: str,
                   size: int) -> Iterator[list[dict[str, Any]]]:
    """Bulk query records in (stamp, id) order, each id once (its latest stamp), in pages of `size`. Records whose
    stamp is not a datetime come first (the frame flags them)."""
    latest: dict[Any, dict[str, Any]] = {}
    for record in records:
        key = record.get(id_field)
        kept = latest.get(key)
        if kept is None or (iso_utc(record.get(stamp)) or "") >= (iso_utc(kept.get(stamp)) or ""):
            latest[key] = record
    ordered = sorted(latest.values(), key=lambda r: (iso_utc(r.get(stamp)) or "", str(r.get(id_field) or "")))
    for start in range(0, len(ordered), max(size, 1)):
        yield ordered[start: start + size]


def _csv_records(text: str, mapping: ObjectMapping) -> list[dict[str, Any]]:
    """Bulk API CSV → REST-shaped dicts: empty → None, booleans parsed (anything else is left for `to_frame`)."""
    booleans = {name for name, spec in mapping.fields.items() if spec.type == "boolean"}
    records = []
    for row in csv.DictReader(io.StringIO(text)):
        record: dict[str, Any] = {}
        for name, value in row.items():
            if value == "":
                record[name] = None
            elif name in booleans and value.lower() in ("true", "false"):
                record[name] = value.lower() == "true"
            else:
                record[name] = value
        records.append(record)
    return records


def _bulk_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
