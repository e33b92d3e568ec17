"""The routing config model (pydantic): users, pools, queues, territories and rules, with their validation.

The routing config is YAML (`reference/routing.yaml`, loaded with `leadflow.routing.load_routing_config`):

- **users** keyed by owner id (the CRM user id): `active`, a time zone, `working_hours` (days and a local start/end,
  or `"22:00-06:00"`: an end before the start crosses midnight; none = always working), `out_of_office` date ranges
  (inclusive, local dates) and `holidays` (a country/subdivision calendar and/or dates). `leadflow routing pause`
  pauses a user until a moment (kept in the state store, not here).
- **pools** of members with a `weight` and optional caps: `daily_cap` and `hourly_cap` (round-robin leads per local
  day / clock hour) and `open_cap` (assigned leads nobody has touched yet). A pool hands out leads by smooth weighted
  round robin (nginx's algorithm: deterministic, exactly proportional to the weights over a cycle) among its members
  that are available at `as_of` and below their caps; when nobody is left its `overflow` action applies (default:
  hold "pool <name> unavailable"). A pool may have its own `working_hours` and `holidays` (in its `timezone`):
  outside them it is closed and its overflow applies.
- **queues** (a CRM queue id as owner) and **territories** (country, ISO 3166-2 state, postal range, segment,
  industry → a pool; every criterion a territory lists must match; the first matching territory wins).
- **rules**, first match wins; each has a `when` condition (`leadflow.pipeline.conditions`; none = always) and one action:
  `assign_to: <user>`, `account_owner: true`, `territory: true`, `pool: <pool>`, `queue: <queue>` or
  `hold: <reason>`, and optionally `otherwise` (for `assign_to`, `account_owner` and `territory`: what to do when
  the user is unavailable / there is no available account owner / no territory; default: a hold). The last rule
  must have no `when`: a lead is never left without an outcome.

Cross-references (unknown users, pools, queues; duplicate rule names; a misplaced fallback; overflow cycles) are
checked by `RoutingConfig` itself, so every error names its YAML path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import date
from datetime import time as dtime
from typing import TYPE_CHECKING, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from leadflow.pipeline.conditions import Condition
from leadflow.routing.escalation_model import ESCALATION_ACTIONS, OWNER_ACTIONS, EscalationStep, duration_text
from leadflow.routing.ownership import Reassign

if TYPE_CHECKING:
    from holidays import HolidayBase

__all__ = [
    "ACTION_KINDS",
    "DAYS",
    "ESCALATION_ACTIONS",
    "OWNER_ACTIONS",
    "Action",
    "DateRange",
    "EscalationStep",
    "Holidays",
    "Member",
    "Pool",
    "PostalRange",
    "Queue",
    "RoutingConfig",
    "Rule",
    "Territory",
    "User",
    "WorkingHours",
    "duration_text",
]

DAYS: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTION_KINDS: Final[tuple[str, ...]] = ("assign_to", "account_owner", "territory", "pool", "queue", "hold")


def iana_zone(value: str) -> str:
    """`value` when it names an IANA time zone; else a ValueError saying so (for pydantic validators)."""
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
    """Local working time: `{days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:30"}`, or `"09:00-17:30"`
    (Monday to Friday). An end before the start is a shift crossing midnight (`"22:00-06:00"`): `days` are the days
    it starts, and an hour after midnight belongs to the shift that started the day before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        if isinstance(value, str):
            start, dash, end = value.partition("-")
            if not dash:
                raise ValueError(f'{value!r} is not working hours: write "09:00-17:30" or {{days, start, end}}')
            return {"start": start.strip(), "end": end.strip()}
        return value

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
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start:%H:%M}: a shift needs a length (an end before the "
                             "start is a shift crossing midnight)")
        if len(set(self.days)) != len(self.days):
            raise ValueError("a day is listed twice")
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(DAYS.index(d) for d in self.days)

    @property
    def overnight(self) -> bool:
        """The shift crosses midnight (ends the day after it starts)."""
        return self.end < self.start


@functools.cache
def _holiday_calendar(country: str, subdivision: str | None) -> HolidayBase:
    """The `holidays` package's calendar (years filled in on first look-up); NotImplementedError if it has none."""
    import holidays  # ~65 ms: only for configs that name a country

    return holidays.country_holidays(country, subdiv=subdivision)


