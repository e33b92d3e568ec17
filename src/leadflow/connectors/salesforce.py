"""Salesforce connector: incremental pulls (REST query, Bulk API 2.0 for backfills) and write-back of changed fields.

Uses unmodified simple-salesforce on a `requests.Session` we own the transport of: an adapter that retries 503s,
429s, connection errors and timeouts (`leadflow.connectors.http.urllib3_retry`: the connectors' one retry policy),
puts a default timeout on every call, spends the run's `ApiBudget` and watches the org-wide usage in
`Sforce-Limit-Info`. Nothing here touches the network at import.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from urllib3.util.retry import Retry

from leadflow.connectors.base import (
    CURSOR_COLUMN,
    ApiBudget,
    BudgetExhausted,
    ExportGuard,
    SourceStopped,
    WriteResult,
)
from leadflow.connectors.http import RetryPolicy, urllib3_retry
from leadflow.enrichment import ACCOUNT_COLUMNS, EXISTING_COLUMNS
from leadflow.errors import LeadflowError
from leadflow.schema import (
    BOOLEAN_COLUMNS,
    CANONICAL_COLUMNS,
    FALSE_WORDS,
    NUMERIC_COLUMNS,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    TRUE_WORDS,
    conform,
    dtype_of,
    number_fits,
    number_problem,
    parse_number,
)
from leadflow.yamlio import load_yaml, parse_model

SYSTEM: Final = "salesforce"
DEFAULT_MAPPING_PATH: Final = Path(__file__).resolve().parents[1] / "reference" / "salesforce_mapping.yaml"
PULL_ERROR_COLUMN: Final = "_pull_error"
RETRYABLE_CODES: Final = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
COLLECTION_LIMIT: Final = 200
DEFAULT_OBJECT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "Contact": ("Id", "FirstName", "LastName", "Email", "Title", "Phone", "AccountId", "OwnerId", "SystemModstamp"),
    "Account": ("Id", "Name", "Website", "BillingCountry", "OwnerId", "NumberOfEmployees", "AnnualRevenue", "Industry",
                "LastActivityDate", "SystemModstamp"),
    "User": ("Id", "Username", "Email", "FirstName", "LastName", "IsActive", "SystemModstamp"),
}
_FAST_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
T = TypeVar("T")
log = logging.getLogger(__name__)


class SalesforceAuthError(LeadflowError):
    """The token endpoint refused the credentials (the message never carries a secret)."""


class OrgNotReady(LeadflowError):
    """The org lacks (or hides from the integration user) a field the mapping needs."""


class WriteError(LeadflowError):
    """A write-back request that cannot be sent as given (no `record_id`, columns that are not writable)."""


# ------------------------------------------------------------------------------------------------- credentials


class SalesforceCredentials(BaseModel):
    """Either an OAuth2 client (login_url + client_id + client_secret [+ username/password]) or an existing session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    login_url: str | None = Field(default=None, description="e.g. https://login.salesforce.com or a My Domain URL")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    instance_url: str | None = None
    session_token: SecretStr | None = None
    api_version: str = "59.0"

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesforceCredentials:
        oauth = self.login_url and self.client_id and self.client_secret
        direct = self.instance_url and self.session_token
        if not (oauth or direct):
            raise ValueError("give login_url + client_id + client_secret, or instance_url + session_token")
        for name in ("login_url", "instance_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith("https://"):
                raise ValueError(f"{name} must be an https:// URL (simple-salesforce speaks only HTTPS)")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (password grant)")
        return self


# ------------------------------------------------------------------------------------------------- field mapping


class FieldSpec(BaseModel):
    """One Salesforce field ↔ one canonical column, plus what `leadflow setup salesforce` creates a custom field with.

    Field metadata defaults follow the type: string → Text(255) (a `length` above 255 makes a LongTextArea),
    number → Number(18, 0) for whole-number columns and Number(18, 2) otherwise, picklist → a restricted picklist of
    `values`. `length` is also the longest value leadflow writes: `doctor` warns when the org's field is shorter."""

    model_config = ConfigDict(extra="forbid")

    column: str
    type: Literal["string", "boolean", "datetime", "picklist", "number"] = "string"
    read: bool = True
    write: bool = True
    invert: bool = False
    values: list[str] | None = None
    label: str | None = Field(default=None, min_length=1, max_length=40,
                              description="Custom field label; default: the API name without __c, _ as spaces.")
    length: int | None = Field(default=None, ge=1, le=131_072, description="string/picklist: characters.")
    precision: int | None = Field(default=None, ge=1, le=18, description="number: total digits.")
    scale: int | None = Field(default=None, ge=0, le=17, description="number: digits after the decimal point.")
    restricted: bool = Field(default=True, description="picklist: values outside `values` are refused by the org.")

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if self.column not in CANONICAL_COLUMNS or self.column in ("lead_id", "source"):
            raise ValueError(f"{self.column!r} is not a mappable canonical column")
        if self.invert and self.type != "boolean":
            raise ValueError("invert applies to boolean fields only")
        if (self.type == "boolean") != (self.column in BOOLEAN_COLUMNS):
            raise ValueError(f"type {self.type!r} does not fit column {self.column!r}")
        if self.type == "number" and self.column not in NUMERIC_COLUMNS:
            raise ValueError(f"type 'number' needs a numeric column ({', '.join(NUMERIC_COLUMNS)}), "
                             f"not {self.column!r}")
        if self.length is not None and self.type not in ("string", "picklist"):
            raise ValueError("length applies to string and picklist fields only")
        if (self.precision is not None or self.scale is not None) and self.type != "number":
            raise ValueError("precision and scale apply to number fields only")
        # Defaults go straight into __dict__: `model_fields_set` keeps telling what the mapping itself declared.
        if self.type == "string" and self.length is None:
            self.__dict__["length"] = 255
        if self.type == "number":
            whole = NUMERIC_COLUMNS[self.column] == "Int64"
            if self.precision is None:
                self.__dict__["precision"] = 18
            if self.scale is None:
                self.__dict__["scale"] = 0 if whole else 2
            if self.scale is not None and self.precision is not None and self.scale > self.precision:
                raise ValueError(f"scale {self.scale} is larger than precision {self.precision}")
        return self


class ObjectMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_field: str = "Id"
    modstamp_field: str = "SystemModstamp"
    fields: dict[str, FieldSpec]

    @model_validator(mode="after")
    def _one_field_per_column(self) -> ObjectMapping:
        for way in ("read", "write"):
            seen: dict[str, str] = {}
            for name, spec in self.fields.items():
                if getattr(spec, way):
                    if spec.column in seen:
                        raise ValueError(f"column {spec.column!r} is {way} by both {seen[spec.column]} and {name}")
                    seen[spec.column] = name
        return self

    def select(self) -> list[str]:
        """Fields to query: id, read-mapped fields, modstamp (each once)."""
        names = [self.id_field] + [n for n, s in self.fields.items() if s.read] + [self.modstamp_field]
        return list(dict.fromkeys(names))


class SalesforceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = "1"
    objects: dict[str, ObjectMapping]

    @model_validator(mode="after")
    def _has_lead(self) -> SalesforceMapping:
        if "Lead" not in self.objects:
            raise ValueError("a mapping for Lead is required")
        return self


def load_mapping(path: Path = DEFAULT_MAPPING_PATH) -> SalesforceMapping:
    """Load and validate a field-mapping YAML; errors name the file and YAML path."""
    return parse_model(SalesforceMapping, load_yaml(path), path)


# ------------------------------------------------------------------------------------------------- transport


@dataclass
class SalesforceWriteResult(WriteResult):
    """WriteResult plus `planned`: one row per record, `record_id` + Salesforce fields that were (to be) sent;
    `refused`: one row per value the org's describe would not take, left out of the request (record_id, field, value,
    reason, message); `truncated`: text values cut at a word boundary to fit their field."""

    planned: pd.DataFrame = field(default_factory=pd.DataFrame)
    refused: pd.DataFrame = field(default_factory=lambda: _empty_refused())
    truncated: int = 0


def _empty_refused() -> pd.DataFrame:
    from leadflow.connectors.salesforce_fit import empty_refused

    return empty_refused()


MAX_RETRY_AFTER = 60.0
"""The longest Retry-After a Salesforce answer may make the connector wait before its next attempt."""


class _GuardedAdapter(HTTPAdapter):
    """Default timeout, budget checks before each call, org usage read from every response."""

    def __init__(self, owner: SalesforceConnector, retry: Retry, timeout: float) -> None:
        self._owner, self._timeout = owner, timeout
        super().__init__(max_retries=retry)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        counted = "/services/oauth2/" not in (request.url or "")
        if counted:
            self._owner._before_call()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        response = super().send(request, **kwargs)
        if counted:
            self._owner._after_call(response)
        return response


# ------------------------------------------------------------------------------------------------- connector


class SalesforceConnector:
    """A LeadSource and CrmWriter for Salesforce Leads (plus raw pulls of Contacts, Accounts, Users)."""

    system = SYSTEM

    def __init__(
        self,
        credentials: SalesforceCredentials,
        *,
        session: requests.Session | None = None,
        mapping: SalesforceMapping | None = None,
        budget: ApiBudget | None = None,
        max_org_usage_share: float = 0.8,
        page_size: int = 2000,
        lookback: timedelta = timedelta(minutes=5),
        bulk_query_threshold: int = 10_000,
        bulk_page_size: int = 50_000,
        bulk_write_threshold: int = 2000,
        bulk_wait: float = 1.0,
        max_change_share: float = 0.5,
        guard_floor: int = 100,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 60.0,
    ) -> None:
        self.credentials = credentials
        self.mapping = mapping or load_mapping()
        self.budget = budget or ApiBudget(SYSTEM)
        self.max_org_usage_share = max_org_usage_share
        self.page_size = page_size
        self.lookback = lookback
        self.bulk_query_threshold = bulk_query_threshold
        self.bulk_page_size = bulk_page_size
        self.bulk_write_threshold = bulk_write_threshold
        self.bulk_wait = bulk_wait
        self.guard = ExportGuard(SYSTEM, max_change_share, guard_floor)
        self.api_calls = 0
        self.org_usage: tuple[int, int] | None = None
        """(used, max) of the org's daily API requests, as last reported by Salesforce."""
        self._owns_session = session is None
        self.session = session or requests.Session()
        # Retries on every verb: a 503 or 429 means the request was not processed, and every call we make is an
        # idempotent read or update (bulk job creation at worst leaves an empty job behind). The REST API's status
        # codes list 503 ("the server is unavailable to handle the request ... often occurs if the server is
        # overloaded"); 429 comes from rate limiting in front of the API (Salesforce's edge; Marketing Cloud
        # documents it with Retry-After: https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/
        # rate-limiting-errors.html). A Retry-After is honoured, capped so one answer cannot stall a run. The
        # REST API status codes: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm.
        self.retry = RetryPolicy(attempts=retries + 1, base=backoff, retry_after_cap=MAX_RETRY_AFTER)
        retry = urllib3_retry(self.retry, (429, 503), methods=None)
        self.session.mount("https://", _GuardedAdapter(self, retry, timeout))
        self._sf: Salesforce | None = None
        self._started = False
        self.user_id: str | None = None
        """The connecting (integration) user's id, from the token response once logged in."""

    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Canonical columns with a writable Lead field in the mapping."""
        return tuple(spec.column for spec in self.mapping.objects["Lead"].fields.values() if spec.write)

    def close(self) -> None:
        """Close the HTTP session if the connector created it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> SalesforceConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.credentials.instance_url or self.credentials.login_url
        return f"SalesforceConnector({where!r}, api_calls={self.api_calls})"

    # -- transport hooks
    def _before_call(self) -> None:
        if self.org_usage is not None:
            used, most = self.org_usage
            if most and used >= self.max_org_usage_share * most:
                raise BudgetExhausted(SYSTEM, f"org API usage {used}/{most} is at or above the "
                                      f"{self.max_org_usage_share:.0%} leadflow may use")
        self.budget.spend(1)
        self.api_calls += 1

    def _after_call(self, response: requests.Response) -> None:
        usage = Salesforce.parse_api_usage(response.headers.get("Sforce-Limit-Info", ""))
        if "api-usage" in usage:
            self.org_usage = (usage["api-usage"].used, usage["api-usage"].total)

    # -- auth
    def _login(self) -> Salesforce:
        creds = self.credentials
        if creds.login_url and creds.client_id and creds.client_secret:
            form = {"client_id": creds.client_id, "client_secret": creds.client_secret.get_secret_value()}
            if creds.username and creds.password:
                form |= {"grant_type": "password", "username": creds.username,
                         "password": creds.password.get_secret_value()}
            else:
                form["grant_type"] = "client_credentials"
            reply = self.session.post(f"{creds.login_url.rstrip('/')}/services/oauth2/token", data=form)
            if reply.status_code != 200:
                try:
                    refusal = reply.json()
                    reason, detail = str(refusal.get("error", "")), str(refusal.get("error_description", ""))
                except (ValueError, AttributeError):
                    reason = detail = ""
                if form["grant_type"] == "client_credentials" and "not supported on this domain" in detail:
                    # Client credentials work only on the org's My Domain URL (Salesforce Help, "OAuth 2.0 Client
                    # Credentials Flow"); login.salesforce.com / test.salesforce.com refuse them.
                    raise SalesforceAuthError(
                        f"salesforce: login refused at {creds.login_url} (client credentials need the org's My Domain "
                        "URL, e.g. https://yourcompany.my.salesforce.com, as login_url)")
                raise SalesforceAuthError(f"salesforce: login refused (HTTP {reply.status_code} {reason})")
            body = reply.json()
            instance, token = body["instance_url"], body["access_token"]
            # The identity URL ends with the connecting user's id (OAuth 2.0 token response, `id`: "Identity URL
            # that can be used to identify the user"): https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
            self.user_id = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1] or None
        else:
            assert creds.instance_url and creds.session_token  # guaranteed by the model validator
            instance, token = creds.instance_url, creds.session_token.get_secret_value()
        return Salesforce(instance_url=instance, session_id=token, session=self.session, version=creds.api_version)

    def _client(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        if not self._started:
            self._started = True
            self._read_limits()
        return self._sf

    def _read_limits(self) -> None:
        limits = self._call(lambda sf: sf.limits())
        daily = limits.get("DailyApiRequests", {})
        if daily.get("Max"):
            self.org_usage = (int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]))

    def _call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call; re-login once on an expired session; REQUEST_LIMIT_EXCEEDED stops the source."""
        can_relogin = bool(self.credentials.login_url)
        for attempt in (0, 1):
            sf = self._client()
            try:
                return fn(sf)
            except SalesforceExpiredSession:
                if attempt or not can_relogin:
                    raise
                log.info("salesforce: session expired, logging in again")
                self._sf = None
            except SalesforceRefusedRequest as exc:
                if _error_code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise SourceStopped(SYSTEM, "REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent") from None
                raise
            except SalesforceMalformedRequest as exc:
                if _error_code(exc) == "INVALID_FIELD":
                    # A mapped field the org lacks or hides from this user (field-level security): say which, and
                    # what fixes it, instead of a traceback mid-run.
                    raise OrgNotReady(f"salesforce: {_error_message(exc)} — run `leadflow doctor --config …` to "
                                      "list what the org lacks and `leadflow setup salesforce --config …` to create "
                                      "it") from None
                raise
        raise AssertionError("unreachable")

    # -- pulls
    def pull(self, since: datetime | None, until: datetime | None = None) -> Iterator[pd.DataFrame]:
        """Pages of leads in canonical columns, modified in [since - lookback, until), ordered by (SystemModstamp, Id)."""
        lead = self.mapping.objects["Lead"]
        start = since - self.lookback if since is not None else None
        pages = self._rest_pages("Lead", lead.select(), lead.modstamp_field, lead.id_field, start, until)
        for records in _dedup(pages, lead.id_field, lead.modstamp_field):
            yield self._lead_frame(records, lead)

    def backfill(self, start: datetime, end: datetime) -> Iterator[pd.DataFrame]:
        """Leads modified in [start, end): Bulk API 2.0 above `bulk_query_threshold` records (a COUNT() first)."""
        lead = self.mapping.objects["Lead"]
        where = _where(lead.modstamp_field, start, end)
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
            soql = f"SELECT {', '.join(lead.select())} FROM Lead{_where(lead.modstamp_field, start, end)}"
            texts = self._bulk_pages("Lead", soql)
            pages = _ordered_pages((r for text in texts for r in _csv_records(text, lead)), lead.id_field,
                                   lead.modstamp_field, self.bulk_page_size)
        for records in _dedup(pages, lead.id_field, lead.modstamp_field):
            yield self._lead_frame(records, lead)

    def pull_objects(
        self, sobject: str, since: datetime | None = None, until: datetime | None = None,
        fields: list[str] | None = None, where: str | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Raw pages of another object (Salesforce field names, as text) plus `source_modstamp`, for matching.

        `where` is an extra SOQL condition ANDed to the time window (e.g. `IsConverted = false`)."""
        names = list(fields or DEFAULT_OBJECT_FIELDS.get(sobject, ("Id", "SystemModstamp")))
        names = list(dict.fromkeys(["Id", *names, "SystemModstamp"]))
        pages = self._rest_pages(sobject, names, "SystemModstamp", "Id", since, until, where)
        for records in _dedup(pages, "Id", "SystemModstamp"):
            rows = [{n: r.get(n) for n in names} for r in records]
            # object first: a number column with gaps would otherwise turn 120 into "120.0"
            frame = pd.DataFrame(rows, columns=names, dtype=object).astype("string")
            frame[CURSOR_COLUMN] = frame["SystemModstamp"].map(_iso, na_action="ignore").astype("string")
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
                if _error_code(exc) != "INVALID_QUERY_LOCATOR" or resume_from is None:
                    raise
                # Locators expire (15 minutes idle): query again from the last stamp seen; _dedup drops the overlap.
                log.info("salesforce: query locator expired, resuming from %s", resume_from.isoformat())
                soql = _soql(sobject, fields, stamp, resume_from, until, id_field, where)
                result = self._call(lambda sf: sf.query(soql, headers=headers))

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
                if _error_code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise SourceStopped(SYSTEM, "REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent") from None
                raise

    def _lead_frame(self, records: list[dict[str, Any]], mapping: ObjectMapping) -> pd.DataFrame:
        frame = _to_frame(records, mapping)
        self.guard.saw(frame["lead_id"].dropna())
        return frame

    # -- writes
    def write(self, changes: pd.DataFrame, *, dry_run: bool = False, override: bool = False) -> SalesforceWriteResult:
        """Write changed fields (`record_id` + canonical columns, NA = unchanged) back to Leads.

        The planned values are first fitted to the org's Lead describe (fetched once per connector) and, when an
        OwnerId is written, to its active users and Lead queues (fetched once): long text is cut at a word
        boundary, and what the org would refuse is left out and returned in `refused` (see salesforce_fit). A dry
        run fits only with what this connector already fetched (it makes no API call). `api_calls` counts the
        write requests; the describe and owner reads count in the connector's `api_calls` and budget."""
        from leadflow.connectors.salesforce_fit import OWNER_FIELD, fit_planned
        from leadflow.connectors.salesforce_org import (cached_lead_rules, cached_valid_owners, lead_rules,
                                                        valid_owners)

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


