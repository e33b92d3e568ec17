"""The HubSpot sandbox's contact model: properties, validation, the API shape of a record, and CRM search.

Pure functions over stored records (`{"id", "properties", "cd", "lm"}` plus `raw` for deliberately bad payloads):
the `Portal` in `leadflow.sandbox.hubspot` owns storage, tokens, limits and which records search can see.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from leadflow.sandbox.hubspot_limits import HubspotLimits

__all__ = [
    "LEAD_STATUS_OPTIONS",
    "LIFECYCLE_OPTIONS",
    "PROPERTIES",
    "PropertyDef",
    "iso_ms",
    "property_definitions",
    "property_errors",
    "search_records",
    "shape",
    "validation_message",
]

LEAD_STATUS_OPTIONS: Final[tuple[str, ...]] = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING",
)
LIFECYCLE_OPTIONS: Final[tuple[str, ...]] = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer", "evangelist",
    "other",
)
STRING_PROPERTIES: Final[tuple[str, ...]] = (
    "email", "firstname", "lastname", "company", "jobtitle", "phone", "country", "state", "city", "zip", "website",
)


@dataclass(frozen=True)
class PropertyDef:
    """A contact property: its type, the options of an enumeration, and whether the API may write it."""

    type: str = "string"
    options: tuple[str, ...] = ()
    read_only: bool = False


PROPERTIES: Final[dict[str, PropertyDef]] = {
    **{name: PropertyDef() for name in STRING_PROPERTIES},
    "hs_lead_status": PropertyDef("enumeration", LEAD_STATUS_OPTIONS),
    "lifecyclestage": PropertyDef("enumeration", LIFECYCLE_OPTIONS),
    "hs_email_optout": PropertyDef("bool", ("true", "false")),
    "hs_object_id": PropertyDef("number", read_only=True),
    "createdate": PropertyDef("datetime", read_only=True),
    "lastmodifieddate": PropertyDef("datetime", read_only=True),
}
_EPOCH: Final[datetime] = datetime(1970, 1, 1, tzinfo=UTC)
_OPERATORS: Final[frozenset[str]] = frozenset(
    {"EQ", "NEQ", "GT", "GTE", "LT", "LTE", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
)
Record = dict[str, Any]


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot writes datetimes: `2026-10-15T12:00:00.123Z`."""
    # Integer arithmetic: a float round trip can turn .123 into .122999 and lose a millisecond.
    return (_EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_stamp(value: Any) -> int | None:
    """A filter value for a datetime property: epoch ms (as HubSpot's docs use) or an ISO string."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


_FIELD_TYPES: Final[dict[str, str]] = {
    "string": "text", "enumeration": "select", "bool": "booleancheckbox", "number": "number", "datetime": "date",
}


def property_definitions() -> list[dict[str, Any]]:
    """`results` of GET /crm/v3/properties/contacts for the sandbox's properties (a stock portal's, no custom ones).

    HubSpot developer docs, CRM API "Properties" (https://developers.hubspot.com/docs/guides/api/crm/properties):
    each property has name, label, type, fieldType, groupName, options [{label, value, displayOrder, hidden}] and
    modificationMetadata {archivable, readOnlyDefinition, readOnlyValue}. The API reference, CRM Properties "Read all
    properties" (https://developers.hubspot.com/docs/api-reference/crm-properties-v3/core/get-crm-v3-properties-objectType),
    marks `description` required too (HubSpot-defined properties carry help text, possibly empty), and the official
    client's `Property` model rejects a definition without it.
    """
    out = []
    for name, spec in PROPERTIES.items():
        options = [{"label": "Yes" if v == "true" else "No", "value": v} for v in spec.options] \
            if spec.type == "bool" else [{"label": v.replace("_", " ").title(), "value": v} for v in spec.options]
        out.append({
            "name": name, "label": name.replace("_", " ").title(), "description": "", "type": spec.type,
            "fieldType": _FIELD_TYPES[spec.type], "groupName": "contactinformation",
            "options": [{**o, "displayOrder": i, "hidden": False} for i, o in enumerate(options)],
            "modificationMetadata": {"archivable": False, "readOnlyDefinition": True,
                                     "readOnlyValue": spec.read_only},
            "hubspotDefined": True,
        })
    return out


def property_errors(properties: Any) -> list[dict[str, Any]]:
    """HubSpot's per-property validation errors for a write (empty when every value is acceptable)."""
    if not isinstance(properties, dict):
        return [{"isValid": False, "message": "properties must be an object", "error": "INVALID_INPUT", "name": ""}]
    errors: list[dict[str, Any]] = []
    for name, value in properties.items():
        spec = PROPERTIES.get(name)
        if spec is None:
            message, code = f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST"
        elif spec.read_only:
            message, code = f'"{name}" is a read only property; its value cannot be set.', "READ_ONLY_VALUE"
        elif value is None or value == "":
            continue  # clearing a property is allowed
        elif spec.options and str(value) not in spec.options:
            allowed = ", ".join(spec.options)
            message, code = f"{value} was not one of the allowed options: [{allowed}]", "INVALID_OPTION"
        else:
            continue
        errors.append({"isValid": False, "message": message, "error": code, "name": name})
    return errors


def validation_message(errors: list[dict[str, Any]]) -> str:
    return f"Property values were not valid: {json.dumps(errors)}"


def shape(record: Record, properties: list[str] | None) -> dict[str, Any]:
    """The API shape of one stored contact, with `properties` (or the default ones)."""
    if "raw" in record:
        props = dict(record["raw"])
    else:
        stored = record["properties"]
        wanted = properties if properties is not None else list(STRING_PROPERTIES)
        props = {name: stored.get(name) for name in wanted if name in PROPERTIES}
        props.update(createdate=iso_ms(record["cd"]), lastmodifieddate=iso_ms(record["lm"]))
        props["hs_object_id"] = str(record["id"])
    return {
        "id": str(record["id"]),
        "properties": props,
        "createdAt": iso_ms(record["cd"]),
        "updatedAt": iso_ms(record["lm"]),
        "archived": False,
    }


def value_of(record: Record, name: str) -> Any:
    """The value search filters and sorts on: stamps as epoch ms, the id as a number, other properties as stored."""
    if name == "lastmodifieddate":
        return record["lm"]
    if name == "createdate":
        return record["cd"]
    if name == "hs_object_id":
        return record["id"]
    source = record.get("raw", record["properties"])
    return source.get(name)


def search_records(records: list[Record], body: dict[str, Any], limits: HubspotLimits) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a CRM search over the records the index holds (`records`)."""
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 1 <= limit <= limits.max_page_size:
        return 400, _invalid(f"limit must be between 1 and {limits.max_page_size}")
    after_text = str(body.get("after") or "0")
    if not after_text.isdigit():
        return 400, _invalid(f"after must be a non-negative integer, got {after_text!r}")
    after = int(after_text)
    if after >= limits.max_results_per_query:
        return 400, _invalid(f"Paging beyond {limits.max_results_per_query} results is not supported; "
                             f"narrow the query (after={after}).")
    compiled = _compile_groups(body.get("filterGroups") or [], limits)
    if isinstance(compiled, str):
        return 400, _invalid(compiled)
    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        return 400, _invalid("only one sort is supported")
    sort_name, descending = "hs_object_id", False
    if sorts:
        sort = sorts[0] if isinstance(sorts[0], dict) else {"propertyName": str(sorts[0])}
        sort_name = str(sort.get("propertyName", "hs_object_id"))
        descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        if sort_name not in PROPERTIES:
            return 400, _invalid(f'Property "{sort_name}" does not exist')
    requested = body.get("properties")
    wanted = [p for p in requested if isinstance(p, str)] if isinstance(requested, list) else None
    matched = [r for r in records if not compiled or any(all(p(r) for p in group) for group in compiled)]

    def key(record: Record) -> tuple[Any, ...]:
        value = value_of(record, sort_name)
        return (value is None, value if isinstance(value, int) else str(value or ""))

    matched.sort(key=lambda r: r["id"])  # ties come back in id order (stable sorts)
    matched.sort(key=key, reverse=descending)
    end = min(after + limit, limits.max_results_per_query)
    page = [shape(r, wanted) for r in matched[after:end]]
    out: dict[str, Any] = {"total": len(matched), "results": page}
    if after + len(page) < len(matched):
        out["paging"] = {"next": {"after": str(after + len(page))}}
    return 200, out


def _invalid(message: str) -> dict[str, Any]:
    return {"message": message, "category": "VALIDATION_ERROR"}


def _compile_groups(groups: Any, limits: HubspotLimits) -> list[list[Callable[[Record], bool]]] | str:
    if not isinstance(groups, list) or len(groups) > limits.max_filter_groups:
        return f"at most {limits.max_filter_groups} filterGroups are allowed"
    compiled: list[list[Callable[[Record], bool]]] = []
    total = 0
    for group in groups:
        filters = group.get("filters", []) if isinstance(group, dict) else None
        if not isinstance(filters, list) or len(filters) > limits.max_filters_per_group:
            return f"each filterGroup holds at most {limits.max_filters_per_group} filters"
        total += len(filters)
        if total > limits.max_filters:
            return f"at most {limits.max_filters} filters are allowed in all"
        predicates = []
        for spec in filters:
            made = _predicate(spec)
            if isinstance(made, str):
                return made
            predicates.append(made)
        compiled.append(predicates)
    return compiled


def _predicate(spec: Any) -> Callable[[Record], bool] | str:
    if not isinstance(spec, dict):
        return "a filter must be an object"
    name, operator = spec.get("propertyName"), str(spec.get("operator", "")).upper()
    if name not in PROPERTIES:
        return f'Property "{name}" does not exist'
    if operator not in _OPERATORS:
        return f"unknown operator {operator!r}"
    kind = PROPERTIES[name].type

    def convert(raw: Any) -> Any:
        if kind == "datetime":
            return parse_stamp(raw)
        if kind == "number":
            return int(raw) if str(raw).lstrip("-").isdigit() else None
        return str(raw).lower()

    if operator in {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}:
        want = operator == "HAS_PROPERTY"
        return lambda r: (value_of(r, name) not in (None, "")) == want
    if operator in {"IN", "NOT_IN"}:
        values = {convert(v) for v in spec.get("values") or []}
        want = operator == "IN"
        return lambda r: (convert(value_of(r, name)) in values) == want
    target = convert(spec.get("value"))
    if target is None:
        return f"invalid value {spec.get('value')!r} for {name}"
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b, "LT": lambda a, b: a < b, "LTE": lambda a, b: a <= b,
    }
    op = compare[operator]

    def predicate(record: Record) -> bool:
        value = value_of(record, name)
        if value is None:
            return operator == "NEQ"
        value = value if kind in {"datetime", "number"} else str(value).lower()
        try:
            return bool(op(value, target))
        except TypeError:
            return False

    return predicate
