"""Routing inside lead_sync: the bundled example rules, round robin carried across runs, no reassignment, first
touches and SLA-overdue assignments in the state store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadflow.pipeline.errors import ConfigError
from leadflow.routing import DEFAULT_ROUTING
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect

AVERY, BRUNO = "0058c00000AveryQ", "0058c00000BrunoQ"
WEDNESDAY_10_LA = datetime(2026, 11, 18, 18, tzinfo=UTC)  # Avery and Bruno (Pacific, Mountain) are working


def demo(n: int, status: str = "Open - Not Contacted") -> dict[str, str]:
    return {"lead_id": f"D{n}", "email": f"buyer{n}@corp{n}.com", "country": "US", "state": "CA",
            "lead_source": "Demo Request", "employees": "500", "status": status}


def write(tmp_path: Path, rows: list[dict[str, str]]) -> tuple[Path, Path]:
    pd.DataFrame(rows).to_csv(tmp_path / "leads.csv", index=False)
    config = tmp_path / "leadflow.yaml"
    config.write_text(yaml.safe_dump({"routing": {"rules": str(DEFAULT_ROUTING)}}), encoding="utf-8")
    return tmp_path / "leads.csv", config


def run(leads: Path, config: Path, out: Path, as_of: datetime) -> tuple[dict, pd.DataFrame]:
    from flows.lead_sync import lead_sync

    summary = lead_sync(input_path=str(leads), output_path=str(out), config_path=str(config), as_of=as_of)
    return summary, pd.read_csv(out, dtype="string").set_index("lead_id")


def test_routing_in_the_flow(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    rows = [demo(1), demo(2), demo(3), {"lead_id": "N1", "company": "No Mail Inc"}]
    leads, config = write(tmp_path, rows)
    summary, out = run(leads, config, tmp_path / "1.csv", WEDNESDAY_10_LA)
    assert summary["rows_in"] == 4 == summary["rows_out"] + summary["rows_quarantined"]
    assert out["routing_rule"].notna().all()
    # Weighted round robin 2:1 in the West pool, in file order (smooth: A, B, A, then A, B, A…).
    assert out.loc[["D1", "D2", "D3"], "owner_id"].tolist() == [AVERY, BRUNO, AVERY]
    assert (out.loc["D1", "assigned_at"], out.loc["D1", "sla_due_at"]) == ("2026-11-18T18:00:00Z",
                                                                         "2026-11-18T18:10:00Z")
    assert out.loc["N1", "routing_rule"] == "bad_contact_data" and out.loc["N1", "owner_id"] == "00G8c000004DataQ"
    store = StateStore.open()
    assert set(store.assignments()["lead_key"]) == {"file:D1", "file:D2", "file:D3", "file:N1"}

    # An hour later the same leads come again (one worked by its rep) with a new one: nobody is reassigned, the
    # new lead continues the round robin where the first run left it, and the worked lead's SLA clock stops.
    rows = [demo(1, status="Working - Contacted"), demo(2), demo(3), demo(4), rows[3]]
    previous = out
    leads, config = write(tmp_path, rows)
    later = datetime(2026, 11, 18, 19, tzinfo=UTC)
    _, out = run(leads, config, tmp_path / "2.csv", later)
    for lead in ("D1", "D2", "D3", "N1"):
        assert out.loc[lead, ["owner_id", "assigned_at"]].tolist() == previous.loc[lead, ["owner_id",
                                                                                          "assigned_at"]].tolist()
    assert out.loc["D4", "owner_id"] == AVERY and out.loc["D4", "assigned_at"] == "2026-11-18T19:00:00Z"
    overdue = store.sla_overdue(later)
    assert set(overdue["lead_key"]) == {"file:D2", "file:D3"}  # D1 was touched; D4's ten minutes are not up
    touched = store.assignments(["file:D1"])
    assert touched["first_touch_at"].notna().all()

    # `leadflow sla check` records each breach once, in the audit trail too, and exits 1 while there are new ones.
    from typer.testing import CliRunner

    from leadflow.cli import app

    result = CliRunner().invoke(app, ["sla", "check", "--as-of", "2026-11-18T19:00:00+00:00"])
    assert result.exit_code == 1, result.output
    assert "2 leads past their first-touch SLA" in result.output and "file:D2" in result.output
    again = CliRunner().invoke(app, ["sla", "check", "--as-of", "2026-11-18T19:30:00+00:00"])
    assert again.exit_code == 1 and "file:D4" in again.output and "file:D2" not in again.output
    events = store.events()
    assert set(events.loc[events["stage"] == "sla", "lead_key"]) == {"file:D2", "file:D3", "file:D4"}

    # What if demo requests went to the review queue? Re-route what was assigned, as the store kept it.
    document = yaml.safe_load(DEFAULT_ROUTING.read_text(encoding="utf-8"))
    demo_rule = next(r for r in document["rules"] if r["name"] == "demo_request")
    for key in ("territory", "otherwise"):
        demo_rule.pop(key, None)
    demo_rule["queue"] = "inbound_review"
    (tmp_path / "new_routing.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    simulated = CliRunner().invoke(app, ["routing", "simulate", "--rules", str(tmp_path / "new_routing.yaml"),
                                         "--current", str(DEFAULT_ROUTING), "--since", "30d",
                                         "--as-of", "2026-11-18T19:00:00+00:00"])
    assert simulated.exit_code == 0, simulated.output
    assert "state store, assigned since 30d" in simulated.output and "file:D4" in simulated.output
    from leadflow.routing.simulate import simulate_routing

    result = simulate_routing(tmp_path / "new_routing.yaml", None, DEFAULT_ROUTING, "2026-11-18T19:00:00+00:00",
                              since="30d")
    assert result.leads == 5 and result.changed == 4  # D1-D4 move to the queue; N1 stays with the data stewards


def test_sla_watch_flow_publishes_breaches(prefect_api: str, state_home: Path) -> None:
    from flows.sla_watch import sla_watch

    store = StateStore.open()
    with store.routing_session("seed") as session:
        session.record(pd.DataFrame({
            "lead_key": ["file:X"], "owner_id": [AVERY], "routing_rule": ["demo_request"],
            "routing_reason": ["pool"], "assigned_at": ["2026-11-18T18:00:00Z"], "sla_due_at": ["2026-11-18T18:10:00Z"],
        }))
    summary = sla_watch(as_of=datetime(2026, 11, 18, 19, tzinfo=UTC))
    assert summary["breaches"] == 1 and summary["by_owner"] == {AVERY: 1} and summary["max_minutes_late"] == 50.0
    assert sla_watch(as_of=datetime(2026, 11, 18, 20, tzinfo=UTC))["breaches"] == 0


def test_assign_without_routing_rules_is_refused(tmp_path: Path) -> None:
    from leadflow.pipeline.config import load_rules

    path = tmp_path / "leadflow.yaml"
    path.write_text("pipeline: [standardize, enrich, comply, score, lifecycle, assign]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert "pipeline[5]" in str(info.value) and "routing" in str(info.value)


def test_out_of_office_file_and_inactive_crm_users_leave_the_rotation(tmp_path: Path) -> None:
    from leadflow.pipeline.config import load_rules
    from leadflow.routing import RoutingState, route_leads, with_availability
    from leadflow.pipeline.schema import conform

    (tmp_path / "ooo.csv").write_text(f"user_id,from,to\n{AVERY},2026-11-16,2026-11-20\n", encoding="utf-8")
    config = tmp_path / "leadflow.yaml"
    config.write_text(yaml.safe_dump({"routing": {"rules": str(DEFAULT_ROUTING), "availability": "ooo.csv"}}),
                      encoding="utf-8")
    rules = load_rules(config)
    frame = conform(pd.DataFrame([{**demo(n), "country_code": "US", "state_code": "CA", "segment": "mid_market"}
                                  for n in range(4)]).astype("string"))
    out, _ = route_leads(frame, rules.routing, RoutingState(), as_of=WEDNESDAY_10_LA)
    assert set(out["owner_id"]) == {BRUNO}
    # The CRM says Bruno left too: the West pool overflows to the East pool.
    routing = with_availability(rules.routing, inactive={BRUNO})
    out, _ = route_leads(frame, routing, RoutingState(), as_of=WEDNESDAY_10_LA)
    assert not set(out["owner_id"]) & {AVERY, BRUNO} and out["routing_reason"].str.contains("na_east_ae").all()

    (tmp_path / "ooo.csv").write_text("user_id,from,to\n005NOBODY,2026-11-16,2026-11-20\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(config)
    assert "ooo.csv" in str(info.value) and "005NOBODY" in str(info.value)
