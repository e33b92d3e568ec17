"""Country and subdivision codes for the standardize stage: free text → ISO 3166-1 alpha-2 and ISO 3166-2 codes.

The lookup tables are built once per process from pycountry (with its translations), Babel's CLDR territory names in
the common locales and the alias data under leadflow/reference/ (country_aliases.yaml, subdivision_aliases.yaml); a
name that means more than one code maps to None, so an ambiguous value comes out empty rather than guessed. A country
no name matches gets a conservative typo repair (`repaired_country_code`): only when one country is clearly meant.
Also here: the text keys the tables are matched on, and the accent/punctuation helpers title matching in
leadflow.stages.standardize shares. Everything public is re-exported there, which remains the import path for the
stage's callers.
"""

from __future__ import annotations

import gettext
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Final

import babel
import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rapidfuzz import process
from rapidfuzz.distance import OSA

from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.yamlio import load_yaml, parse_model

COUNTRY_ALIASES: Final[Path] = REFERENCE_DIR / "country_aliases.yaml"
SUBDIVISION_ALIASES: Final[Path] = REFERENCE_DIR / "subdivision_aliases.yaml"

_SEP: Final[str] = "\x1f"
"""Joins a country code and a value into one key, so (country, value) pairs are computed once each."""


# --------------------------------------------------------------------------------------------------- reference data


def _check_alpha2(code: str) -> str:
    value = code.strip().upper()
    if pycountry.countries.get(alpha_2=value) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 code")
    return value


class CountryData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    languages: list[str] = Field(default_factory=list)
    cldr_locales: list[str] = Field(default_factory=list)
    placeholders: list[str] = Field(default_factory=list)
    ambiguous: list[str] = Field(default_factory=list)
    aliases: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for language in value:
            if gettext.find("iso3166-1", pycountry.LOCALES_DIR, languages=[language]) is None:
                raise ValueError(f"pycountry has no iso3166-1 translation for language {language!r}")
        return value

    @field_validator("cldr_locales")
    @classmethod
    def _cldr_locales(cls, value: list[str]) -> list[str]:
        for locale in value:
            try:
                babel.Locale.parse(locale)
            except (ValueError, babel.UnknownLocaleError):
                raise ValueError(f"Babel has no CLDR locale {locale!r}") from None
        return value

    @field_validator("aliases")
    @classmethod
    def _codes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {_check_alpha2(code): names for code, names in value.items()}


class SubdivisionData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    fallback_countries: list[str] = Field(default_factory=list)
    aliases: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("fallback_countries")
    @classmethod
    def _fallback(cls, value: list[str]) -> list[str]:
        return [_check_alpha2(code) for code in value]

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for country, names in value.items():
            cc = _check_alpha2(country)
            for name, code in names.items():
                if pycountry.subdivisions.get(code=f"{cc}-{code}") is None:
                    raise ValueError(f"{name!r}: {cc}-{code} is not an ISO 3166-2 subdivision")
            out[cc] = names
        return out


# ------------------------------------------------------------------------------------------------ text normalising

_APOSTROPHES = re.compile("['\u2019\u2018`\u00b4\u02bc]")
_ABBREVIATION_DOT = re.compile(r"(?<=\b\w)\.")
"""A dot after a one-letter word: "U.S.A." → "USA", "C.E.O." → "CEO", while "Sr.Engineer" keeps a word break."""
_ASCII_PUNCTUATION = re.compile(r"[^a-z0-9]+")
_COMBINING = re.compile("[\u0300-\u036f]")
"""Latin/Greek/Cyrillic diacritics only; vowel signs of other scripts are letters, not accents."""


def _strip_accents(text: str) -> str:
    return unicodedata.normalize("NFC", _COMBINING.sub("", unicodedata.normalize("NFD", text)))


