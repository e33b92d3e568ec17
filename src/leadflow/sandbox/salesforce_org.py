"""The state of one sandbox Salesforce org: records, field metadata and field-level security, the write rules every
write path applies, queries, and persistence. Served over HTTP by `leadflow.sandbox.salesforce.create_app`."""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from leadflow.sandbox.faults import FaultPlan
from leadflow.sandbox.salesforce_index import RecordTable, candidates, tables
from leadflow.sandbox.salesforce_recycle import RecycleBin, empty_bin
from leadflow.sandbox.salesforce_rules import (
    ACTIVITIES,
    activity_errors,
    converted_error,
    field_access,
    history_rows,
    length_error,
    owner_error,
    picklist_error,
    range_error,
    read_only,
    rec_err,
    setup_field_permission_errors,
    user_name,
    visible_fields,
)
from leadflow.sandbox.salesforce_schema import (
    LEADFLOW_LEAD_FIELDS,
    NOT_CREATEABLE,
    NUMBER_TYPES,
    PREFIX,
    REQUIRED,
    SCHEMA,
    SETUP_OBJECTS,
    STANDARD,
    CustomFieldRecord,
    FieldMeta,
    MetadataError,
    field_from_metadata,
)
from leadflow.sandbox.salesforce_soql import (
    Soql,
    _matches,
    _sorted,
    parse_sf_datetime,
    parse_soql,
    sf_datetime,
    with_parents,
)

SEED_BASE: Final = datetime(2026, 10, 1, tzinfo=UTC)


def wall_clock() -> datetime:
    """The current UTC time: an org's default `clock`."""
    return datetime.now(UTC)


INTEGRATION_USER_ID: Final = "0055e0000000000AAA"
"""The API user every token acts as (a User record in every org; the token response's `id` URL ends with it)."""
ORG_ID: Final = "00D5e0000000001AAA"
DEFAULTS: Final[dict[str, dict[str, Any]]] = {"Lead": {"IsConverted": False, "HasOptedOutOfEmail": False},
                                              "User": {"IsActive": True}, "LeadHistory": {"IsDeleted": False},
                                              "FieldPermissions": {"PermissionsRead": False,
                                                                   "PermissionsEdit": False}}
"""Values a new record gets unless the request sets them."""


