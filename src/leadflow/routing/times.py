"""Time: availability at `as_of` and SLA due times in working hours.

Availability at `as_of`: the user is active, not out of office on that local date and within working hours.
An `assign_to` user who is unavailable still gets the lead unless the action has an `otherwise`. An account owner
who is not one of the configured users counts as unavailable (leadflow knows nothing about their calendar).
`sla_due_at = assigned_at + sla_minutes`, counting only the owner's working hours when `sla_working_hours`
(queues and users without working hours: plain minutes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from leadflow.routing.model import User

__all__: list[str] = []


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
