"""Lead routing: who works this lead, and by when — rules as data, evaluated vectorised, as a pure function.

The routing config is YAML (`reference/routing.yaml`, loaded with `load_routing_config`):

- **users** keyed by owner id (the CRM user id): `active`, a time zone, `working_hours` (days and a local start/end;
  none = always working) and `out_of_office` date ranges (inclusive, local dates).
- **pools** of members with a `weight` and an optional `daily_cap`. A pool hands out leads by smooth weighted round
  robin (nginx's algorithm: deterministic, exactly proportional to the weights over a cycle) among its members that
  are available at `as_of` and below their cap; when nobody is left its `overflow` action applies (default: hold
  "pool <name> unavailable").
- **queues** (a CRM queue id as owner) and **territories** (country, ISO 3166-2 state, postal range, segment,
  industry → a pool; every criterion a territory lists must match; the first matching territory wins).
- **rules**, first match wins; each has a `when` condition (`leadflow.conditions`; none = always) and one action:
  `assign_to: <user>`, `account_owner: true`, `territory: true`, `pool: <pool>`, `queue: <queue>` or
  `hold: <reason>`, and optionally `otherwise` (for `assign_to`, `account_owner` and `territory`: what to do when
  the user is unavailable / there is no available account owner / no territory; default: a hold). The last rule
  must have no `when`: a lead is never left without an outcome.

Availability at `as_of`: the user is active, not out of office on that local date and within working hours.
An `assign_to` user who is unavailable still gets the lead unless the action has an `otherwise`. An account owner
who is not one of the configured users counts as unavailable (leadflow knows nothing about their calendar).
Daily caps count round-robin assignments per user and local day (across pools).

Output (`route_leads`): ROUTING_COLUMNS, all strings. `routing_reason` says what happened, with the path in
brackets, e.g. `pool emea_ae round robin (territory EMEA)` or `hold: possible duplicate`. Holds have no owner and no
`assigned_at`, so the next run routes them again; an assigned lead (previous `routing_rule` and `assigned_at`
present in the frame) keeps its routing unless the rule matching it now has `reassign: true`. Which leads are
leadflow's to route at all (not a person's, not worked, not converted): `leadflow.ownership`.
`sla_due_at = assigned_at + sla_minutes`, counting only the owner's working hours when `sla_working_hours`
(queues and users without working hours: plain minutes).

Performance: every rule condition and territory is evaluated once over the whole frame; only the pool round robin
is a sequential loop over plain Python ints; reasons and times are built once per distinct value.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from leadflow.conditions import Condition, describe, evaluate
from leadflow.errors import ConfigError
from leadflow.ownership import Ownership, Reassign, decide_ownership
from leadflow.settings import REFERENCE_DIR
from leadflow.yamlio import load_yaml, parse_model

__all__ = [
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
]

DEFAULT_ROUTING: Final[Path] = REFERENCE_DIR / "routing.yaml"
ROUTING_COLUMNS: Final[tuple[str, ...]] = ("owner_id", "routing_rule", "routing_reason", "assigned_at", "sla_due_at")
DAYS: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTION_KINDS: Final[tuple[str, ...]] = ("assign_to", "account_owner", "territory", "pool", "queue", "hold")
_ISO: Final[str] = "%Y-%m-%dT%H:%M:%SZ"
_STATE_DAYS_KEPT: Final[int] = 2
"""Daily-cap counts older than this many days before `as_of` are dropped from the state."""


# ------------------------------------------------------------------------------------------------------------ model


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin, America/New_York)") from None
    return value


def _country(value: Any) -> str:
    if isinstance(value, bool):
        raise ValueError(f'YAML read {value!r} as a boolean: quote the country code (e.g. "NO" for Norway)')
    code = str(value).strip().upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f'YAML read the {what} as {type(value).__name__} {value!r}: quote it ("{value}")')
    return value


class DateRange(BaseModel):
    """Inclusive local dates: `{from: 2026-12-24, to: 2027-01-02}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.start > self.end:
            raise ValueError(f"from {self.start} is after to {self.end}")
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


class WorkingHours(BaseModel):
    """Local working time: `{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:30"}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    start: dtime = dtime(9, 0)
    end: dtime = dtime(17, 30)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 17:30 as the sexagesimal number 1050.
            raise ValueError(f'YAML read the time as the number {value}: quote it ("17:30")')
        if isinstance(value, str):
            try:
                hours, minutes = value.strip().split(":")
                return dtime(int(hours), int(minutes))
            except ValueError:
                raise ValueError(f"{value!r} is not a time of day HH:MM") from None
        return value

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M}")
        if len(set(self.days)) != len(self.days):
            raise ValueError("a day is listed twice")
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(DAYS.index(d) for d in self.days)


