"""lead_fastlane against the Salesforce sandbox: a new demo request is assigned and written back by one run; other
new leads are left to the hourly sync, whose watermark does not move."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from leadflow.sandbox.launch import sandbox_routing
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=200, seed=11, page_size=200) as sf:
        yield sf


@pytest.fixture
def config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    routing = tmp_path / "routing.yaml"
    routing.write_text(sandbox_routing(sorted(sandbox.org.objects["User"])))
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({
        "systems": {"salesforce": {
            "login_url": sandbox.url, "client_id": sandbox.client_id, "client_secret": {"env": "LF_TEST_SF_SECRET"},
            "ca_bundle": str(sandbox.cert_path), "page_size": 200,
        }},
        "routing": {"rules": str(routing)},
    }))
    return str(path)


def new_lead(sandbox: RunningSalesforce, email: str, source: str) -> str:
    return sandbox.org.put("Lead", {
        "FirstName": "Fresh", "LastName": email.split("@")[0].title(), "Email": email, "Company": "Brand New GmbH",
        "Country": "Germany", "LeadSource": source, "Status": "Open - Not Contacted", "Title": "VP Sales",
    })


def test_a_demo_request_is_assigned_and_written_by_one_fast_lane_run(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync
    from flows.fastlane import lead_fastlane

    # The hourly sync has run (initial load, then its own echo settles).
    crm_sync(config_path=config, override_export_guard=True)
    crm_sync(config_path=config)
    store = StateStore.open()
    hourly = store.get_watermark("salesforce")
    assert hourly is not None

    hot = new_lead(sandbox, "hot.lead@brandnew-gmbh.de", "Demo Request")
    cold = new_lead(sandbox, "cold.lead@brandnew-gmbh.de", "Web Form")
    writes_before = len(sandbox.org.field_writes)

    summary = lead_fastlane(config_path=config)
    assert summary["hot_leads"] >= 1 and summary["left_to_hourly"] >= 1
    lead = sandbox.org.objects["Lead"][hot]
    assert lead["OwnerId"] in sandbox.org.objects["User"]
    assignment = store.assignments([f"salesforce:{hot}"])
    assert len(assignment) == 1 and assignment.iloc[0]["routing_rule"] == "demo_request"
    assert assignment.iloc[0]["owner_id"] == lead["OwnerId"]
    written = {rid for _, rid, _ in sandbox.org.field_writes[writes_before:]}
    assert hot in written and cold not in written  # the other new lead is left to the hourly sync
    assert store.assignments([f"salesforce:{cold}"]).empty
    assert store.get_watermark("salesforce") == hourly  # the hourly watermark did not move
    lane = store.get_watermark("salesforce:fastlane")
    assert lane is not None and lane > hourly

    # The next hourly run still picks up the cold lead.
    crm_sync(config_path=config)
    assert cold in {rid for _, rid, _ in sandbox.org.field_writes}
