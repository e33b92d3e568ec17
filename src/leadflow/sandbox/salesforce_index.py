"""The sandbox org's record tables: one object's records by id, indexed on SystemModstamp, so that the window query
every incremental reader asks (`WHERE SystemModstamp >= t ... ORDER BY SystemModstamp, Id`) touches the window only,
not every record of a 650,000-record org.

Salesforce keeps an index on SystemModstamp for most objects (Best Practices for Deployments with Large Data
Volumes, "Indexes": "The platform maintains indexes on the following fields for most objects ... Systemmodstamp
(LastModifiedDate)", https://developer.salesforce.com/docs/platform/salesforce-large-data-volumes-bp/guide/
ldv-deployments-infrastructure-indexes.html). The sandbox's index changes speed, never results: every candidate is
still checked against the whole WHERE clause.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from sortedcontainers import SortedList

STAMP: Final = "SystemModstamp"
_HIGH: Final = "\U0010ffff"
"""Sorts after every record id (ids are ASCII): (t, _HIGH) follows every (t, id)."""
RANGE_OPS: Final = frozenset({"<", "<=", ">", ">=", "="})

Key = tuple[str, ...]


class RecordTable(dict[str, dict[str, Any]]):
    """A dict of record id → record that keeps a sorted (SystemModstamp, Id) index once one is asked for.

    The index is built on the first window query (one sort) and then kept by every write through the dict
    (`table[id] = record`, `del`, `pop`, ...), as `Org.put` (copy-on-write) and the seeds write. A record changed
    in place is not re-indexed: its stale entry is skipped (each hit is checked against the record's stamp), so
    change a stamp by storing a new record, as `Org.put` does."""

    __slots__ = ("_index",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index: SortedList | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied as its records; the index is built again when next asked for."""
        return self.__class__, (dict(self),)

    # -- writes keep the index
    def __setitem__(self, key: str, record: dict[str, Any]) -> None:
        index = self._index
        if index is not None:
            old = dict.get(self, key)
            if old is not None and old.get(STAMP) is not None:
                index.discard((old[STAMP], key))
            if record.get(STAMP) is not None:
                index.add((record[STAMP], key))
        dict.__setitem__(self, key, record)

    def __delitem__(self, key: str) -> None:
        old = dict.__getitem__(self, key)
        dict.__delitem__(self, key)
        self._forget(key, old)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        if key not in self:
            if default:
                return default[0]
            raise KeyError(key)
        old = dict.pop(self, key)
        self._forget(key, old)
        return old

    def popitem(self) -> tuple[str, dict[str, Any]]:
        key, old = dict.popitem(self)
        self._forget(key, old)
        return key, old

    def clear(self) -> None:
        dict.clear(self)
        self._index = None

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, record in dict(*args, **kwargs).items():
            self[key] = record

    def setdefault(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def __ior__(self, other: Any) -> RecordTable:  # type: ignore[override,misc]
        self.update(other)
        return self

    def _forget(self, key: str, old: dict[str, Any]) -> None:
        if self._index is not None and old.get(STAMP) is not None:
            self._index.discard((old[STAMP], key))

    # -- reads
    def index(self) -> SortedList:
        """The (SystemModstamp, Id) index, built now if it was not yet."""
        if self._index is None:
            self._index = SortedList((r[STAMP], k) for k, r in dict.items(self) if r.get(STAMP) is not None)
        return self._index

    def window(self, low: Key | None, high: Key | None) -> Iterator[dict[str, Any]]:
        """The records whose (SystemModstamp, Id) lies in [low, high] (None: unbounded), in that order."""
        seen: set[str] = set()
        for stamp, key in self.index().irange(low, high):
            record = dict.get(self, key)
            if record is not None and record.get(STAMP) == stamp and key not in seen:
                seen.add(key)
                yield record


def stamp_bounds(where: Iterable[tuple[str, str, Any]]) -> tuple[Key | None, Key | None] | None:
    """The narrowest [low, high] index keys that the SystemModstamp conditions of an AND-ed WHERE allow, or None when
    it has none (the index cannot help). `>= t` → (t,); `> t` → (t, _HIGH); `<= t` → (t, _HIGH); `< t` → (t,)."""
    low: Key | None = None
    high: Key | None = None
    used = False
    for name, op, value in where:
        if name != STAMP or op not in RANGE_OPS or not isinstance(value, str):
            continue
        used = True
        lows = {">=": (value,), ">": (value, _HIGH), "=": (value,)}
        highs = {"<=": (value, _HIGH), "<": (value,), "=": (value, _HIGH)}
        if op in lows and (low is None or lows[op] > low):
            low = lows[op]
        if op in highs and (high is None or highs[op] < high):
            high = highs[op]
    return (low, high) if used else None


def tables(objects: dict[str, dict[str, dict[str, Any]]]) -> dict[str, RecordTable]:
    """`objects` (object → records) with every table a RecordTable (existing RecordTables are kept as they are)."""
    return {obj: t if isinstance(t, RecordTable) else RecordTable(t) for obj, t in objects.items()}


def candidates(found: list[dict[str, dict[str, Any]]], where: list[tuple[str, str, Any]],
               order: list[tuple[str, bool]], count: bool) -> list[dict[str, Any]]:
    """The records of the tables `found` that a query with this WHERE could match (a superset: the caller still
    checks every condition). Through the index when the WHERE bounds SystemModstamp and the result does not depend on
    the order records are met in (a COUNT(), or an ORDER BY that includes the unique Id); else every record, in the
    tables' order, exactly as a scan would meet them."""
    bounds = stamp_bounds(where)
    exact = count or any(name == "Id" for name, _ in order)
    if bounds is not None and exact and all(isinstance(t, RecordTable) for t in found):
        return [record for table in found for record in table.window(*bounds)]  # type: ignore[attr-defined]
    return [record for table in found for record in table.values()]