class User(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    active: bool = True
    timezone: str | None = Field(default=None, description="IANA; default: the config's timezone.")
    working_hours: WorkingHours | None = Field(default=None, description="None: always working.")
    out_of_office: list[DateRange] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _zone(value)


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    weight: int = Field(default=1, ge=1)
    daily_cap: int | None = Field(default=None, ge=0, description="Round-robin leads per local day.")


class Action(BaseModel):
    """Exactly one of `assign_to`, `account_owner`, `territory`, `pool`, `queue`, `hold`; `otherwise` applies when
    `assign_to`'s user is unavailable, there is no available account owner, or no territory matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assign_to: str | None = None
    account_owner: bool | None = None
    territory: bool | None = None
    pool: str | None = None
    queue: str | None = None
    hold: str | None = None
    otherwise: Action | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Action:
        used = [k for k in ACTION_KINDS if getattr(self, k) not in (None, False)]
        if len(used) != 1:
            found = "none" if not used else ", ".join(used)
            raise ValueError(f"give exactly one action of {', '.join(ACTION_KINDS)} (found {found})")
        for flag in ("account_owner", "territory"):
            if getattr(self, flag) is False:
                raise ValueError(f"{flag}: false is not an action; remove it")
        if self.otherwise is not None and used[0] in ("pool", "queue", "hold"):
            hint = " (a pool's `overflow` says what happens when nobody is available)" if used[0] == "pool" else ""
            raise ValueError(f"`otherwise` does not apply to {used[0]}{hint}")
        if self.hold is not None and not self.hold.strip():
            raise ValueError("hold needs a reason")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) not in (None, False))

    def text(self) -> str:
        kind = self.kind
        main = {
            "assign_to": f"assign to {self.assign_to}",
            "account_owner": "account owner",
            "territory": "territory",
            "pool": f"pool {self.pool}",
            "queue": f"queue {self.queue}",
            "hold": f"hold: {self.hold}",
        }[kind]
        return main + (f", otherwise {self.otherwise.text()}" if self.otherwise is not None else "")


class Pool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[Member] = Field(min_length=1)
    overflow: Action | None = Field(default=None, description='Default: hold "pool <name> unavailable".')

    @field_validator("members")
    @classmethod
    def _unique(cls, members: list[Member]) -> list[Member]:
        seen = [m.user for m in members]
        dupes = sorted({u for u in seen if seen.count(u) > 1})
        if dupes:
            raise ValueError(f"user {dupes[0]!r} is a member twice")
        return members


class Queue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    owner_id: str = Field(min_length=1, description="The CRM queue id written as the lead's owner.")
    name: str | None = None

    @field_validator("owner_id", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        return _text(value, "owner_id")


class PostalRange(BaseModel):
    """`{country: US, from: "90000", to: "96199"}`: normalised codes (upper case, no spaces) `from ≤ code` and
    the code's first len(to) characters `≤ to` (so ZIP+4 and full UK postcodes fall into prefix ranges)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    country: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")

    @field_validator("country", mode="before")
    @classmethod
    def _cc(cls, value: Any) -> str:
        return _country(value)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        return _normal_postal(_text(value, "postal code"))

    @model_validator(mode="after")
    def _ordered(self) -> PostalRange:
        if self.start[: len(self.end)] > self.end:
            raise ValueError(f"from {self.start!r} is after to {self.end!r}")
        return self


def _normal_postal(value: str) -> str:
    return value.upper().replace(" ", "").strip()


class Territory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    countries: list[str] = Field(default_factory=list)
    states: list[str] = Field(default_factory=list, description='ISO 3166-2 ("US-CA"), tested on state_code.')
    postal_ranges: list[PostalRange] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)
    industries: list[str] = Field(default_factory=list)
    pool: str

    @field_validator("countries", mode="before")
    @classmethod
    def _countries(cls, values: Any) -> Any:
        return [_country(v) for v in values] if isinstance(values, list) else values

    @field_validator("states")
    @classmethod
    def _states(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            code = value.strip().upper()
            if pycountry.subdivisions.get(code=code) is None:
                raise ValueError(f"{value!r} is not an ISO 3166-2 subdivision code (e.g. US-CA, CA-ON, DE-BY)")
            out.append(code)
        return out


class Rule(Action):
    """A named, conditional action (first match wins)."""

    name: str = Field(min_length=1)
    when: Condition | None = Field(default=None, description="None: every lead.")
    sla_minutes: int | None = Field(default=None, ge=1)
    sla_working_hours: bool = True
    reassign: bool | Reassign = Field(
        default=False, description="true: leads leadflow assigned earlier are routed again; an object "
        "(`leadflow.ownership.Reassign`): re-own matching leads, even a person's, when its conditions hold.")
    on_sla_breach: Literal["alert", "reassign"] = Field(
        default="alert", description="reassign: a lead past this rule's SLA with no first touch is routed again, "
        "to anyone but its current owner (the breach is alerted either way)."
    )

    @field_validator("reassign", mode="before")
    @classmethod
    def _reassign(cls, value: Any) -> Any:
        if isinstance(value, dict):  # validated here, so an error names the condition, not the union's members
            try:
                return Reassign.model_validate(value)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                message = first["msg"].removeprefix("Value error, ")
                raise ValueError(f"{where}: {message}" if where else message) from None
        if value is None:
            return False
        if isinstance(value, bool | Reassign):
            return value
        raise ValueError("reassign is true, false or conditions {statuses, min_age_hours, age_from, owners}")


def _error(loc: tuple[str | int, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("routing_reference", message.replace("{", "(").replace("}", ")")),
                            loc=loc, input=None)


class RoutingConfig(BaseModel):
    """A versioned routing configuration (YAML: `load_routing_config`)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    timezone: str = "UTC"
    users: dict[str, User] = Field(min_length=1)
    pools: dict[str, Pool] = Field(default_factory=dict)
    queues: dict[str, Queue] = Field(default_factory=dict)
    territories: list[Territory] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _text_version(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError(f'YAML read the version as {type(value).__name__} {value!r}: quote it ("2026.11")')
        return value.strip() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _zone(value)

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        errors: list[InitErrorDetails] = []

        def check(action: Action, loc: tuple[str | int, ...]) -> None:
            if action.assign_to is not None and action.assign_to not in self.users:
                errors.append(_error((*loc, "assign_to"), f"unknown user {action.assign_to!r}{_known(self.users)}"))
            if action.pool is not None and action.pool not in self.pools:
                errors.append(_error((*loc, "pool"), f"unknown pool {action.pool!r}{_known(self.pools)}"))
            if action.queue is not None and action.queue not in self.queues:
                errors.append(_error((*loc, "queue"), f"unknown queue {action.queue!r}{_known(self.queues)}"))
            if action.territory and not self.territories:
                errors.append(_error((*loc, "territory"), "no territories are defined"))
            if action.otherwise is not None:
                check(action.otherwise, (*loc, "otherwise"))

        for name, pool in self.pools.items():
            for i, member in enumerate(pool.members):
                if member.user not in self.users:
                    errors.append(_error(("pools", name, "members", i, "user"),
                                         f"unknown user {member.user!r}{_known(self.users)}"))
            if pool.overflow is not None:
                check(pool.overflow, ("pools", name, "overflow"))
        for i, territory in enumerate(self.territories):
            if territory.pool not in self.pools:
                errors.append(_error(("territories", i, "pool"), f"unknown pool {territory.pool!r}{_known(self.pools)}"))
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            check(rule, ("rules", i))
            if rule.name in seen:
                errors.append(_error(("rules", i, "name"), f"rule name {rule.name!r} is used twice (rules[{seen[rule.name]}])"))
            seen.setdefault(rule.name, i)
            if rule.when is None and i < len(self.rules) - 1:
                errors.append(_error(("rules", i, "when"),
                                     f"rule {rule.name!r} has no `when` and matches every lead: the rules after it "
                                     "never match (only the last rule, the fallback, may omit `when`)"))
        if self.rules and self.rules[-1].when is not None:
            errors.append(_error(("rules",), f"the last rule ({self.rules[-1].name!r}) must have no `when`: a fallback "
                                 "rule, so that a lead is never left without an outcome"))
        if not errors:
            cycle = self._overflow_cycle()
            if cycle:
                errors.append(_error(("pools", cycle[0], "overflow"), f"overflow goes round in a circle: {' → '.join(cycle)}"))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        for name, pool in self.pools.items():
            if pool.overflow is None:
                pool.overflow = Action(hold=f"pool {name} unavailable")
        return self

    def _pools_of(self, action: Action | None) -> set[str]:
        if action is None:
            return set()
        out = {action.pool} if action.pool else set()
        if action.territory:
            out |= {t.pool for t in self.territories}
        return out | self._pools_of(action.otherwise)

    def _overflow_cycle(self) -> list[str]:
        graph = {p: sorted(self._pools_of(pool.overflow)) for p, pool in self.pools.items()}
        state: dict[str, int] = {}

        def visit(p: str, path: list[str]) -> list[str]:
            state[p] = 1
            for q in graph.get(p, []):
                if state.get(q) == 1:
                    return [*path[path.index(q):], q] if q in path else [p, q]
                if q not in state:
                    found = visit(q, [*path, q])
                    if found:
                        return found
            state[p] = 2
            return []

        for p in graph:
            if p not in state:
                found = visit(p, [p])
                if found:
                    return found
        return []

    def zone_of(self, user: str) -> ZoneInfo:
        return ZoneInfo(self.users[user].timezone or self.timezone)


def _known(names: Iterable[str]) -> str:
    names = list(names)
    return f" (known: {', '.join(names)})" if names and len(names) <= 12 else ""


def load_routing_config(path: Path = DEFAULT_ROUTING) -> RoutingConfig:
    """Load and validate a routing YAML; errors name the file and YAML path (`pools.emea.members[0].user`)."""
    return parse_model(RoutingConfig, load_yaml(path), path)


def availability_from_file(path: Path) -> dict[str, list[DateRange]]:
    """Out-of-office ranges from a CSV with columns user_id, from, to (ISO dates, inclusive): user → ranges."""
    out: dict[str, list[DateRange]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"user_id", "from", "to"} - set(reader.fieldnames or [])
            if missing:
                raise ConfigError(str(path), f"missing column(s) {', '.join(sorted(missing))}")
            for row_number, row in enumerate(reader, start=2):
                try:
                    dr = DateRange.model_validate({"from": row["from"].strip(), "to": row["to"].strip()})
                except ValidationError as exc:
                    raise ConfigError(str(path), f"row {row_number}: {exc.errors()[0]['msg']}") from None
                out.setdefault(row["user_id"].strip(), []).append(dr)
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    return out


def explain(config: RoutingConfig) -> str:
    """The rules in order, as text for a runbook."""
    lines = [f"routing {config.version} ({config.timezone}), first match wins:"]
    for i, rule in enumerate(config.rules, start=1):
        when = describe(rule.when) if rule.when is not None else "every other lead (fallback)"
        extra = []
        if rule.sla_minutes:
            extra.append(f"SLA {rule.sla_minutes} min" + (" of working time" if rule.sla_working_hours else ""))
        if isinstance(rule.reassign, Reassign):
            extra.append(rule.reassign.text())
        elif rule.reassign:
            extra.append("re-routes assigned leads")
        lines.append(f"{i}. {rule.name}: if {when} → {rule.text()}" + (f" [{'; '.join(extra)}]" if extra else ""))
    for name, pool in config.pools.items():
        members = ", ".join(f"{config.users[m.user].name} ×{m.weight}" + (f" (cap {m.daily_cap}/day)" if m.daily_cap is not None else "")
                            for m in pool.members)
        lines.append(f"pool {name}: {members}; overflow: {pool.overflow.text() if pool.overflow else '-'}")
    for t in config.territories:
        crit = [f"{k} {', '.join(map(str, getattr(t, k)))}" for k in ("countries", "states", "segments", "industries")
                if getattr(t, k)]
        crit += [f"postal {r.country} {r.start}–{r.end}" for r in t.postal_ranges]
        lines.append(f"territory {t.name}: {'; '.join(crit) or 'everything'} → pool {t.pool}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ state


@dataclass
class RoutingState:
    """What a run carries to the next: round-robin current weights per pool member, and today's assignment counts."""

    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    assigned_today: dict[tuple[str, str], int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "weights": {p: dict(sorted(w.items())) for p, w in sorted(self.weights.items())},
            "assigned_today": [[u, d, c] for (u, d), c in sorted(self.assigned_today.items())],
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any] | None) -> RoutingState:
        if text is None or text == "":
            return cls()
        data = json.loads(text) if isinstance(text, str | bytes) else text
        return cls(
            weights={str(p): {str(u): int(v) for u, v in w.items()} for p, w in (data.get("weights") or {}).items()},
            assigned_today={(str(u), str(d)): int(c) for u, d, c in data.get("assigned_today") or []},
        )

    def copy(self) -> RoutingState:
        return RoutingState({p: dict(w) for p, w in self.weights.items()}, dict(self.assigned_today))


# ------------------------------------------------------------------------------------------------------------ times


def _utc(as_of: datetime) -> datetime:
    return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)


