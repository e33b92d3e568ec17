"""Push intake over HTTP: each source's endpoint records and acknowledges a valid notification, refuses forged,
stale, oversized, rate-limited and malformed requests with nothing recorded, never echoes or logs a secret; and
`leadflow intake serve` as a real process, killed with -9 after answering, has lost nothing."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient
from typer.testing import CliRunner

from leadflow.intake.app import build_app
from leadflow.intake.config import IntakeConfig, IntakeSecrets
from leadflow.intake.verify import hubspot_signature, web_signature
from leadflow.store import StateStore

ORG = "00D5e000000AbCdEAK"
HUBSPOT_SECRET = "hs-client-secret-7f3a9c"
MARKETO_SECRET = "mkto-shared-secret-51d2"
WEB_SECRET = "web-hmac-secret-a8e4b0"
SECRETS = (HUBSPOT_SECRET, MARKETO_SECRET, WEB_SECRET)


# -- request bodies as the senders shape them (test_intake_verify imports these) ------------------------------------


def salesforce_message(org_id: str, notifications: list[tuple[str, str, str, str | None]],
                       session_id: str | None = "SESSION-00D5e-!AQcAQ") -> bytes:
    """An Outbound Message as Salesforce posts it (SOAP 1.1): `notifications` are (notification id, sObject type,
    record id, LastModifiedDate or None)."""
    items = "".join(
        f"<Notification><Id>{nid}</Id>"
        f'<sObject xsi:type="sf:{kind}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{rid}</sf:Id>" + (f"<sf:LastModifiedDate>{stamp}</sf:LastModifiedDate>" if stamp else "") +
        "</sObject></Notification>"
        for nid, kind, rid, stamp in notifications)
    session = f"<SessionId>{session_id}</SessionId>" if session_id else '<SessionId xsi:nil="true"/>'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId><ActionId>04k5e000000AbCdAAK</ActionId>{session}"
        "<EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D5e000000AbCd</EnterpriseUrl>"
        "<PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D5e000000AbCd</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode("utf-8")


def hubspot_events(*object_ids: int, occurred_at: int = 1_765_000_000_000) -> bytes:
    return json.dumps([
        {"eventId": 100 + i, "subscriptionId": 7, "portalId": 62515, "appId": 4, "occurredAt": occurred_at + i,
         "subscriptionType": "contact.creation", "attemptNumber": 0, "objectId": oid, "changeSource": "CRM"}
        for i, oid in enumerate(object_ids)]).encode()


def hubspot_headers(secret: str, url: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    ts = str(int((time.time() if at is None else at) * 1000))
    return {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ts,
            "X-HubSpot-Signature-v3": hubspot_signature(secret, "POST", url, body, ts)}


def web_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if at is None else at))
    return {"Content-Type": "application/json", "X-Leadflow-Timestamp": ts,
            "X-Leadflow-Signature": web_signature(secret, ts, body)}


def web_body(*leads: dict[str, Any]) -> bytes:
    return json.dumps({"leads": list(leads)}).encode()


# -- the app against a SQLite inbox --------------------------------------------------------------------------------


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _config(**overrides: Any) -> IntakeConfig:
    data: dict[str, Any] = {"sources": {
        "salesforce": {"organization_ids": [ORG[:15]]},
        "hubspot": {"client_secret": {"env": "LF_HS"}},
        "marketo": {"shared_secret": {"env": "LF_MKTO"}},
        "web": {"secret": {"env": "LF_WEB"}},
    }, "max_body_bytes": 4096}
    return IntakeConfig.model_validate(data | overrides)


SECRET_VALUES = IntakeSecrets(SecretStr(HUBSPOT_SECRET), SecretStr(MARKETO_SECRET), SecretStr(WEB_SECRET))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(f"sqlite:///{(tmp_path / 'state.db').as_posix()}") as opened:
        yield opened


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def client(store: StateStore, clock: FakeMonotonic) -> Iterator[TestClient]:
    with TestClient(build_app(_config(), SECRET_VALUES, store, monotonic=clock)) as test_client:
        yield test_client


def _rows(store: StateStore) -> list[tuple[str, str, str, str]]:
    frame = store.inbox_notifications()
    return list(zip(frame["system"], frame["object"], frame["record_id"], frame["modstamp"], strict=True))


def test_salesforce_outbound_message_is_recorded_and_acknowledged(client: TestClient, store: StateStore) -> None:
    body = salesforce_message(ORG, [("04l000000000001AAA", "Lead", "00Q5e000001AbCdEAA", "2026-12-01T10:00:00.000Z"),
                                    ("04l000000000002AAA", "Contact", "0035e000001AbCdEAA", None)])
    response = client.post("/intake/salesforce", content=body, headers={"Content-Type": "text/xml; charset=utf-8",
                                                                        "SOAPAction": '""'})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\"><Ack>true</Ack>" in response.text
    assert _rows(store) == [("salesforce", "Lead", "00Q5e000001AbCdEAA", "2026-12-01T10:00:00.000Z"),
                            ("salesforce", "Contact", "0035e000001AbCdEAA", "notification:04l000000000002AAA")]
    assert "SESSION" not in json.dumps(store.inbox_notifications()["payload"].tolist())  # a session id is not kept
    # Salesforce delivers again (its ack was lost): acknowledged, nothing new
    again = client.post("/intake/salesforce", content=body)
    assert again.status_code == 200 and "<Ack>true</Ack>" in again.text
    assert len(_rows(store)) == 2


def test_hubspot_webhook_is_recorded(client: TestClient, store: StateStore) -> None:
    body = hubspot_events(501, 502)
    response = client.post("/intake/hubspot", content=body,
                           headers=hubspot_headers(HUBSPOT_SECRET, "http://testserver/intake/hubspot", body))
    assert response.status_code == 200 and response.json() == {"recorded": 2, "duplicates": 0, "ignored": 0}
    assert [r[:3] for r in _rows(store)] == [("hubspot", "contact", "501"), ("hubspot", "contact", "502")]


def test_hubspot_signs_the_public_url_behind_a_proxy(store: StateStore) -> None:
    app = build_app(_config(public_url="https://leads.example.com/hooks"), SECRET_VALUES, store)
    body = hubspot_events(7)
    with TestClient(app) as client:
        internal = client.post("/intake/hubspot?portal=1", content=body, headers=hubspot_headers(
            HUBSPOT_SECRET, "http://testserver/intake/hubspot?portal=1", body))
        assert internal.status_code == 401 and store.inbox_counts()["pending"] == 0
        public = client.post("/intake/hubspot?portal=1", content=body, headers=hubspot_headers(
            HUBSPOT_SECRET, "https://leads.example.com/hooks/intake/hubspot?portal=1", body))
        assert public.status_code == 200 and store.inbox_counts()["pending"] == 1


def test_marketo_webhook_is_recorded(client: TestClient, store: StateStore) -> None:
    body = b'{"leadId": 1001, "updatedAt": "2026-12-01 10:00:00", "email": "ann@acme.com"}'
    response = client.post("/intake/marketo", content=body, headers={"X-Leadflow-Marketo-Secret": MARKETO_SECRET})
    assert response.status_code == 200 and response.json()["recorded"] == 1
    assert _rows(store) == [("marketo", "lead", "1001", "2026-12-01 10:00:00")]


def test_web_leads_are_recorded_with_the_lead(client: TestClient, store: StateStore) -> None:
    body = web_body({"lead_id": "form-1", "email": "ann@acme.com", "company": "Acme"}, {"lead_id": "form-2"})
    response = client.post("/intake/web", content=body, headers=web_headers(WEB_SECRET, body))
    assert response.status_code == 200 and response.json() == {"recorded": 2, "duplicates": 0, "ignored": 0}
    frame = store.inbox_notifications()
    assert frame["payload"].iloc[0] == {"lead_id": "form-1", "email": "ann@acme.com", "company": "Acme"}
    assert list(frame["record_id"]) == ["form-1", "form-2"] and frame["modstamp"].str.len().eq(64).all()


def test_the_same_notification_twice_is_one_row(client: TestClient, store: StateStore) -> None:
    body = web_body({"lead_id": "form-1", "email": "ann@acme.com"})
    first = client.post("/intake/web", content=body, headers=web_headers(WEB_SECRET, body))
    second = client.post("/intake/web", content=body, headers=web_headers(WEB_SECRET, body))
    assert first.json()["recorded"] == 1 and second.json() == {"recorded": 0, "duplicates": 1, "ignored": 0}
    events = hubspot_events(501)
    for _ in range(2):
        assert client.post("/intake/hubspot", content=events, headers=hubspot_headers(
            HUBSPOT_SECRET, "http://testserver/intake/hubspot", events)).status_code == 200
    assert store.inbox_counts()["pending"] == 2


def _refusals(client: TestClient) -> list[tuple[str, httpx.Response, int]]:
    """Every kind of refusal: (what, response, expected status)."""
    url = "http://testserver/intake/hubspot"
    events = hubspot_events(501)
    forged = hubspot_headers("not-the-secret", url, events)
    stale = hubspot_headers(HUBSPOT_SECRET, url, events, at=time.time() - 301)
    lead = web_body({"lead_id": "form-1"})
    bad_web = web_headers("not-the-secret", lead)
    big = web_body({"lead_id": "x", "company": "y" * 5000})
    return [
        ("forged hubspot", client.post("/intake/hubspot", content=events, headers=forged), 401),
        ("stale hubspot", client.post("/intake/hubspot", content=events, headers=stale), 400),
        ("unsigned hubspot", client.post("/intake/hubspot", content=events), 400),
        ("wrong org", client.post("/intake/salesforce", content=salesforce_message(
            "00D5e000000XyZaEAK"[:15], [("04l000000000001AAA", "Lead", "00Q5e000001AbCdEAA", None)])), 401),
        ("wrong org, not a Lead", client.post("/intake/salesforce", content=salesforce_message(
            "00D5e000000XyZa", [("04l000000000001AAA", "Account", "0015e000001AbCdEAA", None)])), 401),
        ("entity bomb", client.post("/intake/salesforce", content=b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>'), 400),
        ("oversized", client.post("/intake/web", content=big, headers=web_headers(WEB_SECRET, big)), 413),
        ("oversized, chunked", client.post("/intake/web", content=iter([b"{" + b" " * 3000, b" " * 3000 + b"}"]),
                                           headers=web_headers(WEB_SECRET, b"{}")), 413),
        ("bad web hmac", client.post("/intake/web", content=lead, headers=bad_web), 401),
        ("stale web", client.post("/intake/web", content=lead, headers=web_headers(WEB_SECRET, lead,
                                                                                  at=time.time() - 400)), 400),
        ("not canonical", client.post("/intake/web", content=(b2 := web_body({"lead_id": "a", "e_mail": "x"})),
                                      headers=web_headers(WEB_SECRET, b2)), 422),
        ("malformed web", client.post("/intake/web", content=b"{", headers=web_headers(WEB_SECRET, b"{")), 400),
        ("wrong marketo secret", client.post("/intake/marketo", content=b'{"leadId": 1, "updatedAt": "x"}',
                                             headers={"X-Leadflow-Marketo-Secret": "guess"}), 401),
        ("no marketo secret", client.post("/intake/marketo", content=b'{"leadId": 1, "updatedAt": "x"}'), 401),
    ]


def test_refusals_record_nothing_and_never_show_a_secret(
    client: TestClient, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refusals = _refusals(client)
    for what, response, status in refusals:
        assert response.status_code == status, (what, response.status_code, response.text)
        for secret in SECRETS:
            assert secret not in response.text, what
    assert store.inbox_counts() == {"pending": 0, "claimed": 0, "done": 0, "failed": 0}
    wrong_org = dict((what, r) for what, r, _ in refusals)["wrong org"]
    assert "<faultstring>OrganizationId is not a configured organization</faultstring>" in wrong_org.text
    assert "did you mean 'email'?" in dict((w, r) for w, r, _ in refusals)["not canonical"].json()["error"]
    assert caplog.text.count("refused a request") == len(refusals)
    for secret in SECRETS:
        assert secret not in caplog.text
    # nor any signature or secret header value that was sent
    for _, response, _ in refusals:
        for name in ("x-hubspot-signature-v3", "x-leadflow-signature", "x-leadflow-marketo-secret"):
            value = response.request.headers.get(name)
            if value:
                assert value not in caplog.text and value not in response.text


def test_secrets_stay_out_of_logs_on_success(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = web_body({"lead_id": "form-1"})
    signed = web_headers(WEB_SECRET, body)
    assert client.post("/intake/web", content=body, headers=signed).status_code == 200
    assert "recorded 1 new" in caplog.text
    assert WEB_SECRET not in caplog.text and signed["X-Leadflow-Signature"] not in caplog.text


def test_rate_limit_answers_429_with_retry_after(store: StateStore, clock: FakeMonotonic) -> None:
    config = _config(rate_limit={"requests_per_second": 0.5, "burst": 2})
    with TestClient(build_app(config, SECRET_VALUES, store, monotonic=clock)) as client:
        def post(lead_id: str) -> httpx.Response:
            body = web_body({"lead_id": lead_id})
            return client.post("/intake/web", content=body, headers=web_headers(WEB_SECRET, body))

        assert [post("a").status_code, post("b").status_code] == [200, 200]
        limited = post("c")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        # another source has its own bucket
        body = b'{"leadId": 1, "updatedAt": "x"}'
        assert client.post("/intake/marketo", content=body,
                           headers={"X-Leadflow-Marketo-Secret": MARKETO_SECRET}).status_code == 200
        clock.now += 2.0  # one token back
        assert post("c").status_code == 200
    assert sorted(store.inbox_notifications(system="web")["record_id"]) == ["a", "b", "c"]


def test_a_store_that_cannot_write_answers_503(client: TestClient, store: StateStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise ConnectionError("database is down")

    monkeypatch.setattr(store, "record_notifications", broken)
    body = web_body({"lead_id": "form-1"})
    response = client.post("/intake/web", content=body, headers=web_headers(WEB_SECRET, body))
    assert response.status_code == 503
    sf = client.post("/intake/salesforce", content=salesforce_message(ORG, [("04l000000000001AAA", "Lead",
                                                                             "00Q5e000001AbCdEAA", None)]))
    assert sf.status_code == 503 and "<Ack>" not in sf.text and "soapenv:Server" in sf.text


def test_healthz_and_unconfigured_sources(store: StateStore) -> None:
    config = IntakeConfig.model_validate({"sources": {"web": {"secret": {"env": "LF_WEB"}}}})
    with TestClient(build_app(config, IntakeSecrets(web=SecretStr(WEB_SECRET)), store)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "sources": ["web"]}
        assert client.post("/intake/hubspot", content=b"[]").status_code == 404
        assert client.get("/intake/web").status_code == 405


def test_an_id_the_inbox_cannot_hold_is_refused_not_retried(client: TestClient, store: StateStore) -> None:
    body = json.dumps({"leadId": int("9" * 120), "updatedAt": "x"}).encode()
    response = client.post("/intake/marketo", content=body, headers={"X-Leadflow-Marketo-Secret": MARKETO_SECRET})
    assert response.status_code == 400 and "longer than 100" in response.json()["error"]
    assert store.inbox_counts()["pending"] == 0


def test_serves_https_with_the_configured_certificate(tmp_path: Path, store: StateStore) -> None:
    from leadflow.intake.service import check_tls
    from leadflow.pipeline.errors import ConfigError
    from leadflow.sandbox.server import BackgroundServer
    from leadflow.sandbox.tls import self_signed_certificate

    cert, key = self_signed_certificate(tmp_path)
    config = _config(tls={"certfile": str(cert), "keyfile": str(key)})
    check_tls(config)
    with BackgroundServer(build_app(config, SECRET_VALUES, store), certfile=cert, keyfile=key) as server:
        body = web_body({"lead_id": "tls-1"})
        response = httpx.post(f"{server.url}/intake/web", content=body, headers=web_headers(WEB_SECRET, body),
                              verify=str(cert))
    assert server.url.startswith("https://") and response.status_code == 200
    with pytest.raises(ConfigError, match=r"tls: cannot load the TLS certificate and key"):
        check_tls(_config(tls={"certfile": str(key), "keyfile": str(key)}))


# -- `leadflow intake serve` ---------------------------------------------------------------------------------------

runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(tmp_path: Path) -> Path:
    (tmp_path / "web.key").write_text(WEB_SECRET + "\n", encoding="utf-8")
    path = tmp_path / "intake.yaml"
    path.write_text(f"""intake:
  sources:
    salesforce: {{organization_ids: ["{ORG}"]}}
    hubspot: {{client_secret: {{env: LF_TEST_HUBSPOT_SECRET}}}}
    web: {{secret: {{file: {(tmp_path / 'web.key').as_posix()}}}}}
