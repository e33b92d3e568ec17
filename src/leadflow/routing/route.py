"""The entry point: `route_leads`, every lead routed as of a moment, as a pure function.

Output: ROUTING_COLUMNS, all strings. `routing_reason` says what happened, with the path in brackets, e.g.
`pool emea_ae round robin (territory EMEA)` or `hold: possible duplicate`. Holds have no owner and no `assigned_at`,
so the next run routes them again; an assigned lead (previous `routing_rule` and `assigned_at` present in the frame)
keeps its routing unless the rule matching it now has `reassign: true`. Which leads are leadflow's to route at all
(not a person's, not worked, not converted): `leadflow.routing.ownership`.

Performance: every rule condition and territory is evaluated once over the whole frame; only the pool round robin
is a sequential loop over plain Python ints; reasons and times are built once per distinct value.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa

from leadflow.pipeline.conditions import evaluate
from leadflow.routing.ownership import Ownership, decide_ownership
from leadflow.routing.model import RoutingConfig
from leadflow.routing.pools import RoutingState, _round_robin
from leadflow.routing.router import _Out, _Router
from leadflow.routing.times import _due, _utc

__all__ = ["ROUTING_COLUMNS", "route_leads"]

ROUTING_COLUMNS: Final[tuple[str, ...]] = ("owner_id", "routing_rule", "routing_reason", "assigned_at", "sla_due_at")
_ISO: Final[str] = "%Y-%m-%dT%H:%M:%SZ"


def _iso_strings(values: list[str | None], codes: np.ndarray, index: pd.Index) -> pd.Series:
    """`values[codes]` (code -1: NA) as a "string" Series, built by Arrow from the distinct values."""
    table = pa.array([*values, None], type=pa.large_string())
    taken = table.take(pa.array(np.where(codes < 0, len(values), codes)))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([taken])), index=index).astype("string")


def _previous(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    values = frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        utc = values.dt.tz_convert(UTC) if isinstance(values.dtype, pd.DatetimeTZDtype) else values.dt.tz_localize(UTC)
        return utc.dt.strftime(_ISO).astype("string")
    return values.astype("string")


def _present(values: pd.Series) -> np.ndarray:
    return (values.notna() & (values.str.strip() != "")).to_numpy(dtype=bool, na_value=False)


def route_leads(
    frame: pd.DataFrame,
    config: RoutingConfig,
    state: RoutingState,
    *,
    as_of: datetime,
    timings: dict[str, float] | None = None,
    ownership: Ownership | None = None,
) -> tuple[pd.DataFrame, RoutingState]:
    """Route every lead as of `as_of` (a naive datetime is UTC): (ROUTING_COLUMNS on `frame.index`, the new state).

    With `ownership` (the assign stage always passes one), only leads that are leadflow's to route are routed
    (`leadflow.routing.ownership`); the others keep owner_id as given, with a `kept: …` routing_reason and no
    routing_rule, assigned_at or sla_due_at. Without it every lead is routed (simulations of leadflow's own
    assignments). `state` is not changed. Leads are handled in frame order; the same leads, order and state give
    the same result. `timings`, if given, receives seconds per part (`conditions`, `round_robin`, `output`)."""
    clock = time.perf_counter()
    as_of = _utc(as_of).replace(microsecond=0)
    n = len(frame)
    router = _Router(frame, config, as_of, state.paused)

    # 1. The first matching rule per lead: every condition once, over the whole frame.
    rule_of = np.full(n, len(config.rules) - 1, dtype=np.int32)
    undecided = np.ones(n, dtype=bool)
    for r, rule in enumerate(config.rules[:-1]):
        assert rule.when is not None
        hit = evaluate(rule.when, frame) & undecided
        rule_of[hit] = r
        undecided &= ~hit

    # 2. Leads already assigned keep their routing unless their rule re-routes.
    previous = {c: _previous(frame, c) for c in ROUTING_COLUMNS}
    assigned = _present(previous["routing_rule"]) & _present(previous["assigned_at"])
    left = np.zeros(n, dtype=bool)
    if ownership is None:
        reassign = np.array([rule.reassign is True for rule in config.rules], dtype=bool)
        keep = assigned & ~reassign[rule_of]
    else:
        decision = decide_ownership(frame, config, ownership, rule_of, assigned, as_of)
        keep, left = decision.keep_previous, decision.left
    route = ~keep & ~left

    out = _Out.empty(n)
    for r, rule in enumerate(config.rules):
        router.apply(rule, np.flatnonzero(route & (rule_of == r)), 0, out)
    now = time.perf_counter()
    if timings is not None:
        timings["conditions"] = now - clock
    clock = now

    # 3. The round robin: sequential, in frame order, plain Python.
    new_state = state.copy()
    _round_robin(router, out, new_state, as_of)
    now = time.perf_counter()
    if timings is not None:
        timings["round_robin"] = now - clock
    clock = now

    # 4. Output: strings built once per distinct value.
    index = frame.index
    routed = route
    owner_codes = np.where(routed, out.owner, -1)
    owner = _iso_strings(router.owners, owner_codes, index)
    rule_names = [rule.name for rule in config.rules]
    rule_col = _iso_strings(rule_names, np.where(routed, rule_of, -1), index)

    reason_key = out.text.astype(np.int64) * len(router.notes) + out.notes
    reason_key = np.where(routed, reason_key, -1)
    keys, inverse = np.unique(reason_key, return_inverse=True)
    reasons: list[str | None] = []
    for key in keys.tolist():
        if key < 0:
            reasons.append(None)
            continue
        text, notes = router.texts[key // len(router.notes)], router.notes[key % len(router.notes)]
        reasons.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    reason = _iso_strings(reasons, np.asarray(inverse).reshape(-1).astype(np.int64), index)

    has_owner = routed & (out.owner >= 0)
    assigned_at = _iso_strings([as_of.strftime(_ISO)], np.where(has_owner, 0, -1), index)

    sla = np.array([rule.sla_minutes or 0 for rule in config.rules], dtype=np.int64)
    with_sla = has_owner & (sla[rule_of] > 0)
    due_key = np.where(with_sla, rule_of.astype(np.int64) * len(router.owners) + out.owner, -1)
    due_keys, due_inverse = np.unique(due_key, return_inverse=True)
    dues: list[str | None] = []
    for key in due_keys.tolist():
        if key < 0:
            dues.append(None)
            continue
        rule = config.rules[key // len(router.owners)]
        owner_ix = key % len(router.owners)
        is_user = owner_ix < len(router.user_ids)
        user = config.users[router.user_ids[owner_ix]] if is_user and rule.sla_working_hours else None
        zone = router.zones[owner_ix] if is_user else ZoneInfo(config.timezone)
        assert rule.sla_minutes is not None
        dues.append(_due(as_of, rule.sla_minutes, zone, user).strftime(_ISO))
    due = _iso_strings(dues, np.asarray(due_inverse).reshape(-1).astype(np.int64), index)

    result = pd.DataFrame({"owner_id": owner, "routing_rule": rule_col, "routing_reason": reason,
                           "assigned_at": assigned_at, "sla_due_at": due}, index=index)
    if keep.any():
        for column in ROUTING_COLUMNS:
            result[column] = result[column].mask(keep, previous[column])
    if left.any():  # left with its owner: the owner exactly as given, and why
        result["owner_id"] = result["owner_id"].mask(left, previous["owner_id"])
        result["routing_reason"] = result["routing_reason"].mask(left, decision.reason)
    if timings is not None:
        timings["output"] = time.perf_counter() - clock
    return result, new_state
