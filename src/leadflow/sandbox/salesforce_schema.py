"""Field metadata of the Salesforce sandbox org: the stock objects' standard fields, leadflow's custom fields, and the
Tooling API `CustomField` metadata that creates more.

Sources (cited where each rule is modelled):
- Salesforce Field Reference, "Lead": https://developer.salesforce.com/docs/platform/field-reference/references/
  field-reference/salesforce-field-reference-lead.html (types and lengths of the standard Lead fields).
- Object Reference for the Salesforce Platform, "Lead": https://developer.salesforce.com/docs/atlas.en-us.
  object_reference.meta/object_reference/sforce_api_objects_lead.htm (field properties: Create, Update, Nillable).
- SOAP API Developer Guide, "DescribeSObjectResult" / "Field": https://developer.salesforce.com/docs/atlas.en-us.
  api.meta/api/sforce_api_calls_describesobjects_describesobjectresult.htm (the describe field shape).
- Tooling API Developer Guide, "CustomField": https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/
  api_tooling/tooling_api_objects_customfield.htm, and Metadata API Developer Guide, "CustomField":
  https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm (Metadata: type, length,
  precision, scale, valueSet, defaultValue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import yaml

# Describe field types (SOAP API Developer Guide, "Field Types":
# https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm).
TEXT_TYPES: Final = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "id", "reference"})
NUMBER_TYPES: Final = frozenset({"int", "double", "currency", "percent"})


@dataclass(frozen=True)
class FieldMeta:
    """One field as describe reports it (only the properties the sandbox models)."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    reference_to: tuple[str, ...] = ()
    precision: int = 0
    scale: int = 0
    digits: int = 0
    default: str | None = None

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def code(self) -> str:
        """The short type code the query/validation code works with: the describe type, `picklist!` if restricted."""
        return "picklist!" if self.type == "picklist" and self.restricted else self.type

    def describe(self) -> dict[str, Any]:
        """The describe shape (DescribeFieldResult), with the properties clients read most."""
        return {
            "name": self.name, "label": self.label or _label(self.name), "type": self.type, "length": self.length,
            "byteLength": self.length * 3, "custom": self.custom, "createable": self.createable,
            "updateable": self.updateable, "nillable": self.nillable, "filterable": self.type != "textarea",
            "sortable": self.type != "textarea", "defaultedOnCreate": self.type == "boolean",
            # A picklist's default is flagged on its value (PicklistEntry.defaultValue), not on the field.
            "defaultValue": None if self.default is None or self.type == "picklist" else (
                self.default == "true" if self.type == "boolean" else self.default),
            "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": v == self.default,
                                "validFor": None} for v in self.picklist],
            "restrictedPicklist": self.restricted, "referenceTo": list(self.reference_to),
            "relationshipName": (self.name[:-2] if self.name.endswith("Id") else None) if self.reference_to else None,
            "precision": self.precision, "scale": self.scale, "digits": self.digits, "soapType": _SOAP[self.type],
            "calculated": False, "autoNumber": False, "unique": False, "externalId": False,
            "idLookup": self.type == "id", "nameField": self.name == "Name", "permissionable": self.custom,
        }


_SOAP: Final = {
    "id": "tns:ID", "reference": "tns:ID", "string": "xsd:string", "textarea": "xsd:string", "email": "xsd:string",
    "phone": "xsd:string", "url": "xsd:string", "picklist": "xsd:string", "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime", "date": "xsd:date", "double": "xsd:double", "int": "xsd:int",
    "currency": "xsd:double", "percent": "xsd:double", "anyType": "xsd:anyType",
}


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    base = base[:-2] + " ID" if base.endswith("Id") and len(base) > 2 else base
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ")


def _f(name: str, ftype: str, length: int = 0, **kw: Any) -> FieldMeta:
    return FieldMeta(name=name, type=ftype, length=length, **kw)


def _ro(name: str, ftype: str, length: int = 0, **kw: Any) -> FieldMeta:
    return FieldMeta(name=name, type=ftype, length=length, createable=False, updateable=False, **kw)


