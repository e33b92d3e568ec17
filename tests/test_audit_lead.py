"""`leadflow audit test-lead` against the Salesforce sandbox: the test lead goes through the fast lane, its hops are
printed with times and its owner, and it is deleted and erased afterwards (or kept with --keep)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.sandbox.launch import sandbox_routing
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.store import StateStore
from leadflow.audit.trace import trace

pytestmark = pytest.mark.prefect

runner = CliRunner()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=60, seed=5, page_size=200) as sf:
        yield sf


@pytest.fixture
def config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    (tmp_path / "routing.yaml").write_text(sandbox_routing(sorted(sandbox.org.objects["User"])), encoding="utf-8")
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({
        "systems": {"salesforce": {"login_url": sandbox.url, "client_id": sandbox.client_id,
                                   "client_secret": {"env": "LF_TEST_SF_SECRET"},
                                   "ca_bundle": str(sandbox.cert_path), "page_size": 200}},
        "routing": {"rules": "routing.yaml"},
    }), encoding="utf-8")
    return str(path)


def audit_leads(sandbox: RunningSalesforce) -> dict[str, dict]:
    return {i: r for i, r in sandbox.org.objects["Lead"].items() if str(r["Email"] or "").startswith("leadflow-test+")}


def test_audit_test_lead_times_each_hop_and_cleans_up(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # flows/ is loaded from the repository root
    crm_sync(config_path=config, override_export_guard=True)

    result = runner.invoke(app, ["audit", "test-lead", "--profile", "demo-request", "--config", config])
    assert result.exit_code == 0, result.output
    out = result.output
    email = re.search(r"leadflow-test\+[0-9a-f]{8}@example\.com", out)
    assert email, out
    for hop in ("created", "pulled", "standardize", "assign", "assigned", "written back"):
        assert re.search(rf"\+\d+\.\d s\s+{hop}\b", out), f"no timed hop {hop!r}:\n{out}"
    owner = re.search(r"owner\s+(005\w+)", out)
    assert owner and owner.group(1) in sandbox.org.objects["User"], out
    assert re.search(r"speed-to-lead\s+\d+\.\d s", out), out
    assert "deleted from salesforce" in out

    assert audit_leads(sandbox) == {}  # gone from the source system
    with StateStore.open() as store:
        assert not trace(store, email.group(0))["found"]  # and from the state store

    kept = runner.invoke(app, ["audit", "test-lead", "--profile", "demo-request", "--config", config, "--keep"])
    assert kept.exit_code == 0, kept.output
    left = audit_leads(sandbox)
    assert len(left) == 1
    (record_id, record), = left.items()
    assert record["LeadSource"] == "Demo Request" and record["Company"] == "leadflow test lead (safe to delete)"
    with StateStore.open() as store:
        assert trace(store, record_id)["found"]

    # The hourly path, and a flow that fails in write-back: cleanup still runs, the exit code says it failed.
    webinar = runner.invoke(app, ["audit", "test-lead", "--profile", "webinar", "--config", config])
    assert webinar.exit_code == 0, webinar.output
    assert "crm_sync" in webinar.output and re.search(r"\+\d+\.\d s\s+written back", webinar.output)
    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "401", times=2)
    failed = runner.invoke(app, ["audit", "test-lead", "--profile", "demo-request", "--config", config])
    assert failed.exit_code == 1, failed.output
    assert "FLOW FAILED" in failed.output and "deleted from salesforce" in failed.output
    assert list(audit_leads(sandbox)) == [record_id]  # only the --keep lead is left
