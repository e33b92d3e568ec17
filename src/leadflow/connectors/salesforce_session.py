"""The Salesforce connector's transport: the `requests.Session` it owns, the adapter mounted on it (retries, default
timeout, API budget, org usage), login and re-login, and the error codes a call may end with.

The adapter retries 503s, 429s, connection errors and timeouts (`leadflow.connectors.http.urllib3_retry`: the
connectors' one retry policy), puts a default timeout on every call, spends the run's `ApiBudget` before each call
and reads the org-wide usage from `Sforce-Limit-Info` after it (token requests are not counted). `SessionMixin._call`
runs one simple_salesforce call: re-login once on an expired session, REQUEST_LIMIT_EXCEEDED stops the source, a
mapped field the org lacks is `OrgNotReady`. `SalesforceConnector` (salesforce.py) is built on this mixin.

- REST API status codes: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
- Limits (GET /services/data/vXX.X/limits/, DailyApiRequests {Max, Remaining}):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_limits.htm
- "Sforce-Limit-Info" response header (api-usage=used/max):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from urllib3.util.retry import Retry

from leadflow.connectors.base import ApiBudget, BudgetExhausted, SourceStopped
from leadflow.connectors.http import RetryPolicy, urllib3_retry
from leadflow.connectors.salesforce_auth import SalesforceCredentials, request_token, uses_oauth
from leadflow.connectors.salesforce_mapping import SYSTEM
from leadflow.pipeline.errors import LeadflowError

T = TypeVar("T")
log = logging.getLogger("leadflow.connectors.salesforce")  # the connector's one logger, whichever module logs
RETRYABLE_CODES: Final = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
"""Per-record write error codes worth another attempt (the failure rows' `retryable`)."""
MAX_RETRY_AFTER = 60.0
"""The longest Retry-After a Salesforce answer may make the connector wait before its next attempt."""


class OrgNotReady(LeadflowError):
    """The org lacks (or hides from the integration user) a field the mapping needs."""


class _GuardedAdapter(HTTPAdapter):
    """Default timeout, budget checks before each call, org usage read from every response."""

    def __init__(self, owner: SessionMixin, retry: Retry, timeout: float) -> None:
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


class SessionMixin:
    """Transport, login and calls of a `SalesforceConnector` (whose constructor sets these attributes)."""

    credentials: SalesforceCredentials
    session: requests.Session
    budget: ApiBudget
    max_org_usage_share: float
    api_calls: int
    org_usage: tuple[int, int] | None
    retry: RetryPolicy
    user_id: str | None
    _sf: Salesforce | None
    _started: bool

    def _mount_transport(self, retries: int, backoff: float, timeout: float) -> None:
        """Mount the guarded adapter on the connector's session (the constructor calls this once)."""
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
        if uses_oauth(creds):
            instance, token, self.user_id = request_token(self.session, creds)
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
                if error_code(exc) == "REQUEST_LIMIT_EXCEEDED":
                    raise SourceStopped(SYSTEM, "REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent") from None
                raise
            except SalesforceMalformedRequest as exc:
                if error_code(exc) == "INVALID_FIELD":
                    # A mapped field the org lacks or hides from this user (field-level security): say which, and
                    # what fixes it, instead of a traceback mid-run.
                    raise OrgNotReady(f"salesforce: {_error_message(exc)} — run `leadflow doctor --config …` to "
                                      "list what the org lacks and `leadflow setup salesforce --config …` to create "
                                      "it") from None
                raise
        raise AssertionError("unreachable")


# ------------------------------------------------------------------------------------------------- error codes


def _error_message(exc: Exception) -> str:
    """The first error's message of a Salesforce error response, cut at its first sentence."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        text = str(content[0].get("message", "")).strip()
        return text.split("\n")[-1].split(". ")[0] if text else error_code(exc)
    return type(exc).__name__


def error_code(exc: Exception) -> str:
    """The first error's `errorCode` of a Salesforce error response ("" when there is none)."""
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    return ""
