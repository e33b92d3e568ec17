"""Matching keys of single values: registrable domains, company names, person names and e-mail addresses.

A leaf module (moved here from `matching` and `duplicates`, which still export these names) so that
`leadflow.identity.prepared` can compute every per-record key without importing the matchers that use it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tldextract
from pandas.arrays import ArrowStringArray
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import OSA

from leadflow.identity.domains import is_free_domain
from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.uniques import map_unique
from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = [
    "COMPANY_SUFFIXES",
    "corporate_domains",
    "first_name_key",
    "last_name_key",
    "normalize_company",
    "normalize_email",
    "normalize_emails",
    "registered_domain",
    "registered_domains",
]

COMPANY_SUFFIXES: Final[Path] = REFERENCE_DIR / "company_suffixes.yaml"


# ----------------------------------------------------------------------------------------------------- company names


class _SuffixData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_suffixes: list[str]
    leading_words: list[str] = Field(default_factory=list)
    junk_names: list[str] = Field(default_factory=list)


@cache
def _suffix_data() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    data = parse_model(_SuffixData, load_yaml(COMPANY_SUFFIXES), COMPANY_SUFFIXES)
    return (
        frozenset(data.legal_suffixes),
        frozenset(data.leading_words),
        frozenset(data.junk_names),
    )


# ------------------------------------------------------------------------------------------------------- normalizers


@cache
def _extractor() -> tldextract.TLDExtract:
    # Offline: the bundled public-suffix snapshot; the default tries the network and logs a traceback.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(value: Any) -> str | None:
    """The registrable domain of a host, URL or e-mail address (`https://www.x.co.uk/a` → `x.co.uk`), else None."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    if not text:
        return None
    return _registrable(text)


@lru_cache(maxsize=1 << 16)
def _registrable(text: str) -> str | None:
    """`registered_domain` of a trimmed, lower-cased text without "@". Cached: hosts and e-mail domains repeat from
    lead to lead (a company's people, its website) and from chunk to chunk of a file."""
    ext = _extractor()(text)
    if not ext.domain or not ext.suffix:
        return None  # "localhost", "n/a", IP addresses: nothing to match on
    return f"{ext.domain}.{ext.suffix}"


_PLAIN_URL: Final[str] = r"^(?:https?://)?(?P<host>[a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:/[a-z0-9._~%/-]*)?$"
"""(RE2, on ASCII-lower-cased text) A host name, or a URL of one: an optional http(s) scheme, the host (ASCII letters,
digits, hyphens; two labels or more, no trailing dot) and an optional plain path. tldextract reads such a text as its
host alone (no userinfo, port, query or whitespace to strip; `lenient_netloc` gives the host back), so its
registrable domain is the host's."""


def registered_domains(values: pd.Series) -> pd.Series:
    """`registered_domain` of each value, as "string" on `values.index` (NA for none): plain hosts and URLs (most
    websites) are cut to their host with one Arrow regex and looked up once per distinct host; any other text goes
    through `registered_domain` once per distinct value."""
    text = values.astype("string")
    arrow = pa.chunked_array(text.array.__arrow_array__()) if len(text) else None
    if arrow is None:
        return pd.Series(pd.NA, index=values.index, dtype="string", name=values.name)
    host = pc.struct_field(pc.extract_regex(pc.ascii_lower(arrow), _PLAIN_URL), "host")
    plain = pc.is_valid(host).to_numpy(zero_copy_only=False)
    hosts = pd.Series(pd.array(ArrowStringArray(host), dtype="string"), index=values.index)
    out = map_unique(hosts, _registrable)
    rest = np.flatnonzero(~plain & text.notna().to_numpy(dtype=bool))
    if len(rest):
        out.iloc[rest] = map_unique(text.iloc[rest], registered_domain).to_numpy()
    out.name = values.name
    return out


_COMBINING = re.compile("[\u0300-\u036f]")
_JOINERS = re.compile(r"[.'’`´]")  # "S.A." → "sa", "O'Brien" → "obrien"
_NON_WORD = re.compile(r"[\W_]+")
_REPEATS = re.compile(r"(.)\1+")


