"""The push-intake ASGI application (Starlette): one POST endpoint per configured source and `GET /healthz`.

Every request goes through the same steps, and a refusal at any step records nothing: the source's rate limit
(429 with Retry-After), the body size limit (413: Content-Length first, then counted while reading), the sender's
proof (signature, shared secret or organization id: 401; a stale or missing timestamp: 400), the body's shape (400;
422 naming the field for the JSON a person configures), then the notifications are written to the inbox in one
transaction and only then answered (2xx) — a crash after the answer loses nothing, one before it makes the sender
retry. A store that cannot be written answers 503, so the sender retries.

Log lines name the source, the client address, the status and the reason; never a secret, a signature, a session
id or a header's value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leadflow.intake.config import IntakeConfig, IntakeSecrets
from leadflow.intake.limits import TokenBucket, retry_after
from leadflow.intake.payloads import ACK_XML, parse_hubspot, parse_marketo, parse_salesforce, parse_web
from leadflow.intake.verify import (
    HUBSPOT_SIGNATURE,
    HUBSPOT_TIMESTAMP,
    MARKETO_SECRET,
    WEB_SIGNATURE,
    WEB_TIMESTAMP,
    Refused,
    check_organization,
    hubspot_uri,
    verify_hubspot,
    verify_marketo,
    verify_web,
)
from leadflow.store import StateStore
from leadflow.store.inbox import InboxNotification

log = logging.getLogger("leadflow.intake")

PATHS: Final[dict[str, str]] = {source: f"/intake/{source}" for source in ("salesforce", "hubspot", "marketo", "web")}


class _Limited(Exception):
    def __init__(self, wait: float) -> None:
        self.wait = wait


class Handled:
    """What an endpoint recorded: the notifications it wrote, the duplicates and the events it did not record."""

    def __init__(self, new: int, duplicates: int, ignored: int = 0) -> None:
        self.new, self.duplicates, self.ignored = new, duplicates, ignored

    def json(self) -> dict[str, int]:
        return {"recorded": self.new, "duplicates": self.duplicates, "ignored": self.ignored}


def build_app(
    config: IntakeConfig, secrets: IntakeSecrets, store: StateStore, *, clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic, on_recorded: Callable[[int], None] | None = None,
) -> Starlette:
    """The intake service for `config`'s sources, recording into `store`. `clock` (wall seconds) judges timestamps;
    `monotonic` drives the rate limits; `on_recorded(new)` is told after a request recorded new notifications (the
    processor's wake-up)."""
    intake = _Intake(config, secrets, store, clock, on_recorded)
    buckets = {source: TokenBucket(config.rate_limit_of(source).requests_per_second,
                                   config.rate_limit_of(source).burst, monotonic)
               for source in config.sources.configured()}
    routes = [Route("/healthz", intake.healthz, methods=["GET"])]
    for source in config.sources.configured():
        routes.append(Route(PATHS[source], _endpoint(intake, source, buckets[source]), methods=["POST"]))
    return Starlette(routes=routes)


def _endpoint(intake: _Intake, source: str, bucket: TokenBucket) -> Callable[[Request], Awaitable[Response]]:
    handler = getattr(intake, source)

    async def endpoint(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        try:
            wait = bucket.take()
            if wait:
                raise _Limited(wait)
            body = await _read_body(request, intake.config.max_body_bytes)
            handled, response = await handler(request, body)
        except _Limited as limited:
            log.warning("%s: refused a request from %s (429): rate limit exceeded", source, client)
            return _error(source, 429, "rate limit exceeded", {"Retry-After": retry_after(limited.wait)})
        except Refused as refused:
            log.warning("%s: refused a request from %s (%d): %s", source, client, refused.status, refused.reason)
            return _error(source, refused.status, refused.reason)
        except Exception as exc:  # the store (or something else) failed: nothing acknowledged, the sender retries
            log.error("%s: could not record a request from %s (503): %s", source, client, type(exc).__name__)
            return _error(source, 503, "the inbox cannot be written now; retry later")
        log.info("%s: recorded %d new, %d duplicate notification(s) from %s%s", source, handled.new,
                 handled.duplicates, client, f", {handled.ignored} event(s) not about contacts" if handled.ignored
                 else "")
        return response

    endpoint.__name__ = f"intake_{source}"
    return endpoint


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) more than `limit` bytes: by Content-Length first, then as counted."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise Refused(400, "malformed Content-Length")
        if int(declared) > limit:
            raise Refused(413, f"body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error(source: str, status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    if source == "salesforce":  # a SOAP 1.1 fault: what a SOAP client (and Salesforce's delivery log) expects
        code = "soapenv:Client" if status < 500 else "soapenv:Server"
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv='
                '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>'
                f"<faultcode>{code}</faultcode><faultstring>{escape(reason)}</faultstring>"
                "</soapenv:Fault></soapenv:Body></soapenv:Envelope>")
        return Response(body, status_code=status, media_type="text/xml; charset=utf-8", headers=headers)
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


class _Intake:
    """The per-source handlers: verify, parse, record; each returns what it recorded and the response to send."""

    def __init__(self, config: IntakeConfig, secrets: IntakeSecrets, store: StateStore,
                 clock: Callable[[], float], on_recorded: Callable[[int], None] | None = None) -> None:
        self.config, self._secrets, self.store, self._clock = config, secrets, store, clock
        self._on_recorded = on_recorded

    async def _record(self, notifications: list[InboxNotification], ignored: int = 0) -> Handled:
        try:
            new, duplicates = await run_in_threadpool(self.store.record_notifications, notifications)
        except ValueError as exc:  # a value the inbox cannot hold (an id longer than its column): the sender's fault
            raise Refused(400, str(exc)) from None
        if new and self._on_recorded is not None:
            self._on_recorded(new)  # committed: the processor may claim them now
        return Handled(new, duplicates, ignored)

    async def salesforce(self, request: Request, body: bytes) -> tuple[Handled, Response]:
        # Outbound Messages: SOAP 1.1, answered with notificationsResponse/Ack true; anything else makes Salesforce
        # retry for up to 24 hours (sforce_api_om_outboundmessaging_understanding.htm). A message from another org
        # is refused with 401: forged, and not to be retried into the inbox.
        section = self.config.sources.salesforce
        assert section is not None
        message = parse_salesforce(body, lambda org: check_organization(org, section.organization_ids))
        handled = await self._record(message.notifications)
        return handled, Response(ACK_XML, media_type="text/xml; charset=utf-8")

    async def hubspot(self, request: Request, body: bytes) -> tuple[Handled, Response]:
        secret = self._secrets.hubspot
        assert secret is not None
        base = self.config.public_url or f"{request.url.scheme}://{request.url.netloc}"
        raw_path = request.scope.get("raw_path")
        path = request.scope.get("root_path", "") + (raw_path.decode("latin-1") if raw_path else request.url.path)
        query = request.scope.get("query_string", b"").decode("latin-1")
        verify_hubspot(secret.get_secret_value(), method=request.method, uri=hubspot_uri(base, path, query),
                       body=body, signature=request.headers.get(HUBSPOT_SIGNATURE),
                       timestamp=request.headers.get(HUBSPOT_TIMESTAMP), now=self._clock(),
                       tolerance=self.config.timestamp_tolerance_seconds)
        notifications, ignored = parse_hubspot(body)
        handled = await self._record(notifications, ignored)
        return handled, JSONResponse(handled.json())

    async def marketo(self, request: Request, body: bytes) -> tuple[Handled, Response]:
        secret = self._secrets.marketo
        assert secret is not None
        verify_marketo(secret.get_secret_value(), request.headers.get(MARKETO_SECRET))
        handled = await self._record(parse_marketo(body))
        return handled, JSONResponse(handled.json())

    async def web(self, request: Request, body: bytes) -> tuple[Handled, Response]:
        secret = self._secrets.web
        assert secret is not None
        verify_web(secret.get_secret_value(), body=body, signature=request.headers.get(WEB_SIGNATURE),
                   timestamp=request.headers.get(WEB_TIMESTAMP), now=self._clock(),
                   tolerance=self.config.timestamp_tolerance_seconds)
        handled = await self._record(parse_web(body))
        return handled, JSONResponse(handled.json())

    async def healthz(self, request: Request) -> Response:
        """200 with the configured sources when the state store answers; 503 otherwise."""
        def ping() -> None:
            with self.store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

        try:
            await run_in_threadpool(ping)
        except Exception as exc:
            log.error("healthz: the state store does not answer: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "sources": list(self.config.sources.configured())})