_ID = _ro("Id", "id", 18, nillable=False, label="Record ID")
# Object Reference, "System Fields": IsDeleted "Indicates whether the record has been moved to the Recycle Bin (true)
# or not (false). Because this field does not appear in all objects, it is listed in the field table for each object"
# (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/system_fields.htm). Lead, Contact and Account list
# it (Salesforce Field Reference, "Lead", "Contact", "Account": https://developer.salesforce.com/docs/platform/
# field-reference/references/field-reference/salesforce-field-reference-lead.html and -contact/-account); User, Group
# and QueueSobject do not (Field Reference "User", "Group": CreatedById ... Type, "QueueSobject": CreatedById, Id,
# QueueId, SobjectType, SystemModstamp), so selecting it there is INVALID_FIELD like any unknown column.
_DELETED = _ro("IsDeleted", "boolean", nillable=False, label="Deleted", default="false")
_STAMPS = (_ro("CreatedDate", "datetime", nillable=False), _ro("LastModifiedDate", "datetime", nillable=False),
           _ro("SystemModstamp", "datetime", nillable=False))
LEAD_STATUSES: Final[tuple[str, ...]] = (
    "Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted", "Nurture",
)
# The stock LeadSource and Industry values of a new org (both unrestricted standard picklists).
LEAD_SOURCES: Final[tuple[str, ...]] = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
INDUSTRY_VALUES: Final[tuple[str, ...]] = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction", "Consulting",
    "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental", "Finance",
    "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery", "Manufacturing", "Media",
    "Not For Profit", "Other", "Recreation", "Retail", "Shipping", "Technology", "Telecommunications",
    "Transportation", "Utilities",
)
TASK_STATUSES: Final[tuple[str, ...]] = ("Not Started", "In Progress", "Completed", "Waiting on someone else",
                                         "Deferred")
"""The stock Task Status values of a new org (Object Reference "Task": Status)."""
OWNER: Final = _f("OwnerId", "reference", 18, nillable=False, reference_to=("Group", "User"), label="Owner ID")

