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


def assert_in_key_order(rows: tuple[list[Any], list[Any] | None]) -> None:
    """The lifecycle save sends its rows in key order (SQLite's index is walked once): on SQLite the table order,
    which the row-by-row save left in frame order, is the key order; no reader depends on it."""
    if rows[1] is not None:
        assert rows[1] == rows[0]


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
    inputs_at = list(assignments.columns.keys()).index("inputs")
    assert {row[inputs_at] for row in after[0]} == {"null"}  # no snapshot: JSON null, as SQLAlchemy's JSON stores None


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
    assert after[0] == before[0]
    assert_in_key_order(after)
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


# -- lifecycle state read back, and the bulk write's shared values -----------------------------------------------


def old_lifecycle_state(store: StateStore, keys: list[str]) -> pd.DataFrame:
    """`StateStore.lifecycle_state` before the driver-cursor read: IN lists through SQLAlchemy, stamps parsed back
    to `datetime` and formatted by pandas."""
    columns = ["lead_key", "lifecycle_stage", "lifecycle_reason", *STAMPS]
    wanted = list(dict.fromkeys(k for k in keys if k))
    query = sa.select(*(lead_state.c[c] for c in columns))
    rows: list[Any] = []
    with store.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            rows.extend(conn.execute(query.where(lead_state.c.lead_key.in_(wanted[start : start + 500]))).all())
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for column in STAMPS:
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string")
    for column in ("lead_key", "lifecycle_stage", "lifecycle_reason"):
        frame[column] = frame[column].astype("string")
    return frame.set_index("lead_key")


def old_load(frame: pd.DataFrame, known: pd.DataFrame) -> pd.DataFrame:
    """The body of `tasks.io.load_lifecycle_state` before it looked each lead up once for every column."""
    keys = lead_keys(frame)
    if known.empty:
        return frame
    out = frame.copy(deep=False)
    for column in ("lifecycle_stage", "lifecycle_reason", *STAMPS):
        stored = keys.map(known[column]).astype("string")
        has = keys.isin(known.index).to_numpy(dtype=bool)
        out[column] = out[column].astype("string").mask(has, stored)
    return out


@pytest.mark.parametrize("staged", [False, True], ids=["one-query", "staged-keys"])
def test_lifecycle_state_reads_what_the_sqlalchemy_read_gave(store: StateStore, monkeypatch: pytest.MonkeyPatch,
                                                              staged: bool) -> None:
    """Stamps formatted by the database (cut from SQLite's text, `to_char` on PostgreSQL) are what parsing and
    `strftime` gave: seconds truncated (23:59:59.999999 stays in 1969), NULL stays missing, unicode and quotes kept."""
    state = lifecycle(300)
    state.loc[10, "mql_at"] = "1999-01-01T00:00:00.000001+14:00"  # a day earlier in UTC
    store.save_lifecycle_state(state, "run-1")
    keys = [*state["lead_key"].iloc[::2].tolist(), "file:nobody", "", state["lead_key"].iloc[0], "q'\"x"]
    if staged:
        monkeypatch.setattr(lead_state_module, "STATE_SCAN_KEYS", 10)
    found = store.lifecycle_state(keys).sort_index()
    expected = old_lifecycle_state(store, keys).sort_index()
    pd.testing.assert_frame_equal(found, expected)
    assert len(found) == state["lead_key"].iloc[::2].nunique()
    assert "1969-12-31T23:59:59Z" in set(found["mql_at"].dropna())
    assert "1998-12-31T10:00:00Z" in set(found["mql_at"].dropna())
    assert store.lifecycle_state([]).empty and store.lifecycle_state(["file:nobody"]).empty
    pd.testing.assert_frame_equal(store.lifecycle_state(["file:nobody"]), old_lifecycle_state(store, ["file:nobody"]),
                                  check_index_type=False)


