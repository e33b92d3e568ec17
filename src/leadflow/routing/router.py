"""The static part of routing: each rule's action applied to its leads at once (assign_to, account owner,
territory, queue, hold, `otherwise`), leaving the leads bound for a pool to the round robin (`leadflow.routing.pools`).

`_Out` holds per-lead result codes; `_Router` interns reasons and notes (the path, e.g. `territory EMEA`) as ints and
computes lead facts (account owners, territories) once, when an action first needs them. It also knows who is
unavailable at `as_of` and why (`leadflow.routing.times`), and which pools are closed: a member skipped for a pause
or a holiday (or, in the round robin, a cap) is named in the notes as `skipped <name>: <why>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from leadflow.routing.model import Action, RoutingConfig, Territory
from leadflow.routing.times import NOTED, Pause, _pool_closed, _unavailable

__all__: list[str] = []


@dataclass
class _Out:
    """Per-lead result codes: owner (-1 none), final text, notes (the path), pool (≥0: round robin still to do)."""

    owner: np.ndarray
    text: np.ndarray
    notes: np.ndarray
    pool: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Out:
        return cls(np.full(n, -1, np.int32), np.full(n, -1, np.int32), np.zeros(n, np.int32), np.full(n, -1, np.int32))


class _Router:
    def __init__(self, frame: pd.DataFrame, config: RoutingConfig, as_of: datetime,
                 paused: dict[str, Pause] | None = None) -> None:
        self.frame, self.config, self.as_of, self.n = frame, config, as_of, len(frame)
        self.user_ids = list(config.users)
        self.user_ix = {u: i for i, u in enumerate(self.user_ids)}
        self.zones = [config.zone_of(u) for u in self.user_ids]
        paused = paused or {}
        self.why_unavailable = [_unavailable(config.users[u], z, as_of, paused.get(u))
                                for u, z in zip(self.user_ids, self.zones, strict=True)]
        """Per user: (kind, text) of why they are unavailable at `as_of`, None when available."""
        self.available = np.array([why is None for why in self.why_unavailable], dtype=bool)
        self.local_day = [as_of.astimezone(z).date().isoformat() for z in self.zones]
        self.local_hour = [as_of.astimezone(z).strftime("%Y-%m-%dT%H%z") for z in self.zones]
        """Per user: the local clock hour (with its UTC offset, so a repeated hour at the end of DST is another)."""
        self.queue_names = list(config.queues)
        self.owners = self.user_ids + [config.queues[q].owner_id for q in self.queue_names]
        self.pool_names = list(config.pools)
        self.pool_ix = {p: i for i, p in enumerate(self.pool_names)}
        self.pool_closed = [_pool_closed(config.pools[p], config.pool_zone(p), as_of) for p in self.pool_names]
        """Per pool: why its own working hours or holidays close it at `as_of`, None when open."""
        self.pool_open = [closed is None and bool(any(self.available[self.user_ix[m.user]] for m in config.pools[p].members))
                          for p, closed in zip(self.pool_names, self.pool_closed, strict=True)]
        self.skip_of_note: dict[str, tuple[str, str]] = {}
        """`skipped <name>: <why>` note → (user id, why): how many leads were routed around whom, from the notes."""
        self.pool_skips = [tuple(self.skip_note(self.user_ix[m.user], why[1]) for m in config.pools[p].members
                                 if (why := self.why_unavailable[self.user_ix[m.user]]) is not None and why[0] in NOTED)
                           for p in self.pool_names]
        """Per pool: the notes for its members unavailable for a pause or a holiday."""
        self.texts: list[str] = []
        self._text_ix: dict[str, int] = {}
        self.notes: list[tuple[str, ...]] = [()]
        self._notes_ix: dict[tuple[str, ...], int] = {(): 0}
        self._account: np.ndarray | None = None
        self._territory: np.ndarray | None = None
        self._overflow: dict[int, _Out] = {}

    # interning
    def text(self, value: str) -> int:
        code = self._text_ix.get(value)
        if code is None:
            code = self._text_ix[value] = len(self.texts)
            self.texts.append(value)
        return code

    def note(self, notes: int, *extra: str) -> int:
        key = self.notes[notes] + tuple(e for e in extra if e)
        code = self._notes_ix.get(key)
        if code is None:
            code = self._notes_ix[key] = len(self.notes)
            self.notes.append(key)
        return code

    def join(self, first: int, second: int) -> int:
        return self.note(first, *self.notes[second]) if second else first

    def skip_note(self, u: int, why: str) -> str:
        note = f"skipped {self.config.users[self.user_ids[u]].name}: {why}"
        self.skip_of_note.setdefault(note, (self.user_ids[u], why))
        return note

    def unavailable_note(self, u: int, prefix: str = "") -> str:
        """`<name> unavailable`, with why when it is a pause or a holiday."""
        why = self.why_unavailable[u]
        detail = f": {why[1]}" if why is not None and why[0] in NOTED else ""
        return f"{prefix}{self.config.users[self.user_ids[u]].name} unavailable{detail}"

    # lead facts, computed once when an action needs them
    def account_users(self) -> np.ndarray:
        """Per lead: the account owner's user index, -1 not a configured user, -2 no account owner."""
        if self._account is None:
            column = self.frame["account_owner_id"] if "account_owner_id" in self.frame else pd.Series(pd.NA, index=self.frame.index)
            codes, uniques = pd.factorize(column.astype("string").str.strip(), use_na_sentinel=True)
            lookup = np.array([self.user_ix.get(str(u), -1) if str(u) else -2 for u in uniques] + [-2], dtype=np.int32)
            self._account = lookup[codes]
        return self._account

    def territories(self) -> np.ndarray:
        """Per lead: the index of the first matching territory, -1 none."""
        if self._territory is None:
            self._territory = _territories(self.frame, self.config.territories)
        return self._territory

    # actions (static: everything but the round robin itself)
    def final(self, out: _Out, idx: np.ndarray, owner: int | np.ndarray, text: str, notes: int) -> None:
        out.owner[idx] = owner
        out.text[idx] = self.text(text)
        out.notes[idx] = notes
        out.pool[idx] = -1

    def apply(self, action: Action, idx: np.ndarray, notes: int, out: _Out) -> None:
        if idx.size == 0:
            return
        kind = action.kind
        users = self.config.users
        if kind == "hold":
            self.final(out, idx, -1, f"hold: {action.hold}", notes)
        elif kind == "queue":
            q = action.queue
            assert q is not None
            self.final(out, idx, len(self.user_ids) + self.queue_names.index(q), f"queue {self.config.queues[q].name or q}", notes)
        elif kind == "pool":
            assert action.pool is not None
            self.pool(self.pool_ix[action.pool], idx, notes, out)
        elif kind == "assign_to":
            assert action.assign_to is not None
            u = self.user_ix[action.assign_to]
            name = users[action.assign_to].name
            if self.available[u]:
                self.final(out, idx, u, f"assigned to {name}", notes)
            elif action.otherwise is not None:
                self.apply(action.otherwise, idx, self.note(notes, self.unavailable_note(u)), out)
            else:
                self.final(out, idx, u, f"assigned to {name}", self.note(notes, self.unavailable_note(u)))
        elif kind == "account_owner":
            owner = self.account_users()[idx]
            ok = owner >= 0
            ok[ok] = self.available[owner[ok]]
            self.final(out, idx[ok], owner[ok], "account owner", notes)
            self.otherwise(action, idx[owner == -2], notes, "no account owner", out)
            self.otherwise(action, idx[owner == -1], notes, "account owner not a routing user", out)
            away = (owner >= 0) & ~ok
            for u in np.unique(owner[away]).tolist():
                self.otherwise(action, idx[away & (owner == u)], notes, self.unavailable_note(u, "account owner "), out)
        else:  # territory
            found = self.territories()[idx]
            self.otherwise(action, idx[found < 0], notes, "no territory", out, hold="no matching territory")
            for t in np.unique(found[found >= 0]).tolist():
                territory = self.config.territories[t]
                self.pool(self.pool_ix[territory.pool], idx[found == t], self.note(notes, f"territory {territory.name}"), out)

    def otherwise(self, action: Action, idx: np.ndarray, notes: int, why: str, out: _Out, hold: str = "") -> None:
        """`action.otherwise` for these leads, noting why; without one, a hold with `why` (or `hold`) as reason."""
        if idx.size == 0:
            return
        if action.otherwise is not None:
            self.apply(action.otherwise, idx, self.note(notes, why), out)
        else:
            self.final(out, idx, -1, f"hold: {hold or why}", notes)

    def pool(self, p: int, idx: np.ndarray, notes: int, out: _Out) -> None:
        if self.pool_open[p]:
            out.owner[idx] = -1
            out.text[idx] = -1
            out.notes[idx] = notes
            out.pool[idx] = p
        else:  # the pool is closed or nobody in it is available at all: its overflow, decided now
            action, note = self.overflow_action(p)
            closed = self.pool_closed[p]
            why = (f"pool {self.pool_names[p]} closed: {closed}",) if closed is not None else (*self.pool_skips[p], note)
            self.apply(action, idx, self.note(notes, *why), out)

    def overflow_action(self, p: int) -> tuple[Action, str]:
        name = self.pool_names[p]
        action = self.config.pools[name].overflow
        assert action is not None
        default = action.kind == "hold" and action.hold == f"pool {name} unavailable"
        return action, "" if default else f"pool {name}: nobody available"

    def overflow(self, p: int) -> _Out:
        """The static outcome of pool `p`'s overflow for every lead (computed once, when first needed)."""
        if p not in self._overflow:
            out = _Out.empty(self.n)
            action, note = self.overflow_action(p)
            self.apply(action, np.arange(self.n), self.note(0, note), out)
            self._overflow[p] = out
        return self._overflow[p]


