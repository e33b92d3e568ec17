"""E.164 phones for many keys at once: `phone_e164_bulk(keys)` == `[phone_e164_of(key) for key in keys]`, cheaper.

`phone_e164_of` parses plain texts (`_PLAIN`) without `phonenumbers.parse`, but still with one Python call per
distinct key (~4 µs; ~850k keys over a 1M-lead file's 50k-row chunks). Here the same steps run column-wise
(pyarrow.compute's RE2 and numpy) over groups of keys that share their metadata: the lead's region for the
international prefix and a calling code typed without "+", the calling code's main region (or the lead's) for national
prefix stripping and lengths, the lead's region and then the calling code's regions for validity. Each step is the
column-wise twin of the standardize_phones.py function of the same name, which mirrors phonenumbers step by step.

A key leaves the column-wise path for `phone_e164_of` (so its answer is exact by construction) wherever a step is not
mirrored here: not plain, a region phonenumbers does not know or `_Meta` refuses, fewer than 3 digits, a "+" not
followed by a calling code (parse retries without it), a non-geographic calling code, a national prefix transform
rule that may apply, a pattern RE2 refuses, a group too small to be worth the per-call overhead, and every key whose
answer would be None while its text starts with "00" (`phone_e164_of` then retries with "+").

RE2 and Python's `re` agree on these patterns: they are regular (RE2 refuses any that is not, and its keys go per
key), both take the leftmost-first match (what `match` + `end()` and the anchored replace see), RE2's `$` is the end
of the text, and every string matched here is ASCII digits, so `\\d` means [0-9] for both.
tests/test_standardize_phones_bulk.py compares the answers with `phone_e164_reference` over 100k+ generated keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from typing import Final, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    REGION_CODE_FOR_NON_GEO_ENTITY,
    SUPPORTED_REGIONS,
    ValidationResult,
)

from leadflow.stages.standardize_phones import (
    _MAX_INPUT_STRING_LENGTH,
    _MAX_LENGTH_FOR_NSN,
    _MIN_LENGTH_FOR_NSN,
    _NOT_KEPT,
    _Meta,
    _region_meta,
    _Unsupported,
    phone_e164_of,
)

_KEY: Final[str] = (
    r"^(?:[A-Z]{2})?\x1f(?:tel: ?)?[( ]*\+?[0-9 ().\-/]*[0-9][ )]*(?: *(?:x|ext\.?) *[0-9]{1,9})?$"
)
"""`"<region>\\x1f<text>"` with a text `_PLAIN` fullmatches (the same pattern) and a region of 0 or 2 capitals (so
the first "\\x1f" is `key.partition`'s). In such a text a "+" is the plus group, the first "x" is in the extension
(after every digit of the number), and the digits before it are exactly those of `_PLAIN`'s group 2."""
_MAYBE_00: Final[str] = r"^[^\x1f]*\x1f[^0-9+]*00"
"""A superset of `_INTERNATIONAL_00` on plain texts (RE2 has no lookahead): the keys `phone_e164_of` may retry."""
_MIN_GROUP: Final[int] = 128
"""Below this many keys a group costs more in per-call overhead than the per-key path: it takes `phone_e164_of`."""
_TOO_LONG: Final[int] = ValidationResult.TOO_LONG

_REGIONS: Final[tuple[str, ...]] = ("", *sorted(SUPPORTED_REGIONS), REGION_CODE_FOR_NON_GEO_ENTITY)
"""Regions by id: 0 is no region; the last is "001", whose keys always go per key."""
_ID: Final[dict[str, int]] = {region: i for i, region in enumerate(_REGIONS)}
_NONGEO: Final[int] = len(_REGIONS) - 1
_IS_CODE: Final[np.ndarray] = np.zeros(1000, dtype=bool)
_IS_CODE[list(COUNTRY_CODE_TO_REGION_CODE)] = True
_MAIN: Final[np.ndarray] = np.full(1000, _NONGEO, dtype=np.int64)
"""Id of each calling code's main region, the metadata `parse` uses for a number with that code."""
for _code, _regions in COUNTRY_CODE_TO_REGION_CODE.items():
    _MAIN[_code] = _ID.get(_regions[0], _NONGEO)


class _Slow(Exception):
    """This group's step is not mirrored column-wise (RE2 refused a pattern, metadata not mirrored): per key."""


class _Parsed(NamedTuple):
    """Keys still on the column-wise path: position in the keys, lead's region id, calling code, national number so
    far, and id of the region whose metadata `parse` reads it with."""

    rows: np.ndarray
    region: np.ndarray
    code: np.ndarray
    number: pa.Array
    meta: np.ndarray

    def take(self, at: np.ndarray) -> _Parsed:
        return _Parsed(self.rows[at], self.region[at], self.code[at], self.number.take(pa.array(at)), self.meta[at])


def _concat(parts: list[_Parsed]) -> _Parsed:
    return _Parsed(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("rows", "region", "code")),
                   pa.concat_arrays([p.number for p in parts]), np.concatenate([p.meta for p in parts]))


