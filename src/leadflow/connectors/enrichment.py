"""Firmographics enrichment over HTTP: one provider lookup per company domain, cached in the state store.

`HttpFirmographicsProvider.lookup(domain)` never raises: a timeout, a refused connection, an HTTP error, a body that
does not validate or a spent budget becomes a `ProviderResult` with status `error` and a short machine `reason`
(never the API key, never a URL), and the lead goes on unenriched. Only transient failures (connection errors,
timeouts, 429, 5xx) are retried, through `leadflow.connectors.http` (exponential backoff; a 429's Retry-After
honoured up to a cap), and requests are paced by `leadflow.connectors.ratelimit`. Nothing here touches the network
or the environment at import; the API key is resolved when a provider is constructed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, Protocol, runtime_checkable

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictInt, StrictStr, ValidationError

from leadflow.connectors.http import RetriesExhausted, RetryPolicy, Transient, parse_retry_after, with_retries
from leadflow.connectors.ratelimit import WindowLimiter
from leadflow.ops.secrets import SecretRef, resolve_secret

log = logging.getLogger(__name__)

FIND_PATH: Final = "/v1/companies/find"
BACKOFF_SECONDS: Final = 0.5
"""First retry waits this long, doubling per attempt up to `BACKOFF_CAP_SECONDS`."""
BACKOFF_CAP_SECONDS: Final = 4.0
RETRY_AFTER_CAP_SECONDS: Final = 5.0
"""A provider's Retry-After is honoured (instead of the backoff) up to this: a lead run must not stall for minutes on
one domain."""
CACHE_FLUSH_EVERY: Final = 200
"""`lookup_firmographics` writes the cache every this many provider results, so an interrupted run keeps them."""
RESULT_COLUMNS: Final[dict[str, str]] = {
    "domain": "string",
    "status": "string",
    "employees": "Int64",
    "annual_revenue": "Float64",
    "industry": "string",
    "reason": "string",
    "from_cache": "boolean",
}
Status = Literal["ok", "not_found", "error"]


# ------------------------------------------------------------------------------------------------- config and results


class ProviderConnection(BaseModel):
    """Where the firmographics provider is, where its API key lives, and how hard leadflow may use it."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(description="e.g. https://api.example-enrichment.com")
    api_key: SecretRef | None = Field(default=None, description="Sent as `Authorization: Bearer <key>`.")
    name: str = Field(default="http", min_length=1, max_length=50, description="Cache namespace for this provider.")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Per HTTP request (connect and read).")
    max_calls_per_run: int = Field(default=1000, ge=0, description="HTTP requests per run, retries included.")
    requests_per_second: float = Field(default=10.0, gt=0)
    cache_ttl_days: float = Field(default=30, ge=0, description="Cached answers younger than this are reused.")
    max_retries: int = Field(default=2, ge=0, description="Retries of transient failures (timeouts, 429, 5xx).")
    ca_bundle: Path | None = Field(default=None, description="CA certificate to trust instead of the system's.")

    @property
    def cache_ttl(self) -> timedelta:
        return timedelta(days=self.cache_ttl_days)


@dataclass(frozen=True)
class ProviderResult:
    """One domain's answer: `ok` with firmographics, `not_found`, or `error` with a short machine `reason`."""

    domain: str
    status: Status
    employees: int | None = None
    annual_revenue: float | None = None
    industry: str | None = None
    reason: str | None = None


@runtime_checkable
class FirmographicsProvider(Protocol):
    """Anything that answers firmographics for one company domain, without raising."""

    name: str

    def lookup(self, domain: str) -> ProviderResult: ...


@runtime_checkable
class FirmographicsCache(Protocol):
    """Where provider answers are kept between runs; `StateStore` implements it (so does `MemoryFirmographicsCache`).

    `lookup_firmographics` also takes any object with the same two methods named `get` and `put`.
    """

    def cached_firmographics(
        self, provider: str, domains: list[str], fresh_after: datetime
    ) -> dict[str, ProviderResult]:
        """Cached answers of `provider` for those of `domains` fetched at or after `fresh_after`."""
        ...

    def cache_firmographics(self, provider: str, results: list[ProviderResult], fetched_at: datetime) -> None:
        """Insert or replace answers (`ok` / `not_found` only)."""
        ...


