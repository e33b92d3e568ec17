"""Lead routing: who works this lead, and by when — rules as data, evaluated vectorised, as a pure function.

What lives where: `model` is the routing config as pydantic models (users, working hours, out of office, pools and
members, queues, territories, rules and their actions) with the cross-reference checks, and documents the YAML
format; `loading` reads it (`load_routing_config`, `DEFAULT_ROUTING`), adds out-of-office files and the CRM's inactive
users (`availability_from_file`, `with_availability`) and prints the rules for a runbook (`explain`); `times` holds
availability at a moment and SLA due times in working hours; `router` applies each rule's action to its leads at
once (assign_to, account owner, territory, queue, hold, `otherwise`); `pools` has the round-robin state carried
between runs (`RoutingState`) and the smooth weighted round robin with daily caps and overflow; `route` is the entry
point, `route_leads`, and builds the ROUTING_COLUMNS output. Everything above is importable from `leadflow.routing`.
Beside them: `ownership` (which leads are leadflow's to route: open, unconverted, owned by nobody, a queue or an
inactive user, unless a rule's `reassign` says more), `sla` (first-touch breaches and reassignment) and `simulate`
(`leadflow routing test` cases and `routing simulate`), imported by their module path.
"""

from __future__ import annotations

from leadflow.routing.loading import (
    DEFAULT_ROUTING,
    availability_from_file,
    explain,
    load_routing_config,
    with_availability,
)
from leadflow.routing.model import (
    ACTION_KINDS,
    DAYS,
    Action,
    DateRange,
    Member,
    Pool,
    PostalRange,
    Queue,
    RoutingConfig,
    Rule,
    Territory,
    User,
    WorkingHours,
)
from leadflow.routing.pools import RoutingState
from leadflow.routing.route import ROUTING_COLUMNS, route_leads

# The former module's private helpers, still reachable as `leadflow.routing._name` (not part of the API).
from leadflow.routing.model import _country, _error, _known, _normal_postal, _text, iana_zone  # noqa: F401
from leadflow.routing.pools import _STATE_DAYS_KEPT, _round_robin  # noqa: F401
from leadflow.routing.route import _ISO, _iso_strings, _present, _previous  # noqa: F401
from leadflow.routing.router import _Out, _Router, _territories  # noqa: F401
from leadflow.routing.times import _available, _due, _utc  # noqa: F401

__all__ = [
    "ACTION_KINDS",
    "DAYS",
    "DEFAULT_ROUTING",
    "ROUTING_COLUMNS",
    "Action",
    "DateRange",
    "Member",
    "Pool",
    "PostalRange",
    "Queue",
    "RoutingConfig",
    "RoutingState",
    "Rule",
    "Territory",
    "User",
    "WorkingHours",
    "availability_from_file",
    "explain",
    "load_routing_config",
    "route_leads",
    "with_availability",
]