def _available(user: User, zone: ZoneInfo, as_of: datetime) -> bool:
    if not user.active:
        return False
    local = as_of.astimezone(zone)
    if any(r.covers(local.date()) for r in user.out_of_office):
        return False
    hours = user.working_hours
    if hours is None:
        return True
    return local.weekday() in hours.weekdays and hours.start <= local.time().replace(tzinfo=None) < hours.end


def _due(start: datetime, minutes: int, zone: ZoneInfo, user: User | None) -> datetime:
    """`start` + `minutes` of working time of `user` (plain minutes without working hours); UTC."""
    if user is None or user.working_hours is None:
        return start + timedelta(minutes=minutes)
    hours = user.working_hours
    remaining = timedelta(minutes=minutes)
    day = start.astimezone(zone).date()
    for _ in range(3700):  # ten years of days: out-of-office never blocks forever
        if day.weekday() in hours.weekdays and not any(r.covers(day) for r in user.out_of_office):
            opens = datetime.combine(day, hours.start, zone).astimezone(UTC)
            closes = datetime.combine(day, hours.end, zone).astimezone(UTC)
            begin = max(opens, start)
            if begin < closes:
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    return start + timedelta(minutes=minutes)  # pragma: no cover - no working day in ten years


# ---------------------------------------------------------------------------------------------------------- routing


