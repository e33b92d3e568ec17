"""The SOQL subset the Salesforce sandbox understands, and Salesforce's dateTime wire format.

SOQL and SOSL Reference, "SOQL SELECT Syntax": https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/
soql_sosl/sforce_api_calls_soql_select.htm (SELECT fields | COUNT() FROM object [WHERE ...] [ORDER BY ...] [LIMIT n];
nulls first on ascending order); REST API Developer Guide, "Valid Date and DateTime Formats".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from leadflow.sandbox.salesforce_schema import NUMBER_TYPES, SCHEMA, STANDARD


def sf_datetime(value: datetime) -> str:
    """Salesforce's wire format; fixed width in UTC, so string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


_SF_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2})?")


def parse_sf_datetime(value: Any) -> str | None:
    """A dateTime as Salesforce accepts it on write (ISO 8601, `yyyy-MM-ddTHH:mm:ss[.SSS][Z|+/-HH[:]mm]`, no zone =
    UTC) in the wire format it is stored and read back in; None when Salesforce would refuse it."""
    if not isinstance(value, str) or not _SF_DATETIME.fullmatch(value.strip()):
        return None
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return sf_datetime(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


# ------------------------------------------------------------------------------------------------- SOQL subset

_TOKEN = re.compile(
    r"\s*(?:(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))"
    r"|(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>>=|<=|!=|=|<|>|\(|\)|,)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)


@dataclass
class Soql:
    obj: str
    fields: list[str]
    count: bool = False
    where: list[tuple[str, str, Any]] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)
    limit: int | None = None


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token at position {pos}: {text[pos:pos + 20]!r}")
        kind = m.lastgroup or "word"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _parse_datetime_literal(text: str) -> str:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return sf_datetime(value)


def parse_soql(text: str, schema: dict[str, dict[str, str]] | None = None) -> Soql:
    """Parse `SELECT f, ... | COUNT() FROM obj [WHERE c AND c ...] [ORDER BY f [ASC|DESC], ...] [LIMIT n]` against
    `schema` (object → field → type code; default: every field of a non-stock org). A field outside it is
    INVALID_FIELD, exactly as a field the user cannot see is in a real org (SOQL and SOSL Reference, "SOQL SELECT
    Syntax"; field-level security hides a field from the API as if it did not exist: Salesforce Security Guide,
    "Field-Level Security" https://help.salesforce.com/s/articleView?id=sf.admin_fls.htm)."""
    schema = SCHEMA if schema is None else schema
    toks = _tokens(text)
    i = 0

    def peek(word: str) -> bool:
        return i < len(toks) and toks[i][1].upper() == word

    def take(kind: str | None = None, word: str | None = None) -> str:
        nonlocal i
        if i >= len(toks) or (kind and toks[i][0] != kind) or (word and toks[i][1].upper() != word):
            got = toks[i][1] if i < len(toks) else "end of query"
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{got}'" + (f" (expected {word})" if word else ""))
        i += 1
        return toks[i - 1][1]

    take("word", "SELECT")
    fields: list[str] = []
    count = False
    if peek("COUNT"):
        take()
        take("op", "(")
        take("op", ")")
        count = True
    else:
        fields.append(take("word"))
        while peek(","):
            take()
            fields.append(take("word"))
    take("word", "FROM")
    obj_raw = take("word")
    obj = next((o for o in schema if o.lower() == obj_raw.lower()), None)
    if obj is None:
        raise SoqlError("INVALID_TYPE", f"sObject type '{obj_raw}' is not supported.")
    query = Soql(obj, [], count)
    query.fields = [_select_field(obj, f, schema) for f in fields]
    if peek("WHERE"):
        take()
        while True:
            name, by_type = _condition_field(obj, take("word"), schema)
            if peek("IN"):
                take()
                take("op", "(")
                values = [_literal(*toks[i])]
                i += 1
                while peek(","):
                    take()
                    values.append(_literal(*toks[i]))
                    i += 1
                take("op", ")")
                query.where.append((name, "TYPE IN" if by_type else "IN", values))
            else:
                op = take("op")
                if op in "(),":
                    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}'")
                if i >= len(toks):
                    raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
                if by_type and op not in ("=", "!="):
                    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}' (a .Type compares with =, != or IN)")
                query.where.append((name, f"TYPE {op}" if by_type else op, _literal(*toks[i])))
                i += 1
            if not peek("AND"):
                break
            take()
    if peek("ORDER"):
        take()
        take("word", "BY")
        while True:
            name = _field(obj, take("word"), schema)
            desc = False
            if peek("ASC") or peek("DESC"):
                desc = take().upper() == "DESC"
            query.order.append((name, desc))
            if not peek(","):
                break
            take()
    if peek("LIMIT"):
        take()
        query.limit = int(take("num"))
    if i != len(toks):
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{toks[i][1]}'")
    for name, op, value in query.where:
        ftype = schema[obj][name]
        if op.startswith("TYPE"):
            continue  # object names, checked as text
        for v in value if op == "IN" else [value]:
            if v is None:
                if op not in ("=", "!="):
                    raise SoqlError("MALFORMED_QUERY", f"null can only be compared with = or != ({name})")
            elif ftype == "datetime" and not isinstance(v, _Dt):
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                "dateTime and should not be enclosed in quotes")
            elif ftype == "boolean" and not isinstance(v, bool):
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                "boolean and should not be enclosed in quotes")
            elif ftype in NUMBER_TYPES and not isinstance(v, _Num):
                raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must be of type "
                                "double and should not be enclosed in quotes")
    query.where = [
        (name, op, [float(v) if isinstance(v, _Num) else v for v in value] if op == "IN" else
         float(value) if isinstance(value, _Num) else value)
        if schema[obj][name] in NUMBER_TYPES else (name, op, value)
        for name, op, value in query.where
    ]
    return query


