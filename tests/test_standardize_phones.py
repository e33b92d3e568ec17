"""phone_e164_of (fast path for plain texts) gives the same answer as the phonenumbers.parse algorithm it replaced.

`_old_phone_e164_of` is a private copy of the implementation before the fast path: the oracle. The equivalence test
runs both over 100k+ keys: every distinct (country, phone) of a messy-lead sample, phonenumbers' example numbers of
every region and number type in several formats, random digit strings with prefixes, and mutations of all of these
(spacing, punctuation, 00/011/+ prefixes, extensions, letters, too short/long, empty, Unicode digits, wrong region).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import cache

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from leadflow.pipeline.uniques import map_unique
from leadflow.stages import standardize_phones
from leadflow.stages.standardize import _keyed, clean_text
from leadflow.stages.standardize_countries import country_code_of
from leadflow.stages.standardize_phones import phone_e164_of
from leadflow.synth import messy_leads

_SEP = "\x1f"

# ------------------------------------------------------------------------------------------------ the oracle

_OLD_E164 = phonenumbers.PhoneNumberFormat.E164
_OLD_INTERNATIONAL_00 = re.compile(r"^[^\d+]*00(?=[1-9])")


def _old_phone_e164_of(key: str) -> str | None:
    """Verbatim copy of standardize.phone_e164_of before the fast path."""
    region, _, text = key.partition(_SEP)
    candidates = [text]
    if _OLD_INTERNATIONAL_00.match(text):
        candidates.append(_OLD_INTERNATIONAL_00.sub("+", text, count=1))
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region or None)
        except phonenumbers.NumberParseException:
            continue
        valid_here = bool(region) and phonenumbers.is_valid_number_for_region(number, region)
        if valid_here or phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, _OLD_E164)
    return None


# ------------------------------------------------------------------------------------------------ generated keys

_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_ODD_REGIONS = ("", "", "XK", "ZZ", "001", "us", "UK", "EU")
_TYPES = (
    PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER,
    PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL,
)
_FORMATS = (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.E164,
            PhoneNumberFormat.RFC3966)
_EXTENSIONS = (
    " x123", "x12", " x 7", " ext. 45", " ext 45", " ext.45", "ext.3", " EXT. 45", " Ext 9", " #45", " x1234567890",
    " ext. 123456789012345678901", ";ext=12", ",,12", ",12", " 503#", " - 12#", " int 5", " ~12", " xt 4",
    " extension 12", " x. 12", " / x12", "/x12", " x123 ", " x",
)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EDIT_ALPHABET = "0123456789 +-().x/#,;:abcEXT\u00a0\uff0b\u2013\uff10\u0661"
_DIGIT_SETS = ("０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗")


def _messy_keys(rows: int, seed: int) -> list[str]:
    frame = messy_leads(rows, seed=seed)
    country_code = map_unique(clean_text(frame["country"]), country_code_of, workers=1)
    return _keyed(country_code, clean_text(frame["phone"])).dropna().unique().tolist()


def _example_texts() -> list[tuple[str, str]]:
    """(region, text): each region's example numbers of each type, in each format."""
    out: list[tuple[str, str]] = []
    for region in _REGIONS:
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            out.extend((region, phonenumbers.format_number(number, fmt)) for fmt in _FORMATS)
            out.append((region, phonenumbers.national_significant_number(number)))
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(code)
        if number is not None:
            out.extend(("", phonenumbers.format_number(number, fmt)) for fmt in _FORMATS)
    return out


_IDDS = ("00", "011", "0011", "810", "001", "002", "009", "010", "012", "0015", "99", "119", "1", "0", "8")


def _prefixed_texts(rng: random.Random) -> list[tuple[str, str]]:
    """(region, text): example numbers behind international prefixes, a calling code without "+", a trunk 0."""
    out = []
    for region in _REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        idds = (*_IDDS, metadata.preferred_international_prefix or "00")
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            code, nsn = str(number.country_code), phonenumbers.national_significant_number(number)
            for _ in range(8):
                idd = rng.choice(idds)
                reader = rng.choice((region, region, rng.choice(_REGIONS), "US", "DE", "GB", ""))
                out.append((reader, rng.choice((idd + code + nsn, f"{idd} {code} {nsn}", idd + "0" + nsn))))
            out.extend((region, text) for text in (code + nsn, "0" + nsn, code + "0" + nsn, nsn[:-1], nsn + "1"))
    return out


