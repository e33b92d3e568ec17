"""Every entrypoint named in deployments/prefect.yaml loads, and its parameters fit the flow; schedules, the shared
work pool and concurrency are where they should be; lead_backfill refuses bad ranges before any work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

PREFECT_YAML = Path(__file__).resolve().parents[1] / "deployments" / "prefect.yaml"
DOCUMENT = yaml.safe_load(PREFECT_YAML.read_text())
DEPLOYMENTS = DOCUMENT["deployments"]
BY_NAME = {d["name"]: d for d in DEPLOYMENTS}
REQUIRED_EXAMPLES = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}
"""Values for required parameters a deployment leaves to the person starting the run (the backfill form)."""
CRM_WRITERS = ("lead-sync-hourly", "lead-fastlane", "lead-backfill")


def test_there_are_deployments() -> None:
    assert set(BY_NAME) == {"lead-file-sync", "lead-sync-hourly", "lead-backfill", "lead-fastlane", "sla-watch",
                            "map-crm-reconcile", "lead-intake"}


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_loads(deployment: dict) -> None:
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == deployment["entrypoint"].rsplit(":", 1)[1]
    parameters = dict(deployment.get("parameters") or {})
    required = flow.parameters.required or []
    parameters |= {k: v for k, v in REQUIRED_EXAMPLES.items() if k in required and k not in parameters}
    flow.validate_parameters(parameters)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_every_deployment_uses_the_shared_work_pool(deployment: dict) -> None:
    assert deployment["work_pool"] == DOCUMENT["definitions"]["work_pools"]["process"]
    assert deployment["work_pool"]["name"] == "leadflow-process"
    assert "leadflow" in deployment["tags"]


def test_schedules() -> None:
    expected = {"lead-sync-hourly": "0 * * * *", "sla-watch": "*/5 * * * *", "map-crm-reconcile": "0 6 * * *"}
    for name, cron in expected.items():
        (schedule,) = BY_NAME[name]["schedules"]
        assert schedule["cron"] == cron and schedule["timezone"]
    (fastlane,) = BY_NAME["lead-fastlane"]["schedules"]
    assert fastlane["interval"] == 30  # speed-to-lead: a lead waits at most half a minute for the next run
    assert "schedules" not in BY_NAME["lead-backfill"] and "schedules" not in BY_NAME["lead-file-sync"]
    assert "set it to their zone" in PREFECT_YAML.read_text() or "set to your zone" in PREFECT_YAML.read_text()


def test_crm_writers_run_one_at_a_time_and_the_backfill_form_is_enforced() -> None:
    for name in CRM_WRITERS:
        assert BY_NAME[name]["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    assert BY_NAME["lead-backfill"]["enforce_parameter_schema"] is True
    # the long-running intake service: a second copy would only find its port taken
    assert BY_NAME["lead-intake"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert "schedules" not in BY_NAME["lead-intake"]


def test_backfill_form_is_typed() -> None:
    flow = load_flow_from_entrypoint(BY_NAME["lead-backfill"]["entrypoint"])
    schema = flow.parameters.model_dump()["properties"]
    assert schema["start"]["format"] == "date-time" and schema["end"]["format"] == "date-time"
    assert schema["sources"]["items"]["enum"] == ["salesforce", "marketo", "hubspot"]
    assert schema["dry_run"]["type"] == schema["reprocess"]["type"] == schema["parallel"]["type"] == "boolean"
    assert schema["chunk_hours"]["type"] == "integer"


@pytest.mark.prefect
@pytest.mark.parametrize(("start", "end", "field", "words"), [
    (datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), "end", "must be after start"),
    (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC), "end", "at most 366 days"),
], ids=["end-before-start", "too-long"])
def test_backfill_refuses_a_bad_range_before_any_work(
    prefect_api: str, state_home: Path, tmp_path: Path, start: datetime, end: datetime, field: str, words: str
) -> None:
    from flows.lead_backfill import BackfillParameterError, lead_backfill
    from leadflow.store import StateStore

    # A CRM that is not there: any attempt to reach it would fail differently (and slowly).
    config = tmp_path / "leadflow.yaml"
    config.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": "https://127.0.0.1:9", "client_id": "x", "client_secret": {"env": "LF_NO_SUCH_SECRET"}}}}))
    with pytest.raises(BackfillParameterError, match=words) as refused:
        lead_backfill(start=start, end=end, config_path=str(config))
    assert refused.value.field == field and f"'{field}'" in str(refused.value)
    assert StateStore.open().runs(flow="crm_sync") == []  # no sync started


@pytest.mark.prefect
def test_backfill_refuses_bad_chunks_and_unconfigured_sources(prefect_api: str, state_home: Path,
                                                             tmp_path: Path) -> None:
    from flows.lead_backfill import BackfillParameterError, lead_backfill

    config = tmp_path / "leadflow.yaml"
    config.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": "https://127.0.0.1:9", "client_id": "x", "client_secret": {"env": "LF_NO_SUCH_SECRET"}}}}))
    start = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(BackfillParameterError, match="chunk_hours"):
        lead_backfill(start=start, end=start + timedelta(days=1), chunk_hours=0, config_path=str(config))
    with pytest.raises(BackfillParameterError, match=r"'sources'.*marketo.*not configured"):
        lead_backfill(start=start, end=start + timedelta(days=1), sources=["marketo"], config_path=str(config))
