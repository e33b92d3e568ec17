"""Sending owner messages: Slack (incoming webhook or the Web API's chat.postMessage) and e-mail (SMTP).

`send_notifications` resolves the configured secrets (a missing one is a ConfigError naming its YAML path, raised
before anything is sent), then sends every owner's messages on every configured channel and returns one `Delivery`
per owner and channel: sent, failed (with a one-line reason) or skipped (no address for that owner). One owner's
failure never stops the others, and no reason ever carries a secret (a webhook URL, a token, a password): exceptions
are reported by kind and server reply, never by their text, which may hold the URL. Slack's 429s are retried after
their Retry-After, within one wait budget for the whole run (`WaitBudget`), so a rate limit cannot stall a bulk run.

prefect-slack and prefect-email are not installed, so this is requests and smtplib: the same HTTP calls and SMTP
dialogue those blocks make, with leadflow's retry helper (`leadflow.connectors.http`) for Slack's rate limits.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from leadflow.connectors.http import (
    DONE,
    Fail,
    RetryLater,
    RetryPolicy,
    Verdict,
    parse_retry_after,
    with_retries,
)
from leadflow.notify.messages import OwnerMessage, build_messages
from leadflow.ops.secrets import resolve_secret
from leadflow.pipeline.errors import ConfigError, LeadflowError

if TYPE_CHECKING:
    import pandas as pd

    from leadflow.notify.config import EmailSettings, NotificationsConfig, SlackSettings
    from leadflow.routing.model import RoutingConfig

log = logging.getLogger("leadflow.notify")

Channel = Literal["slack", "email"]
Status = Literal["sent", "failed", "skipped"]
SLACK_RETRY_ERRORS: Final[frozenset[str]] = frozenset({"ratelimited", "internal_error", "service_unavailable"})
"""chat.postMessage `error`s worth another try (https://api.slack.com/methods/chat.postMessage#errors: a rate limit,
"likely due to a transient issue", the service down); every other error is final (e.g. channel_not_found)."""


class SendError(LeadflowError):
    """A message was refused or could not be delivered; the text is one line and carries no secret."""


@dataclass(frozen=True)
class Delivery:
    """What happened to one owner's messages on one channel."""

    owner_id: str
    channel: Channel
    status: Status
    messages: int
    """Messages delivered."""
    leads: int
    """Leads covered by the delivered messages."""
    detail: str = ""
    """Why it failed or was skipped (one line, no secret); for a partial failure, how many of how many failed."""


# -- Slack -----------------------------------------------------------------------------------------------------------
def _reply_text(reply: requests.Response) -> str:
    return " ".join(reply.text.split())[:200] or "(empty reply)"


def _http_verdict(outcome: Any, what: str) -> Verdict | None:
    """The verdict shared by both Slack calls, None when the caller must read the reply. Slack rate limits answer
    HTTP 429 with a Retry-After in seconds (https://api.slack.com/apis/rate-limits); 5xx is Slack having trouble."""
    if isinstance(outcome, (requests.ConnectionError, requests.Timeout)):
        return RetryLater(f"{what} unreachable ({type(outcome).__name__})")
    if isinstance(outcome, BaseException):
        return Fail(SendError(f"{what} failed ({type(outcome).__name__})"))
    if outcome.status_code == 429:
        after = parse_retry_after(outcome.headers.get("Retry-After"))
        said = f", Retry-After {outcome.headers.get('Retry-After')} s" if after is not None else ""
        return RetryLater(f"HTTP 429 rate limited{said}", after)
    if outcome.status_code >= 500:
        return RetryLater(f"HTTP {outcome.status_code}")
    return None


