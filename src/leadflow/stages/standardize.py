"""Standardize stage: ISO country/state codes, E.164 phones, validated emails, title buckets, names, UTC timestamps.

Every per-value function runs once per distinct value (see leadflow.pipeline.uniques); the rules are data under
leadflow/reference/. Where a value cannot be resolved with certainty the output is empty rather than a guess.
Country and subdivision lookups live in leadflow.stages.standardize_countries and are re-exported here; phones
(`phone_e164_of`) in leadflow.stages.standardize_phones, a column's distinct phones at once (`phone_e164_series`) in
leadflow.stages.standardize_phones_bulk; e-mail validity (`email_facts_of`, `email_facts`) in
leadflow.stages.standardize_emails.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Annotated, Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.arrays import ArrowStringArray
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from leadflow.pipeline.config import Rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.identity.domains import free_email_matcher, is_free_domain
from leadflow.pipeline.schema import DEPARTMENTS, SENIORITIES, TIMESTAMP_MAX, TIMESTAMP_MIN
from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.stage import Stage
from leadflow.stages.standardize_countries import (
    _ABBREVIATION_DOT,
    _APOSTROPHES,
    _SEP,
    COUNTRY_ALIASES,
    SUBDIVISION_ALIASES,
    CountryData,
    SubdivisionData,
    _has_letter,
    _strip_accents,
    country_code_of,
    country_data,
    country_table,
    fallback_subdivision_table,
    state_code_of,
    subdivision_data,
    subdivision_table,
)
from leadflow.stages.standardize_emails import email_facts, email_facts_of
from leadflow.stages.standardize_phones import phone_e164_of
from leadflow.stages.standardize_phones_bulk import phone_e164_series
from leadflow.pipeline.uniques import map_unique, map_unique_multi
from leadflow.pipeline.yamlio import load_yaml, parse_model

TITLE_RULES: Final[Path] = REFERENCE_DIR / "titles.yaml"
NAME_RULES: Final[Path] = REFERENCE_DIR / "names.yaml"

READS: Final[tuple[str, ...]] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "state",
    "created_at",
    "updated_at",
)
WRITES: Final[tuple[str, ...]] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "country_code",
    "state_code",
    "phone_e164",
    "email_valid",
    "email_domain",
    "is_free_email",
    "seniority",
    "department",
    "created_at",
    "updated_at",
)


# --------------------------------------------------------------------------------------------------- reference data


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def _regex(pattern: str) -> str:
    _compile(pattern)
    return pattern


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"{value!r} is not one of {list(allowed)}")
        return value

    return check


Regex = Annotated[str, AfterValidator(_regex)]


class SeniorityRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Annotated[str, AfterValidator(_one_of(SENIORITIES))]
    patterns: list[Regex]


class DepartmentRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department: Annotated[str, AfterValidator(_one_of(DEPARTMENTS))]
    patterns: list[Regex]


class TitleData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    unknown: list[str] = Field(default_factory=list)
    seniority: list[SeniorityRule]
    department: list[DepartmentRule]


class NameData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    particles: list[str] = Field(default_factory=list)
    apostrophe_prefixes: list[str] = Field(default_factory=list)
    mac_stems: list[str] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------ text normalising

_TITLE_PUNCTUATION = re.compile(r"[^\w&+]+")
_WHITESPACE_PATTERN: Final[str] = "[\\s\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]+"
"""Literal Unicode spaces rather than escapes, so both Python `re` and pyarrow's RE2 read the class the same way."""


# ---------------------------------------------------------------------------------------------------------- titles


@cache
def title_rules() -> tuple[
    frozenset[str], tuple[tuple[re.Pattern[str], str], ...], tuple[tuple[re.Pattern[str], str], ...]
]:
    """(unknown titles, seniority rules, department rules) from reference/titles.yaml, compiled."""
    data = parse_model(TitleData, load_yaml(TITLE_RULES), TITLE_RULES)
    unknown = frozenset(_title_key(t) for t in data.unknown) | {""}
    seniority = tuple((re.compile(p), rule.level) for rule in data.seniority for p in rule.patterns)
    department = tuple((re.compile(p), rule.department) for rule in data.department for p in rule.patterns)
    return unknown, seniority, department


