"""Issue 17: `lead_runs` written with the run id and time in the statement (SQLite) instead of bound per row, and the
lifecycle state read as a join driven by the sorted keys: the same rows as a row-by-row Core insert and an IN list."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from leadflow.store import StateStore
from leadflow.store.bulk import executemany_insert
from leadflow.store.store import MAX_INDEXED_EMAIL
from leadflow.store.tables import lead_runs, lead_state
from tests.dbs import store_urls

state_url = store_urls()

AT = datetime(2026, 11, 18, 15, 0, 0, 123456, tzinfo=UTC)
RUN = "it's-a-run-id-with-a-quote-0000000000"[:36]
HOSTILE = ["Köln — Straße", 'say "hi"', "back\\slash", "line\nbreak\ttab\r", "😀 emoji", "", " ", "1,2", "null"]


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url) as opened:
        yield opened


def _leads() -> pd.DataFrame:
    n = 40
    keys = [f"file:{(i * 17) % n:03d}{HOSTILE[i % len(HOSTILE)]}" for i in range(n)]  # out of key order
    email = [None if i % 7 == 0 else f"  Person{i}@Example.COM " for i in range(n)]
    email[3] = "x" * (MAX_INDEXED_EMAIL + 1) + "@example.com"  # too long to index: not kept
    return pd.DataFrame({
        "lead_key": pd.array(keys, dtype="string"),
        "chunk": [i // 16 for i in range(n)],
        "email": pd.array(email, dtype="string"),
        "created_at": pd.array([None if i % 5 == 0 else HOSTILE[i % len(HOSTILE)] for i in range(n)], dtype="string"),
        "lead_source": pd.array([None if i % 3 == 0 else f"src {i}" for i in range(n)], dtype="string"),
    })


def _stored(store: StateStore) -> list[tuple[object, ...]]:
    columns = [lead_runs.c.lead_key, lead_runs.c.run_id, lead_runs.c.chunk, lead_runs.c.email,
               lead_runs.c.created_at, lead_runs.c.lead_source, lead_runs.c.at]
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.select(*columns).order_by(lead_runs.c.id))]


def test_lead_runs_rows_equal_a_row_by_row_insert_in_key_order(store: StateStore) -> None:
    leads = _leads()
    run_id = store.start_run("lead_sync", {})[:0] + RUN
    store.add_changes(run_id, "standardize", AT, [], leads)
    got = _stored(store)

    expected = []
    for row in leads.sort_values("lead_key").itertuples(index=False):
        email = None if pd.isna(row.email) else row.email.strip().lower()
        expected.append({"lead_key": row.lead_key, "run_id": RUN, "chunk": int(row.chunk),
                         "email": email if email is None or len(email) <= MAX_INDEXED_EMAIL else None,
                         "created_at": None if pd.isna(row.created_at) else row.created_at,
                         "lead_source": None if pd.isna(row.lead_source) else row.lead_source, "at": AT})
    with store.engine.begin() as conn:
        conn.execute(lead_runs.delete())
        conn.execute(lead_runs.insert(), expected)  # SQLAlchemy's own binding: the reference
    assert got == _stored(store)
    assert [row[0] for row in got] == sorted(leads["lead_key"])  # ids follow the key order
    assert got[0][-1] == AT and {row[1] for row in got} == {RUN}
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:  # stored as the bound text would have been, not as a number or blob
            kinds = conn.exec_driver_sql("SELECT DISTINCT typeof(run_id), typeof(at), typeof(chunk) FROM lead_runs")
            assert kinds.all() == [("text", "text", "integer")]


def test_executemany_insert_puts_constants_in_the_statement(tmp_path: object) -> None:
    table = pa.table({"lead_key": pa.array(["b", "a", "c"], pa.large_string()),
                      "lifecycle_stage": pa.array(["new", None, "mql"], pa.large_string())})
    with StateStore.open(f"sqlite:///{tmp_path}/s.db") as store:
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:  # NOT NULL holds for bound values
            executemany_insert(conn, lead_state, table, {"run_id": "r'1", "updated_at": "2026-11-18 15:00:00.000000"})
    with StateStore.open(f"sqlite:///{tmp_path}/s.db") as store, store.engine.begin() as conn:
        sent = executemany_insert(conn, lead_state, table.filter(pa.array([True, False, True])),
                                  {"run_id": "r'1", "updated_at": "2026-11-18 15:00:00.000000", "mql_at": None})
        assert sent == 2
        rows = conn.exec_driver_sql("SELECT lead_key, lifecycle_stage, run_id, updated_at, mql_at FROM lead_state "
                                    "ORDER BY rowid").all()
        assert rows == [("b", "new", "r'1", "2026-11-18 15:00:00.000000", None),
                        ("c", "mql", "r'1", "2026-11-18 15:00:00.000000", None)]


def test_lifecycle_state_reads_unsorted_repeated_and_hostile_keys(store: StateStore) -> None:
    keys = [f"file:{i:02d}{HOSTILE[i % len(HOSTILE)]}" for i in range(30)]
    state = pd.DataFrame({"lead_key": keys, "lifecycle_stage": ["mql"] * 30, "lifecycle_reason": HOSTILE * 3 + [None] * 3,
                          "mql_at": ["2026-11-17T10:00:00Z"] * 30, "sal_at": [None] * 30, "sql_at": [None] * 30,
                          "recycled_at": [None] * 30})
    store.save_lifecycle_state(state, "run-1")
    wanted = [*reversed(keys[::2]), keys[4], "file:nobody", "", "1", "null"]
    found = store.lifecycle_state(wanted)
    assert sorted(found.index) == sorted(set(keys[::2]))
    expected = state.set_index("lead_key").loc[sorted(set(keys[::2]))]
    got = found.loc[expected.index, "lifecycle_reason"]
    assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in expected["lifecycle_reason"]]
    assert set(found["mql_at"]) == {"2026-11-17T10:00:00Z"}
