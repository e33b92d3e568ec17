"""Escalation chain steps of a routing rule (`Rule.escalation` in `leadflow.routing.model`), as pydantic models.

```yaml
escalation:
  - {after: 5m, action: remind}                          # remind the owner
  - {after: 15m, action: notify_manager}                 # tell the owner's `manager` (a user in routing.yaml)
  - {after: 30m, action: reassign_pool}                  # route again to anyone but the owner (`pool:` to pick one)
  - {after: 60m, action: queue, queue: inbound_review}   # hand it to a queue
```

Steps come in increasing `after`; the cross-references (queues, pools) are checked by `RoutingConfig`, so every error
names its YAML path. What is due and firing it: `leadflow.routing.escalation`.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ESCALATION_ACTIONS", "OWNER_ACTIONS", "EscalationStep", "duration_text"]

ESCALATION_ACTIONS: Final[tuple[str, ...]] = ("remind", "notify_manager", "reassign_pool", "queue")
"""What an escalation step does: remind the owner, tell the owner's `manager`, route the lead again to anyone but its
owner (the rule's own action, or `pool`), or hand it to `queue`."""
OWNER_ACTIONS: Final[frozenset[str]] = frozenset({"reassign_pool", "queue"})
"""Escalation actions that change the lead's owner (written back to the CRM)."""
_DURATION: Final[re.Pattern[str]] = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")


def duration_text(minutes: int) -> str:
    """Minutes as the YAML writes them: 5m, 2h, 1h30m."""
    hours, rest = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{rest}m" if rest or not hours else "")


class EscalationStep(BaseModel):
    """One step of a rule's escalation chain: `{after: 15m, action: notify_manager}`. `after` (5m, 2h, 1h30m) counts
    from the assignment the way the rule's SLA does: the owner's working minutes when `sla_working_hours`, else
    plain minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after: int = Field(ge=1, description="Minutes; YAML: 5m, 2h, 1h30m.")
    action: Literal["remind", "notify_manager", "reassign_pool", "queue"]
    queue: str | None = Field(default=None, description="action queue: the queue the lead goes to.")
    pool: str | None = Field(default=None, description="action reassign_pool: this pool (default: the rule's "
                             "action again), to anyone but the owner.")

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f'write `after` with its unit, e.g. "5m", "2h" or "1h30m" (got {value!r})')
        found = _DURATION.match(value.strip().lower().replace(" ", ""))
        if not found or not any(found.groups()):
            raise ValueError(f"{value!r} is not a duration like 5m, 2h or 1h30m")
        return int(found.group(1) or 0) * 60 + int(found.group(2) or 0)

    @model_validator(mode="after")
    def _target(self) -> EscalationStep:
        if (self.queue is not None) != (self.action == "queue"):
            raise ValueError("`queue` names the queue of a `queue` step, and only of one")
        if self.pool is not None and self.action != "reassign_pool":
            raise ValueError("`pool` belongs to a `reassign_pool` step")
        return self

    def text(self) -> str:
        target = f" {self.queue}" if self.queue else f" {self.pool}" if self.pool else ""
        return f"after {duration_text(self.after)}: {self.action}{target}"
