"""KPIs kept incrementally (`leadflow.audit.kpi_rollups`): the rollup summary equals the full read
(`kpi_summary(load_kpi_data(...))`) on runs recorded through the store's own API — counts exactly, percentiles within
the histograms' documented error — on SQLite and PostgreSQL; a lead seen in several runs counts once; publishing a
run costs the same whatever history the store holds."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from leadflow.audit import kpi_rollups as kpi_rollups_module
from leadflow.audit.kpi_rollups import (
    PERCENTILE_ERROR,
    histogram_bins,
    histogram_percentiles,
    record_lead_kpis,
    record_run_kpis,
    rollup_counts,
    rollup_kpi_summary,
    window_start,
)
from leadflow.audit.kpis import flatten_summary, kpi_summary, load_kpi_data, percentiles
from leadflow.store import StateStore
from leadflow.store.kpi_tables import kpi_lead_facts, kpi_rollups
from leadflow.store.tables import lead_state, runs

HOUR = window_start(datetime.now(UTC))
SINCE = HOUR - timedelta(days=1)
AS_OF = HOUR + timedelta(hours=12)
PERCENTILE_KEYS = ("speed_to_lead_min.p50", "speed_to_lead_min.p90", "speed_to_lead_min.p95",
                   "created_to_assigned_min.p50", "created_to_assigned_min.p90", "created_to_assigned_min.p95",
                   "created_to_first_touch_min.p50", "created_to_first_touch_min.p90",
                   "created_to_first_touch_min.p95",
                   "velocity_days.mql_to_sal_days", "velocity_days.sal_to_sql_days")


def at(minutes: float) -> pd.Timestamp:
    return pd.Timestamp(HOUR) + pd.Timedelta(minutes=minutes)


def stage_run(store: StateStore, leads: list[tuple[str, str | None, str | None]], *, started: datetime | None = None,
              flow: str = "lead_sync") -> tuple[str, datetime]:
    """A run staging `leads` (lead_key, email, created_at text), as the first stage records them; `started` moves the
    run (and its lead rows) back in time."""
    run_id = store.start_run(flow, {})
    when = datetime.now(UTC)
    if started is not None:
        with store.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(started_at=started))
        when = started + timedelta(minutes=1)
    frame = pd.DataFrame(leads, columns=["lead_key", "email", "created_at"]).assign(
        chunk=0, lead_source="Web")
    store.add_changes(run_id, "standardize", when, [], frame)
    return run_id, when


def assign(store: StateStore, run_id: str, rows: list[tuple[str, str | None, pd.Timestamp, pd.Timestamp | None]]) -> None:
    made = pd.DataFrame(rows, columns=["lead_key", "owner_id", "assigned_at", "sla_due_at"]).assign(
        routing_rule="territory", routing_reason="EMEA")
    with store.routing_session(run_id) as session:
        session.record(made)


def lifecycle(store: StateStore, run_id: str, rows: list[tuple[str, str, Any, Any, Any]],
              updated: datetime | None = None) -> None:
    store.save_lifecycle_state(pd.DataFrame(rows, columns=["lead_key", "lifecycle_stage", "mql_at", "sal_at",
                                                           "sql_at"]).assign(lifecycle_reason=None, recycled_at=None),
                               run_id)
    if updated is not None:
        with store.engine.begin() as conn:
            conn.execute(lead_state.update().where(lead_state.c.run_id == run_id).values(updated_at=updated))


def seed(store: StateStore) -> list[str]:
    """Three runs: one two days ago (outside the window), two now, re-seeing and moving some of its leads."""
    old_run, old_at = stage_run(store, [("crm:1", "one@x.com", "2026-01-01T00:00:00Z"),
                                        ("crm:2", "two@x.com", at(-3000).isoformat())],
                                started=HOUR - timedelta(days=2))
    assign(store, old_run, [("crm:1", "005A", pd.Timestamp(old_at) + pd.Timedelta(minutes=5), None)])
    lifecycle(store, old_run, [("crm:1", "mql", "2026-01-02T00:00:00Z", None, None)], updated=old_at)
    store.finish_run(old_run, "completed", {"rows_in": 10, "rows_quarantined": 1})
    record_run_kpis(store, old_run)

    first, when = stage_run(store, [
        ("crm:2", "two@x.com", at(-3000).isoformat()),    # seen two days ago: in the window by its assignment
        ("crm:3", "three@x.com", at(-30).isoformat()),
        ("crm:4", None, at(-200).isoformat()),
        ("marketo:5", "five@x.com", at(-600).isoformat()),  # the form fill: salesforce:5 counts from it
        ("salesforce:5", "five@x.com", at(-60).isoformat()),
        ("crm:6", "six@x.com", None),
    ])
    assign(store, first, [
        ("crm:2", "005A", at(10), at(70)),                 # touched in time
        ("crm:3", "005B", at(12), at(12 * 60 + 30)),       # untouched, due after AS_OF: open
        ("salesforce:5", None, at(15), at(75)),           # untouched, due before AS_OF: missed
        ("crm:4", "005B", at(20), None),                   # no SLA
    ])
    store.mark_assignments(["crm:2"], "first_touch_at", at(40).to_pydatetime())
    store.mark_assignments(["salesforce:5"], "written_at", at(95).to_pydatetime())
    store.add_events(pd.DataFrame([
        {"run_id": first, "lead_key": "crm:3", "stage": "writeback:salesforce", "column_name": "owner_id",
         "old_value": None, "new_value": "005B", "at": at(33)},
        {"run_id": first, "lead_key": "crm:2", "stage": "writeback:salesforce", "column_name": "owner_id",
         "old_value": None, "new_value": "005A", "at": at(47)},
    ]))
    lifecycle(store, first, [
        ("crm:2", "sql", at(-2000), at(-1000), at(-100)),
        ("crm:3", "new", None, None, None),
        ("crm:4", "mql", at(-100), None, None),
        ("marketo:5", "sal", at(-500), at(-20), None),
    ])
    store.add_dead_letters(first, "salesforce", "Lead", pd.DataFrame({
        "record_id": ["00Q1", "00Q2"], "error_code": ["FIELD_CUSTOM_VALIDATION_EXCEPTION", "UNABLE_TO_LOCK_ROW"],
        "message": ["bad", "locked"], "retryable": [False, True], "payload": [{}, {}]}))
    store.finish_run(first, "completed", {"rows_in": 7, "rows_quarantined": 1,
                                          "quarantined_by_stage": {"standardize": 1}})
    record_run_kpis(store, first)

    second, _ = stage_run(store, [("crm:3", "three@x.com", at(-30).isoformat()),
                                  ("crm:4", None, at(-200).isoformat()), ("crm:7", None, at(-5).isoformat())])
    assign(store, second, [("crm:4", "005C", at(25), at(45)), ("crm:7", "005C", at(26), at(86))])  # crm:4 moves
    store.mark_assignments(["crm:4"], "first_touch_at", at(50).to_pydatetime())  # late: missed
    lifecycle(store, second, [("crm:3", "mql", at(30), None, None), ("crm:7", "new", None, None, None)])
    return [old_run, first, second]


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    flat_got, flat_expected = flatten_summary(got), flatten_summary(expected)
    assert flat_got.keys() == flat_expected.keys()
    for key, value in flat_expected.items():
        if key in PERCENTILE_KEYS and value is not None:
            assert flat_got[key] == pytest.approx(value, rel=PERCENTILE_ERROR, abs=1e-3), key
        else:
            assert flat_got[key] == value, key


def check_store(store: StateStore) -> None:
    run_ids = seed(store)
    stats = {"rows_in": 3, "rows_quarantined": 0}
    assert record_run_kpis(store, run_ids[-1]) > 0
    assert record_run_kpis(store, run_ids[-1]) == 0  # a retried task does not count the run twice
    got = rollup_kpi_summary(store, SINCE, AS_OF, run_id=run_ids[-1], run_stats=stats)
    store.finish_run(run_ids[-1], "completed", stats)
    expected = kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF))
    assert_same(got, expected)
    assert got["leads"] == 7  # crm:2 (assigned in the window) to crm:7, not crm:1; crm:3 and crm:4 once
    assert got["assignments"] == 5 and got["owners"] == 4
    # attainment = met / (met + missed): the open one (not yet due) is counted neither way
    assert got["sla"] == {"with_sla": 5, "met": 1, "open": 1, "missed": 3, "attainment": 0.25}
    assert got["funnel"] == {"new": 1, "mql": 2, "sal": 1, "sql": 1, "recycled": 0}
    assert got["speed_to_lead_min"]["n"] == 3  # crm:2, crm:3 written back; salesforce:5 stamped
    # salesforce:5 counts from marketo:5's form fill: 600 + 95 minutes
    assert got["speed_to_lead_min"]["p50"] == pytest.approx(695, rel=PERCENTILE_ERROR)
    assert got["runs"] == 2 and got["rows_in"] == 10 and got["dead_letters"] == 2


def assert_rollups_count_the_facts(store: StateStore) -> None:
    """The counters the database holds are what `rollup_counts` makes of every lead's facts: the set-based path
    (fresh leads, counted in SQL) and the pandas path agree."""
    with store.engine.connect() as conn:
        facts = pd.read_sql(sa.select(kpi_lead_facts), conn)
        stored = pd.read_sql(sa.select(kpi_rollups).where(kpi_rollups.c.metric != "published_run"), conn)
    hours = pd.to_datetime(stored["hour"], utc=True) - pd.Timestamp(0, tz="UTC")
    stored["hour"] = (hours // pd.Timedelta(hours=1)).astype("int64")
    for column in ("first_seen", "own_created", "created", "assigned", "written", "due", "touched", "mql", "sal",
                   "sql", "state_at"):
        facts[column] = facts[column].astype("float64")
    expected = rollup_counts(facts)

    def table(frame: pd.DataFrame) -> dict[tuple[int, str, str], int]:
        grouped = frame.groupby(["hour", "metric", "dimension"])["count"].sum()
        return {key: int(n) for key, n in grouped.items() if n}

    assert table(stored) == table(expected)


@pytest.mark.parametrize("in_database", [True, False], ids=["database_path", "pandas_path"])
def test_rollups_equal_the_full_read_on_sqlite(state_home: Path, monkeypatch: pytest.MonkeyPatch,
                                               in_database: bool) -> None:
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    with StateStore.open() as store:
        check_store(store)
        assert_rollups_count_the_facts(store)


@pytest.mark.postgres
def test_rollups_equal_the_full_read_on_postgres(postgres_url: str) -> None:
    with StateStore.open(postgres_url) as store:
        check_store(store)
        assert_rollups_count_the_facts(store)


def test_a_lead_seen_in_two_runs_counts_once(state_home: Path) -> None:
    leads = [(f"crm:{i}", f"p{i}@x.com", at(-10 * i).isoformat()) for i in range(1, 4)]
    with StateStore.open() as store:
        for _ in range(2):
            run_id, _ = stage_run(store, leads)
            lifecycle(store, run_id, [(key, "new", None, None, None) for key, _, _ in leads])
            record_run_kpis(store, run_id)
            store.finish_run(run_id, "completed", {"rows_in": 3})
        got = rollup_kpi_summary(store, SINCE, AS_OF)
        expected = kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF))
    assert got["leads"] == 3 and got["funnel"]["new"] == 3 and got["conversion"]["leads"] == 3
    assert got["runs"] == 2 and got["rows_in"] == 6
    assert_same(got, expected)


def stage_chunk(store: StateStore, run_id: str, chunk: int, leads: list[tuple[str, str | None, str | None]],
                when: datetime) -> None:
    frame = pd.DataFrame(leads, columns=["lead_key", "email", "created_at"]).assign(chunk=chunk, lead_source="Web")
    store.add_changes(run_id, "standardize", when, [], frame)


def streamed_run(store: StateStore, *, per_chunk: bool) -> str:
    """One run staging two chunks, each followed by its assignments and lifecycle state, as `lead_sync` streams a
    file; recorded chunk by chunk then closed (`per_chunk`), or once at the end."""
    run_id = store.start_run("lead_sync", {})
    started = datetime.now(UTC)
    chunks = [
        [("crm:1", "one@x.com", at(-100).isoformat()), ("crm:2", "shared@x.com", at(-50).isoformat()),
         ("crm:3", None, at(-40).isoformat())],
        # crm:4 shares crm:2's address and was created earlier: crm:2's creation time moves; crm:1 is seen again
        [("crm:4", "shared@x.com", at(-400).isoformat()), ("crm:1", "one@x.com", at(-100).isoformat()),
         ("crm:5", "five@x.com", at(-20).isoformat())],
    ]
    for number, leads in enumerate(chunks):
        chunk_started = max(started, datetime.now(UTC))
        stage_chunk(store, run_id, number, leads, chunk_started + timedelta(seconds=1))
        keys = [key for key, _, _ in leads]
        assign(store, run_id, [(key, f"005{number}", at(10 + i), at(70 + i)) for i, key in enumerate(keys)])
        lifecycle(store, run_id, [(key, "mql" if number else "new", at(-5) if number else None, None, None)
                                  for key in keys])
        if per_chunk:
            assert record_run_kpis(store, run_id, chunks=range(number, number + 1), since=chunk_started) > 0
            assert record_run_kpis(store, run_id, chunks=range(number, number + 1), since=chunk_started) == 0
    assert record_run_kpis(store, run_id, staged=not per_chunk) > 0  # the run's mark, at least
    assert record_run_kpis(store, run_id, staged=not per_chunk) == 0
    store.finish_run(run_id, "completed", {"rows_in": 6})
    return run_id


def stored_kpis(store: StateStore) -> tuple[pd.DataFrame, dict[tuple[str, str], int]]:
    """Every lead's facts but those stamped with the clock (first seen, lifecycle update), and the counters summed over
    their hours (which follow those stamps)."""
    with store.engine.connect() as conn:
        facts = pd.read_sql(sa.select(kpi_lead_facts), conn).drop(columns=["first_seen", "state_at", "run_id"])
        counters = pd.read_sql(sa.select(kpi_rollups).where(kpi_rollups.c.metric != "published_run"), conn)
    by_metric = counters.groupby(["metric", "dimension"])["count"].sum()
    return (facts.sort_values("lead_key").reset_index(drop=True),
            {key: int(n) for key, n in by_metric.items() if n})


@pytest.mark.parametrize("in_database", [True, False], ids=["database_path", "pandas_path"])
def test_a_run_recorded_chunk_by_chunk_counts_as_recorded_at_its_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_database: bool) -> None:
    """Streaming records each chunk's leads as it goes (so a 10M-lead run's end holds no 10M facts): the facts and
    counters equal those of one recording at the end, creation times linked across chunks, a lead seen in two
    chunks counted once; recording a chunk again, or closing the run again, adds nothing."""
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    results = []
    for per_chunk in (True, False):
        with StateStore.open(f"sqlite:///{tmp_path / f'{per_chunk}.db'}") as store:
            streamed_run(store, per_chunk=per_chunk)
            results.append(stored_kpis(store))
            summary = rollup_kpi_summary(store, SINCE, AS_OF)
            assert_same(summary, kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF)))
            assert_rollups_count_the_facts(store)
            assert summary["leads"] == 5 and summary["funnel"]["mql"] == 3 and summary["funnel"]["new"] == 2
    (chunked_facts, chunked_counts), (whole_facts, whole_counts) = results
    # times read by the database (julianday) and by pandas differ by float noise (microseconds), nothing more
    pd.testing.assert_frame_equal(chunked_facts, whole_facts, check_exact=False, atol=1e-3, rtol=0)
    assert chunked_counts == whole_counts
    created = dict(zip(chunked_facts["lead_key"], chunked_facts["created"], strict=True))
    assert created["crm:2"] == created["crm:4"] == pytest.approx(at(-400).timestamp())


@pytest.mark.postgres
def test_a_run_recorded_chunk_by_chunk_on_postgres(postgres_url: str) -> None:
    with StateStore.open(postgres_url) as store:
        streamed_run(store, per_chunk=True)
        summary = rollup_kpi_summary(store, SINCE, AS_OF)
        assert_same(summary, kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF)))
        assert_rollups_count_the_facts(store)
        facts, _ = stored_kpis(store)
    assert summary["leads"] == 5 and summary["funnel"]["mql"] == 3 and summary["runs"] == 1
    created = dict(zip(facts["lead_key"], facts["created"], strict=True))
    assert created["crm:2"] == created["crm:4"] == pytest.approx(at(-400).timestamp())


def varied_run(store: StateStore, n: int = 240) -> str:
    """One run of `n` new leads (distinct keys and e-mails, so all are counted in the database on its path) with every
    input a counter reads: assignments over several hours to reps or none, with and without an SLA, touched in time,
    late or not at all, written back or not; lifecycle stages with MQL/SAL/SQL stamps in either order; creation times
    before and after the assignment, or unknown."""
    rng = np.random.default_rng(17)
    leads = [(f"crm:{i}", f"p{i}@x.com", None if i % 11 == 0 else at(float(rng.uniform(-5000, 300))).isoformat())
             for i in range(n)]
    run_id, _ = stage_run(store, leads)
    keys = [key for key, _, _ in leads]
    owners = [None, "005A", "005B", "005C"]
    assigned = [(key, owners[i % 4], at(float(rng.uniform(-600, 600))),
                 None if i % 5 == 0 else at(float(rng.uniform(-300, 900))))
                for i, key in enumerate(keys) if i % 3]
    assign(store, run_id, assigned)
    with_sla = [key for key, _, _, due in assigned if due is not None]
    store.mark_assignments(with_sla[::4], "first_touch_at", at(-400).to_pydatetime())   # mostly in time
    store.mark_assignments(with_sla[1::4], "first_touch_at", at(800).to_pydatetime())   # mostly late
    store.mark_assignments([key for key, _, _, _ in assigned][::3], "written_at", at(700).to_pydatetime())
    stamps = [None, *(at(float(minutes)) for minutes in rng.uniform(-90_000, 0, 30))]
    lifecycle(store, run_id, [(key, ("new", "mql", "sal", "sql", "recycled")[i % 5], stamps[i % 31],
                               stamps[(i * 7) % 31], stamps[(i * 13) % 31]) for i, key in enumerate(keys) if i % 4])
    return run_id


def test_fresh_leads_counted_in_one_pass_equal_the_pandas_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database path counts a run's fresh leads with one GROUP BY (and one narrow GROUP BY per histogram or due
    minute metric): its counters are `rollup_counts` of the facts it wrote, and equal those of the pandas path."""
    fresh_counts: list[int] = []
    real = kpi_rollups_module.record_fresh_leads

    def spy(*args: Any) -> pd.DataFrame:
        counted = real(*args)
        fresh_counts.append(int(counted["count"].sum()))
        return counted

    monkeypatch.setattr(kpi_rollups_module, "record_fresh_leads", spy)
    results = []
    for in_database in (True, False):
        monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
        with StateStore.open(f"sqlite:///{tmp_path / f'{in_database}.db'}") as store:
            run_id = varied_run(store)
            assert record_run_kpis(store, run_id) > 0
            assert record_run_kpis(store, run_id) == 0
            assert_rollups_count_the_facts(store)
            results.append(stored_kpis(store))
            assert_same(rollup_kpi_summary(store, SINCE, AS_OF), kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF)))
    assert len(fresh_counts) == 1 and fresh_counts[0] > 240  # every lead was counted in the database
    (db_facts, db_counts), (pandas_facts, pandas_counts) = results
    pd.testing.assert_frame_equal(db_facts, pandas_facts, check_exact=False, atol=1e-3, rtol=0)
    assert db_counts == pandas_counts
    metrics = {metric for metric, _ in db_counts}
    assert {"owner", "sla_met", "sla_pending", "speed_to_lead_min", "created_to_assigned_min", "funnel", "reached",
            "mql_to_sal_days", "sal_to_sql_days"} <= metrics


