"""What the Marketo sandbox says about itself: the lead describe and the daily usage, in Marketo's shapes.

Marketo REST docs, "Leads", Describe (GET /rest/v1/leads/describe.json: result = one entry per field with
displayName, dataType, length and `rest: {name, readOnly}`):
https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/lead-database/leads
and "Get Daily Usage" (GET /rest/v1/stats/usage.json: result = [{date, total, users: [{userId, count}]}]):
https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/rest-api
A stock instance's standard fields only; system fields (id, createdAt, updatedAt) are read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["LEAD_FIELD_TYPES", "lead_describe", "usage"]

LEAD_FIELD_TYPES: Final[dict[str, tuple[str, str, int | None]]] = {
    # REST name: (display name, data type, length)
    "id": ("Id", "integer", None),
    "email": ("Email Address", "email", 255),
    "firstName": ("First Name", "string", 255),
    "lastName": ("Last Name", "string", 255),
    "company": ("Company Name", "string", 255),
    "title": ("Job Title", "string", 255),
    "phone": ("Phone Number", "phone", 255),
    "country": ("Country", "string", 255),
    "state": ("State", "string", 255),
    "city": ("City", "string", 255),
    "postalCode": ("Postal Code", "string", 255),
    "website": ("Website", "url", 255),
    "leadSource": ("Person Source", "string", 255),
    "unsubscribed": ("Unsubscribed", "boolean", None),
    "createdAt": ("Created At", "datetime", None),
    "updatedAt": ("Updated At", "datetime", None),
}
_READ_ONLY: Final[frozenset[str]] = frozenset({"id", "createdAt", "updatedAt"})


def lead_describe() -> list[dict[str, Any]]:
    """The `result` of Describe Lead for the sandbox's fields."""
    out = []
    for index, (name, (display, data_type, length)) in enumerate(LEAD_FIELD_TYPES.items(), start=1):
        entry: dict[str, Any] = {"id": index, "displayName": display, "dataType": data_type,
                                 "rest": {"name": name, "readOnly": name in _READ_ONLY},
                                 "soap": {"name": display.replace(" ", ""), "readOnly": name in _READ_ONLY}}
        if length is not None:
            entry["length"] = length
        out.append(entry)
    return out


def usage(calls_today: int, client_id: str, now: float) -> list[dict[str, Any]]:
    """The `result` of Get Daily Usage: today's calls (this one included), all by the sandbox's one API user."""
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    return [{"date": day, "total": calls_today, "users": [{"userId": f"{client_id}@sandbox.local",
                                                            "count": calls_today}]}]
