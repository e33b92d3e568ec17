"""The state store on SQLite and on a real PostgreSQL (a throw-away schema per session)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from leadflow.store import EVENT_COLUMNS, VERSION_TABLE, StateStore, StoreError, alembic_config, metadata
from leadflow.store import store as store_module
from leadflow.store.engine import SQLITE_PAGE_SIZE
from tests.dbs import (
    backend_params,
    clear_tables,
    postgres_base_url,
    postgres_schema_url,
    require_postgres,
    sqlite_url,
    store_url,
    store_urls,
)

TABLES = {"runs", "watermarks", "quarantine", "lead_events"}
EXPECTED_INDEXES = {
    "runs": {"ix_runs_started_at"},
    "quarantine": {"ix_quarantine_run_id", "ix_quarantine_lead_key"},
    "lead_events": {"ix_lead_events_lead_key_at", "ix_lead_events_run_id"},
}

# an empty database per test, for the migration tests
empty_url = store_urls("empty_url")


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """One migrated-on-first-use schema for the whole session; `state_store` empties it before each test."""
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=backend_params())
def state_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """An open, empty StateStore: a SQLite file in tmp_path, or the session's PostgreSQL schema."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = request.getfixturevalue("postgres_session_url")
    with StateStore.open(url) as store:
        clear_tables(store.engine)
        yield store


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _version(store: StateStore) -> str | None:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _events(run_id: str, n: int, *, start: datetime | None = None) -> pd.DataFrame:
    start = start or datetime(2024, 5, 1, 12, tzinfo=UTC)
    i = np.arange(n)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "lead_key": [f"crm:{k // 3}" for k in i],
            "stage": "standardize",
            "column_name": np.array(["email", "phone", "country"])[i % 3],
            "old_value": [None if k % 4 == 0 else f"old {k}" for k in i],
            "new_value": [f"new {k}" for k in i],
            "at": pd.Series([start + timedelta(microseconds=int(k)) for k in i]),
        }
    )


# -- migrations ------------------------------------------------------------------------------------------------------


def test_migrations_create_all_tables_and_are_idempotent(empty_url: str) -> None:
    with StateStore.open(empty_url) as store:
        inspector = sa.inspect(store.engine)
        assert TABLES | {VERSION_TABLE} <= set(inspector.get_table_names())
        for table, indexes in EXPECTED_INDEXES.items():
            assert indexes <= {ix["name"] for ix in inspector.get_indexes(table)}
        assert _version(store) == _head()
        run_id = store.start_run("flow", {})
    with StateStore.open(empty_url) as again:  # second open: upgrade is a no-op and keeps the data
        assert _version(again) == _head()
        assert again.get_run(run_id) is not None
        again.upgrade()
        assert len(again.runs()) == 1


def test_table_definitions_match_the_migrations(empty_url: str) -> None:
    with StateStore.open(empty_url) as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE, "compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_downgrade_to_base_and_back(empty_url: str) -> None:
    with StateStore.open(empty_url) as store:
        with store.engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "base")
        assert TABLES.isdisjoint(sa.inspect(store.engine).get_table_names())
        store.upgrade()
        assert TABLES <= set(sa.inspect(store.engine).get_table_names())


def test_open_defaults_to_settings_sqlite_and_creates_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEADFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path / "deep" / "home"))
    with StateStore.open() as store:
        assert (tmp_path / "deep" / "home" / "state.db").is_file()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == store_module.SQLITE_BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE


