"""The sandboxes push notifications like the real systems: payloads, signatures, batching, retries, off by default."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import threading
from collections import deque
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
import yaml
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from leadflow.sandbox.hubspot import DEFAULT_TOKEN, Portal, seed_portal
from leadflow.sandbox.hubspot import create_app as hubspot_app
from leadflow.sandbox.launch import push_targets, running_sandboxes
from leadflow.sandbox.marketo import MarketoInstance
from leadflow.sandbox.marketo import create_app as marketo_app
from leadflow.sandbox.push import (
    HUBSPOT_RETRY,
    SALESFORCE_RETRY,
    PushTarget,
    attach_hubspot,
    attach_marketo,
    attach_salesforce,
)
from leadflow.sandbox.salesforce import ORG_ID, Org
from leadflow.sandbox.salesforce import create_app as salesforce_app
from leadflow.sandbox.server import BackgroundServer

T0 = 1_790_000_000.0  # an epoch second in 2026
NS = {"soapenv": "http://schemas.xmlsoap.org/soap/envelope/", "om": "http://soap.sforce.com/2005/09/outbound",
      "sf": "urn:sobject.enterprise.soap.sforce.com", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
ACK = ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
       'envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>{}</Ack>'
       '</notificationsResponse></soapenv:Body></soapenv:Envelope>')
HUBSPOT_KEYS = {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "subscriptionType", "attemptNumber",
                "objectId", "changeSource"}


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Receiver:
    """A tiny listener: records every request; answers from a script of (status, body), else as a happy listener
    of each system (an Ack for Salesforce, 204 otherwise)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[tuple[int, str]] = deque()
        self.arrived = threading.Event()
        self.wanted: dict[str, int] = {}
        """path → requests that, once all arrived, set `arrived`."""
        self.app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])
        self.client = TestClient(self.app)

    async def handle(self, request: Request) -> Response:
        path = request.url.path.strip("/")
        self.requests.append({"path": path, "url": str(request.url), "headers": dict(request.headers),
                              "body": await request.body()})
        paths = [r["path"] for r in self.requests]
        if self.wanted and all(paths.count(path) >= n for path, n in self.wanted.items()):
            self.arrived.set()
        if self.replies:
            status, text = self.replies.popleft()
            return Response(text, status, media_type="text/xml" if path == "salesforce" else "text/plain")
        if path == "salesforce":
            return Response(ACK.format("true"), 200, media_type="text/xml")
        return Response(status_code=204)

    def transport(self, url: str, body: bytes, headers: dict[str, str], timeout: float, verify: Any) -> tuple[int, str]:
        reply = self.client.post(url, content=body, headers=headers)
        return reply.status_code, reply.text


def signature_v3(secret: str, url: str, body: bytes, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), b"POST" + url.encode() + body + timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def notifications(body: bytes) -> ElementTree.Element:
    envelope = ElementTree.fromstring(body)
    assert envelope.tag == f"{{{NS['soapenv']}}}Envelope"
    found = envelope.find("soapenv:Body/om:notifications", NS)
    assert found is not None
    return found


# ------------------------------------------------------------------------------------------------- Salesforce


@pytest.fixture
def org() -> Org:
    return Org()


def salesforce_client(org: Org) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(salesforce_app(org))
    token = client.post("/services/oauth2/token", data={
        "grant_type": "password", "client_id": org.client_id, "client_secret": org.client_secret,
        "username": org.username, "password": org.password}).json()["access_token"]
    return client, {"Authorization": f"Bearer {token}"}