# --------------------------------------------------------------------------------------------------- helpers


def _groups(labels: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(label, positions) for each distinct integer label, positions ascending."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for chunk in np.split(order, bounds) if len(order) else ():
        yield int(labels[chunk[0]]), chunk


def _np(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _lengths(strings: pa.Array) -> np.ndarray:
    return _np(pc.binary_length(strings)).astype(np.int64)  # ASCII digits: bytes are characters


def _among(values: np.ndarray, allowed: Iterable[int]) -> np.ndarray:
    """`np.isin` for small non-negative ints (lengths, length results), by a lookup table: called per group."""
    table = np.zeros(max(allowed, default=0) + 2, dtype=bool)
    table[list(allowed)] = True
    return table[np.minimum(values, len(table) - 1)]


def _search(strings: pa.Array, pattern: str) -> np.ndarray:
    try:
        return _np(pc.match_substring_regex(strings, pattern)).astype(bool)
    except pa.ArrowInvalid as error:  # a pattern RE2 does not take
        raise _Slow(str(error)) from None


def _full(strings: pa.Array, pattern: object) -> np.ndarray:
    """`pattern.fullmatch(s) is not None` per string (False for every string when there is no pattern)."""
    if pattern is None:
        return np.zeros(len(strings), dtype=bool)
    return _search(strings, f"^(?:{pattern.pattern})$")  # type: ignore[attr-defined]


def _strip_start(strings: pa.Array, pattern: object) -> pa.Array:
    """`s[pattern.match(s).end():]`, or `s` where it does not match."""
    try:
        source = pattern.pattern  # type: ignore[attr-defined]
        return pc.replace_substring_regex(strings, f"^(?:{source})", "", max_replacements=1)
    except pa.ArrowInvalid as error:
        raise _Slow(str(error)) from None


def _digits_between(array: pa.StringArray, starts: np.ndarray, ends: np.ndarray) -> pa.StringArray:
    """Per string, its ASCII digits at byte positions [start, end): numpy over the data buffer, no per-row work."""
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset:array.offset + n + 1].astype(np.int64)
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    size = int(offsets[-1]) + 1
    begin, end = offsets[:-1] + starts, offsets[:-1] + np.maximum(ends, starts)
    inside = np.cumsum(np.bincount(begin, minlength=size) - np.bincount(end, minlength=size))[: size - 1] > 0
    data = data[: size - 1]
    keep = inside & (data >= ord("0")) & (data <= ord("9"))
    kept_before = np.concatenate(([0], np.cumsum(keep)))
    new_offsets = (kept_before[offsets] - kept_before[offsets[0]]).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(data[keep].tobytes()))


# ------------------------------------------------------------------------------------- column-wise metadata steps