def test_an_existing_sqlite_store_keeps_its_page_size(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # a store made with SQLite's default pages
        old.execute("CREATE TABLE t (x)")
    with StateStore.open(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_passwords_never_appear_in_url_or_errors() -> None:
    engine = sa.create_engine("postgresql+psycopg://lead:s3cret@db.example/leads")
    assert "s3cret" not in StateStore(engine).url
    assert "***" in StateStore(engine).url
    with pytest.raises(StoreError) as caught:  # nothing listens on port 1
        StateStore.open("postgresql://lead:s3cret@127.0.0.1:1/leads")
    assert "s3cret" not in str(caught.value)
    assert "lead:***@127.0.0.1:1/leads" in str(caught.value)


def test_unsupported_urls_and_schema_misuse_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported"):
        StateStore.open("mysql+pymysql://u:pw@localhost/x")
    with pytest.raises(ValueError, match="only supported on PostgreSQL"):
        StateStore.open(sqlite_url(tmp_path), schema="leadflow")
    with pytest.raises(ValueError, match="lower-case SQL identifier"):
        StateStore.open(postgres_base_url(), schema="Robert'); DROP TABLE runs;--")


@pytest.mark.postgres
def test_schema_argument_creates_and_uses_the_schema() -> None:
    require_postgres()
    with postgres_schema_url(prefix="lf_test_arg") as scratch:
        schema = str(sa.make_url(scratch).query["options"]).split("=", 1)[1]
        nested = f"{schema}_x"  # not yet created: open() must create it
        admin = sa.create_engine(postgres_base_url(), poolclass=sa.pool.NullPool)
        try:
            with StateStore.open(postgres_base_url(), schema=nested) as store:
                store.start_run("flow", {})
            with admin.connect() as conn:
                tables = set(sa.inspect(conn).get_table_names(schema=nested))
                assert TABLES | {VERSION_TABLE} <= tables
                assert conn.exec_driver_sql(f"SELECT count(*) FROM {nested}.runs").scalar() == 1
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {nested} CASCADE")
            admin.dispose()


# -- runs ------------------------------------------------------------------------------------------------------------


def test_run_lifecycle(state_store: StateStore) -> None:
    first = state_store.start_run("ingest", {"files": ["a.csv"], "limit": np.int64(5), "share": float("nan")})
    run = state_store.get_run(first)
    assert run is not None
    assert run["status"] == "running" and run["finished_at"] is None and run["stats"] is None
    assert run["params"] == {"files": ["a.csv"], "limit": 5, "share": None}
    assert run["started_at"].tzinfo is not None and run["started_at"].utcoffset() == timedelta(0)

    stats = {"standardize": {"rows_in": np.int64(10), "rows_out": 9, "quarantined": 1}}
    state_store.finish_run(first, "completed", stats)
    done = state_store.get_run(first)
    assert done is not None
    assert done["status"] == "completed" and done["error"] is None
    assert done["stats"] == {"standardize": {"rows_in": 10, "rows_out": 9, "quarantined": 1}}
    assert done["finished_at"] >= done["started_at"]

    second = state_store.start_run("ingest", {})
    state_store.finish_run(second, "failed", {}, error="Traceback ...\nValueError: boom")
    third = state_store.start_run("route", {})
    assert [r["run_id"] for r in state_store.runs()] == [third, second, first]
    assert [r["run_id"] for r in state_store.runs(limit=2)] == [third, second]
    assert [r["run_id"] for r in state_store.runs(flow="ingest")] == [second, first]
    failed = state_store.get_run(second)
    assert failed is not None and failed["error"] == "Traceback ...\nValueError: boom"
    assert state_store.get_run("no-such-run") is None

    with pytest.raises(KeyError):
        state_store.finish_run("no-such-run", "completed", {})
    with pytest.raises(ValueError, match="status"):
        state_store.finish_run(third, "running", {})


# -- watermarks ------------------------------------------------------------------------------------------------------


def test_watermark_upsert(state_store: StateStore) -> None:
    run_id = state_store.start_run("ingest", {})
    assert state_store.get_watermark("hubspot") is None
    state_store.set_watermark("hubspot", datetime(2024, 1, 1, 9, 30, tzinfo=UTC), run_id)
    later = datetime(2024, 2, 1, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    state_store.set_watermark("hubspot", later, run_id)
    state_store.set_watermark("salesforce", pd.Timestamp("2023-12-31T23:59:59Z"), run_id)

    value = state_store.get_watermark("hubspot")
    assert value == later and value.tzinfo == UTC and value.hour == 8
    assert state_store.get_watermark("salesforce") == datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)
    with state_store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM watermarks").scalar() == 2
    with pytest.raises(ValueError, match="timezone-aware"):
        state_store.set_watermark("hubspot", datetime(2024, 3, 1), run_id)


# -- quarantine ------------------------------------------------------------------------------------------------------


def test_quarantine_round_trip(state_store: StateStore) -> None:
    run_id = state_store.start_run("ingest", {})
    other = state_store.start_run("ingest", {})
    rows = pd.DataFrame(
        {
            "lead_key": ["crm:1", None, "email:zoë@example.com"],
            "expectation": ["email_valid", "has_identity", "country_known"],
            "reason": ["not an email", None, "Ünknown country 'Narnia'"],
            "row": [
                {"email": "not-an-email", "employees": 42, "opt_in": True, "phone": None},
                {"email": pd.NA, "lead_id": np.nan, "note": 'quote " and \\ backslash\n'},
                pd.Series({"country": "Narnia", "city": "Cair Paravel"}),
            ],
        }
    )
    assert state_store.add_quarantine(run_id, "input", rows) == 3
    assert state_store.add_quarantine(other, "comply", rows.iloc[:1]) == 1
    assert state_store.add_quarantine(other, "comply", rows.iloc[:0]) == 0

    got = state_store.quarantine(run_id)
    assert list(got.columns) == ["id", "run_id", "lead_key", "stage", "expectation", "reason", "row", "at"]
    assert got["lead_key"].tolist() == ["crm:1", pd.NA, "email:zoë@example.com"]
    assert got["reason"].tolist() == ["not an email", pd.NA, "Ünknown country 'Narnia'"]
    assert (got["stage"] == "input").all()
    assert got["row"].tolist() == [
        {"email": "not-an-email", "employees": "42", "opt_in": "True", "phone": None},
        {"email": None, "lead_id": None, "note": 'quote " and \\ backslash\n'},
        {"country": "Narnia", "city": "Cair Paravel"},
    ]
    assert list(got["row"][0]) == ["email", "employees", "opt_in", "phone"]  # column order survives
    assert str(got["at"].dtype) == "datetime64[us, UTC]"
    assert len(state_store.quarantine()) == 4
    assert state_store.quarantine(other)["stage"].tolist() == ["comply"]


def test_quarantine_refuses_bad_input_without_writing(state_store: StateStore) -> None:
    run_id = state_store.start_run("ingest", {})
    with pytest.raises(ValueError, match="missing column"):
        state_store.add_quarantine(run_id, "input", pd.DataFrame({"lead_key": ["x"]}))
    bad = pd.DataFrame(
        {"lead_key": ["a", "b"], "expectation": ["e", "e"], "reason": ["r", "r"], "row": [{"a": 1}, "not a dict"]}
    )
    with pytest.raises(ValueError, match="position 1"):
        state_store.add_quarantine(run_id, "input", bad)
    assert state_store.quarantine().empty


# -- audit events ----------------------------------------------------------------------------------------------------


def test_events_round_trip_and_order(state_store: StateStore) -> None:
    run_id = state_store.start_run("standardize", {})
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    events = pd.DataFrame(
        {
            "run_id": run_id,
            "lead_key": ["crm:2", "crm:1", "crm:1", "crm:1"],
            "stage": "standardize",
            "column_name": ["email", "phone", "country", "email"],
            "old_value": [" Ann@X.COM ", None, "Deutschland", 7],
            "new_value": ["ann@x.com", "+4930123456", "DE", True],
            "at": [
                t0 + timedelta(seconds=5),
                # the same instant written with an offset: ties keep insertion (id) order
                datetime(2024, 5, 1, 14, 0, 1, tzinfo=timezone(timedelta(hours=2))),
                t0 + timedelta(seconds=1),
                t0,
            ],
        }
    )
    assert state_store.add_events(events) == 4
    got = state_store.events()
    assert list(got.columns) == ["id", *EVENT_COLUMNS]
    assert got["column_name"].tolist() == ["email", "phone", "country", "email"]
    assert got["lead_key"].tolist() == ["crm:1", "crm:1", "crm:1", "crm:2"]
    assert got["old_value"].tolist() == ["7", pd.NA, "Deutschland", " Ann@X.COM "]
    assert got["new_value"].tolist() == ["True", "+4930123456", "DE", "ann@x.com"]
    assert got["at"].tolist() == [pd.Timestamp(t0 + timedelta(seconds=s)) for s in (0, 1, 1, 5)]
    assert str(got["at"].dtype) == "datetime64[us, UTC]"
    assert {str(got[c].dtype) for c in EVENT_COLUMNS[:-1]} == {"string"}
    assert got["id"].dtype == "Int64"  # nullable: stage changes read from the audit chunks have no event id

    assert state_store.events(lead_key="crm:2")["new_value"].tolist() == ["ann@x.com"]
    other = state_store.start_run("standardize", {})
    state_store.add_events(_events(other, 3))
    assert len(state_store.events(run_id=run_id)) == 4
    assert len(state_store.events(run_id=other)) == 3
    assert len(state_store.events(lead_key="crm:1", run_id=run_id)) == 3
    assert state_store.events(lead_key="nobody").empty
    assert state_store.add_events(events.iloc[:0]) == 0


def test_events_refuse_bad_input(state_store: StateStore) -> None:
    run_id = state_store.start_run("standardize", {})
    good = _events(run_id, 3)
    with pytest.raises(ValueError, match="missing column"):
        state_store.add_events(good.drop(columns="at"))
    with pytest.raises(ValueError, match="no `lead_key`"):
        state_store.add_events(good.assign(lead_key=["a", None, "c"]))
    with pytest.raises(ValueError, match="timezone-aware"):
        state_store.add_events(good.assign(at=pd.Timestamp("2024-01-01")))
    with pytest.raises(ValueError, match="missing value"):
        state_store.add_events(good.assign(at=[pd.Timestamp("2024-01-01", tz="UTC"), pd.NaT, pd.NaT]))
    assert state_store.events().empty


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("cannot render this value")


def test_failing_add_events_leaves_nothing(state_store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = state_store.start_run("standardize", {})
    kept = _events(run_id, 3)
    state_store.add_events(kept)
    # small chunks, so the first chunks are already in the database when a later one fails
    monkeypatch.setattr(store_module, "EVENT_CHUNK_ROWS", 2)
    doomed = _events(run_id, 7, start=datetime(2024, 6, 1, tzinfo=UTC))
    doomed["old_value"] = doomed["old_value"].astype(object)
    doomed.loc[5, "old_value"] = _Unprintable()
    with pytest.raises(RuntimeError, match="cannot render"):
        state_store.add_events(doomed)
    assert len(state_store.events()) == 3
    # and the connection is usable afterwards
    assert state_store.add_events(doomed.drop(index=5)) == 6
    assert len(state_store.events()) == 9


@pytest.mark.postgres
def test_postgres_copy_path_matches_sqlite(
    tmp_path: Path, postgres_session_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, int] = {"copy": 0, "executemany": 0}
    for name in ("copy", "executemany"):
        original = getattr(store_module, f"_{name}_events")

        def spy(*args: Any, _name: str = name, _original: Any = original) -> None:
            calls[_name] += 1
            _original(*args)

        monkeypatch.setattr(store_module, f"_{name}_events", spy)
    monkeypatch.setattr(store_module, "EVENT_CHUNK_ROWS", 1_000)

    tricky = ["tab\there", "new\nline", "back\\slash", "\\N", "", None, 'quote "q", comma', "zoë ✓ 🚀", "\r"]
    events = _events("00000000-0000-4000-8000-000000000000", 2_500)
    events["old_value"] = [tricky[k % len(tricky)] for k in range(len(events))]
    events["new_value"] = [tricky[(k + 3) % len(tricky)] for k in range(len(events))]
    events["at"] = events["at"].dt.tz_convert("America/New_York")  # any zone in, UTC out

    frames = {}
    for backend, url in (("sqlite", sqlite_url(tmp_path)), ("postgres", postgres_session_url)):
        with StateStore.open(url) as store:
            clear_tables(store.engine)
            assert store.add_events(events) == len(events)
            frames[backend] = store.events()
    assert calls == {"copy": 1, "executemany": 1}
    pd.testing.assert_frame_equal(frames["sqlite"], frames["postgres"])
    assert frames["postgres"]["old_value"].tolist()[:9] == tricky[:5] + [pd.NA] + tricky[6:]


def test_concurrent_sqlite_writers_wait_instead_of_failing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    StateStore.open(url).close()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with StateStore.open(url) as store:
                for _ in range(15):
                    run_id = store.start_run("flow", {})
                    store.add_events(_events(run_id, 50))
                    store.finish_run(run_id, "completed", {})
        except BaseException as exc:  # noqa: BLE001 - reported through the list
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with StateStore.open(url) as store:
        assert len(store.runs(limit=100)) == 45
        assert len(store.events()) == 45 * 50


def test_store_url_rejects_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend"), store_url("oracle", tmp_path):
        pass


def test_a_database_from_a_newer_leadflow_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with StateStore.open(url) as store, store.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(StoreError, match="cannot migrate the state store at sqlite:///.*9999"):
        StateStore.open(url)


def test_lifecycle_state_round_trip_and_upsert(state_store: StateStore) -> None:
    state = pd.DataFrame({
        "lead_key": ["file:A", "file:B"], "lifecycle_stage": ["mql", "new"], "lifecycle_reason": ["score 120 ≥ 100", None],
        "mql_at": ["2026-11-20T12:00:00Z", None], "sal_at": [None, None], "sql_at": [None, None],
        "recycled_at": [None, None],
    })
    assert state_store.save_lifecycle_state(state, "run-1") == 2
    moved = state.iloc[:1].assign(lifecycle_stage="sal", sal_at="2026-11-21T09:00:00Z")
    state_store.save_lifecycle_state(moved, "run-2")
    known = state_store.lifecycle_state(["file:A", "file:B", "file:C"])
    assert sorted(known.index) == ["file:A", "file:B"]
    assert known.loc["file:A", "lifecycle_stage"] == "sal"
    assert (known.loc["file:A", "mql_at"], known.loc["file:A", "sal_at"]) == ("2026-11-20T12:00:00Z",
                                                                              "2026-11-21T09:00:00Z")
    assert pd.isna(known.loc["file:B", "mql_at"])


def test_routing_sessions_are_serialised_so_no_slot_is_handed_out_twice(state_store: StateStore) -> None:
    import threading

    entered, release = threading.Event(), threading.Event()
    seen: dict[str, dict] = {}

    def first() -> None:
        with state_store.routing_session("run-a") as session:
            entered.set()
            release.wait(10)
            session.save({"next": session.payload.get("next", 0) + 1})

    def second() -> None:
        with state_store.routing_session("run-b") as session:
            seen["b"] = dict(session.payload)
            session.save({"next": session.payload.get("next", 0) + 1})

    a = threading.Thread(target=first)
    a.start()
    assert entered.wait(10)
    b = threading.Thread(target=second)
    b.start()
    release.set()
    a.join(10)
    b.join(10)
    # Without the lock the second run would have read the state before the first one saved it ({}).
    assert seen["b"] == {"next": 1}
    with state_store.routing_session("run-c") as session:
        assert session.payload == {"next": 2}


def test_assignments_and_sla_overdue(state_store: StateStore) -> None:
    from datetime import UTC, datetime

    with state_store.routing_session("run-1") as session:
        session.record(pd.DataFrame({
            "lead_key": ["file:A", "file:B", "file:C"], "owner_id": ["005A", "005B", None],
            "routing_rule": ["demo", "demo", "hold_dupes"], "routing_reason": ["x", "y", "hold: duplicate"],
            "assigned_at": ["2026-11-20T12:00:00Z"] * 3,
            "sla_due_at": ["2026-11-20T12:05:00Z", "2026-11-20T14:00:00Z", None],
        }))
    due = state_store.sla_overdue(datetime(2026, 11, 20, 13, tzinfo=UTC))
    assert due["lead_key"].tolist() == ["file:A"]
    assert state_store.mark_assignments(["file:A"], "first_touch_at", datetime(2026, 11, 20, 12, 4, tzinfo=UTC)) == 1
    assert state_store.sla_overdue(datetime(2026, 11, 20, 15, tzinfo=UTC))["lead_key"].tolist() == ["file:B"]
    assert len(state_store.assignments()) == 3