@pytest.mark.postgres
def test_fresh_leads_counted_in_one_pass_on_postgres(postgres_url: str) -> None:
    with StateStore.open(postgres_url) as store:
        run_id = varied_run(store)
        assert record_run_kpis(store, run_id) > 0
        assert_rollups_count_the_facts(store)
        assert_same(rollup_kpi_summary(store, SINCE, AS_OF), kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF)))
        with store.engine.connect() as conn:
            pending = conn.execute(sa.select(sa.func.count()).select_from(kpi_rollups).where(
                kpi_rollups.c.metric == "sla_pending", kpi_rollups.c.count > 0)).scalar_one()
    assert pending > 0


def test_sqlite_floor_in_sql_equals_math_floor(state_home: Path) -> None:
    """The SQLite path floors in SQL (SQLAlchemy's `floor` there is Python's, a call per row): the same integer."""
    from leadflow.audit.kpi_rollups_sql import _Sql

    values = [-2.5, -2.0, -1e-9, 0.0, 1e-9, 0.5, 2.0, 2.9999999999, 499046.99999999994, 1796135.0, 1e12 + 0.5]
    with StateStore.open() as store, store.engine.connect() as conn:
        for value in values:
            got = conn.execute(sa.text(f"SELECT {_Sql('sqlite').floor('v')} FROM (SELECT :v AS v)"),
                               {"v": value}).scalar_one()
            assert got == math.floor(value), value
        assert conn.execute(sa.text(f"SELECT {_Sql('sqlite').floor('NULL')}")).scalar_one() is None