class SlackWebhookSender:
    """POST `{"text": …}` to an incoming webhook (https://api.slack.com/messaging/webhooks): the webhook's channel
    gets the message, mentioning the owner. Success is HTTP 200 `ok`; a refusal is a 4xx with a short error text
    (`invalid_payload`, `no_text`, `channel_is_archived`, `no_service`…) and is final; 429 and 5xx are retried."""

    def __init__(self, url: SecretStr, settings: SlackSettings, session: requests.Session,
                 sleep: Callable[[float], None]) -> None:
        self.url, self.settings, self.session, self.sleep = url, settings, session, sleep

    def send(self, message: OwnerMessage) -> None:
        def call() -> requests.Response:
            return self.session.post(self.url.get_secret_value(), json={"text": message.slack_text},
                                     timeout=self.settings.timeout_seconds)

        def classify(outcome: Any) -> Verdict:
            verdict = _http_verdict(outcome, "Slack webhook")
            if verdict is not None:
                return verdict
            if outcome.status_code == 200:
                return DONE
            return Fail(SendError(f"Slack webhook refused the message: HTTP {outcome.status_code} "
                                  f"{_reply_text(outcome)}"))

        with_retries(call, policy=_policy(self.settings), classify=classify, sleep=self.sleep)


class SlackBotSender:
    """chat.postMessage with a bot token (https://api.slack.com/methods/chat.postMessage): `channel` is a channel id
    or name, or a user id for a DM from the app. Slack answers HTTP 200 with `ok: false` and an `error` code for a
    refusal; SLACK_RETRY_ERRORS, 429 (Retry-After) and 5xx are retried, other errors are final."""

    def __init__(self, token: SecretStr, settings: SlackSettings, session: requests.Session,
                 sleep: Callable[[float], None]) -> None:
        self.token, self.settings, self.session, self.sleep = token, settings, session, sleep
        self.endpoint = f"{str(settings.api_url).rstrip('/')}/chat.postMessage"

    def send(self, message: OwnerMessage) -> None:
        channel = message.slack_channel
        if channel is None:
            raise SendError("no Slack channel for this owner")
        body = {"channel": channel, "text": message.slack_text, "unfurl_links": False, "unfurl_media": False}
        headers = {"Authorization": f"Bearer {self.token.get_secret_value()}"}

        def call() -> requests.Response:
            return self.session.post(self.endpoint, json=body, headers=headers,
                                     timeout=self.settings.timeout_seconds)

        def classify(outcome: Any) -> Verdict:
            verdict = _http_verdict(outcome, "Slack chat.postMessage")
            if verdict is not None:
                return verdict
            if outcome.status_code != 200:
                return Fail(SendError(f"Slack chat.postMessage: HTTP {outcome.status_code} {_reply_text(outcome)}"))
            try:
                answer = outcome.json()
            except ValueError:
                return Fail(SendError("Slack chat.postMessage: the reply is not JSON"))
            if isinstance(answer, dict) and answer.get("ok") is True:
                return DONE
            error = str(answer.get("error", "no error code")) if isinstance(answer, dict) else "unreadable reply"
            if error in SLACK_RETRY_ERRORS:
                return RetryLater(f"Slack error {error}")
            return Fail(SendError(f"Slack chat.postMessage to {channel} refused: {error}"))

        with_retries(call, policy=_policy(self.settings), classify=classify, sleep=self.sleep)


class WaitBudget:
    """The run's waits between Slack retries, all owners together: once `seconds` would be exceeded, the retry is
    given up (SendError) instead of waited for."""

    def __init__(self, seconds: float, sleep: Callable[[float], None]) -> None:
        self.seconds, self.spent, self._sleep = seconds, 0.0, sleep

    def __call__(self, delay: float) -> None:
        if self.spent + delay > self.seconds:
            raise SendError(f"Slack asked to wait {delay:g} s more; this run's retry wait budget "
                            f"(notifications.slack.max_wait_seconds: {self.seconds:g} s) is spent")
        self.spent += delay
        self._sleep(delay)


def _policy(settings: SlackSettings) -> RetryPolicy:
    return RetryPolicy(attempts=settings.attempts, base=1.0, cap=30.0, retry_after_cap=60.0)