# Standard fields per object. Lead: Field Reference "Lead" (lengths: FirstName 40, LastName 80, Company 255, Title 128,
# Email 80, Phone 40, City 40, State 80, PostalCode 20, Country 80, Website 255, picklists 40, NumberOfEmployees int
# (8 digits), AnnualRevenue currency (18, 0)). Object Reference "Lead": IsConverted and ConvertedDate can be set on
# create but never updated (they change only through convertLead); Id and the audit stamps are system fields.
STANDARD: Final[dict[str, tuple[FieldMeta, ...]]] = {
    "Lead": (
        _ID, _f("FirstName", "string", 40), _f("LastName", "string", 80, nillable=False),
        _f("Email", "email", 80), _f("Company", "string", 255, nillable=False), _f("Title", "string", 128),
        _f("Phone", "phone", 40), _f("Country", "string", 80), _f("State", "string", 80, label="State/Province"),
        _f("City", "string", 40), _f("PostalCode", "string", 20, label="Zip/Postal Code"),
        _f("Website", "url", 255), _f("LeadSource", "picklist", 40, picklist=LEAD_SOURCES),
        _f("Status", "picklist", 40, picklist=LEAD_STATUSES, restricted=True, nillable=False,
           default="Open - Not Contacted"),
        OWNER, _f("HasOptedOutOfEmail", "boolean", nillable=False, label="Email Opt Out", default="false"),
        _f("IsConverted", "boolean", updateable=False, nillable=False, label="Converted", default="false"),
        _f("ConvertedDate", "date", updateable=False),
        _f("NumberOfEmployees", "int", digits=8, label="Employees"),
        _f("AnnualRevenue", "currency", precision=18, scale=0),
        _f("Industry", "picklist", 40, picklist=INDUSTRY_VALUES), _DELETED, *_STAMPS,
    ),
    "Contact": (
        _ID, _f("FirstName", "string", 40), _f("LastName", "string", 80, nillable=False), _f("Email", "email", 80),
        _f("Title", "string", 128), _f("Phone", "phone", 40),
        _f("AccountId", "reference", 18, reference_to=("Account",), label="Account ID"), OWNER,
        _f("HasOptedOutOfEmail", "boolean", nillable=False, label="Email Opt Out", default="false"),
        _f("MailingCountry", "string", 80), _DELETED, *_STAMPS,
    ),
    "Account": (
        _ID, _f("Name", "string", 255, nillable=False, label="Account Name"), _f("Website", "url", 255),
        _f("BillingCountry", "string", 80), _f("Industry", "picklist", 40, picklist=INDUSTRY_VALUES), OWNER,
        _f("NumberOfEmployees", "int", digits=8, label="Employees"),
        _f("AnnualRevenue", "currency", precision=18, scale=0), _ro("LastActivityDate", "date"), _DELETED, *_STAMPS,
    ),
    # Object Reference "User": Name is the read-only full name (FirstName + LastName).
    "User": (
        _ID, _f("Username", "string", 80, nillable=False), _f("Email", "email", 128, nillable=False),
        _f("FirstName", "string", 40), _f("LastName", "string", 80, nillable=False),
        _ro("Name", "string", 121, label="Full Name"), _f("IsActive", "boolean", nillable=False, label="Active",
                                                         default="true"), *_STAMPS,
    ),
    # Object Reference "Group": Type "Queue" or "Regular" (among others).
    "Group": (
        _ID, _f("Name", "string", 40, nillable=False), _f("DeveloperName", "string", 80),
        _f("Type", "picklist", 40, picklist=("Regular", "Queue"), restricted=True, nillable=False),
        _f("Email", "email", 255), *_STAMPS,
    ),
    # Object Reference "QueueSobject": which objects a queue may own.
    "QueueSobject": (
        _ID, _f("QueueId", "reference", 18, nillable=False, reference_to=("Group",), updateable=False),
        _f("SobjectType", "picklist", 40, picklist=("Lead", "Case", "Contact", "Account"), restricted=True,
           nillable=False, updateable=False), _ro("SystemModstamp", "datetime", nillable=False),
    ),
    # Object Reference "LeadHistory": query() and retrieve() only; OldValue/NewValue are anyType.
    "LeadHistory": (
        _ID, _ro("LeadId", "reference", 18, reference_to=("Lead",), nillable=False),
        _ro("Field", "picklist", 255, picklist=("Status", "Owner", "ownerAssignment", "created")),
        _ro("OldValue", "anyType"), _ro("NewValue", "anyType"), _ro("IsDeleted", "boolean", nillable=False),
        _ro("CreatedDate", "datetime", nillable=False),
    ),
    # Object Reference "Task" (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
    # sforce_api_objects_task.htm) and "Event" (…/sforce_api_objects_event.htm): WhoId is polymorphic (a Lead or a
    # Contact), WhatId another object (Account, Opportunity, …); Task Status and Priority are required picklists that
    # default on create ("Not Started", "Normal"); IsClosed is read-only. Event: ActivityDateTime/StartDateTime and
    # DurationInMinutes/EndDateTime unless IsAllDayEvent (`activity_error` in salesforce_rules).
    "Task": (
        _ID, _f("WhoId", "reference", 18, reference_to=("Contact", "Lead"), label="Name ID"),
        _f("WhatId", "reference", 18, reference_to=("Account",), label="Related To ID"),
        _f("Subject", "string", 255), _f("ActivityDate", "date", label="Due Date Only"),
        _f("Status", "picklist", 40, picklist=TASK_STATUSES, restricted=True, nillable=False, default="Not Started"),
        _f("Priority", "picklist", 40, picklist=("High", "Normal", "Low"), restricted=True, nillable=False,
           default="Normal"),
        _f("TaskSubtype", "picklist", 40, picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
           restricted=True, updateable=False),
        _ro("IsClosed", "boolean", nillable=False, label="Closed", default="false"), OWNER,
        _f("Description", "textarea", 32000, label="Comments"), _DELETED, *_STAMPS,
    ),
    "Event": (
        _ID, _f("WhoId", "reference", 18, reference_to=("Contact", "Lead"), label="Name ID"),
        _f("WhatId", "reference", 18, reference_to=("Account",), label="Related To ID"),
        _f("Subject", "string", 255), _f("ActivityDate", "date", label="Due Date Only"),
        _f("ActivityDateTime", "datetime", label="Due Date Time"), _f("StartDateTime", "datetime", label="Start"),
        _f("EndDateTime", "datetime", label="End"), _f("DurationInMinutes", "int", digits=8, label="Duration"),
        _f("IsAllDayEvent", "boolean", nillable=False, label="All-Day Event", default="false"),
        _f("EventSubtype", "picklist", 40, picklist=("Event",), restricted=True, updateable=False), OWNER,
        _f("Description", "textarea", 32000), _DELETED, *_STAMPS,
    ),
    # Object Reference "PermissionSet", "FieldPermissions", "PermissionSetAssignment".
    "PermissionSet": (
        _ID, _f("Name", "string", 80, nillable=False, label="API Name"), _f("Label", "string", 80, nillable=False),
        _f("Description", "textarea", 255), *_STAMPS,
    ),
    "FieldPermissions": (
        _ID, _f("ParentId", "reference", 18, reference_to=("PermissionSet",), nillable=False, updateable=False),
        _f("SobjectType", "picklist", 40, nillable=False, updateable=False),
        _f("Field", "string", 255, nillable=False, updateable=False),
        _f("PermissionsRead", "boolean", nillable=False, default="false"),
        _f("PermissionsEdit", "boolean", nillable=False, default="false"), _ro("SystemModstamp", "datetime"),
    ),
    "PermissionSetAssignment": (
        _ID, _f("PermissionSetId", "reference", 18, reference_to=("PermissionSet",), nillable=False,
                updateable=False),
        _f("AssigneeId", "reference", 18, reference_to=("User",), nillable=False, updateable=False),
        _ro("SystemModstamp", "datetime"),
    ),
}
PREFIX: Final = {"Lead": "00Q", "Contact": "003", "Account": "001", "User": "005", "Group": "00G",
                 "QueueSobject": "03g", "LeadHistory": "017", "PermissionSet": "0PS", "FieldPermissions": "01k",
                 "PermissionSetAssignment": "0Pa", "CustomField": "00N", "Task": "00T", "Event": "00U"}
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "Lead": ("LastName", "Company"), "Contact": ("LastName",), "Account": ("Name",), "User": ("Username",),
    "Group": ("Name",), "QueueSobject": ("QueueId", "SobjectType"), "PermissionSet": ("Name", "Label"),
    "FieldPermissions": ("ParentId", "SobjectType", "Field"),
    "PermissionSetAssignment": ("PermissionSetId", "AssigneeId"),
}
NOT_CREATEABLE: Final = frozenset({"LeadHistory"})
"""Objects the API cannot insert or update (Object Reference "LeadHistory": supported calls query(), retrieve())."""
RECYCLABLE: Final = frozenset({"Lead", "Contact", "Account", "Task", "Event"})
"""Objects whose deleted records go to the Recycle Bin (IsDeleted true; QueryAll still returns them; undelete()
restores them): the objects with IsDeleted whose supported calls include delete() and undelete() (Object Reference,
"Lead", "Contact", "Account", "Task", "Event": https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
object_reference/sforce_api_objects_lead.htm). A User is never deleted (its supported calls have no delete()); the others here
(queues, setup objects) are removed outright."""
SETUP_OBJECTS: Final = frozenset({"PermissionSet", "FieldPermissions", "PermissionSetAssignment"})
"""Objects whose writes change what the integration user can see."""