def test_the_lifecycle_loader_gives_what_it_gave(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tasks.io.load_lifecycle_state`: known leads take their stored state (missing stamps included), unknown leads
    and leads without a key keep theirs, duplicate leads both take it."""
    import tasks.io as io_tasks

    saved = lifecycle(200)
    saved["lead_key"] = pd.array([f"salesforce:00Q{i:06d}" for i in range(200)], dtype="string")
    store.save_lifecycle_state(saved, "run-1")
    n = 300
    frame = pd.DataFrame({
        "lead_id": pd.array([f"00Q{i % 250:06d}" if i % 17 else None for i in range(n)], dtype="string"),
        "source": pd.array(["salesforce"] * n, dtype="string"),
        "email": pd.array([None] * n, dtype="string"),
        "lifecycle_stage": pd.array(["new"] * n, dtype="string"),
        "lifecycle_reason": pd.Series(["from source"] * n, dtype=object),
        **{c: pd.array(["2020-01-01T00:00:00Z"] * n, dtype="string") for c in STAMPS},
    }, index=pd.RangeIndex(1000, 1000 + n)[::-1])
    monkeypatch.setattr(io_tasks, "state_store", lambda: store)
    loaded = io_tasks.load_lifecycle_state.fn(frame)
    expected = old_load(frame, old_lifecycle_state(store, lead_keys(frame).dropna().tolist()))
    pd.testing.assert_frame_equal(loaded, expected)
    assert (loaded["lifecycle_stage"] != "new").sum() > 150  # most were known
    nobody = frame.assign(lead_id=pd.array([f"x{i}" for i in range(n)], dtype="string"))
    assert io_tasks.load_lifecycle_state.fn(nobody) is nobody


def test_shared_and_empty_columns_are_sent_once_and_stored_as_before(store: StateStore) -> None:
    """run_id and updated_at go into the statement once (quotes and all), as do columns missing in every row of a
    batch; the table is what the row-by-row save leaves, also when a run id holds a quote."""
    state = lifecycle(400)
    bare = state.assign(sal_at=None, recycled_at=pd.NA, lifecycle_reason=None)  # whole columns empty
    run = "run'); DROP TABLE lead_state; --"

    def old() -> None:
        old_save_lifecycle_state(store, state, "run-1")
        old_save_lifecycle_state(store, bare.iloc[::3], run)

    def new() -> None:
        store.save_lifecycle_state(state, "run-1")
        assert store.save_lifecycle_state(bare.iloc[::3], run) == bare.iloc[::3]["lead_key"].nunique()

    before, after = both_ways(store, lead_state, old, new)
    assert after[0] == before[0]
    assert_in_key_order(after)
    assert {row[-2] for row in after[0]} == {"run-1", run}


def test_bulk_constants_must_be_text() -> None:
    from leadflow.store.bulk import _sqlite_literal

    assert _sqlite_literal("it's") == "'it''s'"
    assert _sqlite_literal(None) == "NULL"
    for bad in (5, "nul\x00"):
        with pytest.raises(ValueError, match="bulk constant"):
            _sqlite_literal(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("values", [
    pd.Series(pd.array([None, None], dtype="string")),
    pd.Series([None, "2026-11-17T10:00:00Z", "x", "2026-11-17 10:00:00.123+02:00"], dtype=object),
    pd.Series(pd.array(["2026-11-17T10:00:00.123456789+02:00", "1969-12-31T23:59:59.999999999Z", None] * 30,
                       dtype="string")),
    pd.Series(pd.array(["2026-11-17T10:00:00Z", "2026-11-17T10:00:00.123+02:00", "", None], dtype="string")),
    pd.Series([], dtype="string"),
    pd.Series(pd.to_datetime(["2026-01-01", None]), index=[5, 3]),
], ids=["empty-column", "object", "nanoseconds", "mixed-formats", "no-rows", "parsed"])
def test_stamps_are_parsed_once_per_distinct_value_as_to_datetime_parses(values: pd.Series) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' "could not infer format" on the mixed columns
        expected = pd.to_datetime(values, utc=True, errors="coerce")
        parsed = lead_state_module._parsed_stamps(values)
    pd.testing.assert_series_equal(parsed, expected)
