"""Owner notifications end to end: leads routed by `route_leads`, messages built and sent to a real local HTTP server
speaking Slack's incoming-webhook and chat.postMessage protocols and a real local SMTP server (aiosmtpd) — with
the lead, company, why, the SLA due time in the owner's zone and the record link; digests for bulk runs; per-owner
failures (429, ok:false, SMTP refusals) reported without a traceback or a secret; config errors naming the YAML path."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from leadflow.notify import (
    NotificationsConfig,
    build_messages,
    load_notifications,
    newly_assigned,
    notify_owners,
    send_notifications,
    summarize,
)
from leadflow.pipeline.errors import ConfigError, LeadflowError
from leadflow.routing import RoutingConfig, RoutingState, route_leads
from leadflow.sandbox.tls import self_signed_certificate

# Wednesday 2026-11-18 15:00 UTC: 16:00 in Berlin, 10:00 in New York.
RUN_AT = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
ANN, BEN, CAI = "0058c00000AnnQQ", "0058c00000BenQQ", "0058c00000CaiQQ"
WEBHOOK_SECRET = "T000/B000/s3cr3t-hook-token"
BOT_TOKEN = "xoxb-s3cr3t-bot-token"
SMTP_PASSWORD = "s3cr3t-smtp-password"

ROUTING = RoutingConfig.model_validate({
    "version": "t1",
    "timezone": "America/New_York",
    "users": {ANN: {"name": "Ann Lee", "timezone": "Europe/Berlin"}, BEN: {"name": "Ben Ode"},
              CAI: {"name": "Cai Wu", "timezone": "Asia/Tokyo"}},
    "rules": [
        {"name": "demo_fast_lane", "when": {"column": "lead_source", "equals": "Demo"}, "assign_to": ANN,
         "sla_minutes": 30, "sla_working_hours": False},
        {"name": "enterprise", "when": {"column": "lead_source", "equals": "Event"}, "assign_to": CAI,
         "sla_minutes": 60, "sla_working_hours": False},
        {"name": "everyone_else", "assign_to": BEN, "sla_minutes": 240, "sla_working_hours": False},
    ],
})


def routed(rows: list[dict[str, Any]], as_of: datetime = RUN_AT) -> pd.DataFrame:
    """The leads with the assign stage's columns, routed for real, plus score columns as the score stage writes."""
    frame = pd.DataFrame(rows).astype("string")
    out, _ = route_leads(frame, ROUTING, RoutingState(), as_of=as_of)
    return pd.concat([frame, out], axis=1)


def lead(n: int, source: str, company: str = "Acme GmbH", **extra: Any) -> dict[str, Any]:
    return {"lead_id": f"00Q5e{n:010d}", "first_name": f"Person{n}", "last_name": "Doe", "company": company,
            "lead_source": source, "rating": "A1", "score": "85",
            "score_reasons": "+25 VP or above; +20 Demo request", **extra}


# -- local servers ---------------------------------------------------------------------------------------------------
Respond = Callable[[str, dict[str, Any], dict[str, str]], tuple[int, dict[str, str], Any]]


class Receiver:
    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        self.url = ""


