"""Seeding the Salesforce sandbox org: users, leads, accounts and contacts, deterministic for a seed."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Final

from leadflow.sandbox.salesforce_org import SEED_BASE, Org
from leadflow.sandbox.salesforce_schema import LEAD_STATUSES, SCHEMA
from leadflow.sandbox.salesforce_soql import sf_datetime

INDUSTRIES: Final[tuple[str, ...]] = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction", "Consulting",
    "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Finance", "Food & Beverage", "Healthcare",
    "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media", "Recreation", "Retail", "Shipping",
    "Technology", "Telecommunications", "Transportation", "Utilities", "Other",
)
"""The standard Industry picklist values seeded accounts and leads use."""
_INDUSTRY_WORDS: Final[dict[str, str]] = {
    "software": "Technology", "technologies": "Technology", "cloud": "Technology", "data": "Technology",
    "analytics": "Technology", "ai": "Technology", "digital": "Technology", "networks": "Communications",
    "telecom": "Telecommunications", "security": "Technology", "systems": "Technology", "devices": "Electronics",
    "robotics": "Machinery", "capital": "Finance", "payments": "Banking", "finance": "Finance", "markets": "Finance",
    "insurance": "Insurance", "health": "Healthcare", "pharma": "Biotechnology", "bio": "Biotechnology",
    "media": "Media", "studios": "Entertainment", "foods": "Food & Beverage", "retail": "Retail",
    "apparel": "Apparel", "manufacturing": "Manufacturing", "materials": "Chemicals", "foundry": "Manufacturing",
    "logistics": "Transportation", "marine": "Shipping", "motors": "Transportation", "aerospace": "Engineering",
    "engineering": "Engineering", "energy": "Energy", "consulting": "Consulting", "learning": "Education",
    "properties": "Construction", "trading": "Other",
}


DEFAULT_LEAD_OWNER_ID: Final = "0055e0000000002AAA"
"""The org's default lead owner (Setup > Lead Settings): web-to-lead leads no assignment rule placed land here."""
WEB_QUEUE_ID: Final = "00G5e0000000001AAA"
"""A lead queue web-to-lead and the lead assignment rule drop new form fills into."""
OPEN_STATUS: Final = "Open - Not Contacted"
REP_TYPED_SOURCES: Final = frozenset({"Trade Show", "Tradeshow", "Referral", "Partner"})
"""Lead sources a rep types in by hand: such a lead belongs to that rep from the start."""
CONTACT_ALSO_LEAD_SHARE: Final = 0.05
"""Contacts who are also in the org as a lead (the same address): duplicates for the enrich stage to flag."""
INACTIVE_REP_SHARE: Final = 0.1
"""Reps who have left the company: their users stay in the org, deactivated (users are never deleted)."""