def salesforce_connector(
    credentials: SalesforceCredentials,
    *,
    session: requests.Session | None = None,
    mapping: SalesforceMapping | Path | None = None,
    budget: ApiBudget | None = None,
    page_size: int = 2000,
    lookback: timedelta = timedelta(minutes=5),
    **options: Any,
) -> SalesforceConnector:
    """Build a Salesforce connector; `mapping` is a parsed mapping or a YAML path (default: the bundled one)."""
    if isinstance(mapping, Path):
        mapping = load_mapping(mapping)
    return SalesforceConnector(credentials, session=session, mapping=mapping, budget=budget or ApiBudget(SYSTEM),
                               page_size=page_size, lookback=lookback, **options)


# ------------------------------------------------------------------------------------------------- helpers


def _error_message(exc: Exception) -> str:
    """The first error's message of a Salesforce error response, cut at its first sentence."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        text = str(content[0].get("message", "")).strip()
        return text.split("\n")[-1].split(". ")[0] if text else _error_code(exc)
    return type(exc).__name__


def _error_code(exc: Exception) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""


def _soql_datetime(value: datetime) -> str:
    # Whole seconds: flooring `since` only widens the overlap; flooring `until` leaves the rest for the next pull.
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _where(stamp: str, since: datetime | None, until: datetime | None, extra: str | None = None) -> str:
    conds = [extra] if extra else []
    if since is not None:
        conds.append(f"{stamp} >= {_soql_datetime(since)}")
    if until is not None:
        conds.append(f"{stamp} < {_soql_datetime(until)}")
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def _soql(sobject: str, fields: list[str], stamp: str, since: datetime | None, until: datetime | None,
          id_field: str, where: str | None = None) -> str:
    return (f"SELECT {', '.join(fields)} FROM {sobject}{_where(stamp, since, until, where)} "
            f"ORDER BY {stamp}, {id_field}")


def _dedup(pages: Iterator[list[dict[str, Any]]], id_field: str, stamp: str) -> Iterator[list[dict[str, Any]]]:
    """Drop repeats of (Id, SystemModstamp). Pages arrive ordered by stamp, so a record stamped before the latest
    stamp seen was already yielded, and only the latest stamp's ids need remembering."""
    last: str | None = None
    seen: set[Any] = set()
    for page in pages:
        out = []
        for record in page:
            key_stamp, key_id = _iso(record.get(stamp)), record.get(id_field)
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


