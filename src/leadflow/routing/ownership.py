"""Ownership: which leads are leadflow's to route, and why the others keep the owner they have.

Routing must never take a lead away from the person working it. A lead is routed only when

- it is not converted (`is_converted`; Salesforce refuses any update of a converted lead), and
- its status is open (`open_statuses`; any other status means someone is working it — never re-routed, not even by
  `reassign`), and one of:
  - it has no owner at all;
  - its owner is a queue (`route_when.owner_is_queue`): a Salesforce queue id (key prefix `00G`, the Group object),
    a queue of the routing config, or a queue the CRM reports (Group, Type = 'Queue');
  - its owner is an inactive user (`route_when.owner_inactive`): the CRM says IsActive = false, or the routing
    config says `active: false` and the CRM does not say otherwise;
  - its owner is one of `unassigned_owners` (`route_when.owner_unassigned`): the default lead owner or integration
    user that web-to-lead and imports leave leads with;
  - leadflow routed it before (its routing_rule and assigned_at come back in the frame) and the rule matching it
    now says `reassign: true` (else it keeps that earlier routing, as before);
  - the rule matching it says `reassign:` with conditions (`Reassign`) and they all hold: this is the only way a
    lead owned by an active person is ever re-owned.

Every other lead keeps `owner_id` exactly as it came, no routing_rule, no assigned_at, and a routing_reason starting
with `kept: ` that says why. An owner id that is neither a known active user, nor inactive, nor a queue is treated as a
person (kept): leadflow knows nothing about it, and a person is the safe guess.

Salesforce facts relied on (cite when changing them):
- Lead.IsConverted, read-only: Object Reference for the Salesforce Platform, "Lead":
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_lead.htm
- Converted leads cannot be updated (StatusCode CANNOT_UPDATE_CONVERTED_LEAD): SOAP API Developer Guide, "Core Data
  Types Used in API Calls" (StatusCode):
  https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm
- A lead's OwnerId is a User (key prefix 005) or a queue, which is a Group with Type = 'Queue' (key prefix 00G):
  Object Reference, "Group":
  https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_group.htm
  Group's key prefix is 00G (what REST "sObject Describe" reports as `keyPrefix`):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_OPEN_STATUSES",
    "KEPT",
    "OwnerDirectory",
    "Ownership",
    "OwnershipDecision",
    "Reassign",
    "ReplayCheck",
    "RouteWhen",
    "check_replay",
    "converted_mask",
    "decide_ownership",
    "kept_mask",
    "owner_kinds",
    "worked_mask",
]

DEFAULT_OPEN_STATUSES: Final[tuple[str, ...]] = ("Open - Not Contacted", "New", "Open", "NEW", "OPEN")
"""Statuses that mean nobody has worked the lead yet (Salesforce's default first Lead Status, HubSpot's
hs_lead_status NEW/OPEN, common custom values)."""
SALESFORCE_QUEUE_PREFIX: Final[str] = "00G"
"""Key prefix of Group records; a lead owned by a Group is owned by a queue."""
KEPT: Final[str] = "kept: "
"""The prefix of every routing_reason of a lead left with its owner."""

# Owner kinds (codes per lead).
NONE, QUEUE, INACTIVE, UNASSIGNED, ACTIVE, UNKNOWN = range(6)


class Reassign(BaseModel):
    """`reassign:` in object form: re-own a lead matching this rule — even one an active person owns — when every
    condition given holds. At least one of `statuses` and `min_age_hours` is required. A worked (not open) status or
    a converted lead is never re-owned, whatever this says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    statuses: list[str] | None = Field(default=None, min_length=1,
                                       description="The lead's status is one of these (each must be an open status).")
    min_age_hours: float | None = Field(default=None, ge=0, description="At least this old (see `age_from`).")
    age_from: Literal["created_at", "assigned_at"] = Field(
        default="created_at", description="created_at: the lead's creation; assigned_at: leadflow's last assignment "
        "(a lead leadflow never assigned counts from its creation). Unknown time: the condition does not hold.")
    owners: Literal["any_active", "any"] | list[str] = Field(
        default="any_active", description="any_active: owned by a known active user; any: whoever owns it; "
        "a list: owned by one of these ids.")

    @model_validator(mode="after")
    def _conditions(self) -> Reassign:
        if self.statuses is None and self.min_age_hours is None:
            raise ValueError("give at least one condition (statuses, min_age_hours); `reassign: true` re-routes only "
                             "leads leadflow assigned itself")
        return self

    def text(self) -> str:
        parts = []
        if self.statuses:
            parts.append("status " + "/".join(self.statuses))
        if self.min_age_hours is not None:
            parts.append(f"≥ {self.min_age_hours:g} h since {self.age_from.removesuffix('_at')}")
        owners = self.owners if isinstance(self.owners, str) else "one of " + ", ".join(self.owners)
        return f"re-owns leads ({'; '.join(parts)}; owner {owners.replace('_', ' ')})"


