"""The sandboxes push notifications like the real systems: a small delivery queue per system (`Outbox`).

On create/update the sandboxes hand an event to their outbox (hooks in `Org.put`, `Portal.update` / the HubSpot
create route, and the Marketo upsert); the outbox batches events into messages, renders each message the way the real
system does (payload, headers, signature), POSTs it to the configured URL and retries failures on that system's
documented schedule:

- **Salesforce Outbound Messages** (`SalesforceOutbound`): a SOAP 1.1 `notifications` envelope of up to 100
  `Notification`s of one object, `Content-Type: text/xml; charset=utf-8`, `SOAPAction: ""`. Delivered only when the
  listener answers `notificationsResponse/Ack` true; otherwise retried with an exponentially growing interval up to
  two hours between retries, until the message is 24 hours old.
- **HubSpot webhooks** (`HubspotWebhooks`): a JSON array of up to 100 `contact.creation` / `contact.propertyChange`
  events, signed `X-HubSpot-Signature-v3`; retried up to 10 times over 24 hours on connection failure, a response
  slower than 5 s, or a 4xx/5xx other than 400/401/403/404/405.
- **Marketo smart-campaign webhooks** (`MarketoWebhook`): one lead per call, a user-defined JSON template with a
  shared-secret custom header; never retried.

Nothing is pushed unless a target is attached (`attach_salesforce`, `attach_hubspot`, `attach_marketo`). Time is
injected: `Outbox(clock=...)` stamps and schedules, `deliver_due(now)` sends what is due at `now` (tests drive retries
with it, no sleeping), and `Pusher` runs one background thread per outbox for the served sandboxes. `time_scale`
shrinks the retry schedules (0.001: Salesforce's first 15 s retry comes after 15 ms) without changing their shape.
Every attempt is logged (`Outbox.log`), never with a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

__all__ = [
    "HUBSPOT_RETRY", "MARKETO_RETRY", "SALESFORCE_RETRY", "Attempt", "HubspotWebhooks", "MarketoWebhook", "Message",
    "Outbox", "PushTarget", "Pusher", "RetryPolicy", "SalesforceOutbound", "attach_hubspot", "attach_marketo",
    "attach_salesforce", "hubspot_signature_v3", "requests_transport",
]

Transport = Callable[[str, bytes, dict[str, str], float, Any], tuple[int, str]]
"""(url, body, headers, timeout seconds, TLS verify) → (HTTP status, response text); raises when no answer came."""


@dataclass(frozen=True)
class PushTarget:
    """Where one system pushes: the URL, the secret it signs or authenticates with, how to trust an https URL."""

    url: str
    secret: str = field(default="", repr=False)
    verify: bool | str = True


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again: retry n (1-based) waits `first_delay * factor**(n-1)` seconds (capped
    at `max_delay`, spread by ±`jitter`), at most `max_retries` times and while the message is younger than
    `max_age`. A response status in `final_statuses` is never retried; `timeout` is how long one attempt may take."""

    first_delay: float
    factor: float = 2.0
    max_delay: float = float("inf")
    max_retries: int | None = None
    max_age: float | None = None
    timeout: float = 30.0
    final_statuses: frozenset[int] = frozenset()
    jitter: float = 0.0

    def delay(self, retry: int, rng: random.Random) -> float:
        base = min(self.first_delay * self.factor ** (retry - 1), self.max_delay)
        return base * (1 + rng.uniform(-self.jitter, self.jitter)) if self.jitter else base


