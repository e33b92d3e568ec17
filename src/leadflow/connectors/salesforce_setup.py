"""`leadflow setup salesforce`: create the custom fields the mapping needs, and a permission set that lets the
integration user read and write them; or, without the permission to do so, a Metadata API package an admin deploys.

Real API shapes, each cited where it is used:

- Tooling API, "CustomField" (REST POST /services/data/vXX.X/tooling/sobjects/CustomField/ with FullName
  `Lead.Grade__c` and a Metadata object; query by TableEnumOrId and DeveloperName, the name without `__c`):
  https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_customfield.htm
- Metadata API, "CustomField" (label, type, length, precision, scale, defaultValue, visibleLines, valueSet):
  https://developer.salesforce.com/docs/platform/api-metadata/references/meta-types/metadata-customfield.html
  and "Metadata Field Types" (Text, LongTextArea, Checkbox, DateTime, Number, Picklist):
  https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_field_types.htm
- Field-level security through "PermissionSet", "FieldPermissions" (ParentId, SobjectType, Field, PermissionsRead,
  PermissionsEdit; edit requires read) and "PermissionSetAssignment" (PermissionSetId, AssigneeId), ordinary
  sObjects over REST:
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
  https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_objects_permissionsetassignment.htm
- The integration user: OpenID Connect "UserInfo Endpoint" (GET /services/oauth2/userinfo → user_id), else the
  token response's identity URL, https://login.salesforce.com/id/<orgId>/<userId> ("Using Identity URLs"):
  https://developer.salesforce.com/docs/platform/mobile-sdk/guide/oauth-using-identity-urls.html
- The package an admin deploys, in Metadata API format: package.xml ("Constructing a Project Manifest",
  https://developer.salesforce.com/docs/atlas.en-us.daas.meta/daas/daas_package.htm; "Sample package.xml Manifest
  Files", https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/manifest_samples.htm),
  objects/Lead.object with the <fields>, and permissionsets/<Name>.permissionset ("PermissionSet":
  https://developer.salesforce.com/docs/platform/api-metadata/references/meta-types/metadata-permissionset.html);
  deployed with `sf project deploy start --metadata-dir DIR` ("project deploy start":
  https://developer.salesforce.com/docs/platform/salesforce-cli-reference/guide/cli_reference_project_deploy_start.html).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from leadflow.connectors.salesforce import FieldSpec, SalesforceConnector, SalesforceMapping
from leadflow.connectors.salesforce_fit import same_id
from leadflow.connectors.salesforce_org import query_records
from leadflow.pipeline.errors import LeadflowError

PERMISSION_SET: Final = "Leadflow_Integration"
PERMISSION_SET_LABEL: Final = "Leadflow Integration"
DEFAULT_PACKAGE_DIR: Final = Path(".leadflow/salesforce-package")
METADATA_NS: Final = "http://soap.sforce.com/2006/04/metadata"
TEXT_MAX: Final = 255
LONG_TEXT_LINES: Final = 3
log = logging.getLogger(__name__)


class SetupError(LeadflowError):
    """Setup could not finish (the message says what was done and what is left)."""

    exit_code = 1


class SetupNeedsAdmin(SetupError):
    """The integration user may not customize the org: an admin deploys the package written instead."""

    def __init__(self, message: str, package_dir: Path) -> None:
        self.package_dir = package_dir
        super().__init__(message)


# ------------------------------------------------------------------------------------------------- pure: what to create


def label_of(name: str) -> str:
    """`Account_Match_Method__c` → `Account Match Method` (labels are at most 40 characters)."""
    return name.removesuffix("__c").replace("_", " ").strip()[:40]


def field_metadata(name: str, spec: FieldSpec) -> dict[str, Any]:
    """The Tooling API `Metadata` (= Metadata API CustomField, without fullName) for one mapped custom field."""
    meta: dict[str, Any] = {"label": spec.label or label_of(name)}
    if spec.type == "boolean":
        meta |= {"type": "Checkbox", "defaultValue": "false"}  # a Checkbox needs its default
    elif spec.type == "datetime":
        meta |= {"type": "DateTime"}
    elif spec.type == "number":
        meta |= {"type": "Number", "precision": spec.precision, "scale": spec.scale}
    elif spec.type == "picklist":
        if not spec.values:
            raise SetupError(f"salesforce: picklist {name} has no `values` in the mapping: setup cannot create it")
        meta |= {"type": "Picklist", "valueSet": {"restricted": spec.restricted, "valueSetDefinition": {
            "sorted": False, "value": [{"fullName": v, "default": False, "label": v} for v in spec.values]}}}
    else:
        length = spec.length or TEXT_MAX
        if length <= TEXT_MAX:
            meta |= {"type": "Text", "length": length}
        else:  # Text holds at most 255 characters; longer text is a LongTextArea (which needs visibleLines)
            meta |= {"type": "LongTextArea", "length": length, "visibleLines": LONG_TEXT_LINES}
    return meta


@dataclass(frozen=True)
class WantedField:
    """A custom field the mapping needs, and the access the integration user needs on it."""

    sobject: str
    name: str
    metadata: dict[str, Any]
    editable: bool

    @property
    def full_name(self) -> str:
        return f"{self.sobject}.{self.name}"

    @property
    def developer_name(self) -> str:
        return self.name.removesuffix("__c")

    def describe(self) -> str:
        """`Text(255)`, `Number(5, 4)`, `Picklist(A, B, C; restricted)`: for tables."""
        meta = self.metadata
        kind = meta["type"]
        if kind in ("Text", "LongTextArea"):
            return f"{kind}({meta['length']})"
        if kind == "Number":
            return f"Number({meta['precision']}, {meta['scale']})"
        if kind == "Picklist":
            values = [v["fullName"] for v in meta["valueSet"]["valueSetDefinition"]["value"]]
            return f"Picklist({', '.join(values)}{'; restricted' if meta['valueSet']['restricted'] else ''})"
        return str(kind)


def wanted_fields(mapping: SalesforceMapping) -> list[WantedField]:
    """Every `__c` field of every mapped object, in mapping order. Read is always granted (edit requires it); edit
    for fields leadflow writes."""
    return [WantedField(sobject, name, field_metadata(name, spec), editable=spec.write)
            for sobject, objects in mapping.objects.items()
            for name, spec in objects.fields.items() if name.endswith("__c")]


@dataclass
class SetupPlan:
    """What setup would do: fields to create, field permissions to add or change, permission set and assignment."""

    fields: list[WantedField]
    missing: list[WantedField]
    grants: list[tuple[WantedField, str | None]]
    """(field, existing FieldPermissions id or None) whose access is missing or different."""
    permission_set_id: str | None
    assigned: bool
    user_id: str | None

    @property
    def nothing_to_do(self) -> bool:
        return not self.missing and not self.grants and self.permission_set_id is not None and self.assigned


def plan_setup(fields: list[WantedField], existing: set[str], permission_set_id: str | None,
               permissions: dict[str, tuple[str, bool, bool]], assigned: bool, user_id: str | None) -> SetupPlan:
    """`existing`: full names of custom fields already in the org; `permissions`: full name → (FieldPermissions id,
    read, edit) in our permission set."""
    missing = [f for f in fields if f.full_name not in existing]
    grants: list[tuple[WantedField, str | None]] = []
    for wanted in fields:
        have = permissions.get(wanted.full_name)
        if have is None:
            grants.append((wanted, None))
        elif not have[1] or have[2] != wanted.editable:
            grants.append((wanted, have[0]))
    return SetupPlan(fields, missing, grants, permission_set_id, assigned, user_id)


# ------------------------------------------------------------------------------------------------- pure: the package


def _xml(parent: ET.Element, tag: str, value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _xml(parent, tag, item)
        return
    node = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        # fullName first, then the rest alphabetically, as Metadata API retrieves write them
        for key in sorted(value, key=lambda k: (k != "fullName", k)):
            _xml(node, key, value[key])
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    else:
        node.text = str(value)


def _document(root_tag: str, children: list[tuple[str, Any]]) -> str:
    root = ET.Element(root_tag, xmlns=METADATA_NS)
    for tag, value in children:
        _xml(root, tag, value)
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def package_files(create: list[WantedField], grant: list[WantedField], api_version: str,
                  permission_set: str = PERMISSION_SET, label: str = PERMISSION_SET_LABEL) -> dict[str, str]:
    """Relative path → XML text of a Metadata API (mdapi-format) package: the `create` fields (objects/<Object>.object
    per object) and a permission set granting `grant`."""
    files: dict[str, str] = {}
    by_object: dict[str, list[WantedField]] = {}
    for wanted in create:
        by_object.setdefault(wanted.sobject, []).append(wanted)
    for sobject, wanted_list in by_object.items():
        files[f"objects/{sobject}.object"] = _document(
            "CustomObject", [("fields", {"fullName": w.name, **w.metadata}) for w in wanted_list])
    permissions = [{"editable": w.editable, "field": w.full_name, "readable": True} for w in grant]
    files[f"permissionsets/{permission_set}.permissionset"] = _document("PermissionSet", [
        ("description", "Lets the leadflow integration user read and write the fields leadflow keeps."),
        ("fieldPermissions", permissions), ("hasActivationRequired", False), ("label", label)])
    types: list[tuple[str, Any]] = []
    if create:
        types.append(("types", {"members": [w.full_name for w in create], "name": "CustomField"}))
    types.append(("types", {"members": [permission_set], "name": "PermissionSet"}))
    # <types>: members before name, as in the manifest samples
    root = ET.Element("Package", xmlns=METADATA_NS)
    for _, entry in types:
        node = ET.SubElement(root, "types")
        for member in entry["members"]:
            ET.SubElement(node, "members").text = member
        ET.SubElement(node, "name").text = entry["name"]
    ET.SubElement(root, "version").text = api_version
    ET.indent(root, space="    ")
    files["package.xml"] = '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
    return files


def deploy_instructions(package_dir: Path, permission_set: str = PERMISSION_SET) -> str:
    return (f"An admin deploys it with the Salesforce CLI:\n"
            f"  sf project deploy start --metadata-dir {package_dir} --target-org <admin alias>\n"
            f"  sf org assign permset --name {permission_set} --on-behalf-of <integration user> "
            f"--target-org <admin alias>\n"
            f"(or zip the folder and deploy it in Workbench: Migration > Deploy), then runs `leadflow doctor`.")


def write_package(package_dir: Path, files: dict[str, str]) -> list[Path]:
    written = []
    for relative, text in files.items():
        path = package_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    (package_dir / "README.txt").write_text(
        "Metadata API package written by `leadflow setup salesforce`.\n\n" + deploy_instructions(package_dir) + "\n",
        encoding="utf-8")
    return written


# ------------------------------------------------------------------------------------------------- the org


def _code(exc: Exception) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode") or content[0].get("statusCode") or "")
    if isinstance(content, dict):
        return str(content.get("errorCode") or "")
    return ""


def _refused_for_access(exc: Exception) -> bool:
    # A user without "Customize Application" (fields) or "Manage Profiles and Permission Sets" / "Assign Permission
    # Sets" (FLS) gets INSUFFICIENT_ACCESS* codes (REST "Status Codes and Error Responses":
    # https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
    return _code(exc).startswith("INSUFFICIENT_ACCESS") or _code(exc) in ("INSUFFICIENT_PRIVILEGES",
                                                                         "API_DISABLED_FOR_ORG")


def _soql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class OrgSetup:
    """The API calls setup makes, through a connector (its budget, retries and re-login)."""

    def __init__(self, connector: SalesforceConnector) -> None:
        self.connector = connector

    def _records(self, soql: str) -> list[dict[str, Any]]:
        return query_records(self.connector, soql)

    def existing_fields(self, sobjects: set[str]) -> set[str]:
        """Full names (`Lead.Grade__c`) of custom fields on `sobjects`, visible or not (Tooling API query)."""
        names: set[str] = set()
        for sobject in sorted(sobjects):
            soql = ("SELECT Id, DeveloperName, TableEnumOrId FROM CustomField "
                    f"WHERE TableEnumOrId = {_soql_text(sobject)}")
            result = self.connector._call(lambda sf, q=soql: sf.toolingexecute(f"query/?q={quote(q)}"))
            while True:
                names |= {f"{sobject}.{r['DeveloperName']}__c" for r in result.get("records", [])}
                if result.get("done", True) or not result.get("nextRecordsUrl"):
                    break
                locator = str(result["nextRecordsUrl"]).rsplit("/query/", 1)[-1]
                result = self.connector._call(lambda sf, loc=locator: sf.toolingexecute(f"query/{loc}"))
        return names

    def user_id(self) -> str:
        """The connecting (integration) user's id: OpenID Connect userinfo, else the token's identity URL."""
        try:
            info = self.connector._call(lambda sf: sf.oauth2("userinfo"))
            if isinstance(info, dict) and info.get("user_id"):
                return str(info["user_id"])
        except SalesforceResourceNotFound:
            pass
        creds = self.connector.credentials
        if creds.login_url and creds.client_id and creds.client_secret:
            form = {"grant_type": "client_credentials", "client_id": creds.client_id,
                    "client_secret": creds.client_secret.get_secret_value()}
            if creds.username and creds.password:
                form |= {"grant_type": "password", "username": creds.username,
                         "password": creds.password.get_secret_value()}
            reply = self.connector.session.post(f"{creds.login_url.rstrip('/')}/services/oauth2/token", data=form)
            identity = reply.json().get("id") if reply.status_code == 200 else None
            if identity:
                return str(identity).rstrip("/").rsplit("/", 1)[-1]
        raise SetupError("salesforce: cannot tell which user leadflow connects as (no /services/oauth2/userinfo and "
                         "no identity URL in the token response)")

    def permission_set_id(self, name: str) -> str | None:
        rows = self._records(f"SELECT Id FROM PermissionSet WHERE Name = {_soql_text(name)}")
        return str(rows[0]["Id"]) if rows else None

    def field_permissions(self, permission_set_id: str) -> dict[str, tuple[str, bool, bool]]:
        rows = self._records("SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
                             f"WHERE ParentId = {_soql_text(permission_set_id)}")
        return {str(r["Field"]): (str(r["Id"]), bool(r["PermissionsRead"]), bool(r["PermissionsEdit"]))
                for r in rows}

    def assigned(self, permission_set_id: str, user_id: str) -> bool:
        rows = self._records("SELECT Id, AssigneeId FROM PermissionSetAssignment "
                             f"WHERE PermissionSetId = {_soql_text(permission_set_id)}")
        return any(same_id(str(r["AssigneeId"]), user_id) for r in rows)

    def create_field(self, wanted: WantedField) -> bool:
        """Create one custom field; False when it already existed (DUPLICATE_DEVELOPER_NAME)."""
        body = {"FullName": wanted.full_name, "Metadata": wanted.metadata}
        try:
            self.connector._call(lambda sf: sf.toolingexecute("sobjects/CustomField/", method="POST", data=body))
        except SalesforceError as exc:
            if _code(exc) == "DUPLICATE_DEVELOPER_NAME":
                return False
            raise
        return True

    def create(self, sobject: str, values: dict[str, Any]) -> str:
        result = self.connector._call(lambda sf: getattr(sf, sobject).create(values))
        return str(result["id"])

    def update(self, sobject: str, record_id: str, values: dict[str, Any]) -> None:
        self.connector._call(lambda sf: getattr(sf, sobject).update(record_id, values))


# ------------------------------------------------------------------------------------------------- setup


@dataclass
class SetupResult:
    plan: SetupPlan
    dry_run: bool
    created: list[WantedField] = field(default_factory=list)
    granted: list[WantedField] = field(default_factory=list)
    permission_set_created: bool = False
    assigned_now: bool = False
    package_dir: Path | None = None

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(what, kind, access, action) per field, then the permission set and its assignment: for the table."""
        verb: Literal["would create", "created"] = "would create" if self.dry_run else "created"
        missing = {w.full_name for w in self.plan.missing}
        grants = {w.full_name for w, _ in self.plan.grants}
        rows = []
        for wanted in self.plan.fields:
            action = verb if wanted.full_name in missing else "exists"
            if wanted.full_name in grants:
                action += " + grant" if self.dry_run else " + granted"
            rows.append((wanted.full_name, wanted.describe(), "read/edit" if wanted.editable else "read",
                         action))
        ps = "exists" if self.plan.permission_set_id and not self.permission_set_created else verb
        rows.append((PERMISSION_SET, "PermissionSet", f"{len(self.plan.fields)} fields", ps))
        assign = "assigned" if self.plan.assigned and not self.assigned_now else (
            "would assign" if self.dry_run else "assigned now")
        rows.append((f"user {self.plan.user_id}", "PermissionSetAssignment", PERMISSION_SET, assign))
        return rows


