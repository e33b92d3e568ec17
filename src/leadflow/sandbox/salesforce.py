"""A local Salesforce org: OAuth2, SOQL query (+ pagination), sObjects, Collections, Bulk API 2.0, limits, faults.

Speaks the real v59.0 paths, payloads and error shapes so unmodified simple-salesforce works against it over HTTPS.
State is in memory; `Org.save(path)` / `Org.load(path)` persist it as JSON so `leadflow sandbox` survives restarts.

Faults (`org.faults.inject(route_regex, kind, times, **detail)` or `POST /__sandbox/faults {route, kind, times,
detail}`; the route matches "METHOD /path"): "503"; "403" (REQUEST_LIMIT_EXCEEDED); "401" (every session expires);
"slow" (detail seconds: the response is held back); "lock_row" (per-record UNABLE_TO_LOCK_ROW in a Collections
PATCH or at an ingest job's UploadComplete; detail ids=[...] or count=N); "malformed" (a query page: the first
record loses a field, detail drop=Name; the second gets detail set={field: bad value}); "invalid_locator" (a
nextRecordsUrl has expired). Other admin calls: DELETE /__sandbox/faults, POST /__sandbox/expire-sessions,
POST /__sandbox/limits {max, used}, GET /__sandbox/stats. Admin calls never count against the API limit.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs

import pandas as pd
import requests
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from leadflow.sandbox.faults import Fault, FaultPlan
from leadflow.sandbox.server import BackgroundServer
from leadflow.sandbox.tls import self_signed_certificate

API_VERSION: Final = "59.0"
DATA: Final = f"/services/data/v{API_VERSION}"
LEAD_STATUSES: Final[tuple[str, ...]] = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
    "Nurture",
)
SEED_BASE: Final = datetime(2026, 10, 1, tzinfo=UTC)
READ_ONLY: Final = frozenset({"Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsConverted"})
REQUIRED: Final[dict[str, tuple[str, ...]]] = {"Lead": ("LastName", "Company"), "Contact": ("LastName",),
                                               "Account": ("Name",), "User": ("Username",)}
PREFIX: Final = {"Lead": "00Q", "Contact": "003", "Account": "001", "User": "005"}
_DATES = {"CreatedDate": "datetime", "LastModifiedDate": "datetime", "SystemModstamp": "datetime"}
NUMBER_TYPES: Final = frozenset({"int", "double", "currency"})
"""Number field types: JSON numbers on the wire ("int" holds whole numbers only)."""
# Field name → type. "picklist!" is a restricted picklist (values in PICKLISTS); "int", "double" and "currency" are
# numbers (JSON numbers; text that is not a number is refused); "date" is YYYY-MM-DD.
SCHEMA: Final[dict[str, dict[str, str]]] = {
    "Lead": {
        "Id": "id", "FirstName": "string", "LastName": "string", "Email": "email", "Company": "string",
        "Title": "string", "Phone": "string", "Country": "string", "State": "string", "City": "string",
        "PostalCode": "string", "Website": "string", "LeadSource": "picklist", "Status": "picklist!",
        "OwnerId": "reference", "HasOptedOutOfEmail": "boolean", "Email_Opt_In__c": "boolean",
        "Country_Code__c": "string", "State_Code__c": "string", "Phone_E164__c": "string", "Email_Valid__c": "boolean",
        "Mailable__c": "boolean", "Mailable_Reason__c": "string", "Seniority__c": "picklist",
        "Department__c": "picklist", "Consent_Required__c": "boolean", "IsConverted": "boolean",
        "NumberOfEmployees": "int", "AnnualRevenue": "currency", "Industry": "picklist",
        # leadflow's enrichment outputs
        "Account__c": "reference", "Account_Match_Method__c": "string", "Account_Match_Confidence__c": "double",
        "Duplicate_Of__c": "string", "Duplicate_Confidence__c": "double", "Segment__c": "string",
        "Enrichment_Source__c": "string", "Is_Role_Email__c": "boolean", "Is_Disposable_Email__c": "boolean",
        # leadflow's score and lifecycle outputs
        "Grade__c": "picklist!", "Rating__c": "string", "Score_Model_Version__c": "string",
        "Lifecycle_Stage__c": "picklist!", "Lifecycle_Reason__c": "string", "MQL_Date__c": "datetime",
        "SAL_Date__c": "datetime", "SQL_Date__c": "datetime", "Recycled_Date__c": "datetime",
        **_DATES,
    },
    "Contact": {
        "Id": "id", "FirstName": "string", "LastName": "string", "Email": "email", "Title": "string",
        "Phone": "string", "AccountId": "reference", "OwnerId": "reference", "HasOptedOutOfEmail": "boolean",
        "MailingCountry": "string", **_DATES,
    },
    "Account": {
        "Id": "id", "Name": "string", "Website": "string", "BillingCountry": "string", "Industry": "picklist",
        "OwnerId": "reference", "NumberOfEmployees": "int", "AnnualRevenue": "currency", "LastActivityDate": "date",
        **_DATES,
    },
    "User": {
        "Id": "id", "Username": "string", "Email": "email", "FirstName": "string", "LastName": "string",
        "IsActive": "boolean", **_DATES,
    },
}
GRADES: Final[tuple[str, ...]] = ("A", "B", "C", "D")
LIFECYCLE_STAGES: Final[tuple[str, ...]] = ("new", "mql", "sal", "sql", "recycled")
PICKLISTS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    ("Lead", "Status"): LEAD_STATUSES, ("Lead", "Grade__c"): GRADES, ("Lead", "Lifecycle_Stage__c"): LIFECYCLE_STAGES,
}
DEFAULTS: Final[dict[str, dict[str, Any]]] = {"Lead": {"IsConverted": False}}
"""Values a new record gets unless the request sets them."""
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


def _err(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status, headers=headers)


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


def parse_soql(text: str) -> Soql:
    """Parse `SELECT f, ... | COUNT() FROM obj [WHERE c AND c ...] [ORDER BY f [ASC|DESC], ...] [LIMIT n]`."""
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
    obj = next((o for o in SCHEMA if o.lower() == obj_raw.lower()), None)
    if obj is None:
        raise SoqlError("INVALID_TYPE", f"sObject type '{obj_raw}' is not supported.")
    query = Soql(obj, [], count)
    query.fields = [_field(obj, f) for f in fields]
    if peek("WHERE"):
        take()
        while True:
            name = _field(obj, take("word"))
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
                query.where.append((name, "IN", values))
            else:
                op = take("op")
                if op in "(),":
                    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{op}'")
                if i >= len(toks):
                    raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
                query.where.append((name, op, _literal(*toks[i])))
                i += 1
            if not peek("AND"):
                break
            take()
    if peek("ORDER"):
        take()
        take("word", "BY")
        while True:
            name = _field(obj, take("word"))
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
        ftype = SCHEMA[obj][name]
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
        if SCHEMA[obj][name] in NUMBER_TYPES else (name, op, value)
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


def _field(obj: str, name: str) -> str:
    for known in SCHEMA[obj]:
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


# ------------------------------------------------------------------------------------------------- the org


@dataclass
class Org:
    """In-memory state of one org; every mutation goes through the lock (handlers and tests share it)."""

    api_max: int = 100_000
    api_used: int = 0
    page_size: int = 2000
    client_id: str = "leadflow-sandbox-client"
    client_secret: str = "sandbox-secret"
    username: str = "integration@leadflow.sandbox"
    password: str = "sandbox-password"
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {o: {} for o in SCHEMA})
    counters: dict[str, int] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set, repr=False)
    cursors: dict[str, tuple[str, list[dict[str, Any]], list[str]]] = field(default_factory=dict, repr=False)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    requests_seen: deque[str] = field(default_factory=lambda: deque(maxlen=10_000), repr=False)
    field_writes: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list, repr=False)
    """(object, id, fields set) for every update applied since start (not persisted)."""
    faults: FaultPlan = field(default_factory=FaultPlan, repr=False)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- ids, tokens, limits
    def new_id(self, obj: str) -> str:
        with self.lock:
            n = self.counters.get(obj, 0) + 1
            self.counters[obj] = n
        return f"{PREFIX[obj]}5e{n:010d}AAA"

    def issue_token(self) -> str:
        token = "00D5e0000000001!" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return token

    def expire_sessions(self) -> None:
        with self.lock:
            self.tokens.clear()

    def set_limits(self, *, max_calls: int | None = None, used: int | None = None) -> None:
        with self.lock:
            if max_calls is not None:
                self.api_max = max_calls
            if used is not None:
                self.api_used = used

    # -- records
    def get(self, obj: str, record_id: str) -> dict[str, Any] | None:
        return self.objects[obj].get(record_id)

    def put(self, obj: str, values: dict[str, Any], record_id: str | None = None) -> str:
        """Create or update (copy-on-write, so open query cursors keep their snapshot); bumps the stamps."""
        now = sf_datetime(datetime.now(UTC))
        with self.lock:
            if record_id is None:
                record_id = self.new_id(obj)
                record = {name: None for name in SCHEMA[obj]} | DEFAULTS.get(obj, {}) | {"Id": record_id,
                                                                                         "CreatedDate": now}
            else:
                record = dict(self.objects[obj][record_id])
                # Like field history tracking: which fields each update set, so tests can count writes.
                self.field_writes.append((obj, record_id, tuple(sorted(values))))
            record.update(values)
            record["LastModifiedDate"] = record["SystemModstamp"] = now
            self.objects[obj][record_id] = record
        return record_id

    def validate(self, obj: str, values: dict[str, Any], *, create: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Coerce `values`; returns (clean values, Salesforce-shaped errors)."""
        errors: list[dict[str, Any]] = []
        clean: dict[str, Any] = {}
        schema = SCHEMA[obj]
        for raw_name, value in values.items():
            name = next((k for k in schema if k.lower() == raw_name.lower()), None)
            if name is None:
                errors.append(_rec_err("INVALID_FIELD", f"No such column '{raw_name}' on sobject of type {obj}", []))
                continue
            if name in READ_ONLY:
                errors.append(_rec_err("INVALID_FIELD_FOR_INSERT_UPDATE",
                                       f"Unable to create/update fields: {name}. Please check the security settings "
                                       "of this field and verify that it is read/write for your profile or "
                                       "permission set.", [name]))
                continue
            ftype = schema[name]
            if value is not None and ftype == "boolean" and not isinstance(value, bool):
                errors.append(_rec_err("JSON_PARSER_ERROR", f"Cannot deserialize instance of boolean from "
                                       f"VALUE_STRING value {value!r} for field {name}", [name]))
                continue
            if value is not None and ftype in NUMBER_TYPES:
                number = _number(value, ftype)
                if number is None:
                    kind = "int" if ftype == "int" else "double"
                    token = {bool: "VALUE_TRUE" if value else "VALUE_FALSE", str: "VALUE_STRING"}.get(
                        type(value), "VALUE_NUMBER_FLOAT" if isinstance(value, float) else "START_OBJECT")
                    errors.append(_rec_err("JSON_PARSER_ERROR", f"Cannot deserialize instance of {kind} from {token} "
                                           f"value {value!r} or request may be missing a required field for field "
                                           f"{name}", [name]))
                    continue
                clean[name] = number
                continue
            if value is not None and ftype == "date" and not (isinstance(value, str) and _DATE.fullmatch(value)):
                errors.append(_rec_err("JSON_PARSER_ERROR", f"Cannot deserialize value {value!r} as a date "
                                       f"(YYYY-MM-DD) for field {name}", [name]))
                continue
            if value is not None and ftype == "datetime":
                stored = parse_sf_datetime(value)
                if stored is None:
                    errors.append(_rec_err("JSON_PARSER_ERROR", f"Cannot deserialize instance of datetime from "
                                           f"VALUE_STRING value {value!r} for field {name}", [name]))
                    continue
                clean[name] = stored
                continue
            if value is not None and ftype != "boolean" and not isinstance(value, str):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = str(value)
                else:
                    errors.append(_rec_err("JSON_PARSER_ERROR", f"Cannot deserialize value {value!r} for field "
                                           f"{name}", [name]))
                    continue
            if ftype == "picklist!" and value not in PICKLISTS[(obj, name)]:
                errors.append(_rec_err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                       f"{name}: bad value for restricted picklist field: {value}", [name]))
                continue
            clean[name] = value
        if "Email" in clean and clean["Email"] and "@" not in clean["Email"]:
            errors.append(_rec_err("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Email must contain '@'", ["Email"]))
        if create:
            missing = [f for f in REQUIRED[obj] if not clean.get(f)]
            if missing:
                errors.append(_rec_err("REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing))
        return clean, errors

    # -- queries
    def run_query(self, soql: str) -> tuple[Soql, list[dict[str, Any]]]:
        query = parse_soql(soql)
        with self.lock:
            rows = [r for r in self.objects[query.obj].values() if _matches(r, query.where)]
        if query.order:
            rows = _sorted(rows, query.order)
        if query.limit is not None:
            rows = rows[: query.limit]
        return query, rows

    def open_cursor(self, obj: str, rows: list[dict[str, Any]], fields: list[str]) -> str:
        with self.lock:
            n = self.counters.get("cursor", 0) + 1
            self.counters["cursor"] = n
            key = f"01g5e{n:010d}AAA"
            self.cursors[key] = (obj, rows, fields)
        return key

    # -- persistence
    def save(self, path: Path) -> None:
        with self.lock:
            state = {"api_max": self.api_max, "api_used": self.api_used, "page_size": self.page_size,
                     "counters": self.counters, "objects": self.objects}
            text = json.dumps(state)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, **settings: Any) -> Org:
        state = json.loads(path.read_text(encoding="utf-8"))
        org = cls(**settings)
        org.api_max, org.api_used = state["api_max"], state["api_used"]
        org.page_size = settings.get("page_size", state["page_size"])
        org.counters = state["counters"]
        org.objects = {o: state["objects"].get(o, {}) for o in SCHEMA}
        for obj, defaults in DEFAULTS.items():  # state saved before a field existed
            for record in org.objects[obj].values():
                for name, value in defaults.items():
                    record.setdefault(name, value)
        return org


def _rec_err(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields}


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMERIC_TEXT = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _number(value: Any, ftype: str) -> int | float | None:
    """`value` as the number a field of `ftype` stores, or None when Salesforce would refuse it. Like the real
    API, a JSON string that spells a number is accepted; booleans, other text and (for "int") fractions are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _NUMERIC_TEXT.fullmatch(value):
            return None
        value = float(value)
    if not isinstance(value, (int, float)) or value != value or value in (float("inf"), float("-inf")):
        return None
    if ftype == "int":
        if isinstance(value, float) and not value.is_integer():
            return None
        return int(value)
    return float(value)


# ------------------------------------------------------------------------------------------------- HTTP app


def _project(obj: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": obj, "url": f"{DATA}/sobjects/{obj}/{record['Id']}"}}
    for name in fields:
        out[name] = record.get(name)
    return out


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _malform(records: list[dict[str, Any]], fault: Fault) -> None:
    """A broken payload: the first record loses a field, the second gets wrong types / unknown picklist values."""
    detail = fault.detail or {}
    if records:
        drop = detail.get("drop", "Email")
        records[0].pop(drop, None)
    if len(records) > 1:
        for name, value in (detail.get("set") or {"HasOptedOutOfEmail": "maybe", "Status": "Qualified??"}).items():
            if name in records[1]:
                records[1][name] = value


def create_app(org: Org) -> FastAPI:
    """The ASGI app serving `org`."""
    app = FastAPI(title="leadflow Salesforce sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    def limit_header() -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={org.api_used}/{org.api_max}"}

    @app.middleware("http")
    async def gatekeeper(request: Request, call_next: Any) -> Response:
        path = request.url.path
        org.requests_seen.append(f"{request.method} {path}")
        fault = None if path.startswith("/__sandbox") else org.faults.take(request.method, path)
        request.state.fault = fault
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(float((fault.detail or {}).get("seconds", 2.0)))
        if fault is not None and fault.kind == "503":
            return JSONResponse([{"errorCode": "SERVER_UNAVAILABLE", "message": "Service Unavailable"}],
                                status_code=503)
        if not path.startswith("/services/data/"):
            return await call_next(request)
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if fault is not None and fault.kind == "401":
            org.expire_sessions()
        if token not in org.tokens:
            return _err(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with org.lock:
            if (fault is not None and fault.kind == "403") or org.api_used >= org.api_max:
                return _err(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", limit_header())
            org.api_used += 1
        try:
            response: Response = await call_next(request)
        except Exception:  # a payload the handlers did not foresee: answer like Salesforce, keep serving
            return _err(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you "
                        "contact support: sandbox", limit_header())
        response.headers.update(limit_header())
        return response

    # -- OAuth2
    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, which leadflow does not depend on.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        ok_client = form.get("client_id") == org.client_id and form.get("client_secret") == org.client_secret
        if grant == "password":
            ok_client = ok_client and form.get("username") == org.username and form.get("password") == org.password
            if not ok_client:
                return JSONResponse({"error": "invalid_grant", "error_description": "authentication failure"}, 400)
        elif grant != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "grant type not supported"},
                                400)
        if not ok_client:
            return JSONResponse({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "access_token": org.issue_token(), "instance_url": base, "id": f"{base}/id/00D5e0000000001/005",
            "token_type": "Bearer", "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
        })

    # -- limits
    @app.get(f"{DATA}/limits/")
    async def limits() -> Response:
        return JSONResponse({"DailyApiRequests": {"Max": org.api_max, "Remaining": max(org.api_max - org.api_used, 0)},
                             "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000}})

    # -- query
    def page(obj: str, rows: list[dict[str, Any]], fields: list[str], start: int, size: int, key: str | None,
             fault: Fault | None) -> Response:
        chunk = [_project(obj, r, fields) for r in rows[start: start + size]]
        if fault is not None and fault.kind == "malformed":
            _malform(chunk, fault)
        done = start + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": chunk}
        if not done:
            key = key or org.open_cursor(obj, rows, fields)
            body["nextRecordsUrl"] = f"{DATA}/query/{key}-{start + size}"
        return JSONResponse(body)

    def batch_size(request: Request) -> int:
        options = request.headers.get("sforce-query-options", "")
        m = re.search(r"batchSize=(\d+)", options)
        return min(max(int(m.group(1)), 200), 2000) if m else org.page_size

    @app.get(f"{DATA}/query/")
    async def query(request: Request, q: str = "") -> Response:
        try:
            soql, rows = org.run_query(q)
        except SoqlError as exc:
            return _err(400, exc.code, exc.message)
        if soql.count:
            return JSONResponse({"totalSize": len(rows), "done": True, "records": []})
        return page(soql.obj, rows, soql.fields, 0, batch_size(request), None, request.state.fault)

    @app.get(DATA + "/query/{locator}")
    async def query_more(request: Request, locator: str) -> Response:
        key, _, offset = locator.rpartition("-")
        fault = request.state.fault
        if fault is not None and fault.kind == "invalid_locator":  # as when a locator sits idle past 15 minutes
            org.cursors.pop(key, None)
        cursor = org.cursors.get(key)
        if cursor is None or not offset.isdigit():
            return _err(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        obj, rows, fields = cursor
        return page(obj, rows, fields, int(offset), batch_size(request), key, request.state.fault)

    # -- sObjects
    def known(obj: str) -> bool:
        return obj in SCHEMA

    async def validated_body(request: Request, obj: str, *, create: bool) -> tuple[dict[str, Any] | None, Response | None]:
        """The request's fields, coerced; or the Salesforce-shaped 400 to answer with."""
        try:
            body = await request.json()
        except ValueError:
            return None, _err(400, "JSON_PARSER_ERROR", "Unexpected character in JSON body")
        clean, errors = org.validate(obj, body, create=create)
        if errors:
            return None, JSONResponse(
                [{"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]} for e in errors],
                status_code=400,
            )
        return clean, None

    @app.post(DATA + "/sobjects/{obj}/")
    async def create(request: Request, obj: str) -> Response:
        if not known(obj):
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        clean, refusal = await validated_body(request, obj, create=True)
        if clean is None:
            return refusal  # type: ignore[return-value]
        return JSONResponse({"id": org.put(obj, clean), "success": True, "errors": []}, status_code=201)

    @app.get(DATA + "/sobjects/{obj}/{record_id}")
    async def read(obj: str, record_id: str, fields: str | None = None) -> Response:
        record = org.get(obj, record_id) if known(obj) else None
        if record is None:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            names = [_field(obj, f.strip()) for f in fields.split(",")] if fields else list(SCHEMA[obj])
        except SoqlError as exc:
            return _err(400, exc.code, exc.message)
        return JSONResponse(_project(obj, record, names))

    @app.patch(DATA + "/sobjects/{obj}/{record_id}")
    async def update(request: Request, obj: str, record_id: str) -> Response:
        if not known(obj) or org.get(obj, record_id) is None:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        clean, refusal = await validated_body(request, obj, create=False)
        if clean is None:
            return refusal  # type: ignore[return-value]
        org.put(obj, clean, record_id)
        return Response(status_code=204)

    @app.delete(DATA + "/sobjects/{obj}/{record_id}")
    async def delete(obj: str, record_id: str) -> Response:
        with org.lock:
            if not known(obj) or org.objects[obj].pop(record_id, None) is None:
                return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(status_code=204)

    # -- sObject Collections
    def apply(obj: str, record_id: str | None, values: dict[str, Any], locked: bool) -> list[dict[str, Any]]:
        if locked:
            return [_rec_err("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])]
        if record_id is None or org.get(obj, record_id) is None:
            return [_rec_err("ENTITY_IS_DELETED" if record_id else "MISSING_ARGUMENT",
                             "entity is deleted" if record_id else "Id not specified in an update call", [])]
        clean, errors = org.validate(obj, values, create=False)
        if not errors:
            org.put(obj, clean, record_id)
        return errors

    def locked_ids(fault: Fault | None, ids: list[str | None]) -> set[str | None]:
        if fault is None or fault.kind != "lock_row":
            return set()
        detail = fault.detail or {}
        if "ids" in detail:
            return set(detail["ids"])
        return set(ids[: int(detail.get("count", 1))])

    @app.patch(f"{DATA}/composite/sobjects")
    async def collections_update(request: Request) -> Response:
        try:
            body = await request.json()
            records = body["records"]
            all_or_none = bool(body.get("allOrNone", False))
        except (ValueError, KeyError, TypeError):
            return _err(400, "JSON_PARSER_ERROR", "Unexpected body: expected {allOrNone, records}")
        if len(records) > 200:
            return _err(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records in this "
                        "operation")
        ids = [r.get("id") or r.get("Id") for r in records]
        locked = locked_ids(request.state.fault, ids)
        results = []
        with org.lock:
            planned = []
            for record, record_id in zip(records, ids, strict=True):
                values = {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}
                obj = (record.get("attributes") or {}).get("type", "Lead")
                if obj not in SCHEMA:
                    planned.append((obj, record_id, values, [_rec_err("INVALID_TYPE", f"no sObject {obj}", [])]))
                    continue
                planned.append((obj, record_id, values, None))
            if all_or_none:
                # Validate everything first; any failure rolls the whole request back.
                checks = []
                for obj, record_id, values, pre in planned:
                    errs = pre or ([] if record_id not in locked else [_rec_err(
                        "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])])
                    if not errs:
                        errs = org.validate(obj, values, create=False)[1] if org.get(obj, record_id) else [
                            _rec_err("ENTITY_IS_DELETED", "entity is deleted", [])]
                    checks.append(errs)
                if any(checks):
                    for (obj, record_id, _, _), errs in zip(planned, checks, strict=True):
                        results.append({"id": record_id, "success": False, "errors": errs or [_rec_err(
                            "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were "
                            "valid and the request was using AllOrNone header", [])]})
                    return JSONResponse(results)
            for obj, record_id, values, pre in planned:
                errors = pre or apply(obj, record_id, values, record_id in locked)
                results.append({"id": record_id, "success": not errors, "errors": errors})
        return JSONResponse(results)

    # -- Bulk API 2.0
    def job_info(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def new_job(kind: str, body: dict[str, Any]) -> dict[str, Any]:
        with org.lock:
            n = org.counters.get("job", 0) + 1
            org.counters["job"] = n
        now = sf_datetime(datetime.now(UTC))
        job = {"id": f"7505e{n:010d}AAA", "operation": body.get("operation"), "object": body.get("object"),
               "createdById": "0055e0000000001AAA", "createdDate": now, "systemModstamp": now, "state": "Open",
               "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(API_VERSION),
               "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": body.get("columnDelimiter", "COMMA"),
               "jobType": "V2Query" if kind == "query" else "V2Ingest", "_kind": kind}
        org.jobs[job["id"]] = job
        return job

    @app.post(f"{DATA}/jobs/query")
    async def query_job(request: Request) -> Response:
        body = await request.json()
        if body.get("operation") not in ("query", "queryAll"):
            return _err(400, "INVALIDJOB", "Invalid operation")
        try:
            soql, rows = org.run_query(body.get("query", ""))
        except SoqlError as exc:
            return _err(400, exc.code, exc.message)
        if soql.count:
            return _err(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0 query")
        job = new_job("query", body) | {"query": body["query"], "object": soql.obj}
        # The result is computed at once: the first poll already sees JobComplete.
        job["_rows"] = [[_csv_value(r.get(f)) for f in soql.fields] for r in rows]
        job["_fields"] = soql.fields
        job["numberRecordsProcessed"] = len(rows)
        org.jobs[job["id"]] = job
        out = job_info(job) | {"state": "UploadComplete"}
        job["state"] = "JobComplete"
        return JSONResponse(out)

    @app.get(DATA + "/jobs/query/{job_id}")
    async def query_job_info(job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "query":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return JSONResponse(job_info(job) | {"retries": 0, "totalProcessingTime": 1})

    @app.get(DATA + "/jobs/query/{job_id}/results")
    async def query_results(job_id: str, maxRecords: int = 50_000, locator: str = "") -> Response:  # noqa: N803
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "query":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            start = int(base64.b64decode(locator).decode()) if locator else 0
        except ValueError:
            return _err(400, "INVALID_LOCATOR", "invalid locator")
        rows = job["_rows"][start: start + maxRecords]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(job["_fields"])
        writer.writerows(rows)
        end = start + len(rows)
        next_locator = base64.b64encode(str(end).encode()).decode() if end < len(job["_rows"]) else "null"
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(rows))})

    @app.post(f"{DATA}/jobs/ingest")
    async def ingest_job(request: Request) -> Response:
        body = await request.json()
        if body.get("object") not in SCHEMA or body.get("operation") not in ("insert", "update", "delete"):
            return _err(400, "INVALIDJOB", "Unsupported object or operation")
        job = new_job("ingest", body)
        job["_csv"] = ""
        job["_fault"] = None
        return JSONResponse(job_info(job))

    @app.put(DATA + "/jobs/ingest/{job_id}/batches")
    async def ingest_upload(request: Request, job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest" or job["state"] != "Open":
            return _err(400, "INVALIDJOB", "Job is not open for upload")
        job["_csv"] += (await request.body()).decode("utf-8")
        return Response(status_code=201)

    @app.patch(DATA + "/jobs/ingest/{job_id}")
    async def ingest_state(request: Request, job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        state = (await request.json()).get("state")
        if state == "Aborted":
            job["state"] = "Aborted"
        elif state == "UploadComplete" and job["state"] == "Open":
            run_ingest(job, request.state.fault)
        else:
            return _err(400, "INVALIDJOB", f"Cannot change state from {job['state']} to {state}")
        return JSONResponse(job_info(job) | {"state": "UploadComplete" if state != "Aborted" else "Aborted"})

    def run_ingest(job: dict[str, Any], fault: Fault | None) -> None:
        reader = csv.DictReader(io.StringIO(job["_csv"]))
        rows = list(reader)
        obj, operation = job["object"], job["operation"]
        ids = [r.get("Id") for r in rows]
        locked = locked_ids(fault, ids)
        ok: list[tuple[str, bool, dict[str, str]]] = []
        failed: list[tuple[str, str, dict[str, str]]] = []
        with org.lock:
            for row in rows:
                record_id = row.get("Id") or None
                values: dict[str, Any] = {}
                bad: list[dict[str, Any]] = []
                for name, raw in row.items():
                    if name == "Id":
                        continue
                    if raw == "":  # Bulk API: empty means "leave as it is"; #N/A clears
                        continue
                    ftype = SCHEMA[obj].get(next((k for k in SCHEMA[obj] if k.lower() == name.lower()), ""), "")
                    if raw == "#N/A":
                        values[name] = None
                    elif ftype == "boolean":
                        if raw.lower() not in ("true", "false", "1", "0"):
                            bad.append(_rec_err("INVALID_TYPE", f"{name}: value not of required type: {raw}",
                                                [name]))
                            continue
                        values[name] = raw.lower() in ("true", "1")
                    elif ftype == "datetime" and parse_sf_datetime(raw) is None:
                        bad.append(_rec_err("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                            f"{name}: value not of required type: {raw}", [name]))
                        continue
                    elif ftype in NUMBER_TYPES:
                        number = _number(raw, ftype)
                        if number is None:
                            bad.append(_rec_err("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                                f"{name}: value not of required type: {raw}", [name]))
                            continue
                        values[name] = number
                    else:
                        values[name] = raw
                if operation == "delete":
                    errors = [] if record_id and org.objects[obj].pop(record_id, None) else [
                        _rec_err("ENTITY_IS_DELETED", "entity is deleted", [])]
                    new_id = record_id or ""
                elif operation == "insert":
                    clean, errors = org.validate(obj, values, create=True)
                    errors = bad + errors
                    new_id = "" if errors else org.put(obj, clean)
                else:
                    errors = bad or apply(obj, record_id, values, record_id in locked)
                    new_id = record_id or ""
                if errors:
                    e = errors[0]
                    failed.append((record_id or "", f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])}--",
                                   row))
                else:
                    ok.append((new_id, operation == "insert", row))
        job["_ok"], job["_failed"], job["_fields"] = ok, failed, reader.fieldnames or []
        job.update(state="JobComplete", numberRecordsProcessed=len(rows), numberRecordsFailed=len(failed),
                   systemModstamp=sf_datetime(datetime.now(UTC)))

    @app.get(DATA + "/jobs/ingest/{job_id}")
    async def ingest_info(job_id: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return JSONResponse(job_info(job) | {"numberRecordsProcessed": job.get("numberRecordsProcessed", 0),
                                             "numberRecordsFailed": job.get("numberRecordsFailed", 0)})

    @app.get(DATA + "/jobs/ingest/{job_id}/{kind}/")
    async def ingest_results(job_id: str, kind: str) -> Response:
        job = org.jobs.get(job_id)
        if job is None or job["_kind"] != "ingest":
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fields = job.get("_fields", [])
        if kind == "successfulResults":
            writer.writerow(["sf__Id", "sf__Created", *fields])
            for record_id, created, row in job.get("_ok", []):
                writer.writerow([record_id, "true" if created else "false", *(row.get(f, "") for f in fields)])
        elif kind == "failedResults":
            writer.writerow(["sf__Id", "sf__Error", *fields])
            for record_id, error, row in job.get("_failed", []):
                writer.writerow([record_id, error, *(row.get(f, "") for f in fields)])
        elif kind == "unprocessedrecords":
            writer.writerow(fields)
        else:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(buffer.getvalue(), media_type="text/csv")

    # -- admin (not part of Salesforce; never counted against the API limit)
    @app.post("/__sandbox/faults")
    async def add_fault(request: Request) -> Response:
        body = await request.json()
        detail = body.get("detail") or {}
        org.faults.inject(body["route"], body["kind"], int(body.get("times", 1)), **detail)
        return JSONResponse({"pending": len(org.faults.pending())})

    @app.delete("/__sandbox/faults")
    async def clear_faults() -> Response:
        org.faults.clear()
        return Response(status_code=204)

    @app.post("/__sandbox/expire-sessions")
    async def expire() -> Response:
        org.expire_sessions()
        return Response(status_code=204)

    @app.post("/__sandbox/limits")
    async def set_limits(request: Request) -> Response:
        body = await request.json()
        org.set_limits(max_calls=body.get("max"), used=body.get("used"))
        return JSONResponse({"max": org.api_max, "used": org.api_used})

    @app.get("/__sandbox/stats")
    async def stats() -> Response:
        return JSONResponse({"api_used": org.api_used, "api_max": org.api_max,
                             "records": {o: len(v) for o, v in org.objects.items()}})

    return app


# ------------------------------------------------------------------------------------------------- running it


@dataclass
class RunningSalesforce:
    """A started sandbox: where it listens, how to trust it and log in, and the org behind it."""

    url: str
    cert_path: Path
    client_id: str
    client_secret: str
    org: Org
    _sessions: list[requests.Session] = field(default_factory=list, repr=False)

    @property
    def faults(self) -> FaultPlan:
        return self.org.faults

    def session(self) -> requests.Session:
        """A requests session that trusts the sandbox certificate and ignores REQUESTS_CA_BUNDLE/proxies."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.cert_path)
        self._sessions.append(session)
        return session

    def close_sessions(self) -> None:
        """Close every session handed out: an open TLS keep-alive connection holds up the server's shutdown."""
        for session in self._sessions:
            session.close()
        self._sessions.clear()

    def token(self) -> str:
        """A fresh access token (client-credentials grant)."""
        with self.session() as session:
            reply = session.post(f"{self.url}/services/oauth2/token", data={
                "grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret,
            }, timeout=10)
        reply.raise_for_status()
        return str(reply.json()["access_token"])

    def lead_frame(self) -> pd.DataFrame:
        """All leads in the org, as a DataFrame of Salesforce field names (for assertions)."""
        with self.org.lock:
            return pd.DataFrame(list(self.org.objects["Lead"].values()))


@contextmanager
def running_salesforce(
    folder: Path,
    *,
    leads: int = 1000,
    seed: int = 7,
    stamp_run: int = 250,
    page_size: int = 2000,
    api_max: int = 100_000,
    state_path: Path | None = None,
    port: int = 0,
) -> Iterator[RunningSalesforce]:
    """Start a seeded (or, with an existing `state_path`, reloaded) sandbox over HTTPS on 127.0.0.1."""
    if state_path is not None and state_path.is_file():
        org = Org.load(state_path, page_size=page_size)
    else:
        from leadflow.sandbox.salesforce_seed import seed_org

        org = seed_org(Org(api_max=api_max, page_size=page_size), leads=leads, seed=seed, stamp_run=stamp_run)
    cert, key = self_signed_certificate(folder)
    server = BackgroundServer(create_app(org), port=port, certfile=cert, keyfile=key)
    with server:
        running = RunningSalesforce(server.url, cert, org.client_id, org.client_secret, org)
        try:
            yield running
        finally:
            running.close_sessions()
            if state_path is not None:
                org.save(state_path)