def test_salesforce_outbound_message_shape_for_leads_and_contacts(org: Org) -> None:
    rx, clock = Receiver(), Clock()
    box = attach_salesforce(org, "https://127.0.0.1:8443", PushTarget("http://testserver/salesforce"), clock=clock,
                            transport=rx.transport)
    client, auth = salesforce_client(org)
    data = "/services/data/v59.0"
    created = [client.post(f"{data}/sobjects/Lead/", json={"LastName": f"L{i}", "Company": "Acme"},
                           headers=auth).json()["id"] for i in range(3)]
    assert client.patch(f"{data}/sobjects/Lead/{created[0]}", json={"Company": "Acme Corp"},
                        headers=auth).status_code == 204
    contact = client.post(f"{data}/sobjects/Contact/", json={"LastName": "C"}, headers=auth).json()["id"]
    client.post(f"{data}/sobjects/Account/", json={"Name": "No outbound message on accounts"}, headers=auth)
    attempts = box.deliver_due()
    assert [a.outcome for a in attempts] == ["delivered", "delivered"] and len(rx.requests) == 2
    by_type: dict[str, ElementTree.Element] = {}
    for request in rx.requests:
        assert request["headers"]["content-type"] == "text/xml; charset=utf-8"
        assert request["headers"]["soapaction"] == '""'
        root = notifications(request["body"])
        assert root.findtext("om:OrganizationId", namespaces=NS) == ORG_ID and len(ORG_ID) == 18
        assert root.findtext("om:ActionId", namespaces=NS).startswith("04k")
        assert root.find("om:SessionId", NS).get(f"{{{NS['xsi']}}}nil") == "true"
        assert root.findtext("om:EnterpriseUrl", namespaces=NS) == f"https://127.0.0.1:8443/services/Soap/c/60.0/{ORG_ID[:15]}"
        assert root.findtext("om:PartnerUrl", namespaces=NS) == f"https://127.0.0.1:8443/services/Soap/u/60.0/{ORG_ID[:15]}"
        sobject_type = root.find("om:Notification/om:sObject", NS).get(f"{{{NS['xsi']}}}type")
        by_type[sobject_type] = root
    leads, contacts = by_type["sf:Lead"], by_type["sf:Contact"]
    assert leads.findtext("om:ActionId", namespaces=NS) != contacts.findtext("om:ActionId", namespaces=NS)
    lead_notes = leads.findall("om:Notification", NS)
    # Three creates and one update, each its own notification (with the record's latest stamps).
    assert [n.findtext("om:sObject/sf:Id", namespaces=NS) for n in lead_notes] == created + created[:1]
    ids = [n.findtext("om:Id", namespaces=NS) for n in lead_notes]
    assert all(i.startswith("04l") and len(i) == 18 for i in ids) and len(set(ids)) == 4
    for note in lead_notes:
        record = org.get("Lead", note.findtext("om:sObject/sf:Id", namespaces=NS))
        assert note.findtext("om:sObject/sf:SystemModstamp", namespaces=NS) == record["SystemModstamp"][:-5] + "Z"
        assert note.findtext("om:sObject/sf:LastModifiedDate", namespaces=NS) == record["LastModifiedDate"][:-5] + "Z"
    assert [n.findtext("om:sObject/sf:Id", namespaces=NS) for n in contacts.findall("om:Notification", NS)] == [contact]


def test_salesforce_batches_up_to_100_notifications(org: Org) -> None:
    rx = Receiver()
    box = attach_salesforce(org, "https://sf", PushTarget("http://testserver/salesforce"), clock=Clock(),
                            transport=rx.transport)
    for i in range(230):
        org.put("Lead", {"LastName": f"L{i}", "Company": "Acme"})
    box.deliver_due()
    sizes = [len(notifications(r["body"]).findall("om:Notification", NS)) for r in rx.requests]
    assert sizes == [100, 100, 30] and box.pending() == 0