def _territories(frame: pd.DataFrame, territories: list[Territory]) -> np.ndarray:
    n = len(frame)
    found = np.full(n, -1, dtype=np.int32)
    if not territories or n == 0:
        return found

    def text(column: str) -> pd.Series:
        values = frame[column] if column in frame else pd.Series(pd.NA, index=frame.index)
        return values.astype("string").str.strip()

    country = text("country_code").str.upper()
    postal_codes: tuple[np.ndarray, pd.Index] | None = None
    undecided = np.ones(n, dtype=bool)
    for t, territory in enumerate(territories):
        mask = undecided.copy()
        if territory.countries:
            mask &= country.isin(territory.countries).to_numpy(dtype=bool, na_value=False)
        if territory.states:
            # standardize writes the subdivision part ("CA"); territories name the full ISO 3166-2 code ("US-CA")
            state = text("state_code").str.upper()
            full = state.where(state.str.contains("-", regex=False), country + "-" + state)
            mask &= full.isin(territory.states).to_numpy(dtype=bool, na_value=False)
        if territory.segments:
            mask &= text("segment").isin(territory.segments).to_numpy(dtype=bool, na_value=False)
        if territory.industries:
            mask &= text("industry").isin(territory.industries).to_numpy(dtype=bool, na_value=False)
        if territory.postal_ranges:
            if postal_codes is None:
                codes, uniques = pd.factorize(text("postal_code").str.upper().str.replace(" ", "", regex=False),
                                              use_na_sentinel=True)
                postal_codes = (codes, pd.Index(uniques))
            codes, uniques = postal_codes
            values = pd.Series(uniques.astype(str), dtype=object)
            inside = np.zeros(n, dtype=bool)
            for r in territory.postal_ranges:
                hit = ((values >= r.start) & (values.str.slice(0, len(r.end)) <= r.end)).to_numpy(dtype=bool)
                inside |= np.append(hit, False)[codes] & (country == r.country).to_numpy(dtype=bool, na_value=False)
            mask &= inside
        found[mask] = t
        undecided &= ~mask
    return found