class _SpacedPunctuation(dict[int, str]):
    """`str.translate` table: a punctuation, symbol, separator or control character (Unicode category P, S, Z or C)
    → " ", any other character → itself; each character's category looked up once."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = self[code] = " " if unicodedata.category(char)[0] in "PSZC" else char
        return value


_SPACED: Final[_SpacedPunctuation] = _SpacedPunctuation()


def _punctuation_to_space(text: str) -> str:
    if text.isascii():
        return _ASCII_PUNCTUATION.sub(" ", text)
    return text.translate(_SPACED)


def _name_key(text: str) -> str:
    """Key for country and subdivision names: case, spacing, punctuation, "the" and "st." do not matter."""
    s = unicodedata.normalize("NFKC", text).casefold().replace("&", " and ")
    s = _ABBREVIATION_DOT.sub("", _APOSTROPHES.sub("", s))
    words = _punctuation_to_space(s).split()
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    if len(words) > 1 and words[-1] == "the":
        words = words[:-1]
    return " ".join("saint" if w == "st" else w for w in words)


def _key_variants(text: str) -> set[str]:
    key = _name_key(text)
    bare = _strip_accents(key)
    # Short unaccented forms collide with codes and words ("Čad" → "cad"); keep only longer ones.
    return {key, bare if len(bare) >= 4 else key} - {""}


def _has_letter(text: str) -> bool:
    return any(c.isalpha() for c in text)


# ------------------------------------------------------------------------------------------------------- countries


def _english_names(country: object) -> Iterator[str]:
    for attr in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
        value = getattr(country, attr, None)
        if not value:
            continue
        yield value
        if attr in ("alpha_2", "alpha_3"):
            continue
        # "Korea, Republic of" → "Republic of Korea" and "Korea"; "Holy See (Vatican City State)" → both halves.
        # A short form two countries share ("Korea", "Congo") is dropped as ambiguous when the table is built.
        head, comma, tail = value.partition(", ")
        if comma:
            yield head
            yield f"{tail} {head}"
        bare = re.sub(r"\s*\([^)]*\)", "", value)
        if bare != value:
            yield bare
            yield from (inner for inner in re.findall(r"\(([^)]*)\)", value) if not inner.endswith(" part"))


def _translated_names(languages: Iterable[str]) -> Iterator[tuple[str, str]]:
    for language in languages:
        translation = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for country in pycountry.countries:
            for attr in ("name", "official_name", "common_name"):
                value = getattr(country, attr, None)
                if value:
                    yield translation.gettext(value), country.alpha_2


_PARENTHESISED = re.compile(r"\s*[(\uff08][^)\uff09]*[)\uff09]")
"""A parenthesised part, ASCII or full-width: "Myanmar (Burma)", "刚果（金）"."""


def cldr_territory_names(locale: str) -> dict[str, str]:
    """CLDR territory code → name in `locale` (Babel's `Locale.territories`), regions and non-ISO codes included."""
    return dict(babel.Locale.parse(locale).territories)


def _cldr_names(locales: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """(name, alpha-2) for CLDR territory names; territories without an ISO 3166-1 code (regions such as "Europe",
    "EU", "Kosovo", "Canary Islands") map to None, so they never resolve and block typo repair towards a country."""
    iso = _iso_alpha2()
    for locale in locales:
        for code, name in cldr_territory_names(locale).items():
            alpha2 = code if code in iso else None
            yield name, alpha2
            # "Myanmar (Burma)" → "Myanmar"; "刚果（金）" → "刚果", which CD and CG share and so comes out ambiguous.
            bare = _PARENTHESISED.sub("", name)
            if bare and bare != name:
                yield bare, alpha2


@cache
def _iso_alpha2() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


def _add_layer(table: dict[str, str | None], pairs: Iterable[tuple[str, str | None]],
               variants: dict[str, set[str]] | None = None) -> None:
    """Add names of one precedence layer; earlier layers win, a key meaning two codes within a layer is blocked.
    `variants`: `_key_variants` of names seen before (filled here), so a name repeated across layers, locales and
    languages is keyed once."""
    variants = {} if variants is None else variants
    layer: dict[str, set[str | None]] = defaultdict(set)
    for name, code in pairs:
        keys = variants.get(name)
        if keys is None:
            keys = variants[name] = _key_variants(name)
        for key in keys:
            layer[key].add(code)
    for key, codes in layer.items():
        if key not in table:
            table[key] = next(iter(codes)) if len(codes) == 1 else None


@cache
def country_data() -> CountryData:
    """The country alias data (reference/country_aliases.yaml), validated."""
    return parse_model(CountryData, load_yaml(COUNTRY_ALIASES), COUNTRY_ALIASES)


@cache
def _country_tables() -> tuple[dict[str, str | None], frozenset[str]]:
    """(the country table, the keys typo repair aims at: all but pycountry's translations, see _typo_candidates)."""
    data = country_data()
    table: dict[str, str | None] = {}
    seen: dict[str, set[str]] = {}
    _add_layer(table, ((name, None) for name in data.placeholders), seen)
    _add_layer(table, ((name, None) for name in data.ambiguous), seen)
    _add_layer(table, ((name, code) for code, names in data.aliases.items() for name in names), seen)
    _add_layer(table, ((name, c.alpha_2) for c in pycountry.countries for name in _english_names(c)), seen)
    _add_layer(table, _cldr_names(data.cldr_locales), seen)
    typo_keys = frozenset(table)
    _add_layer(table, _translated_names(data.languages), seen)
    return table, typo_keys


@cache
def _code_name_clashes() -> frozenset[str]:
    """Keys of ISO alpha-3 codes that are also another country's CLDR name: Vietnamese "Nga" (Russia) is NGA
    (Nigeria). Typed in capitals it is read as the code; otherwise it means two countries and comes out empty."""
    codes = {c.alpha_3.lower(): c.alpha_2 for c in pycountry.countries}
    clashes = set()
    for name, alpha2 in _cldr_names(country_data().cldr_locales):
        key = _name_key(name)
        if key in codes and alpha2 is not None and alpha2 != codes[key]:
            clashes.add(key)
    return frozenset(clashes)


def country_table() -> dict[str, str | None]:
    """Normalised name → alpha-2 code, or None for names known to mean no single country. Built once per process."""
    return _country_tables()[0]


# ---------------------------------------------------------------------------------------------------- typo repair

TYPO_MIN_LENGTH: Final[int] = 5
"""Shortest typed value, and shortest country name, typo repair considers: "Irann" is not repaired to Iran."""
_BLOCKER_MIN_LENGTH: Final[int] = 4
"""Shorter table keys are codes ("deu", "us"): too short to say anything about a five-letter typo."""
_NO_VALUE: Final = object()


def _typo_budget(key: str) -> int:
    """Edits (optimal string alignment: a swap of neighbours is one) allowed between a typo and the name it means."""
    return 1 if len(key) <= 8 else 2


@cache
def _typo_candidates() -> tuple[list[str], list[str | None], list[bool]]:
    """(keys, their codes, whether each may be a repair target) of the Latin-script names a typo may be aimed at.

    Those are the names people type: aliases, placeholders, English names and the CLDR names of the common locales.
    pycountry's translations into further languages still resolve when typed exactly, but they are no aim for typos:
    "Austrai" is Austria misspelt, not Albanian "Australi" (Australia).
    """
    table, typo_keys = _country_tables()
    keys: list[str] = []
    codes: list[str | None] = []
    targets: list[bool] = []
    for key, code in table.items():
        if key in typo_keys and key.isascii() and len(key) >= _BLOCKER_MIN_LENGTH:
            keys.append(key)
            codes.append(code)
            targets.append(code is not None and len(key) >= TYPO_MIN_LENGTH)
    return keys, codes, targets


def repaired_country_code(key: str) -> str | None:
    """Code of the one country name a misspelt key (not in the table) is clearly a typo of; None when unsure.

    Only plain-Latin keys of TYPO_MIN_LENGTH letters or more; the nearest name must be within the edit budget (1
    edit up to 8 characters, 2 beyond), and every name meaning something else (another country, a placeholder, an
    ambiguous or non-country name such as "Korea" or "Europe") must be at least twice as many edits away. So
    "Germnay" → DE and "Austrai" → AT (Australia is 2 edits off), but "Austrlia" (one edit from Austria and from
    Australia), "Nigera" (Niger or Nigeria) and "Malia" (Mali or Malta) stay empty: an empty country beats a wrong one.
    """
    if not key.isascii() or len(key) < TYPO_MIN_LENGTH or not key.replace(" ", "").isalpha():
        return None
    budget = _typo_budget(key)
    keys, codes, targets = _typo_candidates()
    nearest: dict[object, int] = {}
    repairable: dict[object, bool] = {}
    for _, distance, index in process.extract(key, keys, scorer=OSA.distance, score_cutoff=2 * budget, limit=None):
        meaning = codes[index] if codes[index] is not None else _NO_VALUE
        if distance < nearest.get(meaning, 2 * budget + 1):
            nearest[meaning] = distance
            repairable[meaning] = targets[index]
        elif distance == nearest[meaning]:
            repairable[meaning] = repairable[meaning] or targets[index]
    ranked = sorted(nearest.items(), key=lambda item: item[1])
    if not ranked:
        return None
    best, best_distance = ranked[0]
    runner_up_distance = ranked[1][1] if len(ranked) > 1 else 2 * budget + 1
    if best is _NO_VALUE or not repairable[best] or best_distance > budget or runner_up_distance < 2 * best_distance:
        return None
    return str(best)


def country_code_of(value: str) -> str | None:
    """ISO 3166-1 alpha-2 code for a free-text country, or None when it is missing, junk or ambiguous.

    A value no name matches is tried as a typo (`repaired_country_code`); the stage calls this once per distinct value.
    """
    if not _has_letter(value):
        return None
    table = country_table()
    key = _name_key(value)
    if key in _code_name_clashes() and not value.strip().isupper():
        return None
    if key in table:
        return table[key]
    bare = _strip_accents(key)
    if bare in table:
        return table[bare]
    return repaired_country_code(bare)


# ---------------------------------------------------------------------------------------------------- subdivisions


@cache
def subdivision_data() -> SubdivisionData:
    """The subdivision alias data (reference/subdivision_aliases.yaml), validated."""
    return parse_model(SubdivisionData, load_yaml(SUBDIVISION_ALIASES), SUBDIVISION_ALIASES)


@cache
def _subdivision_english() -> gettext.NullTranslations:
    return gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["en"], fallback=True)


@cache
def subdivision_table(country_code: str) -> dict[str, str | None]:
    """Normalised subdivision name or code → code without the country prefix, for one country."""
    table: dict[str, str | None] = {}
    aliases = subdivision_data().aliases.get(country_code, {})
    _add_layer(table, aliases.items())
    english = _subdivision_english()
    pairs: list[tuple[str, str | None]] = []
    for sub in pycountry.subdivisions.get(country_code=country_code) or ():
        code = sub.code.split("-", 1)[1]
        pairs += [(code, code), (sub.name, code), (english.gettext(sub.name), code)]
    _add_layer(table, pairs)
    return table


@cache
def fallback_subdivision_table() -> dict[str, str | None]:
    """Names and codes that mean one subdivision across all fallback countries (US, CA, AU), for leads without one."""
    meanings: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for country in subdivision_data().fallback_countries:
        for key, code in subdivision_table(country).items():
            meanings[key].add((country, code) if code else (country, ""))
    table: dict[str, str | None] = {}
    for key, options in meanings.items():
        (_, code), *others = options
        table[key] = code if code and not others else None
    return table


def state_code_of(key: str) -> str | None:
    """Subdivision code (no country prefix) for `"<country_code>\\x1f<state text>"`; None unless unambiguous."""
    country, _, state = key.partition(_SEP)
    if not _has_letter(state) and not any(c.isdigit() for c in state):
        return None
    table = subdivision_table(country) if country else fallback_subdivision_table()
    name = _name_key(state)
    if name in table:
        return table[name]
    return table.get(_strip_accents(name))


__all__ = [
    "COUNTRY_ALIASES",
    "SUBDIVISION_ALIASES",
    "CountryData",
    "SubdivisionData",
    "country_code_of",
    "country_data",
    "cldr_territory_names",
    "country_table",
    "fallback_subdivision_table",
    "repaired_country_code",
    "state_code_of",
    "subdivision_data",
    "subdivision_table",
]