def test_salesforce_retries_until_acknowledged(org: Org) -> None:
    rx, clock = Receiver(), Clock()
    box = attach_salesforce(org, "https://sf", PushTarget("http://testserver/salesforce"), clock=clock,
                            transport=rx.transport)
    org.put("Lead", {"LastName": "A", "Company": "Acme"})
    # A 200 without an Ack, an Ack false and a 500 are all failures; then an Ack true is delivered.
    rx.replies.extend([(200, "<ok/>"), (200, ACK.format("false")), (500, "boom")])
    first = box.deliver_due()
    assert first[0].outcome == "retry" and first[0].error == "not acknowledged"
    assert first[0].next_due == T0 + 15
    assert box.deliver_due(T0 + 14.9) == [] and len(rx.requests) == 1
    second = box.deliver_due(T0 + 15)
    assert second[0].outcome == "retry" and second[0].next_due == T0 + 15 + 30
    third = box.deliver_due(T0 + 45)
    assert third[0].status == 500 and third[0].outcome == "retry" and third[0].next_due == T0 + 45 + 60
    fourth = box.deliver_due(T0 + 105)
    assert fourth[0].outcome == "delivered" and box.pending() == 0
    # The same notification every time: the listener dedupes on its id.
    ids = {notifications(r["body"]).findtext("om:Notification/om:Id", namespaces=NS) for r in rx.requests}
    assert len(rx.requests) == 4 and len(ids) == 1


def test_salesforce_retry_schedule_backs_off_to_two_hours_and_drops_after_a_day(org: Org) -> None:
    def down(*_: Any) -> tuple[int, str]:
        raise requests.ConnectionError("connection refused")

    box = attach_salesforce(org, "https://sf", PushTarget("http://127.0.0.1:9/x"), clock=Clock(), transport=down)
    org.put("Lead", {"LastName": "A", "Company": "Acme"})
    now, log = T0, []
    while True:
        (attempt,) = box.deliver_due(now)
        log.append(attempt)
        if attempt.next_due is None:
            break
        now = attempt.next_due
    gaps = [b.at - a.at for a, b in zip(log, log[1:])]
    assert gaps[:4] == [15, 30, 60, 120] and max(gaps) == SALESFORCE_RETRY.max_delay == 7200
    assert gaps == sorted(gaps) and log[-1].at - T0 <= 86_400 < log[-1].at - T0 + 7200
    assert log[-1].outcome == "gave_up" and "ConnectionError" in log[-1].error and box.pending() == 0


def test_salesforce_time_scale_shrinks_the_schedule(org: Org) -> None:
    rx = Receiver()
    box = attach_salesforce(org, "https://sf", PushTarget("http://testserver/salesforce"), clock=Clock(),
                            transport=rx.transport, time_scale=0.001)
    org.put("Lead", {"LastName": "A", "Company": "Acme"})
    rx.replies.append((503, ""))
    (attempt,) = box.deliver_due()
    assert attempt.next_due == pytest.approx(T0 + 0.015)
    assert box.deliver_due(T0 + 0.015)[0].outcome == "delivered"


# ------------------------------------------------------------------------------------------------- HubSpot


def hubspot_box(portal: Portal, rx: Receiver, clock: Clock, secret: str = "client-secret-1",
                **options: Any) -> Any:
    return attach_hubspot(portal, PushTarget("http://testserver/hubspot", secret), clock=clock,
                          transport=rx.transport, seed=1, **options)