GRADES: Final[tuple[str, ...]] = ("A", "B", "C", "D")
LIFECYCLE_STAGES: Final[tuple[str, ...]] = ("new", "mql", "sal", "sql", "recycled")

MAPPING_PATH: Final = Path(__file__).resolve().parents[1] / "reference" / "salesforce_mapping.yaml"


def mapping_custom_fields(path: Path = MAPPING_PATH) -> dict[str, dict[str, Any]]:
    """leadflow's custom Lead fields (the `__c` fields of the mapping) as Tooling API CustomField Metadata, by the
    convention the mapping documents for `leadflow setup salesforce`: string → Text(length, default 255; longer is a
    LongTextArea), boolean → Checkbox (default false), datetime → DateTime, number → Number(precision, scale; default
    18,0 for whole-number columns, 18,2 otherwise), picklist → Picklist of `values` (restricted unless `restricted:
    false`); label defaults to the API name without `__c`. What "setup had run" leaves in a non-stock org."""
    from leadflow.pipeline.schema import NUMERIC_COLUMNS

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fields = ((data.get("objects") or {}).get("Lead") or {}).get("fields") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, spec in fields.items():
        if not name.endswith("__c"):
            continue
        spec = spec or {}
        kind = spec.get("type", "string")
        meta: dict[str, Any] = {"label": spec.get("label") or name[:-3].replace("_", " ")}
        if kind == "boolean":
            meta |= {"type": "Checkbox", "defaultValue": "false"}
        elif kind == "datetime":
            meta |= {"type": "DateTime"}
        elif kind == "number":
            whole = NUMERIC_COLUMNS.get(spec.get("column", "")) == "Int64"
            meta |= {"type": "Number", "precision": spec.get("precision", 18),
                     "scale": spec.get("scale", 0 if whole else 2)}
        elif kind == "picklist":
            values = spec.get("values") or []
            definition = {"sorted": False, "value": [{"fullName": v, "label": v, "default": False} for v in values]}
            meta |= {"type": "Picklist",
                     "valueSet": {"restricted": spec.get("restricted", True), "valueSetDefinition": definition}}
        else:
            length = int(spec.get("length", 255))
            meta |= ({"type": "Text", "length": length} if length <= 255 else
                     {"type": "LongTextArea", "length": length, "visibleLines": 3})
        out[name] = meta
    return out


