"""CRM first touches (`lead_first_touches`) and the assignments' first touch they stamp: `FirstTouchMixin` of
`StateStore`.

A page of touches the CRM records (Tasks, Events, status changes; `leadflow.connectors.salesforce_touches`) is kept
in one transaction with the watermark of the pull that read it, so a crash re-reads the page and a re-read changes
nothing: per lead the earliest touch wins, and an assignment's first touch becomes the earliest CRM touch at or after
its assignment, replacing a `pull` fallback or a later touch, never an earlier one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from leadflow.store.engine import StoreBase
from leadflow.store.first_touch_tables import PULL_SOURCE, TOUCH_SOURCES, lead_first_touches
from leadflow.store.tables import assignments, watermarks
from leadflow.store.values import CACHE_CHUNK_KEYS, _require_columns, _upsert, _utc_times

TOUCH_COLUMNS: Final = ("lead_key", "touched_at", "source")
"""One CRM touch per row (a lead may have several)."""
FIRST_TOUCH_COLUMNS: Final = ("lead_key", "first_touch_at", "source", "run_id", "updated_at")


class TouchCounts(NamedTuple):
    """What one `record_first_touches` call changed."""

    leads: int
    """Leads whose earliest CRM touch is new or earlier than the one kept."""
    assignments: int
    """Assignments whose first touch it set (replacing nothing, a `pull` fallback, or a later touch)."""


class FirstTouchMixin(StoreBase):
    """Each lead's earliest CRM first touch, and the assignments' first touch taken from it."""

    def record_first_touches(self, touches: pd.DataFrame, *, run_id: str, cursor: tuple[str, datetime] | None = None,
                             now: datetime | None = None) -> TouchCounts:
        """Keep the CRM touches of `touches` (TOUCH_COLUMNS; `source` one of TOUCH_SOURCES, `touched_at` aware) and
        move the watermark `cursor` = (name, value) in the same transaction. Per lead the earliest touch is kept;
        each lead's assignment gets as its first touch its earliest touch at or after `assigned_at` when it has
        none, only the `pull` fallback, or a later one."""
        _require_columns(touches, TOUCH_COLUMNS, "first touches")
        bad = sorted(set(touches["source"].dropna().astype(str)) - set(TOUCH_SOURCES))
        if bad or touches["source"].isna().any():
            raise ValueError(f"first touches: `source` must be one of {list(TOUCH_SOURCES)}, got {bad or [None]}")
        if touches["lead_key"].isna().any():
            raise ValueError(f"first touches: {int(touches['lead_key'].isna().sum())} row(s) have no `lead_key`")
        now = now or datetime.now(UTC)
        frame = pd.DataFrame({"lead_key": touches["lead_key"].astype(str).to_numpy(),
                              "touched_at": _utc_times(touches["touched_at"], "first touches `touched_at`").to_numpy(),
                              "source": touches["source"].astype(str).to_numpy()})
        # ties: one order for every run (earliest time, then source name)
        earliest = frame.sort_values(["touched_at", "source"], kind="stable").drop_duplicates("lead_key")
        keys = earliest["lead_key"].tolist()
        with self._writing() as conn:
            was = earliest.merge(_kept(conn, keys), on="lead_key", how="left")["kept_at"]
            moved = earliest[(was.isna() | (earliest["touched_at"].to_numpy() < was)).to_numpy(dtype=bool)]
            _keep_earliest(conn, moved, run_id, now)
            stamped = _stamp_assignments(conn, frame)
            _mark_runs(conn, sorted(set(stamped) - set(moved["lead_key"])), run_id, now)
            if cursor is not None:
                name, value = cursor
                row = {"source": name, "value": value, "run_id": run_id, "updated_at": now}
                _upsert(conn, watermarks, [row], [watermarks.c.source],
                        lambda excluded: {"value": excluded.value, "run_id": excluded.run_id,
                                          "updated_at": excluded.updated_at})
        return TouchCounts(len(moved), len(stamped))

    def earliest_assignment(self) -> datetime | None:
        """When the first recorded assignment was made (None: none yet): touches before it answer no assignment."""
        with self._engine.connect() as conn:
            # min() keeps the column's type: an aware UTC datetime on both backends
            value: datetime | None = conn.execute(sa.select(sa.func.min(assignments.c.assigned_at))).scalar()
        return value

    def first_touches(self, lead_keys: list[str] | None = None) -> pd.DataFrame:
        """The kept CRM first touches (FIRST_TOUCH_COLUMNS; all, or of `lead_keys`), times as UTC timestamps."""
        columns = list(FIRST_TOUCH_COLUMNS)
        if lead_keys is None:
            frame = self._rows(sa.select(*(lead_first_touches.c[c] for c in columns)), columns)
        else:
            wanted = list(dict.fromkeys(lead_keys))
            parts = [self._rows(sa.select(*(lead_first_touches.c[c] for c in columns)).where(
                lead_first_touches.c.lead_key.in_(wanted[start:start + CACHE_CHUNK_KEYS])), columns)
                for start in range(0, len(wanted), CACHE_CHUNK_KEYS)]
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
        for column in ("first_touch_at", "updated_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame


def _kept(conn: Any, keys: list[str]) -> pd.DataFrame:
    """(lead_key, kept_at): the earliest CRM touch kept so far, for those of `keys` that have one."""
    rows: list[Any] = []
    for start in range(0, len(keys), CACHE_CHUNK_KEYS):
        rows += conn.execute(sa.select(lead_first_touches.c.lead_key, lead_first_touches.c.first_touch_at).where(
            lead_first_touches.c.lead_key.in_(keys[start:start + CACHE_CHUNK_KEYS]))).all()
    return pd.DataFrame({"lead_key": pd.Series([r[0] for r in rows], dtype=object),
                         "kept_at": pd.to_datetime(pd.Series([r[1] for r in rows], dtype=object), utc=True)})


def _keep_earliest(conn: Any, moved: pd.DataFrame, run_id: str, now: datetime) -> None:
    if moved.empty:
        return
    rows = [{"lead_key": key, "first_touch_at": at.to_pydatetime(), "source": source, "run_id": run_id,
             "updated_at": now}
            for key, at, source in zip(moved["lead_key"], moved["touched_at"], moved["source"], strict=True)]
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(lead_first_touches)
    table = lead_first_touches
    # only ever earlier: a run that kept an earlier touch meanwhile keeps it
    conn.execute(insert.on_conflict_do_update(
        index_elements=[table.c.lead_key],
        set_={"first_touch_at": insert.excluded.first_touch_at, "source": insert.excluded.source,
              "run_id": insert.excluded.run_id, "updated_at": insert.excluded.updated_at},
        where=table.c.first_touch_at > insert.excluded.first_touch_at), rows)


def _stamp_assignments(conn: Any, touches: pd.DataFrame) -> list[str]:
    """Set the first touch of the assignments these touches answer; returns their lead keys."""
    keys = touches["lead_key"].unique().tolist()
    rows: list[Any] = []
    a = assignments.c
    for start in range(0, len(keys), CACHE_CHUNK_KEYS):
        rows += conn.execute(sa.select(a.lead_key, a.assigned_at, a.first_touch_at, a.first_touch_source).where(
            a.lead_key.in_(keys[start:start + CACHE_CHUNK_KEYS]))).all()
    if not rows:
        return []
    held = pd.DataFrame({"lead_key": [r[0] for r in rows],
                         "assigned_at": pd.to_datetime([r[1] for r in rows], utc=True),
                         "first_touch_at": pd.to_datetime([r[2] for r in rows], utc=True),
                         "first_touch_source": [r[3] for r in rows]})
    joined = touches.merge(held, on="lead_key")
    after = joined[(joined["touched_at"] >= joined["assigned_at"]).to_numpy()]
    best = after.sort_values(["touched_at", "source"], kind="stable").drop_duplicates("lead_key")
    replaceable = (best["first_touch_source"].isna() | (best["first_touch_source"] == PULL_SOURCE)
                   | (best["first_touch_at"] > best["touched_at"]).fillna(False)).to_numpy(dtype=bool)
    best = best[replaceable]
    if best.empty:
        return []
    statement = assignments.update().where(
        a.lead_key == sa.bindparam("b_key"), a.assigned_at <= sa.bindparam("b_at"),
        sa.or_(a.first_touch_source.is_(None), a.first_touch_source == PULL_SOURCE,
               a.first_touch_at > sa.bindparam("b_at")),
    ).values(first_touch_at=sa.bindparam("b_at"), first_touch_source=sa.bindparam("b_source"))
    conn.execute(statement, [{"b_key": key, "b_at": at.to_pydatetime(), "b_source": source}
                             for key, at, source in zip(best["lead_key"], best["touched_at"], best["source"],
                                                        strict=True)])
    return best["lead_key"].tolist()


def _mark_runs(conn: Any, keys: list[str], run_id: str, now: datetime) -> None:
    """Name `run_id` as the run that last moved these leads' first touch (their assignment's, here)."""
    for start in range(0, len(keys), CACHE_CHUNK_KEYS):
        conn.execute(lead_first_touches.update().where(
            lead_first_touches.c.lead_key.in_(keys[start:start + CACHE_CHUNK_KEYS])).values(
            run_id=run_id, updated_at=now))