def _ordered_pages(records: Iterator[dict[str, Any]], id_field: str, stamp: str,
                   size: int) -> Iterator[list[dict[str, Any]]]:
    """Bulk query records in (stamp, id) order, each id once (its latest stamp), in pages of `size`. Records whose
    stamp is not a datetime come first (the frame flags them)."""
    latest: dict[Any, dict[str, Any]] = {}
    for record in records:
        key = record.get(id_field)
        kept = latest.get(key)
        if kept is None or (_iso(record.get(stamp)) or "") >= (_iso(kept.get(stamp)) or ""):
            latest[key] = record
    ordered = sorted(latest.values(), key=lambda r: (_iso(r.get(stamp)) or "", str(r.get(id_field) or "")))
    for start in range(0, len(ordered), max(size, 1)):
        yield ordered[start: start + size]


def _parse(value: Any) -> datetime | None:
    iso = _iso(value)
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(value: Any) -> str | None:
    """Salesforce datetime → ISO-8601 UTC with milliseconds and `Z`; None when it is not a datetime."""
    if not isinstance(value, str):
        return None
    if _FAST_STAMP.match(value):
        return value[:23] + "Z"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def _canonical_datetime(value: Any) -> str | None:
    """A pulled Salesforce datetime as leadflow's canonical text, `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, UTC): what
    the stages write (lifecycle stamps), so a value leadflow wrote compares equal when it is read back."""
    iso = _iso(value)
    return None if iso is None else iso[:19] + "Z"