def test_hubspot_webhooks_shape_and_signature() -> None:
    rx, clock = Receiver(), Clock()
    portal = Portal(now_ms=lambda: 1_790_000_000_123)
    box = hubspot_box(portal, rx, clock)
    client = TestClient(hubspot_app(portal))
    auth = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    made = client.post("/crm/v3/objects/contacts", json={"properties": {"email": "a@acme.com", "firstname": "Ann"}},
                       headers=auth).json()
    cid = made["id"]
    # A change to firstname and a value that stays the same (email): one propertyChange event.
    client.patch(f"/crm/v3/objects/contacts/{cid}", json={"properties": {"firstname": "Anna", "email": "a@acme.com"}},
                 headers=auth)
    client.post("/crm/v3/objects/contacts/batch/update", json={"inputs": [
        {"id": cid, "properties": {"hs_lead_status": "OPEN"}}]}, headers=auth)
    (attempt,) = box.deliver_due()
    assert attempt.outcome == "delivered" and attempt.events == 3
    (request,) = rx.requests
    headers, body = request["headers"], request["body"]
    assert headers["x-hubspot-request-timestamp"] == str(int(T0 * 1000))
    assert headers["x-hubspot-signature-version"] == "v3"
    assert headers["content-type"] == "application/json"
    assert headers["x-hubspot-signature-v3"] == signature_v3("client-secret-1", "http://testserver/hubspot", body,
                                                             headers["x-hubspot-request-timestamp"])
    assert headers["x-hubspot-signature-v3"] != signature_v3("another-secret", "http://testserver/hubspot", body,
                                                             headers["x-hubspot-request-timestamp"])
    events = json.loads(body)
    assert isinstance(events, list) and [e["subscriptionType"] for e in events] == [
        "contact.creation", "contact.propertyChange", "contact.propertyChange"]
    creation, first_change, second_change = events
    assert set(creation) == HUBSPOT_KEYS
    assert set(first_change) == set(second_change) == HUBSPOT_KEYS | {"propertyName", "propertyValue"}
    assert (first_change["propertyName"], first_change["propertyValue"]) == ("firstname", "Anna")
    assert (second_change["propertyName"], second_change["propertyValue"]) == ("hs_lead_status", "OPEN")
    assert {e["objectId"] for e in events} == {int(cid)} and all(e["attemptNumber"] == 0 for e in events)
    assert creation["occurredAt"] == 1_790_000_000_123 and creation["changeSource"] == "API"
    assert len({e["eventId"] for e in events}) == 3
    assert first_change["subscriptionId"] != second_change["subscriptionId"] != creation["subscriptionId"]
    assert len({(e["portalId"], e["appId"]) for e in events}) == 1


def test_hubspot_batches_up_to_100_events() -> None:
    rx = Receiver()
    portal = Portal()
    seed_portal(portal, n=250)
    box = hubspot_box(portal, rx, Clock(), properties=("firstname",))
    for cid in portal.ids():
        portal.update(cid, {"firstname": f"New {cid}", "lastname": "not subscribed"})
    box.deliver_due()
    sizes = [len(json.loads(r["body"])) for r in rx.requests]
    assert sizes == [100, 100, 50]
    events = [e for r in rx.requests for e in json.loads(r["body"])]
    assert {e["propertyName"] for e in events} == {"firstname"} and len({e["eventId"] for e in events}) == 250


def test_hubspot_retries_a_500_then_succeeds_with_a_fresh_signature() -> None:
    rx, clock = Receiver(), Clock()
    portal = Portal()
    box = hubspot_box(portal, rx, clock)
    box.add(box.fmt.creation(101, 1_790_000_000_000))
    rx.replies.append((500, "down"))
    (failed,) = box.deliver_due()
    assert failed.outcome == "retry" and failed.status == 500
    delay = failed.next_due - T0
    assert 60 * 0.9 <= delay <= 60 * 1.1  # the first retry about a minute later, randomized
    assert box.deliver_due(failed.next_due - 0.001) == []
    clock.now = failed.next_due
    (ok,) = box.deliver_due()
    assert ok.outcome == "delivered"
    first, second = (json.loads(r["body"]) for r in rx.requests)
    assert [e["attemptNumber"] for e in first + second] == [0, 1] and first[0]["eventId"] == second[0]["eventId"]
    retry = rx.requests[1]["headers"]
    assert retry["x-hubspot-request-timestamp"] == str(int(failed.next_due * 1000))
    assert retry["x-hubspot-signature-v3"] == signature_v3("client-secret-1", "http://testserver/hubspot",
                                                           rx.requests[1]["body"], retry["x-hubspot-request-timestamp"])


