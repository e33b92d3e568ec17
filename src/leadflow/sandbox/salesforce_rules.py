"""The rules a stock Salesforce org enforces on writes and access, as pure functions over the sandbox's records.

Each rule cites the documentation it models. Errors are record-level dicts `{statusCode, message, fields}` (the
shape sObject Collections and Bulk API 2.0 report; single-record REST turns them into `{errorCode, message,
fields}`): REST API Developer Guide, "Status Codes and Error Responses":
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
"""

from __future__ import annotations

from typing import Any, Final

from leadflow.sandbox.salesforce_schema import FieldMeta, with_access

TEXT_LIMITED: Final = frozenset({"string", "textarea", "email", "phone", "url", "picklist"})


def rec_err(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields}


# ------------------------------------------------------------------------------------------------- field-level security


def field_access(objects: dict[str, dict[str, dict[str, Any]]], user_id: str,
                 profile: dict[str, bool]) -> dict[str, bool]:
    """"Object.Field" → edit? for every custom field the user can read: the profile's grants plus every permission
    set assigned to the user (FieldPermissions rows with PermissionsRead; PermissionsEdit adds edit).

    Object Reference, "FieldPermissions" (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/
    object_reference/sforce_api_objects_fieldpermissions.htm) and "PermissionSetAssignment". Field-level security is
    part of profiles and permission sets, not of the field: a field deployed through the Metadata or Tooling API
    comes with no field permissions, so nobody sees it until a profile or permission set grants it (Metadata API
    Developer Guide, "PermissionSet" fieldPermissions: https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/
    api_meta/meta_permissionset.htm, and "Profile"; as deployments meet it: https://github.com/sfdo-tooling/cumulusci/
    issues/70).
    """
    access = dict(profile)
    sets = {a.get("PermissionSetId") for a in objects.get("PermissionSetAssignment", {}).values()
            if a.get("AssigneeId") == user_id}
    for perm in objects.get("FieldPermissions", {}).values():
        if perm.get("ParentId") in sets and perm.get("PermissionsRead"):
            key = str(perm.get("Field"))
            access[key] = access.get(key, False) or bool(perm.get("PermissionsEdit"))
    return access


def visible_fields(fields: dict[str, dict[str, FieldMeta]], access: dict[str, bool]) -> dict[str, dict[str, FieldMeta]]:
    """The fields the API user sees: every standard field, and the custom fields `access` grants (read-only ones
    with createable/updateable false, as describe reports them)."""
    out: dict[str, dict[str, FieldMeta]] = {}
    for obj, metas in fields.items():
        out[obj] = {}
        for name, meta in metas.items():
            if not meta.custom:
                out[obj][name] = meta
            elif f"{obj}.{name}" in access:
                out[obj][name] = with_access(meta, edit=access[f"{obj}.{name}"])
    return out


def setup_field_permission_errors(values: dict[str, Any],
                                  fields: dict[str, dict[str, FieldMeta]]) -> list[dict[str, Any]]:
    """A FieldPermissions row must name an existing, permissionable field of its SobjectType as "Object.Field", and
    edit needs read. Object Reference "FieldPermissions" (https://developer.salesforce.com/docs/atlas.en-us.
    object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm): Field is "Object.FieldName";
    PermissionsEdit requires PermissionsRead. The sandbox models permissions on custom fields only."""
    field_name = str(values.get("Field") or "")
    obj, _, name = field_name.partition(".")
    if values.get("SobjectType") and obj != values.get("SobjectType"):
        return [rec_err("FIELD_INTEGRITY_EXCEPTION", f"Field Name: bad value for restricted picklist field: "
                        f"{field_name}", ["Field"])]
    meta = fields.get(obj, {}).get(name)
    if meta is None or not meta.custom:
        return [rec_err("FIELD_INTEGRITY_EXCEPTION", f"Field Name: bad value for restricted picklist field: "
                        f"{field_name}", ["Field"])]
    if values.get("PermissionsEdit") and not values.get("PermissionsRead"):
        return [rec_err("FIELD_INTEGRITY_EXCEPTION", "Permission Edit depends on permission(s): Read",
                        ["PermissionsEdit"])]
    return []


# ------------------------------------------------------------------------------------------------- write rules


