"""HubSpot CRM v3 contacts: incremental pull by `lastmodifieddate`, and batch write-back.

HubSpot's search returns at most 10,000 results per query and allows 4 search requests per second per token
(190 calls per 10 s overall). `pull` therefore never pages with `after` offsets: each page is a fresh query whose
time window starts at the last stamp read (keyset paging), so no query reaches the cap, and a window that cannot
be narrowed (thousands of contacts with one identical timestamp) is paged by `hs_object_id` instead. A
client-side sliding-window limiter keeps the request rate under the published limits.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from leadflow.connectors.base import (
    CURSOR_COLUMN,
    ApiBudget,
    BudgetExhausted,
    ExportGuard,
    SourceStopped,
    WriteResult,
)
from leadflow.errors import LeadflowError
from leadflow.schema import DERIVED_COLUMNS, INPUT_COLUMNS, TRUE_WORDS, dtype_of
from leadflow.settings import REFERENCE_DIR
from leadflow.yamlio import load_yaml, parse_model

__all__ = [
    "DEFAULT_MAPPING",
    "ERROR_COLUMN",
    "FieldMap",
    "HubspotAuthError",
    "HubspotConnector",
    "HubspotCredentials",
    "HubspotError",
    "HubspotMapping",
    "RetryPolicy",
    "WindowLimiter",
    "hubspot_connector",
    "load_hubspot_mapping",
]

SYSTEM: Final[str] = "hubspot"
DEFAULT_MAPPING: Final[Path] = REFERENCE_DIR / "hubspot_mapping.yaml"
ERROR_COLUMN: Final[str] = "_pull_error"
"""Why a pulled row is suspect (missing fields, wrong types, unknown options); NA for clean rows."""
CURSOR_PROPERTY: Final[str] = "lastmodifieddate"
ID_PROPERTY: Final[str] = "hs_object_id"
SEARCH_PATH: Final[str] = "/crm/v3/objects/contacts/search"
BATCH_UPDATE_PATH: Final[str] = "/crm/v3/objects/contacts/batch/update"
MAX_PAGE_SIZE: Final[int] = 200
MAX_BATCH: Final[int] = 100
_CONNECTOR_COLUMNS: Final[frozenset[str]] = frozenset({"lead_id", "source", CURSOR_COLUMN, ERROR_COLUMN})
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final[timedelta] = timedelta(milliseconds=1)

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


class FieldMap(BaseModel):
    """One canonical column read from (and written to) one contact property."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["string", "enumeration", "bool", "datetime"] = "string"
    options: list[str] | None = None
    invert: bool = False
    writable: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> FieldMap:
        if self.type == "enumeration" and not self.options:
            raise ValueError("an enumeration needs its `options`")
        if self.type != "enumeration" and self.options is not None:
            raise ValueError("`options` only apply to type: enumeration")
        if self.invert and self.type != "bool":
            raise ValueError("`invert` only applies to type: bool")
        return self


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


@dataclass(frozen=True)
class RetryPolicy:
    """Tries per request and the exponential backoff between them (no jitter: one client, deterministic tests)."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.base * 2**attempt)


class WindowLimiter:
    """At most `max_calls` calls in any `period` seconds, the way HubSpot counts them (a sliding window).

    `wait()` before a call sleeps just long enough; `mark()` after the response records it. Marking at the
    response, not the send, guarantees the server saw the call no later than we count it.
    """

    def __init__(
        self, max_calls: int, period: float, *, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("max_calls must be >= 1 and period > 0")
        self.max_calls, self.period = max_calls, period
        self._clock, self._sleep = clock, sleep
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.period:
            self._times.popleft()

    def wait(self) -> float:
        """Sleep until one more call fits; returns the seconds slept."""
        waited = 0.0
        now = self._clock()
        self._prune(now)
        while len(self._times) >= self.max_calls:
            delay = self._times[0] + self.period - now
            if delay > 0:
                self._sleep(delay)
                waited += delay
            now = self._clock()
            self._prune(now)
            if delay <= 0 and len(self._times) >= self.max_calls:
                self._times.popleft()  # float rounding left the oldest call a hair inside the window
        return waited

    def mark(self) -> None:
        self._times.append(self._clock())


def _to_ms(moment: datetime) -> int:
    """Epoch milliseconds (a naive datetime is UTC); integer arithmetic so no millisecond is lost to rounding."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS


def _iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_ms(value: Any) -> int | None:
    """A HubSpot datetime value (ISO-8601 or epoch ms, as a string) in epoch ms, or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _to_ms(parsed)


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
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if page_size > max_results_per_query:
            # Keyset paging reads one page per query, so the per-query cap only has to hold a page.
            raise ValueError("page_size cannot exceed max_results_per_query")
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
        reason = ""
        for attempt in range(self.retry.attempts):
            self.budget.spend()
            self.stats["rate_wait_s"] += self._call_limiter.wait()  # type: ignore[assignment]
            if search:
                self.stats["rate_wait_s"] += self._search_limiter.wait()  # type: ignore[assignment]
            self.stats["calls"] += 1
            response: requests.Response | None = None
            try:
                # The token goes in per request, never onto a caller's (possibly shared, possibly logged) session.
                response = self._session.request(
                    method, url, json=body, timeout=self.timeout,
                    headers={"Authorization": f"Bearer {self._credentials.token.get_secret_value()}"},
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = f"{type(exc).__name__} talking to HubSpot"
            finally:
                self._call_limiter.mark()
                if search:
                    self._search_limiter.mark()
            delay = self.retry.delay(attempt)
            if response is not None:
                status = response.status_code
                payload = _json(response)
                details = payload if isinstance(payload, dict) else {}
                message = str(details.get("message") or response.reason or "no message")[:500]
                category = details.get("category") or details.get("errorType")
                correlation = details.get("correlationId")
                if status in (401, 403):
                    raise HubspotAuthError(
                        f"the private app token was refused on {method} {path}: {message} "
                        "(check the token and its crm.objects.contacts scopes)",
                        status=status, category=category, correlation_id=correlation,
                    )
                if status == 429:
                    self.stats["rate_limited"] += 1
                    policy = str(details.get("policyName") or "")
                    if policy == "DAILY":
                        raise SourceStopped(SYSTEM, "daily API limit reached (429 DAILY); resume tomorrow")
                    retry_after = _retry_after(response)
                    # Without Retry-After, wait out the policy's whole window: one second, or ten for the rolling
                    # limit (our own limiter cannot see calls other clients of this token made).
                    window = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}.get(policy, delay)
                    delay = retry_after if retry_after is not None else window
                    reason = f"429 {policy or 'RATE_LIMIT'}"
                elif status >= 500:
                    reason = f"HTTP {status}"
                elif payload is None:
                    reason = f"HTTP {status} with a body that is not JSON"  # a proxy's error page: transient
                elif status >= 400:
                    raise HubspotError(f"{method} {path}: {message}", status=status, category=category,
                                       correlation_id=correlation)
                else:
                    return payload
            if attempt + 1 < self.retry.attempts:
                self.stats["retries"] += 1
                log.warning("HubSpot %s %s: %s; retry %d/%d in %.2f s", method, path, reason, attempt + 1,
                            self.retry.attempts - 1, delay)
                self._sleep(delay)
        raise HubspotError(f"{method} {path}: gave up after {self.retry.attempts} attempts ({reason})")

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = self._request("POST", SEARCH_PATH, body, search=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
            raise HubspotError("search response without a `results` list")
        return payload

    # -- pull ------------------------------------------------------------------------------------------------------
    def pull(self, since: datetime | None, until: datetime | None = None) -> Iterator[pd.DataFrame]:
        """Pages of contacts modified in [since, until), ascending by `source_modstamp`, each contact once (see
        `_pages` for how); every contact pulled counts towards the export guard."""
        for frame in self._pages(since, until):
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
        self.guard.check(len(inputs), override=override)
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
    requests_per_second: int = 4,
    calls_per_ten_seconds: int = 190,
    page_size: int = 100,
    retry: RetryPolicy = RetryPolicy(),
    timeout: float = 30.0,
    max_change_share: float = 0.5,
    guard_floor: int = 100,
) -> HubspotConnector:
    """A HubSpot contacts connector (no network I/O until it is used).

    `clock`/`sleep` drive the rate limiter and the backoff (inject fakes in tests). `requests_per_second` and
    `calls_per_ten_seconds` are the token's search and overall limits; `max_results_per_query` is HubSpot's search
    cap (pages never reach it: see `pull`); `budget` defaults to an unlimited `ApiBudget("hubspot")`.
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
    )


