"""Fit planned Salesforce writes to what the org's describe allows, and check a field mapping against it.

Pure functions over the Lead describe JSON (no I/O): the connector fetches the describe once and calls `fit_planned`
before each write; `leadflow doctor` calls `check_mapping`. Shapes follow the real API:

- Salesforce REST API Developer Guide, "sObject Describe" (GET /services/data/vXX.X/sobjects/Lead/describe/):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
  Each entry of `fields` carries name, type, length, custom, updateable, createable, nillable, precision, scale,
  restrictedPicklist, picklistValues [{value, label, active, defaultValue}] and referenceTo.
- SOAP API Developer Guide, "DescribeSObjectResult" / "Field" (the same properties, with their meaning):
  https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_describesobjects_describesobjectresult.htm
- Field-level security: a field the user cannot see is left out of the describe altogether ("describeSObjects()":
  https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_describesobjects.htm), so
  "missing" covers both "not created" and "not visible to the integration user".

What the org would refuse is never sent: text longer than a string/textarea field is cut at a word boundary with a
marker (never a dead letter); a value outside a restricted picklist, an OwnerId that is not an active user or a
queue, a field missing or not updateable, an e-mail/phone/URL too long to cut, a number outside the field's
precision — each is left out of the request and reported in `refused`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pandas as pd

from leadflow.connectors.base import REFUSED_COLUMNS

MARKER: Final = "…"
"""Appended to text cut to fit a field."""
OWNER_FIELD: Final = "OwnerId"

# Describe field types (SOAP API "Field Types": https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/
# field_types.htm). Free text that can be cut; text whose meaning a cut would break; numbers.
CUTTABLE_TYPES: Final = frozenset({"string", "textarea", "combobox", "encryptedstring"})
EXACT_TEXT_TYPES: Final = frozenset({"email", "phone", "url"})
NUMBER_TYPES: Final = frozenset({"double", "currency", "percent", "int", "long"})
# Which describe types hold each mapping type.
COMPATIBLE_TYPES: Final[dict[str, frozenset[str]]] = {
    "string": frozenset(CUTTABLE_TYPES | EXACT_TEXT_TYPES | {"picklist", "reference", "id"}),
    "picklist": frozenset({"picklist", "string", "combobox"}),
    "boolean": frozenset({"boolean"}),
    "datetime": frozenset({"datetime"}),
    "number": NUMBER_TYPES,
}


@dataclass(frozen=True)
class FieldRule:
    """What the org says about one field (from its describe entry)."""

    name: str
    type: str
    length: int = 0
    updateable: bool = True
    createable: bool = True
    custom: bool = False
    restricted: bool = False
    values: frozenset[str] = frozenset()
    """Active picklist values."""
    precision: int = 0
    scale: int = 0


_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def rules_from_describe(describe: Mapping[str, Any]) -> dict[str, FieldRule]:
    """Field name → FieldRule for every field in an sObject describe."""
    rules: dict[str, FieldRule] = {}
    for entry in describe.get("fields") or []:
        name = str(entry.get("name") or "")
        if not name:
            continue
        values = frozenset(str(p.get("value")) for p in entry.get("picklistValues") or []
                           if p.get("active", True) and p.get("value") is not None)
        rules[name] = FieldRule(
            name=name, type=str(entry.get("type") or "string"), length=int(entry.get("length") or 0),
            updateable=bool(entry.get("updateable", False)), createable=bool(entry.get("createable", False)),
            custom=bool(entry.get("custom", name.endswith("__c"))),
            restricted=bool(entry.get("restrictedPicklist", False)), values=values,
            precision=int(entry.get("precision") or 0), scale=int(entry.get("scale") or 0),
        )
    return rules


def cut_at_word(text: str, limit: int, marker: str = MARKER) -> str:
    """`text` if it fits in `limit` characters; else its head cut at the last word break (when one is in the second
    half) with `marker` appended, `limit` characters at most."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    room = limit - len(marker)
    head = text[:room]
    if not text[room].isspace():
        brk = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
        if brk >= room // 2:
            head = head[:brk]
    head = head.rstrip(" \t\r\n,;:-–—") or text[:room]
    return head + marker


