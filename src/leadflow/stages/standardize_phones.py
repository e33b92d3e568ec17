"""E.164 phones for the standardize stage: `phone_e164_of("<ISO country>\\x1f<phone text>")`.

The answer is defined by the reference algorithm `phone_e164_reference`: `phonenumbers.parse` with the lead's country
as default region (and again with a leading "00" read as "+"), kept when `is_valid_number_for_region` (own region) or
`is_valid_number` holds, written with `format_number(…, E164)`.

Most phone texts are plain: ASCII digits with spaces, dots, dashes, parentheses or slashes, an optional leading "+",
"tel:" or "(", and an optional " x123" / " ext. 12" extension. For these, everything `parse` does after finding the
number depends only on (region, leading plus, the digits), so `_Plain` re-runs those steps (country code after "+",
the region's international prefix, a country code typed without "+", national prefix stripping, length checks) and
the validity checks straight on the digit string with each region's metadata patterns compiled once, instead of
`parse`'s per-character Unicode normalisation and per-call pattern look-ups. Each step mirrors a named function of
phonenumbers/phonenumberutil.py (9.x). Anything else — letters (vanity numbers), Unicode digits, "++", other
extension spellings, fewer than 3 digits, a region phonenumbers does not know, metadata it does not expect — goes to
the reference algorithm itself. tests/test_standardize_phones.py compares both over 100k+ generated values.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS, PhoneMetadata, ValidationResult

from leadflow.stages.standardize_countries import _SEP

_E164 = phonenumbers.PhoneNumberFormat.E164
_INTERNATIONAL_00 = re.compile(r"^[^\d+]*00(?=[1-9])")
""""0049 30 …": 00 is the international call prefix in most of the world; NANP national numbers never start with 0."""


def phone_e164_reference(key: str) -> str | None:
    """E.164 form of `"<country_code>\\x1f<phone text>"`, parsed with the country as default region; None unless valid.

    The definition of the answer (and the path for every text `_PLAIN` does not take): `phonenumbers.parse` + validity
    + `format_number`. `phone_e164_of` gives the same answer, faster.
    """
    region, _, text = key.partition(_SEP)
    candidates = [text]
    if _INTERNATIONAL_00.match(text):
        candidates.append(_INTERNATIONAL_00.sub("+", text, count=1))
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region or None)
        except phonenumbers.NumberParseException:
            continue
        # Valid for the lead's own region implies valid; checking that first skips is_valid_number's scan of every
        # region sharing the calling code (25 for +1) in the common case.
        valid_here = bool(region) and phonenumbers.is_valid_number_for_region(number, region)
        if valid_here or phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, _E164)
    return None


# --------------------------------------------------------------------------------------------------- plain texts

_PLAIN: Final[re.Pattern[str]] = re.compile(
    r"(?:tel: ?)?[( ]*(\+)?([0-9 ().\-/]*[0-9])[ )]*(?: *(?:x|ext\.?) *[0-9]{1,9})?"
)
"""Texts whose parse depends only on (plus, digits). In them `_extract_possible_number` starts at the first digit or
"+" and keeps the rest (no "[\\/] *x" second number); the number is viable with 3+ digits (all these characters are
`_VALID_PUNCTUATION`); no `_EXTN_PATTERN` alternative can match before the " x"/" ext." part (each needs a letter,
"#", "~", "," or ";"), so the extension is stripped whole, and at most 9 digits keep it within every label's limit;
`_normalize` of what is left is its ASCII digits; there is no ";phone-context=" and no ";isub="."""
_FORMATTING: Final[dict[int, None]] = str.maketrans("", "", " ().-/")
_NON_MATCH: Final[re.Pattern[str]] = re.compile("NonMatch")
"""The international prefix phonenumbers uses for a region without one (and for no region)."""
_MAX_INPUT_STRING_LENGTH: Final[int] = 250
_MIN_LENGTH_FOR_NSN: Final[int] = 2
_MAX_LENGTH_FOR_NSN: Final[int] = 17
_MAX_LENGTH_COUNTRY_CODE: Final[int] = 3
_NOT_KEPT: Final[tuple[int, ...]] = (
    ValidationResult.TOO_SHORT, ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.INVALID_LENGTH,
)


class _Unsupported(Exception):
    """Metadata shaped in a way the fast path does not mirror: use the reference algorithm."""


class _NoNumber(Exception):
    """`parse` would raise NumberParseException (any type other than a retried INVALID_COUNTRY_CODE)."""


class _InvalidCountryCode(_NoNumber):
    """`parse`'s INVALID_COUNTRY_CODE from `_maybe_extract_country_code`: retried without the plus."""