def length_error(meta: FieldMeta, value: Any) -> dict[str, Any] | None:
    """STRING_TOO_LONG: text longer than the field's length is refused, never cut. The message names the field's
    label: "<Label>: data value too large: <value> (max length=<n>)". SOAP API Developer Guide (e.g. "convertLead()",
    String Values: "Beginning with version 15.0, if you specify a value for a field that contains a string, and the
    value is too big for the field, the call fails and an error is returned"; truncation needs the
    AllowFieldTruncationHeader): https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/
    sforce_api_calls_convertlead.htm; SOAP API "StatusCode" (STRING_TOO_LONG); Field Reference for each length."""
    if meta.type in TEXT_LIMITED and meta.length and isinstance(value, str) and len(value) > meta.length:
        label = meta.label or meta.name
        return rec_err("STRING_TOO_LONG", f"{label}: data value too large: {value} (max length={meta.length})",
                       [meta.name])
    return None


def range_error(meta: FieldMeta, value: Any) -> dict[str, Any] | None:
    """A number field holds at most precision - scale digits before the point: NUMBER_OUTSIDE_VALID_RANGE
    "<Label>: value outside of valid range on numeric field: <value>". SOAP API "StatusCode":
    NUMBER_OUTSIDE_VALID_RANGE; Metadata API "CustomField" (precision: total digits, scale: digits after the point)."""
    if meta.precision and meta.type in ("double", "currency", "percent") and isinstance(value, (int, float)):
        if abs(value) >= 10 ** (meta.precision - meta.scale):
            return rec_err("NUMBER_OUTSIDE_VALID_RANGE", f"{meta.label or meta.name}: value outside of valid range on "
                           f"numeric field: {value}", [meta.name])
    return None


def picklist_error(meta: FieldMeta, value: Any) -> dict[str, Any] | None:
    """A restricted picklist refuses values outside its set (standard or custom, created with valueSet.restricted).
    Salesforce Help, "Restricted Picklists": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"; Metadata API "ValueSet"
    (restricted) https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_picklist.htm."""
    if meta.type == "picklist" and meta.restricted and value not in meta.picklist:
        if value is None and meta.nillable:
            return None
        return rec_err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                       f"{meta.label or meta.name}: bad value for restricted picklist field: {value}", [meta.name])
    return None