class RouteWhen(BaseModel):
    """Which owners mean "nobody has this lead yet" (routing.route_when). A lead with no owner is always routed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner_is_queue: bool = True
    owner_inactive: bool = True
    owner_unassigned: bool = Field(default=True, description="Owned by one of routing.unassigned_owners.")


@dataclass(frozen=True)
class OwnerDirectory:
    """What the CRM says about owner ids: active users, inactive users, queues."""

    active: frozenset[str] = frozenset()
    inactive: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    integration_users: frozenset[str] = frozenset()
    """The API user leadflow connects as: a lead created through the API without an owner belongs to it (Salesforce
    makes the creating user the owner), so its leads are nobody's yet, like `unassigned_owners`."""


@dataclass(frozen=True)
class Ownership:
    """The run's ownership policy (from the run config's routing section) and the CRM's owner directory."""

    open_statuses: frozenset[str] = frozenset(DEFAULT_OPEN_STATUSES)
    unassigned_owners: frozenset[str] = frozenset()
    route_when: RouteWhen = field(default_factory=RouteWhen)
    directory: OwnerDirectory = field(default_factory=OwnerDirectory)

    def with_directory(self, directory: OwnerDirectory) -> Ownership:
        return replace(self, directory=directory)


@dataclass(frozen=True)
class OwnershipDecision:
    """Per lead (positional): route it now; keep leadflow's earlier routing; or leave it with its owner (`left`,
    with `reason`, NA elsewhere)."""

    route: np.ndarray
    keep_previous: np.ndarray
    left: np.ndarray
    reason: pd.Series


class _RosterQueue(Protocol):
    @property
    def owner_id(self) -> str: ...


class _RosterUser(Protocol):
    @property
    def active(self) -> bool: ...


class _RosterRule(Protocol):
    @property
    def reassign(self) -> bool | Reassign: ...


class RoutingRoster(Protocol):
    """What ownership reads of a routing config (a `leadflow.routing.RoutingConfig`): its queues, users and rules.
    A protocol rather than an import of that class: routing builds on this module."""

    @property
    def queues(self) -> Mapping[str, _RosterQueue]: ...

    @property
    def users(self) -> Mapping[str, _RosterUser]: ...

    @property
    def rules(self) -> Sequence[_RosterRule]: ...


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame[column].astype("string").str.strip().replace("", pd.NA)


def worked_mask(status: pd.Series, ownership: Ownership) -> np.ndarray:
    """Per lead: someone works it (a status outside `open_statuses`; no status is not worked)."""
    return (status.notna() & ~status.isin(list(ownership.open_statuses))).to_numpy(dtype=bool, na_value=False)