# Salesforce, "Considerations for Outbound Messages"
# (https://help.salesforce.com/s/articleView?id=platform.workflow_om_considerations.htm) and SOAP API Developer Guide,
# "Understanding Notifications"
# (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_notifications.htm):
# "If the endpoint is unavailable, messages stay in the queue until sent successfully, or until they're 24 hours old";
# "the interval between retries increases exponentially, up to a maximum of two hours between retries"; "The timeout
# for an outbound message is 60 seconds". The first interval is not documented: 15 s, doubling.
SALESFORCE_RETRY: Final = RetryPolicy(first_delay=15.0, max_delay=7200.0, max_age=86_400.0, timeout=60.0)
# HubSpot developer docs, Webhooks API, "Retries" (https://developers.hubspot.com/docs/api/webhooks): failed
# notifications are re-sent up to 10 times, "spread out over the next 24 hours, with varying delays between requests"
# and "some randomization applied"; a failure is a connection that cannot be opened, a response slower than five
# seconds, or an error status. HubSpot does not retry 400, 401, 403, 404 and 405 (HubSpot's answer in
# https://community.hubspot.com/t5/APIs-Integrations/Webhooks-response/td-p/277558, and the earlier webhooks
# overview: "an HTTP status code that is not one of: 400, 401, 403, 404, 405" is retried). The delays are not
# published: 1, 2, 4, … 512 minutes (about 17 h in all), ±10 %.
HUBSPOT_RETRY: Final = RetryPolicy(first_delay=60.0, max_retries=10, max_age=86_400.0, timeout=5.0,
                                   final_statuses=frozenset({400, 401, 403, 404, 405}), jitter=0.1)
# Marketo developer docs, "Webhooks" (https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/webhooks/
# webhooks): Marketo waits up to 30 seconds for the service before it terminates the call. No automatic retry is
# documented: a failure is recorded on the lead and can be caught with the "Webhook is Called" trigger (Response,
# Error Type) to build retries in a smart campaign ("Errors": https://experienceleague.adobe.com/en/docs/
# marketo-developer/marketo/webhooks/errors). So one attempt, never retried.
MARKETO_RETRY: Final = RetryPolicy(first_delay=0.0, max_retries=0, timeout=30.0)


class PushFormat(Protocol):
    """What an outbox needs to know about one system's notifications."""

    system: str
    batch_size: int
    policy: RetryPolicy

    def group(self, event: dict[str, Any]) -> Hashable: ...
    def render(self, events: list[dict[str, Any]], attempt: int, now: float, url: str) -> tuple[bytes, dict[str, str]]:
        ...
    def accepted(self, status: int, text: str) -> bool: ...


# ------------------------------------------------------------------------------------------------- Salesforce

SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS: Final = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS: Final = "urn:sobject.enterprise.soap.sforce.com"


def _soap_datetime(stamp: str | None) -> str:
    """The org's stored `2026-10-15T12:00:00.000+0000` as xsd:dateTime in UTC (`…000Z`)."""
    text = str(stamp or "")
    return text[:-5] + "Z" if text.endswith("+0000") else text


