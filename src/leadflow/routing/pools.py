"""Pools: the round-robin state carried from run to run (`RoutingState`) and the round robin itself.

Smooth weighted round robin (nginx's algorithm: deterministic, exactly proportional to the weights over a cycle)
among a pool's members available at `as_of` and below their caps; when nobody is left, the pool's overflow action.
Daily and hourly caps count round-robin assignments per user and local day / clock hour (across pools); the open cap
counts the user's assigned leads nobody has touched yet (from the state store, plus this run's assignments). A
member skipped for a pause, a holiday or a cap is named in the lead's routing reason (`skipped <name>: <why>`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np

from leadflow.routing.router import _Out, _Router
from leadflow.routing.times import Pause

__all__ = ["RoutingState"]

_STATE_DAYS_KEPT: Final[int] = 2
"""Daily- and hourly-cap counts older than this many days before `as_of` are dropped from the state."""


@dataclass
class RoutingState:
    """What a run carries to the next: round-robin current weights per pool member, and today's and this hour's
    assignment counts (`to_json`). Read fresh from the state store for each run, not saved with it: the pauses in
    force (`paused`) and each owner's assigned leads nobody has touched yet (`open_leads`) — the routing session's
    payload carries them under those keys. Set by a run, not saved: `skipped`, how many leads were routed around
    whom and why ((user id, why) → leads)."""

    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    assigned_today: dict[tuple[str, str], int] = field(default_factory=dict)
    assigned_hour: dict[tuple[str, str], int] = field(default_factory=dict)
    paused: dict[str, Pause] = field(default_factory=dict)
    open_leads: dict[str, int] = field(default_factory=dict)
    skipped: dict[tuple[str, str], int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "weights": {p: dict(sorted(w.items())) for p, w in sorted(self.weights.items())},
            "assigned_today": [[u, d, c] for (u, d), c in sorted(self.assigned_today.items())],
            "assigned_hour": [[u, h, c] for (u, h), c in sorted(self.assigned_hour.items())],
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any] | None) -> RoutingState:
        if text is None or text == "":
            return cls()
        data = json.loads(text) if isinstance(text, str | bytes) else text
        return cls(
            weights={str(p): {str(u): int(v) for u, v in w.items()} for p, w in (data.get("weights") or {}).items()},
            assigned_today={(str(u), str(d)): int(c) for u, d, c in data.get("assigned_today") or []},
            assigned_hour={(str(u), str(h)): int(c) for u, h, c in data.get("assigned_hour") or []},
            paused={str(u): Pause.from_json(p) for u, p in (data.get("paused") or {}).items()},
            open_leads={str(u): int(c) for u, c in (data.get("open_leads") or {}).items()},
        )

    def copy(self) -> RoutingState:
        return RoutingState({p: dict(w) for p, w in self.weights.items()}, dict(self.assigned_today),
                            dict(self.assigned_hour), dict(self.paused), dict(self.open_leads), dict(self.skipped))


def _round_robin(router: _Router, out: _Out, state: RoutingState, as_of: datetime) -> None:
    """Hand the leads waiting for a pool to its members (smooth weighted round robin), in frame order."""
    config = router.config
    todo = np.flatnonzero(out.pool >= 0)
    n_users = len(router.user_ids)
    # Per pool, per member slot: user index, weight, caps, current weight (from the state); eligible slots.
    users_of: list[list[int]] = []
    weights_of: list[list[int]] = []
    caps_of: list[list[tuple[int, int, int]]] = []
    current_of: list[list[int]] = []
    eligible: list[list[int]] = []
    big = 1 << 62
    for name in router.pool_names:
        members = config.pools[name].members
        saved = state.weights.get(name, {})
        users_of.append([router.user_ix[m.user] for m in members])
        weights_of.append([m.weight for m in members])
        caps_of.append([(big if m.daily_cap is None else m.daily_cap, big if m.hourly_cap is None else m.hourly_cap,
                         big if m.open_cap is None else m.open_cap) for m in members])
        current_of.append([int(saved.get(m.user, 0)) for m in members])
        eligible.append([k for k, m in enumerate(members) if router.available[router.user_ix[m.user]]])
    count = [int(state.assigned_today.get((u, day), 0)) for u, day in zip(router.user_ids, router.local_day, strict=True)]
    hourly = [int(state.assigned_hour.get((u, hour), 0)) for u, hour in zip(router.user_ids, router.local_hour, strict=True)]
    # open leads: untouched assignments in the store, plus those this run has already given users outside a pool
    static = out.owner[(out.pool < 0) & (out.owner >= 0) & (out.owner < n_users)]
    given = np.bincount(static, minlength=n_users).tolist() if static.size else [0] * n_users
    open_leads = [int(state.open_leads.get(u, 0)) + g for u, g in zip(router.user_ids, given, strict=True)]
    before, before_hour = list(count), list(hourly)

    def cap_note(p: int, k: int) -> str:
        u = users_of[p][k]
        daily, hour_cap, open_cap = caps_of[p][k]
        why = (f"daily cap {daily}" if count[u] >= daily else f"hourly cap {hour_cap}" if hourly[u] >= hour_cap
               else f"open-lead cap {open_cap}")
        return router.skip_note(u, why)

    pools = out.pool[todo].tolist()
    notes = out.notes[todo].tolist()
    served = [-1] * len(pools)
    owner = [-1] * len(pools)
    exhausted: dict[int, tuple[str, ...]] = {}  # pool → why each member was capped, once everyone was
    for j in range(len(pools)):
        p = pools[j]
        while True:
            slots = eligible[p]
            static_skips = router.pool_skips[p]
            if slots:
                cw, ws, us, caps = current_of[p], weights_of[p], users_of[p], caps_of[p]
                best, best_value, total = -1, 0, 0
                capped: list[int] = []
                for k in slots:
                    u = us[k]
                    daily, hour_cap, open_cap = caps[k]
                    if count[u] >= daily or hourly[u] >= hour_cap or open_leads[u] >= open_cap:
                        capped.append(k)
                        continue
                    value = cw[k] + ws[k]
                    cw[k] = value
                    total += ws[k]
                    if best < 0 or value > best_value:
                        best, best_value = k, value
                skips = (*static_skips, *(cap_note(p, k) for k in capped))
                if best >= 0:
                    cw[best] -= total
                    u = us[best]
                    count[u] += 1
                    hourly[u] += 1
                    open_leads[u] += 1
                    if skips:
                        notes[j] = router.note(notes[j], *skips)
                    served[j], owner[j] = p, u
                    break
                eligible[p] = []  # everyone capped: caps only fill up within a run
                exhausted[p] = skips
            # Overflow: the pool's overflow action, resolved for this lead (which may lead to another pool).
            i = int(todo[j])
            spill = router.overflow(p)
            notes[j] = router.join(router.note(notes[j], *exhausted.get(p, static_skips)), int(spill.notes[i]))
            q = int(spill.pool[i])
            if q >= 0:
                p = q
                continue
            out.owner[i], out.text[i], out.notes[i], out.pool[i] = spill.owner[i], spill.text[i], notes[j], -1
            break

    served_a = np.array(served, dtype=np.int32)
    done = served_a >= 0
    rows = todo[done]
    pool_text = np.array([router.text(f"pool {p} round robin") for p in router.pool_names] + [-1], dtype=np.int32)
    out.owner[rows] = np.array(owner, dtype=np.int32)[done]
    out.text[rows] = pool_text[served_a[done]]
    out.notes[rows] = np.array(notes, dtype=np.int32)[done]
    out.pool[todo] = -1

    state.weights = {p: w for p, w in state.weights.items() if p in config.pools}  # pools since removed: forgotten
    for name, members, cw in zip(router.pool_names, (config.pools[p].members for p in router.pool_names), current_of,
                                 strict=True):
        state.weights[name] = {m.user: w for m, w in zip(members, cw, strict=True)}
    for u, day, c, c0, hour, h, h0 in zip(router.user_ids, router.local_day, count, before, router.local_hour, hourly,
                                          before_hour, strict=True):
        if c != c0:
            state.assigned_today[(u, day)] = c
        if h != h0:
            state.assigned_hour[(u, hour)] = h
    # carried to a next call on the same state (one lead at a time, as escalation and breach reassignment route):
    # its open-lead caps count what this call gave out
    state.open_leads = {u: n for u, n in zip(router.user_ids, open_leads, strict=True) if n}
    oldest = (as_of.date() - timedelta(days=_STATE_DAYS_KEPT)).isoformat()
    for key in [k for k in state.assigned_today if k[1] < oldest]:
        del state.assigned_today[key]
    for key in [k for k in state.assigned_hour if k[1][:10] < oldest]:
        del state.assigned_hour[key]
    state.skipped = _skips(router, out)


def _skips(router: _Router, out: _Out) -> dict[tuple[str, str], int]:
    """(user id, why) → leads whose notes say they were routed around that user."""
    if not router.skip_of_note:
        return {}
    found: Counter[tuple[str, str]] = Counter()
    codes, leads = np.unique(out.notes[out.text >= 0], return_counts=True)
    for code, n in zip(codes.tolist(), leads.tolist(), strict=True):
        for note in router.notes[code]:
            skip = router.skip_of_note.get(note)
            if skip is not None:
                found[skip] += n
    return dict(sorted(found.items()))