def converted_mask(frame: pd.DataFrame) -> np.ndarray:
    """Per lead: converted (`is_converted`; a frame without the column has none)."""
    if "is_converted" not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame["is_converted"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def owner_kinds(owner: pd.Series, ownership: Ownership, config: RoutingRoster) -> np.ndarray:
    """Per lead: NONE, QUEUE, INACTIVE, UNASSIGNED, ACTIVE or UNKNOWN (codes of this module), decided once per
    distinct owner id."""
    codes, uniques = pd.factorize(owner.astype("string").str.strip().replace("", pd.NA), use_na_sentinel=True)
    directory = ownership.directory
    queues = {q.owner_id for q in config.queues.values()} | set(directory.queues)
    configured_active = {uid for uid, user in config.users.items() if user.active}
    configured_inactive = {uid for uid, user in config.users.items() if not user.active}

    def kind(uid: str) -> int:
        if uid in ownership.unassigned_owners or uid in directory.integration_users:
            return UNASSIGNED
        if uid in queues or uid.startswith(SALESFORCE_QUEUE_PREFIX):
            return QUEUE
        if uid in directory.inactive or (uid in configured_inactive and uid not in directory.active):
            return INACTIVE
        if uid in directory.active or uid in configured_active:
            return ACTIVE
        return UNKNOWN

    lookup = np.array([kind(str(u)) for u in uniques] + [NONE], dtype=np.int8)
    return lookup[codes]


def _hours_since(values: pd.Series, as_of: datetime) -> np.ndarray:
    when = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    hours = (pd.Timestamp(as_of).tz_convert("UTC") - when).dt.total_seconds() / 3600.0
    return hours.to_numpy(dtype=float, na_value=np.nan)


def _reassign_holds(rule: Reassign, idx: np.ndarray, frame: pd.DataFrame, kinds: np.ndarray, owner: pd.Series,
                    status: pd.Series, as_of: datetime) -> np.ndarray:
    """For the leads at positions `idx`: do all of `rule`'s conditions hold?"""
    ok = np.ones(idx.size, dtype=bool)
    if rule.statuses is not None:
        ok &= status.iloc[idx].isin(rule.statuses).to_numpy(dtype=bool, na_value=False)
    if rule.min_age_hours is not None:
        start = _text(frame, "created_at")
        if rule.age_from == "assigned_at":
            start = _text(frame, "assigned_at").fillna(start)
        with np.errstate(invalid="ignore"):
            ok &= np.nan_to_num(_hours_since(start.iloc[idx], as_of), nan=-1.0) >= rule.min_age_hours
    if rule.owners == "any_active":
        ok &= kinds[idx] == ACTIVE
    elif isinstance(rule.owners, list):
        ok &= owner.iloc[idx].isin(rule.owners).to_numpy(dtype=bool, na_value=False)
    return ok


def decide_ownership(
    frame: pd.DataFrame, config: RoutingRoster, ownership: Ownership, rule_of: np.ndarray, assigned: np.ndarray,
    as_of: datetime,
) -> OwnershipDecision:
    """Which leads to route now (see the module docstring). `rule_of`: each lead's first matching rule (index into
    config.rules); `assigned`: leadflow routed it before (previous routing_rule and assigned_at present)."""
    n = len(frame)
    owner = _text(frame, "owner_id")
    status = _text(frame, "status")
    kinds = owner_kinds(owner, ownership, config)
    converted = converted_mask(frame)
    worked = worked_mask(status, ownership)
    frozen = converted | worked  # never (re-)routed

    legacy = np.array([rule.reassign is True for rule in config.rules], dtype=bool)[rule_of]
    conditional = np.zeros(n, dtype=bool)
    for r, rule in enumerate(config.rules):
        if isinstance(rule.reassign, Reassign):
            idx = np.flatnonzero((rule_of == r) & ~frozen)
            conditional[idx] = _reassign_holds(rule.reassign, idx, frame, kinds, owner, status, as_of)

    when = ownership.route_when
    unowned = ((kinds == NONE) | ((kinds == QUEUE) & when.owner_is_queue) | ((kinds == INACTIVE) & when.owner_inactive)
               | ((kinds == UNASSIGNED) & when.owner_unassigned))
    # leadflow's own earlier assignments: kept unless re-routed (legacy reassign, conditions, or an owner gone inactive)
    again = assigned & ~frozen & (legacy | conditional | ((kinds == INACTIVE) & when.owner_inactive))
    fresh = ~assigned & ~frozen & (unowned | conditional)
    route = again | fresh
    keep_previous = assigned & ~again
    left = ~assigned & ~fresh

    reasons = np.full(n, None, dtype=object)
    why_kind = {
        QUEUE: "owned by a queue (route_when.owner_is_queue is off)",
        INACTIVE: "owner inactive (route_when.owner_inactive is off)",
        UNASSIGNED: "default owner (route_when.owner_unassigned is off)",
        ACTIVE: "owned by active user",
        UNKNOWN: "owner not a known user or queue (treated as a person)",
    }
    for code, why in why_kind.items():
        reasons[left & (kinds == code)] = KEPT + why
    for value in status[left & worked].dropna().unique().tolist():
        reasons[left & worked & (status == value).to_numpy(dtype=bool, na_value=False)] = f"{KEPT}worked status {value}"
    reasons[left & converted] = KEPT + "converted"
    return OwnershipDecision(route=route, keep_previous=keep_previous, left=left,
                             reason=pd.Series(reasons, index=frame.index, dtype="string"))


def kept_mask(reasons: pd.Series) -> pd.Series:
    """Leads left with their owner (routing_reason starts with `kept: `)."""
    return reasons.astype("string").str.startswith(KEPT).fillna(False).astype(bool)


def reassign_statuses_error(reassign: Any, open_statuses: frozenset[str]) -> str | None:
    """Why a rule's `reassign.statuses` is refused (it names a worked status), or None."""
    if not isinstance(reassign, Reassign) or reassign.statuses is None:
        return None
    worked = [s for s in reassign.statuses if s not in open_statuses]
    if worked:
        return (f"reassign.statuses names {worked}, not open statuses (routing.open_statuses: "
                f"{sorted(open_statuses)}): a worked lead is never re-routed")
    return None


@dataclass(frozen=True)
class ReplayCheck:
    """Dead-letter changes checked against the lead as the CRM has it now: `replay` to send; `settled` record ids
    whose letters end without a write (converted, deleted, or nothing left to write); `owners_dropped` owner changes
    left out because someone took or works the lead since."""

    replay: pd.DataFrame
    settled: list[str]
    owners_dropped: int


def check_replay(replay: pd.DataFrame, current: pd.DataFrame, ownership: Ownership,
                 config: RoutingRoster | None) -> ReplayCheck:
    """A failed write is replayed later, maybe hours after it was decided: a converted or deleted lead is never
    written, and an owner change is dropped when the lead is now worked (status not open) or a person (an active
    or unknown user other than the one we chose) owns it — leadflow never takes a lead from someone working it.
    `replay`: record_id + canonical columns (NA = unchanged); `current`: record_id, owner_id, status, is_converted."""
    if replay.empty:
        return ReplayCheck(replay, [], 0)
    now = current.drop_duplicates("record_id").set_index("record_id")
    ids = replay["record_id"].astype("string")
    known = ids.isin(now.index).to_numpy(dtype=bool)
    converted = ids.map(now["is_converted"]).astype("boolean").fillna(False).to_numpy(dtype=bool)
    out = replay[known & ~converted].copy()
    dropped = 0
    if "owner_id" in out.columns and config is not None and len(out):
        rid = out["record_id"].astype("string")
        current_owner = rid.map(now["owner_id"]).astype("string")
        status = rid.map(now["status"]).astype("string")
        worked = worked_mask(status, ownership)
        kinds = owner_kinds(current_owner, ownership, config)
        person = np.isin(kinds, (ACTIVE, UNKNOWN)) & (current_owner != out["owner_id"].astype("string")).to_numpy(
            dtype=bool, na_value=True)
        stale = out["owner_id"].notna().to_numpy(dtype=bool) & (worked | person)
        dropped = int(stale.sum())
        out["owner_id"] = out["owner_id"].mask(stale)
    changes = [c for c in out.columns if c != "record_id"]
    empty = out[changes].isna().all(axis=1).to_numpy(dtype=bool) if changes else np.ones(len(out), dtype=bool)
    settled = [*ids[~known | converted].tolist(), *out.loc[empty, "record_id"].astype(str).tolist()]
    return ReplayCheck(out[~empty], [str(s) for s in settled], dropped)


def with_assignments(frame: pd.DataFrame, known: pd.DataFrame, rules: Any = None) -> pd.DataFrame:
    """`frame` with each lead's recorded assignment (`known`: the store's assignments rows) applied, so assigned
    leads stay assigned. Once the owner was written back, the owner the source carries wins (a person may have
    reassigned the lead in the CRM); before that (a refused or failed write, another run's write still under way, or
    file mode) the source's owner is the stale one and the recorded wins — unless the lead is converted or someone
    works it now (a status outside `rules.ownership.open_statuses`): then the source's owner is the person working
    it, and leadflow never takes a worked lead away."""
    from leadflow.pipeline.schema import lead_keys

    if known.empty:
        return frame
    keys = lead_keys(frame)
    known = known.set_index("lead_key")
    has = keys.isin(known.index).to_numpy(dtype=bool)
    out = frame.copy(deep=False)
    for column in ("routing_rule", "routing_reason"):
        out[column] = out[column].astype("string").mask(has, keys.map(known[column]).astype("string"))
    for column in ("assigned_at", "sla_due_at"):
        stamps = pd.to_datetime(known[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out[column] = out[column].astype("string").mask(has, keys.map(stamps).astype("string"))
    recorded_owner = keys.map(known["owner_id"]).astype("string")
    unwritten = keys.map(known["written_at"].isna()).fillna(False).astype(bool).to_numpy().copy()
    ownership = getattr(rules, "ownership", None)
    if ownership is not None:
        status = out["status"].astype("string") if "status" in out else pd.Series(pd.NA, index=out.index,
                                                                                   dtype="string")
        unwritten &= ~(worked_mask(status, ownership) | converted_mask(out))
    owner = out["owner_id"].astype("string")
    out["owner_id"] = owner.mask(has & unwritten & recorded_owner.notna().to_numpy(), recorded_owner).fillna(
        recorded_owner)
    return out
