"""The lead lifecycle as a configurable state machine: new → MQL → SAL → SQL, with recycling to nurture.

Where a lead may go next is data (`reference/lifecycle.yaml`): the score moves a lead into MQL (a recycled lead only
on fresh engagement), the CRM's status moves it further (sales accepted, converted, nurture) through `status_map`.
A lead seen for the first time takes the stage its CRM status means (an initial load is not a move). Its stamp is
when the CRM changed the status to that value (the status-change history, e.g. Salesforce LeadHistory) where the
org has it; else it stays empty and `lifecycle_reason` says the date is unknown — never the run's time, which would
make years-old SQLs look like today's. After that, a move the `transitions` table does not allow is refused: the
lead stays where it was, and `lifecycle_reason` says what was refused and why, so nothing silently jumps backwards
(SQL → new) or skips a step ops did not allow. Every applied move is stamped (`mql_at`, `sal_at`, `sql_at`,
`recycled_at`) with the run's as-of time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.yamlio import load_yaml, parse_model

LifecycleStage = Literal["new", "mql", "sal", "sql", "recycled"]
STAGES: Final[tuple[str, ...]] = ("new", "mql", "sal", "sql", "recycled")
STAMPS: Final[dict[str, str]] = {"mql": "mql_at", "sal": "sal_at", "sql": "sql_at", "recycled": "recycled_at"}
LIFECYCLE_COLUMNS: Final[tuple[str, ...]] = ("lifecycle_stage", "lifecycle_reason", *STAMPS.values())
DEFAULT_LIFECYCLE: Final[Path] = REFERENCE_DIR / "lifecycle.yaml"
HISTORY_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "status", "changed_at")
"""A CRM status-change history frame (`RunInputs.status_history`): lead key, the status it changed to, when (ISO UTC)."""


class LifecyclePolicy(BaseModel):
    """Allowed moves and how CRM statuses map to lifecycle stages (YAML, `load_lifecycle_policy`)."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    transitions: dict[LifecycleStage, list[LifecycleStage]] = Field(
        description="From a stage, the stages a lead may move to. A stage missing here allows no move out of it."
    )
    status_map: dict[str, LifecycleStage] = Field(
        default_factory=dict, description="CRM status (exact text) → the stage it means."
    )
    recycle_reasons: dict[str, str] = Field(
        default_factory=dict, description="CRM status → why the lead went back to nurture (for lifecycle_reason)."
    )
    fresh_engagement_days: float = Field(
        default=30, gt=0,
        description="A recycled lead returns to MQL only with an activity newer than its recycled_at, and within "
        "this many days of the run.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LifecyclePolicy:
        for source, targets in self.transitions.items():
            if source in targets:
                raise ValueError(f"transitions.{source} lists {source} itself")
        unknown = sorted(set(self.recycle_reasons) - {s for s, t in self.status_map.items() if t == "recycled"})
        if unknown:
            raise ValueError(f"recycle_reasons names statuses that status_map does not map to recycled: {unknown}")
        return self

    def allows(self, source: str, target: str) -> bool:
        return target in self.transitions.get(source, [])  # type: ignore[call-overload]


def load_lifecycle_policy(path: Path = DEFAULT_LIFECYCLE) -> LifecyclePolicy:
    """Load and validate a lifecycle policy YAML; errors name the file and YAML path."""
    return parse_model(LifecyclePolicy, load_yaml(path), path)


def _iso(moment: datetime) -> str:
    return pd.Timestamp(moment).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def advance_lifecycle(
    frame: pd.DataFrame,
    policy: LifecyclePolicy,
    *,
    mql_threshold: float,
    last_activity: pd.Series,
    as_of: datetime,
    first_seen: pd.Series | None = None,
) -> pd.DataFrame:
    """Move each lead along the lifecycle; returns LIFECYCLE_COLUMNS on `frame.index`.

    `frame` needs `score`, `status` and the previous LIFECYCLE_COLUMNS (empty for a new lead); `last_activity` is
    each lead's latest engagement time (UTC datetimes, NaT when none) aligned with `frame`. `first_seen`: per lead,
    when the CRM changed its status to the current value (canonical ISO UTC text, NA when unknown), the stamp of a
    first sight. A recycled lead whose recycled_at is unknown counts engagement after its `updated_at` (if known) as
    fresh.
    """
    now = pd.Timestamp(as_of).tz_convert("UTC")
    stamp = _iso(as_of)
    # Stages as codes into STAGES (numpy masks, no string comparison per row); texts written only for moved rows.
    earlier = frame["lifecycle_stage"].astype("string")
    named = earlier.fillna("new")
    unknown = ~named.isin(STAGES)
    reason = frame["lifecycle_reason"].astype("string").copy()
    reason[unknown] = "unknown earlier stage " + named[unknown] + ": treated as new"
    stage = _stage_codes(named)
    stamps = {column: frame[column].astype("string").copy() for column in STAMPS.values()}
    score = frame["score"].astype("Float64").fillna(-np.inf).to_numpy(dtype=float)
    crossed = score >= mql_threshold

    def move(mask: np.ndarray, target: str, why: Callable[[np.ndarray], pd.Series | str]) -> None:
        nonlocal reason
        if not mask.any():
            return
        stage[mask] = STAGES.index(target)
        reason = _put(reason, mask, why(mask))
        stamps[STAMPS[target]] = _put(stamps[STAMPS[target]], mask, stamp)

    # 0. A lead leadflow has never tracked takes the stage its CRM status means (an initial load is no transition),
    #    stamped when the CRM says the status changed, or not at all: never with the run's time.
    status = frame["status"].astype("string")
    status_codes, statuses = status.factorize(use_na_sentinel=True)
    mapped = _lookup(status_codes, [STAGES.index(policy.status_map[s]) if s in policy.status_map else -1
                                    for s in statuses])
    untracked = earlier.isna().to_numpy(dtype=bool) & (mapped >= 0)
    if untracked.any():
        since = (pd.Series(pd.NA, index=frame.index, dtype="string") if first_seen is None
                 else first_seen.reindex(frame.index).astype("string"))
        for target in ("mql", "sal", "sql", "recycled"):
            adopt = untracked & (mapped == STAGES.index(target))
            if adopt.any():
                stage[adopt] = STAGES.index(target)
                rows = np.flatnonzero(adopt)
                why_first = "first seen with crm status " + status.iloc[rows] + (
                    " (since " + since.iloc[rows] + ", crm history)").fillna(" (date unknown)")
                reason = _put(reason, adopt, why_first)
                stamps[STAMPS[target]] = _put(stamps[STAMPS[target]], adopt, since.iloc[rows])

    # 1. The score: new → MQL; recycled → MQL only on engagement newer than the recycling and recent.
    def why_mql(mask: np.ndarray, after: str = "") -> pd.Series:
        # Scores repeat: each distinct rounded score (by its bits, so -0.0 stays "-0.0") is written as text once.
        rounded = frame["score"].iloc[np.flatnonzero(mask)].astype("Float64").round(1)
        codes, _ = pd.factorize(rounded.to_numpy(dtype=float, na_value=np.nan).view(np.int64))
        first = np.full(codes.max(initial=-1) + 1, len(codes), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(codes)))
        text = pd.Series(rounded.iloc[first].astype("string").array.take(codes), dtype="string")
        return "score " + text.fillna("?") + f" ≥ {mql_threshold:g}{after}"

    is_new = stage == STAGES.index("new")
    move(is_new & crossed & policy.allows("new", "mql"), "mql", why_mql)
    is_recycled = stage == STAGES.index("recycled")
    candidates = is_recycled & crossed & policy.allows("recycled", "mql")
    if candidates.any():  # engagement matters only to these
        recycled_at = pd.to_datetime(stamps["recycled_at"], utc=True, errors="coerce")
        if "updated_at" in frame:  # recycled at an unknown time: no later than the record's last change
            recycled_at = recycled_at.fillna(pd.to_datetime(frame["updated_at"], utc=True, errors="coerce"))
        activity = pd.to_datetime(last_activity, utc=True, errors="coerce").reindex(frame.index)
        fresh = (
            (activity > recycled_at.fillna(pd.Timestamp.min.tz_localize("UTC")))
            & (activity >= now - pd.Timedelta(days=policy.fresh_engagement_days))
        ).fillna(False).to_numpy(dtype=bool)
        move(candidates & fresh, "mql", lambda mask: why_mql(mask, " after fresh engagement"))

    # 2. The CRM status: sales accepted, converted, sent to nurture.
    wants = (mapped >= 0) & (mapped != stage)
    for target in ("sal", "sql", "recycled", "mql", "new"):
        asks = wants & (mapped == STAGES.index(target))
        if not asks.any():
            continue
        allowed = np.array([policy.allows(s, target) for s in STAGES], dtype=bool)[stage]
        refused = asks & ~allowed
        if refused.any():
            rows = np.flatnonzero(refused)
            reason = _put(reason, refused, "refused " + _stage_texts(stage[rows], frame.index[rows]) + " → " + target
                          + " (crm status " + status.iloc[rows] + ")")
        move(asks & allowed, target, _crm_why(status, policy, target))

    out = pd.DataFrame({"lifecycle_stage": _stage_texts(stage, frame.index), "lifecycle_reason": reason},
                       index=frame.index)
    for column, values in stamps.items():
        out[column] = values
    return out[list(LIFECYCLE_COLUMNS)].astype("string")