def _title_key(title: str) -> str:
    s = _strip_accents(unicodedata.normalize("NFKC", title).casefold())
    s = _ABBREVIATION_DOT.sub("", _APOSTROPHES.sub("", s))
    return " ".join(_TITLE_PUNCTUATION.sub(" ", s.replace("_", " ")).split())


def classify_title(title: str) -> tuple[str, str]:
    """(seniority, department) for a job title; ("unknown", "other") when it is empty or a placeholder."""
    unknown, seniority_rules, department_rules = title_rules()
    key = _title_key(title)
    if key in unknown or not _has_letter(key):
        return "unknown", "other"
    seniority = next((level for pattern, level in seniority_rules if pattern.search(key)), "individual")
    department = next((dept for pattern, dept in department_rules if pattern.search(key)), "other")
    return seniority, department


# ----------------------------------------------------------------------------------------------------------- names


class NameRules(NamedTuple):
    """reference/names.yaml, case-folded."""

    particles: frozenset[str]
    apostrophe_prefixes: frozenset[str]
    mac_stems: frozenset[str]


@cache
def name_rules() -> NameRules:
    """(particles, apostrophe prefixes, Mac stems) from reference/names.yaml."""
    data = parse_model(NameData, load_yaml(NAME_RULES), NAME_RULES)
    return NameRules(*(frozenset(v.casefold() for v in values)
                       for values in (data.particles, data.apostrophe_prefixes, data.mac_stems)))


def _capitalize_first_letter(text: str) -> str:
    for i, c in enumerate(text):
        if c.isalpha():
            return text[:i] + c.upper() + text[i + 1 :]
    return text


_MC_MIN_REST: Final[int] = 2
"""Letters after "mc" for the Mc rule: "mcdonald" → "McDonald", "mccoy" → "McCoy"; "mc" alone is left as it is."""


def _gaelic_patronymic(part: str, mac_stems: frozenset[str]) -> str | None:
    """"McDonald" / "MacDonald" for a lower-case surname part, or None when it is not one.

    Mc before any name; Mac only before a listed stem (reference/names.yaml), since Mack, Macy, Mace, Machado and
    Macias are names of their own.
    """
    if part.startswith("mc"):
        rest = part[2:]
        return "Mc" + rest.capitalize() if len(rest) >= _MC_MIN_REST and rest.isalpha() else None
    if part.startswith("mac") and part[3:] in mac_stems:
        return "Mac" + part[3:].capitalize()
    return None


def _case_part(part: str, rules: NameRules, surname: bool) -> str:
    if surname and (patronymic := _gaelic_patronymic(part, rules.mac_stems)) is not None:
        return patronymic
    segments = re.split(r"(['\u2019])", part)
    out = [_capitalize_first_letter(segments[0])]
    for i in range(2, len(segments), 2):
        before = segments[i - 2]
        segment = segments[i]
        out += [segments[i - 1], _capitalize_first_letter(segment) if before in rules.apostrophe_prefixes else segment]
    return "".join(out)


def _needs_recase(name: str) -> bool:
    if name == name.lower() or name == name.upper():
        return True
    # Caps lock: "jOHN sMITH". A swapped name whose every word is Capitalised was typed inverted.
    swapped = name.swapcase()
    words = [w for w in re.split(r"[\s\-]+", swapped) if any(c.isalpha() for c in w)]
    return all(w[:1].isupper() and w[1:] == w[1:].lower() for w in words)


def recase_name(name: str, *, particles_first: bool = True) -> str:
    """Capitalise a name typed all lower, all upper or caps-lock; leave deliberate mixed case ("McDonald") alone.

    Surname particles stay lower case when another word follows ("van der Berg"); with `particles_first=False`
    (first names) not in first position. Apostrophe prefixes capitalise the next letter ("O'Brien", "D'Angelo"), and
    surnames (particles_first=True) get Gaelic patronymics: "MCDONALD" → "McDonald", "macdonald" → "MacDonald" for
    listed stems only ("MACK" → "Mack").
    """
    if not _needs_recase(name):
        return name
    rules = name_rules()
    words = name.lower().split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        if word in rules.particles and i < len(words) - 1 and (particles_first or i > 0):
            out.append(word)
        else:
            out.append("-".join(_case_part(part, rules, particles_first) for part in word.split("-")))
    return " ".join(out)


def _recase_first(name: str) -> str:
    return recase_name(name, particles_first=False)


# ------------------------------------------------------------------------------------------------------ timestamps

