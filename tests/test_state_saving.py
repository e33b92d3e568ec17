"""Per-lead state written in bulk (`leadflow.store.bulk`) stores exactly what the row-by-row code it replaced stored.

The reference functions below are the implementations before issue 17 (a dict per row, SQLAlchemy's bind processing),
kept here as the oracle: the same frames go through both, and every column of the rows they leave is compared as the
database holds it (JSON compared as stored text, times as stored), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from leadflow.pipeline.schema import lead_keys
from leadflow.store import StateStore
from leadflow.store import lead_state as lead_state_module
from leadflow.store import routing as routing_module
from leadflow.store.bulk import json_objects
from leadflow.store.tables import assignments, lead_state
from leadflow.store.values import STATE_CHUNK_ROWS, _cell_text, _json_dumps, _upsert
from tasks.routing import ROUTING_INPUTS, record_assignments
from tests.dbs import clear_tables, store_urls

state_url = store_urls()

FIXED_NOW = datetime(2026, 11, 18, 15, 0, 0, 123456, tzinfo=UTC)
HOSTILE = ["Köln — Straße", 'say "hi"', "back\\slash", "line\nbreak\ttab\r", "ctl\x01\x1f\x7f", "😀 emoji",
           "\u2028sep", "", " ", "1,2", "null", "{}", "\\u0041", "".join(map(chr, range(1, 0x20)))]
"""Text a JSON encoder or a CSV writer could get wrong; every control character but NUL (PostgreSQL text has none)."""


# -- the implementations before issue 17 (the oracle) -------------------------------------------------------------


def old_snapshots(frame: pd.DataFrame) -> list[dict]:  # type: ignore[type-arg]
    text = frame.astype("string")
    return [{k: v for k, v in row.items() if v is not None and not pd.isna(v)}
            for row in text.astype(object).where(text.notna(), None).to_dict("records")]


def old_record(store: StateStore, run_id: str, made: pd.DataFrame) -> int:
    latest = made.drop_duplicates("lead_key", keep="last")
    assigned = pd.to_datetime(latest["assigned_at"], utc=True)
    due = pd.to_datetime(latest["sla_due_at"], utc=True)
    inputs = latest["inputs"].tolist() if "inputs" in latest else [None] * len(latest)
    rows = [
        {"lead_key": key, "owner_id": _cell_text(owner), "routing_rule": rule, "routing_reason": _cell_text(why),
         "assigned_at": a.to_pydatetime(), "sla_due_at": None if pd.isna(d) else d.to_pydatetime(),
         "first_touch_at": None, "breached_at": None, "run_id": run_id, "inputs": snapshot, "written_at": None}
        for key, owner, rule, why, a, d, snapshot in zip(
            latest["lead_key"], latest["owner_id"], latest["routing_rule"], latest["routing_reason"], assigned,
            due, inputs, strict=True)
    ]
    with store._writing() as conn:
        for start in range(0, len(rows), STATE_CHUNK_ROWS):
            _upsert(conn, assignments, rows[start : start + STATE_CHUNK_ROWS], [assignments.c.lead_key],
                    lambda excluded: {c: excluded[c] for c in ("owner_id", "routing_rule", "routing_reason",
                                                               "assigned_at", "sla_due_at", "first_touch_at",
                                                               "breached_at", "run_id", "inputs", "written_at")})
    return len(rows)


STAMPS = ("mql_at", "sal_at", "sql_at", "recycled_at")


def old_save_lifecycle_state(store: StateStore, state: pd.DataFrame, run_id: str) -> int:
    latest = state.drop_duplicates("lead_key", keep="last")
    stamps = {}
    for c in STAMPS:
        parsed = pd.to_datetime(latest[c], utc=True, errors="coerce")
        stamps[c] = parsed.astype(object).where(parsed.notna(), None).tolist()
    reasons = [_cell_text(r) for r in latest["lifecycle_reason"].astype(object).tolist()]
    keys, stages = latest["lead_key"].tolist(), latest["lifecycle_stage"].astype(object).tolist()
    rows = [
        {"lead_key": key, "lifecycle_stage": None if pd.isna(stage) else stage, "lifecycle_reason": reason,
         **dict(zip(STAMPS, moments, strict=True)), "run_id": run_id, "updated_at": FIXED_NOW}
        for key, stage, reason, *moments in zip(keys, stages, reasons, *(stamps[c] for c in STAMPS), strict=True)
    ]
    with store._writing() as conn:
        for start in range(0, len(rows), STATE_CHUNK_ROWS):
            _upsert(conn, lead_state, rows[start : start + STATE_CHUNK_ROWS], [lead_state.c.lead_key],
                    lambda excluded: {c: excluded[c] for c in ("lifecycle_stage", "lifecycle_reason", *STAMPS,
                                                              "run_id", "updated_at")})
    return len(rows)


# -- frames ------------------------------------------------------------------------------------------------------


def leads(n: int, seed: int = 3) -> pd.DataFrame:
    """Routed leads with every ROUTING_INPUTS column: text (hostile, unicode, empty), Int64, Float64, plain float,
    boolean, object, timestamps, and NA in every column."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(HOSTILE), n)
    hostile = pd.array(np.array(HOSTILE, dtype=object)[pick], dtype="string")
    frame = pd.DataFrame({c: pd.array([f"{c}-{i % 7}" for i in range(n)], dtype="string") for c in ROUTING_INPUTS},
                         index=pd.RangeIndex(100, 100 + n))
    frame["lead_id"] = pd.array([f"00Q{i:012d}" for i in range(n)], dtype="string")
    frame["source"] = pd.array(np.where(rng.random(n) < 0.2, None, "salesforce"), dtype="string")
    frame["company"] = hostile
    frame["email"] = pd.array([f"p{i}@exämple.com" if i % 5 else None for i in range(n)], dtype="string")
    frame["employees"] = pd.array(np.where(rng.random(n) < 0.3, None, rng.integers(-5, 10**12, n)), dtype="Int64")
    frame["score"] = pd.array(np.where(rng.random(n) < 0.3, None, np.round(rng.normal(50, 40, n), 3)),
                              dtype="Float64")
    frame["rating"] = np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 1e6)  # float64: NaN is missing
    frame["mailable"] = pd.array(np.where(rng.random(n) < 0.3, None, rng.random(n) < 0.5), dtype="boolean")
    frame["is_free_email"] = pd.Series(np.where(rng.random(n) < 0.5, True, None), index=frame.index, dtype=object)
    frame["grade"] = pd.Series([("A", 3, 4.5, None, "Ä")[i % 5] for i in range(n)], index=frame.index, dtype=object)
    frame["state_code"] = pd.Series(pd.to_datetime(np.where(rng.random(n) < 0.5, "2026-11-17T09:30:00.123456789Z",
                                                            None), utc=True, format="ISO8601"), index=frame.index)
    frame["postal_code"] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame["owner_id"] = pd.array(np.where(rng.random(n) < 0.3, None, "005A"), dtype="string")
    assigned = rng.random(n) < 0.8
    routed = frame.copy()
    routed["owner_id"] = pd.array(np.where(assigned, np.array(["005B", "00GQ", "Ünicode"])[pick % 3], None),
                                  dtype="string")
    routed["routing_rule"] = pd.array(np.where(assigned, "rule " + pd.Series(pick).astype(str), "hold"),
                                      dtype="string")
    routed["routing_reason"] = pd.array(np.array(HOSTILE, dtype=object)[(pick + 1) % len(HOSTILE)], dtype="string")
    routed["assigned_at"] = pd.array(np.where(assigned, "2026-11-18T15:00:00Z", None), dtype="string")
    due = np.where(rng.random(n) < 0.5, "2026-11-18T17:30:00Z", "2026-11-19T08:00:00Z")
    routed["sla_due_at"] = pd.array(np.where(assigned & (rng.random(n) < 0.7), due, None), dtype="string")
    frame["assigned_at"] = pd.array(np.where(rng.random(n) < 0.1, "2026-11-18T15:00:00Z", None), dtype="string")
    return frame, routed