@dataclass
class _Out:
    """Per-lead result codes: owner (-1 none), final text, notes (the path), pool (≥0: round robin still to do)."""

    owner: np.ndarray
    text: np.ndarray
    notes: np.ndarray
    pool: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Out:
        return cls(np.full(n, -1, np.int32), np.full(n, -1, np.int32), np.zeros(n, np.int32), np.full(n, -1, np.int32))


class _Router:
    def __init__(self, frame: pd.DataFrame, config: RoutingConfig, as_of: datetime) -> None:
        self.frame, self.config, self.as_of, self.n = frame, config, as_of, len(frame)
        self.user_ids = list(config.users)
        self.user_ix = {u: i for i, u in enumerate(self.user_ids)}
        self.zones = [config.zone_of(u) for u in self.user_ids]
        self.available = np.array([_available(config.users[u], z, as_of) for u, z in zip(self.user_ids, self.zones, strict=True)],
                                  dtype=bool)
        self.local_day = [as_of.astimezone(z).date().isoformat() for z in self.zones]
        self.queue_names = list(config.queues)
        self.owners = self.user_ids + [config.queues[q].owner_id for q in self.queue_names]
        self.pool_names = list(config.pools)
        self.pool_ix = {p: i for i, p in enumerate(self.pool_names)}
        self.pool_open = [bool(any(self.available[self.user_ix[m.user]] for m in config.pools[p].members))
                          for p in self.pool_names]
        self.texts: list[str] = []
        self._text_ix: dict[str, int] = {}
        self.notes: list[tuple[str, ...]] = [()]
        self._notes_ix: dict[tuple[str, ...], int] = {(): 0}
        self._account: np.ndarray | None = None
        self._territory: np.ndarray | None = None
        self._overflow: dict[int, _Out] = {}

    # interning
    def text(self, value: str) -> int:
        code = self._text_ix.get(value)
        if code is None:
            code = self._text_ix[value] = len(self.texts)
            self.texts.append(value)
        return code

    def note(self, notes: int, *extra: str) -> int:
        key = self.notes[notes] + tuple(e for e in extra if e)
        code = self._notes_ix.get(key)
        if code is None:
            code = self._notes_ix[key] = len(self.notes)
            self.notes.append(key)
        return code

    def join(self, first: int, second: int) -> int:
        return self.note(first, *self.notes[second]) if second else first

    # lead facts, computed once when an action needs them
    def account_users(self) -> np.ndarray:
        """Per lead: the account owner's user index, -1 not a configured user, -2 no account owner."""
        if self._account is None:
            column = self.frame["account_owner_id"] if "account_owner_id" in self.frame else pd.Series(pd.NA, index=self.frame.index)
            codes, uniques = pd.factorize(column.astype("string").str.strip(), use_na_sentinel=True)
            lookup = np.array([self.user_ix.get(str(u), -1) if str(u) else -2 for u in uniques] + [-2], dtype=np.int32)
            self._account = lookup[codes]
        return self._account

    def territories(self) -> np.ndarray:
        """Per lead: the index of the first matching territory, -1 none."""
        if self._territory is None:
            self._territory = _territories(self.frame, self.config.territories)
        return self._territory

    # actions (static: everything but the round robin itself)
    def final(self, out: _Out, idx: np.ndarray, owner: int | np.ndarray, text: str, notes: int) -> None:
        out.owner[idx] = owner
        out.text[idx] = self.text(text)
        out.notes[idx] = notes
        out.pool[idx] = -1

    def apply(self, action: Action, idx: np.ndarray, notes: int, out: _Out) -> None:
        if idx.size == 0:
            return
        kind = action.kind
        users = self.config.users
        if kind == "hold":
            self.final(out, idx, -1, f"hold: {action.hold}", notes)
        elif kind == "queue":
            q = action.queue
            assert q is not None
            self.final(out, idx, len(self.user_ids) + self.queue_names.index(q), f"queue {self.config.queues[q].name or q}", notes)
        elif kind == "pool":
            assert action.pool is not None
            self.pool(self.pool_ix[action.pool], idx, notes, out)
        elif kind == "assign_to":
            assert action.assign_to is not None
            u = self.user_ix[action.assign_to]
            name = users[action.assign_to].name
            if self.available[u]:
                self.final(out, idx, u, f"assigned to {name}", notes)
            elif action.otherwise is not None:
                self.apply(action.otherwise, idx, self.note(notes, f"{name} unavailable"), out)
            else:
                self.final(out, idx, u, f"assigned to {name}", self.note(notes, f"{name} unavailable"))
        elif kind == "account_owner":
            owner = self.account_users()[idx]
            ok = owner >= 0
            ok[ok] = self.available[owner[ok]]
            self.final(out, idx[ok], owner[ok], "account owner", notes)
            self.otherwise(action, idx[owner == -2], notes, "no account owner", out)
            self.otherwise(action, idx[owner == -1], notes, "account owner not a routing user", out)
            away = (owner >= 0) & ~ok
            for u in np.unique(owner[away]).tolist():
                name = users[self.user_ids[u]].name
                self.otherwise(action, idx[away & (owner == u)], notes, f"account owner {name} unavailable", out)
        else:  # territory
            found = self.territories()[idx]
            self.otherwise(action, idx[found < 0], notes, "no territory", out, hold="no matching territory")
            for t in np.unique(found[found >= 0]).tolist():
                territory = self.config.territories[t]
                self.pool(self.pool_ix[territory.pool], idx[found == t], self.note(notes, f"territory {territory.name}"), out)

    def otherwise(self, action: Action, idx: np.ndarray, notes: int, why: str, out: _Out, hold: str = "") -> None:
        """`action.otherwise` for these leads, noting why; without one, a hold with `why` (or `hold`) as reason."""
        if idx.size == 0:
            return
        if action.otherwise is not None:
            self.apply(action.otherwise, idx, self.note(notes, why), out)
        else:
            self.final(out, idx, -1, f"hold: {hold or why}", notes)

    def pool(self, p: int, idx: np.ndarray, notes: int, out: _Out) -> None:
        if self.pool_open[p]:
            out.owner[idx] = -1
            out.text[idx] = -1
            out.notes[idx] = notes
            out.pool[idx] = p
        else:  # nobody in the pool is available at all: its overflow, decided now
            action, note = self.overflow_action(p)
            self.apply(action, idx, self.note(notes, note), out)

    def overflow_action(self, p: int) -> tuple[Action, str]:
        name = self.pool_names[p]
        action = self.config.pools[name].overflow
        assert action is not None
        default = action.kind == "hold" and action.hold == f"pool {name} unavailable"
        return action, "" if default else f"pool {name}: nobody available"

    def overflow(self, p: int) -> _Out:
        """The static outcome of pool `p`'s overflow for every lead (computed once, when first needed)."""
        if p not in self._overflow:
            out = _Out.empty(self.n)
            action, note = self.overflow_action(p)
            self.apply(action, np.arange(self.n), self.note(0, note), out)
            self._overflow[p] = out
        return self._overflow[p]


