"""Time: availability at `as_of` and SLA due times in working hours.

Availability at `as_of`: the user is active, not paused (`leadflow routing pause`, kept in the state store), not out
of office and not on a holiday on that local date, and within working hours. A shift crossing midnight
(`22:00-06:00`) belongs to the day it starts: at 01:00 the user works the shift that started the day before, and that
day's out of office and holidays decide. A pool's own working hours and holidays (in its time zone) open and close
the pool as a whole. An `assign_to` user who is unavailable still gets the lead unless the action has an `otherwise`.
An account owner who is not one of the configured users counts as unavailable (leadflow knows nothing about their
calendar). `sla_due_at = assigned_at + sla_minutes`, counting only the owner's working hours, without their out of
office days and holidays, when `sla_working_hours` (queues and users without working hours: plain minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from leadflow.routing.model import Holidays, Pool, User, WorkingHours

__all__ = ["Pause"]

NOTED: Final[frozenset[str]] = frozenset({"paused", "holiday"})
"""Kinds of unavailability named in the routing reason of leads routed around the user (the older kinds — inactive,
out of office, outside working hours — are routine and left out, as before)."""


@dataclass(frozen=True)
class Pause:
    """`leadflow routing pause`: the user takes no leads from `at` (None: any time before) until `until` (UTC)."""

    until: datetime
    reason: str = ""
    by: str = ""
    at: datetime | None = None

    def covers(self, moment: datetime) -> bool:
        return (self.at is None or self.at <= moment) and moment < self.until

    def text(self) -> str:
        return f"paused until {self.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC" + (f" ({self.reason})" if self.reason else "")

    def to_json(self) -> dict[str, Any]:
        return {"until": _utc(self.until).isoformat(), "reason": self.reason, "by": self.by,
                "at": None if self.at is None else _utc(self.at).isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pause:
        at = data.get("at")
        return cls(until=_utc(datetime.fromisoformat(str(data["until"]))), reason=str(data.get("reason") or ""),
                   by=str(data.get("by") or ""), at=None if not at else _utc(datetime.fromisoformat(str(at))))


def _utc(as_of: datetime) -> datetime:
    return as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)


def _shift_day(hours: WorkingHours, local: datetime) -> date | None:
    """The local date whose shift `local` (a wall-clock time) falls in; None outside working hours. A shift crossing
    midnight belongs to the day it starts."""
    now = local.time().replace(tzinfo=None)
    today = local.date()
    if not hours.overnight:
        return today if today.weekday() in hours.weekdays and hours.start <= now < hours.end else None
    if now >= hours.start and today.weekday() in hours.weekdays:
        return today
    yesterday = today - timedelta(days=1)
    if now < hours.end and yesterday.weekday() in hours.weekdays:
        return yesterday
    return None


def _holiday(calendar: Holidays | None, day: date) -> str | None:
    return None if calendar is None else calendar.name_on(day)


def _unavailable(user: User, zone: ZoneInfo, as_of: datetime, pause: Pause | None = None) -> tuple[str, str] | None:
    """Why `user` cannot take a lead at `as_of`, as (kind, text) — kinds: inactive, paused, out_of_office, holiday,
    off_hours — or None when available."""
    if not user.active:
        return "inactive", "inactive"
    if pause is not None and pause.covers(as_of):
        return "paused", pause.text()
    local = as_of.astimezone(zone)
    day: date | None = local.date()
    if user.working_hours is not None:
        day = _shift_day(user.working_hours, local)
        if day is None:
            return "off_hours", "outside working hours"
    if any(r.covers(day) for r in user.out_of_office):
        return "out_of_office", "out of office"
    holiday = _holiday(user.holidays, day)
    return ("holiday", f"holiday {holiday}") if holiday else None


def _available(user: User, zone: ZoneInfo, as_of: datetime, pause: Pause | None = None) -> bool:
    return _unavailable(user, zone, as_of, pause) is None


def _pool_closed(pool: Pool, zone: ZoneInfo, as_of: datetime) -> str | None:
    """Why the pool itself is closed at `as_of` (its own working hours and holidays), None when open."""
    local = as_of.astimezone(zone)
    day: date | None = local.date()
    if pool.working_hours is not None:
        day = _shift_day(pool.working_hours, local)
        if day is None:
            return "outside its working hours"
    holiday = _holiday(pool.holidays, day)
    return f"holiday {holiday}" if holiday else None


def _due(start: datetime, minutes: int, zone: ZoneInfo, user: User | None) -> datetime:
    """`start` + `minutes` of working time of `user` (plain minutes without working hours); UTC. Working time skips
    the user's out-of-office days and holidays; a shift crossing midnight runs into the next day."""
    if user is None or user.working_hours is None:
        return start + timedelta(minutes=minutes)
    hours = user.working_hours
    remaining = timedelta(minutes=minutes)
    day = start.astimezone(zone).date() - timedelta(days=1 if hours.overnight else 0)
    for _ in range(3700):  # ten years of days: out-of-office never blocks forever
        if (day.weekday() in hours.weekdays and not any(r.covers(day) for r in user.out_of_office)
                and not _holiday(user.holidays, day)):
            opens = datetime.combine(day, hours.start, zone).astimezone(UTC)
            closes = datetime.combine(day + timedelta(days=1 if hours.overnight else 0), hours.end, zone).astimezone(UTC)
            begin = max(opens, start)
            if begin < closes:
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    return start + timedelta(minutes=minutes)  # pragma: no cover - no working day in ten years
