"""Push intake: the sender checks (signatures, shared secret, timestamps, org ids), the body parsers and the
config, as pure functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from leadflow.intake.config import load_intake_config, resolve_secrets
from leadflow.intake.payloads import parse_hubspot, parse_marketo, parse_salesforce, parse_web, parse_xml
from leadflow.intake.verify import (
    Refused,
    check_organization,
    hubspot_signature,
    hubspot_uri,
    salesforce_id18,
    verify_hubspot,
    verify_marketo,
    verify_web,
    web_signature,
)
from leadflow.pipeline.errors import ConfigError
from tests.test_intake_app import salesforce_message

NOW = 1_800_000_000.0


# -- Salesforce ids and orgs ---------------------------------------------------------------------------------------


def test_salesforce_id18_adds_the_case_suffix_and_checks_it() -> None:
    # blocks "00D5e" (D upper: bit 2 → E), "00000" (→ A), "0AbCd" (A, C upper: bits 1 and 3 → K)
    assert salesforce_id18("00D5e000000AbCd") == "00D5e000000AbCdEAK"
    assert salesforce_id18("00D5e000000AbCdEAK") == "00D5e000000AbCdEAK"
    assert salesforce_id18("00D5e000000AbCdeak") == "00D5e000000AbCdEAK"  # the suffix is case-blind
    with pytest.raises(ValueError, match="do not match"):
        salesforce_id18("00D5e000000AbCdAAA")
    with pytest.raises(ValueError, match="15 or 18"):
        salesforce_id18("00D5e000000AbC")


def test_organization_is_compared_by_its_15_character_prefix_case_sensitively() -> None:
    allowed = ["00D5e000000AbCdEAK"]
    check_organization("00D5e000000AbCdEAK", allowed)
    check_organization("00D5e000000AbCd", allowed)
    for forged in ("00D5e000000ABCDEAK", "00D5e000000abcd", "00D5e000000AbCe", "00D5e000000AbCdE"):
        with pytest.raises(Refused) as refused:
            check_organization(forged, allowed)
        assert refused.value.status == 401


# -- HubSpot -------------------------------------------------------------------------------------------------------


def test_hubspot_signature_is_base64_hmac_of_method_uri_body_timestamp() -> None:
    body = b'[{"objectId":1}]'
    by_hand = base64.b64encode(hmac.new(b"s3cret", b"POSThttps://x.example/intake/hubspot?a=1" + body +
                                        b"1700000000000", hashlib.sha256).digest()).decode()
    assert hubspot_signature("s3cret", "POST", "https://x.example/intake/hubspot?a=1", body, "1700000000000") == by_hand


def test_hubspot_uri_decodes_only_hubspots_characters() -> None:
    assert hubspot_uri("https://x.example", "/intake/hubspot", "next=%2Fa%3Ab%20c%26d") == (
        "https://x.example/intake/hubspot?next=/a:b%20c%26d")


def test_hubspot_refuses_stale_forged_and_missing() -> None:
    uri, body, ts = "https://x.example/intake/hubspot", b"[]", str(int(NOW * 1000))
    good = hubspot_signature("s3cret", "POST", uri, body, ts)
    verify_hubspot("s3cret", method="POST", uri=uri, body=body, signature=good, timestamp=ts, now=NOW, tolerance=300)
    cases = [
        ({"signature": good, "timestamp": str(int((NOW - 301) * 1000))}, 400),  # stale, even signed
        ({"signature": good, "timestamp": None}, 400),
        ({"signature": good, "timestamp": "yesterday"}, 400),
        ({"signature": hubspot_signature("other", "POST", uri, body, ts), "timestamp": ts}, 401),
        ({"signature": None, "timestamp": ts}, 401),
        ({"signature": "é" * 44, "timestamp": ts}, 401),
    ]
    for headers, status in cases:
        with pytest.raises(Refused) as refused:
            verify_hubspot("s3cret", method="POST", uri=uri, body=body, now=NOW, tolerance=300, **headers)
        assert refused.value.status == status
        assert good not in refused.value.reason and "s3cret" not in refused.value.reason
    with pytest.raises(Refused):  # the body is signed
        verify_hubspot("s3cret", method="POST", uri=uri, body=b"[{}]", signature=good, timestamp=ts, now=NOW,
                       tolerance=300)


# -- web and Marketo -----------------------------------------------------------------------------------------------


def test_web_signature_is_hex_hmac_of_timestamp_dot_body() -> None:
    ts, body = "1800000000", b'{"lead_id":"a"}'
    expected = "sha256=" + hmac.new(b"k", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert web_signature("k", ts, body) == expected
    verify_web("k", body=body, signature=expected, timestamp=ts, now=NOW + 299, tolerance=300)
    verify_web("k", body=body, signature=expected.upper().replace("SHA256=", "sha256="), timestamp=ts, now=NOW,
               tolerance=300)
    for signature, timestamp, now, status in ((expected, ts, NOW + 301, 400), (expected, ts, NOW - 301, 400),
                                              (web_signature("j", ts, body), ts, NOW, 401),
                                              (expected.removeprefix("sha256="), ts, NOW, 401), (None, ts, NOW, 401)):
        with pytest.raises(Refused) as refused:
            verify_web("k", body=body, signature=signature, timestamp=timestamp, now=now, tolerance=300)
        assert refused.value.status == status


def test_marketo_shared_secret() -> None:
    verify_marketo("shh", "shh")
    for header in (None, "", "nope", "shh "[:-1] + "!"):
        with pytest.raises(Refused) as refused:
            verify_marketo("shh", header)
        assert refused.value.status == 401


# -- parsers -------------------------------------------------------------------------------------------------------


def test_salesforce_message_is_read_into_notifications() -> None:
    message = parse_salesforce(salesforce_message("00D5e000000AbCdEAK", [
        ("04l000000000001AAA", "Lead", "00Q5e000001AbCdEAA", "2026-12-01T10:00:00.000Z"),
        ("04l000000000002AAA", "Contact", "0035e000001AbCdEAA", None),
    ]))
    assert message.organization_id == "00D5e000000AbCdEAK"
    lead, contact = message.notifications
    assert (lead.system, lead.object, lead.record_id, lead.modstamp) == (
        "salesforce", "Lead", "00Q5e000001AbCdEAA", "2026-12-01T10:00:00.000Z")
    assert lead.payload["notification_id"] == "04l000000000001AAA"
    assert "SessionId" not in json.dumps(lead.payload) and "SESSION" not in json.dumps(lead.payload)
    # no stamp in the message: the notification id, which Salesforce keeps across its retries
    assert (contact.object, contact.modstamp) == ("Contact", "notification:04l000000000002AAA")


def test_salesforce_refuses_entities_other_objects_and_empty_messages() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<a>&lol2;</a>")
    for body in (bomb, b'<?xml version="1.0" encoding="UTF-16"?>', b"<a><b></a>", b"not xml",
                 salesforce_message("00D5e000000AbCdEAK", [("04l000000000001AAA", "Account", "0015e0000", None)]),
                 salesforce_message("00D5e000000AbCdEAK", [])):
        with pytest.raises(Refused) as refused:
            parse_salesforce(body)
        assert refused.value.status == 400
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode("utf-16")
    with pytest.raises(Refused, match="DOCTYPE"):  # not visible as ASCII bytes: expat's handlers refuse it
        parse_xml(utf16)


def test_hubspot_events_keep_contacts_and_count_the_rest() -> None:
    events = [
        {"eventId": 1, "subscriptionType": "contact.creation", "objectId": 51, "occurredAt": 1700000000001},
        {"eventId": 2, "subscriptionType": "contact.propertyChange", "objectId": 51, "occurredAt": 1700000000002,
         "propertyName": "email", "propertyValue": "a@b.com"},
        {"eventId": 3, "subscriptionType": "company.creation", "objectId": 9, "occurredAt": 1700000000003},
        {"eventId": 4, "subscriptionType": "object.creation", "objectTypeId": "0-1", "objectId": 52,
         "occurredAt": 1700000000004},
    ]
    notifications, ignored = parse_hubspot(json.dumps(events).encode())
    assert [(n.object, n.record_id, n.modstamp) for n in notifications] == [
        ("contact", "51", "1700000000001"), ("contact", "51", "1700000000002"), ("contact", "52", "1700000000004")]
    assert ignored == 1 and notifications[1].payload["propertyName"] == "email"
    for body in (b"{}", b"[]", b"[1]", b'[{"subscriptionType": "contact.creation", "occurredAt": 1}]', b"[NaN]"):
        with pytest.raises(Refused):
            parse_hubspot(body)


def test_marketo_template_object_or_array() -> None:
    one = parse_marketo(b'{"leadId": 1001, "updatedAt": "2026-12-01 10:00:00", "email": "a@b.com"}')
    assert [(n.record_id, n.modstamp) for n in one] == [("1001", "2026-12-01 10:00:00")]
    many = parse_marketo(b'[{"leadId": "1002", "updatedAt": "x"}, {"leadId": 1003, "updatedAt": "y"}]')
    assert [n.record_id for n in many] == ["1002", "1003"]
    with pytest.raises(Refused, match=r"\[1\]\.updatedAt") as refused:
        parse_marketo(b'[{"leadId": 1, "updatedAt": "x"}, {"leadId": 2}]')
    assert refused.value.status == 422
    with pytest.raises(Refused, match="leadId"):
        parse_marketo(b'{"leadId": true, "updatedAt": "x"}')


def test_web_leads_must_be_canonical() -> None:
    leads = parse_web(b'{"leads": [{"lead_id": "f-1", "email": "a@b.com", "employees": 40}, {"lead_id": 7}]}')
    assert [(n.record_id, n.object) for n in leads] == [("f-1", "lead"), ("7", "lead")]
    assert leads[0].payload == {"lead_id": "f-1", "email": "a@b.com", "employees": 40}
    again = parse_web(b'{"employees": 40, "email": "a@b.com", "lead_id": "f-1"}')  # same lead, other key order
    assert again[0].modstamp == leads[0].modstamp
    changed = parse_web(b'{"employees": 41, "email": "a@b.com", "lead_id": "f-1"}')
    assert changed[0].modstamp != leads[0].modstamp
    for body, field in ((b'{"leads": [{"lead_id": "a", "e_mail": "x"}]}', "leads[0].e_mail: not a leadflow input "
                         "column; did you mean 'email'?"),
                        (b'{"email": "a@b.com"}', "lead_id: missing"),
                        (b'{"lead_id": "a", "score": 99}', "score: written by leadflow"),
                        (b'{"lead_id": "a", "company": {"name": "x"}}', "company: must be"),
                        (b'{"leads": []}', "leads: must be a non-empty")):
        with pytest.raises(Refused) as refused:
            parse_web(body)
        assert refused.value.status == 422 and field in refused.value.reason


# -- config --------------------------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intake.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_reads_the_intake_section_and_resolves_secrets(tmp_path: Path) -> None:
    path = _write(tmp_path, """