def _random_digit_texts(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(region, text): random digits behind prefixes people type (+cc, 00, 011, 0, 1, trunk codes)."""
    out = []
    for _ in range(n):
        region = rng.choice(_REGIONS)
        code = str(phonenumbers.country_code_for_region(region))
        prefix = rng.choice(("", "", "0", "00", "011", "+", "+" + code, "00" + code, "+" + code + "0", code, "1",
                             "8", "+0", "0" + code, "15", "9"))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 16)))
        out.append((rng.choice((region, region, region, rng.choice(_REGIONS), rng.choice(_ODD_REGIONS))),
                    prefix + digits))
    return out


def _digits_in(text: str) -> list[int]:
    return [i for i, ch in enumerate(text) if ch.isdigit()]


def _regroup(rng: random.Random, text: str) -> str:
    """Same characters but digits regrouped with one separator style."""
    digits = re.sub(r"\D", "", text)
    lead = "+" if text.lstrip("( ").startswith("+") else ""
    sep = rng.choice((" ", "-", ".", "/", "", "  ", " - ", "\u00a0", "\u2013", ") "))
    parts, i = [], 0
    while i < len(digits):
        size = rng.randint(1, 4)
        parts.append(digits[i:i + size])
        i += size
    return lead + sep.join(parts)


_Mutation = Callable[[random.Random, str], str]


def _mutations() -> tuple[_Mutation, ...]:
    def replace_digit_run(rng: random.Random, text: str, fn: Callable[[str], str]) -> str:
        places = _digits_in(text)
        if not places:
            return text
        k = rng.randint(1, min(4, len(places)))
        chosen = set(places[-k:])
        return "".join(fn(ch) if i in chosen else ch for i, ch in enumerate(text))

    def unicode_digits(rng: random.Random, text: str) -> str:
        digits = rng.choice(_DIGIT_SETS)
        every = rng.random() < 0.5
        return "".join(digits[int(ch)] if ch in "0123456789" and (every or rng.random() < 0.3) else ch
                       for ch in text)

    def random_edit(rng: random.Random, text: str) -> str:
        for _ in range(rng.randint(1, 3)):
            i = rng.randint(0, len(text))
            op = rng.randint(0, 2)
            ch = rng.choice(_EDIT_ALPHABET)
            text = text[:i] + ch + text[i:] if op == 0 or not text else (
                text[:i] + text[i + 1:] if op == 1 else text[:i] + ch + text[i + 1:])
        return text

    return (
        lambda rng, t: t.replace(" ", ""),
        lambda rng, t: t.replace(" ", "  "),
        lambda rng, t: " ".join(t.replace(" ", "")),
        lambda rng, t: re.sub(r"[ .\-/]", rng.choice((".", "-", "/", " ", "\u00a0", "\u2011", "")), t),
        lambda rng, t: re.sub(r"^(\+?\d+)[ .\-]?", lambda m: f"({m.group(1)}) ", t, count=1),
        lambda rng, t: "(" + t + ")",
        _regroup,
        lambda rng, t: t.replace("+", "00", 1),
        lambda rng, t: t.replace("+", "011 ", 1),
        lambda rng, t: t.replace("+", "", 1),
        lambda rng, t: t.replace("+", "++", 1),
        lambda rng, t: t.replace("+", "+00", 1),
        lambda rng, t: t.replace("+", "\uff0b", 1),
        lambda rng, t: t.replace("+", "+ ", 1),
        lambda rng, t: "+" + t,
        lambda rng, t: "00" + t,
        lambda rng, t: "00 " + t,
        lambda rng, t: "0" + t,
        lambda rng, t: "1" + t,
        lambda rng, t: re.sub(r"^00", "+", t),
        lambda rng, t: t + rng.choice(_EXTENSIONS),
        lambda rng, t: rng.choice(("tel:", "tel: ", "TEL:", "Tel: ", "Phone: ", "( ", "ph ", "#", "-", ":"))
        + t,
        lambda rng, t: t + rng.choice((")", ".", " -", " ", "#", "!", ";", "; ", "a")),
        lambda rng, t: replace_digit_run(rng, t, lambda ch: rng.choice(_LETTERS)),
        lambda rng, t: t + rng.choice(("CALL", "FLOWERS", "abc", "x", "ab")),
        lambda rng, t: t[: max(0, len(t) - rng.randint(1, 6))],
        lambda rng, t: t + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6))),
        lambda rng, t: t[rng.randint(1, 4):],
        unicode_digits,
        random_edit,
        random_edit,
        lambda rng, t: rng.choice(("", " ", "+", "00", "0", "x", "tel:", "-", "()", "+1", "1", "12", "123")),
        lambda rng, t: t + ";phone-context=+1" if rng.random() < 0.5 else "tel:" + t + ";isub=12",
    )


@cache
def _equivalence_keys(seed: int = 20240611) -> list[str]:
    rng = random.Random(seed)
    messy = _messy_keys(20_000, seed=11)
    base = [tuple(k.split(_SEP, 1)) for k in messy] + _example_texts() + _prefixed_texts(rng)
    base += _random_digit_texts(rng, 20_000)
    keys = list(messy)
    keys.extend(region + _SEP + text for region, text in base[len(messy):])
    mutations = _mutations()
    for _ in range(55_000):
        region, text = rng.choice(base)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            text = rng.choice(mutations)(rng, text)
        roll = rng.random()
        if roll < 0.15:  # wrong region: another supported one, none, or one phonenumbers does not know
            region = rng.choice(_REGIONS)
        elif roll < 0.2:
            region = rng.choice(_ODD_REGIONS)
        keys.append(region + _SEP + text)
    return list(dict.fromkeys(keys))


def test_same_answer_as_the_parse_algorithm_on_100k_generated_values() -> None:
    keys = _equivalence_keys()
    assert len(keys) > 100_000
    differ = [(key, old, new) for key in keys if (old := _old_phone_e164_of(key)) != (new := phone_e164_of(key))]
    assert differ == [], f"{len(differ)} of {len(keys)} differ, e.g. {differ[:10]}"


def test_generated_values_exercise_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equivalence test means something: most values take the fast path, with valid and refused answers."""
    keys = _equivalence_keys()[::10]
    slow: list[str] = []
    reference = standardize_phones.phone_e164_reference

    def counted(key: str) -> str | None:
        slow.append(key)
        return reference(key)

    monkeypatch.setattr(standardize_phones, "phone_e164_reference", counted)
    answers = [phone_e164_of(key) for key in keys]
    fast = len(keys) - len(slow)
    fast_valid = sum(a is not None for a in answers) - sum(reference(k) is not None for k in slow)
    assert fast > 0.6 * len(keys)
    assert 0.2 * fast < fast_valid < 0.95 * fast
    assert len(slow) > 0.05 * len(keys)


# ------------------------------------------------------------------------------------------------ small cases


@pytest.mark.parametrize(
    ("region", "text", "e164"),
    [
        ("US", "(415) 555-2671", "+14155552671"),
        ("US", "415.555.2671 x123", "+14155552671"),
        ("US", "+1 (415) 555-2671 ext. 5", "+14155552671"),
        ("US", "tel: +1-415-555-2671", "+14155552671"),
        ("US", "14155552671", "+14155552671"),  # calling code typed without "+"
        ("US", "+1 415 555 2671 #12", "+14155552671"),  # extension spellings the fast path leaves to parse
        ("US", "415 555 2671 / x12", "+14155552671"),
        ("US", "+1 415 555 2671 x1234567890", None),  # too long for an extension: its digits join the number
        ("US", "1-800-FLOWERS", "+18003569377"),  # vanity letters
        ("US", "４１５５５５２６７１", "+14155552671"),  # full-width digits
        ("GB", "020 7946 0958", "+442079460958"),
        ("GB", "+44 (0)20 7946 0958", "+442079460958"),
        ("DE", "0049 30 1234567", "+49301234567"),  # 00 is Germany's international prefix
        ("US", "0049 30 1234567", "+49301234567"),  # not the US's (011): the "00" → "+" retry
        ("", "0049 30 1234567", "+49301234567"),
        ("US", "00 44 20 7946 0958", None),  # "00 " is not followed by a digit: no retry
        ("US", "011 44 20 7946 0958", "+442079460958"),
        ("DE", "+0049 30 1234567", "+49301234567"),  # no calling code 0: read again without the plus
        ("DE", "4930 1234567", "+49301234567"),
        ("US", "++44 20 7946 0958", "+442079460958"),
        ("IT", "06 1234 5678", "+390612345678"),  # Italian leading zero kept
        ("", "+39 06 1234 5678", "+390612345678"),
        ("AR", "011 15 2345-6789", "+5491123456789"),  # national prefix transform rule (mobile 15 → 9)
        ("BR", "0 21 11 91234-5678", "+5511912345678"),  # carrier code stripped
        ("FR", "0033 6 12 34 56 78", "+33612345678"),
        ("JP", "03-1234-5678", "+81312345678"),
        ("CA", "416-555-0199", "+14165550199"),
        ("US", "416-555-0199", "+14165550199"),  # valid for Canada, not the lead's region: still valid
        ("", "+800 1234 5678", "+80012345678"),  # non-geographic calling code
        ("XK", "+383 44 123 456", "+38344123456"),
        ("ZZ", "+44 20 7946 0958", "+442079460958"),  # a region phonenumbers does not know
        ("ZZ", "020 7946 0958", None),
        ("", "4155552671", None),  # no country, no "+": the region is unknown
        ("MX", "044 55 1234 5678", None),
        ("US", "", None),
        ("US", "12", None),
        ("US", "123", None),
        ("US", "n/a", None),
        ("US", "+1 000 000 0000", None),
    ],
)
def test_phone_e164(region: str, text: str, e164: str | None) -> None:
    key = region + _SEP + text
    assert phone_e164_of(key) == e164
    assert _old_phone_e164_of(key) == e164
