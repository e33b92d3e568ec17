"""Write-back of changed Lead fields to Salesforce: the plan (canonical columns → Salesforce fields and values), its
fitting to the org's describe (salesforce_fit), and sObject Collections updates up to `bulk_write_threshold` records
(Bulk API 2.0 above it: salesforce_bulk); single Leads created and deleted for `leadflow audit test-lead`.

- sObject Collections update (PATCH /composite/sobjects, at most 200 records, `allOrNone: false`: one result per
  record, `success` or `errors` [{statusCode, message, fields}]):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm
- A dateTime is written as `yyyy-MM-ddTHH:mm:ss.SSSZ`, the same text for REST ("Valid Date and DateTime Formats")
  and Bulk API 2.0 CSV ("Valid Date Format in Records"):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_valid_date_formats.htm
  https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_date_format.htm
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pandas as pd

from leadflow.connectors.base import WriteResult
from leadflow.connectors.salesforce_bulk import BulkMixin
from leadflow.connectors.salesforce_fit import OWNER_FIELD, empty_refused, fit_planned
from leadflow.connectors.salesforce_frames import iso_utc, pulled_number
from leadflow.connectors.salesforce_mapping import ObjectMapping
from leadflow.connectors.salesforce_org import cached_lead_rules, cached_valid_owners, lead_rules, valid_owners
from leadflow.connectors.salesforce_session import RETRYABLE_CODES, log
from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.schema import FALSE_WORDS, NUMERIC_COLUMNS, TRUE_WORDS

COLLECTION_LIMIT: Final = 200


class WriteError(LeadflowError):
    """A write-back request that cannot be sent as given (no `record_id`, columns that are not writable)."""


@dataclass
class SalesforceWriteResult(WriteResult):
    """WriteResult plus `planned`: one row per record, `record_id` + Salesforce fields that were (to be) sent;
    `refused`: one row per value the org's describe would not take, left out of the request (record_id, field, value,
    reason, message); `truncated`: text values cut at a word boundary to fit their field."""

    planned: pd.DataFrame = field(default_factory=pd.DataFrame)
    refused: pd.DataFrame = field(default_factory=empty_refused)
    truncated: int = 0


class WriteMixin(BulkMixin):
    """Writes of a `SalesforceConnector` (whose constructor sets these attributes)."""

    bulk_write_threshold: int

    # -- writes
    def write(self, changes: pd.DataFrame, *, dry_run: bool = False, override: bool = False) -> SalesforceWriteResult:
        """Write changed fields (`record_id` + canonical columns, NA = unchanged) back to Leads.

        The planned values are first fitted to the org's Lead describe (fetched once per connector) and, when an
        OwnerId is written, to its active users and Lead queues (fetched once): long text is cut at a word
        boundary, and what the org would refuse is left out and returned in `refused` (see salesforce_fit). A dry
        run fits only with what this connector already fetched (it makes no API call). `api_calls` counts the
        write requests; the describe and owner reads count in the connector's `api_calls` and budget."""
        lead = self.mapping.objects["Lead"]
        planned = _plan(changes, lead)
        self.guard.check([record_id for record_id, _ in planned], override=override)
        owner_written = any(OWNER_FIELD in values for _, values in planned)
        rules = cached_lead_rules(self) if dry_run or not planned else lead_rules(self)
        owners = (cached_valid_owners(self) if dry_run else valid_owners(self)) if owner_written else None
        fitted = fit_planned(planned, rules, owners) if rules is not None else None
        if fitted is not None:
            planned = fitted.planned
            if len(fitted.refused) or fitted.truncated:
                log.warning("salesforce: %d values left out (the org would refuse them), %d cut to fit",
                            len(fitted.refused), fitted.truncated)
        extra: dict[str, Any] = {} if fitted is None else {"refused": fitted.refused, "truncated": fitted.truncated}
        ids = [record_id for record_id, _ in planned]
        table = pd.DataFrame([{"record_id": rid, **values} for rid, values in planned])
        if dry_run or not planned:
            return SalesforceWriteResult(written=ids if dry_run else [], dry_run=dry_run, planned=table, **extra)
        calls_before = self.api_calls
        log.info("salesforce: writing %d leads via %s", len(planned),
                 "Bulk API 2.0" if len(planned) >= self.bulk_write_threshold else "sObject Collections")
        if len(planned) >= self.bulk_write_threshold:
            failures = self._write_bulk(planned)
        else:
            failures = self._write_collections(planned)
        failed = {f["record_id"] for f in failures}
        frame = pd.DataFrame(failures, columns=["record_id", "error_code", "message", "retryable", "payload"])
        if len(frame):
            frame["retryable"] = frame["retryable"].astype("boolean")
        return SalesforceWriteResult(written=[i for i in ids if i not in failed], failures=frame,
                                     api_calls=self.api_calls - calls_before, planned=table, **extra)

    # -- single records (leadflow audit test-lead: a marked test lead created and deleted again)
    def create_lead(self, fields: dict[str, Any]) -> str:
        """Create one Lead from Salesforce field names (POST sobjects/Lead); returns its id."""
        result = self._call(lambda sf: sf.Lead.create(fields))
        return str(result["id"])

    def delete_lead(self, record_id: str) -> None:
        """Delete one Lead (DELETE sobjects/Lead/<id>)."""
        self._call(lambda sf: sf.Lead.delete(record_id))

    def _write_collections(self, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        failures: list[dict[str, Any]] = []
        for start in range(0, len(planned), COLLECTION_LIMIT):
            chunk = planned[start: start + COLLECTION_LIMIT]
            payload = {"allOrNone": False, "records": [
                {"attributes": {"type": "Lead"}, "id": rid, **values} for rid, values in chunk]}
            results = self._call(lambda sf: sf.restful("composite/sobjects", method="PATCH", json=payload)) or []
            for (rid, values), result in zip(chunk, results, strict=True):
                if not result.get("success"):
                    error = (result.get("errors") or [{}])[0]
                    code = str(error.get("statusCode", "UNKNOWN"))
                    failures.append({"record_id": rid, "error_code": code, "message": str(error.get("message", "")),
                                     "retryable": code in RETRYABLE_CODES, "payload": values})
        return failures


# ------------------------------------------------------------------------------------------------- values


def _plan(changes: pd.DataFrame, mapping: ObjectMapping) -> list[tuple[str, dict[str, Any]]]:
    """(record id, {Salesforce field: value}) for every record with at least one non-NA change."""
    if "record_id" not in changes.columns:
        raise WriteError("salesforce: changes need a 'record_id' column")
    writers = {spec.column: (name, spec) for name, spec in mapping.fields.items() if spec.write}
    unknown = [c for c in changes.columns if c != "record_id" and c not in writers]
    if unknown:
        raise WriteError(f"salesforce: no writable Salesforce field is mapped for columns {unknown}")
    columns = [c for c in changes.columns if c != "record_id"]
    values = changes[columns].astype(object).where(changes[columns].notna(), None)
    planned: list[tuple[str, dict[str, Any]]] = []
    for record_id, row in zip(changes["record_id"], values.itertuples(index=False, name=None), strict=True):
        if record_id is None or pd.isna(record_id):
            raise WriteError("salesforce: a change without a record_id cannot be written")
        out: dict[str, Any] = {}
        for column, value in zip(columns, row, strict=True):
            if value is None:
                continue
            name, spec = writers[column]
            if spec.type == "boolean":
                out[name] = _as_bool(value, column) != spec.invert
            elif spec.type == "number":
                out[name] = _as_number(value, column)
            elif spec.type == "datetime":
                out[name] = _as_datetime(value, column)
            else:
                out[name] = str(value)
        if out:
            planned.append((str(record_id), out))
    return planned


def _as_bool(value: Any, column: str) -> bool:
    # Payloads replayed from dead letters carry booleans as text; bool("False") would be True.
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_WORDS or text in FALSE_WORDS:
            return text in TRUE_WORDS
        raise WriteError(f"salesforce: {column!r} needs a boolean, got {value[:40]!r}")
    return bool(value)


def _as_number(value: Any, column: str) -> int | float:
    """A JSON number for a number field: an int for Int64 columns, a float otherwise (replayed payloads are text)."""
    number = None if isinstance(value, bool) else pulled_number(value)
    if number is None:
        raise WriteError(f"salesforce: {column!r} needs a number, got {str(value)[:40]!r}")
    return int(round(number)) if NUMERIC_COLUMNS[column] == "Int64" else number


def _as_datetime(value: Any, column: str) -> str:
    """A datetime column's text (canonical `...Z`, or any ISO 8601 with an offset) in Salesforce's write format,
    `yyyy-MM-ddTHH:mm:ss.SSSZ` (valid for REST and Bulk API 2.0); naive or unreadable values are refused."""
    iso = iso_utc(value.strip()) if isinstance(value, str) else None
    if isinstance(value, datetime):  # pd.Timestamp too
        iso = iso_utc(value.isoformat())
    if iso is None:
        raise WriteError(f"salesforce: {column!r} needs an ISO-8601 datetime with a time zone, got {str(value)[:40]!r}")
    return iso
