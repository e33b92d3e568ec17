"""Alerts as config: the `alerts:` section of leadflow.yaml becomes Prefect notification blocks and Automations.

```yaml
alerts:
  notify:
    - slack_webhook: {env: SLACK_WEBHOOK_URL}
    - webhook: https://ops.example.com/hooks/leadflow      # or {env: NAME} / {prefect_secret: block} / {file: path}
      method: POST
  events: [leadflow.dq.failed, leadflow.sync.errors, leadflow.sla.breached, leadflow.budget.exhausted]
```

`install_alerts` saves one notification block per `notify` entry and one Automation per event (reactive, fires on
every occurrence) that sends each block a message built from the event's payload. Re-installing updates blocks and
Automations of the same names instead of adding new ones. Secrets are resolved only here, at install time, and stored
in the Prefect block (a SecretStr / secret dict): never printed or logged.

E-mail is refused: the Prefect server sends an Automation's notification through a block with the `notify`
capability, and prefect-email's EmailServerCredentials is not one (it is for flows that send mail themselves).
Point a `webhook` at your mail relay, or use Slack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, field_validator

from leadflow.pipeline.errors import ConfigError, LeadflowError
from leadflow.ops.secrets import SecretRef, resolve_secret

DQ_FAILED = "leadflow.dq.failed"
SYNC_ERRORS = "leadflow.sync.errors"
SLA_BREACHED = "leadflow.sla.breached"
BUDGET_EXHAUSTED = "leadflow.budget.exhausted"
EVENTS: tuple[str, ...] = (DQ_FAILED, SYNC_ERRORS, SLA_BREACHED, BUDGET_EXHAUSTED)
EventName = Literal["leadflow.dq.failed", "leadflow.sync.errors", "leadflow.sla.breached", "leadflow.budget.exhausted"]

BLOCK_PREFIX = "leadflow-alerts"
AUTOMATION_PREFIX = "leadflow: "
EMAIL_REFUSAL = (
    "e-mail alerts are not supported: Prefect Automations notify through notification blocks, and prefect-email's "
    "EmailServerCredentials is not one. Use `webhook:` (e.g. your mail relay's HTTP endpoint) or `slack_webhook:`"
)


class SlackNotification(BaseModel):
    """`{slack_webhook: <SecretRef>}`: a Slack incoming-webhook URL, by reference (it is a credential)."""

    model_config = ConfigDict(extra="forbid")

    slack_webhook: SecretRef
    name: str | None = Field(default=None, description="Block name; default leadflow-alerts-<n>.")


class WebhookNotification(BaseModel):
    """`{webhook: url | SecretRef, method: POST}`: a JSON request with subject, body and the event name."""

    model_config = ConfigDict(extra="forbid")

    webhook: AnyHttpUrl | SecretRef
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (no secrets here).")
    name: str | None = Field(default=None, description="Block name; default leadflow-alerts-<n>.")


class EmailNotification(BaseModel):
    """`{email: [addresses], smtp_block: name}`: accepted by the config so the refusal can explain itself."""

    model_config = ConfigDict(extra="forbid")

    email: list[str]
    smtp_block: str | None = None
    name: str | None = None


Notification = SlackNotification | WebhookNotification | EmailNotification


class AlertsConfig(BaseModel):
    """The `alerts:` section of the run config."""

    model_config = ConfigDict(extra="forbid")

    notify: list[Notification] = Field(min_length=1, description="Where alerts go: one or more notifications.")
    events: list[EventName] = Field(default_factory=lambda: list(EVENTS), min_length=1,
                                    description="Which leadflow events raise an alert; default: all four.")

    @field_validator("notify", mode="before")
    @classmethod
    def _one_kind_each(cls, value: Any) -> Any:
        # Pick the model by its key so a typo gets one clear error instead of one per union member.
        if not isinstance(value, list):
            return value
        parsed: list[Any] = []
        for item in value:
            if isinstance(item, Mapping):
                kinds = [k for k in ("slack_webhook", "webhook", "email") if k in item]
                if len(kinds) != 1:
                    raise ValueError("each notification needs exactly one of `slack_webhook`, `webhook` or `email`")
                model = {"slack_webhook": SlackNotification, "webhook": WebhookNotification,
                         "email": EmailNotification}[kinds[0]]
                parsed.append(model.model_validate(dict(item)))
            else:
                parsed.append(item)
        return parsed


# Automation action templates (Jinja, rendered by the Prefect server with the triggering `event`).
SUBJECTS: dict[str, str] = {
    DQ_FAILED: "leadflow: data-quality gate {{ event.payload.suite }} failed",
    SYNC_ERRORS: "leadflow: write-back errors in {{ event.payload.system }}",
    SLA_BREACHED: "leadflow: {{ event.payload.breaches }} leads past their first-touch SLA",
    BUDGET_EXHAUSTED: "leadflow: {{ event.payload.system }} API budget exhausted",
}
BODIES: dict[str, str] = {
    DQ_FAILED: (
        "{{ event.event }}: suite {{ event.payload.suite }} (stage {{ event.payload.stage }}) failed the batch: "
        "{{ event.payload.rows_quarantined }} of {{ event.payload.rows_in }} rows quarantined "
        "(share {{ event.payload.share }}). {{ event.payload.failure }} [{{ event.resource.id }}]"
    ),
    SYNC_ERRORS: (
        "{{ event.event }}: {{ event.payload.system }}: {{ event.payload.failed }} writes failed this run; dead "
        "letters: {{ event.payload.dead_letters.pending }} to retry, {{ event.payload.dead_letters.permanent }} "
        "permanent (table dead_letters). [{{ event.resource.id }}]"
    ),
    SLA_BREACHED: (
        "{{ event.event }}: {{ event.payload.breaches }} leads past their first-touch SLA as of "
        "{{ event.payload.as_of }}; worst {{ event.payload.max_minutes_late }} minutes late; by owner "
        "{{ event.payload.by_owner }}. [{{ event.resource.id }}]"
    ),
    BUDGET_EXHAUSTED: (
        "{{ event.event }}: {{ event.payload.system }} stopped: {{ event.payload.reason }} (calls used: "
        "{{ event.payload.calls_used }}); its watermark is kept, the next run resumes. [{{ event.resource.id }}]"
    ),
}


def block_name(notification: Notification, index: int) -> str:
    return notification.name or f"{BLOCK_PREFIX}-{index + 1}"


def automation_name(event: str) -> str:
    return f"{AUTOMATION_PREFIX}{event}"


def _secret(ref: SecretRef, origin: str, yaml_path: str) -> SecretStr:
    return resolve_secret(ref, origin=origin, yaml_path=yaml_path)


def build_block(notification: Notification, name: str, *, origin: str, yaml_path: str) -> Any:
    """The Prefect notification block for one `notify` entry, secrets resolved into it."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook

    if isinstance(notification, EmailNotification):
        raise ConfigError(origin, EMAIL_REFUSAL, yaml_path=yaml_path)
    if isinstance(notification, SlackNotification):
        url = _secret(notification.slack_webhook, origin, f"{yaml_path}.slack_webhook")
        return SlackWebhook(url=url)
    if isinstance(notification.webhook, SecretRef):
        # The URL is a credential (it often embeds a token): keep it in the block's secret dict, not its url field.
        secret_url = _secret(notification.webhook, origin, f"{yaml_path}.webhook").get_secret_value()
        TypeAdapter(AnyHttpUrl).validate_python(secret_url)
        url, secrets = "{{url}}", {"url": secret_url}
    else:
        url, secrets = str(notification.webhook), {}
    return CustomWebhookNotificationBlock(
        name=name,
        url=url,
        method=notification.method,
        json_data={"source": "leadflow", "subject": "{{subject}}", "text": "{{body}}"},
        headers={"Content-Type": "application/json", **notification.headers},
        secrets=secrets,
    )