# -- e-mail ----------------------------------------------------------------------------------------------------------
class SmtpSender:
    """smtplib (https://docs.python.org/3/library/smtplib.html): `ssl` is implicit TLS (SMTP_SSL, RFC 8314), `starttls`
    upgrades a plain connection with STARTTLS (RFC 3207) and refuses a server that does not offer it rather than
    sending the password in clear, `none` is plain SMTP. The certificate is checked (`ca_file` for a private CA).
    One connection per owner: a dropped connection fails that owner only."""

    def __init__(self, settings: EmailSettings, password: SecretStr | None) -> None:
        self.settings, self.password = settings, password

    def _context(self) -> ssl.SSLContext:
        cafile = str(self.settings.ca_file) if self.settings.ca_file is not None else None
        return ssl.create_default_context(cafile=cafile)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.effective_port, timeout=s.timeout_seconds,
                                                  context=self._context())
        else:
            smtp = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout_seconds)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SendError(f"SMTP server {s.host}:{s.effective_port} does not offer STARTTLS")
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.username is not None and self.password is not None:
                smtp.login(s.username, self.password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp

    def email(self, message: OwnerMessage) -> EmailMessage:
        """The e-mail for `message` (To: the owner's address)."""
        if message.email is None:
            raise SendError("no e-mail address for this owner")
        mail = EmailMessage()
        mail["From"] = self.settings.from_address
        mail["To"] = message.email
        mail["Subject"] = message.subject
        mail["Date"] = format_datetime(datetime.now(UTC))
        domain = parseaddr(self.settings.from_address)[1].rpartition("@")[2] or None
        mail["Message-ID"] = make_msgid(domain=domain)
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no auto-replies to a machine's mail
        mail.set_content(message.text)
        return mail

    def send_all(self, messages: Sequence[OwnerMessage]) -> tuple[int, str | None]:
        """Send `messages` over one connection, stopping at the first failure: (how many went, why it stopped or
        None)."""
        sent = 0
        try:
            mails = [self.email(m) for m in messages]
            smtp = self._connect()
        except SendError as exc:
            return 0, str(exc)
        except _SEND_ERRORS as exc:
            return 0, smtp_reason(exc)
        reason: str | None = None
        try:
            for mail in mails:
                smtp.send_message(mail)
                sent += 1
        except _SEND_ERRORS as exc:
            reason = smtp_reason(exc)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        return sent, reason


def smtp_reason(exc: BaseException) -> str:
    """One line for an SMTP failure: the server's reply code and text (RFC 5321 §4.2), never a password."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "SMTP refused " + "; ".join(f"recipient {to}: {code} {_text(msg)}"
                                           for to, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"SMTP refused sender {exc.sender}: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP error {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, ssl.SSLError):
        return f"SMTP TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, LeadflowError):
        return str(exc)
    return f"SMTP failed ({type(exc).__name__})"


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]


# -- all owners ------------------------------------------------------------------------------------------------------
def _scrub(text: str, secrets: Iterable[SecretStr]) -> str:
    for secret in secrets:
        value = secret.get_secret_value()
        if value:
            text = text.replace(value, "***")
    return text


def _by_owner(messages: Iterable[OwnerMessage]) -> dict[str, list[OwnerMessage]]:
    owners: dict[str, list[OwnerMessage]] = {}
    for message in messages:
        owners.setdefault(message.owner_id, []).append(message)
    return owners


def _outcome(owner_id: str, channel: Channel, messages: list[OwnerMessage], sent: list[OwnerMessage],
             errors: list[str]) -> Delivery:
    leads = sum(len(m.lead_ids) for m in sent)
    if not errors:
        return Delivery(owner_id, channel, "sent", len(sent), leads)
    failed = len(messages) - len(sent)
    detail = errors[0] if len(messages) == 1 else f"{failed} of {len(messages)} messages failed: {errors[0]}"
    return Delivery(owner_id, channel, "failed", len(sent), leads, detail)


_SEND_ERRORS: Final = (LeadflowError, requests.RequestException, smtplib.SMTPException, OSError, ValueError)


def _slack_owner(sender: SlackWebhookSender | SlackBotSender, owner_id: str, messages: list[OwnerMessage],
                 secrets: list[SecretStr]) -> Delivery:
    if isinstance(sender, SlackBotSender) and messages[0].slack_channel is None:
        return Delivery(owner_id, "slack", "skipped", 0, 0,
                        "no Slack user or channel for this owner in notifications.owners, and no default_channel")
    sent: list[OwnerMessage] = []
    errors: list[str] = []
    for message in messages:
        try:
            sender.send(message)
            sent.append(message)
        except _SEND_ERRORS as exc:
            errors.append(_scrub(str(exc) if isinstance(exc, LeadflowError) else type(exc).__name__, secrets))
    return _outcome(owner_id, "slack", messages, sent, errors)


def _email_owner(sender: SmtpSender, owner_id: str, messages: list[OwnerMessage],
                 secrets: list[SecretStr]) -> Delivery:
    if messages[0].email is None:
        return Delivery(owner_id, "email", "skipped", 0, 0,
                        "no e-mail address for this owner (notifications.owners or the CRM owner directory)")
    sent, reason = sender.send_all(messages)
    errors = [] if reason is None else [_scrub(reason, secrets)]
    return _outcome(owner_id, "email", messages, messages[:sent], errors)


def send_notifications(
    messages: Sequence[OwnerMessage],
    config: NotificationsConfig,
    *,
    origin: str = "leadflow.yaml",
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    environ: Mapping[str, str] | None = None,
) -> list[Delivery]:
    """Send `messages` on every configured channel: one Delivery per owner and channel, owners in message order.

    `origin` names the config file in errors; `session` (default: a new one, closed after) carries the Slack
    calls; `sleep` waits between Slack retries; `environ` replaces os.environ for `{env: …}` secrets."""
    owners = _by_owner(messages)
    if not owners:
        return []
    secrets: list[SecretStr] = []
    slack: SlackWebhookSender | SlackBotSender | None = None
    own_session = session is None
    http = session or requests.Session()
    try:
        if config.slack is not None:
            slack = _slack_sender(config.slack, origin, environ, http, sleep)
            secrets.append(slack.url if isinstance(slack, SlackWebhookSender) else slack.token)
        mail: SmtpSender | None = None
        if config.email is not None:
            password = None if config.email.password is None else resolve_secret(
                config.email.password, origin=origin, yaml_path="notifications.email.password", environ=environ)
            secrets += [password] if password is not None else []
            mail = SmtpSender(config.email, password)
        deliveries: list[Delivery] = []
        for owner_id, owned in owners.items():
            if slack is not None:
                deliveries.append(_slack_owner(slack, owner_id, owned, secrets))
            if mail is not None:
                deliveries.append(_email_owner(mail, owner_id, owned, secrets))
        for d in deliveries:
            if d.status == "failed":
                log.warning("notifying owner %s by %s failed: %s", d.owner_id, d.channel, d.detail)
        return deliveries
    finally:
        if own_session:
            http.close()


def _slack_sender(settings: SlackSettings, origin: str, environ: Mapping[str, str] | None,
                  session: requests.Session, sleep: Callable[[float], None]) -> SlackWebhookSender | SlackBotSender:
    sleep = WaitBudget(settings.max_wait_seconds, sleep)
    if settings.webhook_url is not None:
        path = "notifications.slack.webhook_url"
        url = resolve_secret(settings.webhook_url, origin=origin, yaml_path=path, environ=environ)
        parts = urlsplit(url.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(origin, f"{settings.webhook_url.describe()} is not an http(s) URL", yaml_path=path)
        return SlackWebhookSender(url, settings, session, sleep)
    assert settings.bot_token is not None  # SlackSettings holds exactly one of the two
    token = resolve_secret(settings.bot_token, origin=origin, yaml_path="notifications.slack.bot_token",
                           environ=environ)
    return SlackBotSender(token, settings, session, sleep)


def notify_owners(
    assigned: pd.DataFrame,
    config: NotificationsConfig,
    *,
    since: datetime | None = None,
    routing: RoutingConfig | None = None,
    directory_emails: Mapping[str, str] | None = None,
    record_url: str | None = None,
    origin: str = "leadflow.yaml",
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    environ: Mapping[str, str] | None = None,
) -> list[Delivery]:
    """`build_messages` then `send_notifications`: what a flow calls after the assign stage (see both)."""
    messages = build_messages(assigned, config, since=since, routing=routing, directory_emails=directory_emails,
                              record_url=record_url)
    return send_notifications(messages, config, origin=origin, session=session, sleep=sleep, environ=environ)


def summarize(deliveries: Iterable[Delivery]) -> dict[str, int]:
    """Counts for a run summary: `<channel>_<status>` (owners) and `leads_notified` (leads on a delivered message,
    counted once per channel)."""
    counts: dict[str, int] = {}
    for d in deliveries:
        key = f"{d.channel}_{d.status}"
        counts[key] = counts.get(key, 0) + 1
        counts["leads_notified"] = counts.get("leads_notified", 0) + d.leads
    return counts