""", encoding="utf-8")
    return path


def test_serve_reports_bad_config_missing_secret_and_busy_port_in_one_line(
    tmp_path: Path, state_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadflow.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("intake:\n  prot: 80\n  sources: {web: {secret: {env: X}}}\n", encoding="utf-8")
    result = runner.invoke(app, ["intake", "serve", "--config", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        f"error: {bad}: intake.prot: unknown key 'prot'; did you mean 'port'?"]

    config = _write_config(tmp_path)
    monkeypatch.delenv("LF_TEST_HUBSPOT_SECRET", raising=False)
    result = runner.invoke(app, ["intake", "serve", "--config", str(config)])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: {config}: intake.sources.hubspot.client_secret: environment variable LF_TEST_HUBSPOT_SECRET is "
        "not set"]

    monkeypatch.setenv("LF_TEST_HUBSPOT_SECRET", HUBSPOT_SECRET)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["intake", "serve", "--config", str(config), "--port", str(port)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: the port is in use (another intake service?)"]
    assert HUBSPOT_SECRET not in result.output and WEB_SECRET not in result.output


def test_serve_records_before_answering_and_a_kill_9_loses_nothing(tmp_path: Path) -> None:
    config, port, home = _write_config(tmp_path), _free_port(), tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "LEADFLOW_DATABASE_URL"} | {
        "LEADFLOW_HOME": str(home), "LF_TEST_HUBSPOT_SECRET": HUBSPOT_SECRET}
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "leadflow.cli", "intake", "serve", "--config", str(config),
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # readiness: the service answers /healthz once it listens
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "intake serve did not answer /healthz within 60 s"
            try:  # wait on the process, so one that dies at start is seen at once
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        lead = web_body({"lead_id": "form-9", "email": "kim@acme.com"})
        assert httpx.post(f"{base}/intake/web", content=lead, headers=web_headers(WEB_SECRET, lead)).status_code == 200
        events = hubspot_events(901)
        answered = httpx.post(f"{base}/intake/hubspot", content=events,
                              headers=hubspot_headers(HUBSPOT_SECRET, f"{base}/intake/hubspot", events))
        assert answered.status_code == 200
        forged = httpx.post(f"{base}/intake/hubspot", content=events,
                            headers=hubspot_headers("forged", f"{base}/intake/hubspot", events))
        assert forged.status_code == 401
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        log.close()
    with StateStore.open(f"sqlite:///{(home / 'state.db').as_posix()}") as store:
        frame = store.inbox_notifications()
    assert sorted(zip(frame["system"], frame["record_id"], strict=True)) == [("hubspot", "901"), ("web", "form-9")]
    output = (tmp_path / "serve.log").read_text()
    assert "leadflow intake on http://127.0.0.1" in output and "refused a request" in output
    for secret in SECRETS:
        assert secret not in output
