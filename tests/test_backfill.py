"""lead_backfill against the Salesforce sandbox: chunks, resume, reprocess, dry run, and Dask giving the same leads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from leadflow.sandbox.salesforce import SEED_BASE, RunningSalesforce, running_salesforce
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect

LEADS = 300  # one SystemModstamp per lead, a minute apart: 5 hours of changes from SEED_BASE
START, END = SEED_BASE, SEED_BASE + timedelta(hours=5)


def sf_config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    monkeypatch.setenv(f"LF_TEST_SF_SECRET_{name.upper()}", sandbox.client_secret)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": sandbox.url, "client_id": sandbox.client_id,
        "client_secret": {"env": f"LF_TEST_SF_SECRET_{name.upper()}"},
        "ca_bundle": str(sandbox.cert_path), "page_size": 200,
    }}}))
    return str(path)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=LEADS, seed=5, stamp_run=1, page_size=200) as sf:
        yield sf


def crm_sync_runs() -> int:
    return len(StateStore.open().runs(limit=1000, flow="crm_sync"))


def test_backfill_runs_chunks_resumes_and_reprocesses(
    prefect_api: str, state_home: Path, tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.lead_backfill import lead_backfill

    config = sf_config(tmp_path, sandbox, monkeypatch, "sf")
    dry = lead_backfill(start=START, end=END, chunk_hours=1, config_path=config, dry_run=True)
    assert dry["chunks"] == dry["ran"] == 5 and dry["rows_in"] == LEADS
    assert StateStore.open().backfill_chunks(dry["backfill_key"]) == []  # a dry run records nothing
    assert not sandbox.org.field_writes

    first = lead_backfill(start=START, end=END, chunk_hours=1, config_path=config)
    assert first["backfill_key"] == dry["backfill_key"]
    assert first["ran"] == 5 and first["rows_in"] == LEADS
    assert [row["salesforce_pulled"] for row in first["per_chunk"]] == [60] * 5
    store = StateStore.open()
    recorded = store.backfill_chunks(first["backfill_key"])
    assert [r["status"] for r in recorded] == ["completed"] * 5 and all(r["run_id"] for r in recorded)
    assert sandbox.org.field_writes
    assert store.get_watermark("salesforce") is None  # a backfill leaves the incremental watermark alone

    runs = crm_sync_runs()
    again = lead_backfill(start=START, end=END, chunk_hours=1, config_path=config)
    assert again["ran"] == 0 and again["skipped"] == 5 and crm_sync_runs() == runs

    # A chunk that failed (or never finished) is the only one a re-run does.
    third = recorded[2]
    store.record_backfill_chunk(first["backfill_key"], third["chunk_start"], third["chunk_end"], "failed")
    resumed = lead_backfill(start=START, end=END, chunk_hours=1, config_path=config)
    assert resumed["ran"] == 1 and crm_sync_runs() == runs + 1
    # (0 pulled now: our own write-back moved those leads' SystemModstamp out of the window.)
    assert resumed["per_chunk"][2]["status"] == "done"
    assert [r["status"] for r in resumed["per_chunk"]].count("skipped (committed)") == 4

    everything = lead_backfill(start=START, end=END, chunk_hours=1, config_path=config, reprocess=True)
    assert everything["ran"] == 5 and crm_sync_runs() == runs + 6


def test_parallel_on_dask_gives_the_same_leads_as_sequential(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.lead_backfill import lead_backfill

    results = {}
    for mode in ("sequential", "parallel"):
        monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path / mode / ".leadflow"))
        monkeypatch.delenv("LEADFLOW_DATABASE_URL", raising=False)
        with running_salesforce(tmp_path / mode, leads=LEADS, seed=5, stamp_run=1, page_size=200) as sf:
            config = sf_config(tmp_path, sf, monkeypatch, mode)
            summary = lead_backfill(start=START, end=END, chunk_hours=1, config_path=config,
                                    parallel=mode == "parallel")
            assert summary["ran"] == 5 and summary["rows_in"] == LEADS
            assert summary["runner"] == ("dask" if mode == "parallel" else "sequential")
            assert {r["status"] for r in StateStore.open().backfill_chunks(summary["backfill_key"])} == {"completed"}
            leads = sf.lead_frame().drop(columns=["LastModifiedDate", "SystemModstamp"])
            results[mode] = leads.sort_values("Id").reset_index(drop=True)
    assert results["sequential"]["Country_Code__c"].notna().sum() > 100  # leadflow did write
    assert results["sequential"].astype(str).equals(results["parallel"].astype(str))