def _as_datetime(value: Any, column: str) -> str:
    """A datetime column's text (canonical `...Z`, or any ISO 8601 with an offset) in Salesforce's write format,
    `yyyy-MM-ddTHH:mm:ss.SSSZ` (valid for REST and Bulk API 2.0); naive or unreadable values are refused."""
    iso = _iso(value.strip()) if isinstance(value, str) else None
    if isinstance(value, datetime):  # pd.Timestamp too
        iso = _iso(value.isoformat())
    if iso is None:
        raise WriteError(f"salesforce: {column!r} needs an ISO-8601 datetime with a time zone, got {str(value)[:40]!r}")
    return iso


def _to_frame(records: list[dict[str, Any]], mapping: ObjectMapping) -> pd.DataFrame:
    """Canonical columns + `source_modstamp` + `_pull_error` (why a record is broken; NA when it is fine)."""
    select = mapping.select()
    readers = [(name, spec) for name, spec in mapping.fields.items() if spec.read]
    rows: list[dict[str, Any]] = []
    for record in records:
        problems: list[str] = []
        missing = [name for name in select if name not in record]
        if missing:
            problems.append(f"missing fields: {', '.join(missing)}")
        row: dict[str, Any] = {"lead_id": record.get(mapping.id_field), "source": SYSTEM}
        stamp = _iso(record.get(mapping.modstamp_field))
        if stamp is None and mapping.modstamp_field not in missing:
            problems.append(f"{mapping.modstamp_field}: not a datetime")
        row[CURSOR_COLUMN] = stamp
        for name, spec in readers:
            value = record.get(name)
            if value is None:
                row[spec.column] = None
            elif spec.type == "boolean":
                if isinstance(value, bool):
                    row[spec.column] = value != spec.invert
                else:
                    row[spec.column] = None
                    problems.append(f"{name}: not a boolean ({str(value)[:40]!r})")
            elif spec.type == "datetime":
                row[spec.column] = _canonical_datetime(value)
                if row[spec.column] is None:
                    problems.append(f"{name}: not a datetime ({str(value)[:40]!r})")
                elif not TIMESTAMP_MIN.year <= int(row[spec.column][:4]) <= TIMESTAMP_MAX.year:
                    row[spec.column] = None
                    problems.append(f"{name}: datetime outside {TIMESTAMP_MIN.year}-{TIMESTAMP_MAX.year} "
                                    f"({str(value)[:40]!r})")
            elif spec.type == "number":
                dtype = NUMERIC_COLUMNS[spec.column]
                row[spec.column] = _pulled_number(value, dtype)
                if row[spec.column] is None:
                    problems.append(f"{name}: {number_problem(value, dtype)} ({_shown(value)})")
            else:
                if not isinstance(value, str):
                    problems.append(f"{name}: not text ({type(value).__name__})")
                    value = str(value)
                if spec.type == "picklist" and spec.values is not None and value not in spec.values:
                    problems.append(f"{name}: unknown picklist value {value[:40]!r}")
                row[spec.column] = value
        row[PULL_ERROR_COLUMN] = "; ".join(problems) or None
        rows.append(row)
    columns = ["lead_id", "source", *(spec.column for _, spec in readers), CURSOR_COLUMN, PULL_ERROR_COLUMN]
    frame = pd.DataFrame(rows, columns=columns)
    for column in frame.columns:
        if column in NUMERIC_COLUMNS:
            values = pd.to_numeric(frame[column].astype(object), errors="coerce")
            frame[column] = (values.round() if NUMERIC_COLUMNS[column] == "Int64" else values).astype(dtype_of(column))
        else:
            frame[column] = frame[column].astype("boolean" if column in BOOLEAN_COLUMNS else "string")
    return conform(frame)