def setup_salesforce(connector: SalesforceConnector, *, dry_run: bool = False,
                     package_dir: Path = DEFAULT_PACKAGE_DIR, permission_set: str = PERMISSION_SET) -> SetupResult:
    """Create what the connector's mapping needs in the org (idempotent); `dry_run` only reads. Raises SetupNeedsAdmin
    (after writing the package to `package_dir`) when the integration user may not customize the org."""
    org = OrgSetup(connector)
    fields = wanted_fields(connector.mapping)
    api_version = connector.credentials.api_version
    try:
        existing = org.existing_fields({f.sobject for f in fields})
    except SalesforceError as exc:
        if not _refused_for_access(exc):
            raise
        _give_up(fields, fields, package_dir, api_version, permission_set,
                 f"salesforce: the integration user may not read the org's field definitions ({_code(exc)})")
    user_id = org.user_id()
    ps_id = org.permission_set_id(permission_set)
    permissions = org.field_permissions(ps_id) if ps_id else {}
    assigned = bool(ps_id) and org.assigned(ps_id, user_id)
    plan = plan_setup(fields, existing, ps_id, permissions, assigned, user_id)
    result = SetupResult(plan=plan, dry_run=dry_run)
    if dry_run or plan.nothing_to_do:
        return result
    from leadflow.pipeline import progress

    progress.add_total(len(plan.missing), unit="fields")
    for wanted in plan.missing:
        try:
            org.create_field(wanted)
        except SalesforceError as exc:
            if not _refused_for_access(exc):
                raise
            done = f" ({len(result.created)} created first)" if result.created else ""
            _give_up(plan.missing[len(result.created):], fields, package_dir, api_version, permission_set,
                     f"salesforce: the org refused to create {wanted.full_name}: the integration user lacks "
                     f"\"Customize Application\" ({_code(exc)}){done}")
        log.info("salesforce: created %s", wanted.full_name)
        result.created.append(wanted)
        progress.step(wanted.full_name, unit="fields")
    try:
        if ps_id is None:
            ps_id = org.create("PermissionSet", {"Name": permission_set, "Label": PERMISSION_SET_LABEL})
            result.permission_set_created = True
        for wanted, existing_id in plan.grants:
            access = {"PermissionsRead": True, "PermissionsEdit": wanted.editable}
            if existing_id is None:
                org.create("FieldPermissions", {"ParentId": ps_id, "SobjectType": wanted.sobject,
                                                "Field": wanted.full_name, **access})
            else:
                org.update("FieldPermissions", existing_id, access)
            result.granted.append(wanted)
        if not assigned:
            org.create("PermissionSetAssignment", {"PermissionSetId": ps_id, "AssigneeId": user_id})
            result.assigned_now = True
    except SalesforceError as exc:
        if not _refused_for_access(exc):
            raise
        _give_up([], fields, package_dir, api_version, permission_set,
                 f"salesforce: fields are in place, but the org refused the permission set or its assignment "
                 f"({_code(exc)})")
    return result


def _give_up(create: list[WantedField], grant: list[WantedField], package_dir: Path, api_version: str,
             permission_set: str, reason: str) -> None:
    write_package(package_dir, package_files(create, grant, api_version, permission_set))
    raise SetupNeedsAdmin(f"{reason}.\nWrote a Metadata API package for an admin to {package_dir} "
                          f"({len(create)} fields, permission set {permission_set}).\n"
                          + deploy_instructions(package_dir, permission_set), package_dir)