class MemoryFirmographicsCache:
    """A FirmographicsCache in a dict, for tests and one-off runs without a state store."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[ProviderResult, datetime]] = {}

    def cached_firmographics(
        self, provider: str, domains: list[str], fresh_after: datetime
    ) -> dict[str, ProviderResult]:
        found = (self.entries.get((provider, domain)) for domain in domains)
        return {hit[0].domain: hit[0] for hit in found if hit is not None and hit[1] >= fresh_after}

    def cache_firmographics(self, provider: str, results: list[ProviderResult], fetched_at: datetime) -> None:
        for result in results:
            if result.status == "error":
                raise ValueError(f"errors are not cached ({result.domain}: {result.reason})")
            self.entries[(provider, result.domain)] = (result, fetched_at)


class _Firmographics(BaseModel):
    """The 200 body: strict, so "12" employees or a revenue string is a bad response rather than a guess."""

    model_config = ConfigDict(extra="ignore")

    employees: StrictInt | None = Field(default=None, ge=0)
    annual_revenue: float | None = Field(default=None, ge=0, allow_inf_nan=False, strict=True)
    industry: StrictStr | None = None


_ERROR_WORDS: Final[dict[str, str]] = {
    "int_type": "is not an integer",
    "float_type": "is not a number",
    "string_type": "is not a string",
    "greater_than_equal": "is negative",
    "finite_number": "is not finite",
}


def _bad_response(exc: ValidationError) -> str:
    # The first problem only, in words, without the offending value (short, stable, safe to store)
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"bad_response: {where} {_ERROR_WORDS.get(error['type'], error['type'])}"[:200]


RateLimiter: Final = WindowLimiter.spaced
"""At most `rate` requests per second, each `1/rate` after the previous one: the connectors' one limiter, spaced
(`RateLimiter(rate, clock=…, sleep=…)`, kept under this name for importers)."""


# ------------------------------------------------------------------------------------------------- provider


class HttpFirmographicsProvider:
    """`GET {base_url}/v1/companies/find?domain=…` with a bearer key, a rate limit, a call budget and retries."""

    def __init__(
        self,
        connection: ProviderConnection,
        session: requests.Session | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connection = connection
        self.name = connection.name
        self._key = (
            resolve_secret(connection.api_key, origin="enrichment provider", yaml_path="enrichment.provider.api_key")
            if connection.api_key is not None
            else None
        )
        self._owns_session = session is None
        self.session = session or requests.Session()
        self._url = str(connection.base_url).rstrip("/") + FIND_PATH
        self._sleep = sleep
        self.limiter = WindowLimiter.spaced(connection.requests_per_second, clock=clock, sleep=sleep)
        self.retry = RetryPolicy(attempts=connection.max_retries + 1, base=BACKOFF_SECONDS, cap=BACKOFF_CAP_SECONDS,
                                 retry_after_cap=RETRY_AFTER_CAP_SECONDS)
        self.calls_made = 0
        self._unauthorized = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # the key stays out of reprs and logs
        return f"HttpFirmographicsProvider({self.name!r}, calls_made={self.calls_made})"

    def close(self) -> None:
        """Close the HTTP session if the provider created it."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> HttpFirmographicsProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def budget_left(self) -> int:
        return max(0, self.connection.max_calls_per_run - self.calls_made)

    def lookup(self, domain: str) -> ProviderResult:
        """The provider's answer for `domain` (lower-cased); any failure is an `error` result, never an exception."""
        domain = (domain or "").strip().lower()
        if not domain:
            return ProviderResult(domain, "error", reason="invalid_domain")
        try:
            return self._lookup(domain)
        except Exception as exc:  # noqa: BLE001 - the contract is "never raise"; the type name says enough
            log.warning("enrichment %s: unexpected %s for one domain", self.name, type(exc).__name__)
            return ProviderResult(domain, "error", reason=f"internal_error: {type(exc).__name__}")

    def _lookup(self, domain: str) -> ProviderResult:
        if self._unauthorized:
            # a refused key will not start working mid-run; calling again would only spend budget
            return ProviderResult(domain, "error", reason="unauthorized")

        def attempt() -> ProviderResult:
            if not self._reserve_call():
                return ProviderResult(domain, "error", reason="budget_exhausted")  # retries spend the budget too
            return self._call(domain)

        try:
            return with_retries(attempt, policy=self.retry, sleep=self._sleep)
        except RetriesExhausted as exc:
            return ProviderResult(domain, "error", reason=exc.reason)  # the last failure's reason, e.g. http_503

    def _reserve_call(self) -> bool:
        """Spend one call of the budget and wait for the rate limit; False when the budget is spent."""
        # under a lock: one provider may serve concurrent tasks of a run, and the budget and spacing are per run
        with self._lock:
            if self.calls_made >= self.connection.max_calls_per_run:
                return False
            self.limiter.wait()
            self.calls_made += 1
            return True

    def _call(self, domain: str) -> ProviderResult:
        """One HTTP request; raises `Transient` for what a retry may fix, returns a result otherwise."""
        headers = {"Accept": "application/json"}
        if self._key is not None:
            headers["Authorization"] = f"Bearer {self._key.get_secret_value()}"
        options: dict[str, Any] = {"timeout": self.connection.timeout_seconds}
        if self.connection.ca_bundle is not None:
            # per request: a session-level `verify` loses to REQUESTS_CA_BUNDLE when trust_env is on
            options["verify"] = str(self.connection.ca_bundle)
        try:
            response = self.session.get(self._url, params={"domain": domain}, headers=headers, **options)
        except requests.Timeout:
            raise Transient("timeout") from None
        except requests.exceptions.SSLError:
            # a certificate problem does not go away on retry
            return ProviderResult(domain, "error", reason="tls_error")
        except requests.ConnectionError:
            raise Transient("connection_error") from None
        except requests.RequestException as exc:
            return ProviderResult(domain, "error", reason=f"request_error: {type(exc).__name__}")
        with response:
            return self._read(domain, response)

    def _read(self, domain: str, response: requests.Response) -> ProviderResult:
        code = response.status_code
        if code == 429:
            raise Transient("http_429", parse_retry_after(response.headers.get("Retry-After")))
        if code >= 500:
            raise Transient(f"http_{code}")
        if code in (401, 403):
            self._unauthorized = True
            log.warning("enrichment %s: the provider refused the API key (HTTP %s); no more lookups this run",
                        self.name, code)
            return ProviderResult(domain, "error", reason="unauthorized")
        if code == 404:
            return ProviderResult(domain, "not_found")
        if code != 200:
            return ProviderResult(domain, "error", reason=f"http_{code}")
        try:
            body = response.json()
        except ValueError:  # requests' JSONDecodeError is a ValueError
            return ProviderResult(domain, "error", reason="bad_response: not JSON")
        if not isinstance(body, dict):
            return ProviderResult(domain, "error", reason="bad_response: body is not an object")
        try:
            data = _Firmographics.model_validate(body)
        except ValidationError as exc:
            return ProviderResult(domain, "error", reason=_bad_response(exc))
        revenue = float(data.annual_revenue) if data.annual_revenue is not None else None
        return ProviderResult(domain, "ok", employees=data.employees, annual_revenue=revenue, industry=data.industry)


