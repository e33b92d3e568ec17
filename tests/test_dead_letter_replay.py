"""Dead letters are replayed on their own budget, outside the export guard: 500 pending failures never block a sync,
and when the failures persist the sync still pulls, routes and writes the new leads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadflow.sandbox.launch import sandbox_routing, sandbox_unassigned_owners
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect

QUEUE = "00G5e000000WebQAAA"
COLLECTIONS = r"PATCH /services/data/v\d+\.\d+/composite/sobjects"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=560, seed=5, page_size=200) as sf:
        yield sf


def _config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch, **salesforce: object) -> str:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    unassigned = sandbox_unassigned_owners(sandbox.org)
    reps = sorted(uid for uid, user in sandbox.org.objects["User"].items()
                  if user.get("IsActive") and uid not in unassigned)  # as `leadflow sandbox` routes
    (tmp_path / "routing.yaml").write_text(sandbox_routing(reps), encoding="utf-8")
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({
        "systems": {"salesforce": {"login_url": sandbox.url, "client_id": sandbox.client_id,
                                   "client_secret": {"env": "LF_TEST_SF_SECRET"},
                                   "ca_bundle": str(sandbox.cert_path), "page_size": 200, **salesforce}},
        "routing": {"rules": "routing.yaml", "unassigned_owners": unassigned},
    }), encoding="utf-8")
    return str(path)


def _pending_letters(sandbox: RunningSalesforce, n: int) -> list[str]:
    """`n` leads' write-backs recorded as failed on an earlier run (their payload: the value leadflow computed)."""
    open_leads = [lead for lead in sandbox.org.objects["Lead"].values() if not lead.get("IsConverted")]
    leads = sorted(open_leads, key=lambda lead: lead["Id"])[:n]
    assert len(leads) == n
    ids = [lead["Id"] for lead in leads]
    failures = pd.DataFrame({
        "record_id": ids, "error_code": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access",
        "retryable": True,
        "payload": [{"record_id": lead["Id"], "country_code": lead.get("Country_Code__c") or "US"} for lead in leads],
    })
    StateStore.open().add_dead_letters("earlier-run", "salesforce", "Lead", failures)
    return ids


def _new_leads(sandbox: RunningSalesforce, n: int, tag: str = "a") -> list[str]:
    return [sandbox.org.put("Lead", {"LastName": f"New {tag}{i}", "Company": f"Newco {tag}{i}",
                                     "Email": f"n{i}@newco{tag}{i}.com",
                                     "LeadSource": "Web Form", "Status": "Open - Not Contacted", "OwnerId": QUEUE,
                                     "IsConverted": False, "HasOptedOutOfEmail": False})
            for i in range(n)]


def _settled(config: str) -> None:
    from flows.crm_sync import crm_sync

    crm_sync(config_path=config, override_export_guard=True)
    for _ in range(3):
        if crm_sync(config_path=config)["systems"]["salesforce"]["written"] == 0:
            return
    pytest.fail("the sync never settled")


def test_500_pending_dead_letters_never_block_a_sync(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync

    config = _config(tmp_path, sandbox, monkeypatch, dead_letter_retries=200)
    _settled(config)
    letters = _pending_letters(sandbox, 500)
    fresh = _new_leads(sandbox, 30)
    # The replay's one Collections call locks every record it touches; later calls (the new leads) go through.
    sandbox.faults.inject(COLLECTIONS, "lock_row", times=1, count=200)
    report = crm_sync(config_path=config)["systems"]["salesforce"]
    assert report["retried"] == 0 and report["retry_failed"] == 200  # its own budget: 200 of the 500, oldest first
    assert report["dead_letters"]["pending"] == 500  # still pending, one more attempt counted on 200 of them
    attempts = StateStore.open().dead_letters("salesforce", "pending")["attempts"].value_counts().to_dict()
    assert attempts == {2: 200, 1: 300}
    assert all(sandbox.org.objects["Lead"][i]["OwnerId"] != QUEUE for i in fresh)  # the sync went on

    # The replay fails outright (503 on its call and on each of the connector's 3 retries): the letters wait, the
    # sync still runs and writes the new leads.
    sandbox.faults.inject(COLLECTIONS, "503", times=4)
    more = _new_leads(sandbox, 5, tag="b")
    report = crm_sync(config_path=config)["systems"]["salesforce"]
    assert report["retry_error"].startswith("SalesforceGeneralError: Error Code 503")
    assert report["dead_letters"]["pending"] == 500
    assert all(sandbox.org.objects["Lead"][i]["OwnerId"] != QUEUE for i in more)

    # The faults are gone and the budget covers them all: every one is written on the next run, without the override
    # (the export guard never counts replays), beside new leads.
    config = _config(tmp_path, sandbox, monkeypatch, dead_letter_retries=1000)
    last = _new_leads(sandbox, 5, tag="c")
    writes_before = len(sandbox.org.field_writes)
    report = crm_sync(config_path=config)["systems"]["salesforce"]
    assert report["retried"] == 500
    assert report["dead_letters"] == {"pending": 0, "permanent": 0}
    assert set(letters) <= {rid for _, rid, _ in sandbox.org.field_writes[writes_before:]}
    assert all(sandbox.org.objects["Lead"][i]["OwnerId"] != QUEUE for i in last)