# -- helpers -------------------------------------------------------------------------------------------------------
def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date: fall back to our own backoff rather than parse clocks we do not share


def _read_value(spec: FieldMap, value: Any) -> tuple[Any, str | None]:
    """(canonical value or None, problem or None) for one property value as HubSpot sent it."""
    if value is None or value == "":
        return None, None  # unset, or cleared: HubSpot sends null or ""
    if spec.type == "bool":
        text = str(value).strip().lower() if isinstance(value, str | bool) else None
        if text not in {"true", "false"}:
            return None, f"expected true/false, got {_show(value)}"
        return (text == "true") != spec.invert, None
    if isinstance(value, dict | list) or not isinstance(value, str | int | float):
        return None, f"expected a string, got {type(value).__name__}"
    if spec.type == "datetime":
        stamp = _parse_ms(value) if not isinstance(value, float) else None
        return (None, f"not a datetime: {_show(value)}") if stamp is None else (_iso(stamp), None)
    problem = None if isinstance(value, str) else f"expected a string, got {type(value).__name__}"
    text = str(value)
    if spec.type == "enumeration" and spec.options is not None and text not in spec.options:
        problem = f"{_show(value)} is not one of the property's options"
    return text, problem


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _id_of(item: Any) -> str:
    """A result's contact id as text ("" when it has none)."""
    value = item.get("id") if isinstance(item, dict) else None
    return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _stamp_of(item: Any, pick: Callable[[Iterable[int]], int]) -> int | None:
    """A result's modification stamp for bounding a window: `lastmodifieddate` and `updatedAt` should agree; if
    they do not, `pick` the safe one (min for a lower bound, max for an upper) so no contact falls outside."""
    if not isinstance(item, dict):
        return None
    props = item.get("properties")
    candidates = [_parse_ms(props.get(CURSOR_PROPERTY)) if isinstance(props, dict) else None,
                  _parse_ms(item.get("updatedAt"))]
    known = [c for c in candidates if c is not None]
    return pick(known) if known else None


def _write_value(spec: FieldMap, value: Any) -> str:
    if spec.type == "bool":
        # Dead letters come back as text: "False" must stay False, not become a truthy string.
        flag = str(value).strip().lower() in TRUE_WORDS if isinstance(value, str) else bool(value)
        return "true" if flag != spec.invert else "false"
    if spec.type == "datetime" and isinstance(value, datetime):
        return _iso(_to_ms(value))
    return str(value)


def _show(value: Any) -> str:
    return repr(value)[:60]


def _failure(record_id: str, code: str, message: str, retryable: bool, payload: dict[str, Any]) -> dict[str, Any]:
    return {"record_id": record_id, "error_code": code, "message": message[:500], "retryable": retryable,
            "payload": json.dumps(payload, sort_keys=True)}


def _failures_frame(failures: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(failures, columns=["record_id", "error_code", "message", "retryable", "payload"])


def _collect(payload: Any, batch: list[dict[str, Any]], written: list[str], failures: list[dict[str, Any]]) -> None:
    """Sort a batch/update response (200 or 207 multi-status) into written ids and per-record failures."""
    sent = {item["id"]: item["properties"] for item in batch}
    done: set[str] = set()
    body = payload if isinstance(payload, dict) else {}
    for item in body.get("results") or []:
        record_id = str(item.get("id")) if isinstance(item, dict) else ""
        if record_id in sent and record_id not in done:
            done.add(record_id)
            written.append(record_id)
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            continue
        context = error.get("context") or {}
        ids = [str(i) for i in (context.get("id") or []) + (context.get("ids") or [])]
        sub = error.get("errors") or []
        code = next((e.get("code") for e in sub if isinstance(e, dict) and e.get("code")), None)
        code = code or error.get("category") or "ERROR"
        message = "; ".join(str(e.get("message")) for e in sub if isinstance(e, dict)) or str(error.get("message"))
        for record_id in ids:
            if record_id in sent and record_id not in done:
                done.add(record_id)
                failures.append(_failure(record_id, code, message, False, sent[record_id]))
    for record_id, properties in sent.items():
        if record_id not in done:
            failures.append(_failure(record_id, "NO_RESULT", "HubSpot reported neither success nor failure", True,
                                     properties))