def lifecycle(n: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    def pick(*values: Any) -> pd.Series:
        return pd.Series(np.array(values, dtype=object)[rng.integers(0, len(values), n)]).astype("string")

    return pd.DataFrame({
        "lead_key": pd.array([f"salesforce:00Q{i % (n - 3):06d}" for i in range(n)], dtype="string"),  # duplicates
        "lifecycle_stage": pd.array(np.array(["new", "mql", "sql", "récyclé"])[rng.integers(0, 4, n)], dtype="string"),
        "lifecycle_reason": pd.Series([(None, "score 71 ≥ 60", 3, 2.5, 'q"\\\n')[i % 5] for i in range(n)],
                                      dtype=object),
        "mql_at": pick("2026-11-17T10:00:00.123456789+02:00", "1969-12-31T23:59:59.999999999Z", None),
        "sal_at": pick("2026-11-17T10:00:00Z", "not a time", None),
        "sql_at": pd.to_datetime(pick("2026-11-17 10:00:00.5", None), utc=True),  # parsed already, naive is UTC
        "recycled_at": pick("2026-11-17T10:00:00Z", "2026-11-17T10:00:00.123+02:00", "", None),  # mixed: NaT
    })


def table_rows(store: StateStore, table: sa.Table, *, ordered: bool) -> list[tuple[Any, ...]]:
    """Every row as stored (JSON cast to its stored text on PostgreSQL), by key or in the table's own order."""
    columns = [sa.cast(c, sa.Text) if isinstance(c.type, sa.JSON) else c for c in table.columns]
    query = sa.select(*columns)
    if ordered:
        query = query.order_by(table.c.lead_key)
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # the raw text, not the processed value
            names = ", ".join(c.name for c in table.columns)
            sql = f"SELECT {names} FROM {table.name}" + (" ORDER BY lead_key" if ordered else "")
            return [tuple(r) for r in conn.exec_driver_sql(sql).all()]
        return [tuple(r) for r in conn.execute(query).all()]


@pytest.fixture
def store(state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StateStore]:
    monkeypatch.setattr(lead_state_module, "_now", lambda: FIXED_NOW)
    monkeypatch.setattr(routing_module, "_now", lambda: FIXED_NOW)
    with StateStore.open(state_url) as opened:
        yield opened


def both_ways(store: StateStore, table: sa.Table, old: Any, new: Any) -> tuple[list[Any], list[Any]]:
    """Run the old then the new writes on an empty store; the rows each left behind (by key, and in table order on
    SQLite, where the order is the rowid's and readers without ORDER BY see it)."""
    results = []
    for write in (old, new):
        clear_tables(store.engine)
        write()
        results.append((table_rows(store, table, ordered=True),
                        table_rows(store, table, ordered=False) if store.engine.dialect.name == "sqlite" else None))
    return results[0], results[1]


# -- tests -------------------------------------------------------------------------------------------------------


def test_json_objects_match_the_store_serializer() -> None:
    frame, _ = leads(300)
    frame["naive"] = pd.Series(pd.to_datetime("2026-01-02 03:04:05"), index=frame.index)
    frame["nothing"] = pd.Series(None, index=frame.index, dtype=object)
    expected = [_json_dumps(row) for row in old_snapshots(frame)]
    assert json_objects(frame).to_pylist() == expected
    assert json_objects(frame[["nothing"]]).to_pylist() == ["{}"] * len(frame)
    assert json_objects(frame[[]]).to_pylist() == ["{}"] * len(frame)


def test_assignments_match_the_row_by_row_record(store: StateStore) -> None:
    frame, out = leads(700)
    run_id = "run-new"
    columns = ["owner_id", "routing_rule", "routing_reason", "assigned_at", "sla_due_at"]

    def old() -> None:  # assign_leads before issue 17
        fresh = (out["assigned_at"] != frame["assigned_at"]).fillna(True) & out["assigned_at"].notna()
        made = out.loc[fresh.to_numpy(dtype=bool), columns]
        snapshot = out.loc[made.index, [c for c in ROUTING_INPUTS if c in out.columns]]
        old_record(store, run_id, made.assign(lead_key=lead_keys(out.loc[made.index]).to_numpy(),
                                              inputs=old_snapshots(snapshot)))
        # a later run over some of the same leads: every row a conflict, replaced
        again = made.iloc[::3].assign(owner_id="005Z")
        old_record(store, run_id + "-2", again.assign(lead_key=lead_keys(out.loc[again.index]).to_numpy(),
                                                      inputs=old_snapshots(snapshot.iloc[::3])))

    def new() -> None:
        with store.routing_session(run_id) as session:
            recorded, fresh = record_assignments(session, frame, out)
        assert recorded == int(fresh.sum())
        again = out.loc[fresh.to_numpy(dtype=bool)].iloc[::3]
        with store.routing_session(run_id + "-2") as session:
            session.record(again[columns].assign(owner_id="005Z", lead_key=lead_keys(again).to_numpy()),
                           again[[c for c in ROUTING_INPUTS if c in again.columns]])

    before, after = both_ways(store, assignments, old, new)
    assert len(before[0]) > 400
    assert after == before


def test_duplicate_keys_and_dict_or_missing_inputs_match(store: StateStore) -> None:
    made = pd.DataFrame({
        "lead_key": ["a", "b", "a", "c", "d"],
        "owner_id": ["u1", None, "u2", "ü3", np.nan],
        "routing_rule": ["r1", "r2", "r3", "r4", "r5"],
        "routing_reason": ["x", None, 'q"\n', "", 5],
        "assigned_at": ["2026-11-18T15:00:00Z"] * 5,
        "sla_due_at": [None, "2026-11-18T16:00:00Z", "2026-11-19T09:00:00+01:00", None, None],
        "inputs": [{"email": "é@x"}, None, {"n": 1.5, "nan": float("nan")}, {}, None],
    })

    def new_with(frame: pd.DataFrame) -> Any:
        def write() -> None:
            with store.routing_session("run-d") as session:
                assert session.record(frame) == 4
        return write

    before, after = both_ways(store, assignments, lambda: old_record(store, "run-d", made), new_with(made))
    assert after == before
    bare = made.drop(columns="inputs")
    before, after = both_ways(store, assignments, lambda: old_record(store, "run-d", bare), new_with(bare))
    assert after == before
    assert {row[-2] for row in after[0]} == {"null"}  # no snapshot: JSON null, as SQLAlchemy's JSON type stores None


def test_lifecycle_state_matches_the_row_by_row_save(store: StateStore) -> None:
    state = lifecycle(600)
    changed = state.iloc[::4].assign(lifecycle_stage="sal", sal_at="2026-11-19T08:00:00Z")

    def old() -> None:
        assert old_save_lifecycle_state(store, state, "run-1") == 597
        old_save_lifecycle_state(store, changed, "run-2")

    def new() -> None:
        assert store.save_lifecycle_state(state, "run-1") == 597
        store.save_lifecycle_state(changed, "run-2")

    before, after = both_ways(store, lead_state, old, new)
    assert len(before[0]) == 597
    assert after == before
    back = store.lifecycle_state([state["lead_key"].iloc[0]])
    assert back.index.tolist() == [state["lead_key"].iloc[0]]


def test_a_failed_bulk_upsert_leaves_nothing(store: StateStore) -> None:
    state = lifecycle(20)
    state.loc[7, "lifecycle_stage"] = pd.NA  # NOT NULL: the whole write is refused
    with pytest.raises(sa.exc.IntegrityError):
        store.save_lifecycle_state(state, "run-1")
    assert table_rows(store, lead_state, ordered=True) == []
    assert store.save_lifecycle_state(state.drop(index=7), "run-2") == 16


def test_many_keys_are_read_through_a_staged_key_table(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    frame, out = leads(300)
    with store.routing_session("run-read") as session:
        recorded, fresh = record_assignments(session, frame, out)
    keys = [*lead_keys(out[fresh.to_numpy(dtype=bool)]).iloc[::2].tolist(), "salesforce:nobody"]

    def by_key(found: pd.DataFrame) -> pd.DataFrame:
        return found.sort_values("lead_key").reset_index(drop=True)

    in_lists = by_key(store.assignments(keys))
    monkeypatch.setattr(routing_module, "BULK_READ_KEYS", 10)
    staged = by_key(store.assignments(keys))
    assert len(in_lists) == len(keys) - 1 == (recorded + 1) // 2
    pd.testing.assert_frame_equal(staged, in_lists)
    with store.routing_session("run-read-2") as session:
        bare = by_key(session.assignments(keys, inputs=False))
        assert len(session.assignments(keys[:5], inputs=False)) == 5  # the IN-list path, in the same transaction
    pd.testing.assert_frame_equal(bare, in_lists.drop(columns="inputs"), check_dtype=False)
    pd.testing.assert_frame_equal(by_key(store.assignments(keys, inputs=False)), bare)


def test_many_lifecycle_keys_are_read_through_a_staged_key_table(store: StateStore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of a streamed file asks for more keys than IN lists suit: the staged join reads only those keys (not
    the whole table, which grows with every chunk) and gives what the IN lists give."""
    import leadflow.store.lead_state as lead_state_module

    state = lifecycle(400)
    store.save_lifecycle_state(state, "run-1")
    keys = [*state["lead_key"].iloc[::3].tolist(), "file:nobody"]
    in_lists = store.lifecycle_state(keys).sort_index()
    monkeypatch.setattr(lead_state_module, "STATE_SCAN_KEYS", 10)
    staged = store.lifecycle_state(keys).sort_index()
    assert len(in_lists) == len(set(keys)) - 1
    pd.testing.assert_frame_equal(staged, in_lists)