@dataclass
class SalesforceOutbound:
    """Outbound messages of one org: one outbound-message action per object (its ActionId), the fields the action
    sends (Id, LastModifiedDate, SystemModstamp). `record(obj, id)` reads the record at send time: "if the
    information in the object changes after the notification is queued but before it's sent, only the latest data is
    delivered" (SOAP API Developer Guide, "Understanding Notifications")."""

    instance_url: str
    org_id: str
    record: Callable[[str, str], dict[str, Any] | None] | None = None
    objects: tuple[str, ...] = ("Lead", "Contact")
    api_version: str = "60.0"
    system: str = "salesforce"
    batch_size: int = 100  # "A single SOAP message can include up to 100 notifications."
    policy: RetryPolicy = SALESFORCE_RETRY
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def action_id(self, obj: str) -> str:
        """The ActionId (04k…) of the outbound message defined on `obj`."""
        return f"04k5e{self.objects.index(obj) + 1:010d}AAA"

    def event(self, obj: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """A notification for a created or updated record (None for objects without an outbound message)."""
        if obj not in self.objects:
            return None
        return {"object": obj, "notification": f"04l5e{next(self._ids):010d}AAA", "Id": record["Id"],
                "LastModifiedDate": record.get("LastModifiedDate"), "SystemModstamp": record.get("SystemModstamp")}

    def group(self, event: dict[str, Any]) -> Hashable:
        return event["object"]  # one message holds the notifications of one action (one object)

    def render(self, events: list[dict[str, Any]], attempt: int, now: float, url: str) -> tuple[bytes, dict[str, str]]:
        # SOAP API Developer Guide, "Understanding the Outbound Messaging WSDL"
        # (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_wsdl.htm):
        # notifications = OrganizationId, ActionId, SessionId (nillable), EnterpriseUrl, PartnerUrl, Notification
        # (maxOccurs 100) each with Id and sObject.
        obj = events[0]["object"]
        org15 = self.org_id[:15]
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
            "<soapenv:Body>",
            f'<notifications xmlns="{OUTBOUND_NS}">',
            f"<OrganizationId>{escape(self.org_id)}</OrganizationId>",
            f"<ActionId>{self.action_id(obj)}</ActionId>",
            '<SessionId xsi:nil="true"/>',
            f"<EnterpriseUrl>{escape(self.instance_url)}/services/Soap/c/{self.api_version}/{org15}</EnterpriseUrl>",
            f"<PartnerUrl>{escape(self.instance_url)}/services/Soap/u/{self.api_version}/{org15}</PartnerUrl>",
        ]
        for event in events:
            latest = self.record(obj, event["Id"]) if self.record is not None else None
            source = latest if latest is not None else event
            parts += [
                "<Notification>",
                f"<Id>{event['notification']}</Id>",
                f'<sObject xsi:type="sf:{obj}" xmlns:sf="{SOBJECT_NS}">',
                f"<sf:Id>{escape(event['Id'])}</sf:Id>",
                f"<sf:LastModifiedDate>{_soap_datetime(source.get('LastModifiedDate'))}</sf:LastModifiedDate>",
                f"<sf:SystemModstamp>{_soap_datetime(source.get('SystemModstamp'))}</sf:SystemModstamp>",
                "</sObject>",
                "</Notification>",
            ]
        parts += ["</notifications>", "</soapenv:Body>", "</soapenv:Envelope>"]
        return "".join(parts).encode("utf-8"), {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}

    def accepted(self, status: int, text: str) -> bool:
        """Delivered only on a 2xx whose body is a `notificationsResponse` with `Ack` true: SOAP API Developer Guide,
        "Building a Listener" (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/
        sforce_api_om_outboundmessaging_listener.htm), and the WSDL's `notificationsResponse` (Ack: xsd:boolean)."""
        return 200 <= status < 300 and soap_ack(text)

    def describe(self) -> dict[str, Any]:
        return {"organization_id": self.org_id, "objects": list(self.objects),
                "action_ids": {obj: self.action_id(obj) for obj in self.objects}}


def soap_ack(text: str) -> bool:
    """Whether a listener's answer is `notificationsResponse` with `Ack` true (xsd:boolean: "true" or "1")."""
    try:
        root = ElementTree.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except ElementTree.ParseError:
        return False
    response = next((e for e in root.iter() if e.tag.rpartition("}")[2] == "notificationsResponse"), None)
    if response is None:
        return False
    ack = next((e for e in response.iter() if e.tag.rpartition("}")[2] == "Ack"), None)
    return ack is not None and (ack.text or "").strip().lower() in {"true", "1"}


# ------------------------------------------------------------------------------------------------- HubSpot


def hubspot_signature_v3(client_secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """`X-HubSpot-Signature-v3`: base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), the URI with
    URL-encoded characters decoded except `?` (HubSpot developer docs, "Validating requests", v3 signature:
    https://developers.hubspot.com/docs/api/webhooks/validating-requests)."""
    uri = "%3F".join(unquote(part) for part in url.split("%3F"))
    message = method.encode() + uri.encode("utf-8") + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode("utf-8"), message, hashlib.sha256).digest()).decode()


