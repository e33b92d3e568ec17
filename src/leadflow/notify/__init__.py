"""Owner notifications: tell the rep a lead is theirs — who, from which company, why it was routed to them, by when
the first touch is due, and a link to the record — on Slack and by e-mail.

What lives where: `config` is the `notifications:` section of the run config as pydantic models (Slack webhook or
bot token, SMTP server, owner contacts, message templates, the digest threshold; secrets by reference) and
`load_notifications`; `messages` builds the messages from the assign stage's output as a pure function (one per lead,
or one digest per owner in a bulk run; times in the owner's zone); `senders` sends them (Slack incoming webhook or
chat.postMessage, SMTP) and reports one `Delivery` per owner and channel, a failure never stopping the others.
`notify_owners` is both steps in one call, for a flow after the assign stage.
"""

from __future__ import annotations

from leadflow.notify.config import NotificationsConfig, load_notifications
from leadflow.notify.messages import OwnerMessage, build_messages, newly_assigned
from leadflow.notify.senders import Delivery, notify_owners, send_notifications, summarize

__all__ = [
    "Delivery",
    "NotificationsConfig",
    "OwnerMessage",
    "build_messages",
    "load_notifications",
    "newly_assigned",
    "notify_owners",
    "send_notifications",
    "summarize",
]