def same_id(a: str, b: str) -> bool:
    """Salesforce ids compare on their case-sensitive 15-character form (18-character ids add a checksum)."""
    return a[:15] == b[:15]


def id_set(ids: Iterable[str]) -> frozenset[str]:
    """Ids in their 15-character form, for membership tests."""
    return frozenset(str(i)[:15] for i in ids if i)


@dataclass
class FitResult:
    """`planned`: what may be sent; `refused`: one row per value left out; `truncated`: values cut to fit."""

    planned: list[tuple[str, dict[str, Any]]]
    refused: pd.DataFrame = field(default_factory=lambda: empty_refused())
    truncated: int = 0


def empty_refused() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in REFUSED_COLUMNS})


def fit_planned(
    planned: Sequence[tuple[str, dict[str, Any]]],
    rules: Mapping[str, FieldRule],
    owners: Collection[str] | None = None,
    *,
    marker: str = MARKER,
) -> FitResult:
    """Fit `planned` ((record id, {field: value})) to `rules`; `owners`: ids of active users and queues (None: the
    OwnerId check is skipped). Records left with no field are dropped."""
    valid_owners = None if owners is None else id_set(owners)
    out: list[tuple[str, dict[str, Any]]] = []
    refused: list[dict[str, Any]] = []
    truncated = 0
    for record_id, values in planned:
        kept: dict[str, Any] = {}
        for name, value in values.items():
            verdict = _fit_value(name, value, rules.get(name), valid_owners, marker)
            if verdict[0] == "refuse":
                refused.append({"record_id": record_id, "field": name, "value": value, "reason": verdict[1],
                                "message": verdict[2]})
                continue
            if verdict[0] == "cut":
                truncated += 1
            kept[name] = verdict[1]
        if kept:
            out.append((record_id, kept))
    frame = pd.DataFrame(refused, columns=list(REFUSED_COLUMNS)) if refused else empty_refused()
    return FitResult(planned=out, refused=frame, truncated=truncated)


def _fit_value(name: str, value: Any, rule: FieldRule | None, owners: frozenset[str] | None,
               marker: str) -> tuple[Literal["keep", "cut"], Any, str] | tuple[Literal["refuse"], str, str]:
    if rule is None:
        return ("refuse", "FIELD_MISSING", f"{name} is not in the org's Lead describe (not created, or not "
                "visible to the integration user): run `leadflow setup salesforce`")
    if not rule.updateable:
        return ("refuse", "NOT_UPDATEABLE", f"{name} is not updateable for the integration user")
    if name == OWNER_FIELD and owners is not None and str(value)[:15] not in owners:
        # A Lead's owner is an active user or a queue that takes Leads (Group Type Queue + QueueSobject), else
        # INACTIVE_OWNER_OR_USER: Object Reference, "Lead" OwnerId and "QueueSobject":
        # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_lead.htm
        # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_queuesobject.htm
        return ("refuse", "INVALID_OWNER", f"{value!s} is not an active user or a Lead queue in the org")
    if rule.type == "picklist" and rule.restricted and str(value) not in rule.values:
        # A restricted picklist takes only its own values; others fail INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST
        # (Metadata API Developer Guide, "Picklist" restrictedPicklist:
        # https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_picklist.htm)
        return ("refuse", "NOT_IN_PICKLIST", f"{str(value)[:80]!r} is not an active value of the org's restricted "
                f"picklist {name}")
    if rule.type == "email" and isinstance(value, str) and value and not _EMAIL.fullmatch(value):
        # An email field takes only an address (SOAP API Developer Guide, "Field Types", email: "the API validates
        # the format"; an invalid one fails INVALID_EMAIL_ADDRESS):
        # https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm
        # leadflow does not send what it could not make into an address: the person's value stays as it is.
        return ("refuse", "INVALID_EMAIL_ADDRESS", f"{value[:80]!r} is not an e-mail address for {name}")
    if isinstance(value, str) and rule.length and len(value) > rule.length:
        # Longer text is refused with STRING_TOO_LONG (SOAP API Developer Guide, "Core Data Types Used in API
        # Calls", StatusCode: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/
        # sforce_api_calls_concepts_core_data_objects.htm; REST "Status Codes and Error Responses":
        # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm)
        if rule.type in CUTTABLE_TYPES:
            return ("cut", cut_at_word(value, rule.length, marker), "")
        return ("refuse", "TOO_LONG", f"{len(value)} characters do not fit {name} ({rule.type}, {rule.length}); "
                "cutting would corrupt it")
    if rule.type in NUMBER_TYPES and rule.precision and isinstance(value, (int, float)) \
            and not isinstance(value, bool) and math.isfinite(float(value)):
        if abs(float(value)) >= 10 ** (rule.precision - rule.scale):
            return ("refuse", "NUMBER_OUTSIDE_VALID_RANGE", f"{value} has more than {rule.precision - rule.scale} "
                    f"digits before the decimal point for {name}")
    return ("keep", value, "")