_EPOCH = r"\d{9,13}(?:\.\d+)?"
_FALLBACK_FORMATS: Final[tuple[str, ...]] = (
    # US order for slashes: 03/04/2026 is March 4.
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%y",
    "%m/%d/%y %H:%M",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    # Dots are day first everywhere they are used: 04.03.2026 is March 4.
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
)


def _parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC datetimes for distinct timestamp strings (NaT when unparseable); naive times are taken as UTC."""
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    epoch = values.str.fullmatch(_EPOCH)
    if epoch.any():
        numbers = pd.to_numeric(values[epoch], errors="coerce").astype("Float64")
        millis = numbers >= 1e11
        # whole microseconds: a fraction of a second (HubSpot's millisecond epochs) would come back in ns
        micros = numbers.where(~millis, numbers / 1000).mul(1e6).round()
        parsed[epoch] = pd.to_datetime(micros, unit="us", utc=True, errors="coerce").dt.as_unit("us")
    # Every accepted form starts with a digit; this also keeps pandas from reading "now" or "today" as the clock.
    dated = values.str.match(r"\d") & ~epoch
    if dated.any():
        parsed[dated] = pd.to_datetime(values[dated], format="ISO8601", utc=True, errors="coerce")
    # Each fallback format is tried on the values none before it could read: the few left over, taken out once
    # (not a mask over every value per format).
    rest = values[dated & parsed.isna()]
    for fmt in _FALLBACK_FORMATS:
        if not len(rest):
            break
        got = pd.to_datetime(rest, format=fmt, utc=True, errors="coerce")
        read = got.notna().to_numpy(dtype=bool)
        if read.any():
            parsed[got.index[read]] = got[read]
            rest = rest[~read]
    # Outside the years later stages can hold (schema.TIMESTAMP_MIN..TIMESTAMP_MAX, inside datetime64[ns]) a
    # timestamp is refused like unparseable text, so the quality gate quarantines the row, not a later stage crash.
    return parsed.where((parsed >= TIMESTAMP_MIN) & (parsed <= TIMESTAMP_MAX))


def _iso_utc(parsed: pa.Array) -> pa.Array:
    """"YYYY-MM-DDTHH:MM:SSZ" of UTC timestamps in seconds: what `pc.strftime(parsed, "%Y-%m-%dT%H:%M:%SZ")` gives
    for the years `_parse_timestamps` keeps (four digits), from Arrow's plain cast ("YYYY-MM-DD HH:MM:SS" of the
    wall time without its zone), several times cheaper than strftime's per-value time-zone formatting."""
    text = pc.cast(parsed.cast(pa.timestamp("s")), pa.string())
    return pc.binary_join_element_wise(pc.replace_substring(text, " ", "T", max_replacements=1), "Z", "")


def normalize_timestamps(series: pd.Series) -> pd.Series:
    """ISO 8601 UTC strings "YYYY-MM-DDTHH:MM:SSZ"; unparseable text is kept (trimmed) for the quality gate."""
    text = clean_text(series)
    codes, uniques = text.factorize(use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="string")
    parsed = pa.array(_parse_timestamps(distinct)).cast(pa.timestamp("s", tz="UTC"), safe=False)
    # Formatting and merging stay in Arrow: no Python string per row, which matters at a million rows.
    formatted = pc.if_else(
        pc.is_null(parsed),
        pa.array(distinct, type=pa.large_string()).cast(pa.string()),
        _iso_utc(parsed),
    )
    result = pd.array(ArrowStringArray(formatted), dtype="string").take(np.asarray(codes), allow_fill=True)
    return pd.Series(result, index=series.index, name=series.name)


# ----------------------------------------------------------------------------------------------------------- stage


_MAY_NEED_CLEANING: Final[str] = (
    "^$|^ | $|  |[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200b}\\x{2028}\\x{2029}\\x{202f}"
    "\\x{205f}\\x{3000}\\x{feff}]")
"""(RE2) A value `clean_text` may change: empty, a space at an end, two spaces, or any other character that Python's
or Unicode's whitespace or `_WHITESPACE_PATTERN` includes. Any other value is only words and single inner spaces."""
_CLEAN_PREFILTER_MIN: Final[int] = 1_000