@dataclass
class Org(RecycleBin):
    """In-memory state of one org; every mutation goes through the lock (handlers and tests share it).

    `stock_org=True`: only standard fields, as a new org has; leadflow's `__c` fields appear once created (Tooling API
    CustomField) and become visible to the integration user once a permission set granting them is assigned.
    `stock_org=False` (the default): leadflow's custom fields exist and the integration user's profile can read and
    edit them, as if `leadflow setup salesforce` had run.

    Records live in `objects` (object → id → record, each table a `RecordTable` indexed on SystemModstamp); deleted
    accounts, contacts and leads sit in `recycle_bin` until purged (`delete`, `undelete`, `purge_recycle_bin`,
    `empty_recycle_bin`, `convert_lead`: see `salesforce_recycle`)."""

    api_max: int = 100_000
    api_used: int = 0
    page_size: int = 2000
    client_id: str = "leadflow-sandbox-client"
    client_secret: str = "sandbox-secret"
    username: str = "integration@leadflow.sandbox"
    password: str = "sandbox-password"
    stock_org: bool = False
    api_user_can_customize: bool = True
    """The integration user holds "Customize Application" (needed to create custom fields through the Tooling API)."""
    bulk_query_polls: int = 2
    """GETs of a Bulk API 2.0 query job's info before it reaches JobComplete (UploadComplete → InProgress → done)."""
    my_domain: str = "127.0.0.1"
    """The org's My Domain host: the only host whose token endpoint grants client_credentials."""
    integration_user_id: str = INTEGRATION_USER_ID
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {o: RecordTable() for o in STANDARD})
    recycle_bin: dict[str, RecordTable] = field(default_factory=empty_bin, repr=False)
    """Deleted records in the Recycle Bin (IsDeleted true), per object, until purged."""
    counters: dict[str, int] = field(default_factory=dict)
    custom_fields: dict[str, CustomFieldRecord] = field(default_factory=dict, repr=False)
    """Custom fields created in the org, by "Object.Name__c" (the Tooling API's CustomField rows)."""
    profile_access: dict[str, bool] = field(default_factory=dict, repr=False)
    """"Object.Name__c" → edit? granted by the integration user's profile (leadflow's fields in a non-stock org)."""
    tokens: set[str] = field(default_factory=set, repr=False)
    cursors: dict[str, tuple[str, list[dict[str, Any]], list[str]]] = field(default_factory=dict, repr=False)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    requests_seen: deque[str] = field(default_factory=lambda: deque(maxlen=10_000), repr=False)
    field_writes: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list, repr=False)
    """(object, id, fields set) for every update applied since start (not persisted)."""
    faults: FaultPlan = field(default_factory=FaultPlan, repr=False)
    clock: Callable[[], datetime] = field(default=wall_clock, repr=False)
    """The org's "now": what record writes stamp (CreatedDate, LastModifiedDate, SystemModstamp, field history).
    The wall clock; a demo or a test sets another to replay hours of user activity without waiting (not persisted)."""
    outbound: Any = field(default=None, repr=False)
    """(object, record) → None, called on every create and update when outbound messages push somewhere
    (`leadflow.sandbox.push.attach_salesforce`); None: nothing is pushed (not persisted)."""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _visible: tuple[int, dict[str, dict[str, FieldMeta]]] | None = field(default=None, repr=False)
    _version: int = field(default=0, repr=False)
    _metas: dict[str, FieldMeta] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for obj in STANDARD:
            self.objects.setdefault(obj, RecordTable())
        self.objects = tables(self.objects)
        self.recycle_bin = tables(empty_bin() | self.recycle_bin)
        stamp = sf_datetime(SEED_BASE - timedelta(days=365))
        self.objects["User"].setdefault(self.integration_user_id, {
            name: None for name in SCHEMA["User"]} | {
            "Id": self.integration_user_id, "Username": self.username, "Email": self.username,
            "FirstName": "Integration", "LastName": "User", "Name": "Integration User", "IsActive": True,
            "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp})
        if not self.stock_org and not self.custom_fields:
            for name, metadata in LEADFLOW_LEAD_FIELDS.items():
                self.create_custom_field(f"Lead.{name}", {"label": name[:-3].replace("_", " ")} | metadata)
                self.profile_access[f"Lead.{name}"] = True

    def fill_defaults(self) -> Org:
        """Give records written straight into `objects` (seeds, old state) what the org would: a checkbox is never
        null (its default), and users have their Name."""
        with self.lock:
            for obj in STANDARD:
                checkboxes = {n: m.default == "true" for n, m in self.all_fields(obj).items() if m.type == "boolean"}
                for table in (self.objects[obj], self.recycle_bin.get(obj, {})):
                    for record in table.values():
                        for name, default in checkboxes.items():
                            if record.get(name) is None:
                                record[name] = default
                if obj == "User":
                    users = self.objects[obj]
                    for record_id, record in users.items():
                        users[record_id] = user_name(record)
        return self

    # -- ids, tokens, limits
    def new_id(self, obj: str) -> str:
        """A fresh 18-character id with the object's key prefix (never one a seed already used)."""
        with self.lock:
            taken = self.objects.get(obj, {})
            while True:
                n = self.counters.get(obj, 0) + 1
                self.counters[obj] = n
                record_id = f"{PREFIX[obj]}5e{n:010d}AAA"
                if record_id not in taken:
                    return record_id

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

    # -- metadata and field-level security
    def all_fields(self, obj: str) -> dict[str, FieldMeta]:
        """Every field of `obj` in this org (standard + custom fields created), whoever may see them."""
        custom = {r.name: self._custom_meta(r) for r in self.custom_fields.values() if r.obj == obj}
        return {m.name: m for m in STANDARD[obj]} | custom

    def _custom_meta(self, record: CustomFieldRecord) -> FieldMeta:
        meta = self._metas.get(record.id)
        if meta is None:
            meta = self._metas[record.id] = field_from_metadata(f"{record.obj}.{record.name}", record.metadata)[1]
        return meta

    def visible(self) -> dict[str, dict[str, FieldMeta]]:
        """Object → the fields the integration user sees (field-level security applied), cached per change."""
        with self.lock:
            if self._visible is not None and self._visible[0] == self._version:
                return self._visible[1]
            access = field_access(self.objects, self.integration_user_id, self.profile_access)
            out = visible_fields({obj: self.all_fields(obj) for obj in STANDARD}, access)
            self._visible = (self._version, out)
            return out

    def schema(self) -> dict[str, dict[str, str]]:
        """Object → visible field → type code (what SOQL and writes are checked against)."""
        return {obj: {n: m.code for n, m in metas.items()} for obj, metas in self.visible().items()}

    def touch(self) -> None:
        """Field metadata or permissions changed: recompute what the integration user sees."""
        with self.lock:
            self._version += 1

    def create_custom_field(self, full_name: str, metadata: dict[str, Any]) -> CustomFieldRecord:
        """Tooling API CustomField create (raises MetadataError like the org). No field permissions come with it."""
        obj, meta = field_from_metadata(full_name, metadata)
        if obj not in STANDARD:
            raise MetadataError("INVALID_TYPE", f"sObject type '{obj}' is not supported.")
        with self.lock:
            key = f"{obj}.{meta.name}"
            if meta.name.lower() in {n.lower() for n in self.all_fields(obj)}:
                # A second field with the same developer name on the object is refused: SOAP API Developer Guide,
                # "StatusCode" DUPLICATE_DEVELOPER_NAME ("You cannot create a custom object or custom field with a
                # duplicate developer name"); message as the Tooling API words it for a field.
                raise MetadataError("DUPLICATE_DEVELOPER_NAME",
                                    f"There is already a field named {meta.name[:-3]} on {obj}.")
            record = CustomFieldRecord(self.new_id("CustomField"), obj, meta.name, dict(metadata),
                                       sf_datetime(datetime.now(UTC)))
            self.custom_fields[key] = record
            # Existing records read a new checkbox as its default (false unless set), other fields as null.
            for table in (self.objects[obj], self.recycle_bin.get(obj, {})):
                for existing in table.values():
                    if existing.get(meta.name) is None:
                        existing[meta.name] = _initial(meta)
            self.touch()
        return record

    def grant_fields(self, fields: list[str], *, edit: bool = True, name: str = "Leadflow_Integration",
                     assign: bool = True) -> str:
        """Test helper: a permission set granting read (and edit) on "Object.Field" `fields`, assigned to the
        integration user (as `leadflow setup` does over REST). Returns the permission set id."""
        with self.lock:
            existing = next((i for i, r in self.objects["PermissionSet"].items() if r.get("Name") == name), None)
            parent = existing or self.put("PermissionSet", {"Name": name, "Label": name.replace("_", " ")})
            for full in fields:
                self.put("FieldPermissions", {"ParentId": parent, "SobjectType": full.partition(".")[0],
                                              "Field": full, "PermissionsRead": True, "PermissionsEdit": edit})
            assigned = any(a.get("PermissionSetId") == parent and a.get("AssigneeId") == self.integration_user_id
                           for a in self.objects["PermissionSetAssignment"].values())
            if assign and not assigned:
                self.put("PermissionSetAssignment", {"PermissionSetId": parent,
                                                     "AssigneeId": self.integration_user_id})
        return parent

    def install_leadflow_fields(self, *, grant: bool = True, edit: bool = True) -> list[str]:
        """Test helper: what `leadflow setup salesforce` does to a stock org, without HTTP: create every `__c` Lead
        field of the mapping (Tooling API CustomField; existing ones are kept) and, with `grant`, a permission set
        giving the integration user read (and `edit`) on them. Returns the "Lead.Name__c" fields."""
        names = [f"Lead.{name}" for name in LEADFLOW_LEAD_FIELDS]
        with self.lock:
            for full, name in zip(names, LEADFLOW_LEAD_FIELDS, strict=True):
                if full not in self.custom_fields:
                    self.create_custom_field(full, LEADFLOW_LEAD_FIELDS[name])
            if grant:
                self.grant_fields(names, edit=edit)
        return names

    # -- records
    def get(self, obj: str, record_id: str) -> dict[str, Any] | None:
        return self.objects[obj].get(record_id)

    def put(self, obj: str, values: dict[str, Any], record_id: str | None = None, *,
            now: datetime | None = None) -> str:
        """Create or update (copy-on-write, so open query cursors keep their snapshot and the SystemModstamp index
        stays right); bumps the stamps to `now` (default: the org's `clock`); appends field history for tracked fields
        an update changes."""
        now_text = sf_datetime(now or self.clock())
        names = self.all_fields(obj)
        with self.lock:
            if record_id is None:
                record_id = self.new_id(obj)
                record = {n: _initial(m) for n, m in names.items()} | DEFAULTS.get(obj, {}) | {"Id": record_id}
                if "CreatedDate" in names:
                    record["CreatedDate"] = now_text
                before = None
            else:
                before = self.objects[obj][record_id]
                record = dict(before)
                # Like field history tracking: which fields each update set, so tests can count writes.
                self.field_writes.append((obj, record_id, tuple(sorted(values))))
            record.update(values)
            for stamp in ("LastModifiedDate", "SystemModstamp"):
                if stamp in names:
                    record[stamp] = now_text
            if obj == "User":
                record = user_name(record | {"Name": None})
            if obj == "Task":  # Object Reference "Task": IsClosed follows Status (a closed status: Completed)
                record["IsClosed"] = record.get("Status") == "Completed"
            self.objects[obj][record_id] = record
            if before is not None:
                for row in history_rows(obj, before, record, now_text):
                    history_id = self.new_id("LeadHistory")
                    self.objects["LeadHistory"][history_id] = {"Id": history_id} | row
            if obj in SETUP_OBJECTS:
                self.touch()
            if self.outbound is not None:
                self.outbound(obj, record)
        return record_id

    def validate(self, obj: str, values: dict[str, Any], *, create: bool,
                 record_id: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Coerce `values` against the fields the integration user sees; returns (clean values, Salesforce-shaped
        errors). `record_id`: the record an update targets (converted leads refuse every update)."""
        errors: list[dict[str, Any]] = []
        clean: dict[str, Any] = {}
        metas = self.visible()[obj]
        if obj in NOT_CREATEABLE:
            # Object Reference "LeadHistory": supported calls are query() and retrieve() only.
            verb = "inserted" if create else "updated"
            return clean, [_rec_err("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be {verb}: {obj}", [])]
        if obj in SETUP_OBJECTS and not self.api_user_can_customize:
            # Permission sets, field permissions and assignments need "Manage Profiles and Permission Sets" and
            # "Assign Permission Sets" (Object Reference "PermissionSet", "PermissionSetAssignment": special access
            # rules); the sandbox grants them with Customize Application. SOAP API "StatusCode":
            # INSUFFICIENT_ACCESS_OR_READONLY.
            return clean, [_rec_err("INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id",
                                    [])]
        if not create and record_id is not None:
            refused = converted_error(obj, self.objects[obj].get(record_id))
            if refused is not None:
                return clean, [refused]
        for raw_name, value in values.items():
            name = next((k for k in metas if k.lower() == raw_name.lower()), None)
            if name is None:
                errors.append(_rec_err("INVALID_FIELD", f"No such column '{raw_name}' on sobject of type {obj}", []))
                continue
            meta = metas[name]
            if read_only(meta, create=create):
                errors.append(_rec_err("INVALID_FIELD_FOR_INSERT_UPDATE",
                                       f"Unable to create/update fields: {name}. Please check the security settings "
                                       "of this field and verify that it is read/write for your profile or "
                                       "permission set.", [name]))
                continue
            ftype = meta.code
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
                problem = range_error(meta, number)
                if problem is not None:
                    errors.append(problem)
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
            problem = picklist_error(meta, value) or length_error(meta, value)
            if problem is not None:
                errors.append(problem)
                continue
            clean[name] = value
        if "Email" in clean and clean["Email"] and "@" not in clean["Email"]:
            errors.append(_rec_err("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Email must contain '@'", ["Email"]))
        if "OwnerId" in clean or (create and "OwnerId" in metas and obj in ("Lead", "Contact", "Account")):
            # A new record without OwnerId is owned by the user who creates it (Object Reference "Lead": OwnerId).
            owner = clean.get("OwnerId", self.integration_user_id)
            problem = owner_error(self.objects, obj, owner)
            if problem is not None:
                errors.append(problem)
            elif create:
                clean["OwnerId"] = owner
        if obj in ACTIVITIES:
            errors.extend(activity_errors(self.objects, obj, clean, create=create))
        if obj == "FieldPermissions" and create:
            errors.extend(setup_field_permission_errors(clean, {o: self.all_fields(o) for o in STANDARD}))
        if create:
            missing = [f for f in REQUIRED.get(obj, ()) if not clean.get(f)]
            if missing:
                errors.append(_rec_err("REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing))
        return clean, errors

    # -- queries
    def run_query(self, soql: str, *, include_deleted: bool = False) -> tuple[Soql, list[dict[str, Any]]]:
        """Parse and run `soql` against the records the integration user sees: live ones, and with `include_deleted`
        (QueryAll) those in the Recycle Bin too, after purging what has sat there past 15 days. A window on
        SystemModstamp is read through the index (`salesforce_index`): same rows, without a scan of the object."""
        query = parse_soql(soql, self.schema())
        if include_deleted:
            self.purge_recycle_bin()
        with self.lock:
            found = [self.objects[query.obj]]
            if include_deleted and query.obj in self.recycle_bin:
                found.append(self.recycle_bin[query.obj])
            records = candidates(found, query.where, query.order, query.count)
            if query.obj == "User":
                records = [user_name(r) for r in records]
            rows = [r for r in records if _matches(r, query.where)] if query.where else records
            rows = with_parents(query.obj, query.fields, rows, self.objects)
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
                     "counters": self.counters, "objects": self.objects, "stock_org": self.stock_org,
                     "api_user_can_customize": self.api_user_can_customize, "my_domain": self.my_domain,
                     "bulk_query_polls": self.bulk_query_polls, "integration_user_id": self.integration_user_id,
                     "profile_access": self.profile_access, "recycle_bin": self.recycle_bin,
                     "custom_fields": [{"id": r.id, "obj": r.obj, "name": r.name, "metadata": r.metadata,
                                        "created": r.created} for r in self.custom_fields.values()]}
            text = json.dumps(state)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, **settings: Any) -> Org:
        """An org saved by `save`; `settings` override constructor arguments (state saved before custom fields were
        modelled loads as a non-stock org)."""
        state = json.loads(path.read_text(encoding="utf-8"))
        stored = {k: state[k] for k in ("stock_org", "api_user_can_customize", "my_domain", "bulk_query_polls",
                                        "integration_user_id") if k in state}
        records = [CustomFieldRecord(**r) for r in state.get("custom_fields", [])]
        org = cls(**(stored | settings), custom_fields={f"{r.obj}.{r.name}": r for r in records},
                  profile_access=dict(state.get("profile_access", {})))
        if "custom_fields" not in state and not org.stock_org:  # state saved before fields were modelled
            org = cls(**(stored | settings))
        org.api_max, org.api_used = state["api_max"], state["api_used"]
        org.page_size = settings.get("page_size", state["page_size"])
        org.counters = state["counters"]
        users = org.objects["User"]
        org.objects = tables({o: state["objects"].get(o, {}) for o in STANDARD})
        org.recycle_bin = tables(empty_bin() | {o: state.get("recycle_bin", {}).get(o, {}) for o in org.recycle_bin})
        for user_id, user in users.items():  # the integration user, in state saved before it existed
            org.objects["User"].setdefault(user_id, user)
        for obj, defaults in DEFAULTS.items():  # state saved before a field existed
            for record in org.objects[obj].values():
                for name, value in defaults.items():
                    record.setdefault(name, value)
        org.touch()
        org.purge_recycle_bin()  # a saved bin keeps counting its 15 days while the sandbox is stopped
        return org.fill_defaults()


_rec_err = rec_err


def _initial(meta: FieldMeta) -> Any:
    """A new record's value for a field the request leaves out: a checkbox's default, a picklist's default value
    (Lead Status: the org's default status), otherwise null (Object Reference: "Defaulted on create")."""
    if meta.type == "boolean":
        return meta.default == "true"
    return meta.default if meta.type == "picklist" else None


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