def _api_url() -> str:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise LeadflowError(
            "PREFECT_API_URL is not set: alerts live in a running Prefect server (start one with `prefect server "
            "start`, then export PREFECT_API_URL=http://127.0.0.1:4200/api)"
        )
    return str(url)


def _check_server(client: Any, url: str) -> None:
    problem = client.api_healthcheck()  # returns the exception instead of raising
    if problem is not None:
        raise LeadflowError(f"cannot reach the Prefect server at {url} ({type(problem).__name__}): is it running?")


def _upsert_automation(client: Any, automation: Any) -> None:
    from prefect.events.schemas.automations import AutomationCore

    existing = client.read_automations_by_name(automation.name)
    if not existing:
        client.create_automation(AutomationCore(**automation.model_dump(exclude={"id"})))
        return
    keep, *extra = existing
    # Only the fields leadflow sets: the server's update schema refuses create-only ones (owner_resource).
    client.update_automation(keep.id, AutomationCore.model_validate(
        automation.model_dump(exclude={"id"}, exclude_unset=True)))
    for duplicate in extra:  # from older installs made by hand: one name, one automation
        client.delete_automation(duplicate.id)


def install_alerts(config: AlertsConfig, *, client: Any = None, origin: str = "leadflow.yaml") -> list[str]:
    """Create or update the notification blocks and Automations `config` describes; returns their names
    (blocks first, then automations). Needs PREFECT_API_URL pointing at a running Prefect server."""
    from datetime import timedelta

    from prefect.automations import Automation, EventTrigger, Posture, SendNotification
    from prefect.client.orchestration import get_client

    url = _api_url()
    # Everything refusable is refused before anything is written to the server.
    blocks = [
        (block_name(n, i), build_block(n, block_name(n, i), origin=origin, yaml_path=f"alerts.notify[{i}]"))
        for i, n in enumerate(config.notify)
    ]
    names = [name for name, _ in blocks]
    if len(set(names)) != len(names):
        raise ConfigError(origin, f"notification names must be unique: {names}", yaml_path="alerts.notify")

    own = client is None
    active = client or get_client(sync_client=True)
    try:
        if own:
            active.__enter__()
        _check_server(active, url)
        block_ids = [block.save(name, overwrite=True) for name, block in blocks]
        created = list(names)
        for event in dict.fromkeys(config.events):
            automation = Automation(
                name=automation_name(event),
                description=f"leadflow alert: every {event} event notifies {', '.join(names)} (leadflow alerts install)",
                trigger=EventTrigger(expect={event}, posture=Posture.Reactive, threshold=1, within=timedelta(0)),
                actions=[
                    SendNotification(block_document_id=block_id, subject=SUBJECTS[event], body=BODIES[event])
                    for block_id in block_ids
                ],
            )
            _upsert_automation(active, automation)
            created.append(automation.name)
        return created
    finally:
        if own:
            active.__exit__(None, None, None)
