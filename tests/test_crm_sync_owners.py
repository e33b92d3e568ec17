"""Routing meets write-back on the Salesforce sandbox: new leads after the first sync pass the export guard, and an
owner whose write failed is written on the next run instead of being lost to the stale CRM owner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadflow.connectors.base import ExportGuardError
from leadflow.sandbox.launch import sandbox_routing
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce

pytestmark = pytest.mark.prefect

QUEUE = "00G5e000000WebQAAA"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=120, seed=9, page_size=200) as sf:
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


def new_leads(sandbox: RunningSalesforce, n: int) -> list[str]:
    return [sandbox.org.put("Lead", {"LastName": f"New {i}", "Company": f"Newco {i}", "Email": f"new{i}@newco{i}.com",
                                     "LeadSource": "Web Form", "Status": "Open - Not Contacted", "OwnerId": QUEUE,
                                     "IsConverted": False, "HasOptedOutOfEmail": False})
            for i in range(n)]


def settle(config: str) -> None:
    from flows.crm_sync import crm_sync

    for _ in range(3):
        if crm_sync(config_path=config)["systems"]["salesforce"]["written"] == 0:
            return
    pytest.fail("the sync never settled")


def test_new_leads_after_the_first_sync_pass_the_guard_and_get_owners(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    with pytest.raises(ExportGuardError):
        crm_sync(config_path=config)  # the initial load still needs the override
    crm_sync(config_path=config, override_export_guard=True)
    settle(config)
    ids = new_leads(sandbox, 150)  # more new leads than the 120 known ones: all of them change
    report = crm_sync(config_path=config)["systems"]["salesforce"]
    assert report["written"] >= 150
    owners = [sandbox.org.objects["Lead"][i]["OwnerId"] for i in ids]
    assert QUEUE not in owners  # every new lead went to a rep


def test_an_owner_whose_write_failed_is_written_next_run(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    crm_sync(config_path=config, override_export_guard=True)
    settle(config)
    ids = new_leads(sandbox, 20)
    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "401", times=2)  # the run dies in write-back
    with pytest.raises(Exception):
        crm_sync(config_path=config)
    assert all(sandbox.org.objects["Lead"][i]["OwnerId"] == QUEUE for i in ids)
    crm_sync(config_path=config)
    owners = [sandbox.org.objects["Lead"][i]["OwnerId"] for i in ids]
    assert QUEUE not in owners, "the routed owner was lost to the stale CRM owner"


def test_the_run_summary_artifacts_cover_each_system() -> None:
    from leadflow.pipeline.ledger import summary_markdown, summary_table

    summary = {
        "run_id": "r1", "rows_in": 10, "rows_out": 9, "rows_quarantined": 1,
        "quarantined_by_stage": {"standardize": 1}, "quarantined_by_expectation": {"standardize": {"x": 1}},
        "systems": {"salesforce": {"pulled": 10, "written": 7, "failed": 1, "api_calls": 4,
                                   "dead_letters": {"pending": 1, "permanent": 0}, "lifecycle": {"mql": 2, "new": 7},
                                   "assigned_per_owner": {"005A": 5, "005B": 2}}},
    }
    rows = {(r["step"], r["expectation"]): r["rows"] for r in summary_table(summary)}
    assert rows[("salesforce: written back", "")] == 7 and rows[("salesforce: API calls used", "")] == 4
    assert rows[("salesforce: dead letters", "pending")] == 1 and rows[("salesforce: lifecycle", "mql")] == 2
    assert rows[("salesforce: assigned", "005A")] == 5 and rows[("quarantined at standardize", "x")] == 1
    text = summary_markdown(summary)
    assert "written back 7" in text and "API calls 4" in text and "MQLs 2" in text


# --------------------------------------------------------------------------- an org seeded the way real ones look

OPEN = "Open - Not Contacted"


@pytest.fixture
def real_org(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf-real", leads=200, seed=11, page_size=200) as sf:
        yield sf


def real_org_config(tmp_path: Path, sf: RunningSalesforce, monkeypatch: pytest.MonkeyPatch) -> tuple[str, set[str]]:
    """Routing for the org's active reps (not the integration user, not the default lead owner); the default lead
    owner's leads are leadflow's to route."""
    from leadflow.sandbox.salesforce_seed import DEFAULT_LEAD_OWNER_ID

    monkeypatch.setenv("LF_TEST_SF_SECRET", sf.client_secret)
    reps = {uid for uid, user in sf.org.objects["User"].items()
            if user["IsActive"] and user["Username"].startswith("rep")}
    routing = {
        "version": "real-1", "timezone": "UTC",
        "users": {uid: {"name": f"Rep {uid[-6:]}"} for uid in sorted(reps)},
        "pools": {"reps": {"members": [{"user": uid} for uid in sorted(reps)]}},
        # No duplicate hold: this test is about ownership (the seed's messy leads hold many duplicates).
        "rules": [{"name": "everyone", "pool": "reps", "sla_minutes": 1440}],
    }
    (tmp_path / "real_routing.yaml").write_text(yaml.safe_dump(routing), encoding="utf-8")
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump({
        "systems": {"salesforce": {"login_url": sf.url, "client_id": sf.client_id,
                                   "client_secret": {"env": "LF_TEST_SF_SECRET"},
                                   "ca_bundle": str(sf.cert_path), "page_size": 200}},
        "routing": {"rules": "real_routing.yaml", "unassigned_owners": [DEFAULT_LEAD_OWNER_ID]},
    }), encoding="utf-8")
    return str(path), reps


def test_a_sync_leaves_worked_person_owned_and_converted_leads_alone_and_routes_the_queue(
    prefect_api: str, state_home: Path, tmp_path: Path, real_org: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.salesforce_seed import DEFAULT_LEAD_OWNER_ID, WEB_QUEUE_ID

    config, reps = real_org_config(tmp_path, real_org, monkeypatch)
    org = real_org.org
    users = org.objects["User"]
    before = {i: dict(r) for i, r in org.objects["Lead"].items()}
    worked = {i for i, r in before.items() if r["Status"] != OPEN}
    converted = {i for i, r in before.items() if r["IsConverted"]}
    persons = {i for i, r in before.items() if r["Status"] == OPEN and r["OwnerId"] in reps}
    queued = {i for i, r in before.items() if r["Status"] == OPEN and r["OwnerId"] == WEB_QUEUE_ID}
    waiting = queued | {i for i, r in before.items() if r["Status"] == OPEN and (
        r["OwnerId"] == DEFAULT_LEAD_OWNER_ID or not users.get(r["OwnerId"], {"IsActive": True})["IsActive"])}
    assert worked and converted and persons and len(queued) >= 20  # the seed has every kind

    summary = crm_sync(config_path=config, override_export_guard=True)
    report = summary["systems"]["salesforce"]
    after = org.objects["Lead"]
    written = {rid: fields for obj, rid, fields in org.field_writes if obj == "Lead"}
    owner_writes = {rid for obj, rid, fields in org.field_writes if obj == "Lead" and "OwnerId" in fields}
    assert not owner_writes & (worked | converted | persons), "a lead someone owns or works got a new owner"
    assert all(after[i]["OwnerId"] == before[i]["OwnerId"] for i in worked | converted | persons)
    assert not set(written) & converted, "a converted lead was written"
    assert 0 < report["skipped_converted"] <= len(converted) and report["failed"] == 0
    moved = {i for i in queued if after[i]["OwnerId"] in reps}
    assert len(moved) >= 0.9 * len(queued), f"routed {len(moved)} of {len(queued)} queue-owned leads"
    assert owner_writes <= waiting  # only leads nobody worked got an owner
    assert report["kept_with_owner"] >= len(persons | worked) * 0.8  # (some rows are quarantined by the gates)
    assert set(report["kept_by_reason"]) >= {"owned by active user", "worked status Working - Contacted"}

    # First sight: stages the CRM status means, dated by the Status history (never the run's time), or undated.
    history = {r["LeadId"]: r["CreatedDate"] for r in org.objects["LeadHistory"].values() if r["Field"] == "Status"}
    dated = [i for i in worked if before[i]["Status"] == "Working - Contacted" and after[i]["SAL_Date__c"]]
    assert dated and all(pd.Timestamp(after[i]["SAL_Date__c"]) == pd.Timestamp(history[i]) for i in dated)
    # A second run changes no owner at all, and writes nothing to converted leads.
    org.field_writes.clear()
    crm_sync(config_path=config)
    assert not {rid for obj, rid, fields in org.field_writes if obj == "Lead" and "OwnerId" in fields}
    assert not {rid for obj, rid, _ in org.field_writes if obj == "Lead"} & converted


def test_a_dead_letter_replay_never_takes_a_lead_someone_took_since_nor_writes_a_converted_one(
    prefect_api: str, state_home: Path, tmp_path: Path, real_org: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A routed owner whose write failed is replayed on the next run — unless, meanwhile, a rep took the lead and
    works it (the owner change is dropped) or it was converted (nothing is written; the letter is settled)."""
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.salesforce_seed import WEB_QUEUE_ID
    from leadflow.store import StateStore

    config, reps = real_org_config(tmp_path, real_org, monkeypatch)
    org = real_org.org
    crm_sync(config_path=config, override_export_guard=True)
    settle(config)
    taken, converted, waiting = [org.put("Lead", {
        "LastName": f"Late {i}", "Company": f"Lateco {i}", "Email": f"late{i}@lateco{i}.com", "LeadSource": "Web Form",
        "Status": OPEN, "OwnerId": WEB_QUEUE_ID, "IsConverted": False, "HasOptedOutOfEmail": False})
        for i in range(3)]
    real_org.faults.inject(r"PATCH .*/composite/sobjects", "lock_row", times=1, ids=[taken, converted, waiting])
    crm_sync(config_path=config)
    store = StateStore.open()
    assert set(store.dead_letters("salesforce", status="pending")["record_id"]) == {taken, converted, waiting}
    assert {org.objects["Lead"][i]["OwnerId"] for i in (taken, converted, waiting)} == {WEB_QUEUE_ID}

    rep = sorted(reps)[0]
    org.put("Lead", {"OwnerId": rep, "Status": "Working - Contacted"}, taken)  # a rep picks it up and calls
    org.put("Lead", {"IsConverted": True, "Status": "Closed - Converted"}, converted)
    org.field_writes.clear()
    report = crm_sync(config_path=config)["systems"]["salesforce"]
    lead = org.objects["Lead"]
    assert lead[taken]["OwnerId"] == rep, "the replay took the lead back from the rep working it"
    assert not [w for w in org.field_writes if w[1] == converted], "a converted lead was written"
    assert lead[waiting]["OwnerId"] in reps  # nobody touched it: the routed owner is finally written
    assert report["retry_owners_dropped"] >= 1 and report["retry_settled"] >= 1
    assert store.dead_letters("salesforce", status="pending").empty