def seed_users(org: Org, reps: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Reps (about one in ten deactivated), the default lead owner and a web-leads queue, as a real org has them.

    Returns (active rep ids, inactive rep ids). The integration user, when the org model has one, is left alone."""
    stamp = sf_datetime(SEED_BASE - timedelta(days=400))
    leavers = random.Random(f"{seed}:leavers")
    active: list[str] = []
    inactive: list[str] = []
    for k, owner in enumerate(reps):
        gone = len(reps) > 3 and leavers.random() < INACTIVE_REP_SHARE
        (inactive if gone else active).append(owner)
        org.objects["User"][owner] = _user(owner, f"rep{k}", "Rep", f"Number {k}", not gone, stamp)
    org.objects["User"][DEFAULT_LEAD_OWNER_ID] = _user(DEFAULT_LEAD_OWNER_ID, "marketing.ops", "Marketing", "Ops",
                                                       True, stamp)
    if "Group" in org.objects:
        org.objects["Group"][WEB_QUEUE_ID] = _record("Group", {
            "Id": WEB_QUEUE_ID, "Name": "Web Leads", "DeveloperName": "Web_Leads", "Type": "Queue"}, stamp)
    if "QueueSobject" in org.objects:
        queue_object = "03g5e0000000001AAA"
        org.objects["QueueSobject"][queue_object] = _record("QueueSobject", {
            "Id": queue_object, "QueueId": WEB_QUEUE_ID, "SobjectType": "Lead"}, stamp)
    return active, inactive


def _record(obj: str, values: dict[str, Any], stamp: str) -> dict[str, Any]:
    dates = {"CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
    return {name: None for name in SCHEMA.get(obj, {})} | {k: v for k, v in dates.items() if k in SCHEMA.get(obj, dates)} | values


def _user(user_id: str, handle: str, first: str, last: str, active: bool, stamp: str) -> dict[str, Any]:
    return _record("User", {"Id": user_id, "Username": f"{handle}@leadflow.sandbox", "Email": f"{handle}@leadflow.sandbox",
                            "FirstName": first, "LastName": last, "IsActive": active}, stamp)


def seed_org(org: Org, *, leads: int = 1000, seed: int = 7, stamp_run: int = 250, accounts: int | None = None,
             contacts: int | None = None, start: datetime = SEED_BASE) -> Org:
    """Deterministic records shaped like a real org; runs of `stamp_run` records share one exact SystemModstamp.

    Leads come from `messy_leads`. Open leads nobody has picked up (web-to-lead) sit in the web-leads queue or with
    the default lead owner; open leads a rep typed in, and every worked, nurtured, closed or converted lead, belong to
    a rep (some of whom have since been deactivated). Converted leads are `IsConverted`. Each worked lead has the
    status change that field history tracking would have recorded (LeadHistory), at a time before the seed's base.
    Most worked leads also have the activities a rep logged on them (a Task: a call or an e-mail; some an Event: a
    meeting), created between the lead's creation and its status change, and some contacts have tasks too.
    `accounts` (default leads // 10) and `contacts` (default leads // 4), at least one each when there are leads;
    the defaults give exactly the records they always gave for a seed. `start`: the seed's base time (default
    `SEED_BASE`): leads are created in the 60 days before it, history and activities fall before it, and the
    SystemModstamps run from it (one minute per `stamp_run` records); the demo passes a time just before now so the
    org looks as it would today."""
    from leadflow.pipeline.schema import parse_bool
    from leadflow.synth import messy_leads

    rng = random.Random(seed)
    frame = messy_leads(leads, seed) if leads else None  # its dates are not used: the org dates leads itself
    reps = sorted(set(frame["owner_id"].dropna())) if frame is not None else []
    reps = reps or ["0055e0000000003AAA"]
    active_reps, _ = seed_users(org, reps, seed)
    if frame is None:
        return org
    # Ids are shuffled against stamp order so the (SystemModstamp, Id) tie-break really matters.
    numbers = list(range(1, leads + 1))
    rng.shuffle(numbers)
    opt_in, _ = parse_bool(frame["email_opt_in"])
    records = _rows(frame, _LEAD_COLUMNS)
    domains = _email_domains([row["email"] for row in records])
    stamps = _Stamps(max(stamp_run, 1), start)
    _seed_leads(org, records, numbers, opt_in.astype(object).tolist(), active_reps, seed, stamps)
    org.counters["Lead"] = leads
    account_ids, by_domain = _seed_accounts(org, records, domains, max(leads // 10, 1) if accounts is None
                                            else accounts, active_reps, seed, stamps)
    _seed_contacts(org, records, account_ids, by_domain, max(leads // 4, 1) if contacts is None else contacts,
                   active_reps, seed, stamps)
    _seed_activities(org, seed, start)
    return org


_LEAD_COLUMNS: Final = ("email", "first_name", "last_name", "company", "title", "phone", "country", "state", "city",
                        "postal_code", "website", "lead_source", "owner_id", "status")
_PERSON_COLUMNS: Final = ("email", "first_name", "last_name", "title", "phone", "country")


def _rows(frame: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """`frame`'s `columns` as one dict per row (None for a missing value). Each column is factorized first, so a
    repeated value is one shared str (less memory, and far faster than DataFrame.to_dict)."""
    import numpy as np
    import pandas as pd

    lists = []
    for name in columns:
        codes, uniques = pd.factorize(frame[name], use_na_sentinel=True)
        values = np.array([*uniques.astype(object), None], dtype=object)  # code -1 (missing) → None
        lists.append(values[codes].tolist())
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]


class _Stamps:
    """Seed timestamps in the wire format, each distinct instant formatted once."""

    def __init__(self, run: int, base: datetime = SEED_BASE) -> None:
        self.run, self.base = run, base
        self._cache: dict[datetime, str] = {}
        self._runs: dict[int, str] = {}

    def __call__(self, when: datetime) -> str:
        text = self._cache.get(when)
        if text is None:
            text = self._cache[when] = sf_datetime(when)
        return text

    def modstamp(self, k: int) -> str:
        """The SystemModstamp of the k-th record of an object: runs of `run` records share one minute."""
        minute = k // self.run
        text = self._runs.get(minute)
        if text is None:
            text = self._runs[minute] = self(self.base + timedelta(minutes=minute))
        return text


def _seed_leads(org: Org, records: list[dict[str, Any]], numbers: list[int], opt_in: list[Any],
                active_reps: list[str], seed: int, stamps: _Stamps) -> None:
    # Separate streams, so the firmographics neither move the lead ids above nor depend on each other.
    typed = random.Random(f"{seed}:typed-by-rep")
    owned = random.Random(f"{seed}:owners")
    history = org.objects.get("LeadHistory")
    table = org.objects["Lead"]
    template = dict.fromkeys(SCHEMA["Lead"])
    queue = "Group" in org.objects
    converted_date = "ConvertedDate" in SCHEMA["Lead"]
    for i, (row, number, consent) in enumerate(zip(records, numbers, opt_in, strict=True)):
        stamp = stamps.modstamp(i)
        created_at = stamps.base - timedelta(days=1 + i % 60)
        created = stamps(created_at)
        status = row["status"] if row["status"] in LEAD_STATUSES else OPEN_STATUS
        record_id = f"00Q5e{number:010d}AAA"
        rep = row["owner_id"] or active_reps[owned.randrange(len(active_reps))]
        if status != OPEN_STATUS:
            owner = rep  # worked, nurtured, closed or converted: a rep's lead
        elif row["owner_id"] and (row["lead_source"] in REP_TYPED_SOURCES or owned.random() < 0.5):
            owner = row["owner_id"]  # an open lead a rep typed in or already took: still that rep's
        else:
            # Web-to-lead: the assignment rule put it in the queue, or nothing matched and the default owner has it.
            owner = WEB_QUEUE_ID if owned.random() < 0.65 and queue else DEFAULT_LEAD_OWNER_ID
        # ~10% of leads carry firmographics a rep typed in: round head counts, sometimes an industry.
        employees = industry = None
        if typed.random() < 0.1:
            employees = typed.choice((5, 10, 25, 50, 100, 200, 250, 500, 1000, 2500, 5000, 10000))
            industry = typed.choice(INDUSTRIES) if typed.random() < 0.7 else None
        converted = status == "Closed - Converted"
        table[record_id] = template | {
            "Id": record_id, "FirstName": row["first_name"], "LastName": row["last_name"] or "[not provided]",
            "Email": row["email"], "Company": row["company"] or "[not provided]", "Title": row["title"],
            "Phone": row["phone"], "Country": row["country"], "State": row["state"], "City": row["city"],
            "PostalCode": row["postal_code"], "Website": row["website"], "LeadSource": row["lead_source"],
            "Status": status, "OwnerId": owner, "IsConverted": converted,
            "NumberOfEmployees": employees, "Industry": industry,
            "HasOptedOutOfEmail": consent is False, "IsDeleted": False, "CreatedDate": created,
            "LastModifiedDate": stamp, "SystemModstamp": stamp,
        } | ({"ConvertedDate": (stamps.base - timedelta(days=owned.randint(0, i % 60))).date().isoformat()}
             if converted and converted_date else {})
        if history is not None and status != OPEN_STATUS:
            # Field history tracking on Status: the rep's move away from the open status, between creation and now.
            changed = stamps(created_at + timedelta(hours=owned.randint(1, 24 * (1 + i % 60) - 1)))
            history_id = f"0175e{number:010d}AAA"
            history[history_id] = _record("LeadHistory", {
                "Id": history_id, "LeadId": record_id, "Field": "Status", "OldValue": OPEN_STATUS,
                "NewValue": status, "CreatedDate": changed, "IsDeleted": False}, changed)


def _seed_accounts(org: Org, records: list[dict[str, Any]], domains: list[str | None], n: int,
                   active_reps: list[str], seed: int, stamps: _Stamps) -> tuple[list[str], dict[str, str]]:
    """`n` accounts (firmographics for most); returns their ids and the first account of each company domain."""
    firmographics = random.Random(f"{seed}:accounts")
    by_domain: dict[str, str] = {}
    ids: list[str] = []
    table = org.objects["Account"]
    template = dict.fromkeys(SCHEMA["Account"])
    for k, (domain, source) in enumerate(_account_sources(records, domains, n, seed)):
        stamp = stamps.modstamp(k)
        record_id = f"0015e{k + 1:010d}AAA"
        company = source["company"] or f"Account {k}"
        employees = revenue = industry = last_activity = None
        if firmographics.random() < 0.8:
            employees = max(1, int(firmographics.lognormvariate(4.5, 1.5)))
            revenue = float(round(employees * firmographics.uniform(60_000, 350_000), -3))
            words = [w.strip(".,").lower() for w in company.split()]
            industry = next((_INDUSTRY_WORDS[w] for w in words if w in _INDUSTRY_WORDS), None)
            industry = industry or firmographics.choice(INDUSTRIES)
        if firmographics.random() < 0.85:
            last_activity = (stamps.base - timedelta(days=firmographics.randint(1, 400))).date().isoformat()
        website = None
        if domain and firmographics.random() < 0.95:
            website = firmographics.choice(("https://www.{}", "www.{}", "{}", "http://{}", "https://{}/")).format(
                domain)
        table[record_id] = template | {
            "Id": record_id, "Name": company, "Website": website, "BillingCountry": source["country"],
            "Industry": industry, "OwnerId": active_reps[k % len(active_reps)], "NumberOfEmployees": employees,
            "AnnualRevenue": revenue, "LastActivityDate": last_activity, "IsDeleted": False, "CreatedDate": stamp,
            "LastModifiedDate": stamp, "SystemModstamp": stamp,
        }
        ids.append(record_id)
        if domain:
            by_domain.setdefault(domain, record_id)
    org.counters["Account"] = len(ids)
    return ids, by_domain


def _seed_contacts(org: Org, records: list[dict[str, Any]], accounts: list[str], by_domain: dict[str, str], n: int,
                   active_reps: list[str], seed: int, stamps: _Stamps) -> None:
    """`n` contacts, each under the account of its e-mail's company domain (else a round-robin account).

    Contacts are mostly other people; about one in twenty is someone who also came in again as a lead (the
    duplicate a rep would want flagged). A Contact copied from every fourth lead made a quarter of the org's leads
    duplicates, which no real org looks like."""
    from leadflow.synth import messy_leads

    people = _rows(messy_leads(n, seed + 1_000), _PERSON_COLUMNS)
    again = random.Random(f"{seed}:contact-leads")
    rows = [records[-(k % len(records) + 1)] if again.random() < CONTACT_ALSO_LEAD_SHARE else people[k]
            for k in range(n)]
    domains = _email_domains([row["email"] for row in rows])
    table = org.objects["Contact"]
    for k, (row, domain) in enumerate(zip(rows, domains, strict=True)):
        stamp = stamps.modstamp(k)
        record_id = f"0035e{k + 1:010d}AAA"
        table[record_id] = {
            "Id": record_id, "FirstName": row["first_name"], "LastName": row["last_name"] or "[not provided]",
            "Email": row["email"], "Title": row["title"], "Phone": row["phone"],
            "AccountId": by_domain.get(domain or "", accounts[k % len(accounts)] if accounts else None),
            "OwnerId": active_reps[k % len(active_reps)], "HasOptedOutOfEmail": False, "MailingCountry": row["country"],
            "IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
        }
    org.counters["Contact"] = n


def _email_domain(email: Any) -> str | None:
    """The registered domain of a well-formed address (None for junk, typo'd suffixes and missing values)."""
    return _email_domains([email])[0]


def _email_domains(emails: list[Any]) -> list[str | None]:
    """`_email_domain` of each address, the domain worked out once per distinct host: `registered_domain` reads only
    the part after the last "@" of the stripped, lower-cased text, so "x@" + that host gives the same answer."""
    from leadflow.identity.matching import registered_domain

    known: dict[str, str | None] = {}
    out: list[str | None] = []
    for email in emails:
        if not isinstance(email, str) or email.count("@") != 1:
            out.append(None)
            continue
        host = email.strip().lower().rsplit("@", 1)[1]
        if host not in known:
            known[host] = registered_domain("x@" + host)
        out.append(known[host])
    return out


def _account_sources(records: list[dict[str, Any]], domains: list[str | None], n: int,
                     seed: int) -> list[tuple[str | None, dict[str, Any]]]:
    """`n` (company domain, lead) pairs to seed accounts from: the corporate e-mail domains most leads use (then
    first seen), each with its first lead that names a company; leads in order fill up when domains run short, then
    other generated companies when the leads do."""
    from leadflow.identity.domains import is_free_domain

    free = {d: is_free_domain(d) for d in set(domains) if d is not None}
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, (row, domain) in enumerate(zip(records, domains, strict=True)):
        if domain is None or free[domain]:
            continue
        counts[domain] = counts.get(domain, 0) + 1
        if row["company"] and domain not in first:
            first[domain] = i
    ranked = sorted(first, key=lambda d: (-counts[d], first[d]))[:n]
    chosen = sorted(ranked, key=lambda d: first[d])  # account k comes from the k-th such lead, as before
    out: list[tuple[str | None, dict[str, Any]]] = [(d, records[first[d]]) for d in chosen]
    used = {first[d] for d in chosen}
    for i, row in enumerate(records):
        if len(out) >= n:
            break
        if i not in used:
            out.append((None, row))
    if len(out) < n:  # more accounts than leads: companies of other generated people
        from leadflow.synth import messy_leads

        out += [(None, row) for row in _rows(messy_leads(n - len(out), seed + 2_000), _LEAD_COLUMNS)]
    return out


TASK_SHARE: Final = 0.7
"""Worked leads with a Task a rep logged (a call or an e-mail) before changing the lead's status."""
EVENT_SHARE: Final = 0.2
"""Worked leads with an Event (a meeting)."""
CONTACT_TASK_SHARE: Final = 0.1
"""Contacts with a Task (activities on contacts are not lead touches)."""


def _seed_activities(org: Org, seed: int, base: datetime = SEED_BASE) -> None:
    """Tasks and Events on worked leads, created after the lead and before its status change (LeadHistory), by its
    owner; Tasks on some contacts. Their own random stream: the leads, accounts and contacts stay as they were."""
    rng = random.Random(f"{seed}:activities")
    tasks, events = org.objects["Task"], org.objects["Event"]
    leads = org.objects["Lead"]
    changes = sorted((h["LeadId"], h["CreatedDate"]) for h in org.objects["LeadHistory"].values()
                     if h.get("Field") == "Status")
    n_task = n_event = 0
    for lead_id, changed in changes:
        lead = leads.get(lead_id)
        if lead is None:
            continue
        created, moved = _parsed(lead["CreatedDate"]), _parsed(changed)
        span = max((moved - created).total_seconds(), 60.0)
        if rng.random() < TASK_SHARE:
            n_task += 1
            at = sf_datetime(created + timedelta(seconds=rng.uniform(0.05, 0.9) * span))
            subtype = rng.choice(("Call", "Email"))
            tasks[f"00T5e{n_task:010d}AAA"] = _record("Task", {
                "Id": f"00T5e{n_task:010d}AAA", "WhoId": lead_id, "Subject": subtype, "TaskSubtype": subtype,
                "Status": "Completed", "Priority": "Normal", "IsClosed": True, "OwnerId": lead["OwnerId"],
                "ActivityDate": at[:10], "IsDeleted": False}, at)
        if rng.random() < EVENT_SHARE:
            n_event += 1
            at = sf_datetime(created + timedelta(seconds=rng.uniform(0.05, 1.0) * span))
            start = _parsed(at) + timedelta(days=rng.randint(1, 5))
            events[f"00U5e{n_event:010d}AAA"] = _record("Event", {
                "Id": f"00U5e{n_event:010d}AAA", "WhoId": lead_id, "Subject": "Meeting", "EventSubtype": "Event",
                "ActivityDateTime": sf_datetime(start), "StartDateTime": sf_datetime(start),
                "EndDateTime": sf_datetime(start + timedelta(minutes=30)), "DurationInMinutes": 30,
                "ActivityDate": sf_datetime(start)[:10], "IsAllDayEvent": False, "OwnerId": lead["OwnerId"],
                "IsDeleted": False}, at)
    for contact_id in sorted(org.objects["Contact"]):
        if rng.random() < CONTACT_TASK_SHARE:
            contact = org.objects["Contact"][contact_id]
            n_task += 1
            at = sf_datetime(base - timedelta(minutes=rng.randint(1, 60 * 24 * 90)))
            tasks[f"00T5e{n_task:010d}AAA"] = _record("Task", {
                "Id": f"00T5e{n_task:010d}AAA", "WhoId": contact_id, "WhatId": contact.get("AccountId"),
                "Subject": "Call", "TaskSubtype": "Call", "Status": "Completed", "Priority": "Normal",
                "IsClosed": True, "OwnerId": contact["OwnerId"], "ActivityDate": at[:10], "IsDeleted": False}, at)
    org.counters["Task"], org.counters["Event"] = n_task, n_event


def _parsed(stamp: str) -> datetime:
    """A stamp in the sandbox's wire format (`2026-10-01T12:00:00.000+0000`) as a datetime."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")