def _general(meta: _Meta, numbers: pa.Array) -> np.ndarray:
    """`meta.general.matches` per number."""
    return _full(numbers, meta.general.pattern)


def _length_result(meta: _Meta, lengths: np.ndarray) -> np.ndarray:
    """`meta.length_result` per number length (same branch order)."""
    possible = np.asarray(meta.possible)
    return np.select(
        [
            _among(lengths, meta.local_only),
            lengths == possible[0],
            lengths < possible[0],
            lengths > possible[-1],
            _among(lengths, meta.possible[1:]),
        ],
        [
            ValidationResult.IS_POSSIBLE_LOCAL_ONLY, ValidationResult.IS_POSSIBLE, ValidationResult.TOO_SHORT,
            _TOO_LONG, ValidationResult.IS_POSSIBLE,
        ],
        ValidationResult.INVALID_LENGTH,
    )


def _strip_national_prefix(meta: _Meta, numbers: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(`meta.strip_national_prefix` per number, where that needs the per-key path: a transform rule may apply)."""
    prefix = meta.national_prefix
    if prefix is None:
        return numbers, np.zeros(len(numbers), dtype=bool)
    slow = _search(numbers, f"^(?:{prefix.pattern})") if meta.transform else np.zeros(len(numbers), dtype=bool)
    stripped = _strip_start(numbers, prefix)
    # Only a number that lost digits can differ; one the general pattern took is kept whole when what is left is
    # one the pattern does not take.
    changed = np.flatnonzero(_lengths(stripped) != _lengths(numbers))
    if not len(changed):
        return numbers, slow
    before, after = numbers.take(pa.array(changed)), stripped.take(pa.array(changed))
    keep = np.zeros(len(numbers), dtype=bool)
    keep[changed] = _general(meta, before) & ~_general(meta, after)
    return pc.if_else(pa.array(keep), numbers, stripped), slow


def _is_valid_here(meta: _Meta, nsn: pa.Array) -> np.ndarray:
    """`meta.is_valid` per national significant number: the general description and one number type match."""
    lengths = _lengths(nsn)
    general = meta.general
    ok = np.ones(len(nsn), dtype=bool) if general.lengths is None else _among(lengths, general.lengths)
    ok[ok] = _general(meta, nsn.filter(pa.array(ok)))
    valid = np.zeros(len(nsn), dtype=bool)
    for size in np.unique(lengths[ok]).tolist():
        kinds = meta.kinds_of_length(size)  # the alternation `is_valid` itself uses at this length
        if kinds is None:
            continue
        rows = np.flatnonzero(ok & (lengths == size))
        valid[rows] = _full(nsn.take(pa.array(rows)), kinds)
    return valid


def _valid_for_region(code: int, nsn: pa.Array, region: str) -> np.ndarray:
    """`_valid_for_region(code, nsn, region)` per number (region geographic)."""
    meta = _region_meta(region)
    if meta is None or meta.country_code != code:
        return np.zeros(len(nsn), dtype=bool)
    return _is_valid_here(meta, nsn)


def _is_valid(code: int, nsn: pa.Array) -> np.ndarray:
    """`_is_valid(code, nsn)` per number: valid for the region `_region_code_for_number_from_list` picks."""
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code)
    if regions is None:
        return np.zeros(len(nsn), dtype=bool)
    if REGION_CODE_FOR_NON_GEO_ENTITY in regions:
        raise _Slow("non-geographic calling code")
    if len(regions) == 1:
        return _valid_for_region(code, nsn, regions[0])
    valid = np.zeros(len(nsn), dtype=bool)
    open_rows = np.arange(len(nsn))  # numbers no region of the list has claimed yet
    for region in regions:
        meta = _region_meta(region)
        if meta is None or not len(open_rows):
            continue
        part = nsn.take(pa.array(open_rows))
        if meta.leading_digits is not None:
            claimed = _search(part, f"^(?:{meta.leading_digits.pattern})")
            valid[open_rows[claimed]] = _valid_for_region(code, part.filter(pa.array(claimed)), region)
        else:
            claimed = _is_valid_here(meta, part)
            valid[open_rows[claimed]] = meta.country_code == code
        open_rows = open_rows[~claimed]
    return valid


def _country_code_in(numbers: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """`_country_code_in` per number of 3+ digits: (calling code or 0, the rest after it)."""
    firsts = [_np(pc.cast(pc.utf8_slice_codeunits(numbers, 0, size), pa.int64())) for size in (1, 2, 3)]
    zero = _np(pc.starts_with(numbers, "0")).astype(bool)
    size = np.select([zero, _IS_CODE[firsts[0]], _IS_CODE[firsts[1]], _IS_CODE[firsts[2]]], [0, 1, 2, 3], 0)
    code = np.choose(np.maximum(size - 1, 0), firsts) * (size > 0)
    rest = numbers
    for cut in (1, 2, 3):
        if (size == cut).any():
            rest = pc.if_else(pa.array(size == cut), pc.utf8_slice_codeunits(numbers, cut), rest)
    return code, rest


# --------------------------------------------------------------------------------------------------- the steps


def _with_code(rows: np.ndarray, region: np.ndarray, numbers: pa.Array) -> tuple[_Parsed, np.ndarray]:
    """`_extract_country_code` once a "+" or an international prefix said a calling code follows: (the numbers with
    one, read with its main region's metadata; positions of `rows` without one)."""
    code, rest = _country_code_in(numbers)
    found = code > 0
    return _Parsed(rows[found], region[found], code[found], rest.filter(pa.array(found)), _MAIN[code[found]]), ~found


def _without_plus(region: int, rows: np.ndarray, digits: pa.Array, slow: np.ndarray) -> list[_Parsed]:
    """`_extract_country_code(digits, False, meta)` and `_parse_plain`'s choice of metadata, for one region."""
    meta = _region_meta(_REGIONS[region])
    if meta is None:
        raise _Slow("no metadata")
    regions = np.full(len(rows), region, dtype=np.int64)
    out = []
    after = _strip_start(digits, meta.idd)
    # `_parse_prefix_as_idd`: the international prefix counts when it matched and no 0 follows it.
    by_idd = _search(digits, f"^(?:{meta.idd.pattern})") & ~_np(pc.starts_with(after, "0")).astype(bool)
    if by_idd.any():
        full = after.filter(pa.array(by_idd))
        long_enough = _lengths(full) > _MIN_LENGTH_FOR_NSN  # else TOO_SHORT_AFTER_IDD: None
        at = np.flatnonzero(by_idd)[long_enough]
        # No calling code after the prefix: INVALID_COUNTRY_CODE, not retried without a plus: None.
        out.append(_with_code(rows[at], regions[at], full.filter(pa.array(long_enough)))[0])
    rest = np.flatnonzero(~by_idd)
    if not len(rest):
        return out
    full = digits.take(pa.array(rest))
    extracted = np.zeros(len(rest), dtype=bool)
    starts = _np(pc.starts_with(full, meta.country_code_str)).astype(bool)
    if starts.any():
        # The region's own calling code typed without "+": taken as one when the number reads better without it.
        part = full.filter(pa.array(starts))
        national, transform = _strip_national_prefix(
            meta, pc.utf8_slice_codeunits(part, len(meta.country_code_str))
        )
        slow[rows[rest[starts][transform]]] = True
        chosen = ~transform & (
            (~_general(meta, part) & _general(meta, national))
            | (_length_result(meta, _lengths(part)) == _TOO_LONG)
        )
        extracted[np.flatnonzero(starts)[chosen]] = True
        at = rest[extracted]
        cc = np.full(len(at), meta.country_code, dtype=np.int64)
        out.append(_Parsed(rows[at], regions[at], cc, national.filter(pa.array(chosen)), _MAIN[cc]))
    # No calling code: the national number is all the digits, read with the region's own metadata.
    whole = np.flatnonzero(~extracted & ~slow[rows[rest]])
    at = rest[whole]
    out.append(_Parsed(rows[at], regions[at], np.full(len(at), meta.country_code, dtype=np.int64),
                       full.take(pa.array(whole)), regions[at]))
    return out


def _national(meta_region: int, parsed: _Parsed, slow: np.ndarray) -> _Parsed:
    """The end of `_parse_plain` for numbers read with one region's metadata: strip the national prefix when what is
    left has a kept length; drop numbers too short or too long (parse refuses them: None)."""
    meta = _region_meta(_REGIONS[meta_region])
    if meta is None:
        raise _Slow("no metadata for the calling code")
    parsed = parsed.take(np.flatnonzero(_lengths(parsed.number) >= _MIN_LENGTH_FOR_NSN))
    stripped, transform = _strip_national_prefix(meta, parsed.number)
    slow[parsed.rows[transform]] = True
    kept = ~_among(_length_result(meta, _lengths(stripped)), _NOT_KEPT)
    nsn = pc.if_else(pa.array(kept), stripped, parsed.number)
    size = _lengths(nsn)
    ok = np.flatnonzero(~transform & (size >= _MIN_LENGTH_FOR_NSN) & (size <= _MAX_LENGTH_FOR_NSN))
    return parsed._replace(number=nsn).take(ok)


def _answers(parsed: _Parsed, slow: np.ndarray) -> tuple[np.ndarray, pa.Array]:
    """(rows, "+<code><nsn>") of the parsed numbers valid for the lead's region or else for their calling code."""
    valid = np.zeros(len(parsed.rows), dtype=bool)

    def settle(rows: np.ndarray, check: Callable[[pa.Array], np.ndarray]) -> None:
        """valid[rows] = check(their numbers), or the rows to the per-key path (a small group, a step not mirrored)."""
        if len(rows) < _MIN_GROUP:
            slow[parsed.rows[rows]] = True
            return
        try:
            valid[rows] = check(parsed.number.take(pa.array(rows)))
        except (_Slow, _Unsupported):
            slow[parsed.rows[rows]] = True

    for region, positions in _groups(parsed.region):
        if region == 0:
            continue
        for code, at in _groups(parsed.code[positions]):
            settle(positions[at], lambda numbers: _valid_for_region(code, numbers, _REGIONS[region]))  # noqa: B023
    open_rows = np.flatnonzero(~valid)
    for code, at in _groups(parsed.code[open_rows]):
        settle(open_rows[at], lambda numbers: _is_valid(code, numbers))  # noqa: B023
    kept = pa.array(valid)
    codes = pc.cast(pa.array(parsed.code), pa.string()).filter(kept)
    return parsed.rows[valid], pc.binary_join_element_wise("+", codes, parsed.number.filter(kept), "")


@cache
def _mirrored(region: int) -> bool:
    """Keys of this region id (-1: unknown) can take the column-wise path. Per region, as `phone_e164_of` loads
    metadata: loading every region's costs ~0.2 s."""
    try:
        return 0 <= region != _NONGEO and (region == 0 or _region_meta(_REGIONS[region]) is not None)
    except _Unsupported:
        return False


def _region_ids(array: pa.StringArray, separator: np.ndarray) -> np.ndarray:
    """Id of each key's region (the text before the first "\\x1f", of 0 or 2 characters here); -1 if unknown."""
    encoded = pc.dictionary_encode(pc.utf8_slice_codeunits(array, 0, 2).fill_null(""))
    lookup = np.array([_ID.get(r, -1) for r in encoded.dictionary.to_pylist()] or [-1], dtype=np.int64)
    return np.where(separator == 0, 0, lookup[_np(encoded.indices.fill_null(0)).astype(np.int64)])


def phone_e164_bulk(keys: Sequence[str | None] | pa.Array) -> list[str | None]:
    """`[phone_e164_of(key) for key in keys]` (None for a None key): plain texts column-wise, the rest per key."""
    array = keys if isinstance(keys, pa.Array) else pa.array(keys, pa.string())
    array = pa.concat_arrays([array.cast(pa.string())])  # its own buffers, for `_digits_between`
    n = len(array)
    plain = _np(pc.match_substring_regex(array, _KEY).fill_null(False)).astype(bool)
    separator = _np(pc.find_substring(array, "\x1f").fill_null(-1)).astype(np.int64)
    size = _lengths(array.fill_null(""))
    region = np.where(plain, _region_ids(array, separator), 0)
    extension = _np(pc.find_substring(array, "x").fill_null(-1)).astype(np.int64)
    start = np.where(plain, separator + 1, 0)
    digits = _digits_between(array, start, np.where(plain, np.where(extension >= 0, extension, size), 0))
    present = np.unique(region)
    mirrored = np.isin(region, present[[_mirrored(int(r)) for r in present]])
    plain &= mirrored & (size - start <= _MAX_INPUT_STRING_LENGTH) & (_lengths(digits) >= 3)
    slow = ~plain & _np(array.is_valid()).astype(bool)
    plus = _np(pc.match_substring(array, "+").fill_null(False)).astype(bool)

    parsed: list[_Parsed] = []
    rows = np.flatnonzero(plain & plus)
    with_code, without = _with_code(rows, region[rows], digits.take(pa.array(rows)))
    parsed.append(with_code)
    slow[rows[without]] = True  # INVALID_COUNTRY_CODE after "+": parse retries without it
    # Without a region, a number needs its "+" (`_check_region_for_parsing`): region 0 without one is None.
    national_rows = np.flatnonzero(plain & ~plus & (region > 0))
    for label, at in _groups(region[national_rows]):
        rows = national_rows[at]
        if len(rows) < _MIN_GROUP:
            slow[rows] = True
            continue
        try:
            parsed.extend(_without_plus(label, rows, digits.take(pa.array(rows)), slow))
        except (_Slow, _Unsupported):
            slow[rows] = True

    nationals: list[_Parsed] = []
    table = _concat(parsed)
    for label, at in _groups(table.meta):
        if len(at) < _MIN_GROUP or label == _NONGEO:
            slow[table.rows[at]] = True
            continue
        try:
            nationals.append(_national(label, table.take(at), slow))
        except (_Slow, _Unsupported):
            slow[table.rows[at]] = True

    answer = np.full(n, None, dtype=object)
    if nationals:
        answer_rows, text = _answers(_concat(nationals), slow)
        answer[answer_rows] = text.to_pylist()
    # A None answer may yet be "00" read as "+": `phone_e164_of` retries those.
    unanswered = np.flatnonzero(plain & ~slow & np.equal(answer, None))
    slow[unanswered[_search(array.take(pa.array(unanswered)), _MAYBE_00)]] = True
    for row in np.flatnonzero(slow).tolist():
        answer[row] = phone_e164_of(array[row].as_py())
    return answer.tolist()


def phone_e164_series(keys: pd.Series) -> pd.Series:
    """`map_unique(keys, phone_e164_of)`: the answer of each distinct key, by `phone_e164_bulk`, mapped back (NA for
    NA), as a "string" Series with the index and name of `keys`."""
    codes, uniques = keys.factorize(use_na_sentinel=True)
    answers = pd.array(phone_e164_bulk(pa.array(uniques, pa.string())), dtype="string")
    # `take` with allow_fill maps the -1 code of missing keys to NA without a Python loop over the rows.
    return pd.Series(answers.take(codes, allow_fill=True), index=keys.index, name=keys.name, dtype="string")


__all__ = ["phone_e164_bulk", "phone_e164_series"]