def clean_text(series: pd.Series) -> pd.Series:
    """As `string`, whitespace runs collapsed to one space, trimmed; empty → NA.

    Most values need nothing (~3 % of messy leads do): above `_CLEAN_PREFILTER_MIN` rows, one Arrow regex match finds
    the values that may change and only those are cleaned, the rest kept as they are (the same result)."""
    text = series.astype("string")
    arrow = getattr(text.array, "_pa_array", None)
    if arrow is None or len(text) < _CLEAN_PREFILTER_MIN:
        return _clean_all(text)
    may = pc.fill_null(pc.match_substring_regex(arrow, _MAY_NEED_CLEANING), False).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(may)
    if not len(rows):
        return text
    if len(rows) * 4 > len(text):
        return _clean_all(text)
    result = text.copy()
    result.iloc[rows] = _clean_all(text.iloc[rows]).to_numpy()
    return result


def _clean_all(text: pd.Series) -> pd.Series:
    text = text.str.replace(_WHITESPACE_PATTERN, " ", regex=True).str.strip()
    return text.mask(text == "")


def _recase_candidates(names: pd.Series) -> pd.Series:
    # Only all-lower, all-upper or lower-initial names can need recasing; skip the per-value call for the rest.
    first = names.str.slice(0, 1)
    candidate = (names == names.str.lower()) | (names == names.str.upper()) | (first != first.str.upper())
    return names.where(candidate.fillna(False))


def _names(names: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    recased = map_unique(_recase_candidates(names), fn)
    return recased.fillna(names)


def _keyed(country_code: pd.Series, values: pd.Series) -> pd.Series:
    return (country_code.fillna("") + _SEP + values).astype("string")


def standardize(frame: pd.DataFrame, rules: Rules, inputs: RunInputs | None = None) -> pd.DataFrame:
    """Normalise contact fields and derive codes, validity flags and title buckets (the `standardize` stage).

    `rules` and `inputs` are part of the stage signature only: standardizing depends on the reference data, not on
    run rules.
    """
    # Build the lookup tables before any worker process forks, so workers share them instead of rebuilding them.
    for build in (country_table, title_rules, name_rules, free_email_matcher):
        build()

    email = clean_text(frame["email"]).str.lower()
    facts = email_facts(email)
    is_free = map_unique(facts["email_domain"], is_free_domain, dtype="boolean")

    country_code = map_unique(clean_text(frame["country"]), country_code_of)
    state_code = map_unique(_keyed(country_code, clean_text(frame["state"])), state_code_of)
    # Distinct phones column-wise: the answers of map_unique(…, phone_e164_of), for about half its CPU per chunk.
    phone = phone_e164_series(_keyed(country_code, clean_text(frame["phone"])))

    title = map_unique_multi(clean_text(frame["title"]), classify_title, ("seniority", "department"))

    out = pd.DataFrame(
        {
            "email": email,
            "first_name": _names(clean_text(frame["first_name"]), _recase_first),
            "last_name": _names(clean_text(frame["last_name"]), recase_name),
            "company": clean_text(frame["company"]),
            "country_code": country_code,
            "state_code": state_code,
            "phone_e164": phone,
            "email_valid": facts["email_valid"],
            "email_domain": facts["email_domain"],
            "is_free_email": is_free,
            "seniority": title["seniority"].fillna("unknown"),
            "department": title["department"].fillna("other"),
            "created_at": normalize_timestamps(frame["created_at"]),
            "updated_at": normalize_timestamps(frame["updated_at"]),
        },
        index=frame.index,
    )
    return out[list(WRITES)]


STANDARDIZE = Stage(
    name="standardize",
    reads=READS,
    writes=WRITES,
    fn=standardize,
    description=(
        "Trim and case names; ISO 3166 country and state codes; E.164 phones; validate emails and flag free "
        "mail; bucket job titles into seniority and department; timestamps to ISO 8601 UTC."
    ),
)

__all__ = [
    "COUNTRY_ALIASES",
    "STANDARDIZE",
    "SUBDIVISION_ALIASES",
    "CountryData",
    "SubdivisionData",
    "classify_title",
    "clean_text",
    "country_code_of",
    "country_data",
    "country_table",
    "email_facts_of",
    "fallback_subdivision_table",
    "is_free_domain",
    "normalize_timestamps",
    "phone_e164_of",
    "recase_name",
    "standardize",
    "state_code_of",
    "subdivision_data",
    "subdivision_table",
]