class _Desc:
    """A PhoneNumberDesc: possible lengths (None = any) and its national number pattern, compiled once."""

    __slots__ = ("lengths", "pattern")

    def __init__(self, desc: object) -> None:
        lengths = getattr(desc, "possible_length", None) or ()
        self.lengths = frozenset(lengths) if lengths else None
        source = getattr(desc, "national_number_pattern", None)
        self.pattern = re.compile(source) if source else None

    def matches(self, number: str) -> bool:
        """`_match_national_number(number, desc, False)`: the pattern matches the whole number (lengths unchecked)."""
        return self.pattern is not None and self.pattern.fullmatch(number) is not None

    def matches_typed(self, number: str) -> bool:
        """`_is_number_matching_desc`: a possible length, and the pattern matches the whole number."""
        return (self.lengths is None or len(number) in self.lengths) and self.matches(number)


class _Meta:
    """One region's (or non-geographic calling code's) PhoneMetadata, reduced to what parsing and validity use."""

    def __init__(self, metadata: PhoneMetadata) -> None:
        general = metadata.general_desc
        if general is None or not general.possible_length:
            raise _Unsupported("no general description or possible lengths")
        self.country_code: int = metadata.country_code
        self.country_code_str = str(metadata.country_code)
        self.general = _Desc(general)
        self.possible = tuple(general.possible_length)
        self.local_only = frozenset(general.possible_length_local_only or ())
        idd = metadata.international_prefix
        self.idd = re.compile(idd if idd is not None else "NonMatch")
        prefix = metadata.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        self.transform = metadata.national_prefix_transform_rule
        self.leading_digits = re.compile(metadata.leading_digits) if metadata.leading_digits is not None else None
        # `_number_type_helper`'s order; mobile only when it is not the fixed-line pattern.
        kinds = [
            metadata.premium_rate, metadata.toll_free, metadata.shared_cost, metadata.voip,
            metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail, metadata.fixed_line,
        ]
        if not metadata.same_mobile_and_fixed_line_pattern:
            kinds.append(metadata.mobile)
        self.kinds = tuple(_Desc(kind) for kind in kinds if kind is not None)
        self._kinds_by_length: dict[int, re.Pattern[str] | None] = {}

    def is_valid(self, nsn: str) -> bool:
        """`_number_type_helper(nsn, metadata) != UNKNOWN`: the general description and one number type match."""
        if not self.general.matches_typed(nsn):
            return False
        kinds = self.kinds_of_length(len(nsn))
        return kinds is not None and kinds.fullmatch(nsn) is not None

    def kinds_of_length(self, size: int) -> re.Pattern[str] | None:
        """The number types possible at this length as one alternation (compiled once per length), or None."""
        try:
            return self._kinds_by_length[size]
        except KeyError:
            kinds = self._kinds_by_length[size] = self._kinds_of_length(size)
            return kinds

    def _kinds_of_length(self, size: int) -> re.Pattern[str] | None:
        # One alternation of the types possible at this length: it matches the whole number iff one of them does.
        sources = [
            kind.pattern.pattern for kind in self.kinds
            if kind.pattern is not None and (kind.lengths is None or size in kind.lengths)
        ]
        return re.compile("|".join(f"(?:{source})" for source in sources)) if sources else None

    def length_result(self, number: str) -> int:
        """`_test_number_length(number, metadata)` for an unknown number type."""
        size = len(number)
        if size in self.local_only:
            return ValidationResult.IS_POSSIBLE_LOCAL_ONLY
        possible = self.possible
        if possible[0] == size:
            return ValidationResult.IS_POSSIBLE
        if possible[0] > size:
            return ValidationResult.TOO_SHORT
        if possible[-1] < size:
            return ValidationResult.TOO_LONG
        return ValidationResult.IS_POSSIBLE if size in possible[1:] else ValidationResult.INVALID_LENGTH

    def strip_national_prefix(self, number: str) -> str:
        """The number `_maybe_strip_national_prefix_carrier_code` returns (the carrier code is not needed)."""
        prefix = self.national_prefix
        if not number or prefix is None:
            return number
        match = prefix.match(number)
        if not match:
            return number
        viable_original = self.general.matches(number)
        groups = match.groups()
        if not self.transform or groups[len(groups) - 1] is None:
            stripped = number[match.end():]
        else:
            stripped = prefix.sub(self.transform, number, count=1)
        if viable_original and not self.general.matches(stripped):
            return number
        return stripped


