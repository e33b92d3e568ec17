"""The `notifications:` section of a run config: channels, owner contacts, templates and the digest threshold.

```yaml
notifications:
  slack:                                   # one of webhook_url / bot_token, by secret reference
    webhook_url: {env: SLACK_WEBHOOK_URL}  # incoming webhook: posts to its own channel, mentioning the owner
    # bot_token: {env: SLACK_BOT_TOKEN}    # Web API chat.postMessage: the owner's channel, else a DM, else
    # default_channel: "#new-leads"        #   default_channel
  email:
    host: smtp.example.com
    port: 587                              # default: 587 starttls, 465 ssl, 25 none
    security: starttls                     # starttls | ssl | none
    username: leadflow@example.com         # with password, or neither
    password: {env: SMTP_PASSWORD}
    from: "leadflow <leadflow@example.com>"
  owners:                                  # CRM owner id -> how to reach them
    0051x000001AbCdAAK: {name: Ann Lee, email: ann@example.com, slack_user: U012AB3CD, timezone: Europe/Berlin}
  record_url: https://acme.my.salesforce.com   # links: <record_url>/lightning/r/Lead/<id>/view
  batch_threshold: 5                       # more leads than this for one owner in a run: one digest instead
  templates:
    lead_subject: "New lead: {lead_name} ({company})"
    reminder_text: "{owner_name}: {lead_name} has waited {waiting}. {link}"   # escalation `remind`
```

Templates are Python format strings with named placeholders only (`{lead_name}`; `{{` and `}}` for literal braces).
A placeholder a template cannot fill is refused when the config is read, with the YAML path of the template. The
e-mail of an owner not listed here may come from the CRM's owner directory (`build_messages(directory_emails=…)`).
Secrets stay references here; `leadflow.notify.senders` resolves them when it sends.
"""

from __future__ import annotations

import string
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from leadflow.ops.secrets import SecretRef
from leadflow.pipeline.yamlio import load_yaml, parse_model
from leadflow.routing.model import iana_zone

LEAD_PLACEHOLDERS: Final[tuple[str, ...]] = (
    "lead_name", "first_name", "last_name", "company", "title", "email", "country", "lead_id", "source",
    "rule", "routing_reason", "score", "grade", "rating", "score_reasons", "assigned_at", "sla_due_at", "link",
    "owner_id", "owner_name",
)
"""What a lead's templates (lead_subject, lead_text, digest_line) may use."""
DIGEST_PLACEHOLDERS: Final[tuple[str, ...]] = (
    "owner_id", "owner_name", "count", "leads", "more", "first_due",
)
"""What digest_subject and digest_text may use: `leads` is the digest lines, one per lead (most urgent first),
`more` says how many were left out (empty when none), `first_due` the earliest SLA due time."""
ESCALATION_PLACEHOLDERS: Final[tuple[str, ...]] = (*LEAD_PLACEHOLDERS, "waiting", "step", "manager_name")
"""What the escalation templates (reminder_*, manager_*) may use: the lead's placeholders (`owner_name` is the lead's
owner), `waiting` how long the lead has waited (e.g. 15m), `step` the chain step (e.g. `step 2/4 notify_manager
(after 15m)`), `manager_name` who a manager notice goes to."""

DEFAULT_PORTS: Final[dict[str, int]] = {"starttls": 587, "ssl": 465, "none": 25}
"""RFC 6409 §3.1 (submission, 587, upgraded by STARTTLS: RFC 3207), RFC 8314 §3.3 (implicit TLS, 465), RFC 5321
§4.5.4.2 (plain SMTP relay, 25)."""


def check_template(template: str, allowed: tuple[str, ...]) -> str:
    """`template` if every placeholder is a plain name from `allowed`; else ValueError saying which one is not."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid template ({exc}; write {{{{ and }}}} for literal braces)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError("a placeholder needs a name, e.g. {lead_name}")
        if name not in allowed:
            raise ValueError(f"unknown placeholder {{{name}}}; known: {', '.join(allowed)}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}}: write it without ':…' or '!…'")
    return template


def _address(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    _, address = parseaddr(value)
    if "@" not in address or any(c in value for c in "\r\n"):
        raise ValueError(f"{what} {value!r} is not an e-mail address")
    return value.strip()


class SlackSettings(BaseModel):
    """Slack: an incoming webhook, or a bot token for the Web API's chat.postMessage."""

    model_config = ConfigDict(extra="forbid")

    webhook_url: SecretRef | None = Field(default=None, description="Incoming-webhook URL (a credential).")
    bot_token: SecretRef | None = Field(default=None, description="Bot token (xoxb-…) with the chat:write scope.")
    default_channel: str | None = Field(default=None, min_length=1,
                                        description="Bot token: where leads of owners without a Slack id go.")
    api_url: HttpUrl = Field(default=HttpUrl("https://slack.com/api"), description="The Web API's base URL.")
    timeout_seconds: float = Field(default=10.0, gt=0)
    attempts: int = Field(default=3, ge=1, description="Tries per message (a 429 waits its Retry-After).")
    max_wait_seconds: float = Field(default=120.0, ge=0, description="Waits between retries in one run, all owners "
                                    "together: a workspace-wide rate limit cannot stall a bulk run.")

    @model_validator(mode="after")
    def _one_way(self) -> SlackSettings:
        if (self.webhook_url is None) == (self.bot_token is None):
            raise ValueError("give exactly one of `webhook_url` or `bot_token`")
        if self.default_channel is not None and self.bot_token is None:
            raise ValueError("`default_channel` needs `bot_token` (a webhook posts to its own channel)")
        return self