def test_hubspot_gives_up_after_ten_retries_and_never_retries_final_statuses() -> None:
    rx, clock = Receiver(), Clock()
    box = hubspot_box(Portal(), rx, clock)
    box.add(box.fmt.creation(101, 1))
    rx.replies.extend([(503, "")] * 20)
    now, log = T0, []
    while True:
        (attempt,) = box.deliver_due(now)
        log.append(attempt)
        if attempt.next_due is None:
            break
        now = attempt.next_due
    assert len(log) == 1 + HUBSPOT_RETRY.max_retries == 11 and log[-1].outcome == "gave_up"
    assert log[-1].at - T0 < 86_400 and [json.loads(r["body"])[0]["attemptNumber"] for r in rx.requests] == list(
        range(11))
    rx.replies.clear()
    rx.requests.clear()
    box.add(box.fmt.creation(102, 2))
    rx.replies.append((401, "bad signature"))
    (refused,) = box.deliver_due(now)
    assert refused.outcome == "gave_up" and refused.next_due is None and box.pending() == 0


def test_hubspot_timeout_and_connection_failures_are_retried() -> None:
    def slow(url: str, body: bytes, headers: dict[str, str], timeout: float, verify: Any) -> tuple[int, str]:
        assert timeout == 5.0  # HubSpot waits five seconds for an answer
        raise requests.ReadTimeout("read timed out")

    box = attach_hubspot(Portal(), PushTarget("http://127.0.0.1:9/hubspot", "s"), clock=Clock(), transport=slow)
    box.add(box.fmt.creation(101, 1))
    (attempt,) = box.deliver_due()
    assert attempt.outcome == "retry" and "ReadTimeout" in attempt.error and attempt.status is None


# ------------------------------------------------------------------------------------------------- Marketo


def marketo_client(instance: MarketoInstance) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(marketo_app(instance))
    token = client.get("/identity/oauth/token", params={
        "grant_type": "client_credentials", "client_id": instance.client_id,
        "client_secret": instance.client_secret}).json()["access_token"]
    return client, {"Authorization": f"Bearer {token}"}


def test_marketo_webhook_per_lead_with_the_shared_secret_header() -> None:
    rx, clock = Receiver(), Clock()
    instance = MarketoInstance()
    box = attach_marketo(instance, PushTarget("http://testserver/marketo", "shh"), clock=clock,
                         transport=rx.transport)
    client, auth = marketo_client(instance)
    reply = client.post("/rest/v1/leads.json", json={"action": "createOrUpdate", "lookupField": "email", "input": [
        {"email": "a@acme.com", "firstName": "Ann"}, {"email": "b@acme.com"}]}, headers=auth).json()
    ids = [r["id"] for r in reply["result"]]
    client.post("/rest/v1/leads.json", json={"input": [{"email": "a@acme.com", "firstName": "Anna"},
                                                        {"email": "b@acme.com"}]}, headers=auth)  # b: no change
    attempts = box.deliver_due()
    assert [a.outcome for a in attempts] == ["delivered"] * 3 and [a.events for a in attempts] == [1, 1, 1]
    bodies = [json.loads(r["body"]) for r in rx.requests]
    assert [b["leadId"] for b in bodies] == [ids[0], ids[1], ids[0]]
    assert all(set(b) == {"leadId", "updatedAt", "email"} for b in bodies)
    assert bodies[2] == {"leadId": ids[0], "updatedAt": instance.leads[ids[0]]["updatedAt"], "email": "a@acme.com"}
    assert bodies[2]["updatedAt"].endswith("Z")
    for request in rx.requests:
        assert request["headers"]["x-leadflow-marketo-secret"] == "shh"
        assert request["headers"]["content-type"] == "application/json"


def test_marketo_never_retries() -> None:
    rx, clock = Receiver(), Clock()
    instance = MarketoInstance()
    box = attach_marketo(instance, PushTarget("http://testserver/marketo", "shh"), clock=clock,
                         transport=rx.transport)
    instance.leads[1001] = {"id": 1001, "email": None, "updatedAt": "2026-10-15T12:00:00Z"}
    instance.lead_changed(instance.leads[1001])
    rx.replies.append((500, "down"))
    (attempt,) = box.deliver_due()
    assert attempt.outcome == "gave_up" and attempt.next_due is None and box.pending() == 0
    assert box.deliver_due(T0 + 10 * 86_400) == [] and len(rx.requests) == 1
    assert json.loads(rx.requests[0]["body"])["email"] == ""


