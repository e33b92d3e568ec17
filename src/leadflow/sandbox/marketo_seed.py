"""Seeding for the Marketo sandbox: leads from `synth.messy_leads` and their activity history, deterministically.

Split out of `leadflow.sandbox.marketo` (which serves the instance); `seed_instance` is re-exported there.
Builds on the data model in `leadflow.sandbox.marketo_model`, not on the server module.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from leadflow.sandbox.marketo_model import ALL_FIELDS, LEAD_FIELDS, MarketoInstance, iso
from leadflow.synth import DEFAULT_START, messy_leads

__all__ = ["FORM_TYPES", "PAGES", "seed_instance"]

FORM_TYPES: tuple[str, ...] = ("Contact Us", "Content Download", "Webinar Registration", "Demo Request", "Newsletter")
PAGES: tuple[str, ...] = ("/", "/product", "/pricing", "/blog/lead-routing", "/customers", "/docs/getting-started")


def _parse_created(values: pd.Series, start: datetime, rng: np.random.Generator) -> list[datetime]:
    # The synth's dates are export mess; Marketo stores clean datetimes, so unparseable ones get a plausible date.
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    out = []
    for value in parsed:
        moment = None if pd.isna(value) else value.to_pydatetime()
        if moment is None or moment.year < 2000 or moment >= start:
            moment = start - timedelta(days=float(rng.uniform(1, 90)))
        out.append(moment.replace(microsecond=0))
    return out


def seed_instance(n: int = 200, seed: int = 7, *, start: datetime | None = None, **options: Any) -> MarketoInstance:
    """An instance with `n` Marketo leads from `messy_leads(n, seed)` and their activities; deterministic."""
    start = start or DEFAULT_START
    frame = messy_leads(n, seed, start=start)
    rng = np.random.default_rng([seed, 0x4D4B544F])
    true_created = _parse_created(frame["created_at"], start, rng)
    opt_in = frame["email_opt_in"].str.strip().str.lower()
    order = sorted(range(n), key=lambda i: true_created[i])
    instance = MarketoInstance(**options)
    pending: list[tuple[datetime, int, int, str, dict[str, Any], list[dict[str, Any]] | None]] = []
    lead_id = 1000
    for i in order:
        # Ids grow with creation, with gaps (other records share the counter).
        lead_id += int(rng.integers(1, 4))
        first_fill = true_created[i]
        # A third were created in Marketo later (list import, CRM sync): createdAt is then not the true creation.
        imported = rng.random() < 0.33
        created = min(first_fill + timedelta(days=float(rng.uniform(1, 20))), start - timedelta(hours=1)) \
            if imported else first_fill
        record: dict[str, Any] = {"id": lead_id}
        for column, name in LEAD_FIELDS.items():
            value = frame.at[i, column]
            record[name] = None if pd.isna(value) else str(value)
        record["unsubscribed"] = bool(opt_in.iloc[i] in {"false", "no", "n", "0", "opt-out", "unsubscribed"})
        record["createdAt"] = iso(created)
        form = FORM_TYPES[int(rng.integers(0, len(FORM_TYPES)))]
        pending.append((first_fill, lead_id, 2, f"{form} Form", {"Form Type": form, "Webpage URL": "/contact"}, None))
        source = "List import" if imported else "Web form fill"
        pending.append((created, lead_id, 12, str(lead_id), {"Source Type": source}, None))
        span = max((start - created).total_seconds(), 3600.0)
        updated = created
        for _ in range(int(rng.integers(0, 9))):
            when = created + timedelta(seconds=float(rng.uniform(0, span)))
            kind = int(rng.choice([1, 1, 1, 10, 10, 11, 2, 100001, 100002]))
            if kind == 1:
                page = PAGES[int(rng.integers(0, len(PAGES)))]
                visit = {"Webpage URL": page, "Client IP Address": "203.0.113.7"}
                pending.append((when, lead_id, 1, page, visit, None))
            elif kind in (10, 11):
                mail = f"Newsletter {when:%Y-%m}"
                pending.append((when, lead_id, kind, mail, {"Campaign Run ID": int(rng.integers(1, 99))}, None))
            elif kind == 2:
                form = FORM_TYPES[int(rng.integers(0, len(FORM_TYPES)))]
                pending.append((when, lead_id, 2, f"{form} Form", {"Form Type": form, "Webpage URL": "/contact"}, None))
            elif kind == 100001:
                pending.append((when, lead_id, 2, "Demo Request Form", {"Form Type": "Demo Request"}, None))
                pending.append((when, lead_id, 100001, "Leadflow Platform", {"Requested Via": "Website"}, None))
            else:
                pending.append((when, lead_id, 100002, f"Webinar {when:%b %Y}", {"Attended": True}, None))
        for _ in range(int(rng.integers(1, 4))):
            when = created + timedelta(seconds=float(rng.uniform(0, span)))
            name = ("title", "phone", "company", "leadSource")[int(rng.integers(0, 4))]
            value = record.get(name)
            change = [{"id": ALL_FIELDS.index(name), "name": name, "newValue": value, "oldValue": None}]
            attrs = {"New Value": value, "Old Value": None, "Reason": "Form fill", "Source": "Web form fill"}
            pending.append((when, lead_id, 13, name, attrs, change))
            updated = max(updated, when)
        record["updatedAt"] = iso(updated)
        instance.leads[lead_id] = record
    pending.sort(key=lambda p: (p[0], p[1]))
    for when, lid, type_id, primary, attrs, fields in pending:
        instance.add_activity(lid, type_id, when, primary, attrs, fields)
    return instance
