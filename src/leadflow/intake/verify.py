"""Who sent it: the checks every pushed request passes before anything is recorded, as pure functions.

Each check raises `Refused` (an HTTP status and a reason safe to log and return: it never holds a secret, a
signature or a header's value). Signatures are compared with `hmac.compare_digest`.

- HubSpot webhooks, `X-HubSpot-Signature-v3` (https://developers.hubspot.com/docs/api/webhooks/validating-requests):
  base64(HMAC-SHA256(app client secret, method + URI + raw body + X-HubSpot-Request-Timestamp)), the URI being the
  full URL HubSpot posted to (scheme://host/path?query) with the characters of HubSpot's table URL-decoded; a
  timestamp (milliseconds) older than 5 minutes is refused.
- The generic web endpoint: `X-Leadflow-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`
  with `X-Leadflow-Timestamp: <unix seconds>`, the same 5 minutes.
- Marketo webhooks are user-defined (https://experienceleague.adobe.com/en/docs/marketo/using/product-docs/
  administration/additional-integrations/create-a-webhook): leadflow's template sends `X-Leadflow-Marketo-Secret`.
- Salesforce Outbound Messages carry no signature: the message's OrganizationId must be a configured org
  (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_understanding.htm).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from typing import Final

HUBSPOT_SIGNATURE: Final[str] = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP: Final[str] = "X-HubSpot-Request-Timestamp"
WEB_SIGNATURE: Final[str] = "X-Leadflow-Signature"
WEB_TIMESTAMP: Final[str] = "X-Leadflow-Timestamp"
MARKETO_SECRET: Final[str] = "X-Leadflow-Marketo-Secret"

_ID_CHARS: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_ID_SUFFIX: Final[str] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

# HubSpot: "decode any URL-encoded characters listed in the following table in the requestURI" (v3 validation).
_HUBSPOT_DECODED: Final[dict[str, str]] = {
    "3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$", "27": "'", "28": "(", "29": ")", "2A": "*",
    "2C": ",", "3B": ";",
}
_PERCENT: Final[re.Pattern[str]] = re.compile(r"%([0-9A-Fa-f]{2})")


class Refused(Exception):
    """A request refused before anything was recorded: the HTTP status and a reason safe to log and return."""

    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        super().__init__(f"{status}: {reason}")


# -- Salesforce --------------------------------------------------------------------------------------------------


def salesforce_id18(value: str) -> str:
    """The 18-character, case-insensitive-safe form of a 15- or 18-character Salesforce id. The suffix encodes which
    of the first 15 characters are upper case (five bits per block of five); an 18-character id whose suffix does
    not match its first 15 characters is refused (ValueError): a mistyped id."""
    if not _ID_CHARS.match(value):
        raise ValueError(f"{value!r} is not a Salesforce id (15 or 18 letters and digits)")
    head = value[:15]
    suffix = ""
    for block in range(3):
        bits = sum(1 << i for i, ch in enumerate(head[block * 5 : block * 5 + 5]) if "A" <= ch <= "Z")
        suffix += _ID_SUFFIX[bits]
    if len(value) == 18 and value[15:].upper() != suffix:
        raise ValueError(f"{value!r}: its last 3 characters do not match the first 15 (expected …{suffix})")
    return head + suffix


def check_organization(given: str, allowed: Sequence[str]) -> None:
    """Refuse (401) a message from an org not configured: ids compared by their first 15 characters, case-sensitively
    (the 15-character form is case-sensitive; the 18-character suffix only makes it safe for case-blind tools)."""
    if len(given) not in (15, 18) or given[:15] not in {org[:15] for org in allowed}:
        raise Refused(401, "OrganizationId is not a configured organization")


# -- timestamps ----------------------------------------------------------------------------------------------------


def check_timestamp(header: str | None, *, name: str, now: float, tolerance: float, milliseconds: bool) -> None:
    """Refuse (400) a missing, unreadable or stale timestamp: one more than `tolerance` seconds from `now` either way
    (a replayed request, or a clock far off)."""
    if header is None or not header.strip():
        raise Refused(400, f"missing {name}")
    try:
        value = float(header.strip())
    except ValueError:
        raise Refused(400, f"{name} is not a number") from None
    seconds = value / 1000.0 if milliseconds else value
    if not abs(now - seconds) <= tolerance:
        raise Refused(400, f"{name} is more than {tolerance:.0f} s from the server's time (stale or replayed)")


# -- HubSpot -------------------------------------------------------------------------------------------------------


def hubspot_uri(base_url: str, raw_path: str, query: str) -> str:
    """The URI HubSpot signed: `base_url` — the configured public URL (behind a proxy the Host we see differs), else
    scheme://host[:port] as requested — plus the path and query as sent, with HubSpot's table of characters
    URL-decoded (and no others)."""
    uri = base_url + raw_path + (f"?{query}" if query else "")
    return _PERCENT.sub(lambda m: _HUBSPOT_DECODED.get(m.group(1).upper(), m.group(0)), uri)


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), the v3 signature."""
    message = method.upper().encode() + uri.encode("utf-8") + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()).decode("ascii")


def verify_hubspot(
    secret: str, *, method: str, uri: str, body: bytes, signature: str | None, timestamp: str | None, now: float,
    tolerance: float,
) -> None:
    """Refuse a stale timestamp (400), then a missing or wrong v3 signature (401)."""
    check_timestamp(timestamp, name=HUBSPOT_TIMESTAMP, now=now, tolerance=tolerance, milliseconds=True)
    assert timestamp is not None
    if not signature or not signature.strip():
        raise Refused(401, f"missing {HUBSPOT_SIGNATURE}")
    expected = hubspot_signature(secret, method, uri, body, timestamp.strip())
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8", "replace")):
        raise Refused(401, f"{HUBSPOT_SIGNATURE} does not match")


# -- web forms and partner portals ----------------------------------------------------------------------------------


def web_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256(secret, timestamp + "." + body): the X-Leadflow-Signature value."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_web(secret: str, *, body: bytes, signature: str | None, timestamp: str | None, now: float,
               tolerance: float) -> None:
    """Refuse a stale timestamp (400), then a missing or wrong signature (401)."""
    check_timestamp(timestamp, name=WEB_TIMESTAMP, now=now, tolerance=tolerance, milliseconds=False)
    assert timestamp is not None
    if not signature or not signature.strip():
        raise Refused(401, f"missing {WEB_SIGNATURE}")
    expected = web_signature(secret, timestamp.strip(), body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8", "replace")):
        raise Refused(401, f"{WEB_SIGNATURE} does not match")


# -- Marketo -------------------------------------------------------------------------------------------------------


def verify_marketo(secret: str, header: str | None) -> None:
    """Refuse (401) a missing or wrong shared-secret header."""
    if not header:
        raise Refused(401, f"missing {MARKETO_SECRET}")
    if not hmac.compare_digest(secret.encode("utf-8"), header.strip().encode("utf-8", "replace")):
        raise Refused(401, f"{MARKETO_SECRET} does not match")
