"""Metadata routes of the Salesforce sandbox: sObject describe, describeGlobal, the Tooling API's CustomField (create,
retrieve, query) and the OAuth identity of the API user. Registered on the app by `create_app`.

- REST API Developer Guide, "sObject Describe" (GET /services/data/vXX.X/sobjects/{sObject}/describe/) and
  "Describe Global" (GET /services/data/vXX.X/sobjects/):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm and
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_describeGlobal.htm
- Tooling API Developer Guide, "CustomField" (REST POST /tooling/sobjects/CustomField with FullName + Metadata) and
  "query" (GET /tooling/query/?q=): https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/
  tooling_api_objects_customfield.htm
- Salesforce Help, "OpenID Connect UserInfo Endpoint" (GET /services/oauth2/userinfo) and "Identity URLs":
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_using_userinfo_endpoint.htm
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from leadflow.sandbox.salesforce_org import ORG_ID, Org
from leadflow.sandbox.salesforce_schema import NOT_CREATEABLE, PREFIX, STANDARD, MetadataError
from leadflow.sandbox.salesforce_soql import SoqlError, _matches, _sorted, parse_soql

TOOLING_SCHEMA: Final[dict[str, dict[str, str]]] = {"CustomField": {
    "Id": "id", "DeveloperName": "string", "TableEnumOrId": "string", "FullName": "string",
    "NamespacePrefix": "string", "CreatedDate": "datetime", "LastModifiedDate": "datetime"}}
"""The Tooling API CustomField columns the sandbox can query (Tooling API "CustomField": DeveloperName has no
`__c`; TableEnumOrId is the object's name for standard objects)."""
LABELS: Final = {"Lead": ("Lead", "Leads"), "Contact": ("Contact", "Contacts"), "Account": ("Account", "Accounts"),
                 "User": ("User", "Users"), "Group": ("Group", "Groups"), "QueueSobject": ("Queue Sobject",
                                                                                           "Queue Sobjects"),
                 "LeadHistory": ("Lead History", "Lead History"), "PermissionSet": ("Permission Set",
                                                                                    "Permission Sets"),
                 "FieldPermissions": ("Field Permissions", "Field Permissions"),
                 "PermissionSetAssignment": ("Permission Set Assignment", "Permission Set Assignments")}


def _err(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def _object_summary(obj: str, data: str) -> dict[str, Any]:
    label, plural = LABELS.get(obj, (obj, obj))
    createable = obj not in NOT_CREATEABLE
    return {"name": obj, "label": label, "labelPlural": plural, "custom": False, "keyPrefix": PREFIX.get(obj),
            "createable": createable, "updateable": createable, "deletable": createable, "queryable": True,
            "retrieveable": True, "searchable": obj in ("Lead", "Contact", "Account", "User"),
            "urls": {"sobject": f"{data}/sobjects/{obj}", "describe": f"{data}/sobjects/{obj}/describe",
                     "rowTemplate": f"{data}/sobjects/{obj}/{{ID}}"}}


def describe_object(org: Org, obj: str, data: str) -> dict[str, Any]:
    """DescribeSObjectResult: only the fields the integration user can see (field-level security), in the org's
    order; a read-only field reports createable/updateable false."""
    fields = [meta.describe() for meta in org.visible()[obj].values()]
    return _object_summary(obj, data) | {"fields": fields, "childRelationships": [], "recordTypeInfos": []}


def register_metadata_routes(app: FastAPI, org: Org, data: str) -> None:
    """Add describe, describeGlobal, Tooling CustomField and identity routes for `org` under `data`
    (/services/data/vXX.X). Token checks and API counting for /services/data come from the app's middleware."""

    def known(obj: str) -> str | None:
        return next((o for o in STANDARD if o.lower() == obj.lower()), None)

    # -- describe
    async def describe_global() -> Response:
        # REST API "Describe Global": encoding, maxBatchSize and one summary per object.
        return JSONResponse({"encoding": "UTF-8", "maxBatchSize": 200,
                             "sobjects": [_object_summary(o, data) for o in STANDARD]})

    async def describe(obj: str) -> Response:
        name = known(obj)
        if name is None:
            # REST API "Status Codes and Error Responses": an unknown sObject type is 404 NOT_FOUND.
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        return JSONResponse(describe_object(org, name, data))

    for path in (f"{data}/sobjects", f"{data}/sobjects/"):
        app.add_api_route(path, describe_global, methods=["GET"])
    for path in (f"{data}/sobjects/{{obj}}/describe", f"{data}/sobjects/{{obj}}/describe/"):
        app.add_api_route(path, describe, methods=["GET"])

    # -- Tooling API: CustomField
    async def create_custom_field(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _err(400, "JSON_PARSER_ERROR", "Unexpected character in JSON body")
        if not isinstance(body, dict):
            return _err(400, "JSON_PARSER_ERROR", "Unexpected body: expected a JSON object")
        if not org.api_user_can_customize:
            # Creating metadata needs the "Customize Application" permission (Tooling API Developer Guide,
            # "Tooling API Objects": special access rules; Metadata API Developer Guide, "User Permissions for
            # Metadata API"). Without it the request is refused: REST API "Status Codes and Error Responses" (403:
            # "the request has been refused; verify that the logged-in user has appropriate permissions"), SOAP
            # API "StatusCode" INSUFFICIENT_ACCESS_OR_READONLY.
            return _err(403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on object id: you need "
                        "the Customize Application permission to create custom fields")
        try:
            record = org.create_custom_field(str(body.get("FullName") or ""), body.get("Metadata") or {})
        except MetadataError as exc:
            return JSONResponse([{"message": exc.message, "errorCode": exc.code, "fields": []}], status_code=400)
        # REST API "Create a Record": 201 {id, success, errors}.
        return JSONResponse({"id": record.id, "success": True, "errors": [], "warnings": [], "infos": []},
                            status_code=201)

    async def get_custom_field(record_id: str) -> Response:
        record = next((r for r in org.custom_fields.values() if r.id[:15] == record_id[:15]), None)
        if record is None:
            return _err(404, "NOT_FOUND", "The requested resource does not exist")
        row = record.row()
        return JSONResponse({"attributes": {"type": "CustomField", "url": f"{data}/tooling/sobjects/CustomField/"
                                            f"{record.id}"}} | row | {"Metadata": record.metadata})

    for path in (f"{data}/tooling/sobjects/CustomField", f"{data}/tooling/sobjects/CustomField/"):
        app.add_api_route(path, create_custom_field, methods=["POST"])
    app.add_api_route(f"{data}/tooling/sobjects/CustomField/{{record_id}}", get_custom_field, methods=["GET"])

    async def tooling_query(q: str = "") -> Response:
        try:
            query = parse_soql(q, TOOLING_SCHEMA)
        except SoqlError as exc:
            return _err(400, exc.code, exc.message)
        with org.lock:
            rows = [r.row() for r in org.custom_fields.values()]
        rows = [r for r in rows if _matches(r, query.where)]
        rows = _sorted(rows, query.order) if query.order else rows
        rows = rows[: query.limit] if query.limit is not None else rows
        records = [] if query.count else [
            {"attributes": {"type": "CustomField", "url": f"{data}/tooling/sobjects/CustomField/{r['Id']}"}}
            | {f: r.get(f) for f in query.fields} for r in rows]
        return JSONResponse({"size": len(rows), "totalSize": len(rows), "done": True, "queryLocator": None,
                             "entityTypeName": "CustomField", "records": records})

    for path in (f"{data}/tooling/query", f"{data}/tooling/query/"):
        app.add_api_route(path, tooling_query, methods=["GET"])

    # -- identity of the API user
    async def userinfo(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or auth[7:] not in org.tokens:
            # OpenID Connect UserInfo: a missing or expired token is 403 "Bad_OAuth_Token".
            return Response("Bad_OAuth_Token", status_code=403, media_type="text/plain")
        base = str(request.base_url).rstrip("/")
        user = org.objects["User"][org.integration_user_id]
        return JSONResponse({
            "sub": f"{base}/id/{ORG_ID}/{org.integration_user_id}", "user_id": org.integration_user_id,
            "organization_id": ORG_ID, "preferred_username": user.get("Username"), "email": user.get("Email"),
            "name": f"{user.get('FirstName') or ''} {user.get('LastName') or ''}".strip(), "active": True,
            "user_type": "STANDARD", "urls": {"rest": f"{base}{data.rsplit('/v', 1)[0]}/v{{version}}/"},
        })

    app.add_api_route("/services/oauth2/userinfo", userinfo, methods=["GET", "POST"])

    async def identity(request: Request, org_id: str, user_id: str) -> Response:
        if user_id != org.integration_user_id:
            return Response("Bad_Id", status_code=403, media_type="text/plain")
        return await userinfo(request)

    app.add_api_route("/id/{org_id}/{user_id}", identity, methods=["GET"])
