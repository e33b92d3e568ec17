"""Recording a streamed run's KPIs over ranges of several audit chunks (`record_run_kpis(chunks=range(a, b))`, one
transaction per range) instead of one chunk at a time: the facts and counters are the same when no lead is staged in
two chunks of one range, and when one is: a range records what its chunks recorded one at a time leave (the first
creation time recorded, the last e-mail).

Why it matters: each recording inserts its fresh leads into `kpi_lead_facts`' two random-key B-trees (lead key,
e-mail), and at a million facts 50k inserts dirty nearly every leaf page of both, so a recording's cost is set by the
indexes' size rather than by its leads; fewer, larger recordings write those pages fewer times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from leadflow.audit import kpi_rollups as kpi_rollups_module
from leadflow.audit.kpi_rollups import record_run_kpis, rollup_kpi_summary
from leadflow.audit.kpis import kpi_summary, load_kpi_data
from leadflow.store import StateStore
from tests.test_kpi_rollups import (
    AS_OF,
    SINCE,
    assert_rollups_count_the_facts,
    assert_same,
    assign,
    at,
    lifecycle,
    stage_chunk,
    stored_kpis,
)

CHUNKS = [
    [("crm:1", "one@x.com", at(-100).isoformat()), ("crm:2", "shared@x.com", at(-50).isoformat()),
     ("crm:3", None, at(-40).isoformat())],
    # crm:4 shares crm:2's address and was created earlier: crm:2's creation time moves
    [("crm:4", "shared@x.com", at(-400).isoformat()), ("crm:5", "five@x.com", at(-20).isoformat())],
    [("crm:6", "six@x.com", at(-300).isoformat()), ("crm:7", "shared@x.com", at(-10).isoformat())],
    # crm:1 seen again with the same inputs; crm:8 shares crm:6's address, created later
    [("crm:1", "one@x.com", at(-100).isoformat()), ("crm:8", "six@x.com", at(-5).isoformat())],
]


def streamed(store: StateStore, chunks: list[list[tuple[str, str | None, str | None]]], per_range: int) -> str:
    """Stage `chunks` as `lead_sync` streams them (assignments and lifecycle state after each) and record them
    `per_range` chunks at a time, the last range at the end, then close the run."""
    run_id = store.start_run("lead_sync", {})
    pending: tuple[int, datetime] | None = None
    for number, leads in enumerate(chunks):
        chunk_started = datetime.now(UTC)
        pending = pending or (number, chunk_started)
        stage_chunk(store, run_id, number, leads, chunk_started + timedelta(seconds=1))
        keys = [key for key, _, _ in leads]
        assign(store, run_id, [(key, f"005{number % 2}", at(10 + i), at(70 + i)) for i, key in enumerate(keys)])
        lifecycle(store, run_id, [(key, "mql" if number % 2 else "new", at(-5) if number % 2 else None, None, None)
                                  for key in keys])
        if number + 1 - pending[0] >= per_range or number == len(chunks) - 1:
            pages = range(pending[0], number + 1)
            assert record_run_kpis(store, run_id, chunks=pages, since=pending[1], by_chunk=True) > 0
            assert record_run_kpis(store, run_id, chunks=pages, since=pending[1], by_chunk=True) == 0
            pending = None
    assert record_run_kpis(store, run_id, staged=False) > 0  # the run's mark
    store.finish_run(run_id, "completed", {"rows_in": sum(len(leads) for leads in chunks)})
    return run_id


@pytest.mark.parametrize("in_database", [True, False], ids=["database_path", "pandas_path"])
def test_ranges_of_chunks_record_what_single_chunks_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           in_database: bool) -> None:
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    results = []
    for per_range in (1, 2, 3):
        with StateStore.open(f"sqlite:///{tmp_path / f'{per_range}.db'}") as store:
            streamed(store, CHUNKS, per_range)
            assert_rollups_count_the_facts(store)
            summary = rollup_kpi_summary(store, SINCE, AS_OF)
            assert_same(summary, kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF)))
            assert summary["leads"] == 8
            results.append(stored_kpis(store))
    (facts, counts), *others = results
    created = dict(zip(facts["lead_key"], facts["created"], strict=True))
    assert created["crm:2"] == created["crm:4"] == created["crm:7"] == pytest.approx(at(-400).timestamp())
    assert created["crm:8"] == pytest.approx(at(-300).timestamp())
    for other_facts, other_counts in others:
        # times read by the database (julianday) and by pandas differ by float noise (microseconds), nothing more
        pd.testing.assert_frame_equal(other_facts, facts, check_exact=False, atol=1e-3, rtol=0)
        assert other_counts == counts


@pytest.mark.parametrize("in_database", [True, False], ids=["database_path", "pandas_path"])
def test_a_lead_restaged_in_one_range_keeps_what_its_first_chunk_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_database: bool) -> None:
    """A lead staged in several chunks of one range: its creation time is the first one recorded (its first chunk
    whose text reads as a time, not the earliest of the range) and its e-mail the last one, as chunk by chunk."""
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    chunks = [
        [("crm:1", "one@x.com", at(-100).isoformat()), ("crm:2", "two@x.com", "asap"),
         ("crm:3", "three@x.com", None)],
        [("crm:1", "one@x.com", at(-900).isoformat()), ("crm:2", "two@x.com", at(-700).isoformat()),
         ("crm:3", "three@new.com", at(-300).isoformat()), ("crm:4", "four@x.com", at(-30).isoformat())],
        [("crm:1", None, at(-2000).isoformat()), ("crm:2", "two@x.com", at(-800).isoformat()),
         ("crm:5", "one@x.com", at(-50).isoformat())],
    ]
    results = []
    for per_range in (1, 3, 2):
        with StateStore.open(f"sqlite:///{tmp_path / f'{per_range}.db'}") as store:
            streamed(store, chunks, per_range)
            # (not compared with the full read: it takes a lead's earliest creation text, the rollups the first
            # recorded, by design)
            assert_rollups_count_the_facts(store)
            results.append(stored_kpis(store))
    (facts, counts), *others = results
    by_key = facts.set_index("lead_key")
    assert by_key.loc["crm:1", "own_created"] == pytest.approx(at(-100).timestamp())
    assert by_key.loc["crm:1", "email"] == "one@x.com"
    assert by_key.loc["crm:5", "created"] == pytest.approx(at(-100).timestamp())  # linked to crm:1
    assert by_key.loc["crm:2", "own_created"] == pytest.approx(at(-700).timestamp())
    assert by_key.loc["crm:3", "email"] == "three@new.com"
    assert by_key.loc["crm:3", "own_created"] == pytest.approx(at(-300).timestamp())
    for other_facts, other_counts in others:
        pd.testing.assert_frame_equal(other_facts, facts, check_exact=False, atol=1e-3, rtol=0)
        assert other_counts == counts


@pytest.mark.postgres
def test_a_lead_restaged_in_one_range_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL reads the ranges in the database too (and in pandas when it cannot read a creation text): the facts
    equal those of SQLite chunk by chunk."""
    chunks = [
        [("crm:1", "one@x.com", at(-100).isoformat()), ("crm:3", "three@x.com", None)],
        [("crm:1", "one@x.com", at(-900).isoformat()), ("crm:3", "three@new.com", at(-300).isoformat()),
         ("crm:4", "four@x.com", at(-30).isoformat())],
        [("crm:1", None, at(-2000).isoformat()), ("crm:5", "one@x.com", at(-50).isoformat())],
    ]
    unreadable = [[*chunks[0], ("crm:2", "two@x.com", "asap")],
                  [*chunks[1], ("crm:2", "two@x.com", at(-700).isoformat())], chunks[2]]
    for staged in (chunks, unreadable):
        with StateStore.open(postgres_url) as store:
            with store.engine.begin() as conn:  # a fresh start for each
                conn.execute(sa.text("DELETE FROM kpi_lead_facts; DELETE FROM kpi_rollups; DELETE FROM lead_runs"))
            streamed(store, staged, 3)
            assert_rollups_count_the_facts(store)
            got = stored_kpis(store)
        with StateStore.open(f"sqlite:///{tmp_path / f'chunk_by_chunk_{len(staged[0])}.db'}") as store:
            streamed(store, staged, 1)
            expected = stored_kpis(store)
        pd.testing.assert_frame_equal(got[0], expected[0], check_exact=False, atol=1e-3, rtol=0, check_dtype=False)
        assert got[1] == expected[1]


@pytest.mark.parametrize("in_database", [True, False])
def test_one_page_of_several_audit_chunks_keeps_the_whole_pages_facts(
    in_database: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `leadflow run --chunk-rows 100000`: a page spans two audit chunks and is recorded as one range (by_chunk off):
    # a lead in both gets the smallest creation time and the largest e-mail of the page, as before batching existed
    monkeypatch.setattr(kpi_rollups_module, "USE_DATABASE_PATH", in_database)
    with StateStore.open(f"sqlite:///{tmp_path / 'page.db'}") as store:
        run_id = store.start_run("lead_sync", {})
        started = datetime.now(UTC)
        stage_chunk(store, run_id, 0, [("crm:1", "b@x.com", at(-100).isoformat())], started + timedelta(seconds=1))
        stage_chunk(store, run_id, 1, [("crm:1", "a@x.com", at(-900).isoformat())], started + timedelta(seconds=1))
        assert record_run_kpis(store, run_id, chunks=range(0, 2), since=started) > 0
        facts, _ = stored_kpis(store)
    [fact] = facts.to_dict("records")
    assert fact["email"] == "b@x.com"
    assert fact["own_created"] == pytest.approx(at(-900).timestamp(), abs=1e-3)
