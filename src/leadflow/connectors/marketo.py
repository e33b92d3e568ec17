"""Marketo connector: incremental lead pulls and engagement activities over the REST API, and lead write-back.

`marketo_connector(credentials)` returns a `MarketoConnector` (a `LeadSource` and `CrmWriter`). A pull pages the
lead-change activities (Change Data Value) and the Fill Out Form / New Lead activities since the cursor, then looks
the changed leads up in batches of at most 300 and yields canonical pages. Marketo reports errors inside HTTP 200:
601/602 → refresh the token once and retry; 606/615 → back off and retry; 607 → `SourceStopped`. HTTP 5xx and
connection errors are retried with backoff. Every HTTP call, token calls included, is spent from the `ApiBudget`,
paced under the instance's 100 calls per 20 s, and counted in `stats`.

Activity reads cost what the instance logged, not what leadflow keeps: each activities.json / leadchanges.json call
goes through 300 activities of ALL types (Marketo KB ka-29362), so a sparse type gives empty pages with
`moreResult: true` that must still be paged through. `leadflow.connectors.marketo_quota` does the arithmetic; a
pull that has scanned its window once knows what the second scan will cost and stops before starting it when the
run's budget cannot pay for it.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from leadflow.connectors.base import CURSOR_COLUMN, ApiBudget, BudgetExhausted, ExportGuard, SourceStopped, WriteResult
from leadflow.connectors.http import RetriesExhausted, RetryPolicy, Transient, with_retries
from leadflow.connectors.marketo_mapping import (
    DEFAULT_MAPPING,
    MarketoMapping,
    convert,
    load_mapping,
    marketo_id,
    utc_iso,
)
from leadflow.connectors.marketo_quota import MarketoQuota, plan_pull
from leadflow.connectors.ratelimit import WindowLimiter
from leadflow.pipeline.errors import LeadflowError
from leadflow.pipeline.schema import INPUT_COLUMNS, dtype_of

__all__ = [
    "ACTIVITY_COLUMNS",
    "DEFAULT_ACTIVITY_TYPES",
    "DEFAULT_MAPPING",
    "PULL_ERROR",
    "Backoff",
    "MarketoConnector",
    "MarketoCredentials",
    "MarketoError",
    "MarketoMapping",
    "load_mapping",
    "marketo_connector",
]

SYSTEM = "marketo"
PULL_ERROR = "_pull_error"
MAX_BATCH = 300
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FORM_FILL, NEW_LEAD = 2, 12
LEAD_CHANGES = "/rest/v1/activities/leadchanges.json"
ACTIVITIES = "/rest/v1/activities.json"
DEFAULT_ACTIVITY_TYPES: tuple[str, ...] = (
    "Visit Webpage", "Fill Out Form", "Open Email", "Click Email", "Request Demo", "Attend Webinar",
)
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "lead_id", "activity_id", "activity_type_id", "activity_type", "activity_date", "primary_attribute",
    "attributes", PULL_ERROR,
)
TOKEN_ERRORS = frozenset({"601", "602"})
THROTTLE_ERRORS = frozenset({"604", "606", "615"})
"""Retried with backoff: 606 rate limit, 615 concurrent access limit, 604 request time-out ("The request was running
for too long, or exceeded the time-out period specified in the header"; the call was not carried out). Marketo REST
"Error Codes": https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes."""
QUOTA_ERROR = "607"


class MarketoError(LeadflowError):
    """Marketo refused a call for a reason retrying cannot fix (or retries ran out); never carries secrets."""

    def __init__(self, message: str, code: str | None = None) -> None:
        self.code = code
        super().__init__(f"marketo: {message}")


class MarketoCredentials(BaseModel):
    """Where the instance is and the API-only user's client credentials (the secret never shows in reprs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = Field(description="e.g. https://123-ABC-456.mktorest.com")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr

    @field_validator("base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value


@dataclass(frozen=True)
class Backoff(RetryPolicy):
    """Marketo's `RetryPolicy`: wait 2, 4, 8 … s (at most 60) before retry 1, 2, 3 …; six tries in all."""

    attempts: int = 6
    base: float = 2.0
    cap: float = 60.0


class MarketoConnector:
    """Pull leads and activities from one Marketo instance, and write lead fields back."""

    system = SYSTEM

    def __init__(
        self,
        credentials: MarketoCredentials,
        *,
        session: requests.Session | None = None,
        mapping: MarketoMapping | None = None,
        budget: ApiBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int = MAX_BATCH,
        page_size: int = MAX_BATCH,
        backoff: RetryPolicy = Backoff(),
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        guard: ExportGuard | None = None,
        quota: MarketoQuota = MarketoQuota(),
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH or not 1 <= page_size <= MAX_BATCH:
            raise ValueError(f"batch_size and page_size must be between 1 and {MAX_BATCH}")
        self.credentials = credentials
        self.session = session if session is not None else requests.Session()
        self.mapping = mapping if mapping is not None else load_mapping()
        self.budget = budget if budget is not None else ApiBudget(SYSTEM)
        self.guard = guard if guard is not None else ExportGuard(SYSTEM)
        self.sleep = sleep
        self.batch_size = batch_size
        self.page_size = page_size
        self.backoff = backoff
        self.quota = quota
        # Paced on our side so we rarely meet 606; other integrations share the window, so 606 is still handled.
        self._limiter = WindowLimiter(quota.calls_per_window, quota.window_seconds, clock=clock, sleep=sleep)
        self.stats: Counter[str] = Counter()
        """calls (every HTTP call), `calls <path>` per endpoint, activity_pages, empty_activity_pages (a scan of
        300 activities with none of the asked types), retries, rate_wait_s, and per pull: scan_calls (calls one
        pass over the window took) and planned_calls (what `plan_pull` says the whole pull costs)."""
        self.timeout = timeout
        self.clock = clock
        self._token: str | None = None
        self._token_expires = 0.0
        self._types: dict[int, str] | None = None

    def __repr__(self) -> str:
        return f"MarketoConnector(base_url={self.credentials.base_url!r}, client_id={self.credentials.client_id!r})"

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP request, spent from the budget, paced and counted; I/O failures, 5xx and 429 become `Transient`,
        without the URL (it may hold secrets). 502 "should be retried with exponential backoff" (Marketo REST "Error
        Codes": https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes)."""
        self.budget.spend()
        self.stats["rate_wait_s"] += self._limiter.wait()  # type: ignore[assignment]
        self.stats["calls"] += 1
        self.stats[f"calls {path}"] += 1
        try:
            response = self.session.request(method, self.credentials.base_url + path, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Transient(f"{type(exc).__name__} on {method} {path}") from None
        finally:
            self._limiter.mark()
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"HTTP {response.status_code} on {method} {path}")
        return response

    def _with_retries(self, attempt: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
        """`attempt` through the retry loop: a `Transient` is retried with backoff, anything else raised."""
        try:
            return with_retries(attempt, policy=self.backoff, sleep=self.sleep, on_retry=self._count_retry)
        except RetriesExhausted as exc:
            if exc.reason.startswith(("606", "615")):
                # Throttled for longer than our patience: stop cleanly rather than fail; the cursor stays put.
                raise SourceStopped(SYSTEM, f"still throttled after {exc.attempts} attempts ({exc.reason})") from None
            raise MarketoError(f"{what} failed after {exc.attempts} attempts: {exc.reason}") from None

    def _count_retry(self, *_: object) -> None:
        self.stats["retries"] += 1

    def _token_value(self) -> str:
        if self._token is not None and self.clock() < self._token_expires:
            return self._token

        def fetch() -> dict[str, Any]:
            # POST with a form body (Marketo accepts GET or POST): credentials in a query string would show up in
            # URL logs along the way.
            response = self._send(
                "POST",
                "/identity/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.credentials.client_id,
                    "client_secret": self.credentials.client_secret.get_secret_value(),
                },
            )
            if response.status_code in (400, 401, 403):
                raise MarketoError(f"token request refused (HTTP {response.status_code}): check client id and secret")
            try:
                body = response.json()
                return {"access_token": str(body["access_token"]), "expires_in": float(body.get("expires_in", 0))}
            except (ValueError, KeyError, TypeError):
                raise Transient(f"unreadable token response (HTTP {response.status_code})") from None

        body = self._with_retries(fetch, "token request")
        self._token = body["access_token"]
        # Refresh a minute early so a token never expires between our check and Marketo's.
        self._token_expires = self.clock() + max(0.0, body["expires_in"] - 60)
        return self._token

    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
              body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One API call with token refresh (once, on 601/602), backoff on 606/615/5xx, and 607 → SourceStopped."""
        refreshed = False

        def attempt() -> dict[str, Any]:
            nonlocal refreshed
            while True:
                token = self._token_value()
                response = self._send(method, path, params=params, json=body,
                                      headers={"Authorization": f"Bearer {token}"})
                if response.status_code != 200:
                    raise MarketoError(f"HTTP {response.status_code} on {method} {path}")
                try:
                    payload = response.json()
                except ValueError:
                    raise Transient(f"non-JSON response on {method} {path}") from None
                if not isinstance(payload, dict):
                    raise MarketoError(f"unexpected response shape on {method} {path}")
                if payload.get("success") is not False:
                    return payload
                errors = payload.get("errors") or [{}]
                code = str(errors[0].get("code", "?"))
                message = str(errors[0].get("message", ""))
                if code in TOKEN_ERRORS and not refreshed:
                    refreshed = True
                    self._token = None
                    continue
                if code in THROTTLE_ERRORS:
                    raise Transient(f"{code} {message}")
                if code == QUOTA_ERROR:
                    raise SourceStopped(SYSTEM, f"daily API quota reached (607: {message})")
                raise MarketoError(f"{method} {path} failed: {code} {message}", code=code)

        return self._with_retries(attempt, f"{method} {path}")

    # -- activities paging ---------------------------------------------------------------------------------------
    def _paging_token(self, since: datetime | None) -> str:
        moment = (since or EPOCH)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        payload = self._call("GET", "/rest/v1/activities/pagingtoken.json",
                             params={"sinceDatetime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
        token = payload.get("nextPageToken")
        if not isinstance(token, str):
            raise MarketoError("paging token response carries no nextPageToken")
        return token

    def _activity_pages(self, path: str, params: dict[str, Any], token: str,
                        until: str | None) -> Iterator[list[dict[str, Any]]]:
        """Pages of activity records (dicts) from `token` on, cut at `until` (activities come in date order).

        Every call goes through the next 300 activities of all types and returns those of the asked types, so pages
        are often short or empty while `moreResult` is true: keep calling until it is false (Marketo REST docs,
        "Activities": https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/activities;
        KB ka-29362: https://experienceleague.adobe.com/en/docs/experience-cloud-kcs/kbarticles/ka-29362).
        """
        while True:
            payload = self._call("GET", path, params={**params, "nextPageToken": token, "batchSize": self.page_size})
            self.stats["activity_pages"] += 1
            records = payload.get("result") or []
            if not isinstance(records, list):
                records = []
            kept = [r for r in records if isinstance(r, dict)]
            if not kept:
                self.stats["empty_activity_pages"] += 1
            done = False
            if until is not None:
                dated = [r for r in kept if not isinstance(r.get("activityDate"), str)
                         or (utc_iso(r["activityDate"]) or "") < until]
                done = len(dated) < len(kept)
                kept = dated
            if kept:
                yield kept
            if done or not payload.get("moreResult"):
                return
            next_token = payload.get("nextPageToken")
            if not isinstance(next_token, str) or not next_token:
                # Stopping here would silently skip the rest of the window.
                raise MarketoError(f"{path} said moreResult but gave no nextPageToken")
            token = next_token

    def activity_types(self) -> dict[int, str]:
        """Activity type id → name (fetched once)."""
        if self._types is None:
            payload = self._call("GET", "/rest/v1/activities/types.json")
            self._types = {
                int(t["id"]): str(t.get("name", t["id"]))
                for t in payload.get("result") or [] if isinstance(t, dict) and marketo_id(t.get("id")) is not None
            }
        return self._types

    # -- pull ----------------------------------------------------------------------------------------------------
    def pull(self, since: datetime | None, until: datetime | None = None) -> Iterator[pd.DataFrame]:
        """Pages of leads changed in [since, until), canonical columns + `source_modstamp` + `_pull_error`.

        Lazy: nothing is called before the first page is asked for. Changed lead ids are collected from the
        activities first, then looked up in batches ordered by each lead's last change, so a pull stopped part-way
        (SourceStopped) never leaves an unseen change older than the newest `source_modstamp` already yielded.

        Both activity passes scan every activity in the window (300 of all types per call), so the first pass's
        call count is what the second will cost: with a run budget too small for the second pass and the lookups,
        the pull stops (BudgetExhausted) before spending calls that could not finish the window.
        """
        until_iso = utc_iso(until.isoformat()) if until is not None else None
        calls_before = self.stats["calls"]
        token = self._paging_token(since)
        last_change: dict[int, str] = {}
        first_fill: dict[int, str] = {}

        def seen(record: dict[str, Any]) -> tuple[int, str] | None:
            lead, stamp = marketo_id(record.get("leadId")), utc_iso(record.get("activityDate"))
            if lead is None or stamp is None:
                return None  # an activity we cannot place is no evidence of a change
            if stamp > last_change.get(lead, ""):
                last_change[lead] = stamp
            return lead, stamp

        fields = ",".join(f for f in self.mapping.marketo_fields() if f != "id")
        scanned_before = self.stats[f"calls {LEAD_CHANGES}"]
        for page in self._activity_pages(LEAD_CHANGES, {"fields": fields}, token, until_iso):
            for record in page:
                seen(record)
        self._plan_rest(self.stats[f"calls {LEAD_CHANGES}"] - scanned_before, len(last_change), calls_before)
        for page in self._activity_pages(ACTIVITIES, {"activityTypeIds": f"{FORM_FILL},{NEW_LEAD}"}, token,
                                         until_iso):
            for record in page:
                if record.get("activityTypeId") != FORM_FILL:
                    seen(record)
                    continue
                # A form fill alone is no evidence of a change (data changes log Change Data Value); it dates
                # the lead's true creation.
                lead, stamp = marketo_id(record.get("leadId")), utc_iso(record.get("activityDate"))
                if lead is not None and stamp is not None and stamp < first_fill.get(lead, "~"):
                    first_fill[lead] = stamp
        ordered = sorted(last_change, key=lambda lead: (last_change[lead], lead))
        for start in range(0, len(ordered), self.batch_size):
            batch = ordered[start:start + self.batch_size]
            payload = self._call("GET", "/rest/v1/leads.json", params={
                "filterType": "id",
                "filterValues": ",".join(map(str, batch)),
                "fields": ",".join(self.mapping.marketo_fields()),
            })
            records = payload.get("result") or []
            frame = self._lead_frame(records if isinstance(records, list) else [], first_fill)
            if until_iso is not None:
                # Changed again after `until`: the next window [until, …) brings its current state.
                frame = frame[~frame[CURSOR_COLUMN].fillna("").ge(until_iso)].reset_index(drop=True)
            if len(frame):
                self.guard.saw(frame["lead_id"])
                yield frame

    def fetch_by_ids(self, lead_ids: Sequence[str | int]) -> pd.DataFrame:
        """These leads as Marketo has them now, in `pull`'s columns (absent: deleted), counted by the export guard."""
        # GET leads.json?filterType=id, ≤ 300 ids a call: experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/leads
        ids = sorted({i for i in (marketo_id(str(v).removeprefix(self.mapping.id_prefix)) for v in lead_ids) if i})
        fields, size = ",".join(self.mapping.marketo_fields()), self.batch_size
        records = [r for at in range(0, len(ids), size) for r in self._call("GET", "/rest/v1/leads.json", params={
            "filterType": "id", "filterValues": ",".join(map(str, ids[at:at + size])), "fields": fields}).get("result") or []]
        self.guard.saw((frame := self._lead_frame(records, {}))["lead_id"].dropna())
        return frame

    def _plan_rest(self, scans: int, changed: int, calls_before: int) -> None:
        """After the first pass over a window took `scans` calls: record the pull's plan, and stop now if the run's
        budget cannot pay for the second pass (as many scans) and the lookups (one per 300 changed leads)."""
        plan = plan_pull(scans * self.page_size, changed, per_call=self.page_size, leads_per_call=self.batch_size,
                         with_token=False)
        rest = plan.scan_calls + plan.lookup_calls  # the second pass and the lookups: what is still to come
        self.stats["scan_calls"] = plan.scan_calls
        self.stats["planned_calls"] = self.stats["calls"] - calls_before + rest
        remaining = self.budget.remaining
        if remaining is not None and rest > remaining:
            raise BudgetExhausted(SYSTEM, f"this window needs about {rest} more calls ({plan.scan_calls} to scan its "
                                  f"activities for form fills and new leads, {plan.lookup_calls} to look up "
                                  f"{changed} changed leads) but {remaining} are left of the run's budget; "
                                  "stopped before spending them")

    def _lead_frame(self, records: Sequence[Any], first_fill: dict[int, str]) -> pd.DataFrame:
        rows = [self._lead_row(record, first_fill) for record in records]
        columns = [*INPUT_COLUMNS, CURSOR_COLUMN, PULL_ERROR]
        frame = pd.DataFrame(rows, columns=columns)
        for column in columns:
            frame[column] = frame[column].astype(dtype_of(column))
        return frame.sort_values(CURSOR_COLUMN, kind="stable", na_position="last").reset_index(drop=True)

    def _lead_row(self, record: Any, first_fill: dict[int, str]) -> dict[str, Any]:
        row: dict[str, Any] = {"source": SYSTEM}
        errors: list[str] = []
        if not isinstance(record, dict):
            return {**row, PULL_ERROR: f"lead record is {type(record).__name__}, not an object"}
        lead = marketo_id(record.get("id"))
        if lead is None:
            errors.append("missing or invalid id")
        else:
            row["lead_id"] = f"{self.mapping.id_prefix}{lead}"
        for column, rule in self.mapping.fields.items():
            value = record.get(rule.source)
            if value is None:
                continue
            converted, ok = convert(value, rule)
            if not ok:
                errors.append(f"{rule.source}: expected {rule.type}, got {type(value).__name__} {str(value)[:40]!r}")
            row[column] = converted
        stamp = utc_iso(record.get("updatedAt"))
        if stamp is None:
            errors.append("updatedAt missing or not a datetime")
        row[CURSOR_COLUMN] = stamp
        if lead is not None and lead in first_fill:
            # The first form fill is when the person really arrived; createdAt may be a later import or sync.
            created = row.get("created_at")
            row["created_at"] = min(c for c in (created, first_fill[lead]) if c)
        row[PULL_ERROR] = "; ".join(errors) or None
        return row

    # -- activities ----------------------------------------------------------------------------------------------
    def activities(self, since: datetime | None, until: datetime | None = None,
                   types: Iterable[int | str] = DEFAULT_ACTIVITY_TYPES) -> Iterator[pd.DataFrame]:
        """Pages of engagement activities in [since, until): ACTIVITY_COLUMNS, `attributes` as a JSON object string.

        Costs one scan of the whole window per 10 types (`marketo_quota.plan_activities`), however rare the types."""
        known = self.activity_types()
        by_name = {name.lower(): tid for tid, name in known.items()}
        wanted: list[int] = []
        for kind in types:
            tid = kind if isinstance(kind, int) else by_name.get(str(kind).lower())
            if tid is None or tid not in known:
                raise MarketoError(f"unknown activity type {kind!r}")
            wanted.append(tid)
        until_iso = utc_iso(until.isoformat()) if until is not None else None
        token = self._paging_token(since)
        for start in range(0, len(wanted), 10):  # Marketo takes at most 10 type ids per call
            ids = ",".join(map(str, wanted[start:start + 10]))
            for page in self._activity_pages(ACTIVITIES, {"activityTypeIds": ids}, token, until_iso):
                yield self._activity_frame(page, known)

    def _activity_frame(self, records: list[dict[str, Any]], known: dict[int, str]) -> pd.DataFrame:
        rows = []
        for record in records:
            errors = []
            lead, type_id = marketo_id(record.get("leadId")), marketo_id(record.get("activityTypeId"))
            stamp = utc_iso(record.get("activityDate"))
            if lead is None:
                errors.append("missing or invalid leadId")
            if type_id is None:
                errors.append("missing or invalid activityTypeId")
            if stamp is None:
                errors.append("activityDate missing or not a datetime")
            attributes = record.get("attributes") or []
            if not isinstance(attributes, list):
                errors.append("attributes is not a list")
                attributes = []
            pairs = {str(a.get("name")): a.get("value") for a in attributes if isinstance(a, dict)}
            primary = record.get("primaryAttributeValue")
            rows.append({
                "lead_id": None if lead is None else f"{self.mapping.id_prefix}{lead}",
                "activity_id": None if record.get("id") is None else str(record.get("id")),
                "activity_type_id": None if type_id is None else str(type_id),
                "activity_type": None if type_id is None else known.get(type_id),
                "activity_date": stamp,
                "primary_attribute": None if primary is None else str(primary),
                "attributes": json.dumps(pairs, default=str, ensure_ascii=False),
                PULL_ERROR: "; ".join(errors) or None,
            })
        return pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS)).astype("string")

    # -- write-back ----------------------------------------------------------------------------------------------
    @property
    def writable_columns(self) -> tuple[str, ...]:
        """Mapped canonical columns Marketo takes writes for (system timestamps are never written)."""
        return tuple(c for c, rule in self.mapping.fields.items() if rule.type != "datetime")

    def write(self, changes: pd.DataFrame, *, dry_run: bool = False, override: bool = False) -> WriteResult:
        """Write changed fields: rows whose `record_id` is a Marketo id update that lead (updateOnly, lookup id);
        rows without one but with an `email` are createOrUpdate by email. At most 300 records per call. The export
        guard refuses more than its share of this run's pulled leads unless `override`."""
        result = WriteResult(dry_run=dry_run)
        failures: list[dict[str, Any]] = []
        by_id: list[tuple[str, dict[str, Any]]] = []
        by_email: list[tuple[str, dict[str, Any]]] = []
        for _, row in changes.iterrows():
            record_id = row.get("record_id")
            fields = self._marketo_fields(row)
            raw = None if pd.isna(record_id) else str(record_id)
            lead = marketo_id(raw.removeprefix(self.mapping.id_prefix)) if raw else None
            if lead is not None:
                by_id.append((raw or str(lead), {"id": lead, **fields}))
            elif isinstance(fields.get("email"), str):
                by_email.append((raw or fields["email"], fields))
            else:
                failures.append({"record_id": raw, "error_code": "invalid_id", "retryable": False,
                                 "message": "record_id is not a Marketo lead id and there is no email",
                                 "payload": json.dumps(fields, default=str)})
        self.guard.check([key for key, _ in (*by_id, *by_email)], override=override)
        for action, lookup, items in (("updateOnly", "id", by_id), ("createOrUpdate", "email", by_email)):
            for start in range(0, len(items), MAX_BATCH):
                chunk = items[start:start + MAX_BATCH]
                if dry_run:
                    result.written.extend(key for key, _ in chunk)
                    continue
                calls_before = self.budget.used
                payload = self._call("POST", "/rest/v1/leads.json", body={
                    "action": action, "lookupField": lookup, "input": [record for _, record in chunk],
                })
                result.api_calls += self.budget.used - calls_before
                outcomes = payload.get("result") or []
                for index, (key, record) in enumerate(chunk):
                    outcome = outcomes[index] if index < len(outcomes) and isinstance(outcomes[index], dict) else {}
                    if outcome.get("status") in {"created", "updated"}:
                        result.written.append(key if lookup == "id" else f"{self.mapping.id_prefix}{outcome.get('id')}")
                        continue
                    reason = (outcome.get("reasons") or [{}])[0]
                    code = str(reason.get("code", "missing_result"))
                    failures.append({"record_id": key, "error_code": code,
                                     "message": str(reason.get("message", "no per-record result returned")),
                                     # 1029 (too many records in queue) and a missing result are worth another go.
                                     "retryable": code in {"1029", "missing_result"},
                                     "payload": json.dumps(record, default=str, ensure_ascii=False)})
        if failures:
            result.failures = pd.DataFrame(failures, columns=list(result.failures.columns))
        return result

    def _marketo_fields(self, row: pd.Series) -> dict[str, Any]:
        """Canonical changes → Marketo fields; NA means unchanged, system datetimes are never written."""
        out: dict[str, Any] = {}
        for column, rule in self.mapping.fields.items():
            if column not in row.index or rule.type == "datetime":
                continue
            value = row[column]
            if value is None or (not isinstance(value, (list, dict)) and pd.isna(value)):
                continue
            if rule.type == "bool":
                # Only values the mapping can express go back (e.g. opt-in True cannot un-unsubscribe).
                if bool(value) == rule.when_true:
                    out[rule.source] = True
                elif bool(value) == rule.when_false:
                    out[rule.source] = False
                continue
            out[rule.source] = str(value)
        return out


def marketo_connector(
    credentials: MarketoCredentials,
    *,
    session: requests.Session | None = None,
    mapping: MarketoMapping | Path | None = None,
    budget: ApiBudget | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch_size: int = MAX_BATCH,
    page_size: int = MAX_BATCH,
    backoff: RetryPolicy = Backoff(),
    clock: Callable[[], float] = time.monotonic,
    max_change_share: float = 0.5,
    guard_floor: int = 100,
    quota: MarketoQuota = MarketoQuota(),
) -> MarketoConnector:
    """A Marketo connector; `mapping` is a MarketoMapping or the path of a mapping YAML (default: the bundled one).

    `clock`/`sleep` drive the pacing (`quota`: 100 calls per 20 s) and the backoff; inject fakes in tests."""
    if isinstance(mapping, Path):
        mapping = load_mapping(mapping)
    return MarketoConnector(
        credentials,
        session=session,
        mapping=mapping,
        budget=budget if budget is not None else ApiBudget(SYSTEM),
        sleep=sleep,
        batch_size=batch_size,
        page_size=page_size,
        backoff=backoff,
        clock=clock,
        guard=ExportGuard(SYSTEM, max_change_share, guard_floor),
        quota=quota,
    )