@contextmanager
def http_receiver(respond: Respond | None = None) -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 recording every POST (path, headers, JSON body) and answering `respond`."""
    receiver = Receiver(respond or (lambda path, body, headers: (200, {}, b"ok")))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = dict(self.headers.items())
            receiver.requests.append({"path": self.path, "headers": headers, "json": body})
            status, extra, payload = receiver.respond(self.path, body, headers)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class Inbox:
    """aiosmtpd handler: keeps every accepted message, refuses the recipients in `refuse` with 550."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.mails: list[EmailMessage] = []
        self.refuse = set(refuse)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's
        self.mails.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mails if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(inbox: Inbox, **options: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture()
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False  # no proxy between the test and its own 127.0.0.1 servers
        yield s


OWNERS: dict[str, dict[str, str]] = {
    ANN: {"email": "ann@example.com", "slack_user": "U0ANN"},
    BEN: {"email": "ben@example.com", "slack_user": "U0BEN", "timezone": "America/Chicago"},
    CAI: {"name": "Cai (APAC)", "slack_channel": "C0APAC"},
}


def settings(**parts: Any) -> NotificationsConfig:
    data: dict[str, Any] = {"owners": OWNERS, "record_url": "https://acme.my.salesforce.com"}
    data.update(parts)
    return NotificationsConfig.model_validate(data)


def webhook(**extra: Any) -> dict[str, Any]:
    return {"webhook_url": {"env": "SLACK_WEBHOOK_URL"}, **extra}


def smtp(port: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from": "leadflow <leads@example.com>", **extra}


def link(n: int) -> str:
    return f"https://acme.my.salesforce.com/lightning/r/Lead/00Q5e{n:010d}/view"


# -- the happy path --------------------------------------------------------------------------------------------------
def test_each_new_lead_reaches_slack_and_smtp_with_why_when_and_link(session: requests.Session) -> None:
    leads = routed([lead(1, "Demo"), lead(2, "Web", company="Globex Inc")])
    inbox = Inbox()
    with http_receiver() as slack, smtp_server(inbox) as port:
        config = settings(slack=webhook(), email=smtp(port))
        env = {"SLACK_WEBHOOK_URL": f"{slack.url}/services/{WEBHOOK_SECRET}"}
        deliveries = notify_owners(leads, config, since=RUN_AT, routing=ROUTING, session=session, environ=env)

    assert [(d.owner_id, d.channel, d.status, d.messages, d.leads) for d in deliveries] == [
        (ANN, "slack", "sent", 1, 1), (ANN, "email", "sent", 1, 1),
        (BEN, "slack", "sent", 1, 1), (BEN, "email", "sent", 1, 1),
    ]
    assert summarize(deliveries) == {"slack_sent": 2, "email_sent": 2, "leads_notified": 4}
    assert [r["path"] for r in slack.requests] == [f"/services/{WEBHOOK_SECRET}"] * 2
    ann_post, ben_post = (r["json"]["text"] for r in slack.requests)
    # Ann: the demo fast lane, 30 minutes, shown in Berlin time; Ben: the fallback, 4 hours, in his Chicago time.
    assert ann_post.startswith("<@U0ANN> Ann Lee, a new lead is yours: Person1 Doe at Acme GmbH.")
    assert "rule demo_fast_lane: assigned to Ann Lee" in ann_post
    assert "Score 85 (A1): +25 VP or above; +20 Demo request" in ann_post
    assert "First touch due by 2026-11-18T16:30:00+01:00 (Europe/Berlin)" in ann_post
    assert f"<{link(1)}>" in ann_post
    assert "Globex Inc" in ben_post and "2026-11-18T13:00:00-06:00 (America/Chicago)" in ben_post

    (mail,) = inbox.to("ann@example.com")
    assert mail["Subject"] == "New lead for you: Person1 Doe (Acme GmbH)"
    assert mail["From"] == "leadflow <leads@example.com>" and mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_content()
    assert "Person1 Doe at Acme GmbH" in body and "rule demo_fast_lane: assigned to Ann Lee" in body
    assert "2026-11-18T16:30:00+01:00 (Europe/Berlin)" in body and link(1) in body
    (ben_mail,) = inbox.to("ben@example.com")
    assert "Globex Inc" in ben_mail["Subject"] and link(2) in ben_mail.get_content()


def test_a_bulk_run_sends_each_owner_over_the_threshold_one_digest(session: requests.Session) -> None:
    # Ann gets 7 leads (over the threshold of 3: one digest listing the 2 most urgent), Ben 2 (one message each).
    rows = [lead(n, "Demo") for n in range(1, 8)] + [lead(n, "Web") for n in (8, 9)]
    leads = routed(rows)
    # Make the SLA order differ from the file order: lead 5 and lead 3 are due first.
    due = {5: "2026-11-18T15:05:00Z", 3: "2026-11-18T15:10:00Z"}
    for n, when in due.items():
        leads.loc[leads["lead_id"] == f"00Q5e{n:010d}", "sla_due_at"] = when
    inbox = Inbox()
    with http_receiver() as slack, smtp_server(inbox) as port:
        config = settings(slack=webhook(), email=smtp(port), batch_threshold=3, digest_max_lines=2)
        env = {"SLACK_WEBHOOK_URL": f"{slack.url}/services/{WEBHOOK_SECRET}"}
        deliveries = notify_owners(leads, config, since=RUN_AT, routing=ROUTING, session=session, environ=env)

    assert {(d.owner_id, d.channel): (d.status, d.messages, d.leads) for d in deliveries} == {
        (ANN, "slack"): ("sent", 1, 7), (ANN, "email"): ("sent", 1, 7),
        (BEN, "slack"): ("sent", 2, 2), (BEN, "email"): ("sent", 2, 2),
    }
    digest = slack.requests[0]["json"]["text"]
    assert digest.startswith("<@U0ANN> Ann Lee, 7 new leads are yours (most urgent first):\n")
    lines = digest.splitlines()[1:]
    assert lines[0].startswith("- Person5 Doe at Acme GmbH: due 2026-11-18T16:05:00+01:00 (Europe/Berlin)")
    assert lines[1].startswith("- Person3 Doe at Acme GmbH: due 2026-11-18T16:10:00+01:00 (Europe/Berlin)")
    assert lines[2:] == ["… and 5 more"]
    (mail,) = inbox.to("ann@example.com")
    # A long subject is folded onto a continuation line (RFC 5322 §2.2.3); the parser keeps the fold's space.
    assert mail["Subject"].strip() == "7 new leads for you, first due 2026-11-18T16:05:00+01:00 (Europe/Berlin)"
    assert link(5) in mail.get_content() and "… and 5 more" in mail.get_content()
    assert len(inbox.to("ben@example.com")) == 2


def test_only_leads_given_an_owner_in_this_run_are_announced() -> None:
    now = routed([lead(1, "Demo"), lead(2, "Web")])
    earlier = routed([lead(3, "Demo")], as_of=datetime(2026, 11, 17, 9, 0, tzinfo=UTC))
    held = now.iloc[[0]].assign(lead_id="00Q5e0000000099", owner_id=pd.NA, assigned_at=pd.NA,
                                routing_reason="hold: possible duplicate")
    kept = now.iloc[[0]].assign(lead_id="00Q5e0000000098", owner_id="005PERSON", routing_rule=pd.NA,
                                assigned_at=pd.NA, sla_due_at=pd.NA, routing_reason="kept: owned by a person")
    frame = pd.concat([now, earlier, held, kept], ignore_index=True)
    assert list(newly_assigned(frame, since=RUN_AT)["lead_id"]) == ["00Q5e0000000001", "00Q5e0000000002"]
    # A run start with microseconds still finds leads stamped to the second.
    assert len(newly_assigned(frame, since=RUN_AT.replace(microsecond=400_000))) == 2
    assert len(newly_assigned(frame)) == 3
    with pytest.raises(LeadflowError, match="missing: sla_due_at"):
        newly_assigned(frame.drop(columns="sla_due_at"))


def test_values_from_a_web_form_cannot_ping_or_forge_links_in_slack() -> None:
    leads = routed([lead(1, "Demo", company="<!channel> & <https://evil.example|Acme>", first_name="Eve\r\nBcc: x")])
    (message,) = build_messages(leads, settings(slack=webhook()), routing=ROUTING)
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|Acme&gt;" in message.slack_text
    assert "<!channel>" not in message.slack_text and "<https://evil" not in message.slack_text
    assert message.subject == "New lead for you: Eve Bcc: x Doe (<!channel> & <https://evil.example|Acme>)"
    assert "\n" not in message.subject and "\r" not in message.text


def test_record_links_and_owner_details_fall_back_sensibly() -> None:
    leads = routed([lead(1, "Demo"), {**lead(2, "Web"), "lead_id": "hubspot-123", "company": None}])
    config = settings(slack=webhook(), record_url=None, owners={})
    ann, ben = build_messages(leads, config, routing=ROUTING, record_url="https://org.my.salesforce.com/",
                              directory_emails={BEN: "ben@crm.example.com"})
    assert "https://org.my.salesforce.com/lightning/r/Lead/00Q5e0000000001/view" in ann.text
    assert ann.email is None and ann.slack_user is None and not ann.slack_text.startswith("<@")
    assert ben.email == "ben@crm.example.com" and ben.owner_name == "Ben Ode"
    assert "(no CRM record link)" in ben.text and "a new lead is yours: Person2 Doe at —." in ben.text
    # Ben has no zone of his own: the routing config's (New York).
    assert "2026-11-18T14:00:00-05:00 (America/New_York)" in ben.text


# -- Slack Web API ---------------------------------------------------------------------------------------------------
def test_bot_token_posts_to_the_owners_dm_channel_or_the_default(session: requests.Session) -> None:
    dave = "005DAVE"
    leads = routed([lead(1, "Demo"), lead(2, "Web"), lead(3, "Event")])
    leads = pd.concat([leads, leads.iloc[[1]].assign(lead_id="00Q5e0000000004", owner_id=dave)], ignore_index=True)

    def respond(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        return 200, {"Content-Type": "application/json"}, {"ok": True, "channel": body["channel"], "ts": "1.2"}

    with http_receiver(respond) as api:
        bot = {"bot_token": {"env": "SLACK_BOT_TOKEN"}, "api_url": f"{api.url}/api"}
        owners = {**OWNERS, BEN: {k: v for k, v in OWNERS[BEN].items() if k != "slack_user"}}
        config = settings(slack=bot, owners=owners)
        deliveries = notify_owners(leads, config, since=RUN_AT, routing=ROUTING, session=session,
                                   environ={"SLACK_BOT_TOKEN": BOT_TOKEN})

    by_owner = {d.owner_id: d for d in deliveries}
    assert {k: d.status for k, d in by_owner.items()} == {ANN: "sent", BEN: "skipped", CAI: "sent", dave: "skipped"}
    assert "no Slack user or channel" in by_owner[dave].detail
    posts = [(r["path"], r["json"]["channel"], r["headers"]["Authorization"]) for r in api.requests]
    assert posts[:2] == [("/api/chat.postMessage", "U0ANN", f"Bearer {BOT_TOKEN}"),
                         ("/api/chat.postMessage", "C0APAC", f"Bearer {BOT_TOKEN}")]
    ann_dm, cai_post = api.requests[0]["json"]["text"], api.requests[1]["json"]["text"]
    assert not ann_dm.startswith("<@") and "2026-11-18T16:30:00+01:00 (Europe/Berlin)" in ann_dm
    assert "Cai (APAC)" in cai_post and "2026-11-19T01:00:00+09:00 (Asia/Tokyo)" in cai_post
    assert len(api.requests) == 2  # nothing posted for Ben (no Slack id) or Dave (not in `owners`)
    with http_receiver(respond) as api:
        config = settings(slack={**bot, "api_url": f"{api.url}/api", "default_channel": "#new-leads"}, owners=owners)
        deliveries = notify_owners(leads, config, routing=ROUTING, session=session,
                                   environ={"SLACK_BOT_TOKEN": BOT_TOKEN})
    assert {d.owner_id: d.status for d in deliveries} == {ANN: "sent", BEN: "sent", CAI: "sent", dave: "sent"}
    assert [r["json"]["channel"] for r in api.requests] == ["U0ANN", "#new-leads", "C0APAC", "#new-leads"]


def test_slack_429_and_ok_false_fail_only_their_owner(session: requests.Session,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    leads = routed([lead(1, "Demo"), lead(2, "Web"), lead(3, "Event")])
    calls: dict[str, int] = {}

    def respond(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        channel = body["channel"]
        calls[channel] = calls.get(channel, 0) + 1
        if channel == "U0ANN":  # always rate limited
            return 429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"}
        if channel == "U0BEN":
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if calls[channel] == 1:  # Cai's channel: rate limited once, then fine
            return 429, {"Retry-After": "2"}, {"ok": False, "error": "ratelimited"}
        return 200, {}, {"ok": True}

    waits: list[float] = []
    caplog.set_level(logging.WARNING)
    with http_receiver(respond) as api:
        config = settings(slack={"bot_token": {"env": "SLACK_BOT_TOKEN"}, "api_url": f"{api.url}/api"})
        deliveries = notify_owners(leads, config, routing=ROUTING, session=session, sleep=waits.append,
                                   environ={"SLACK_BOT_TOKEN": BOT_TOKEN})

    by_owner = {d.owner_id: d for d in deliveries}
    assert by_owner[ANN].status == "failed" and by_owner[ANN].messages == 0
    assert by_owner[ANN].detail == "gave up after 3 attempts (HTTP 429 rate limited, Retry-After 7 s)"
    assert by_owner[BEN].status == "failed"
    assert by_owner[BEN].detail == "Slack chat.postMessage to U0BEN refused: channel_not_found"
    assert (by_owner[CAI].status, by_owner[CAI].messages) == ("sent", 1)
    assert calls == {"U0ANN": 3, "U0BEN": 1, "C0APAC": 2}
    assert waits == [7.0, 7.0, 2.0]  # Retry-After honoured, by the injected sleep
    for detail in [d.detail for d in deliveries]:
        assert BOT_TOKEN not in detail and "\n" not in detail
    assert "U0BEN refused: channel_not_found" in caplog.text
    assert BOT_TOKEN not in caplog.text and "Traceback" not in caplog.text

    # A run's waits are bounded, all owners together: Ann's second wait would pass 10 s, Cai's 2 s still fits.
    calls.clear()
    waits.clear()
    with http_receiver(respond) as api:
        config = settings(slack={"bot_token": {"env": "SLACK_BOT_TOKEN"}, "api_url": f"{api.url}/api",
                                 "max_wait_seconds": 10})
        deliveries = notify_owners(leads, config, routing=ROUTING, session=session, sleep=waits.append,
                                   environ={"SLACK_BOT_TOKEN": BOT_TOKEN})
    by_owner = {d.owner_id: d for d in deliveries}
    assert by_owner[ANN].detail == ("Slack asked to wait 7 s more; this run's retry wait budget "
                                    "(notifications.slack.max_wait_seconds: 10 s) is spent")
    assert by_owner[CAI].status == "sent" and waits == [7.0, 2.0]


def test_webhook_refusal_and_unreachable_webhook_never_show_the_url(session: requests.Session) -> None:
    leads = routed([lead(1, "Demo"), lead(2, "Web")])

    def respond(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if "Ann Lee" in body["text"]:
            return 404, {}, b"no_service"
        return 200, {}, b"ok"

    with http_receiver(respond) as slack:
        env = {"SLACK_WEBHOOK_URL": f"{slack.url}/services/{WEBHOOK_SECRET}"}
        deliveries = notify_owners(leads, settings(slack=webhook()), routing=ROUTING, session=session, environ=env)
    assert [(d.owner_id, d.status, d.detail) for d in deliveries] == [
        (ANN, "failed", "Slack webhook refused the message: HTTP 404 no_service"), (BEN, "sent", "")]

    gone = f"http://127.0.0.1:{free_port()}/services/{WEBHOOK_SECRET}"  # nothing listens there
    waits: list[float] = []
    deliveries = notify_owners(leads, settings(slack=webhook(attempts=2)), routing=ROUTING, session=session,
                               sleep=waits.append, environ={"SLACK_WEBHOOK_URL": gone})
    assert {d.status for d in deliveries} == {"failed"}
    assert deliveries[0].detail == "gave up after 2 attempts (Slack webhook unreachable (ConnectionError))"
    assert all(WEBHOOK_SECRET not in d.detail and "127.0.0.1" not in d.detail for d in deliveries)
    assert waits == [1.0, 1.0]


# -- SMTP ------------------------------------------------------------------------------------------------------------
def test_an_smtp_refusal_fails_only_that_owner(session: requests.Session, caplog: pytest.LogCaptureFixture) -> None:
    leads = routed([lead(1, "Demo"), lead(2, "Web")])
    inbox = Inbox(refuse=("ann@example.com",))
    with smtp_server(inbox) as port:
        deliveries = notify_owners(leads, settings(email=smtp(port)), routing=ROUTING, session=session)
    assert [(d.owner_id, d.status) for d in deliveries] == [(ANN, "failed"), (BEN, "sent")]
    assert deliveries[0].detail == "SMTP refused recipient ann@example.com: 550 5.1.1 <ann@example.com>: mailbox " \
                                   "unavailable"
    assert [m["To"] for m in inbox.mails] == ["ben@example.com"]
    assert "ann@example.com" in caplog.text and "Traceback" not in caplog.text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def _server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


def test_starttls_and_login_and_a_refused_login(certificate: tuple[Path, Path]) -> None:
    leads = routed([lead(1, "Demo")])

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    inbox = Inbox()
    with smtp_server(inbox, tls_context=_server_tls(certificate), require_starttls=True, auth_required=True,
                     authenticator=authenticate) as port:
        email = smtp(port, security="starttls", username="leadflow", password={"env": "SMTP_PASSWORD"},
                     ca_file=str(certificate[0]))
        ok = notify_owners(leads, settings(email=email), routing=ROUTING, environ={"SMTP_PASSWORD": SMTP_PASSWORD})
        wrong = notify_owners(leads, settings(email=email), routing=ROUTING, environ={"SMTP_PASSWORD": "nope-123"})
        untrusted = notify_owners(leads, settings(email={**email, "ca_file": None}), routing=ROUTING,
                                  environ={"SMTP_PASSWORD": SMTP_PASSWORD})
    assert [(d.status, d.messages) for d in ok] == [("sent", 1)]
    assert "2026-11-18T16:30:00+01:00 (Europe/Berlin)" in inbox.to("ann@example.com")[0].get_content()
    assert wrong[0].status == "failed" and wrong[0].detail.startswith("SMTP login refused: 535")
    assert "nope-123" not in wrong[0].detail
    assert untrusted[0].status == "failed" and untrusted[0].detail.startswith("SMTP TLS failed (CERTIFICATE_VERIFY")
    assert len(inbox.mails) == 1

    with smtp_server(Inbox()) as plain_port:  # a server without STARTTLS: refuse rather than log in in clear
        refused = notify_owners(leads, settings(email={**email, "port": plain_port}), routing=ROUTING,
                                environ={"SMTP_PASSWORD": SMTP_PASSWORD})
    assert refused[0].detail == f"SMTP server 127.0.0.1:{plain_port} does not offer STARTTLS"


def test_implicit_tls(certificate: tuple[Path, Path]) -> None:
    inbox = Inbox()
    with smtp_server(inbox, ssl_context=_server_tls(certificate)) as port:
        email = smtp(port, security="ssl", ca_file=str(certificate[0]))
        deliveries = notify_owners(routed([lead(2, "Web")]), settings(email=email), routing=ROUTING)
    assert [d.status for d in deliveries] == ["sent"]
    assert inbox.to("ben@example.com")[0]["Subject"] == "New lead for you: Person2 Doe (Acme GmbH)"


# -- config ----------------------------------------------------------------------------------------------------------
def write_config(tmp_path: Path, notifications: dict[str, Any]) -> Path:
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({"pipeline": ["standardize"], "notifications": notifications}))
    return path


@pytest.mark.parametrize(("section", "yaml_path", "words"), [
    ({"slack": webhook(), "templates": {"lead_text": "Hi {owner_name}: {lead_nmae}"}},
     "notifications.templates.lead_text", "unknown placeholder {lead_nmae}"),
    ({"slack": webhook(), "templates": {"digest_subject": "{count} leads, {lead_name}"}},
     "notifications.templates.digest_subject", "unknown placeholder {lead_name}"),
    ({"slack": webhook(), "templates": {"lead_subject": "{lead_name.__class__}"}},
     "notifications.templates.lead_subject", "unknown placeholder"),
    ({"slack": webhook(), "templates": {"lead_subject": "{} new"}},
     "notifications.templates.lead_subject", "needs a name"),
    ({"slack": webhook(), "templates": {"lead_text": "due {sla_due_at"}},
     "notifications.templates.lead_text", "literal braces"),
    ({"slack": {**webhook(), "bot_token": {"env": "T"}}}, "notifications.slack", "exactly one of"),
    ({"slack": webhook(default_channel="#x")}, "notifications.slack", "needs `bot_token`"),
    ({"slack": webhook(), "owners": {ANN: {"email": "ann at example"}}}, f"notifications.owners.{ANN}.email",
     "not an e-mail address"),
    ({"slack": webhook(), "owners": {ANN: {"timezone": "Mars/Olympus"}}}, f"notifications.owners.{ANN}.timezone",
     "IANA"),
    ({"email": {"host": "smtp.example.com", "from": "x@example.com", "username": "u"}}, "notifications.email",
     "go together"),
    ({"batch_threshold": 5}, "notifications", "at least one channel"),
])
def test_bad_config_names_the_yaml_path(tmp_path: Path, section: dict[str, Any], yaml_path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_notifications(write_config(tmp_path, section))
    assert info.value.yaml_path == yaml_path
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_good_config_loads_and_a_run_config_without_the_section_is_none(tmp_path: Path) -> None:
    section = {"slack": webhook(), "email": {"host": "smtp.example.com", "security": "ssl",
                                            "from": "leads@example.com"}, "batch_threshold": 10}
    config = load_notifications(write_config(tmp_path, section))
    assert config is not None and config.batch_threshold == 10 and config.email is not None
    assert config.email.effective_port == 465
    (tmp_path / "bare.yaml").write_text("pipeline: [standardize]\n")
    assert load_notifications(tmp_path / "bare.yaml") is None


def test_a_missing_secret_stops_before_anything_is_sent(session: requests.Session) -> None:
    leads = routed([lead(1, "Demo")])
    with http_receiver() as slack:
        messages = build_messages(leads, settings(slack=webhook()), routing=ROUTING)
        with pytest.raises(ConfigError) as info:
            send_notifications(messages, settings(slack=webhook()), session=session, environ={})
        with pytest.raises(ConfigError, match="is not an http"):
            send_notifications(messages, settings(slack=webhook()), session=session,
                               environ={"SLACK_WEBHOOK_URL": "hooks.slack.com/services/x"})
    assert info.value.yaml_path == "notifications.slack.webhook_url"
    assert "environment variable SLACK_WEBHOOK_URL is not set" in str(info.value)
    assert slack.requests == []