LEADFLOW_LEAD_FIELDS: Final[dict[str, dict[str, Any]]] = mapping_custom_fields()
"""The mapping's `__c` Lead fields as Tooling API Metadata (from src/leadflow/reference/salesforce_mapping.yaml)."""


# ------------------------------------------------------------------------------------------------- Tooling metadata


class MetadataError(ValueError):
    """Custom field metadata Salesforce refuses: (errorCode, message)."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


_DEVELOPER_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)")
# Metadata API Developer Guide, "CustomField" (FieldType): the types the sandbox can create, and the describe type
# each becomes (SOAP API "Field Types"; Number is a double in describe whatever its scale).
TOOLING_TYPES: Final = {
    "Text": "string", "TextArea": "textarea", "LongTextArea": "textarea", "Checkbox": "boolean",
    "DateTime": "datetime", "Date": "date", "Number": "double", "Currency": "currency", "Percent": "percent",
    "Email": "email", "Phone": "phone", "Url": "url", "Picklist": "picklist", "Lookup": "reference",
}


def field_from_metadata(full_name: str, metadata: dict[str, Any]) -> tuple[str, FieldMeta]:
    """(object, field) for a Tooling API CustomField create; raises MetadataError with the org's error.

    Rules from the Metadata API Developer Guide, "CustomField": a custom field's name ends in `__c` and is a
    letter then letters, digits and single underscores; `label` is required; Text needs a length of 1-255
    (LongTextArea 256-131,072 and visibleLines); Number/Currency/Percent need precision <= 18 and scale <= precision;
    Checkbox needs a defaultValue; Picklist needs a valueSet; Lookup needs referenceTo and relationshipName.
    The Tooling API answers a bad definition with a 400 and FIELD_INTEGRITY_EXCEPTION (Tooling API Developer Guide,
    "CustomField"; SOAP API Developer Guide, "StatusCode": FIELD_INTEGRITY_EXCEPTION); the messages follow the
    Metadata API's deploy problems ("Must specify 'length' for a CustomField of type Text")."""
    obj, _, name = (full_name or "").partition(".")
    if not obj or not name.endswith("__c") or not _DEVELOPER_NAME.fullmatch(name[:-3]) or len(name) - 3 > 40:
        raise MetadataError("INVALID_FIELD", f"Invalid field name: {full_name!r}. A custom field's name is "
                            "Object.Name__c; the name begins with a letter and uses letters, digits and single "
                            "underscores (at most 40 characters).")
    if not isinstance(metadata, dict):
        raise MetadataError("JSON_PARSER_ERROR", "Metadata must be an object")
    label = metadata.get("label")
    if not label:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "Label: You must enter a value")
    if len(str(label)) > 40:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "Label: data value too large: max length=40")
    kind = metadata.get("type")
    if kind not in TOOLING_TYPES:
        raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"Must specify a valid 'type' for a CustomField, got {kind!r}")
    ftype = TOOLING_TYPES[kind]
    length = precision = scale = 0
    picklist: tuple[str, ...] = ()
    restricted = False
    reference_to: tuple[str, ...] = ()
    default = metadata.get("defaultValue")
    if kind in ("Text", "LongTextArea"):
        if metadata.get("length") in (None, ""):
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"Must specify 'length' for a CustomField of type {kind}")
        length = int(metadata["length"])
        low, high = (1, 255) if kind == "Text" else (256, 131_072)
        if not low <= length <= high:
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", f"Length: must be between {low} and {high} for a "
                                f"CustomField of type {kind}")
        if kind == "LongTextArea" and not metadata.get("visibleLines"):
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION",
                                "Must specify 'visibleLines' for a CustomField of type LongTextArea")
    elif kind == "TextArea":
        length = 255
    elif kind in ("Email", "Phone"):
        length = 80 if kind == "Email" else 40
    elif kind == "Url":
        length = 255
    elif kind in ("Number", "Currency", "Percent"):
        precision, scale = int(metadata.get("precision") or 18), int(metadata.get("scale") or 0)
        if not 1 <= precision <= 18 or not 0 <= scale <= precision:
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "The sum of the length and decimal places must be an "
                                "integer less than or equal to 18")
    elif kind == "Checkbox":
        if str(default).lower() not in ("true", "false"):
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "Must specify 'defaultValue' for a CustomField of "
                                "type Checkbox")
        default = str(default).lower()
    elif kind == "Picklist":
        value_set = metadata.get("valueSet") or {}
        definition = value_set.get("valueSetDefinition") or {}
        values = [v.get("fullName") for v in definition.get("value") or [] if isinstance(v, dict)]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "Must specify 'valueSet' with at least one value for a "
                                "CustomField of type Picklist")
        picklist, restricted, length = tuple(values), bool(value_set.get("restricted")), 255
    elif kind == "Lookup":
        target = metadata.get("referenceTo")
        if not target or not metadata.get("relationshipName"):
            raise MetadataError("FIELD_INTEGRITY_EXCEPTION", "Must specify 'referenceTo' and 'relationshipName' for "
                                "a CustomField of type Lookup")
        reference_to, length = (str(target),), 18
    meta = FieldMeta(name=name, type=ftype, label=str(label), length=length, picklist=picklist,
                     restricted=restricted, reference_to=reference_to, precision=precision, scale=scale,
                     nillable=kind != "Checkbox", default=None if default is None else str(default))
    return obj, meta