def test_empty_window_has_the_summary_keys(state_home: Path) -> None:
    with StateStore.open() as store:
        got = rollup_kpi_summary(store, SINCE, AS_OF)
        expected = kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF))
    assert got == expected
    assert got["leads"] == 0 and got["speed_to_lead_min"]["p50"] is None


def test_histogram_percentiles_are_within_the_documented_error() -> None:
    rng = np.random.default_rng(7)
    for values in (rng.lognormal(3, 2, 5_000), -rng.lognormal(1, 1, 300), np.array([40.0, 60.0, 120.0]),
                   np.array([0.001, 0.0, 5.0])):
        bins, counts = np.unique(histogram_bins(values), return_counts=True)
        got = histogram_percentiles(dict(zip(bins.tolist(), counts.tolist(), strict=True)))
        expected = percentiles(values)
        assert got["n"] == expected["n"]
        for p in ("p50", "p90", "p95"):
            assert got[p] == pytest.approx(expected[p], rel=PERCENTILE_ERROR, abs=0.01), p
    assert PERCENTILE_ERROR < 0.01
    assert math.isnan(histogram_percentiles({})["p50"])


def test_record_run_kpis_names_an_unknown_run(state_home: Path) -> None:
    with StateStore.open() as store, pytest.raises(KeyError, match="no run 'nope'"):
        record_run_kpis(store, "nope")


