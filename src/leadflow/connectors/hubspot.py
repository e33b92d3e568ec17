"""HubSpot CRM v3 contacts: incremental pull by `lastmodifieddate`, and batch write-back.

HubSpot's search returns at most 10,000 results per query and allows 5 search requests per second per account —
shared by every app and token in the portal — within the account's 190 calls per 10 s. `pull` therefore never pages
with `after` offsets: each page is a fresh query whose time window starts at the last stamp read (keyset paging), so
no query reaches the cap, and a window that cannot be narrowed (thousands of contacts with one identical timestamp)
is paged by `hs_object_id` instead. A client-side sliding-window limiter keeps this client under the limits; a 429
caused by other apps in the portal is waited out (Retry-After when HubSpot sends one, else the policy's window).

The search index trails writes (a change can take up to about a minute to become searchable), so an incremental
pull starts `lookback` before the watermark it is given; see `SEARCH_INDEX_LAG`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from leadflow.connectors.base import (
    CURSOR_COLUMN,
    ApiBudget,
    BudgetExhausted,
    ExportGuard,
    SourceStopped,
    WriteResult,
)
from leadflow.connectors.hubspot_values import (
    CURSOR_PROPERTY,
    FieldMap,
    _collect,
    _failure,
    _failures_frame,
    _id_of,
    _iso,
    _json,
    _or,
    _parse_ms,
    _read_value,
    _stamp_of,
    _to_ms,
    _write_value,
)
from leadflow.connectors.http import (
    DONE,
    Fail,
    RetriesExhausted,
    RetryLater,
    RetryPolicy,
    Transient,
    Verdict,
    parse_retry_after,
    transient_only,
    with_retries,
)
from leadflow.connectors.ratelimit import WindowLimiter
from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.schema import DERIVED_COLUMNS, INPUT_COLUMNS, dtype_of
from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = [
    "DEFAULT_LOOKBACK",
    "DEFAULT_MAPPING",
    "ERROR_COLUMN",
    "FieldMap",
    "HubspotAuthError",
    "HubspotConnector",
    "HubspotCredentials",
    "HubspotError",
    "HubspotMapping",
    "SEARCH_INDEX_LAG",
    "RetryPolicy",
    "WindowLimiter",
    "hubspot_connector",
    "load_hubspot_mapping",
]

SYSTEM: Final[str] = "hubspot"
DEFAULT_MAPPING: Final[Path] = REFERENCE_DIR / "hubspot_mapping.yaml"
ERROR_COLUMN: Final[str] = "_pull_error"
"""Why a pulled row is suspect (missing fields, wrong types, unknown options); NA for clean rows."""
ID_PROPERTY: Final[str] = "hs_object_id"
SEARCH_PATH: Final[str] = "/crm/v3/objects/contacts/search"
BATCH_UPDATE_PATH: Final[str] = "/crm/v3/objects/contacts/batch/update"
BATCH_READ_PATH: Final[str] = "/crm/v3/objects/contacts/batch/read"
MAX_PAGE_SIZE: Final[int] = 200
MAX_BATCH: Final[int] = 100
_CONNECTOR_COLUMNS: Final[frozenset[str]] = frozenset({"lead_id", "source", CURSOR_COLUMN, ERROR_COLUMN})
SEARCH_INDEX_LAG: Final[timedelta] = timedelta(seconds=60)
"""How long a created or updated contact can stay invisible to search. HubSpot developer docs, CRM API "Search",
Limitations: "it may take a few moments for newly created or updated objects to appear in search results"
(https://developers.hubspot.com/docs/guides/api/crm/search#limitations); observed: up to about a minute."""
DEFAULT_LOOKBACK: Final[timedelta] = timedelta(minutes=5)
"""The overlap an incremental pull re-reads before its watermark (as `systems.hubspot.lookback_seconds`' default)."""
SEARCH_PER_SECOND: Final[int] = 5
"""HubSpot developer docs, CRM API "Search", Limitations: search requests are rate limited to five per second per
account, shared by every app in the portal (https://developers.hubspot.com/docs/guides/api/crm/search#limitations)."""
CALLS_PER_TEN_SECONDS: Final[int] = 190
"""HubSpot developer docs, "API usage guidelines and limits" (Professional/Enterprise private apps, per account):
https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details and the changelog "Increasing our API
limits" (https://developers.hubspot.com/changelog/increasing-our-api-limits)."""

log = logging.getLogger(__name__)


# -- configuration -------------------------------------------------------------------------------------------------
class HubspotCredentials(BaseModel):
    """A private app's access token and the API root (the sandbox's URL in tests)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = "https://api.hubapi.com"
    token: SecretStr

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for a local sandbox)")
        return value.rstrip("/")


class HubspotMapping(BaseModel):
    """Canonical (or extra) column → contact property; `lead_id`, `source` and `source_modstamp` are the connector's."""

    model_config = ConfigDict(extra="forbid")

    version: str = "1"
    object: Literal["contacts"] = "contacts"
    fields: dict[str, FieldMap]

    @field_validator("fields")
    @classmethod
    def _columns(cls, fields: dict[str, FieldMap]) -> dict[str, FieldMap]:
        for column in fields:
            if column in _CONNECTOR_COLUMNS:
                raise ValueError(f"column {column!r} is set by the connector and cannot be mapped")
            if column in DERIVED_COLUMNS:
                raise ValueError(f"column {column!r} is derived by the pipeline and cannot be mapped")
            if not column.replace("_", "").isalnum() or not column[0].isalpha():
                raise ValueError(f"column {column!r} must be snake_case")
        return fields

    @property
    def properties(self) -> list[str]:
        """Contact properties to request, each once, plus the stamps the connector needs."""
        names = [spec.property for spec in self.fields.values()] + ["createdate", CURSOR_PROPERTY]
        return list(dict.fromkeys(names))


def load_hubspot_mapping(path: Path = DEFAULT_MAPPING) -> HubspotMapping:
    """Load and validate a mapping YAML; errors name the YAML path."""
    return parse_model(HubspotMapping, load_yaml(path), path)


# -- errors, retries, rate limits ----------------------------------------------------------------------------------
class HubspotError(LeadflowError):
    """HubSpot refused a request or kept failing; carries the HTTP status, HubSpot's category and correlation id."""

    def __init__(
        self, message: str, *, status: int | None = None, category: str | None = None, correlation_id: str | None = None
    ) -> None:
        self.status, self.category, self.correlation_id = status, category, correlation_id
        where = f" (HTTP {status}{' ' + category if category else ''})" if status else ""
        ref = f" [correlationId {correlation_id}]" if correlation_id else ""
        super().__init__(f"HubSpot{where}: {message}{ref}")


class HubspotAuthError(HubspotError):
    """The private app token was refused (401/403): not retried."""


# -- the connector -------------------------------------------------------------------------------------------------
class HubspotConnector:
    """HubSpot contacts as a `LeadSource` and a `CrmWriter`. Build it with `hubspot_connector(...)`."""

    system: str = SYSTEM

    def __init__(
        self,
        credentials: HubspotCredentials,
        *,
        session: requests.Session,
        mapping: HubspotMapping,
        budget: ApiBudget,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        max_results_per_query: int,
        requests_per_second: int,
        calls_per_ten_seconds: int,
        page_size: int,
        retry: RetryPolicy,
        timeout: float,
        guard: ExportGuard,
        lookback: timedelta = DEFAULT_LOOKBACK,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if page_size > max_results_per_query:
            # Keyset paging reads one page per query, so the per-query cap only has to hold a page.
            raise ValueError("page_size cannot exceed max_results_per_query")
        if lookback < timedelta(0):
            raise ValueError("lookback cannot be negative")
        if lookback < SEARCH_INDEX_LAG:
            # Warn, not refuse: a one-off load or a test may want no overlap; an hourly sync must not.
            log.warning("HubSpot lookback of %.0f s is shorter than the search index lag (up to %.0f s): a contact "
                        "changed just before a run can be indexed after the next run's start and never be pulled",
                        lookback.total_seconds(), SEARCH_INDEX_LAG.total_seconds())
        self.lookback = lookback
        """An incremental pull starts this long before its `since` (see SEARCH_INDEX_LAG)."""
        self._credentials = credentials
        self._session = session
        self.mapping = mapping
        self.budget = budget
        self.guard = guard
        self.max_results_per_query = max_results_per_query
        self.page_size = page_size
        self.retry = retry
        self.timeout = timeout
        self._sleep = sleep
        self._search_limiter = WindowLimiter(requests_per_second, 1.0, clock=clock, sleep=sleep)
        self._call_limiter = WindowLimiter(calls_per_ten_seconds, 10.0, clock=clock, sleep=sleep)
        self.stats: Counter[str] = Counter()
        """calls, retries, rate_limited, rate_wait_s (seconds the limiter slept), tie_stamps."""

    def __repr__(self) -> str:
        return f"HubspotConnector(base_url={self._credentials.base_url!r}, budget={self.budget!r})"

    # -- HTTP ------------------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, *, search: bool = False) -> Any:
        """One API call with rate limiting, budget and retries (I/O errors, 429, 5xx); returns the parsed JSON."""
        url = self._credentials.base_url + path

        def attempt() -> tuple[requests.Response, Any]:
            self.budget.spend()
            self.stats["rate_wait_s"] += self._call_limiter.wait()  # type: ignore[assignment]
            if search:
                self.stats["rate_wait_s"] += self._search_limiter.wait()  # type: ignore[assignment]
            self.stats["calls"] += 1
            try:
                # The token goes in per request, never onto a caller's (possibly shared, possibly logged) session.
                response = self._session.request(
                    method, url, json=body, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {self._credentials.token.get_secret_value()}"},
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise Transient(f"{type(exc).__name__} talking to HubSpot") from None
            finally:
                self._call_limiter.mark()
                if search:
                    self._search_limiter.mark()
            return response, _json(response)

        def retried(retry: int, verdict: RetryLater, delay: float) -> None:
            self.stats["retries"] += 1
            log.warning("HubSpot %s %s: %s; retry %d/%d in %.2f s", method, path, verdict.reason, retry,
                        self.retry.attempts - 1, delay)

        try:
            _, payload = with_retries(attempt, policy=self.retry, classify=lambda o: self._classify(o, method, path),
                                      sleep=self._sleep, on_retry=retried)
        except RetriesExhausted as exc:
            raise HubspotError(f"{method} {path}: {exc}") from None
        return payload

    def _classify(self, outcome: Any, method: str, path: str) -> Verdict:
        """What an answer means: retry I/O errors, 429 (but DAILY) and 5xx; 401/403 and other 4xx are errors.

        HubSpot developer docs, "Error handling" (https://developers.hubspot.com/docs/api/error-handling): 429 when
        over the rate limits; "502/504 timeouts ... pause your requests for a few seconds, then retry"; "503 service
        temporarily unavailable ... pause your requests for a few seconds, then retry"."""
        if not isinstance(outcome, tuple):
            return transient_only(outcome)
        response, payload = outcome
        status = response.status_code
        details = payload if isinstance(payload, dict) else {}
        message = str(details.get("message") or response.reason or "no message")[:500]
        category = details.get("category") or details.get("errorType")
        correlation = details.get("correlationId")
        if status in (401, 403):
            return Fail(HubspotAuthError(
                f"the private app token was refused on {method} {path}: {message} "
                "(check the token and its crm.objects.contacts scopes)",
                status=status, category=category, correlation_id=correlation,
            ))
        if status == 429:
            self.stats["rate_limited"] += 1
            policy = str(details.get("policyName") or "")
            if policy == "DAILY":
                return Fail(SourceStopped(SYSTEM, "daily API limit reached (429 DAILY); resume tomorrow"))
            # Without Retry-After, wait out the policy's whole window: one second, or ten for the rolling limit.
            # Our own limiter cannot see the calls other apps in the portal made: the limits are per account
            # (HubSpot developer docs, "API usage guidelines and limits":
            # https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details). Unknown policy: the backoff.
            after = parse_retry_after(response.headers.get("Retry-After"))
            window = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}.get(policy)
            return RetryLater(f"429 {policy or 'RATE_LIMIT'}", after if after is not None else window)
        if status >= 500:
            return RetryLater(f"HTTP {status}")
        if payload is None:
            return RetryLater(f"HTTP {status} with a body that is not JSON")  # a proxy's error page: transient
        if status >= 400:
            return Fail(HubspotError(f"{method} {path}: {message}", status=status, category=category,
                                     correlation_id=correlation))
        return DONE

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = self._request("POST", SEARCH_PATH, body, search=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            raise HubspotError("search response without a `results` list")
        return payload

    # -- pull ------------------------------------------------------------------------------------------------------
    def pull(self, since: datetime | None, until: datetime | None = None) -> Iterator[pd.DataFrame]:
        """Pages of contacts modified in [since - lookback, until), ascending by `source_modstamp`, each contact once
        (see `_pages` for how); every contact pulled counts towards the export guard.

        The look-back re-reads the stretch before the watermark where the search index may not yet have shown a
        change: a change stamped t becomes searchable by t + SEARCH_INDEX_LAG, and the watermark never passes the
        run's start, so a look-back of at least the lag catches every change the previous run could not see.
        """
        start = since - self.lookback if since is not None else None
        for frame in self._pages(start, until):
            self.guard.saw(frame["lead_id"])
            yield frame

    def _pages(self, since: datetime | None, until: datetime | None) -> Iterator[pd.DataFrame]:
        """Pages of contacts modified in [since, until), ascending by `source_modstamp`, each contact once.

        Keyset paging: every query starts at offset 0 of the window [last stamp read, until), so no query pages
        past the per-query cap however large the window, and contacts written back between pages (which moves
        them to a new `lastmodifieddate`) cannot shift unread ones out of reach as `after` offsets would. Contacts
        sharing one stamp beyond a page are paged by `hs_object_id`. With no `until`, the window ends after the
        newest stamp seen at the start: what changes during the run is read by the next one. `since` is inclusive.
        """
        lo = 0 if since is None else _to_ms(since)
        hi = _to_ms(until) if until is not None else self._latest_stamp(lo)
        if hi is None:
            return  # nothing modified since `since`
        if until is None:
            hi += 1
        cursor, seen = lo, set[str]()  # `seen`: ids already yielded whose stamp is `cursor`
        while cursor < hi:
            page = self._search(self._body(self._range(cursor, hi), CURSOR_PROPERTY))
            results = page["results"]
            if not results:
                return
            # A result whose stamp cannot be read stays at the cursor: re-read at worst, never skipped.
            stamps = [max(cursor, _or(_stamp_of(r, min), cursor)) for r in results]
            full = len(results) >= self.page_size
            if full and stamps[-1] == cursor:
                # A whole page at one stamp: time cannot narrow it further, the contact id can.
                yield from self._ties(cursor, seen)
                cursor, seen = cursor + 1, set()
                continue
            fresh = [r for r, st in zip(results, stamps, strict=True) if not (st == cursor and _id_of(r) in seen)]
            if fresh:
                yield self.to_frame(fresh)
            if not full:
                return
            last = stamps[-1]
            at_last = {_id_of(r) for r, st in zip(results, stamps, strict=True) if st == last}
            seen = (seen | at_last) if last == cursor else at_last
            cursor = last

    def _body(self, filters: list[dict[str, str]], sort: str, *, limit: int | None = None,
              direction: str = "ASCENDING", properties: list[str] | None = None) -> dict[str, Any]:
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": direction}],
            "properties": properties or self.mapping.properties,
            "limit": limit or self.page_size,
        }

    @staticmethod
    def _range(lo: int, hi: int | None) -> list[dict[str, str]]:
        filters = [{"propertyName": CURSOR_PROPERTY, "operator": "GTE", "value": str(lo)}]
        if hi is not None:
            filters.append({"propertyName": CURSOR_PROPERTY, "operator": "LT", "value": str(hi)})
        return filters

    def _latest_stamp(self, lo: int) -> int | None:
        """The newest `lastmodifieddate` at or after `lo` (None when there is none): where an open pull ends."""
        page = self._search(self._body(self._range(lo, None), CURSOR_PROPERTY, limit=1, direction="DESCENDING",
                                       properties=[CURSOR_PROPERTY]))
        if not page["results"]:
            return None
        stamp = _stamp_of(page["results"][0], max)
        if stamp is None:
            raise HubspotError("the newest contact has no readable lastmodifieddate: cannot bound the pull")
        return max(stamp, lo)

    def _ties(self, stamp: int, skip: set[str]) -> Iterator[pd.DataFrame]:
        """All contacts modified exactly at `stamp` but those in `skip`, in pages keyed on `hs_object_id`."""
        self.stats["tie_stamps"] += 1
        last_id: int | None = None
        while True:
            # A one-millisecond range rather than EQ: equality on date properties has day semantics in places.
            filters = self._range(stamp, stamp + 1)
            if last_id is not None:
                filters.append({"propertyName": ID_PROPERTY, "operator": "GT", "value": str(last_id)})
            results = self._search(self._body(filters, ID_PROPERTY))["results"]
            ids = [int(i) for i in map(_id_of, results) if i.isdigit()]
            if results and not ids:
                raise HubspotError(f"contacts at {_iso(stamp)} came back without ids: cannot page past them")
            if ids and last_id is not None and max(ids) <= last_id:
                raise HubspotError(f"search by {ID_PROPERTY} did not advance past {last_id}")
            fresh = [r for r in results if _id_of(r) not in skip]
            if fresh:
                yield self.to_frame(fresh)
            if len(results) < self.page_size:
                return
            last_id = max(ids)

    def fetch_by_ids(self, contact_ids: Iterable[str]) -> pd.DataFrame:
        """The contacts with these ids as HubSpot has them now (the record, not the lagging search index), in the
        columns `pull` gives: `POST /crm/v3/objects/contacts/batch/read` with the mapped properties, ≤ 100 ids per
        call (HubSpot API reference, CRM Contacts "Retrieve a batch of contacts":
        https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/batch/post-crm-v3-objects-contacts-batch-read;
        ids not found come back as a 207 with an OBJECT_NOT_FOUND error and are simply absent here)."""
        ids = sorted({str(i).strip() for i in contact_ids if str(i).strip().isdigit()})
        results: list[Any] = []
        for start in range(0, len(ids), MAX_BATCH):
            chunk = [{"id": i} for i in ids[start:start + MAX_BATCH]]
            payload = self._request("POST", BATCH_READ_PATH, {"properties": self.mapping.properties, "inputs": chunk})
            found = payload.get("results") if isinstance(payload, dict) else None
            results += found if isinstance(found, list) else []
        frame = self.to_frame(results)
        self.guard.saw(frame["lead_id"].dropna())
        return frame

    # -- rows ------------------------------------------------------------------------------------------------------
    def to_frame(self, results: Iterable[Any]) -> pd.DataFrame:
        """Canonical rows from search results; suspect rows keep what could be read and say why in `_pull_error`."""
        fields = self.mapping.fields
        columns = list(INPUT_COLUMNS) + [c for c in fields if c not in INPUT_COLUMNS] + [CURSOR_COLUMN, ERROR_COLUMN]
        data: dict[str, list[Any]] = {c: [] for c in columns}
        for item in results:
            row: dict[str, Any] = dict.fromkeys(columns)
            problems: list[str] = []
            if not isinstance(item, dict):
                problems.append(f"result is {type(item).__name__}, not an object")
                item = {}
            contact_id = item.get("id")
            if isinstance(contact_id, str | int) and not isinstance(contact_id, bool) and str(contact_id).strip():
                row["lead_id"] = str(contact_id).strip()
            else:
                problems.append("missing contact id")
            props = item.get("properties")
            if not isinstance(props, dict):
                problems.append("properties missing or not an object")
                props = {}
            for column, spec in fields.items():
                row[column], problem = _read_value(spec, props.get(spec.property))
                if problem:
                    problems.append(f"{spec.property}: {problem}")
            stamp = _parse_ms(props.get(CURSOR_PROPERTY))
            if stamp is None:
                problems.append(f"{CURSOR_PROPERTY}: missing or not a datetime")
                stamp = _parse_ms(item.get("updatedAt"))  # still order-able by the record's own update time
            row[CURSOR_COLUMN] = None if stamp is None else _iso(stamp)
            row["source"] = SYSTEM
            row[ERROR_COLUMN] = "; ".join(problems) or None
            for column in columns:
                data[column].append(row[column])
        return pd.DataFrame(
            {c: pd.Series(values, dtype=dtype_of(c) if c in INPUT_COLUMNS else "string") for c, values in data.items()}
        )

    # -- write-back ------------------------------------------------------------------------------------------------
    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Mapped canonical columns HubSpot takes writes for (read-only stamps such as createdate never)."""
        return tuple(c for c, spec in self.mapping.fields.items() if spec.writable and c in INPUT_COLUMNS)

    def write(self, changes: pd.DataFrame, *, dry_run: bool = False, override: bool = False) -> WriteResult:
        """Update contacts through batch/update (≤ 100 per call); per-record failures land in `failures`.

        `changes` has `record_id` (the contact id) and one column per changed canonical field; NA = unchanged.
        A dry run calls nothing and lists in `written` the ids it would write. The export guard refuses more than
        its share of this run's pulled contacts unless `override`.
        """
        if "record_id" not in changes.columns:
            raise ValueError("HubSpot write: `changes` needs a record_id column")
        writable = {c: s for c, s in self.mapping.fields.items() if s.writable}
        unknown = [c for c in changes.columns if c != "record_id" and c not in writable]
        if unknown:
            raise ValueError(f"HubSpot write: no writable HubSpot property is mapped for columns {unknown}")
        failures: list[dict[str, Any]] = []
        inputs: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in changes.astype(object).where(changes.notna(), None).to_dict("records"):
            record_id = str(record.pop("record_id") or "").strip()
            properties = {
                writable[str(c)].property: _write_value(writable[str(c)], v) for c, v in record.items() if v is not None
            }
            if not properties:
                continue
            if not record_id or record_id in seen:
                failures.append(_failure(record_id, "INVALID_ID" if not record_id else "DUPLICATE_ID",
                                         "missing record_id" if not record_id else "record_id appears twice",
                                         False, properties))
                continue
            seen.add(record_id)
            inputs.append({"id": record_id, "properties": properties})
        self.guard.check([item["id"] for item in inputs], override=override)
        result = WriteResult(dry_run=dry_run)
        if dry_run:
            result.written = [item["id"] for item in inputs]
            result.failures = _failures_frame(failures)
            return result
        calls_before = self.stats["calls"]
        for start in range(0, len(inputs), MAX_BATCH):
            batch = inputs[start:start + MAX_BATCH]
            try:
                payload = self._request("POST", BATCH_UPDATE_PATH, {"inputs": batch})
            except HubspotAuthError:
                raise  # no batch can succeed with a refused token
            except SourceStopped as exc:
                # Stop cleanly: what was written stays written; the rest is reported, retryable next run.
                code = "BUDGET_EXHAUSTED" if isinstance(exc, BudgetExhausted) else "SOURCE_STOPPED"
                for item in inputs[start:]:
                    failures.append(_failure(item["id"], code, str(exc), True, item["properties"]))
                break
            except HubspotError as exc:
                retryable = exc.status is None or exc.status >= 500
                for item in batch:
                    failures.append(_failure(item["id"], exc.category or "HTTP_ERROR", str(exc), retryable,
                                             item["properties"]))
                continue
            _collect(payload, batch, result.written, failures)
        result.failures = _failures_frame(failures)
        result.api_calls = self.stats["calls"] - calls_before
        return result


def hubspot_connector(
    credentials: HubspotCredentials,
    *,
    session: requests.Session | None = None,
    mapping: HubspotMapping | Path = DEFAULT_MAPPING,
    budget: ApiBudget | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_results_per_query: int = 10_000,
    requests_per_second: int = SEARCH_PER_SECOND,
    calls_per_ten_seconds: int = CALLS_PER_TEN_SECONDS,
    page_size: int = 100,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 30.0,
    max_change_share: float = 0.5,
    guard_floor: int = 100,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> HubspotConnector:
    """A HubSpot contacts connector (no network I/O until it is used).

    `clock`/`sleep` drive the rate limiter and the backoff (inject fakes in tests). `requests_per_second` and
    `calls_per_ten_seconds` are the account's search and overall limits (lower them to leave room for other apps
    in the portal); `max_results_per_query` is HubSpot's search cap (pages never reach it: see `pull`); `budget`
    defaults to an unlimited `ApiBudget("hubspot")`; `lookback` below SEARCH_INDEX_LAG logs a warning.
    """
    return HubspotConnector(
        credentials,
        session=session if session is not None else requests.Session(),
        mapping=mapping if isinstance(mapping, HubspotMapping) else load_hubspot_mapping(mapping),
        budget=budget if budget is not None else ApiBudget(SYSTEM),
        clock=clock,
        sleep=sleep,
        max_results_per_query=max_results_per_query,
        requests_per_second=requests_per_second,
        calls_per_ten_seconds=calls_per_ten_seconds,
        page_size=page_size,
        retry=retry,
        timeout=timeout,
        guard=ExportGuard(SYSTEM, max_change_share, guard_floor),
        lookback=lookback,
    )