class Holidays(BaseModel):
    """Days off: a country's public holidays, optionally of one subdivision (the `holidays` package), and/or
    explicit `dates`: `{country: DE, subdivision: BY, dates: [2026-12-24]}`. Local dates of whoever they apply to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: str | None = None
    subdivision: str | None = Field(default=None, description='e.g. "BY" (Bavaria) with country DE; ISO 3166-2.')
    dates: list[date] = Field(default_factory=list)

    @field_validator("country", mode="before")
    @classmethod
    def _cc(cls, value: Any) -> Any:
        return None if value is None else _country(value)

    @field_validator("subdivision", mode="before")
    @classmethod
    def _subdivision(cls, value: Any) -> Any:
        if value is None:
            return None
        code = _text(value, "subdivision").strip()
        return code.split("-", 1)[1] if "-" in code and len(code.split("-", 1)[0]) == 2 else code  # DE-BY → BY

    @model_validator(mode="after")
    def _known_calendar(self) -> Holidays:
        if self.country is None:
            if self.subdivision is not None:
                raise ValueError("a subdivision needs its country (e.g. {country: DE, subdivision: BY})")
            if not self.dates:
                raise ValueError("give a country (and subdivision) and/or dates")
            return self
        try:
            _holiday_calendar(self.country, self.subdivision)
        except NotImplementedError:
            import holidays

            known = holidays.list_supported_countries().get(self.country)
            if known is None:
                raise ValueError(f"the holidays package has no calendar for {self.country}") from None
            raise ValueError(f"{self.country} has no subdivision {self.subdivision!r} in the holidays package "
                             f"(known: {', '.join(known)})") from None
        return self

    def name_on(self, day: date) -> str | None:
        """The holiday on local date `day` (e.g. `Epiphany (DE-BY)`, `2026-12-24`), None if it is no holiday."""
        if day in self.dates:
            return day.isoformat()
        if self.country is None:
            return None
        name = _holiday_calendar(self.country, self.subdivision).get(day)
        if not name:
            return None
        where = self.country + (f"-{self.subdivision}" if self.subdivision else "")
        return f"{name.replace('; ', ', ')} ({where})"


class User(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    active: bool = True
    timezone: str | None = Field(default=None, description="IANA; default: the config's timezone.")
    working_hours: WorkingHours | None = Field(default=None, description="None: always working.")
    out_of_office: list[DateRange] = Field(default_factory=list)
    holidays: Holidays | None = Field(default=None, description="Days off in the user's time zone; SLA clocks in "
                                      "working hours skip them too.")
    manager: str | None = Field(default=None, description="A user id: who hears of this user's leads left "
                                "untouched (escalation `notify_manager`).")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else iana_zone(value)


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str
    weight: int = Field(default=1, ge=1)
    daily_cap: int | None = Field(default=None, ge=0, description="Round-robin leads per local day.")
    hourly_cap: int | None = Field(default=None, ge=0, description="Round-robin leads per local clock hour.")
    open_cap: int | None = Field(default=None, ge=0, description="Leads assigned to the user (by any rule) that "
                                 "nobody has touched yet (no first touch recorded).")


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
    timezone: str | None = Field(default=None, description="IANA, of the pool's working hours and holidays; default: "
                                 "the config's timezone.")
    working_hours: WorkingHours | None = Field(default=None, description="None: open whenever a member is available.")
    holidays: Holidays | None = Field(default=None, description="Days the pool is closed (its overflow applies).")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else iana_zone(value)

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
        "(`leadflow.routing.ownership.Reassign`): re-own matching leads, even a person's, when its conditions hold.")
    on_sla_breach: Literal["alert", "reassign"] = Field(
        default="alert", description="reassign: a lead past this rule's SLA with no first touch is routed again, "
        "to anyone but its current owner (the breach is alerted either way)."
    )
    escalation: list[EscalationStep] = Field(
        default_factory=list, description="Steps for a lead nobody touched, each fired once when due "
        "(`leadflow.routing.escalation`); `on_sla_breach: reassign` is the older one-step form, kept as it was.")

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
        return iana_zone(value)

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

        for uid, user in self.users.items():
            if user.manager is not None and (user.manager not in self.users or user.manager == uid):
                why = "a user is not their own manager" if user.manager == uid else f"unknown user {user.manager!r}"
                errors.append(_error(("users", uid, "manager"), why + _known(self.users)))
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
            errors += self._escalation_errors(rule, ("rules", i))
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

    def _escalation_errors(self, rule: Rule, loc: tuple[str | int, ...]) -> list[InitErrorDetails]:
        """A rule's escalation chain: steps in increasing `after`, known queues and pools, an owner to escalate."""
        errors: list[InitErrorDetails] = []
        if rule.escalation and rule.kind == "hold":
            errors.append(_error((*loc, "escalation"), "a hold gives the lead no owner: nothing to escalate"))
        if rule.escalation and rule.on_sla_breach == "reassign":
            errors.append(_error((*loc, "on_sla_breach"), "`on_sla_breach: reassign` and an `escalation` chain "
                                 "would both reassign: put a reassign_pool step in the chain instead"))
        for j, step in enumerate(rule.escalation):
            where = (*loc, "escalation", j)
            if j and step.after <= rule.escalation[j - 1].after:
                errors.append(_error((*where, "after"), f"after {duration_text(step.after)} must be later than the "
                                     f"step before it (after {duration_text(rule.escalation[j - 1].after)})"))
            if step.queue is not None and step.queue not in self.queues:
                errors.append(_error((*where, "queue"), f"unknown queue {step.queue!r}{_known(self.queues)}"))
            if step.pool is not None and step.pool not in self.pools:
                errors.append(_error((*where, "pool"), f"unknown pool {step.pool!r}{_known(self.pools)}"))
        return errors

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

    def pool_zone(self, pool: str) -> ZoneInfo:
        return ZoneInfo(self.pools[pool].timezone or self.timezone)


def _known(names: Iterable[str]) -> str:
    names = list(names)
    return f" (known: {', '.join(names)})" if names and len(names) <= 12 else ""