def _stage_codes(named: pd.Series) -> np.ndarray:
    """Position in STAGES of each stage name (an unknown name counts as "new")."""
    codes, names = named.factorize(use_na_sentinel=True)
    return _lookup(codes, [STAGES.index(n) if n in STAGES else 0 for n in names], missing=0)


def _lookup(codes: np.ndarray, table: list[int], missing: int = -1) -> np.ndarray:
    """`table[code]` per code (`missing` for the -1 of NA), as a writable int64 array."""
    return np.append(np.asarray(table, dtype=np.int64), missing)[np.asarray(codes)]


def _stage_texts(codes: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """STAGES[code] per code, as `string`."""
    return pd.Series(pd.array(list(STAGES), dtype="string").take(codes), index=index, dtype="string")


def _put(column: pd.Series, mask: np.ndarray, values: pd.Series | str | None) -> pd.Series:
    """`column` with the rows of `mask` set to `values`: one scalar, or one value per masked row in order."""
    out = column.copy()
    out.iloc[np.flatnonzero(mask)] = values.array if isinstance(values, pd.Series) else values
    return out


def _crm_why(status: pd.Series, policy: LifecyclePolicy, target: str) -> Callable[[np.ndarray], pd.Series]:
    """`lifecycle_reason` of the leads of `mask` moved to `target` by their CRM status."""
    def why(mask: np.ndarray) -> pd.Series:
        asked = status.iloc[np.flatnonzero(mask)]
        if target == "recycled":
            return "recycled: " + asked.map(policy.recycle_reasons).fillna(asked).astype("string")
        return f"crm status → {target}: " + asked
    return why


def refused_count(frame: pd.DataFrame) -> int:
    """Leads whose last requested move was refused (reported in run summaries)."""
    if "lifecycle_reason" not in frame:
        return 0
    return int(frame["lifecycle_reason"].astype("string").str.startswith("refused ").fillna(False).sum())
