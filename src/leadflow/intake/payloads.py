"""Each source's request body read into inbox notifications (`leadflow.store.inbox.InboxNotification`): the record's
id and modification stamp, and what the notification carried. The processor fetches every record by id; a payload
is never trusted alone (a web lead's payload is the lead: there is no system to fetch it from).

A body that is not what the source sends raises `Refused` (400; 422 for the JSON a person configures — the Marketo
template, the web endpoint's canonical columns — naming the field). Salesforce's SOAP is parsed by `parse_xml`, the
stdlib's expat with every DTD, entity declaration and external entity refused (defusedxml is not installed).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from xml.parsers import expat

from leadflow.connectors.marketo_mapping import whole_number
from leadflow.intake.verify import Refused
from leadflow.pipeline.schema import DERIVED_COLUMNS, INPUT_COLUMNS
from leadflow.store.inbox import InboxNotification
from leadflow.store.inbox_tables import MAX_MODSTAMP, MAX_RECORD_ID

SOAP_ENV: Final[str] = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS: Final[str] = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS: Final[str] = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS: Final[str] = "http://www.w3.org/2001/XMLSchema-instance"
MAX_SALESFORCE_NOTIFICATIONS: Final[int] = 100
"""The WSDL: `<element name="Notification" maxOccurs="100" …/>`."""
SALESFORCE_OBJECTS: Final[frozenset[str]] = frozenset({"Lead", "Contact"})
HUBSPOT_CONTACT_TYPE_ID: Final[str] = "0-1"
_SALESFORCE_ID: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")

# The Outbound Messaging WSDL (sforce_api_om_outboundmessaging_wsdl.htm), the shape parsed here:
#   <element name="notifications"><complexType><sequence>
#     <element name="OrganizationId" type="ent:ID"/> <element name="ActionId" type="ent:ID"/>
#     <element name="SessionId" type="xsd:string" nillable="true"/>
#     <element name="EnterpriseUrl" type="xsd:string"/> <element name="PartnerUrl" type="xsd:string"/>
#     <element name="Notification" maxOccurs="100" type="tns:LeadNotification"/>
#   </sequence></complexType></element>
#   <complexType name="LeadNotification"><sequence>
#     <element name="Id" type="ent:ID"/> <element name="sObject" type="ens:Lead"/>
#   </sequence></complexType>
# and the acknowledgement: <element name="notificationsResponse"> … <element name="Ack" type="xsd:boolean"/>.
# SessionId is a live Salesforce session: it is never kept, logged or passed on.
ACK_XML: Final[bytes] = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    b"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


class _Forbidden(Exception):
    pass


def _clark(name: str) -> str:
    uri, _, local = name.rpartition(" ")
    return f"{{{uri}}}{local}" if uri else local


def parse_xml(body: bytes) -> ET.Element:
    """Parse XML into an ElementTree without DTDs or entities (billion laughs, XXE); `xsi:type` values are resolved
    to Clark notation (`{urn:sobject.enterprise.soap.sforce.com}Lead`)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise Refused(400, "XML with a DOCTYPE or ENTITY declaration is refused")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    scopes: list[dict[str, str]] = [{}]
    declared: dict[str, str] = {}

    def declare(prefix: str | None, uri: str) -> None:
        declared[prefix or ""] = uri

    def start(name: str, attrs: dict[str, str]) -> None:
        scope = scopes[-1] | declared if declared else scopes[-1]
        declared.clear()
        scopes.append(scope)
        attrib = {}
        for key, value in attrs.items():
            qkey = _clark(key)
            if qkey == f"{{{XSI_NS}}}type":
                prefix, _, local = value.strip().rpartition(":")
                uri = scope.get(prefix)
                value = f"{{{uri}}}{local}" if uri else value
            attrib[qkey] = value
        builder.start(_clark(name), attrib)

    def end(name: str) -> None:
        scopes.pop()
        builder.end(_clark(name))

    def refuse(*_: Any) -> None:
        raise _Forbidden

    parser.StartNamespaceDeclHandler = declare
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
    except _Forbidden:
        raise Refused(400, "XML with a DOCTYPE or ENTITY declaration is refused") from None
    except expat.ExpatError as exc:
        raise Refused(400, f"malformed XML: {expat.ErrorString(exc.code)} (line {exc.lineno})") from None
    return builder.close()


@dataclass(frozen=True)
class SalesforceMessage:
    organization_id: str
    notifications: list[InboxNotification]