def _territories(frame: pd.DataFrame, territories: list[Territory]) -> np.ndarray:
    n = len(frame)
    found = np.full(n, -1, dtype=np.int32)
    if not territories or n == 0:
        return found

    def text(column: str) -> pd.Series:
        values = frame[column] if column in frame else pd.Series(pd.NA, index=frame.index)
        return values.astype("string").str.strip()

    country = text("country_code").str.upper()
    postal_codes: tuple[np.ndarray, pd.Index] | None = None
    undecided = np.ones(n, dtype=bool)
    for t, territory in enumerate(territories):
        mask = undecided.copy()
        if territory.countries:
            mask &= country.isin(territory.countries).to_numpy(dtype=bool, na_value=False)
        if territory.states:
            # standardize writes the subdivision part ("CA"); territories name the full ISO 3166-2 code ("US-CA")
            state = text("state_code").str.upper()
            full = state.where(state.str.contains("-", regex=False), country + "-" + state)
            mask &= full.isin(territory.states).to_numpy(dtype=bool, na_value=False)
        if territory.segments:
            mask &= text("segment").isin(territory.segments).to_numpy(dtype=bool, na_value=False)
        if territory.industries:
            mask &= text("industry").isin(territory.industries).to_numpy(dtype=bool, na_value=False)
        if territory.postal_ranges:
            if postal_codes is None:
                codes, uniques = pd.factorize(text("postal_code").str.upper().str.replace(" ", "", regex=False),
                                              use_na_sentinel=True)
                postal_codes = (codes, pd.Index(uniques))
            codes, uniques = postal_codes
            values = pd.Series(uniques.astype(str), dtype=object)
            inside = np.zeros(n, dtype=bool)
            for r in territory.postal_ranges:
                hit = ((values >= r.start) & (values.str.slice(0, len(r.end)) <= r.end)).to_numpy(dtype=bool)
                inside |= np.append(hit, False)[codes] & (country == r.country).to_numpy(dtype=bool, na_value=False)
            mask &= inside
        found[mask] = t
        undecided &= ~mask
    return found