class _Dt(str):
    """A datetime literal, held in the sandbox's fixed-width wire format."""


class _Num(str):
    """A number literal (text, so it still compares equal to a string field holding the same digits)."""


def _literal(kind: str, text: str) -> Any:
    if kind == "dt":
        return _Dt(_parse_datetime_literal(text))
    if kind == "str":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "num":
        return _Num(text)
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind == "word" and text.lower() == "null":
        return None
    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{text}'")


POLYMORPHIC: Final = {"WhoId": ("Who", {"00Q": "Lead", "003": "Contact"}),
                      "WhatId": ("What", {"001": "Account"})}
"""Polymorphic reference fields, their relationship name and the objects their key prefixes name. SOQL filters
them by the referenced object's type: `WHERE Who.Type = 'Lead'` (SOQL and SOSL Reference, "Understanding
Polymorphic Keys and Relationships": https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
sforce_api_calls_soql_relationships_and_polymorph_keys.htm)."""


def _condition_field(obj: str, name: str, schema: dict[str, dict[str, str]]) -> tuple[str, bool]:
    """(field, by type?) of a WHERE condition's left side: a field, or `Who.Type` / `What.Type` (the type of the
    record a polymorphic reference names)."""
    relation, dot, attribute = name.partition(".")
    if dot and attribute.lower() == "type":
        for field_name, (rel, _) in POLYMORPHIC.items():
            if rel.lower() == relation.lower() and field_name in schema[obj]:
                return field_name, True
    return _field(obj, name, schema), False


def _type_of(field_name: str, value: Any) -> str | None:
    return POLYMORPHIC[field_name][1].get(str(value)[:3]) if value is not None else None


PARENTS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    obj: {m.name[:-2]: (m.name, m.reference_to[0]) for m in metas
          if len(m.reference_to) == 1 and m.name.endswith("Id")}
    for obj, metas in STANDARD.items()}
