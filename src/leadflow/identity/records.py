"""Existing CRM records as integer codes of their keys, for duplicate detection (`RecordIndex`).

`find_duplicates` works on integer codes: per record the code of its e-mail, last name, first name, company and
corporate domain key (`leadflow.identity.prepared.EXISTING_KEY_COLUMNS`) and of its record_id, plus each key's
distinct values. A lead's key is looked up in those values (a hash lookup per distinct lead value) and the records
sharing it are found from a sorted code array, so a 100-lead batch never scans the 600,000 records.

Build a `RecordIndex` once from the (prepared) records and pass it to `find_duplicates` instead of the frame for
repeated batches against the same records (a CRM mirror rebuilds it when records change). Given a plain frame,
`find_duplicates` indexes only the records that share a key with the batch (`RecordIndex.for_batch`): the same
answers, one `isin` per key over the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadflow.identity.prepared import EXISTING_KEY_COLUMNS, keys_in, with_existing_keys

__all__ = ["BatchKeys", "RecordIndex"]

_ARROW_LOOKUP_MIN = 50_000
"""From this many values on (and a quarter of the key's distinct values), a lookup hashes with Arrow."""


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """`frame[name]` as strings, or an all-NA column when it is absent."""
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _objects(values: Any) -> np.ndarray:
    """Python strings (None for NA) of a Series or array."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=object, na_value=None)
    return np.asarray(values, dtype=object)


def _split(values: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(values, np.cumsum(sizes)[:-1]) if sizes else []


def _combine(*codes: np.ndarray) -> np.ndarray:
    """One int64 key per row from several code arrays (-1 anywhere → -1), re-factorized so it never overflows."""
    key = codes[0].astype(np.int64)
    bad = key < 0
    for c in codes[1:]:
        bad |= c < 0
        width = int(c.max(initial=0)) + 1
        key = pd.factorize(np.where(bad, -1, key * width + np.maximum(c, 0)), use_na_sentinel=True)[0].astype(np.int64)
    key[bad] = -1
    return key


class _Codes:
    """One key column as integer codes: `codes[row]` (-1: NA or empty) into `values` (first occurrence order)."""

    def __init__(self, keys: pd.Series) -> None:
        keys = keys.astype("string")
        codes, uniques = pd.factorize(keys.mask((keys == "").fillna(False).to_numpy(dtype=bool)), use_na_sentinel=True)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.values = np.asarray(uniques, dtype=object)
        self._index: pd.Index | None = None
        self._arrow: pa.Array | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def with_codes(self, codes: np.ndarray) -> _Codes:
        """The same values (and lookup structures) for other rows, given their codes."""
        other = _Codes(pd.Series([], dtype="string"))
        other.values, other._index, other._arrow = self.values, self._index, self._arrow
        other.codes = codes
        return other

    def warm(self, *, rows: bool) -> None:
        """Build the lookup structures now rather than at the first use: the hash table, and with `rows` the rows
        sorted by code."""
        self._lookup_index()
        if rows:
            self._runs()

    def _lookup_index(self) -> pd.Index:
        if self._index is None:
            self._index = pd.Index(self.values, dtype=object)
            _ = self._index.is_unique  # builds the hash table get_indexer uses
        return self._index

    def _runs(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows in code order, where each code's run starts: bounds[c]:bounds[c + 1])."""
        if self._sorted is None:
            order = np.argsort(self.codes, kind="stable")
            self._sorted = order, np.searchsorted(self.codes[order], np.arange(len(self.values) + 1))
        return self._sorted

    def lookup(self, values: Any) -> np.ndarray:
        """Code of each value (-1: NA, empty or not a value of this key)."""
        if not len(self.values):  # a key of no value (no records): nothing to hash
            return np.full(len(values), -1, dtype=np.int64)
        if len(values) < _ARROW_LOOKUP_MIN or len(values) * 4 < len(self.values):
            return np.asarray(self._lookup_index().get_indexer(_objects(values)), dtype=np.int64)
        # Many values (a big batch): one Arrow hash lookup beats a Python object per value.
        if self._arrow is None:
            self._arrow = pa.array(self.values, type=pa.large_string())
        if isinstance(values, pd.Series):
            data = values.astype("string").array.__arrow_array__().cast(pa.large_string())
        else:
            data = pa.array(np.asarray(values, dtype=object), type=pa.large_string(), from_pandas=True)
        found = pc.fill_null(pc.index_in(data, value_set=self._arrow), -1)
        return np.asarray(found.to_numpy(), dtype=np.int64)

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Ascending positions of the rows whose code is one of `codes` (negative codes are ignored)."""
        order, bounds = self._runs()
        codes = np.unique(np.asarray(codes, dtype=np.int64))
        codes = codes[codes >= 0]
        lo, hi = bounds[codes], bounds[codes + 1]
        size = hi - lo
        if not size.sum():
            return np.zeros(0, dtype=np.int64)
        # Every run order[lo:hi] at once: per output slot, its run's start plus its offset in the run.
        offsets = np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size)
        return np.sort(order[np.repeat(lo, size) + offsets])

    def extend(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """(codes of `values`, the distinct values of both sides): values this key lacks get codes after its own."""
        values = _objects(values)
        codes = self.lookup(values)
        new = np.flatnonzero((codes < 0) & pd.notna(values) & (values != ""))
        if not len(new):
            return codes, self.values
        extra_codes, extra = pd.factorize(values[new])
        codes[new] = len(self.values) + extra_codes
        return codes, np.concatenate([self.values, np.asarray(extra, dtype=object)])


@dataclass(frozen=True)
class BatchKeys:
    """The keys by which a batch of leads can reach records: e-mails, (stripped) lead ids, last names, company names,
    corporate domains (distinct, non-empty)."""

    emails: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    lead_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    last_names: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    companies: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    domains: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    block_prefix: int = 3


def _record_rank(objects: pd.Series, record_ids: pd.Series, prefer: list[str]) -> np.ndarray:
    """Rank (0 = preferred) of each existing record: position of its object in `prefer`, then record_id."""
    codes, uniques = pd.factorize(objects.astype("string"), use_na_sentinel=True)
    order = {obj: i for i, obj in enumerate(prefer)}
    object_rank = np.array([order.get(u, len(prefer)) for u in uniques] + [len(prefer)], dtype=np.int64)
    # Dense rank of the id in code point order (UTF-8 byte order: what sorting the Python strings gives).
    ids = pc.rank(pa.array(record_ids.astype("string").fillna("").array), sort_keys="ascending", tiebreaker="dense")
    sort = np.lexsort([np.asarray(ids, dtype=np.int64), object_rank[codes]])
    rank = np.empty(len(sort), dtype=np.int64)
    rank[sort] = np.arange(len(sort))
    return rank


class RecordIndex:
    """Existing CRM Leads/Contacts (EXISTING_COLUMNS, with or without the prepared key columns) as integer codes.

    Built once (key columns computed first when missing; ≈ 1 s for 600,000 prepared records) and read-only
    afterwards: `find_duplicates(leads, index, config)` gives what `find_duplicates(leads, frame, config)` gives. A
    changed frame needs a new index. The tie-breaking rank is built for `prefer` (DuplicateConfig.prefer's default)
    here, for another order at the first batch that asks for it.
    """

    def __init__(self, existing: pd.DataFrame, *, prefer: Sequence[str] = ("Contact", "Lead")) -> None:
        frame = with_existing_keys(existing).reset_index(drop=True)
        self._init(frame, _Codes(frame["company_key"]), complete=True)
        for codes in (self.email, self.last):  # records are found by e-mail and by last name
            codes.warm(rows=True)
        for codes in (self.first, self.company, self.domain, self.record):
            codes.warm(rows=False)
        self.rank(list(prefer), np.zeros(0, dtype=np.int64))

    def _init(self, frame: pd.DataFrame, company: _Codes, *, complete: bool) -> None:
        self.size = len(frame)
        self.record_id = _column(frame, "record_id")
        """Raw record ids (the answer `duplicate_of` gives)."""
        self.object = _column(frame, "object")
        self.email = _Codes(frame["email_key"])
        self.last = _Codes(frame["last_key"])
        self.first = _Codes(frame["first_key"])
        self.company = company
        self.domain = _Codes(frame["domain_key"])
        self.record = _Codes(self.record_id.str.strip())
        """Stripped record ids: "is this record the lead itself" compares a lead's lead_id with these."""
        self._complete = complete
        self._ranks: dict[tuple[str, ...], np.ndarray] = {}
        self._blocks: dict[int, _Codes] = {}

    @classmethod
    def for_batch(cls, existing: pd.DataFrame, keys: BatchKeys) -> RecordIndex:
        """An index of only what a batch with these keys can reach: the records with one of its e-mails or record
        ids, or with one of its last names and a reachable company or one of its domains; the reachable company
        names: equal to one of its names or in one of their blocks (`block_prefix` characters), in the order of
        their first record as in a complete index. The same answers as a complete index, for that batch."""
        frame = with_existing_keys(existing).reset_index(drop=True)
        companies = frame["company_key"].astype("string")
        block = keys.block_prefix
        blocks = pd.unique(np.array([c[:block] for c in keys.companies if len(c) >= block], dtype=object))
        # A name of `block`+ characters is in its own block: only the shorter ones need looking up themselves.
        named = keys_in(companies, [c for c in keys.companies if len(c) < block])
        prefixes = companies.str.slice(0, block)
        if len(blocks):
            named |= keys_in(prefixes, blocks)
        person = keys_in(frame["last_key"], keys.last_names)
        person &= named | keys_in(frame["domain_key"], keys.domains)
        wanted = person | keys_in(frame["email_key"], keys.emails)
        if len(keys.lead_ids):
            wanted |= keys_in(_column(frame, "record_id").str.strip(), keys.lead_ids)
        rows = np.flatnonzero(wanted)

        # Only the company names a batch can reach get codes: a record with another company pairs with no lead.
        named_rows = np.flatnonzero(named)
        reachable = _Codes(companies.iloc[named_rows])
        codes = np.full(len(rows), -1, dtype=np.int64)
        if len(named_rows):
            at = np.minimum(np.searchsorted(named_rows, rows), len(named_rows) - 1)
            codes = np.where(named[rows], reachable.codes[at], -1)
        columns = [c for c in ("record_id", "object", *EXISTING_KEY_COLUMNS) if c in frame.columns]
        index = cls.__new__(cls)
        index._init(frame[columns].iloc[rows], reachable.with_codes(codes), complete=False)
        # Each reachable name's block, from the record where it first occurs (no second pass over the names).
        coded = np.flatnonzero(reachable.codes >= 0)
        _, first = np.unique(reachable.codes[coded], return_index=True)
        index._blocks[block] = _Codes(prefixes.iloc[named_rows[coded[first]]])
        return index

    def rank(self, prefer: list[str], rows: np.ndarray) -> np.ndarray:
        """Rank of the records at `rows` among themselves (0 = preferred): object position in `prefer`, then
        record_id. A complete index ranks all records once per `prefer` order and keeps it."""
        if not self._complete:
            return _record_rank(self.object.iloc[rows], self.record_id.iloc[rows], prefer)
        key = tuple(prefer)
        if key not in self._ranks:
            self._ranks[key] = _record_rank(self.object, self.record_id, prefer)
        return self._ranks[key][rows]

    def company_choices(self, names: np.ndarray, block: int) -> np.ndarray:
        """Codes (ascending: first occurrence order) of the company names equal to one of `names` or sharing its
        first `block` characters with one of them (those of `block`+ characters)."""
        if block not in self._blocks:
            self._blocks[block] = _Codes(pd.Series(self.company.values, dtype="string").str.slice(0, block))
        prefixes = self._blocks[block]
        blocks = pd.unique(np.array([n[:block] for n in names if len(n) >= block], dtype=object))
        in_block = prefixes.rows(prefixes.lookup(blocks)) if len(blocks) else np.zeros(0, dtype=np.int64)
        exact = self.company.lookup(names)
        return np.union1d(in_block, exact[exact >= 0])