def _pulled_number(value: Any, dtype: str = "Float64") -> float | None:
    """A number field's value (JSON number, or text from Bulk API CSV) as a float; None when it is not one or does
    not fit `dtype` (inf, NaN, beyond float range, or beyond the Int64 range for Int64 columns)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    except (ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
        return None
    return number if number_fits(number, dtype) else None


def _shown(value: Any) -> str:
    """A value for a `_pull_error` message, at most 40 characters (str() of a 4,300+ digit int raises ValueError)."""
    try:
        text = str(value)
    except ValueError:
        text = "an integer of over 4300 digits"
    return repr(text[:40])


def _concat(frames: Iterator[pd.DataFrame], fields: tuple[str, ...] | list[str]) -> pd.DataFrame:
    pages = list(frames)
    if pages:
        return pd.concat(pages, ignore_index=True)
    names = list(dict.fromkeys(["Id", *fields, "SystemModstamp"]))
    return pd.DataFrame({n: pd.Series(dtype="string") for n in names})


def _csv_records(text: str, mapping: ObjectMapping) -> list[dict[str, Any]]:
    """Bulk API CSV → REST-shaped dicts: empty → None, booleans parsed (anything else is left for `_to_frame`)."""
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
    number = None if isinstance(value, bool) else _pulled_number(value)
    if number is None:
        raise WriteError(f"salesforce: {column!r} needs a number, got {str(value)[:40]!r}")
    return int(round(number)) if NUMERIC_COLUMNS[column] == "Int64" else number


def _bulk_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