def make_provider(connection: ProviderConnection, session: requests.Session | None = None) -> HttpFirmographicsProvider:
    """The provider for `connection` (resolves its API key now: a missing one is a ConfigError)."""
    return HttpFirmographicsProvider(connection, session)


# ------------------------------------------------------------------------------------------------- batch lookup


def lookup_firmographics(
    provider: FirmographicsProvider,
    domains: Iterable[str],
    cache: FirmographicsCache | Any | None,
    *,
    now: datetime,
    ttl: timedelta,
) -> pd.DataFrame:
    """One row per unique non-empty domain (lower-cased): fresh cache entries first, the provider for the rest.

    `ok` and `not_found` answers are cached with `fetched_at=now`; errors are not, so the next run tries again.
    Columns: domain, status, employees (Int64), annual_revenue (Float64), industry, reason (string), from_cache.
    """
    unique = list(dict.fromkeys(_clean_domains(domains)))
    get, put = _cache_methods(cache)
    cached = get(provider.name, unique, now - ttl) if unique else {}
    rows: list[tuple[ProviderResult, bool]] = []
    pending: list[ProviderResult] = []
    for domain in unique:
        hit = cached.get(domain)
        if hit is not None and hit.status != "error":
            rows.append((hit, True))
            continue
        result = provider.lookup(domain)
        if result.domain != domain:
            # a provider may normalise; the row must still join back on what was asked
            result = ProviderResult(domain, result.status, result.employees, result.annual_revenue,
                                    result.industry, result.reason)
        rows.append((result, False))
        if result.status != "error":
            pending.append(result)
            if len(pending) >= CACHE_FLUSH_EVERY:
                put(provider.name, pending, now)
                pending = []
    if pending:
        put(provider.name, pending, now)
    return _frame(rows)


def _cache_methods(cache: Any) -> tuple[Callable[..., dict[str, ProviderResult]], Callable[..., None]]:
    """(get, put) of a FirmographicsCache, of a `get`/`put` look-alike, or no-ops for no cache."""
    if cache is None:
        return (lambda *_: {}), (lambda *_: None)
    if isinstance(cache, FirmographicsCache):
        return cache.cached_firmographics, cache.cache_firmographics
    return cache.get, cache.put


def _clean_domains(domains: Iterable[Any]) -> Iterable[str]:
    for value in domains:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        text = str(value).strip().lower()
        if text:
            yield text


def _frame(rows: list[tuple[ProviderResult, bool]]) -> pd.DataFrame:
    data = {
        "domain": [r.domain for r, _ in rows],
        "status": [r.status for r, _ in rows],
        "employees": [r.employees for r, _ in rows],
        "annual_revenue": [r.annual_revenue for r, _ in rows],
        "industry": [r.industry for r, _ in rows],
        "reason": [r.reason for r, _ in rows],
        "from_cache": [hit for _, hit in rows],
    }
    return pd.DataFrame({name: pd.Series(data[name], dtype=dtype) for name, dtype in RESULT_COLUMNS.items()})
