"""The compact audit trail: stage before/after chunks (`leadflow.audit.changes`) and their reads in the state store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from leadflow.audit.changes import ChunkPlan, change_events, lead_run_rows, pack_changes, repack, unpack
from leadflow.store import StateStore
from leadflow.audit.trace import forget, retention, trace
from tests.dbs import backend_params, clear_tables, postgres_schema_url, sqlite_url

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def _frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def _events(payload: bytes, keys: list[str] | None = None) -> list[tuple[str, str, object, object]]:
    found = change_events(payload, keys)
    return list(zip(found["lead_key"], found["column_name"], found["old_value"], found["new_value"], strict=True))


@pytest.mark.parametrize(("before", "after", "expected"), [
    # text: only real changes; missing → value counts, value → missing counts
    (["a", "b", None], ["a", "B", "c"], [("k1", "x", "b", "B"), ("k2", "x", None, "c")]),
    (["a", None, None], [None, None, "a"], [("k0", "x", "a", None), ("k2", "x", None, "a")]),
])
def test_change_events_keep_only_changed_text(before: list[object], after: list[object],
                                              expected: list[tuple[str, str, object, object]]) -> None:
    old = _frame(x=pd.array(before, dtype="string"))
    new = _frame(x=pd.array(after, dtype="string"))
    keys = pd.Series(["k0", "k1", "k2"])
    (chunk,) = pack_changes(old, new, ["x"], keys, ChunkPlan.for_frame(new.index))
    assert chunk.rows == 3
    assert _events(chunk.payload) == expected


def test_values_come_back_as_the_text_the_row_audit_trail_held() -> None:
    old = _frame(n=pd.array([None, 5], dtype="Int64"), ok=pd.array([None, True], dtype="boolean"),
                 f=pd.array([1.5, None], dtype="Float64"))
    new = _frame(n=pd.array([51, 5], dtype="Int64"), ok=pd.array([False, True], dtype="boolean"),
                 f=pd.array([1.5, 2.25], dtype="Float64"))
    (chunk,) = pack_changes(old, new, ["n", "ok", "f"], pd.Series(["a", "b"]), ChunkPlan.for_frame(new.index))
    assert sorted(_events(chunk.payload)) == [("a", "n", None, "51"), ("a", "ok", None, "false"),
                                              ("b", "f", None, "2.25")]


def test_a_column_the_stage_adds_has_no_old_values_and_mixed_objects_are_stored_as_text() -> None:
    old = _frame(x=["a", "b"])
    new = _frame(x=["a", "b"], extra=pd.Series([{"k": 1}, 3], dtype="object"))
    (chunk,) = pack_changes(old, new, ["extra"], pd.Series(["a", "b"]), ChunkPlan.for_frame(new.index))
    assert "old:extra" not in unpack(chunk.payload).column_names
    assert _events(chunk.payload) == [("a", "extra", None, "{'k': 1}"), ("b", "extra", None, "3")]


def test_chunks_follow_the_first_stage_even_after_rows_are_quarantined() -> None:
    first = _frame(x=[str(i) for i in range(7)])
    plan = ChunkPlan.for_frame(first.index, first_chunk=10, rows_per_chunk=3)
    assert plan.next_chunk == 13
    later = first.drop(index=[1, 3, 4, 5])  # chunk 11 (rows 3-5) loses all its rows
    keys = "k" + later["x"]
    chunks = pack_changes(later, later.assign(x=later["x"] + "!"), ["x"], keys, plan)
    assert [(c.chunk, c.rows) for c in chunks] == [(10, 2), (12, 1)]
    assert [k for k, *_ in _events(chunks[0].payload)] == ["k0", "k2"]
    assert _events(chunks[1].payload, ["k6"]) == [("k6", "x", "6", "6!")]
    assert _events(chunks[1].payload, ["k0"]) == []


def test_rows_a_page_did_not_have_or_a_new_order_are_refused() -> None:
    plan = ChunkPlan.for_frame(pd.RangeIndex(4), rows_per_chunk=2)
    with pytest.raises(ValueError, match="did not have"):
        plan.numbers(pd.Index([0, 9]))
    with pytest.raises(ValueError, match="reordered"):
        plan.numbers(pd.Index([3, 0]))
    with pytest.raises(ValueError, match="unique"):
        ChunkPlan.for_frame(pd.Index([1, 1]))


def test_repack_drops_one_persons_rows_and_empties_a_chunk() -> None:
    frame = _frame(x=["a", "b"])
    (chunk,) = pack_changes(frame, frame.assign(x=["A", "B"]), ["x"], pd.Series(["k1", "k2"]),
                            ChunkPlan.for_frame(frame.index))
    kept, dropped = repack(chunk.payload, ["k1"])
    assert dropped == 1 and kept is not None
    assert _events(kept) == [("k2", "x", "b", "B")]
    assert repack(kept, ["nobody"]) == (kept, 0)
    assert repack(kept, ["k2"]) == (None, 1)


# -- in the state store ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=backend_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_module_url")
    with StateStore.open(url) as opened:
        clear_tables(opened.engine)
        yield opened


def _stage_run(store: StateStore, at: datetime, rows_per_chunk: int = 2) -> str:
    """Three leads through two stages; Cy is quarantined at the first, so the second stage has two rows."""
    run_id = store.start_run("lead_sync", {})
    raw = _frame(lead_id=["00Q1", "00Q2", "00Q3"], source=["salesforce"] * 3,
                 email=[" Ada@Example.com", "bob@example.com", "cy@example.com"],
                 created_at=["2026-11-20T08:00:00Z"] * 3, lead_source=["web", "Event", "web"],
                 country=["Germany", "france", "DE"], score=pd.array([None, 10, None], dtype="Int64"))
    from leadflow.pipeline.schema import lead_keys

    standardized = raw.assign(email=["ada@example.com", "bob@example.com", "cy@example.com"],
                              country=["DE", "FR", "DE"], lead_source=["Web", "Event", "Web"])
    plan = ChunkPlan.for_frame(standardized.index, rows_per_chunk=rows_per_chunk)
    keys = lead_keys(standardized)
    store.add_changes(run_id, "standardize", at,
                      pack_changes(raw, standardized, ["email", "country", "lead_source"], keys, plan),
                      lead_run_rows(standardized, keys, plan))
    passed = standardized.iloc[:2]
    scored = passed.assign(score=pd.array([42, 12], dtype="Int64"))
    store.add_changes(run_id, "score", at + timedelta(seconds=5),
                      pack_changes(passed, scored, ["score"], lead_keys(scored), plan))
    store.finish_run(run_id, "completed", {})
    return run_id


def test_trace_reads_the_changes_of_one_lead_from_its_chunks(store: StateStore) -> None:
    run_id = _stage_run(store, T0)
    result = trace(store, "ADA@example.com")
    assert result["lead_keys"] == ["salesforce:00Q1"]
    (run,) = result["runs"]
    assert run["run_id"] == run_id
    assert [(s["stage"], [(c["column"], c["old"], c["new"]) for c in s["changes"]]) for s in run["stages"]] == [
        ("standardize", [("email", " Ada@Example.com", "ada@example.com"), ("country", "Germany", "DE"),
                         ("lead_source", "web", "Web")]),
        ("score", [("score", None, "42")]),
    ]
    bob = store.events(lead_key="salesforce:00Q2")
    assert list(zip(bob["stage"], bob["column_name"], bob["new_value"], strict=True)) == [
        ("standardize", "country", "FR"), ("score", "score", "12")]
    assert len(store.events(run_id=run_id)) == 7  # Ada 4, Bob 2, Cy 1 (Cy never reached scoring)
    assert trace(store, "00Q3")["lead_keys"] == ["salesforce:00Q3"]


def test_seen_leads_ignores_the_run_asking(store: StateStore) -> None:
    run_id = _stage_run(store, T0)
    keys = ["salesforce:00Q1", "salesforce:00Q9"]
    assert store.seen_leads(keys) == {"salesforce:00Q1"}
    assert store.seen_leads(keys, except_run=run_id) == set()
    later = _stage_run(store, T0 + timedelta(hours=1))
    assert store.seen_leads(keys, except_run=later) == {"salesforce:00Q1"}


def test_forget_rewrites_the_chunks_and_keeps_the_others(store: StateStore) -> None:
    run_id = _stage_run(store, T0)
    result = forget(store, "ada@example.com")
    assert result["tables"]["lead_runs"] == 1
    assert result["tables"]["audit_chunks"] == 2  # Ada's row in each stage's first chunk
    assert result["per_run"] == {run_id: 1}
    assert not trace(store, "ada@example.com")["lead_keys"]
    assert store.events(lead_key="salesforce:00Q1").empty
    bob = store.events(lead_key="salesforce:00Q2")
    assert list(bob["column_name"]) == ["country", "score"]
    assert len(store.events(run_id=run_id)) == 3


def test_retention_prunes_old_chunks_and_lead_runs(store: StateStore) -> None:
    _stage_run(store, T0 - timedelta(days=40))
    recent = _stage_run(store, T0)
    dry = retention(store, 30, dry_run=True, now=T0)
    assert dry["tables"]["audit_chunks"] == 3 and dry["tables"]["lead_runs"] == 3
    done = retention(store, 30, now=T0)
    assert done["tables"]["audit_chunks"] == 3 and done["tables"]["lead_runs"] == 3
    assert set(store.lead_runs()["run_id"]) == {recent}
    assert len(store.events()) == 7


def test_kpis_read_lead_runs_and_count_a_crm_lead_from_the_persons_form_fill(store: StateStore) -> None:
    from leadflow.audit.kpis import load_kpi_data, speed_frame

    run_id = store.start_run("crm_sync", {})
    staged = _frame(lead_key=["marketo:M1", "salesforce:S1", "salesforce:S2"],
                    email=["Ann@Acme.com", "ann@acme.com", "bo@acme.com"],
                    created_at=["2026-11-20T09:00:00Z", "2026-11-20T09:30:00Z", "2026-11-20T09:40:00Z"],
                    lead_source=["Webinar", "Web", None])
    plan = ChunkPlan.for_frame(staged.index)
    store.add_changes(run_id, "standardize", T0 + timedelta(hours=1), [],
                      lead_run_rows(staged, staged["lead_key"], plan))
    data = load_kpi_data(store, T0, as_of=T0 + timedelta(days=1))
    leads = speed_frame(data).set_index("lead_key")
    assert leads.loc["salesforce:S1", "created_at"] == pd.Timestamp("2026-11-20T09:00:00Z")  # Ann's form fill
    assert leads.loc["salesforce:S2", "created_at"] == pd.Timestamp("2026-11-20T09:40:00Z")
    assert leads.loc["salesforce:S1", "lead_source"] == "Web"
    assert leads.loc["salesforce:S1", "pulled_at"] == pd.Timestamp(T0 + timedelta(hours=1))
    assert leads.loc["salesforce:S1", "created_to_pulled_min"] == 60.0
    # a lead staged before the window is not new in it
    later = load_kpi_data(store, T0 + timedelta(hours=2), as_of=T0 + timedelta(days=1))
    assert later.leads.empty