# ------------------------------------------------------------------------------------------------- mapping checks


@dataclass(frozen=True)
class FieldProblem:
    """One way a mapped field does not fit the org; `level` fail stops a sync, warn does not."""

    field: str
    level: Literal["fail", "warn"]
    problem: str


def check_mapping(fields: Mapping[str, Any], rules: Mapping[str, FieldRule]) -> list[FieldProblem]:
    """Problems of a Lead field mapping (API name → FieldSpec) against the org's rules, in mapping order."""
    problems: list[FieldProblem] = []
    for name, spec in fields.items():
        rule = rules.get(name)
        if rule is None:
            what = "custom field missing" if name.endswith("__c") else "field not visible"
            problems.append(FieldProblem(name, "fail", f"{what} (not in the Lead describe for the integration user)"))
            continue
        if rule.type not in COMPATIBLE_TYPES[spec.type]:
            problems.append(FieldProblem(name, "fail", f"is {rule.type} in the org; the mapping says {spec.type}"))
            continue
        if spec.write and not rule.updateable:
            problems.append(FieldProblem(name, "fail", "not updateable for the integration user (read-only "
                                         "field-level security, or a system field)"))
        if spec.write and spec.type == "picklist" and rule.type == "picklist" and rule.restricted and spec.values:
            absent = [v for v in spec.values if v not in rule.values]
            if absent:
                problems.append(FieldProblem(name, "fail", f"restricted picklist lacks {', '.join(map(repr, absent))}"))
        # What we write: a custom field's declared length (setup creates it so), a standard field's only when the
        # mapping sets one (the org's own length is what people type into; longer values are cut when written).
        declared = name.endswith("__c") or "length" in spec.model_fields_set
        ours = (spec.length if declared else 0) if spec.type == "string" else \
            max((len(v) for v in spec.values or []), default=0)
        if spec.write and ours and rule.length and rule.type in CUTTABLE_TYPES | EXACT_TEXT_TYPES \
                and rule.length < ours:
            cut = "cut to fit" if rule.type in CUTTABLE_TYPES else "refused"
            problems.append(FieldProblem(name, "warn", f"holds {rule.length} characters; leadflow writes up to "
                                         f"{ours}: longer values are {cut}"))
        declared_scale = name.endswith("__c") or "scale" in spec.model_fields_set
        if spec.write and spec.type == "number" and rule.type in NUMBER_TYPES and rule.precision and declared_scale \
                and spec.scale is not None and rule.scale < spec.scale:
            problems.append(FieldProblem(name, "warn", f"keeps {rule.scale} decimals; leadflow writes {spec.scale}"))
    return problems
