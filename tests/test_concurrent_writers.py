"""One writer per system, with real processes: two `leadflow sync` and a `leadflow backfill` started together on one
Salesforce sandbox org and one PostgreSQL state store write each lead's owner once, and the CRM owner of every routed
lead is the stored assignment; a run that cannot get the writer lease says which run holds it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from leadflow.sandbox.launch import Sandboxes, running_sandboxes
from leadflow.sandbox.salesforce import SEED_BASE
from leadflow.store import StateStore

from .conftest import REPO
from .fakes import lease_holder_process

pytestmark = [pytest.mark.prefect, pytest.mark.postgres]

EXE = str(Path(sys.executable).with_name("leadflow"))


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Sandboxes]:
    with running_sandboxes(tmp_path / "sandbox", leads=400, systems=("salesforce",), routing=True) as boxes:
        yield boxes


def _env(prefect_api: str, postgres_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": prefect_api, "LEADFLOW_DATABASE_URL": postgres_url,
            "LEADFLOW_HOME": str(tmp_path / "home")}


def _owner_writes(org: Sandboxes) -> Counter[str]:
    """Owner changes per lead in the org's own field history (LeadHistory 'Owner' rows): every one is leadflow's."""
    history = org.handles["salesforce"].org.objects["LeadHistory"].values()
    return Counter(row["LeadId"] for row in history if row["Field"] == "Owner")


def test_two_syncs_and_a_backfill_at_once_write_one_owner_per_lead(
    prefect_api: str, postgres_url: str, tmp_path: Path, org: Sandboxes
) -> None:
    sf = org.handles["salesforce"]
    # The first write holds its response back, so the writers surely overlap: the others must wait for the lease.
    sf.faults.inject(r"PATCH /services/data/v\d+\.\d+/composite/sobjects", "slow", times=1, seconds=3)
    config = str(org.config_path)
    start, end = (SEED_BASE - timedelta(days=1)).isoformat(), "2100-01-01T00:00:00"
    commands = [
        [EXE, "sync", "--config", config, "--override-export-guard"],
        [EXE, "sync", "--config", config, "--override-export-guard", "--skip-preflight"],
        [EXE, "backfill", "--config", config, "--start", start, "--end", end, "--override-export-guard",
         "--skip-preflight"],
    ]
    env = _env(prefect_api, postgres_url, tmp_path)
    procs = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
    assert any("waiting while run" in out for out in outputs), "the runs never overlapped"

    writes = _owner_writes(org)
    assert writes, "nothing was routed"
    assert max(writes.values()) == 1, {k: v for k, v in writes.items() if v > 1}  # 0 leads with two owners
    with StateStore.open(postgres_url) as store:
        assigned = store.assignments()
        leads = sf.org.objects["Lead"]
        routed = assigned[assigned["routing_rule"].notna()]
        assert len(routed) == len(writes)
        for key, owner in zip(routed["lead_key"], routed["owner_id"], strict=True):
            assert leads[key.removeprefix("salesforce:")]["OwnerId"] == owner, key
        assert {r["status"] for r in store.runs(limit=10)} == {"completed"}
        assert store.leases().held() == []  # every run released its lease


def test_a_run_that_cannot_get_the_lease_names_the_holder_and_exits(
    prefect_api: str, postgres_url: str, tmp_path: Path, org: Sandboxes
) -> None:
    document = yaml.safe_load(org.config_path.read_text(encoding="utf-8"))
    document["concurrency"] = {"writer_wait_seconds": 1}
    org.config_path.write_text(yaml.safe_dump(document), encoding="utf-8")
    holder, holding_run = lease_holder_process(postgres_url)
    try:
        refused = subprocess.run([EXE, "sync", "--config", str(org.config_path), "--override-export-guard",
                                  "--skip-preflight"], cwd=REPO, env=_env(prefect_api, postgres_url, tmp_path),
                                 capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0
        last = refused.stderr.strip().splitlines()[-1]
        assert f"salesforce is being written by run {holding_run} (crm_sync, pid {holder.pid} on " in last
        assert "Traceback" not in refused.stderr
        assert not _owner_writes(org)  # it wrote nothing
        # The holder is killed: the next run takes the lease over at once and marks the dead run crashed.
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        done = subprocess.run([EXE, "sync", "--config", str(org.config_path), "--override-export-guard",
                               "--skip-preflight"], cwd=REPO, env=_env(prefect_api, postgres_url, tmp_path),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        with StateStore.open(postgres_url) as store:
            dead = store.get_run(holding_run)
            assert dead is not None and dead["status"] == "crashed"
    finally:
        holder.kill()

