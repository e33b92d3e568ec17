"""Incremental pulls from Salesforce over the REST API: SOQL paged in (SystemModstamp, Id) order, Leads as canonical
frames, other objects raw (for matching), and the enrich stage's reference data (accounts, existing records).

- SOQL SELECT with ORDER BY, dateTime literals in WHERE (`2024-05-01T12:00:00Z`, unquoted):
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
- REST API "Query" (GET /query?q=…; `done`, `nextRecordsUrl`) and the batch size header
  (`Sforce-Query-Options: batchSize=…`):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_query.htm
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_queryoptions.htm
- A query locator left idle expires (INVALID_QUERY_LOCATOR): the pull queries again from the last stamp it saw.

`PullMixin` is the connector's pull side, on top of salesforce_session.SessionMixin; salesforce_bulk builds the
backfill on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
from simple_salesforce.exceptions import SalesforceMalformedRequest

from leadflow.connectors.base import CURSOR_COLUMN, ExportGuard
from leadflow.connectors.salesforce_frames import PULL_ERROR_COLUMN, iso_utc, to_frame
from leadflow.connectors.salesforce_mapping import ObjectMapping, SalesforceMapping
from leadflow.connectors.salesforce_session import SessionMixin, error_code, log
from leadflow.identity.enrichment import ACCOUNT_COLUMNS, EXISTING_COLUMNS
from leadflow.pipeline.schema import parse_number

FETCH_CHUNK: Final[int] = 200
"""Lead ids per `fetch_by_ids` query (one API call each)."""
_ID: Final = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")

DEFAULT_OBJECT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "Contact": ("Id", "FirstName", "LastName", "Email", "Title", "Phone", "AccountId", "OwnerId", "SystemModstamp"),
    "Account": ("Id", "Name", "Website", "BillingCountry", "OwnerId", "NumberOfEmployees", "AnnualRevenue", "Industry",
                "LastActivityDate", "SystemModstamp"),
    "User": ("Id", "Username", "Email", "FirstName", "LastName", "IsActive", "SystemModstamp"),
}


class PullMixin(SessionMixin):
    """Pulls of a `SalesforceConnector` (whose constructor sets these attributes)."""

    mapping: SalesforceMapping
    guard: ExportGuard
    page_size: int
    lookback: timedelta

    def pull(self, since: datetime | None, until: datetime | None = None) -> Iterator[pd.DataFrame]:
        """Pages of leads in canonical columns, modified in [since - lookback, until), ordered by (SystemModstamp, Id)."""
        lead = self.mapping.objects["Lead"]
        start = since - self.lookback if since is not None else None
        pages = self._rest_pages("Lead", lead.select(), lead.modstamp_field, lead.id_field, start, until)
        for records in dedup_pages(pages, lead.id_field, lead.modstamp_field):
            yield self._lead_frame(records, lead)

    def fetch_by_ids(self, record_ids: list[str]) -> pd.DataFrame:
        """The Leads with these ids as the org has them now, in the columns `pull` gives (a pushed notification names
        the record; the record is read, never the notification trusted): `SELECT … FROM Lead WHERE Id IN (…)`, one
        REST query per FETCH_CHUNK ids (SOQL and SOSL Reference, "IN and NOT IN": `WHERE Id IN ('…', '…')`:
        https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_comparisonoperators.htm;
        a REST query travels in the URL, so the chunk keeps it far under the 16,384-byte URI limit:
        salesforce_history). A deleted or unknown id is simply absent. Every fetched lead counts towards the export
        guard, as a pulled one does."""
        from leadflow.connectors.salesforce_org import soql_ids

        lead = self.mapping.objects["Lead"]
        ids = sorted({str(i) for i in record_ids if isinstance(i, str) and _ID.fullmatch(i)})
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), FETCH_CHUNK):
            soql = (f"SELECT {', '.join(lead.select())} FROM Lead WHERE {lead.id_field} IN "
                    f"({soql_ids(ids[start:start + FETCH_CHUNK])})")
            records += self._call(lambda sf: sf.query_all(soql))["records"]
        return self._lead_frame(records, lead)

    def pull_objects(
        self, sobject: str, since: datetime | None = None, until: datetime | None = None,
        fields: list[str] | None = None, where: str | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Raw pages of another object (Salesforce field names, as text) plus `source_modstamp`, for matching.

        `where` is an extra SOQL condition ANDed to the time window (e.g. `IsConverted = false`)."""
        names = list(fields or DEFAULT_OBJECT_FIELDS.get(sobject, ("Id", "SystemModstamp")))
        names = list(dict.fromkeys(["Id", *names, "SystemModstamp"]))
        pages = self._rest_pages(sobject, names, "SystemModstamp", "Id", since, until, where)
        for records in dedup_pages(pages, "Id", "SystemModstamp"):
            rows = [{n: r.get(n) for n in names} for r in records]
            # object first: a number column with gaps would otherwise turn 120 into "120.0"
            frame = pd.DataFrame(rows, columns=names, dtype=object).astype("string")
            frame[CURSOR_COLUMN] = frame["SystemModstamp"].map(iso_utc, na_action="ignore").astype("string")
            missing = [", ".join(n for n in names if n not in r) for r in records]
            frame[PULL_ERROR_COLUMN] = pd.Series([f"missing fields: {m}" if m else pd.NA for m in missing],
                                                 dtype="string")
            yield frame

    def reference_data(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(accounts, existing) for the enrich stage, in exactly ACCOUNT_COLUMNS / EXISTING_COLUMNS.

        accounts: every Account with its firmographics (`employees` Int64, `annual_revenue` Float64) and
        `country_code` from BillingCountry (NA when it is not a country). existing: every Contact (company = its
        account's name) and every Lead not converted, e-mails lower-cased and trimmed. REST pages, each call
        counted against the API budget."""
        from leadflow.stages.standardize import country_code_of

        raw = _concat(self.pull_objects("Account"), DEFAULT_OBJECT_FIELDS["Account"])
        countries = raw["BillingCountry"].str.strip()
        codes = {v: country_code_of(v) for v in countries.dropna().unique()}
        accounts = pd.DataFrame({
            "account_id": raw["Id"], "name": raw["Name"], "website": raw["Website"], "owner_id": raw["OwnerId"],
            "employees": parse_number(raw["NumberOfEmployees"], "Int64")[0],
            "annual_revenue": parse_number(raw["AnnualRevenue"], "Float64")[0],
            "industry": raw["Industry"], "last_activity_at": raw["LastActivityDate"],
            "country_code": countries.map(codes).astype("string"),
        })[list(ACCOUNT_COLUMNS)]
        names = dict(zip(raw["Id"].dropna(), raw["Name"].loc[raw["Id"].notna()], strict=True))

        contact_fields = ["FirstName", "LastName", "Email", "AccountId"]
        contacts = _concat(self.pull_objects("Contact", fields=contact_fields), contact_fields)
        lead_fields = ["FirstName", "LastName", "Email", "Company"]
        leads = _concat(self.pull_objects("Lead", fields=lead_fields, where="IsConverted = false"), lead_fields)
        existing = pd.concat([
            pd.DataFrame({"record_id": contacts["Id"], "object": "Contact", "email": contacts["Email"],
                          "first_name": contacts["FirstName"], "last_name": contacts["LastName"],
                          "company": contacts["AccountId"].map(names)}),
            pd.DataFrame({"record_id": leads["Id"], "object": "Lead", "email": leads["Email"],
                          "first_name": leads["FirstName"], "last_name": leads["LastName"],
                          "company": leads["Company"]}),
        ], ignore_index=True)
        existing = existing.astype("string")
        email = existing["email"].str.strip().str.lower()
        existing["email"] = email.mask(email == "")
        return accounts.reset_index(drop=True), existing[list(EXISTING_COLUMNS)]

    def _rest_pages(self, sobject: str, fields: list[str], stamp: str, id_field: str, since: datetime | None,
                    until: datetime | None, where: str | None = None) -> Iterator[list[dict[str, Any]]]:
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"}
        soql = _soql(sobject, fields, stamp, since, until, id_field, where)
        # query/query_more rather than query_all_iter: the cursor must survive a re-login between pages.
        result = self._call(lambda sf: sf.query(soql, headers=headers))
        while True:
            records = result["records"]
            yield records
            if result.get("done", True):
                return
            resume_from = next((_parse(r.get(stamp)) for r in reversed(records) if _parse(r.get(stamp))), None)
            next_url = result["nextRecordsUrl"]
            try:
                result = self._call(lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=headers))
            except SalesforceMalformedRequest as exc:
                if error_code(exc) != "INVALID_QUERY_LOCATOR" or resume_from is None:
                    raise
                # Locators expire (15 minutes idle): query again from the last stamp seen; dedup_pages drops the
                # overlap.
                log.info("salesforce: query locator expired, resuming from %s", resume_from.isoformat())
                soql = _soql(sobject, fields, stamp, resume_from, until, id_field, where)
                result = self._call(lambda sf: sf.query(soql, headers=headers))

    def _lead_frame(self, records: list[dict[str, Any]], mapping: ObjectMapping) -> pd.DataFrame:
        frame = to_frame(records, mapping)
        self.guard.saw(frame["lead_id"].dropna())
        return frame


# ------------------------------------------------------------------------------------------------- SOQL and pages


def _soql_datetime(value: datetime) -> str:
    # Whole seconds: flooring `since` only widens the overlap; flooring `until` leaves the rest for the next pull.
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_where(stamp: str, since: datetime | None, until: datetime | None, extra: str | None = None) -> str:
    """A SOQL WHERE clause (with its leading space; "" when there is no condition) for [since, until) on `stamp`."""
    conds = [extra] if extra else []
    if since is not None:
        conds.append(f"{stamp} >= {_soql_datetime(since)}")
    if until is not None:
        conds.append(f"{stamp} < {_soql_datetime(until)}")
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def _soql(sobject: str, fields: list[str], stamp: str, since: datetime | None, until: datetime | None,
          id_field: str, where: str | None = None) -> str:
    return (f"SELECT {', '.join(fields)} FROM {sobject}{soql_where(stamp, since, until, where)} "
            f"ORDER BY {stamp}, {id_field}")


def dedup_pages(pages: Iterator[list[dict[str, Any]]], id_field: str, stamp: str) -> Iterator[list[dict[str, Any]]]:
    """Drop repeats of (Id, SystemModstamp). Pages arrive ordered by stamp, so a record stamped before the latest
    stamp seen was already yielded, and only the latest stamp's ids need remembering."""
    last: str | None = None
    seen: set[Any] = set()
    for page in pages:
        out = []
        for record in page:
            key_stamp, key_id = iso_utc(record.get(stamp)), record.get(id_field)
            if key_stamp is not None:  # a broken stamp neither moves nor consults the order
                if last is not None and key_stamp < last:
                    continue
                if key_stamp != last:
                    last, seen = key_stamp, set()
                if key_id in seen:
                    continue
                seen.add(key_id)
            out.append(record)
        if out:
            yield out


def _parse(value: Any) -> datetime | None:
    iso = iso_utc(value)
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _concat(frames: Iterator[pd.DataFrame], fields: tuple[str, ...] | list[str]) -> pd.DataFrame:
    pages = list(frames)
    if pages:
        return pd.concat(pages, ignore_index=True)
    names = list(dict.fromkeys(["Id", *fields, "SystemModstamp"]))
    return pd.DataFrame({n: pd.Series(dtype="string") for n in names})