def normalize_company(name: Any) -> str:
    """Matching key of a company name: case-folded, accents/punctuation/legal suffixes/leading "The" removed."""
    if name is None or name is pd.NA or (isinstance(name, float) and np.isnan(name)):
        return ""
    suffixes, leading, junk = _suffix_data()
    text = unicodedata.normalize("NFKC", str(name)).casefold().replace("&", " and ").replace("+", " and ")
    text = _COMBINING.sub("", unicodedata.normalize("NFD", text))
    words = _NON_WORD.sub(" ", _JOINERS.sub("", text)).split()
    if " ".join(words) in junk:
        return ""
    while len(words) > 1 and words[0] in leading:
        words = words[1:]
    while len(words) > 1 and words[-1] in suffixes:
        words = words[:-1]
    # A typo in a legal suffix ("Corporattion", "Limted", "IInc") must not keep it.
    if len(words) > 1 and len(words[-1]) >= 3 and _near_suffix(words[-1]):
        words = words[:-1]
        while len(words) > 1 and words[-1] in suffixes:
            words = words[:-1]
    return " ".join(words)


@cache
def _long_suffixes() -> tuple[str, ...]:
    return tuple(sorted(w for w in _suffix_data()[0] if len(w) >= 5))


@cache
def _collapsed_suffixes() -> frozenset[str]:
    return frozenset(_REPEATS.sub(r"\1", w) for w in _suffix_data()[0])


@lru_cache(maxsize=1 << 16)
def _near_suffix(word: str) -> bool:
    """A legal suffix with one typo (5+ letters) or a doubled letter ("IInc", "LLLC"). Cached: it is asked of every
    company name's last word, and last words repeat ("Group", "Solutions")."""
    if _REPEATS.sub(r"\1", word) in _collapsed_suffixes():
        return True
    return (
        len(word) >= 5 and process.extractOne(word, _long_suffixes(), scorer=OSA.distance, score_cutoff=1) is not None
    )


# ------------------------------------------------------------------------------------------------------ people, e-mail

_NOT_LETTER = re.compile(r"[^\w]|[\d_]")
_PLUS_TAG = r"^([^@]*?)\+[^@]*@"
_ADDRESS = r"[^@\s]+@[^@\s]+"


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _letters(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    for special, plain in (("ß", "ss"), ("ø", "o"), ("ł", "l"), ("æ", "ae"), ("ı", "i"), ("đ", "d")):
        text = text.replace(special, plain)
    return _NOT_LETTER.sub("", _COMBINING.sub("", unicodedata.normalize("NFD", text)))


def last_name_key(name: Any) -> str:
    """Blocking key of a last name: case-folded letters only ("O'Brien" → "obrien", "van der Berg" → "vanderberg")."""
    return "" if _is_missing(name) else _letters(str(name))


def first_name_key(name: Any) -> str:
    """Comparison key of a first name: its first word, letters only ("J. R." → "j", "Jean-Luc" → "jeanluc")."""
    if _is_missing(name):
        return ""
    words = str(name).split()
    return _letters(words[0]) if words else ""


def normalize_email(value: Any) -> str | None:
    """Matching key of an address: trimmed, lower case, "+tag" dropped; None when it is not an address."""
    if _is_missing(value):
        return None
    text = re.sub(_PLUS_TAG, r"\1@", str(value).strip().lower())
    return text if re.fullmatch(_ADDRESS, text) else None


_PYTHON_SPACE: Final[str] = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
"""(RE2 class body) Every character Python's `\\s` matches (`str.isspace`); RE2's own `\\s` is ASCII only."""
_ADDRESS_RE2: Final[str] = f"^[^@{_PYTHON_SPACE}]+@[^@{_PYTHON_SPACE}]+$"
"""`_ADDRESS` as Python's `re.fullmatch` reads it, for Arrow: pandas would run a pattern with `\\s` in Python."""


def normalize_emails(values: pd.Series) -> pd.Series:
    """`normalize_email` over a Series with vectorised string kernels (NA: not an address)."""
    text = values.astype("string").str.strip().str.lower()
    # The "+tag" replacement only where there is a "+": most addresses have none.
    plus = np.flatnonzero(text.str.contains("+", regex=False).fillna(False).to_numpy(dtype=bool))
    if len(plus):
        text = text.copy()
        text.iloc[plus] = text.iloc[plus].str.replace(_PLUS_TAG, r"\1@", regex=True).to_numpy()
    if not len(text):
        return text
    address = pc.match_substring_regex(pa.chunked_array(text.array.__arrow_array__()), _ADDRESS_RE2)
    return text.where(pc.fill_null(address, False).to_numpy(zero_copy_only=False))


def corporate_domains(domain: pd.Series, email: pd.Series) -> pd.Series:
    """Registrable domain (from `domain`, else the address) unless it is free-mail; NA otherwise."""
    raw = domain.str.strip().str.lower()
    raw = raw.mask(raw == "").fillna(email.str.replace(r"^.*@", "", regex=True))  # Arrow regex, not Python rsplit
    reg = registered_domains(raw)
    free = map_unique(reg, is_free_domain, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    return reg.mask(free)
