"""Owner messages from the assign stage's output, as a pure function: one message per lead, or one digest per owner.

Which leads: those with an owner and an `assigned_at` (holds and leads left with their owner have none), assigned at
or after `since` when given — a run passes its start, so leads routed by earlier runs are not announced again. An
owner with more than `batch_threshold` such leads gets one digest listing the `digest_max_lines` most urgent (earliest
`sla_due_at`) and counting the rest; otherwise one message per lead, most urgent first.

Each message is rendered twice: as plain text (e-mail) and as Slack mrkdwn (values escaped, the owner mentioned when
the message goes to a channel rather than a DM). Times are shown in the owner's zone as ISO 8601 with the offset and
the zone name, e.g. `2026-05-04T10:30:00+02:00 (Europe/Berlin)`. Only the leads a message shows are formatted, so a
bulk run's cost is bounded by owners × (batch_threshold or digest_max_lines), not by the number of leads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from leadflow.pipeline.errors import LeadflowError

if TYPE_CHECKING:
    from leadflow.notify.config import NotificationsConfig, OwnerContact
    from leadflow.routing.model import RoutingConfig

REQUIRED_COLUMNS: Final[tuple[str, ...]] = ("owner_id", "routing_rule", "routing_reason", "assigned_at", "sla_due_at")
"""The assign stage's output (`leadflow.routing.ROUTING_COLUMNS`)."""
LEAD_COLUMNS: Final[dict[str, str]] = {
    "first_name": "first_name", "last_name": "last_name", "company": "company", "title": "title", "email": "email",
    "country": "country_code", "lead_id": "lead_id", "source": "source", "rule": "routing_rule",
    "routing_reason": "routing_reason", "score": "score", "grade": "grade", "rating": "rating",
    "score_reasons": "score_reasons",
}
"""Placeholder → the canonical column that fills it (a missing column or value shows as MISSING)."""
MISSING: Final[str] = "—"
NO_LINK: Final[str] = "(no CRM record link)"
SALESFORCE_LEAD_ID: Final[re.Pattern[str]] = re.compile(r"^00Q[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")
"""A Lead's record id: key prefix 00Q, 15 or 18 characters."""
_CONTROL: Final[re.Pattern[str]] = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class OwnerMessage:
    """One notification for one owner: a lead, or a digest of `len(lead_ids)` leads."""

    owner_id: str
    owner_name: str
    subject: str
    text: str
    """Plain text (the e-mail body)."""
    slack_text: str
    """Slack mrkdwn: values escaped, links as `<url>`, `<@user>` first when it goes to a channel."""
    lead_ids: tuple[str, ...]
    digest: bool
    email: str | None
    """The owner's address (config, else the CRM owner directory); None: no e-mail for this owner."""
    slack_user: str | None
    slack_channel: str | None
    """Bot token: where chat.postMessage posts (the owner's channel, their DM, the default channel); None: nowhere.
    A webhook ignores it (it posts to its own channel)."""


@dataclass(frozen=True)
class _Owner:
    owner_id: str
    name: str
    zone: ZoneInfo
    email: str | None
    slack_user: str | None
    slack_channel: str | None

    @property
    def mention(self) -> str:
        """`<@U…> ` unless the message is a DM to that user (Slack formatting: mentioning users)."""
        return f"<@{self.slack_user}> " if self.slack_user and self.slack_channel != self.slack_user else ""