def _iso_strings(values: list[str | None], codes: np.ndarray, index: pd.Index) -> pd.Series:
    """`values[codes]` (code -1: NA) as a "string" Series, built by Arrow from the distinct values."""
    table = pa.array([*values, None], type=pa.large_string())
    taken = table.take(pa.array(np.where(codes < 0, len(values), codes)))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([taken])), index=index).astype("string")


def _previous(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    values = frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        utc = values.dt.tz_convert(UTC) if isinstance(values.dtype, pd.DatetimeTZDtype) else values.dt.tz_localize(UTC)
        return utc.dt.strftime(_ISO).astype("string")
    return values.astype("string")


def _present(values: pd.Series) -> np.ndarray:
    return (values.notna() & (values.str.strip() != "")).to_numpy(dtype=bool, na_value=False)


def route_leads(
    frame: pd.DataFrame,
    config: RoutingConfig,
    state: RoutingState,
    *,
    as_of: datetime,
    timings: dict[str, float] | None = None,
    ownership: Ownership | None = None,
) -> tuple[pd.DataFrame, RoutingState]:
    """Route every lead as of `as_of` (a naive datetime is UTC): (ROUTING_COLUMNS on `frame.index`, the new state).

    With `ownership` (the assign stage always passes one), only leads that are leadflow's to route are routed
    (`leadflow.ownership`); the others keep owner_id as given, with a `kept: …` routing_reason and no
    routing_rule, assigned_at or sla_due_at. Without it every lead is routed (simulations of leadflow's own
    assignments). `state` is not changed. Leads are handled in frame order; the same leads, order and state give
    the same result. `timings`, if given, receives seconds per part (`conditions`, `round_robin`, `output`)."""
    clock = time.perf_counter()
    as_of = _utc(as_of).replace(microsecond=0)
    n = len(frame)
    router = _Router(frame, config, as_of)

    # 1. The first matching rule per lead: every condition once, over the whole frame.
    rule_of = np.full(n, len(config.rules) - 1, dtype=np.int32)
    undecided = np.ones(n, dtype=bool)
    for r, rule in enumerate(config.rules[:-1]):
        assert rule.when is not None
        hit = evaluate(rule.when, frame) & undecided
        rule_of[hit] = r
        undecided &= ~hit

    # 2. Leads already assigned keep their routing unless their rule re-routes.
    previous = {c: _previous(frame, c) for c in ROUTING_COLUMNS}
    assigned = _present(previous["routing_rule"]) & _present(previous["assigned_at"])
    left = np.zeros(n, dtype=bool)
    if ownership is None:
        reassign = np.array([rule.reassign is True for rule in config.rules], dtype=bool)
        keep = assigned & ~reassign[rule_of]
    else:
        decision = decide_ownership(frame, config, ownership, rule_of, assigned, as_of)
        keep, left = decision.keep_previous, decision.left
    route = ~keep & ~left

    out = _Out.empty(n)
    for r, rule in enumerate(config.rules):
        router.apply(rule, np.flatnonzero(route & (rule_of == r)), 0, out)
    now = time.perf_counter()
    if timings is not None:
        timings["conditions"] = now - clock
    clock = now

    # 3. The round robin: sequential, in frame order, plain Python.
    new_state = state.copy()
    _round_robin(router, out, new_state, as_of)
    now = time.perf_counter()
    if timings is not None:
        timings["round_robin"] = now - clock
    clock = now

    # 4. Output: strings built once per distinct value.
    index = frame.index
    routed = route
    owner_codes = np.where(routed, out.owner, -1)
    owner = _iso_strings(router.owners, owner_codes, index)
    rule_names = [rule.name for rule in config.rules]
    rule_col = _iso_strings(rule_names, np.where(routed, rule_of, -1), index)

    reason_key = out.text.astype(np.int64) * len(router.notes) + out.notes
    reason_key = np.where(routed, reason_key, -1)
    keys, inverse = np.unique(reason_key, return_inverse=True)
    reasons: list[str | None] = []
    for key in keys.tolist():
        if key < 0:
            reasons.append(None)
            continue
        text, notes = router.texts[key // len(router.notes)], router.notes[key % len(router.notes)]
        reasons.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    reason = _iso_strings(reasons, np.asarray(inverse).reshape(-1).astype(np.int64), index)

    has_owner = routed & (out.owner >= 0)
    assigned_at = _iso_strings([as_of.strftime(_ISO)], np.where(has_owner, 0, -1), index)

    sla = np.array([rule.sla_minutes or 0 for rule in config.rules], dtype=np.int64)
    with_sla = has_owner & (sla[rule_of] > 0)
    due_key = np.where(with_sla, rule_of.astype(np.int64) * len(router.owners) + out.owner, -1)
    due_keys, due_inverse = np.unique(due_key, return_inverse=True)
    dues: list[str | None] = []
    for key in due_keys.tolist():
        if key < 0:
            dues.append(None)
            continue
        rule = config.rules[key // len(router.owners)]
        owner_ix = key % len(router.owners)
        is_user = owner_ix < len(router.user_ids)
        user = config.users[router.user_ids[owner_ix]] if is_user and rule.sla_working_hours else None
        zone = router.zones[owner_ix] if is_user else ZoneInfo(config.timezone)
        assert rule.sla_minutes is not None
        dues.append(_due(as_of, rule.sla_minutes, zone, user).strftime(_ISO))
    due = _iso_strings(dues, np.asarray(due_inverse).reshape(-1).astype(np.int64), index)

    result = pd.DataFrame({"owner_id": owner, "routing_rule": rule_col, "routing_reason": reason,
                           "assigned_at": assigned_at, "sla_due_at": due}, index=index)
    if keep.any():
        for column in ROUTING_COLUMNS:
            result[column] = result[column].mask(keep, previous[column])
    if left.any():  # left with its owner: the owner exactly as given, and why
        result["owner_id"] = result["owner_id"].mask(left, previous["owner_id"])
        result["routing_reason"] = result["routing_reason"].mask(left, decision.reason)
    if timings is not None:
        timings["output"] = time.perf_counter() - clock
    return result, new_state


def _round_robin(router: _Router, out: _Out, state: RoutingState, as_of: datetime) -> None:
    """Hand the leads waiting for a pool to its members (smooth weighted round robin), in frame order."""
    config = router.config
    todo = np.flatnonzero(out.pool >= 0)
    # Per pool, per member slot: user index, weight, cap, current weight (from the state); eligible slots.
    users_of: list[list[int]] = []
    weights_of: list[list[int]] = []
    caps_of: list[list[int]] = []
    current_of: list[list[int]] = []
    eligible: list[list[int]] = []
    big = 1 << 62
    for name in router.pool_names:
        members = config.pools[name].members
        saved = state.weights.get(name, {})
        users_of.append([router.user_ix[m.user] for m in members])
        weights_of.append([m.weight for m in members])
        caps_of.append([big if m.daily_cap is None else m.daily_cap for m in members])
        current_of.append([int(saved.get(m.user, 0)) for m in members])
        eligible.append([k for k, m in enumerate(members) if router.available[router.user_ix[m.user]]])
    count = [int(state.assigned_today.get((u, day), 0)) for u, day in zip(router.user_ids, router.local_day, strict=True)]
    before = list(count)

    pools = out.pool[todo].tolist()
    notes = out.notes[todo].tolist()
    served = [-1] * len(pools)
    owner = [-1] * len(pools)
    for j in range(len(pools)):
        p = pools[j]
        while True:
            slots = eligible[p]
            if slots:
                cw, ws, us, caps = current_of[p], weights_of[p], users_of[p], caps_of[p]
                best, best_value, total = -1, 0, 0
                for k in slots:
                    if count[us[k]] >= caps[k]:
                        continue
                    value = cw[k] + ws[k]
                    cw[k] = value
                    total += ws[k]
                    if best < 0 or value > best_value:
                        best, best_value = k, value
                if best >= 0:
                    cw[best] -= total
                    u = us[best]
                    count[u] += 1
                    served[j], owner[j] = p, u
                    break
                eligible[p] = []  # everyone capped: caps only fill up within a run
            # Overflow: the pool's overflow action, resolved for this lead (which may lead to another pool).
            i = int(todo[j])
            spill = router.overflow(p)
            notes[j] = router.join(notes[j], int(spill.notes[i]))
            q = int(spill.pool[i])
            if q >= 0:
                p = q
                continue
            out.owner[i], out.text[i], out.notes[i], out.pool[i] = spill.owner[i], spill.text[i], notes[j], -1
            break

    served_a = np.array(served, dtype=np.int32)
    done = served_a >= 0
    rows = todo[done]
    pool_text = np.array([router.text(f"pool {p} round robin") for p in router.pool_names] + [-1], dtype=np.int32)
    out.owner[rows] = np.array(owner, dtype=np.int32)[done]
    out.text[rows] = pool_text[served_a[done]]
    out.notes[rows] = np.array(notes, dtype=np.int32)[done]
    out.pool[todo] = -1

    state.weights = {p: w for p, w in state.weights.items() if p in config.pools}  # pools since removed: forgotten
    for name, members, cw in zip(router.pool_names, (config.pools[p].members for p in router.pool_names), current_of,
                                 strict=True):
        state.weights[name] = {m.user: w for m, w in zip(members, cw, strict=True)}
    for u, day, c, c0 in zip(router.user_ids, router.local_day, count, before, strict=True):
        if c != c0:
            state.assigned_today[(u, day)] = c
    oldest = (as_of.date() - timedelta(days=_STATE_DAYS_KEPT)).isoformat()
    for key in [k for k in state.assigned_today if k[1] < oldest]:
        del state.assigned_today[key]


def with_availability(
    config: RoutingConfig, out_of_office: dict[str, list[DateRange]] | None = None,
    inactive: set[str] | frozenset[str] = frozenset(), *, origin: str = "availability",
) -> RoutingConfig:
    """`config` with extra out-of-office ranges (from a file) and users the CRM reports inactive; an unknown user
    in the ranges is refused (a typo would otherwise silently keep someone in rotation)."""
    ranges = out_of_office or {}
    unknown = sorted(set(ranges) - set(config.users))
    if unknown:
        raise ConfigError(origin, f"out-of-office for users the routing config does not know: {unknown}")
    users = {
        uid: user.model_copy(update={
            "out_of_office": [*user.out_of_office, *ranges.get(uid, [])],
            "active": user.active and uid not in inactive,
        })
        for uid, user in config.users.items()
    }
    return config.model_copy(update={"users": users})
