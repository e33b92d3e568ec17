"""SLA breaches against the Salesforce sandbox: a lead nobody touched within its rule's SLA is routed again to
someone else (on_sla_breach: reassign) and the new owner is written back to Salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadflow.sandbox.launch import sandbox_routing
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=80, seed=5, page_size=200) as sf:
        yield sf


def synced_with_reassign(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
                         ) -> tuple[Path, StateStore, pd.DataFrame, pd.DataFrame]:
    """A first sync of the sandbox with `everyone_else` saying `on_sla_breach: reassign`: the config, the store, all
    assignments and the everyone_else ones (by lead_key)."""
    from flows.crm_sync import crm_sync

    routing = yaml.safe_load(sandbox_routing(sorted(sandbox.org.objects["User"])))
    for rule in routing["rules"]:
        if rule["name"] == "everyone_else":
            rule["on_sla_breach"] = "reassign"
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(routing), encoding="utf-8")
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    config = tmp_path / "leadflow.yaml"
    config.write_text(yaml.safe_dump({
        "systems": {"salesforce": {"login_url": sandbox.url, "client_id": sandbox.client_id,
                                   "client_secret": {"env": "LF_TEST_SF_SECRET"},
                                   "ca_bundle": str(sandbox.cert_path), "page_size": 200}},
        "routing": {"rules": "routing.yaml"},
    }), encoding="utf-8")
    crm_sync(config_path=str(config), override_export_guard=True)
    store = StateStore.open()
    assigned = store.assignments().set_index("lead_key")
    everyone_else = assigned[assigned["routing_rule"] == "everyone_else"]
    assert len(everyone_else)
    return config, store, assigned, everyone_else


def test_breached_leads_are_reassigned_and_written_back(
    prefect_api: str, state_home: Path, tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.sla_watch import sla_watch

    config, store, assigned, everyone_else = synced_with_reassign(tmp_path, sandbox, monkeypatch)
    later = datetime.now(UTC) + timedelta(days=3)
    summary = sla_watch(as_of=later, config_path=str(config))
    assert summary["breaches"] > 0 and summary["reassigned"] > 0
    assert summary["reassigned_written"] == {"salesforce": summary["reassigned"]}
    now = store.assignments().set_index("lead_key")
    moved = [k for k in everyone_else.index if now.at[k, "owner_id"] != everyone_else.at[k, "owner_id"]]
    assert len(moved) == summary["reassigned"]
    for key in moved:
        record = sandbox.org.objects["Lead"][key.split(":", 1)[1]]
        assert record["OwnerId"] == now.at[key, "owner_id"] != everyone_else.at[key, "owner_id"]
        assert now.at[key, "breached_at"] is None or str(now.at[key, "breached_at"]) == "NaT"  # a fresh SLA clock
    events = store.events()
    owner_moves = events[(events["stage"] == "sla") & (events["column_name"] == "owner_id")]
    assert set(owner_moves["lead_key"]) == set(moved)
    # Breaches of rules without `on_sla_breach: reassign` are only alerted.
    others = set(summary["by_rule"]) - {"everyone_else"}
    assert all(now.at[k, "owner_id"] == assigned.at[k, "owner_id"]
               for k in assigned.index if assigned.at[k, "routing_rule"] in others)
    # The watch recounted what it changed: the published KPIs (rollups) still equal the full read.
    from leadflow.audit.kpi_rollups import rollup_kpi_summary, window_start
    from leadflow.audit.kpis import kpi_summary, load_kpi_data

    since = window_start(datetime.now(UTC) - timedelta(days=1))
    got, full = rollup_kpi_summary(store, since, later), kpi_summary(load_kpi_data(store, since, as_of=later))
    assert got["sla"] == full["sla"] and got["sla"]["missed"] > 0
    assert (got["leads"], got["assignments"], got["owners"]) == (full["leads"], full["assignments"], full["owners"])
    assert got["created_to_first_touch_min"]["n"] == full["created_to_first_touch_min"]["n"]


def test_a_lead_a_person_moved_in_the_crm_is_never_taken_back(
    prefect_api: str, state_home: Path, tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After leadflow assigned it, a manager gave the lead to another rep in Salesforce: past its SLA, it is neither
    reassigned nor written over; the others are."""
    from flows.sla_watch import sla_watch

    config, store, _, everyone_else = synced_with_reassign(tmp_path, sandbox, monkeypatch)
    key = str(everyone_else.index[0])
    lead = sandbox.org.objects["Lead"][key.split(":", 1)[1]]
    person_choice = next(u for u in sorted(sandbox.org.objects["User"])
                         if u[:15] != str(everyone_else.at[key, "owner_id"])[:15] and u.startswith("005")
                         and sandbox.org.objects["User"][u].get("IsActive", True))
    lead["OwnerId"] = person_choice  # as the manager's edit in Salesforce left it

    summary = sla_watch(as_of=datetime.now(UTC) + timedelta(days=3), config_path=str(config))
    assert summary["kept_by_person"] == 1
    assert summary["reassigned"] == len(everyone_else) - 1 > 0
    assert lead["OwnerId"] == person_choice
    assert store.assignments([key]).iloc[0]["owner_id"] == everyone_else.at[key, "owner_id"]  # not re-routed


def test_a_lead_converted_since_is_left_alone(
    prefect_api: str, state_home: Path, tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Salesforce refuses any update of a converted lead: past its SLA, it is not reassigned (nor written)."""
    from flows.sla_watch import sla_watch

    config, store, _, everyone_else = synced_with_reassign(tmp_path, sandbox, monkeypatch)
    key = str(everyone_else.index[0])
    lead = sandbox.org.objects["Lead"][key.split(":", 1)[1]]
    lead["IsConverted"] = True  # as converting the lead in Salesforce leaves it
    owner = lead["OwnerId"]

    summary = sla_watch(as_of=datetime.now(UTC) + timedelta(days=3), config_path=str(config))
    assert summary["kept_converted"] == 1 and "kept_by_person" not in summary
    assert summary["reassigned"] == len(everyone_else) - 1 > 0
    assert lead["OwnerId"] == owner
    assert store.assignments([key]).iloc[0]["owner_id"] == everyone_else.at[key, "owner_id"]