@cache
def _region_meta(region: str) -> _Meta | None:
    """`PhoneMetadata.metadata_for_region(region)`, reduced; None when phonenumbers has none."""
    metadata = PhoneMetadata.metadata_for_region(region, None)
    return None if metadata is None else _Meta(metadata)


@cache
def _nongeo_meta(country_code: int) -> _Meta | None:
    """`PhoneMetadata.metadata_for_nongeo_region(cc)` (calling codes of region "001", e.g. +800), reduced."""
    metadata = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
    return None if metadata is None else _Meta(metadata)


def _meta_for(country_code: int, region: str) -> _Meta | None:
    """`PhoneMetadata.metadata_for_region_or_calling_code(cc, region)`, reduced."""
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return _nongeo_meta(country_code)
    return _region_meta(region)


def _country_code_in(number: str) -> tuple[int, str]:
    """`_extract_country_code`: the calling code at the start of `number` and the rest, or (0, number)."""
    if not number or number[0] == "0":
        return 0, number
    for size in range(1, min(len(number), _MAX_LENGTH_COUNTRY_CODE) + 1):
        code = int(number[:size])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code, number[size:]
    return 0, number


def _extract_country_code(digits: str, plus: bool, meta: _Meta | None) -> tuple[int, str]:
    """`_maybe_extract_country_code` on a number whose normalised form is `digits` (after a "+" when `plus`)."""
    full = digits
    from_default = False
    if not plus:
        idd = (meta.idd if meta is not None else _NON_MATCH).match(digits)
        # `_parse_prefix_as_idd`: an IDD followed by a 0 is not one.
        if idd and not digits.startswith("0", idd.end()):
            full = digits[idd.end():]
        else:
            from_default = True
    if not from_default:
        if len(full) <= _MIN_LENGTH_FOR_NSN:
            raise _NoNumber("TOO_SHORT_AFTER_IDD")
        code, rest = _country_code_in(full)
        if code:
            return code, rest
        raise _InvalidCountryCode("INVALID_COUNTRY_CODE")
    if meta is not None and full.startswith(meta.country_code_str):
        national = meta.strip_national_prefix(full[len(meta.country_code_str):])
        if (not meta.general.matches(full) and meta.general.matches(national)) or (
            meta.length_result(full) == ValidationResult.TOO_LONG
        ):
            return meta.country_code, national
    return 0, ""