# --- runs that change leads without staging them (sla_watch), and erasure ---------------------------------------------


def watched_store(store: StateStore) -> tuple[str, list[str]]:
    """Four leads recorded by their sync; then, as `sla_watch` does, a run that pulls CRM first touches (crm:1 in
    time, crm:2 late), records crm:3's breach and routes it again (a new owner and SLA clock). Returns the watch run
    and the keys whose breach or owner it changed."""
    leads = [(f"crm:{i}", f"p{i}@x.com", at(-30 - i).isoformat()) for i in range(1, 5)]
    sync, _ = stage_run(store, leads)
    assign(store, sync, [("crm:1", "005A", at(10), at(70)), ("crm:2", "005A", at(11), at(71)),
                         ("crm:3", "005B", at(12), at(72)), ("crm:4", "005B", at(13), at(12 * 60 + 30))])
    record_run_kpis(store, sync)
    store.finish_run(sync, "completed", {"rows_in": 4})

    from leadflow.routing.sla import check_sla

    watch = store.start_run("sla_watch", {})
    store.record_first_touches(pd.DataFrame({"lead_key": ["crm:1", "crm:2"], "touched_at": [at(40), at(100)],
                                             "source": ["task", "event"]}), run_id=watch)
    breaches = check_sla(store, at(120).to_pydatetime(), run_id=watch)
    assert list(breaches["lead_key"]) == ["crm:3"]
    assign(store, watch, [("crm:3", "005C", at(120), at(180))])  # what `reassign_breaches` records
    return watch, list(breaches["lead_key"])