def converted_error(obj: str, record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A converted lead cannot be updated through the API: CANNOT_UPDATE_CONVERTED_LEAD "cannot reference converted
    lead". SOAP API Developer Guide, "StatusCode" (CANNOT_UPDATE_CONVERTED_LEAD) and "convertLead()" (conversion is
    one-way: https://developer.salesforce.com/docs/atlas.en-us.api.meta/object_ref/sforce_api_calls_convertlead.htm);
    the message as orgs return it: https://gitlab.com/gitlab-org/customers-gitlab-com/-/issues/272"""
    if obj == "Lead" and record is not None and record.get("IsConverted"):
        return rec_err("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
    return None


def owner_error(objects: dict[str, dict[str, dict[str, Any]]], obj: str, owner_id: Any) -> dict[str, Any] | None:
    """OwnerId must be an active User, or a queue (Group of Type "Queue") that may own this object (a QueueSobject
    row for it). Object Reference "Lead" (OwnerId: the lead's owner, a user or a queue: https://developer.salesforce.
    com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_lead.htm)
    and "QueueSobject" (the object types a queue supports); SOAP API Developer Guide, "StatusCode"
    (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm):
    INACTIVE_OWNER_OR_USER for an inactive owner, INVALID_CROSS_REFERENCE_KEY for an id that names no record,
    FIELD_INTEGRITY_EXCEPTION ("Owner ID: id value of incorrect type") for an id that cannot own the record."""
    if owner_id is None:
        return rec_err("REQUIRED_FIELD_MISSING", "Required fields are missing: [OwnerId]", ["OwnerId"])
    owner = str(owner_id)
    if owner.startswith("005"):
        user = objects.get("User", {}).get(owner) or _by_15(objects.get("User", {}), owner)
        if user is None:
            return rec_err("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {owner}", ["OwnerId"])
        if not user.get("IsActive"):
            return rec_err("INACTIVE_OWNER_OR_USER",
                           f"operation performed with inactive user [{owner}] as owner of {obj.lower()}", [])
        return None
    if owner.startswith("00G"):
        group = objects.get("Group", {}).get(owner) or _by_15(objects.get("Group", {}), owner)
        if group is None:
            return rec_err("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {owner}", ["OwnerId"])
        takes = any(q.get("QueueId") == group["Id"] and q.get("SobjectType") == obj
                    for q in objects.get("QueueSobject", {}).values())
        if group.get("Type") != "Queue" or not takes:
            return rec_err("FIELD_INTEGRITY_EXCEPTION", f"Owner ID: id value of incorrect type: {owner}", ["OwnerId"])
        return None
    return rec_err("FIELD_INTEGRITY_EXCEPTION", f"Owner ID: id value of incorrect type: {owner}", ["OwnerId"])


ACTIVITIES: Final = frozenset({"Task", "Event"})
_WHO: Final = {"00Q": "Lead", "003": "Contact"}
"""Key prefixes a WhoId may carry (Object Reference "Task", "Event": WhoId "Represents the ID of a related Contact
or Lead"); a WhatId may name an Account (the only "what" object the sandbox holds)."""


def activity_errors(objects: dict[str, dict[str, dict[str, Any]]], obj: str, clean: dict[str, Any], *,
                    create: bool) -> list[dict[str, Any]]:
    """A Task's or Event's WhoId must name an existing Lead or Contact and its WhatId an existing Account:
    INVALID_CROSS_REFERENCE_KEY for an id that names no record, FIELD_INTEGRITY_EXCEPTION ("… id value of incorrect
    type") for an id of another object (SOAP API Developer Guide, "StatusCode"). A new Event that is not all-day
    needs its time (ActivityDateTime or StartDateTime) and its length (DurationInMinutes or EndDateTime): Object
    Reference "Event" (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
    sforce_api_objects_event.htm), REQUIRED_FIELD_MISSING otherwise."""
    errors: list[dict[str, Any]] = []
    for name, label, kinds in (("WhoId", "Name ID", _WHO), ("WhatId", "Related To ID", {"001": "Account"})):
        value = clean.get(name)
        if value is None:
            continue
        target = kinds.get(str(value)[:3])
        if target is None:
            errors.append(rec_err("FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}", [name]))
        elif objects.get(target, {}).get(str(value)) is None and _by_15(objects.get(target, {}), str(value)) is None:
            errors.append(rec_err("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [name]))
    if obj == "Event" and create and not clean.get("IsAllDayEvent"):
        missing = [f for f, alt in (("ActivityDateTime", "StartDateTime"), ("DurationInMinutes", "EndDateTime"))
                   if clean.get(f) is None and clean.get(alt) is None]
        if missing:
            errors.append(rec_err("REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing))
    return errors


def _by_15(records: dict[str, dict[str, Any]], record_id: str) -> dict[str, Any] | None:
    """Salesforce accepts the 15-character form of an id wherever the 18-character one goes."""
    if len(record_id) != 15:
        return None
    return next((r for i, r in records.items() if i[:15] == record_id), None)


# ------------------------------------------------------------------------------------------------- field history


TRACKED: Final[dict[str, dict[str, str]]] = {"Lead": {"Status": "Status", "OwnerId": "Owner"}}
"""Tracked fields and the name history rows give them. Object Reference "LeadHistory": Field is the field's name,
"Owner" for OwnerId (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
sforce_api_objects_leadhistory.htm); Salesforce Help, "Field History Tracking"."""


def history_rows(obj: str, before: dict[str, Any], after: dict[str, Any], now: str) -> list[dict[str, Any]]:
    """One history row (without Id) per tracked field an update changed."""
    out: list[dict[str, Any]] = []
    for name, label in TRACKED.get(obj, {}).items():
        if name in after and before.get(name) != after.get(name):
            out.append({"LeadId": before["Id"], "Field": label, "OldValue": before.get(name),
                        "NewValue": after.get(name), "CreatedDate": now, "IsDeleted": False})
    return out


def user_name(record: dict[str, Any]) -> dict[str, Any]:
    """A User with its read-only Name (FirstName LastName) filled in when missing (Object Reference "User")."""
    if record.get("Name"):
        return record
    name = " ".join(str(p) for p in (record.get("FirstName"), record.get("LastName")) if p)
    return record | {"Name": name or None}


def read_only(meta: FieldMeta, *, create: bool) -> bool:
    return not (meta.createable if create else meta.updateable)