def with_access(meta: FieldMeta, *, edit: bool) -> FieldMeta:
    """A custom field as a user with read (and maybe edit) access sees it in describe."""
    return meta if edit else replace(meta, createable=False, updateable=False)


@dataclass
class CustomFieldRecord:
    """A Tooling API CustomField row (Tooling API Developer Guide, "CustomField": DeveloperName has no `__c`)."""

    id: str
    obj: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def row(self) -> dict[str, Any]:
        return {"Id": self.id, "DeveloperName": self.name[:-3], "TableEnumOrId": self.obj,
                "FullName": f"{self.obj}.{self.name}", "NamespacePrefix": None, "CreatedDate": self.created,
                "LastModifiedDate": self.created}


# ------------------------------------------------------------------------------------------------- the full set

FULL_FIELDS: Final[dict[str, dict[str, FieldMeta]]] = {
    obj: {m.name: m for m in metas} | ({n: field_from_metadata(f"Lead.{n}", md)[1]
                                        for n, md in LEADFLOW_LEAD_FIELDS.items()} if obj == "Lead" else {})
    for obj, metas in STANDARD.items()
}
"""Every field of a non-stock org (standard fields plus leadflow's custom Lead fields), per object."""
# Field name → type code of a non-stock org: the describe type, "picklist!" for a restricted picklist (values in
# PICKLISTS); "int", "double" and "currency" are numbers (JSON numbers; text that is not a number is refused); "date"
# is YYYY-MM-DD. Each org derives its own from its field metadata (`Org.schema()`); this is the full set.
SCHEMA: Final[dict[str, dict[str, str]]] = {obj: {n: m.code for n, m in metas.items()}
                                            for obj, metas in FULL_FIELDS.items()}
PICKLISTS: Final[dict[tuple[str, str], tuple[str, ...]]] = {
    (obj, n): m.picklist for obj, metas in FULL_FIELDS.items() for n, m in metas.items() if m.restricted
}