def _child_text(parent: ET.Element, tag: str, what: str) -> str:
    child = parent.find(tag)
    text = (child.text or "").strip() if child is not None else ""
    if not text:
        raise Refused(400, f"Outbound Message without {what}")
    return text


def parse_salesforce(body: bytes, check_org: Callable[[str], None] | None = None) -> SalesforceMessage:
    """An Outbound Message (SOAP 1.1 `notifications`): its org and one notification per `Notification` (a Lead or
    Contact): record id, its SystemModstamp or LastModifiedDate (else the notification id, which Salesforce keeps
    across its retries), and the fields it carried. `check_org` sees the OrganizationId before any notification is
    read, so a message from another org is refused as such (401) whatever else is wrong with it."""
    root = parse_xml(body)
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise Refused(400, "not a SOAP 1.1 envelope")
    message = root.find(f"{{{SOAP_ENV}}}Body/{{{OUTBOUND_NS}}}notifications")
    if message is None:
        raise Refused(400, f"no notifications element in namespace {OUTBOUND_NS}")
    org = _child_text(message, f"{{{OUTBOUND_NS}}}OrganizationId", "OrganizationId")
    if check_org is not None:
        check_org(org)
    action = (message.findtext(f"{{{OUTBOUND_NS}}}ActionId") or "").strip() or None
    elements = message.findall(f"{{{OUTBOUND_NS}}}Notification")
    if not 1 <= len(elements) <= MAX_SALESFORCE_NOTIFICATIONS:
        raise Refused(400, f"an Outbound Message carries 1 to {MAX_SALESFORCE_NOTIFICATIONS} notifications, "
                      f"not {len(elements)}")
    out = []
    for position, element in enumerate(elements):
        notification_id = _child_text(element, f"{{{OUTBOUND_NS}}}Id", f"Notification[{position}].Id")
        sobject = element.find(f"{{{OUTBOUND_NS}}}sObject")
        if sobject is None:
            raise Refused(400, f"Notification[{position}] has no sObject")
        kind = sobject.get(f"{{{XSI_NS}}}type", "")
        obj = kind.removeprefix(f"{{{SOBJECT_NS}}}")
        if obj == kind or obj not in SALESFORCE_OBJECTS:
            raise Refused(400, f"Notification[{position}]: sObject type {kind!r} is not a Lead or Contact of "
                          f"{SOBJECT_NS}")
        fields = {child.tag.removeprefix(f"{{{SOBJECT_NS}}}"): _nil_or_text(child) for child in sobject
                  if child.tag.startswith(f"{{{SOBJECT_NS}}}")}
        record_id = fields.get("Id") or ""
        if not _SALESFORCE_ID.fullmatch(record_id):
            raise Refused(400, f"Notification[{position}]: sObject has no valid sf:Id")
        modstamp = fields.get("SystemModstamp") or fields.get("LastModifiedDate") or f"notification:{notification_id}"
        if len(modstamp) > MAX_MODSTAMP:
            raise Refused(400, f"Notification[{position}]: modification stamp longer than {MAX_MODSTAMP} characters")
        payload = {"notification_id": notification_id, "action_id": action, "organization_id": org,
                   "object": obj, "fields": fields}
        out.append(InboxNotification("salesforce", obj, record_id, modstamp, payload))
    return SalesforceMessage(org, out)


def _nil_or_text(element: ET.Element) -> str | None:
    if element.get(f"{{{XSI_NS}}}nil", "").strip().lower() == "true":
        return None
    return (element.text or "").strip() or None


# -- JSON sources ----------------------------------------------------------------------------------------------------


def _json(body: bytes) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"malformed JSON: {str(exc)[:200]}") from None


def parse_hubspot(body: bytes) -> tuple[list[InboxNotification], int]:
    """HubSpot's webhook batch (a JSON array of events, https://developers.hubspot.com/docs/api/webhooks): one
    notification per contact event — `contact.*` subscriptions, or `object.*` ones of object type 0-1 — keyed by
    objectId and occurredAt (ms); returns them and how many events were about other objects (acknowledged, not
    recorded)."""
    events = _json(body)
    if not isinstance(events, list) or not events:
        raise Refused(400, "a HubSpot webhook body is a non-empty JSON array of events")
    out, ignored = [], 0
    for position, event in enumerate(events):
        if not isinstance(event, dict):
            raise Refused(400, f"event [{position}] is not a JSON object")
        kind = event.get("subscriptionType")
        if not isinstance(kind, str) or "." not in kind:
            raise Refused(400, f"event [{position}] has no subscriptionType")
        family = kind.split(".", 1)[0]
        if family != "contact" and not (family == "object" and str(event.get("objectTypeId")) == HUBSPOT_CONTACT_TYPE_ID):
            ignored += 1
            continue
        object_id, occurred = whole_number(event.get("objectId")), whole_number(event.get("occurredAt"))
        if object_id is None:
            raise Refused(400, f"event [{position}] has no objectId")
        if occurred is None:
            raise Refused(400, f"event [{position}] has no occurredAt")
        out.append(InboxNotification("hubspot", "contact", str(object_id), str(occurred), event))
    return out, ignored


