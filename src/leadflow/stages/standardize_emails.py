"""E-mail validity for the standardize stage: `email_facts_of(address)` per address, `email_facts(series)` per column.

`email_facts_of` gives `email_validator.validate_email(address, check_deliverability=False)`'s verdict (valid, and
the normalised domain) with each domain validated once per process. `email_facts` gives the same answers for a
whole column: the common address — ASCII, no quotes or angle brackets, a dot-atom local part before the first "@"
(the case where validate_email's local-part step accepts it as it is) — is judged with Arrow kernels and one cached
domain validation per distinct domain; every other address goes through `email_facts_of` once per distinct value.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from email_validator import EmailNotValidError
from email_validator.rfc_constants import ATEXT, EMAIL_MAX_LENGTH
from email_validator.syntax import split_email, validate_email_domain_name, validate_email_local_part
from pandas.arrays import ArrowStringArray

from leadflow.pipeline.uniques import map_unique_multi

__all__ = ["email_facts", "email_facts_of"]

FACT_COLUMNS: Final[tuple[str, str]] = ("email_valid", "email_domain")


@lru_cache(maxsize=1 << 16)
def _email_domain_of(domain_part: str) -> tuple[str, str] | None:
    """(normalised, IDNA ASCII) form of the part after an address's @, or None when email_validator refuses it.

    Cached: most addresses are unique but their domains are not, and domain validation (IDNA, UTS #46) is where
    email_validator spends most of its time. Empty parts and bracketed IP literals are refused, as validate_email does
    with its defaults (ALLOW_DOMAIN_LITERAL is off).
    """
    if not domain_part or (domain_part.startswith("[") and domain_part.endswith("]")):
        return None
    try:
        info = validate_email_domain_name(domain_part)
    except EmailNotValidError:
        return None
    return info["domain"], info["ascii_domain"]


def email_facts_of(email: str) -> tuple[bool, str | None]:
    """(valid, normalised domain) for an already trimmed, lower-cased address; syntax only, no DNS.

    The same answer as `email_validator.validate_email(email, check_deliverability=False)` with its defaults (tests
    compare the two), with each domain validated once per process instead of once per address: the steps of
    validate_email, in its order, with the domain step cached.
    """
    try:
        if email.isascii() and '"' not in email and "<" not in email:
            # split_email's result for plain ASCII without quotes or angle brackets, without its per-character loop
            # (the costliest step once domains are cached): local part before the first @, domain after it.
            local, at, domain_part = email.partition("@")
            if not at:
                return False, None
            original_local = local
        else:
            display_name, original_local, local, quoted, domain_part = split_email(email)
            # Display names ("Jo <jo@x.com>") and quoted local parts are refused by validate_email's defaults.
            if display_name is not None or quoted:
                return False, None
        local_info = validate_email_local_part(local)
        normalised_local = unicodedata.normalize("NFC", local)
        if normalised_local != local:  # the NFC form must be valid too (RFC 6532 3.1)
            local_info = validate_email_local_part(normalised_local)
    except EmailNotValidError:
        return False, None
    domain = _email_domain_of(domain_part)
    if domain is None:
        return False, None
    normalised_domain, ascii_domain = domain
    local_part = local_info["local_part"]
    # validate_email_length: the address as given, normalised, and with the IDNA ASCII domain, in UTF-8 octets.
    forms = (
        f"{original_local}@{domain_part}",
        f"{local_part}@{normalised_domain}",
        f"{local_info['ascii_local_part'] or local_part}@{ascii_domain}",
    )
    if any(len(form.encode("utf8")) > EMAIL_MAX_LENGTH for form in forms):
        return False, None
    return True, normalised_domain


_DOT_ATOM_AT: Final[str] = f"^[{ATEXT}]+(?:\\.[{ATEXT}]+)*@"
"""(RE2) An address whose local part, up to its first "@", is email_validator's DOT_ATOM_TEXT (ATEXT has no "@")."""


def _plain_addresses(text: pa.ChunkedArray) -> np.ndarray:
    """Rows `email_facts_of` takes its ASCII path for and whose local part is a dot-atom (valid as it is)."""
    plain = pc.and_(
        pc.and_(pc.string_is_ascii(text), pc.match_substring_regex(text, _DOT_ATOM_AT)),
        pc.invert(pc.or_(pc.match_substring(text, '"'), pc.match_substring(text, "<"))),
    )
    return pc.fill_null(plain, False).to_numpy(zero_copy_only=False)


def _domain_facts(parts: pd.Series) -> tuple[np.ndarray, list[str | None], np.ndarray]:
    """Per distinct domain part (in `parts.factorize()` order): accepted?, normalised domain, and the longer of the
    normalised and the IDNA ASCII domain in UTF-8 octets (for the length check)."""
    ok, normalised, longest = [], [], []
    for part in parts:
        domain = _email_domain_of(part)
        ok.append(domain is not None)
        normalised.append(None if domain is None else domain[0])
        longest.append(0 if domain is None else max(len(domain[0].encode("utf8")), len(domain[1])))
    return np.array(ok, dtype=bool), normalised, np.array(longest, dtype=np.int64)


def email_facts(email: pd.Series) -> pd.DataFrame:
    """`email_facts_of` of each address (trimmed, lower-cased): FACT_COLUMNS ("boolean", "string") on `email.index`,
    NA in both for a missing address. The same answers as `map_unique_multi(email, email_facts_of, ...)`."""
    text = email.astype("string")
    valid = pd.array(np.zeros(len(text), dtype=bool), dtype="boolean")
    domain = pd.array([None] * len(text), dtype="string")
    plain = (np.flatnonzero(_plain_addresses(pa.chunked_array(text.array.__arrow_array__())))
             if len(text) else np.zeros(0, dtype=np.int64))
    if len(plain):
        # ASCII: characters are octets. The local part is valid as it is, so the address is valid when its domain
        # is and no form of it (as given, normalised, IDNA ASCII) exceeds EMAIL_MAX_LENGTH.
        addresses = pa.chunked_array(text.iloc[plain].array.__arrow_array__())
        at = pc.find_substring(addresses, "@").to_numpy(zero_copy_only=False).astype(np.int64)
        size = pc.utf8_length(addresses).to_numpy(zero_copy_only=False).astype(np.int64)
        parts = pd.Series(pd.array(ArrowStringArray(
            pc.replace_substring_regex(addresses, "^[^@]*@", "", max_replacements=1)), dtype="string"))
        codes, uniques = parts.factorize()
        ok, normalised, longest = _domain_facts(pd.Series(uniques, dtype="string"))
        fits = (size <= EMAIL_MAX_LENGTH) & (at + 1 + longest[codes] <= EMAIL_MAX_LENGTH)
        good = ok[codes] & fits
        valid[plain] = good
        domain[plain[good]] = pd.array(normalised, dtype="string").take(codes[good])
    others = text.notna().to_numpy(dtype=bool, copy=True)
    others[plain] = False
    rest = np.flatnonzero(others)
    if len(rest):
        facts = map_unique_multi(text.iloc[rest], email_facts_of, FACT_COLUMNS, dtypes=("boolean", "string"))
        valid[rest] = facts["email_valid"].array
        domain[rest] = facts["email_domain"].array
    missing = text.isna().to_numpy(dtype=bool)
    valid[missing] = pd.NA
    return pd.DataFrame({"email_valid": valid, "email_domain": domain}, index=email.index)