class EmailSettings(BaseModel):
    """An SMTP server to send through."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="Default: by `security`.")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    from_address: str = Field(alias="from", description="The From header, e.g. `leadflow <leads@example.com>`.")
    ca_file: Path | None = Field(default=None, description="CA bundle for a relay with a private certificate.")
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("from_address")
    @classmethod
    def _from(cls, value: str) -> str:
        return _address(value, "from") or value

    @model_validator(mode="after")
    def _login(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("`username` and `password` go together")
        return self

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]


class OwnerContact(BaseModel):
    """How to reach one CRM owner (a user or a queue id)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, description="Default: the routing user's name, else the id.")
    email: str | None = None
    slack_user: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,}$", description="Slack member id.")
    slack_channel: str | None = Field(default=None, min_length=1, description="Bot token: post here, not a DM.")
    timezone: str | None = Field(default=None, description="IANA; default: the routing user's, else `timezone`.")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return _address(value, "email")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else iana_zone(value)


class Templates(BaseModel):
    """Message texts; see LEAD_PLACEHOLDERS and DIGEST_PLACEHOLDERS."""

    model_config = ConfigDict(extra="forbid")

    lead_subject: str = "New lead for you: {lead_name} ({company})"
    lead_text: str = (
        "{owner_name}, a new lead is yours: {lead_name} at {company}.\n"
        "Why you: rule {rule}: {routing_reason}\n"
        "Score {score} ({rating}): {score_reasons}\n"
        "First touch due by {sla_due_at}\n"
        "{link}"
    )
    digest_subject: str = "{count} new leads for you, first due {first_due}"
    digest_text: str = "{owner_name}, {count} new leads are yours (most urgent first):\n{leads}{more}"
    digest_line: str = "- {lead_name} at {company}: due {sla_due_at}; rule {rule}: {routing_reason}; {link}"
    reminder_subject: str = "Reminder: {lead_name} ({company}) has waited {waiting} for you"
    reminder_text: str = (
        "{owner_name}, {lead_name} at {company} has waited {waiting} for a first touch "
        "(assigned {assigned_at}, first touch due {sla_due_at}).\n"
        "Rule {rule}: {routing_reason}\n"
        "{link}"
    )
    manager_subject: str = "{owner_name} has not touched {lead_name} ({company}) in {waiting}"
    manager_text: str = (
        "{manager_name}, {owner_name}'s lead {lead_name} at {company} has waited {waiting} for a first touch "
        "(assigned {assigned_at}, first touch due {sla_due_at}); escalation {step}.\n"
        "Rule {rule}: {routing_reason}\n"
        "{link}"
    )

    @field_validator("lead_subject", "lead_text", "digest_line")
    @classmethod
    def _lead(cls, value: str) -> str:
        return check_template(value, LEAD_PLACEHOLDERS)

    @field_validator("digest_subject", "digest_text")
    @classmethod
    def _digest(cls, value: str) -> str:
        return check_template(value, DIGEST_PLACEHOLDERS)

    @field_validator("reminder_subject", "reminder_text", "manager_subject", "manager_text")
    @classmethod
    def _escalation(cls, value: str) -> str:
        return check_template(value, ESCALATION_PLACEHOLDERS)


class NotificationsConfig(BaseModel):
    """The `notifications:` section of the run config."""

    model_config = ConfigDict(extra="forbid")

    slack: SlackSettings | None = None
    email: EmailSettings | None = None
    owners: dict[str, OwnerContact] = Field(default_factory=dict)
    templates: Templates = Field(default_factory=Templates)
    batch_threshold: int = Field(default=5, ge=1, description="More leads than this for one owner: one digest.")
    digest_max_lines: int = Field(default=50, ge=1, description="Leads listed in a digest; the rest are counted.")
    timezone: str | None = Field(default=None, description="Times for owners with no zone; default: routing's, UTC.")
    record_url: HttpUrl | None = Field(default=None, description="Salesforce instance URL for record links.")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else iana_zone(value)

    @model_validator(mode="after")
    def _a_channel(self) -> NotificationsConfig:
        if self.slack is None and self.email is None:
            raise ValueError("configure at least one channel: `slack` or `email`")
        return self


class _RunConfigSection(BaseModel):
    """The run config as far as notifications are concerned (every other section is the run config's business)."""

    model_config = ConfigDict(extra="ignore")

    notifications: NotificationsConfig | None = None


def load_notifications(path: Path) -> NotificationsConfig | None:
    """The `notifications:` section of the run config at `path` (None without one); a bad value is a ConfigError
    naming its YAML path, e.g. `notifications.templates.lead_text`."""
    data: Any = load_yaml(path)
    return parse_model(_RunConfigSection, data, path).notifications
