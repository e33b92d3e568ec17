"""Vectorised helpers of the generators. Strings are numpy StringDType arrays; columns drawn from a small set of
values (country, title, status...) stay integer indexes into a pool until the end, when Arrow `take` turns them
into strings: far cheaper than materialising a million Python-level strings per step. Also: the seeded random
streams (`_rng`), template filling (phones, postal codes) and 18-character Salesforce ids."""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadflow.synth.vocab import SF_POD, Weighted

_SD: Final = np.dtypes.StringDType()


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.array(values, dtype=_SD)


def _rng(seed: int, stream: str) -> np.random.Generator:
    # One independent stream per aspect: changing how one column is generated leaves the others unchanged.
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _choose(rng: np.random.Generator, m: int, weighted: Weighted) -> np.ndarray:
    """Indexes into `weighted`, drawn by weight, for `m` rows."""
    p = np.array([w for _, w in weighted], dtype=float)
    return rng.choice(len(weighted), size=m, p=p / p.sum())


def _uniform(rng: np.random.Generator, m: int, values: Sequence[str]) -> np.ndarray:
    return _strings(values)[rng.integers(0, len(values), m)]


def _categories(rng: np.random.Generator, m: int, shares: Sequence[float]) -> np.ndarray:
    """Per-row category: k (1-based) with probability shares[k-1], else 0 (the "clean" remainder)."""
    raw = np.searchsorted(np.cumsum(np.asarray(shares, dtype=float)), rng.random(m), side="right") + 1
    raw[raw > len(shares)] = 0
    return raw


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    out: np.ndarray | str = parts[0]
    for part in parts[1:]:
        out = np.strings.add(out, part)
    return np.asarray(out, dtype=_SD)


@cache
def _digit_pool(width: int) -> np.ndarray:
    return _strings([str(i).zfill(width) for i in range(10**width)])


_TEMPLATE_TOKEN: Final = re.compile(r"#+|\^|\?|\{A\}|[^#^?{]+")
_POSTCODE_LETTERS: Final[tuple[str, ...]] = tuple("ABEGHJLNPRSTXY")  # valid in both UK and Canadian postcodes


def _fill(rng: np.random.Generator, template: str, m: int, area: np.ndarray | None = None) -> np.ndarray:
    """Render a template m times with random digits/letters (notation above `leadflow.synth.countries.COUNTRIES`)."""
    parts: list[np.ndarray | str] = []
    for token in _TEMPLATE_TOKEN.findall(template):
        if token.startswith("#"):
            width = len(token)
            while width > 0:
                chunk = min(width, 4)
                parts.append(_digit_pool(chunk)[rng.integers(0, 10**chunk, m)])
                width -= chunk
        elif token == "^":
            parts.append(_uniform(rng, m, tuple("23456789")))
        elif token == "?":
            parts.append(_uniform(rng, m, _POSTCODE_LETTERS))
        elif token == "{A}":
            if area is None:
                raise ValueError(f"template {template!r} needs area codes")
            parts.append(area)
        else:
            parts.append(token)
    literals = [part for part in parts if isinstance(part, str)]
    if len(literals) == len(parts):
        return np.full(m, "".join(literals), dtype=_SD)
    return _cat(*parts)


def _groups(keys: np.ndarray, k: int) -> list[np.ndarray]:
    """Row positions (ascending) for each key 0..k-1: one sort instead of k full-length comparisons."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(k + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(k)]


def _pad(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    pads = _strings(("", " ", "  "))
    return _cat(pads[rng.integers(0, 3, values.size)], values, pads[rng.integers(1, 3, values.size)])


def _slug(text: str) -> str:
    """ASCII, lower-case, letters/digits/hyphens only: how a name ends up in a mailbox name or domain."""
    for special, plain in (("ß", "ss"), ("ø", "o"), ("ł", "l"), ("Ł", "L"), ("ı", "i"), ("İ", "I"), ("æ", "ae")):
        text = text.replace(special, plain)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9-]", "", ascii_text.lower())


def _unicode_local(text: str) -> str:
    return re.sub(r"[\s'.]", "", text.lower())


# Variants of a pool value, in order: as is, lower, upper, leading space, trailing spaces.
_CASE_SPACE: Final[tuple[Callable[[str], str], ...]] = (
    str, str.lower, str.upper, lambda v: " " + v, lambda v: v + "  ",
)


def _variant_pool(values: Sequence[str], variants: Sequence[Callable[[str], str]] = _CASE_SPACE) -> list[str]:
    """All variants of all values; value i in variant k sits at k * len(values) + i."""
    return [variant(v) for variant in variants for v in values]


def _vary(rng: np.random.Generator, index: np.ndarray, base: int, shares: Sequence[float]) -> np.ndarray:
    """Move a share of indexes to variant k (k-th share, 1-based) of a `_variant_pool`."""
    return index + _categories(rng, index.size, shares) * base


def _case_space_shares(lower: float, upper: float, space: float) -> tuple[float, ...]:
    return (lower, upper, space / 2, space / 2)


def _pool_column(
    pool: Sequence[str], index: np.ndarray, missing: np.ndarray, overrides: tuple[np.ndarray, np.ndarray] | None = None
) -> pa.Array:
    """Strings pool[index] (null where `missing`), with optional (sorted unique rows, values) replacing some rows."""
    array = pa.array(pool, type=pa.large_string()).take(pa.array(index, mask=missing))
    if overrides is not None and overrides[0].size:
        rows, values = overrides
        keep = ~missing[rows]
        mask = np.zeros(index.size, dtype=bool)
        mask[rows[keep]] = True
        array = pc.replace_with_mask(array, pa.array(mask), _arrow(values[keep], np.zeros(int(keep.sum()), bool)))
    return array


def _arrow(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    array = pa.array(values, mask=missing, type=pa.large_string())
    # pyarrow may hand back a ChunkedArray for StringDType input; one chunk keeps later steps cheap.
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


_BASE62: Final[np.ndarray] = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
_SF_CHECKSUM: Final[np.ndarray] = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)


def _salesforce_ids(prefix: str, sequence: np.ndarray) -> np.ndarray:
    """18-character Salesforce ids as a (rows, 18) uint8 array: key prefix, pod, "0", 9 base62 digits, checksum."""
    m = sequence.size
    codes = np.empty((m, 18), dtype=np.uint8)
    codes[:, :6] = np.frombuffer((prefix + SF_POD + "0").encode(), np.uint8)
    rest = sequence.astype(np.int64).copy()
    for position in range(14, 5, -1):
        codes[:, position] = _BASE62[rest % 62]
        rest //= 62
    # The suffix encodes which of the first 15 characters are upper case, 5 at a time (case-insensitive safety).
    upper = (codes[:, :15] >= ord("A")) & (codes[:, :15] <= ord("Z"))
    bits = (upper.reshape(m, 3, 5) * (1 << np.arange(5))).sum(axis=2)
    codes[:, 15:] = _SF_CHECKSUM[bits]
    return codes


def _lead_id_column(
    codes: np.ndarray, short: np.ndarray, left: np.ndarray, right: np.ndarray, missing: np.ndarray
) -> pa.Array:
    """Ids straight from bytes to Arrow: 15-character where `short`, space-padded where `left`/`right`."""
    n = codes.shape[0]
    framed = np.full((n, 20), ord(" "), dtype=np.uint8)
    framed[:, 1:19] = codes
    keep = np.ones((n, 20), dtype=bool)
    keep[:, 0] = left
    keep[:, 19] = right
    keep[short, 16:19] = False
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    data = framed[keep]
    validity = np.packbits(~missing, bitorder="little")
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(validity), int(missing.sum())
    )