pipeline: [standardize]          # a run config's keys are left alone
intake:
  port: 9000
  public_url: https://intake.example.com/
  rate_limit: {requests_per_second: 5, burst: 10}
  sources:
    salesforce: {organization_ids: ["00D5e000000AbCd"], rate_limit: {requests_per_second: 1, burst: 2}}
    hubspot: {client_secret: {env: HS_SECRET}}
    web: {secret: {file: web.key}}
""")
    config = load_intake_config(path)
    assert (config.host, config.port, config.public_url) == ("127.0.0.1", 9000, "https://intake.example.com")
    assert config.sources.salesforce is not None and config.sources.salesforce.organization_ids == [
        "00D5e000000AbCdEAK"]
    assert config.rate_limit_of("salesforce").burst == 2 and config.rate_limit_of("hubspot").burst == 10
    assert config.sources.configured() == ("salesforce", "hubspot", "web")
    with pytest.raises(ConfigError) as missing:
        resolve_secrets(config, environ={})
    assert str(missing.value) == (f"{path}: intake.sources.hubspot.client_secret: environment variable HS_SECRET is "
                                  "not set")
    (tmp_path / "web.key").write_text("file-secret\n")
    import os
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        secrets = resolve_secrets(config, environ={"HS_SECRET": "hs-value"})
    finally:
        os.chdir(here)
    assert secrets.hubspot is not None and secrets.hubspot.get_secret_value() == "hs-value"
    assert secrets.web is not None and secrets.web.get_secret_value() == "file-secret"
    assert "hs-value" not in repr(secrets) and "file-secret" not in repr(secrets)


@pytest.mark.parametrize(("text", "message"), [
    ("intake:\n  sources:\n    hubspot: {client_secret: {env: X}, rate_limt: {burst: 1}}\n",
     "intake.sources.hubspot.rate_limt: unknown key 'rate_limt'; did you mean 'rate_limit'?"),
    ("sources:\n  webb: {secret: {env: X}}\n", "sources.webb: unknown key 'webb'; did you mean 'web'?"),
    ("intake:\n  sources: {}\n", "intake.sources: Value error, configure at least one source"),
    ("intake:\n  sources:\n    salesforce: {organization_ids: ['00Q5e000000AbCd']}\n",
     "intake.sources.salesforce.organization_ids[0]: Value error, '00Q5e000000AbCd' is not a Salesforce organization"),
    ("intake:\n  sources:\n    salesforce: {organization_ids: ['00D5e000000AbCdAAA']}\n", "do not match"),
    ("intake:\n  public_url: intake.example.com\n  sources: {web: {secret: {env: X}}}\n", "not an http(s) URL"),
    ("intake:\n  tls: {certfile: c.pem, keyfile: k.pem}\n  sources: {web: {secret: {env: X}}}\n",
     "intake.tls.certfile: file"),
    ("intake:\n  sources: {web: {secret: {env: X, file: y}}}\n", "exactly one of"),
])
def test_config_errors_name_the_yaml_path(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_intake_config(path)
    assert message in str(error.value)