def parse_marketo(body: bytes) -> list[InboxNotification]:
    """leadflow's Marketo webhook template: `{"leadId": {{lead.Id}}, "updatedAt": "{{lead.Updated At}}", "email":
    "{{lead.Email Address}}"}`, or an array of such objects; keyed by leadId and updatedAt."""
    data = _json(body)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise Refused(422, "no leads in the body")
    out = []
    for position, item in enumerate(items):
        where = f"[{position}]." if isinstance(data, list) else ""
        if not isinstance(item, dict):
            raise Refused(422, f"{where or 'body'} is not a JSON object")
        lead_id = whole_number(item.get("leadId"))
        if lead_id is None:
            raise Refused(422, f"{where}leadId: missing or not a whole number (the template's {{{{lead.Id}}}})")
        updated = item.get("updatedAt")
        if not isinstance(updated, str) or not updated.strip():
            raise Refused(422, f"{where}updatedAt: missing (the template's \"{{{{lead.Updated At}}}}\")")
        if len(updated.strip()) > MAX_MODSTAMP:
            raise Refused(422, f"{where}updatedAt: longer than {MAX_MODSTAMP} characters")
        out.append(InboxNotification("marketo", "lead", str(lead_id), updated.strip(), item))
    return out


_INPUTS: Final[frozenset[str]] = frozenset(INPUT_COLUMNS)
_DERIVED: Final[frozenset[str]] = frozenset(DERIVED_COLUMNS)


def parse_web(body: bytes) -> list[InboxNotification]:
    """`{"leads": [lead, …]}` or one lead object, in leadflow's canonical input columns with a stable `lead_id`;
    keyed by lead_id and a hash of the lead (the same lead posted again is one notification, a changed one a new)."""
    data = _json(body)
    if isinstance(data, dict) and "leads" in data:
        unexpected = sorted(set(data) - {"leads"})
        if unexpected:
            raise Refused(422, f"{_name(unexpected[0])}: unknown key beside `leads`")
        leads, prefix = data["leads"], "leads"
        if not isinstance(leads, list) or not leads:
            raise Refused(422, "leads: must be a non-empty array of lead objects")
    elif isinstance(data, dict):
        leads, prefix = [data], ""
    else:
        raise Refused(422, "the body must be a lead object or {\"leads\": [...]}")
    return [_web_lead(lead, f"{prefix}[{i}]." if prefix else "") for i, lead in enumerate(leads)]


def _name(key: Any) -> str:
    """A key from the body as an error names it: short, whatever was sent."""
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def _web_lead(lead: Any, where: str) -> InboxNotification:
    if not isinstance(lead, dict):
        raise Refused(422, f"{where.rstrip('.') or 'body'}: not a JSON object")
    for key, value in lead.items():
        if key in _DERIVED:
            raise Refused(422, f"{where}{_name(key)}: written by leadflow's stages, not accepted on intake")
        if key not in _INPUTS:
            close = difflib.get_close_matches(str(key), INPUT_COLUMNS, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise Refused(422, f"{where}{_name(key)}: not a leadflow input column{hint}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise Refused(422, f"{where}{_name(key)}: must be a string, number, boolean or null")
    lead_id = lead.get("lead_id")
    if isinstance(lead_id, bool) or not isinstance(lead_id, (str, int)) or not str(lead_id).strip():
        raise Refused(422, f"{where}lead_id: missing (a stable id of the lead in your system)")
    record_id = str(lead_id).strip()
    if len(record_id) > MAX_RECORD_ID:
        raise Refused(422, f"{where}lead_id: longer than {MAX_RECORD_ID} characters")
    payload = dict(lead) | {"lead_id": record_id}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                            .encode("utf-8")).hexdigest()
    return InboxNotification("web", "lead", record_id, digest, payload)