def newly_assigned(frame: pd.DataFrame, *, since: datetime | None = None) -> pd.DataFrame:
    """The leads of `frame` given an owner at assignment (`owner_id` and `assigned_at` present), assigned at or after
    `since` (naive = UTC, compared to the second as `assigned_at` is written) when given."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise LeadflowError(f"owner notifications need the assign stage's columns; missing: {', '.join(missing)}")
    owner = _clean(frame["owner_id"])
    assigned = pd.to_datetime(_clean(frame["assigned_at"]), utc=True, format="ISO8601", errors="coerce")
    keep = owner.notna() & assigned.notna()
    if since is not None:
        start = (since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)).replace(microsecond=0)
        keep &= assigned >= pd.Timestamp(start)
    return frame.loc[keep.to_numpy(dtype=bool, na_value=False)]


def build_messages(
    assigned: pd.DataFrame,
    config: NotificationsConfig,
    *,
    since: datetime | None = None,
    routing: RoutingConfig | None = None,
    directory_emails: Mapping[str, str] | None = None,
    record_url: str | None = None,
) -> list[OwnerMessage]:
    """The messages for the leads `newly_assigned(assigned, since=since)` finds, owners in id order.

    `routing` (the run's routing config) gives owner names and time zones the `owners` section does not;
    `directory_emails` (owner id → address, from the CRM's owner directory) the e-mail of owners it does not list;
    `record_url` (the Salesforce instance URL) is used when the config has no `record_url`."""
    leads = newly_assigned(assigned, since=since)
    if leads.empty:
        return []
    owners = _clean(leads["owner_id"])
    due = pd.to_datetime(_clean(leads["sla_due_at"]), utc=True, format="ISO8601", errors="coerce")
    at = pd.to_datetime(_clean(leads["assigned_at"]), utc=True, format="ISO8601", errors="coerce")
    # Most urgent first within each owner; the sort is on plain datetime64 (UTC), NaT last.
    order = pd.DataFrame({"owner": owners.to_numpy(), "due": due.dt.tz_localize(None).to_numpy(),
                          "pos": np.arange(len(leads))})
    order = order.sort_values(["owner", "due", "pos"], na_position="last", kind="stable")
    base = (str(config.record_url) if config.record_url is not None else record_url or "").rstrip("/")
    keys = _lead_keys(leads)
    messages: list[OwnerMessage] = []
    for owner_id, group in order.groupby("owner", sort=False):
        owner = _resolve_owner(str(owner_id), config, routing, directory_emails or {})
        positions = group["pos"].to_numpy()
        digest = len(positions) > config.batch_threshold
        shown = positions[: config.digest_max_lines] if digest else positions
        rows = leads.iloc[shown].to_dict("records")  # only the leads a message shows are formatted
        values = [_lead_values(row, due.iloc[p], at.iloc[p], owner, base) for row, p in zip(rows, shown)]
        if digest:
            messages.append(_digest(owner, values, tuple(keys[positions]), due.iloc[shown[0]], config))
        else:
            messages += [_single(owner, v, str(keys[p]), config) for v, p in zip(values, positions)]
    return messages


def build_escalation_messages(
    notices: pd.DataFrame,
    config: NotificationsConfig,
    *,
    routing: RoutingConfig | None = None,
    directory_emails: Mapping[str, str] | None = None,
    record_url: str | None = None,
) -> list[OwnerMessage]:
    """One message per escalation notice (`leadflow.routing.escalation.claim_notices`: `action` remind or
    notify_manager, `recipient_id`, `owner_id`, `waiting`, `step_text`, the assignment's columns and the lead's fields),
    to its recipient: the `reminder_*` templates for the owner, `manager_*` for the owner's manager; times in the
    recipient's zone. Recipients in id order, then as given."""
    if notices.empty:
        return []
    base = (str(config.record_url) if config.record_url is not None else record_url or "").rstrip("/")
    emails = directory_emails or {}
    keys = _lead_keys(notices)
    t = config.templates
    order = np.argsort(notices["recipient_id"].astype(str).to_numpy(), kind="stable")
    messages: list[OwnerMessage] = []
    for position in order:
        row = notices.iloc[position].to_dict()
        recipient = _resolve_owner(str(row["recipient_id"]), config, routing, emails)
        owner = _resolve_owner(str(row["owner_id"]), config, routing, emails)
        due = pd.to_datetime(row.get("sla_due_at"), utc=True)
        values = _lead_values(row, due, pd.to_datetime(row.get("assigned_at"), utc=True), recipient, base)
        values["owner_id"], values["owner_name"] = owner.owner_id, owner.name
        values["manager_name"] = recipient.name
        values["waiting"], values["step"] = _one_line(row.get("waiting")), _one_line(row.get("step_text"))
        subject, text = ((t.manager_subject, t.manager_text) if row["action"] == "notify_manager"
                         else (t.reminder_subject, t.reminder_text))
        plain, slack = _plain(values), _slack(values)
        messages.append(OwnerMessage(
            owner_id=recipient.owner_id, owner_name=recipient.name,
            subject=_subject(subject.format_map(plain)), text=text.format_map(plain),
            slack_text=recipient.mention + text.format_map(slack), lead_ids=(str(keys[position]),), digest=False,
            email=recipient.email, slack_user=recipient.slack_user, slack_channel=recipient.slack_channel,
        ))
    return messages


def local_time(moment: Any, zone: ZoneInfo) -> str:
    """`moment` (a UTC timestamp) in `zone`, ISO 8601 with offset and zone name; MISSING when unknown."""
    if moment is None or pd.isna(moment):
        return MISSING
    local = pd.Timestamp(moment).to_pydatetime().astimezone(zone).replace(microsecond=0)
    return f"{local.isoformat()} ({zone.key})"


def record_link(lead_id: str | None, base: str) -> str | None:
    """The Lightning record page of a Salesforce Lead: `<instance>/lightning/r/Lead/<id>/view` (page reference type
    standard__recordPage: https://developer.salesforce.com/docs/platform/lwc/guide/reference-page-reference-type.html);
    None without an instance URL or for an id that is not a Lead's."""
    if not base or lead_id is None or not SALESFORCE_LEAD_ID.match(lead_id):
        return None
    return f"{base}/lightning/r/Lead/{lead_id}/view"


def slack_escape(text: str) -> str:
    """&, < and > as Slack's mrkdwn needs them (https://api.slack.com/reference/surfaces/formatting#escaping): a lead
    typed into a web form cannot ping `<!channel>` or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- helpers ---------------------------------------------------------------------------------------------------------
def _clean(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def _one_line(value: Any) -> str | None:
    """A cell as one line of text (no control characters, so no header injection), None when empty; a number
    with at most one decimal."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float):
        text = f"{value:.1f}".removesuffix(".0")
    else:
        text = str(value)
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text or None


def _resolve_owner(owner_id: str, config: NotificationsConfig, routing: RoutingConfig | None,
                   directory_emails: Mapping[str, str]) -> _Owner:
    contact: OwnerContact | None = config.owners.get(owner_id)
    user = routing.users.get(owner_id) if routing is not None else None
    queue = next((key for key, q in routing.queues.items() if q.owner_id == owner_id), None) if routing else None
    name = (contact.name if contact else None) or (user.name if user else None) or (
        f"queue {queue}" if queue else owner_id)
    zone = ((contact.timezone if contact else None) or (user.timezone if user else None) or config.timezone
            or (routing.timezone if routing else None) or "UTC")
    email = (contact.email if contact else None) or _one_line(directory_emails.get(owner_id))
    slack_user = contact.slack_user if contact else None
    channel = None
    if config.slack is not None and config.slack.bot_token is not None:
        channel = (contact.slack_channel if contact else None) or slack_user or config.slack.default_channel
    return _Owner(owner_id, name, ZoneInfo(zone), email, slack_user, channel)


def _lead_values(row: Mapping[Any, Any], due: Any, at: Any, owner: _Owner, base: str) -> dict[str, str | None]:
    values: dict[str, str | None] = {key: _one_line(row.get(column)) for key, column in LEAD_COLUMNS.items()}
    if values["country"] is None:
        values["country"] = _one_line(row.get("country"))
    person = " ".join(v for v in (values["first_name"], values["last_name"]) if v)
    values["lead_name"] = person or values["email"] or values["lead_id"] or MISSING
    values["sla_due_at"] = local_time(due, owner.zone)
    values["assigned_at"] = local_time(at, owner.zone)
    values["link"] = record_link(values["lead_id"], base)
    values["owner_id"], values["owner_name"] = owner.owner_id, owner.name
    return values


def _plain(values: Mapping[str, str | None]) -> dict[str, str]:
    out = {k: MISSING if v is None else v for k, v in values.items()}
    if values.get("link", "") is None:
        out["link"] = NO_LINK
    return out


def _slack(values: Mapping[str, str | None]) -> dict[str, str]:
    out = {k: slack_escape(v) for k, v in _plain(values).items()}
    link = values.get("link")
    if link:
        out["link"] = f"<{link}>"  # our own URL: id and instance checked, nothing to escape
    return out


def _lead_keys(leads: pd.DataFrame) -> np.ndarray:
    """Per lead (positional, an object array): lead_id, else e-mail, else `index <label>` in the frame."""
    keys = pd.Series(pd.NA, index=leads.index, dtype="string")
    for column in ("lead_id", "email"):
        if column in leads.columns:
            keys = keys.fillna(_clean(leads[column]))
    out = keys.to_numpy(dtype=object, na_value=None)
    for i in np.flatnonzero(keys.isna().to_numpy()):
        out[i] = f"index {leads.index[i]}"
    return out


def _subject(text: str) -> str:
    return " ".join(text.split())


def _single(owner: _Owner, values: dict[str, str | None], key: str, config: NotificationsConfig) -> OwnerMessage:
    t = config.templates
    plain, slack = _plain(values), _slack(values)
    return OwnerMessage(
        owner_id=owner.owner_id, owner_name=owner.name,
        subject=_subject(t.lead_subject.format_map(plain)), text=t.lead_text.format_map(plain),
        slack_text=owner.mention + t.lead_text.format_map(slack),
        lead_ids=(key,), digest=False, email=owner.email, slack_user=owner.slack_user,
        slack_channel=owner.slack_channel,
    )


def _digest(owner: _Owner, shown: list[dict[str, str | None]], keys: tuple[str, ...], first_due: Any,
            config: NotificationsConfig) -> OwnerMessage:
    t = config.templates
    left = len(keys) - len(shown)
    more = f"\n… and {left} more" if left else ""
    common = {"owner_id": owner.owner_id, "owner_name": owner.name, "count": str(len(keys)),
              "first_due": local_time(first_due, owner.zone)}
    plain = {**common, "leads": "\n".join(t.digest_line.format_map(_plain(v)) for v in shown), "more": more}
    slack = {**{k: slack_escape(v) for k, v in common.items()},
             "leads": "\n".join(t.digest_line.format_map(_slack(v)) for v in shown), "more": slack_escape(more)}
    return OwnerMessage(
        owner_id=owner.owner_id, owner_name=owner.name,
        subject=_subject(t.digest_subject.format_map(plain)), text=t.digest_text.format_map(plain),
        slack_text=owner.mention + t.digest_text.format_map(slack),
        lead_ids=keys, digest=True, email=owner.email,
        slack_user=owner.slack_user, slack_channel=owner.slack_channel,
    )
