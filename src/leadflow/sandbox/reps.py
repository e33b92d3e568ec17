"""The demo's sandbox reps: after a sync assigned leads, they work them in the Salesforce sandbox over its REST API the
way reps do — calls and e-mails logged as Tasks, meetings booked as Events, status changes (LeadHistory) — at times
spread around each lead's SLA, on the org's clock fast-forwarded (nothing sleeps); some leads are never touched.
Each lead's behaviour is fixed by its key, so runs repeat. Also the demo seed's start time (an org dated as today)."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd

REP_HOURS: Final = 30
"""How far the demo's reps work ahead: past the longest SLA of the sandbox routing (24 h), so most SLAs are decided."""
UNWORKED_SHARE: Final = 0.12
"""New leads no rep gets to within the span."""
FIRST_TOUCH_KINDS: Final = {"call": 0.45, "email": 0.25, "meeting": 0.1, "status": 0.2}
"""How a rep first touches a lead: a call or an e-mail (a Task), a meeting (an Event), or only a status change."""
WORKED_STATUS: Final = "Working - Contacted"


def seed_start(leads: int, now: datetime, stamp_run: int = 250) -> datetime:
    """The sandbox seed's base time for a demo at `now`: an hour back, and early enough that the seed's
    SystemModstamps (one minute per `stamp_run` records from the base) are all in the past too."""
    return (now - timedelta(hours=1, minutes=leads // stamp_run + 1)).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class RepTouch:
    """One thing a sandbox rep does to a lead, at a time: a `FIRST_TOUCH_KINDS` kind."""

    at: datetime
    lead_id: str
    owner_id: str
    kind: str


def plan_rep_touches(assigned: pd.DataFrame, until: datetime, seed: int = 7) -> list[RepTouch]:
    """What the sandbox reps do with the Salesforce leads assigned to them, up to `until`, in time order. Like reps:
    most leads are worked, the time to the first touch spread around the lead's SLA (lognormal, median 60 % of it:
    most in time, some late), some (`UNWORKED_SHARE`) not at all; half the calls and e-mails are followed by a status
    change. Deterministic per lead (seeded by its key)."""
    import pandas as pd

    touches: list[RepTouch] = []
    kinds, weights = list(FIRST_TOUCH_KINDS), list(FIRST_TOUCH_KINDS.values())
    for key, owner, assigned_at, due in zip(assigned["lead_key"], assigned["owner_id"], assigned["assigned_at"],
                                            assigned["sla_due_at"], strict=True):
        if not str(key).startswith("salesforce:") or not str(owner).startswith("005") or pd.isna(assigned_at):
            continue  # only leads in the org, owned by a user (not a queue, not held)
        rng = random.Random(f"{seed}:{key}")
        if rng.random() < UNWORKED_SHARE:
            continue
        sla_minutes = (due - assigned_at).total_seconds() / 60 if not pd.isna(due) else 24 * 60
        delay = max(1.0, rng.lognormvariate(math.log(0.6 * max(sla_minutes, 1.0)), 0.9))
        at = assigned_at.to_pydatetime() + timedelta(minutes=delay)
        lead_id = str(key).split(":", 1)[1]
        if at > until:
            continue
        kind = rng.choices(kinds, weights)[0]
        touches.append(RepTouch(at, lead_id, str(owner), kind))
        later = at + timedelta(minutes=rng.uniform(2, 90))
        if kind in ("call", "email") and rng.random() < 0.5 and later <= until:
            touches.append(RepTouch(later, lead_id, str(owner), "status"))
    return sorted(touches, key=lambda t: (t.at, t.lead_id, t.kind))


def work_leads(handle: Any, touches: list[RepTouch]) -> Counter[str]:
    """Do `touches` in the running Salesforce sandbox `handle` over its REST API, as a rep's client would, each
    with the org's clock at its time (so its CreatedDate is that time); returns how many of each kind were done.

    REST API "Create a Record" (POST /sobjects/Task, /sobjects/Event) and "Update a Record" (PATCH /sobjects/Lead/
    Id): https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_create.htm,
    …/dome_update_fields.htm. An Event that is not all-day needs its start and length (Object Reference "Event")."""
    from simple_salesforce import Salesforce

    from leadflow.sandbox.salesforce_org import wall_clock

    client = Salesforce(instance_url=handle.url, session_id=handle.token(), session=handle.session(), version="59.0")
    done: Counter[str] = Counter()
    try:
        for touch in touches:
            handle.org.clock = lambda at=touch.at: at
            if touch.kind == "status":
                client.Lead.update(touch.lead_id, {"Status": WORKED_STATUS})
            elif touch.kind == "meeting":
                meeting = (touch.at + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
                client.Event.create({"WhoId": touch.lead_id, "OwnerId": touch.owner_id, "Subject": "Intro meeting",
                                     "StartDateTime": meeting.isoformat(), "DurationInMinutes": 30})
            else:
                subtype = "Call" if touch.kind == "call" else "Email"
                client.Task.create({"WhoId": touch.lead_id, "OwnerId": touch.owner_id, "Subject": subtype,
                                    "TaskSubtype": subtype, "Status": "Completed",
                                    "ActivityDate": touch.at.date().isoformat()})
            done[touch.kind] += 1
    finally:
        handle.org.clock = wall_clock
        handle.close_sessions()
    return done