def _parse_plain(region: str, plus: bool, digits: str) -> tuple[int, str]:
    """(country code, national significant number) `parse` gives, from `_maybe_extract_country_code` on."""
    meta = _region_meta(region) if region else None
    try:
        code, national = _extract_country_code(digits, plus, meta)
    except _InvalidCountryCode:
        if not plus:
            raise
        code, national = _extract_country_code(digits, False, meta)
        if code == 0:
            raise _NoNumber("INVALID_COUNTRY_CODE after plus") from None
    if code != 0:
        # parse: metadata of the calling code's main region when it is not the default region (same object if it is)
        meta = _meta_for(code, COUNTRY_CODE_TO_REGION_CODE[code][0])
        if meta is None:
            raise _Unsupported("no metadata for the calling code")  # parse's own assert
    else:
        national = digits
        if meta is None:
            raise _Unsupported("no region")  # not reached: no region and no plus is refused before
        code = meta.country_code
    if len(national) < _MIN_LENGTH_FOR_NSN:
        raise _NoNumber("TOO_SHORT_NSN")
    stripped = meta.strip_national_prefix(national)
    if meta.length_result(stripped) not in _NOT_KEPT:
        national = stripped
    if len(national) < _MIN_LENGTH_FOR_NSN:
        raise _NoNumber("TOO_SHORT_NSN")
    if len(national) > _MAX_LENGTH_FOR_NSN:
        raise _NoNumber("TOO_LONG")
    # national_number = int(national) with Italian leading zeros recorded gives back exactly `national` as the NSN.
    return code, national


def _valid_for_region(code: int, nsn: str, region: str | None) -> bool:
    """`is_valid_number_for_region` of the number (code, nsn)."""
    if region is None:
        return False
    meta = _meta_for(code, region)
    if meta is None or (region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY and meta.country_code != code):
        return False
    return meta.is_valid(nsn)


def _is_valid(code: int, nsn: str) -> bool:
    """`is_valid_number` of the number (code, nsn): valid for the region `region_code_for_number` picks."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code)
    if regions is None:
        return False
    if len(regions) == 1:
        return _valid_for_region(code, nsn, regions[0])
    for region in regions:  # `_region_code_for_number_from_list`
        meta = _region_meta(region)
        if meta is None:
            continue
        if meta.leading_digits is not None:
            if meta.leading_digits.match(nsn):
                return _valid_for_region(code, nsn, region)
        elif meta.is_valid(nsn):
            return _valid_for_region(code, nsn, region)
    return False


def _plain_e164(region: str, plus: bool, digits: str) -> str | None:
    """The answer for one candidate text, or None when `parse` refuses it or the number is not valid."""
    try:
        code, nsn = _parse_plain(region, plus, digits)
    except _NoNumber:
        return None
    if (region and _valid_for_region(code, nsn, region)) or _is_valid(code, nsn):
        return f"+{code}{nsn}"
    return None


def phone_e164_of(key: str) -> str | None:
    """E.164 form of `"<country_code>\\x1f<phone text>"`, parsed with the country as default region; None unless valid.

    Same answer as `phone_e164_reference` for every key; plain texts take the fast path.
    """
    region, _, text = key.partition(_SEP)
    plain = _PLAIN.fullmatch(text)
    if plain is None or len(text) > _MAX_INPUT_STRING_LENGTH or (region and region not in SUPPORTED_REGIONS):
        return phone_e164_reference(key)
    plus = plain.group(1) is not None
    digits = plain.group(2).translate(_FORMATTING)
    if len(digits) < 3:
        return phone_e164_reference(key)
    try:
        if not region and not plus:
            answer = None  # `_check_region_for_parsing`: no default region needs a leading plus
        else:
            answer = _plain_e164(region, plus, digits)
        if answer is None and _INTERNATIONAL_00.match(text):
            # "+" + the text after "00" is plain too: a plus and the digits after the first two.
            if len(digits) - 2 < 3:  # too few digits to be sure of viability: let parse decide
                return phone_e164_reference(key)
            answer = _plain_e164(region, True, digits[2:])
        return answer
    except _Unsupported:
        return phone_e164_reference(key)


__all__ = ["phone_e164_of", "phone_e164_reference"]