# ------------------------------------------------------------------------------------------------- off / on


def test_pushing_is_off_by_default(tmp_path: Path, org: Org) -> None:
    assert org.outbound is None and Portal().webhooks is None and MarketoInstance().webhook is None
    assert push_targets(tmp_path, {"salesforce": None, "hubspot": "", "marketo": None}) == {}
    with running_sandboxes(tmp_path, leads=20, systems=("hubspot", "marketo"), setup=False) as boxes:
        assert boxes.push == {} and not (tmp_path / "push.yaml").exists()
        assert boxes.handles["hubspot"].portal.webhooks is None and boxes.handles["marketo"].instance.webhook is None


def test_running_sandboxes_push_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_SANDBOX_MARKETO_WEBHOOK_SECRET", "from-env")
    monkeypatch.delenv("LEADFLOW_SANDBOX_HUBSPOT_CLIENT_SECRET", raising=False)
    rx = Receiver()
    rx.wanted = {"salesforce": 2, "hubspot": 1, "marketo": 1}
    rx.replies.append((500, "first Outbound Message fails"))
    with BackgroundServer(rx.app) as listener:
        urls = {name: f"{listener.url}/{name}" for name in ("salesforce", "hubspot", "marketo")}
        targets = push_targets(tmp_path, urls)
        with running_sandboxes(tmp_path, leads=20, setup=False, push=targets, push_time_scale=0.001) as boxes:
            config = yaml.safe_load((tmp_path / "push.yaml").read_text())
            sf = boxes.handles["salesforce"]
            with sf.session() as session:
                made = session.post(f"{sf.url}/services/data/v59.0/sobjects/Lead/", json={
                    "LastName": "Push", "Company": "Acme"}, headers={"Authorization": f"Bearer {sf.token()}"})
            assert made.status_code == 201
            hubspot = boxes.handles["hubspot"]
            assert requests.post(f"{hubspot.url}/crm/v3/objects/contacts", json={"properties": {
                "email": "push@acme.com"}}, headers={"Authorization": f"Bearer {hubspot.token}"}).status_code == 201
            marketo = boxes.handles["marketo"]
            token = requests.get(f"{marketo.url}/identity/oauth/token", params={
                "grant_type": "client_credentials", "client_id": marketo.client_id,
                "client_secret": marketo.client_secret}).json()["access_token"]
            requests.post(f"{marketo.url}/rest/v1/leads.json", json={"input": [{"email": "push@acme.com"}]},
                          headers={"Authorization": f"Bearer {token}"})
            assert rx.arrived.wait(20), [r["path"] for r in rx.requests]
        # Leaving stopped the delivery threads (an attempt in flight completes first): the log is final.
        salesforce_log = list(boxes.push["salesforce"].log)
        assert boxes.handles["salesforce"].org.outbound is None  # detached on exit
    assert [a.outcome for a in salesforce_log] == ["retry", "delivered"]
    paths = [r["path"] for r in rx.requests]
    assert paths.count("salesforce") == 2 and {"hubspot", "marketo"} <= set(paths)
    hub = next(r for r in rx.requests if r["path"] == "hubspot")
    secret_file = Path(config["hubspot"]["secret"]["file"])
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    assert hub["headers"]["x-hubspot-signature-v3"] == signature_v3(
        secret, urls["hubspot"], hub["body"], hub["headers"]["x-hubspot-request-timestamp"])
    assert config["marketo"]["secret"] == {"env": "LEADFLOW_SANDBOX_MARKETO_WEBHOOK_SECRET"}
    assert next(r for r in rx.requests if r["path"] == "marketo")["headers"]["x-leadflow-marketo-secret"] == "from-env"
    assert config["salesforce"]["organization_id"] == ORG_ID and "secret" not in config["salesforce"]
    assert "from-env" not in (tmp_path / "push.yaml").read_text() and secret not in (tmp_path / "push.yaml").read_text()