def check_watched(store: StateStore) -> None:
    watch, changed = watched_store(store)
    full = kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF))
    assert full["sla"] == {"with_sla": 4, "met": 1, "open": 1, "missed": 2, "attainment": pytest.approx(1 / 3, abs=1e-4)}
    assert full["created_to_first_touch_min"]["n"] == 2
    stale = rollup_kpi_summary(store, SINCE, AS_OF)
    assert stale["sla"]["met"] == 0 and stale["created_to_first_touch_min"]["n"] == 0  # the bug: not recounted yet
    assert record_lead_kpis(store, changed, watch) > 0  # crm:1 and crm:2 come from `lead_first_touches.run_id`
    assert record_lead_kpis(store, changed, watch) == 0
    got = rollup_kpi_summary(store, SINCE, AS_OF)
    assert_same(got, full)
    assert got["owners"] == 3 and got["assignments"] == 4
    assert_rollups_count_the_facts(store)
    with store.engine.connect() as conn:
        stamped = dict(conn.execute(sa.select(kpi_lead_facts.c.lead_key, kpi_lead_facts.c.run_id)).all())
    assert {key for key, run in stamped.items() if run == watch} == {"crm:1", "crm:2", "crm:3"}


@pytest.mark.parametrize("in_database", [True, False], ids=["database_path", "pandas_path"])
def test_first_touches_breaches_and_reassignments_of_a_watch_are_recounted(
        state_home: Path, monkeypatch: pytest.MonkeyPatch, in_database: bool) -> None:
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    with StateStore.open() as store:
        check_watched(store)


