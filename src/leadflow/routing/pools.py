"""Pools: the round-robin state carried from run to run (`RoutingState`) and the round robin itself.

Smooth weighted round robin (nginx's algorithm: deterministic, exactly proportional to the weights over a cycle)
among a pool's members available at `as_of` and below their daily cap; when nobody is left, the pool's overflow
action. Daily caps count round-robin assignments per user and local day (across pools).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np

from leadflow.routing.router import _Out, _Router

__all__ = ["RoutingState"]

_STATE_DAYS_KEPT: Final[int] = 2
"""Daily-cap counts older than this many days before `as_of` are dropped from the state."""


@dataclass
class RoutingState:
    """What a run carries to the next: round-robin current weights per pool member, and today's assignment counts."""

    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    assigned_today: dict[tuple[str, str], int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({
            "weights": {p: dict(sorted(w.items())) for p, w in sorted(self.weights.items())},
            "assigned_today": [[u, d, c] for (u, d), c in sorted(self.assigned_today.items())],
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes | dict[str, Any] | None) -> RoutingState:
        if text is None or text == "":
            return cls()
        data = json.loads(text) if isinstance(text, str | bytes) else text
        return cls(
            weights={str(p): {str(u): int(v) for u, v in w.items()} for p, w in (data.get("weights") or {}).items()},
            assigned_today={(str(u), str(d)): int(c) for u, d, c in data.get("assigned_today") or []},
        )

    def copy(self) -> RoutingState:
        return RoutingState({p: dict(w) for p, w in self.weights.items()}, dict(self.assigned_today))


def _round_robin(router: _Router, out: _Out, state: RoutingState, as_of: datetime) -> None:
    """Hand the leads waiting for a pool to its members (smooth weighted round robin), in frame order."""
    config = router.config
    todo = np.flatnonzero(out.pool >= 0)
    # Per pool, per member slot: user index, weight, cap, current weight (from the state); eligible slots.
    users_of: list[list[int]] = []
    weights_of: list[list[int]] = []
    caps_of: list[list[int]] = []
    current_of: list[list[int]] = []
    eligible: list[list[int]] = []
    big = 1 << 62
    for name in router.pool_names:
        members = config.pools[name].members
        saved = state.weights.get(name, {})
        users_of.append([router.user_ix[m.user] for m in members])
        weights_of.append([m.weight for m in members])
        caps_of.append([big if m.daily_cap is None else m.daily_cap for m in members])
        current_of.append([int(saved.get(m.user, 0)) for m in members])
        eligible.append([k for k, m in enumerate(members) if router.available[router.user_ix[m.user]]])
    count = [int(state.assigned_today.get((u, day), 0)) for u, day in zip(router.user_ids, router.local_day, strict=True)]
    before = list(count)

    pools = out.pool[todo].tolist()
    notes = out.notes[todo].tolist()
    served = [-1] * len(pools)
    owner = [-1] * len(pools)
    for j in range(len(pools)):
        p = pools[j]
        while True:
            slots = eligible[p]
            if slots:
                cw, ws, us, caps = current_of[p], weights_of[p], users_of[p], caps_of[p]
                best, best_value, total = -1, 0, 0
                for k in slots:
                    if count[us[k]] >= caps[k]:
                        continue
                    value = cw[k] + ws[k]
                    cw[k] = value
                    total += ws[k]
                    if best < 0 or value > best_value:
                        best, best_value = k, value
                if best >= 0:
                    cw[best] -= total
                    u = us[best]
                    count[u] += 1
                    served[j], owner[j] = p, u
                    break
                eligible[p] = []  # everyone capped: caps only fill up within a run
            # Overflow: the pool's overflow action, resolved for this lead (which may lead to another pool).
            i = int(todo[j])
            spill = router.overflow(p)
            notes[j] = router.join(notes[j], int(spill.notes[i]))
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
    for u, day, c, c0 in zip(router.user_ids, router.local_day, count, before, strict=True):
        if c != c0:
            state.assigned_today[(u, day)] = c
    oldest = (as_of.date() - timedelta(days=_STATE_DAYS_KEPT)).isoformat()
    for key in [k for k in state.assigned_today if k[1] < oldest]:
        del state.assigned_today[key]