@dataclass
class HubspotWebhooks:
    """Webhook subscriptions of one app in one portal: `contact.creation` and one `contact.propertyChange`
    subscription per property in `properties` (HubSpot subscribes property changes per property)."""

    client_secret: str = field(repr=False)
    portal_id: int = 62_515
    app_id: int = 1_160_452
    properties: tuple[str, ...] = ()
    creation_subscription: int = 4_000_001
    change_source: str = "API"
    system: str = "hubspot"
    batch_size: int = 100
    policy: RetryPolicy = HUBSPOT_RETRY
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def subscription(self, prop: str) -> int:
        return self.creation_subscription + 1 + self.properties.index(prop)

    def _event(self, kind: str, subscription: int, object_id: Any, occurred_ms: int) -> dict[str, Any]:
        # HubSpot developer docs, Webhooks API, "Webhook payloads": eventId, subscriptionId, portalId, appId,
        # occurredAt (ms), subscriptionType, attemptNumber (0 on the first attempt), objectId, changeSource, and for
        # property changes propertyName / propertyValue.
        return {"eventId": next(self._ids), "subscriptionId": subscription, "portalId": self.portal_id,
                "appId": self.app_id, "occurredAt": int(occurred_ms), "subscriptionType": kind, "attemptNumber": 0,
                "objectId": int(object_id), "changeSource": self.change_source}

    def creation(self, object_id: Any, occurred_ms: int) -> dict[str, Any]:
        return self._event("contact.creation", self.creation_subscription, object_id, occurred_ms)

    def property_changes(self, object_id: Any, changed: Mapping[str, Any], occurred_ms: int) -> list[dict[str, Any]]:
        """One event per subscribed property whose value changed (values as strings, as HubSpot sends them)."""
        return [self._event("contact.propertyChange", self.subscription(name), object_id, occurred_ms)
                | {"propertyName": name, "propertyValue": "" if value is None else str(value)}
                for name, value in changed.items() if name in self.properties]

    def group(self, event: dict[str, Any]) -> Hashable:
        return "contacts"

    def render(self, events: list[dict[str, Any]], attempt: int, now: float, url: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps([event | {"attemptNumber": attempt} for event in events], separators=(",", ":")).encode()
        timestamp = str(int(now * 1000))
        return body, {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": hubspot_signature_v3(self.client_secret, "POST", url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature-Version": "v3",
        }

    def accepted(self, status: int, text: str) -> bool:
        return 200 <= status < 300

    def describe(self) -> dict[str, Any]:
        return {"portal_id": self.portal_id, "app_id": self.app_id,
                "subscriptions": {"contact.creation": self.creation_subscription}
                | {f"contact.propertyChange:{p}": self.subscription(p) for p in self.properties}}


# ------------------------------------------------------------------------------------------------- Marketo

MARKETO_SECRET_HEADER: Final = "X-Leadflow-Marketo-Secret"


@dataclass
class MarketoWebhook:
    """A smart campaign (Lead is Created / Data Value Changes → Call Webhook) with a JSON payload template and a
    custom header holding a shared secret. Marketo webhooks are user-defined: URL, template with lead tokens, custom
    headers (Marketo Engage, "Create a Webhook": https://experienceleague.adobe.com/en/docs/marketo/using/
    product-docs/administration/additional-integrations/create-a-webhook); a campaign calls one per lead."""

    secret: str = field(repr=False)
    header: str = MARKETO_SECRET_HEADER
    system: str = "marketo"
    batch_size: int = 1
    policy: RetryPolicy = MARKETO_RETRY

    def event(self, lead: Mapping[str, Any]) -> dict[str, Any]:
        # An empty lead token renders as an empty string in the template.
        return {"leadId": int(lead["id"]), "updatedAt": str(lead.get("updatedAt") or ""),
                "email": str(lead.get("email") or "")}

    def group(self, event: dict[str, Any]) -> Hashable:
        return None  # one call per lead (batch_size 1), in the order the changes happened

    def render(self, events: list[dict[str, Any]], attempt: int, now: float, url: str) -> tuple[bytes, dict[str, str]]:
        (event,) = events
        return json.dumps(event, separators=(",", ":")).encode(), {"Content-Type": "application/json",
                                                                   self.header: self.secret}

    def accepted(self, status: int, text: str) -> bool:
        return 200 <= status < 300

    def describe(self) -> dict[str, Any]:
        return {"header": self.header}


# ------------------------------------------------------------------------------------------------- the queue


def requests_transport(url: str, body: bytes, headers: dict[str, str], timeout: float, verify: Any) -> tuple[int, str]:
    """POST with requests, ignoring proxy settings (the targets are local services)."""
    import requests

    with requests.Session() as session:
        session.trust_env = False
        reply = session.post(url, data=body, headers=headers, timeout=timeout, verify=verify)
        return reply.status_code, reply.text


@dataclass
class Message:
    """One request's worth of events, retried as a unit."""

    id: int
    events: list[dict[str, Any]]
    queued: float
    due: float
    attempts: int = 0
    state: str = "pending"
    """pending → delivered, or gave_up (a final status, retries spent, or too old)."""


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as logged."""

    system: str
    message: int
    attempt: int
    at: float
    events: int
    status: int | None
    error: str
    outcome: str
    """"delivered", "retry" (then `next_due`) or "gave_up"."""
    next_due: float | None = None


class Outbox:
    """The delivery queue of one system towards one target: `add` events, `deliver_due(now)` sends what is due."""

    def __init__(self, fmt: PushFormat, target: PushTarget, *, clock: Callable[[], float] = time.time,
                 transport: Transport = requests_transport, time_scale: float = 1.0, seed: int | None = None,
                 log_size: int = 10_000) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.fmt, self.target, self.clock, self.transport = fmt, target, clock, transport
        self.time_scale = time_scale
        self.log: deque[Attempt] = deque(maxlen=log_size)
        self.counts: dict[str, int] = {"events": 0, "delivered": 0, "gave_up": 0, "attempts": 0}
        self.wake = threading.Event()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._messages: dict[int, Message] = {}
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"Outbox({self.fmt.system} → {self.target.url}, pending={self.pending()})"

    @property
    def system(self) -> str:
        return self.fmt.system

    def add(self, *events: dict[str, Any] | None) -> None:
        """Queue events (None is skipped); they are batched into messages when next delivered."""
        wanted = [e for e in events if e is not None]
        if not wanted:
            return
        with self._lock:
            self._events.extend(wanted)
            self.counts["events"] += len(wanted)
        self.wake.set()

    def pending(self) -> int:
        """Events not yet delivered or given up (queued or in messages awaiting a first try or a retry)."""
        with self._lock:
            return len(self._events) + sum(len(m.events) for m in self._messages.values())

    def messages(self) -> list[Message]:
        with self._lock:
            return sorted(self._messages.values(), key=lambda m: m.id)

    def next_due(self) -> float | None:
        """When something is next due (now, if events wait to be batched); None when idle."""
        with self._lock:
            if self._events:
                return self.clock()
            dues = [m.due for m in self._messages.values() if m.state == "pending"]
        return min(dues) if dues else None

    def _batch(self, now: float) -> None:
        """Queued events → messages of at most `batch_size` events of one group each, in arrival order."""
        groups: dict[Hashable, list[dict[str, Any]]] = {}
        for event in self._events:
            groups.setdefault(self.fmt.group(event), []).append(event)
        self._events = []
        for events in groups.values():
            for start in range(0, len(events), self.fmt.batch_size):
                message_id = next(self._ids)
                self._messages[message_id] = Message(message_id, events[start:start + self.fmt.batch_size], now, now)

    def deliver_due(self, now: float | None = None) -> list[Attempt]:
        """Batch what was queued, then try every message due at `now` (default: the clock) once; returns the
        attempts made. Retries are scheduled on the system's policy, scaled by `time_scale`."""
        now = self.clock() if now is None else now
        with self._lock:
            self._batch(now)
            due = sorted((m for m in self._messages.values() if m.state == "pending" and m.due <= now),
                         key=lambda m: (m.due, m.id))
            for message in due:
                message.state = "sending"
        return [self._attempt(message, now) for message in due]

    def _attempt(self, message: Message, now: float) -> Attempt:
        policy = self.fmt.policy
        number = message.attempts
        body, headers = self.fmt.render(message.events, number, now, self.target.url)
        status: int | None = None
        error = ""
        try:
            status, text = self.transport(self.target.url, body, headers, policy.timeout, self.target.verify)
            ok = self.fmt.accepted(status, text)
            if not ok:
                error = f"HTTP {status}" if not 200 <= status < 300 else "not acknowledged"
        except Exception as exc:  # connection refused, timeout, TLS: a failed attempt, retried like the system does
            ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
        next_due: float | None = None
        with self._lock:
            message.attempts += 1
            self.counts["attempts"] += 1
            if ok:
                outcome = "delivered"
            else:
                retries_done = message.attempts - 1
                outcome = "gave_up"
                if status not in policy.final_statuses and (policy.max_retries is None
                                                            or retries_done < policy.max_retries):
                    candidate = now + policy.delay(retries_done + 1, self._rng) * self.time_scale
                    if policy.max_age is None or candidate - message.queued <= policy.max_age * self.time_scale:
                        outcome, next_due = "retry", candidate
            if outcome == "retry":
                message.state, message.due = "pending", next_due  # type: ignore[assignment]
            else:
                message.state = outcome
                del self._messages[message.id]
                self.counts[outcome] += len(message.events)
            attempt = Attempt(self.system, message.id, number, now, len(message.events), status, error, outcome,
                              next_due)
            self.log.append(attempt)
        return attempt

    def stats(self) -> dict[str, Any]:
        return dict(self.counts, pending=self.pending(), url=self.target.url)


class Pusher:
    """Background delivery for running sandboxes: one daemon thread per outbox, woken by new events and by due
    retries. `linger` seconds after a wake-up let a burst of writes share one message (as the real systems batch)."""

    def __init__(self, outboxes: list[Outbox], *, linger: float = 0.05, idle: float = 1.0) -> None:
        self.outboxes, self.linger, self.idle = list(outboxes), linger, idle
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Pusher:
        for box in self.outboxes:
            thread = threading.Thread(target=self._run, args=(box,), name=f"push:{box.system}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, box: Outbox) -> None:
        while not self._stop.is_set():
            due = box.next_due()
            wait = self.idle if due is None else max(0.0, min(self.idle, due - box.clock()))
            if wait > 0 and box.wake.wait(wait) and self.linger:
                self._stop.wait(self.linger)
            box.wake.clear()
            if self._stop.is_set():
                return
            box.deliver_due()

    def stop(self) -> None:
        self._stop.set()
        for box in self.outboxes:
            box.wake.set()
        for thread in self._threads:
            thread.join(10)

    def __enter__(self) -> Pusher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------- attaching


def attach_salesforce(org: Any, instance_url: str, target: PushTarget, **options: Any) -> Outbox:
    """Outbound messages on every Lead and Contact the org creates or updates (every write path goes through
    `Org.put`). `options` go to `Outbox`."""
    from leadflow.sandbox.salesforce_org import ORG_ID

    fmt = SalesforceOutbound(instance_url.rstrip("/"), ORG_ID, record=org.get)
    box = Outbox(fmt, target, **options)
    org.outbound = lambda obj, record: box.add(fmt.event(obj, record))
    return box


def attach_hubspot(portal: Any, target: PushTarget, *, properties: tuple[str, ...] | None = None,
                   **options: Any) -> Outbox:
    """Webhooks on contact creation and property change (`properties`: the properties subscribed, default every
    writable one). `target.secret` is the app's client secret."""
    from leadflow.sandbox.hubspot_model import PROPERTIES

    wanted = tuple(p for p, spec in PROPERTIES.items() if not spec.read_only) if properties is None else properties
    fmt = HubspotWebhooks(target.secret, properties=wanted)
    box = Outbox(fmt, target, **options)

    def notify(kind: str, object_id: Any, changed: Mapping[str, Any], occurred_ms: int) -> None:
        if kind == "creation":
            box.add(fmt.creation(object_id, occurred_ms))
        else:
            box.add(*fmt.property_changes(object_id, changed, occurred_ms))

    portal.webhooks = notify
    return box


def attach_marketo(instance: Any, target: PushTarget, **options: Any) -> Outbox:
    """A webhook call per lead created or changed through the REST API. `target.secret` is the header's value."""
    fmt = MarketoWebhook(target.secret)
    box = Outbox(fmt, target, **options)
    instance.webhook = lambda lead: box.add(fmt.event(lead))
    return box