@pytest.mark.postgres
def test_first_touches_breaches_and_reassignments_of_a_watch_are_recounted_on_postgres(postgres_url: str) -> None:
    with StateStore.open(postgres_url) as store:
        check_watched(store)


def check_forget_then_stage_again(store: StateStore) -> None:
    from leadflow.audit.trace import forget

    leads = [("crm:1", "ada@x.com", at(-30).isoformat()), ("crm:2", "bob@x.com", at(-20).isoformat())]
    first, _ = stage_run(store, leads)
    assign(store, first, [("crm:1", "005A", at(10), at(70)), ("crm:2", "005B", at(11), at(71))])
    lifecycle(store, first, [("crm:1", "mql", at(-5), None, None), ("crm:2", "new", None, None, None)])
    record_run_kpis(store, first)
    store.finish_run(first, "completed", {"rows_in": 2})
    done = forget(store, "ada@x.com")
    assert done["lead_keys"] == ["crm:1"] and done["tables"]["kpi_lead_facts"] == 1
    after_forget = rollup_kpi_summary(store, SINCE, AS_OF)
    assert after_forget["leads"] == 1 and after_forget["assignments"] == 1 and after_forget["funnel"]["mql"] == 0
    assert_rollups_count_the_facts(store)

    again, _ = stage_run(store, leads[:1])  # Ada signs up again
    assign(store, again, [("crm:1", "005A", at(30), at(90))])
    lifecycle(store, again, [("crm:1", "new", None, None, None)])
    record_run_kpis(store, again)
    store.finish_run(again, "completed", {"rows_in": 1})
    got = rollup_kpi_summary(store, SINCE, AS_OF)
    full = kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF))
    assert got["leads"] == full["leads"] == 2  # neither the old Ada nor the tombstone counts
    assert got["assignments"] == 2 and got["funnel"]["new"] == 2 and got["funnel"]["mql"] == 0
    assert_same(got, full)
    assert_rollups_count_the_facts(store)