"""Object → relationship name → (reference field, parent object): the single-target lookups a SELECT may follow to
a parent's field, `SELECT Queue.Name FROM QueueSobject` (SOQL and SOSL Reference, "Relationship Queries": a child-to-
parent relationship is named by the reference field without `Id`: https://developer.salesforce.com/docs/atlas.en-us.
soql_sosl.meta/soql_sosl/sforce_api_calls_soql_relationships_query_using.htm)."""


def parent_of(obj: str, name: str) -> tuple[str, str, str, str] | None:
    """(relationship, reference field, parent object, parent field) of a selected `Rel.Field`, else None."""
    relation, dot, attribute = name.partition(".")
    if not dot or relation not in PARENTS.get(obj, {}):
        return None
    return relation, *PARENTS[obj][relation], attribute


def _select_field(obj: str, name: str, schema: dict[str, dict[str, str]]) -> str:
    """A SELECT item: a field of `obj`, or `Rel.Field` — a field of the parent a single-target lookup names."""
    relation, dot, attribute = name.partition(".")
    if dot:
        known = next((r for r in PARENTS.get(obj, {}) if r.lower() == relation.lower()), None)
        if known is not None and PARENTS[obj][known][0] in schema.get(obj, {}):
            parent = PARENTS[obj][known][1]
            if parent in schema:
                return f"{known}.{_field(parent, attribute, schema)}"
        raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{relation}' in field path. If you are "
                        "attempting to use a custom relationship, be sure to append the '__r' after the custom "
                        "relationship name. Please reference your WSDL or the describe call for the appropriate names.")
    return _field(obj, name, schema)


def with_parents(obj: str, fields: list[str], records: list[dict[str, Any]],
                 objects: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """`records` with each selected `Rel.Field` read from the parent record (None when the lookup is empty)."""
    paths = [(f, parent_of(obj, f)) for f in fields if "." in f]
    if not paths:
        return records
    out = []
    for record in records:
        extra = {}
        for name, (_, reference, parent, attribute) in ((n, p) for n, p in paths if p is not None):
            found = objects.get(parent, {}).get(record.get(reference) or "")
            extra[name] = None if found is None else found.get(attribute)
        out.append(record | extra)
    return out


def _field(obj: str, name: str, schema: dict[str, dict[str, str]] | None = None) -> str:
    for known in (SCHEMA if schema is None else schema)[obj]:
        if known.lower() == name.lower():
            return known
    raise SoqlError(
        "INVALID_FIELD",
        f"\n{name}\n^\nERROR at Row:1:Column:1\nNo such column '{name}' on entity '{obj}'. If you are attempting "
        "to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
        "or the describe call for the appropriate names.",
    )


def _matches(record: dict[str, Any], where: list[tuple[str, str, Any]]) -> bool:
    for name, op, want in where:
        have = record.get(name)
        if op.startswith("TYPE"):
            kind = _type_of(name, have)
            wanted = [w.lower() for w in (want if op == "TYPE IN" else [want]) if isinstance(w, str)]
            if (kind is not None and kind.lower() in wanted) != (op != "TYPE !="):
                return False
            continue
        if op == "IN":
            if have not in want:
                return False
        elif want is None:
            if (op == "=") == (have is not None):
                return False
        elif have is None:
            if op != "!=":
                return False
        elif op == "=" and have != want or op == "!=" and have == want:
            return False
        elif op in ("<", ">", "<=", ">=") and not _compare(have, op, want):
            return False
    return True


def _compare(have: Any, op: str, want: Any) -> bool:
    if isinstance(have, bool) or isinstance(want, bool):
        return False
    return {"<": have < want, ">": have > want, "<=": have <= want, ">=": have >= want}[op]


def _sorted(records: list[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    out = list(records)
    for name, desc in reversed(order):  # stable sorts, last key first; nulls first on ASC like Salesforce
        out.sort(key=lambda r: (r.get(name) is not None, r.get(name) if r.get(name) is not None else ""),
                 reverse=desc)
    return out