@pytest.mark.parametrize("in_database", [True, False], ids=["database_path", "pandas_path"])
def test_a_forgotten_lead_staged_again_counts_once(state_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                   in_database: bool) -> None:
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    with StateStore.open() as store:
        check_forget_then_stage_again(store)


@pytest.mark.postgres
def test_a_forgotten_lead_staged_again_counts_once_on_postgres(postgres_url: str) -> None:
    with StateStore.open(postgres_url) as store:
        check_forget_then_stage_again(store)


# --- cost ------------------------------------------------------------------------------------------------------------


def bulk_run(store: StateStore, first_key: int, n: int, *, started: datetime | None = None) -> str:
    keys = [f"crm:{i}" for i in range(first_key, first_key + n)]
    frame = pd.DataFrame({"lead_key": keys, "email": [f"{k}@x.com" for k in keys], "chunk": 0,
                          "created_at": at(-30).isoformat(), "lead_source": "Web"})
    run_id = store.start_run("lead_sync", {})
    when = datetime.now(UTC)
    if started is not None:
        with store.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(started_at=started))
        when = started + timedelta(minutes=1)
    store.add_changes(run_id, "standardize", when, [], frame)
    return run_id


def timed_publish(store: StateStore, run_id: str) -> float:
    started = time.perf_counter()
    record_run_kpis(store, run_id)
    rollup_kpi_summary(store, SINCE, AS_OF)
    return time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.parametrize("history", [1_000_000])
def test_publish_cost_does_not_grow_with_history(state_home: Path, tmp_path: Path, history: int) -> None:
    """Publishing a 10k-lead run: on an empty store and on one holding `history` leads' lead runs and facts (whose
    own publish is timed too). Prints the figures."""
    with StateStore.open(f"sqlite:///{tmp_path / 'small.db'}") as small:
        small_seconds = timed_publish(small, bulk_run(small, 0, 10_000))
    with StateStore.open(f"sqlite:///{tmp_path / 'big.db'}") as big:
        history_run = bulk_run(big, 10_000_000, history, started=HOUR - timedelta(hours=3))
        history_seconds = timed_publish(big, history_run)
        big_seconds = timed_publish(big, bulk_run(big, 0, 10_000))
        with big.engine.connect() as conn:
            facts = conn.execute(sa.text("SELECT count(*) FROM kpi_lead_facts")).scalar_one()
    print(f"\npublish of a {history:,}-lead run: {history_seconds:.2f} s; of a 10k-lead run: "
          f"{small_seconds:.2f} s on an empty store, {big_seconds:.2f} s with {facts:,} leads of history")
    assert facts == history + 10_000
    assert big_seconds < max(3 * small_seconds, small_seconds + 1.0)


@pytest.mark.prefect
def test_publish_kpis_task_records_the_run_and_publishes_the_rollups(prefect_api: str, state_home: Path) -> None:
    from prefect import flow

    from tasks.report import publish_kpis

    with StateStore.open() as store:
        leads = [(f"crm:{i}", f"p{i}@x.com", at(-10 * i).isoformat()) for i in range(1, 4)]
        run_id, _ = stage_run(store, leads)
        lifecycle(store, run_id, [(key, "new", None, None, None) for key, _, _ in leads])

    @flow
    def closing(run_id: str) -> dict[str, Any]:
        return publish_kpis(run_id, {"rows_in": 4, "rows_quarantined": 1})

    summary = closing(run_id)
    assert summary["leads"] == 3 and summary["funnel"]["new"] == 3
    assert summary["runs"] == 1 and summary["rows_in"] == 4 and summary["quarantine_rate"] == 0.25
    with StateStore.open() as store:
        assert record_run_kpis(store, run_id) == 0  # published once
