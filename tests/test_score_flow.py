"""Scoring and the lifecycle inside lead_sync: activities from the config, as-of runs, state kept across runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadflow.store import StateStore

pytestmark = pytest.mark.prefect

MODEL = {
    "version": "test-1",
    "mql_threshold": 100,
    "fit_rules": [{"name": "vp", "when": {"column": "seniority", "equals": "vp"}, "points": 50,
                   "reason": "VP"}],
    "engagement_rules": [{"name": "demo", "activity_type": "demo_request", "points": 60, "reason": "Demo request"}],
    "half_life_days": 30,
}
LEADS = [
    {"lead_id": "A", "email": "ann@acme.com", "title": "VP Sales", "status": "Open - Not Contacted"},
    {"lead_id": "B", "email": "bob@acme.com", "title": "Engineer", "status": "Open - Not Contacted"},
]
ACTIVITIES = [
    {"lead_key": "file:A", "activity_type": "demo_request", "occurred_at": "2026-11-19T12:00:00Z", "detail": ""},
    {"lead_key": "file:B", "activity_type": "demo_request", "occurred_at": "2026-11-19T12:00:00Z", "detail": ""},
]


def write(tmp_path: Path, statuses: dict[str, str] | None = None) -> tuple[Path, Path]:
    leads = pd.DataFrame(LEADS)
    for lead_id, status in (statuses or {}).items():
        leads.loc[leads["lead_id"] == lead_id, "status"] = status
    leads.to_csv(tmp_path / "leads.csv", index=False)
    pd.DataFrame(ACTIVITIES).to_csv(tmp_path / "activities.csv", index=False)
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(MODEL), encoding="utf-8")
    config = tmp_path / "leadflow.yaml"
    config.write_text(yaml.safe_dump({"scoring": {"model": "model.yaml", "activities": "activities.csv"}}),
                      encoding="utf-8")
    return tmp_path / "leads.csv", config


def run(leads: Path, config: Path, out: Path, as_of: datetime) -> tuple[dict, pd.DataFrame]:
    from flows.lead_sync import lead_sync

    summary = lead_sync(input_path=str(leads), output_path=str(out), config_path=str(config), as_of=as_of)
    return summary, pd.read_csv(out, dtype="string").set_index("lead_id")


def test_mql_then_sal_across_runs_with_stamps_kept(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    leads, config = write(tmp_path)
    first_at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    summary, out = run(leads, config, tmp_path / "1.csv", first_at)
    assert summary["rows_out"] == 2 and summary["lifecycle"] == {"mql": 1, "new": 1}
    ann = out.loc["A"]
    assert ann["lifecycle_stage"] == "mql" and ann["mql_at"] == "2026-11-20T12:00:00Z"
    assert float(ann["score"]) > 100 and ann["grade"] in {"A", "B", "C", "D"}
    assert ann["score_model_version"] == "test-1" and "Demo request" in ann["score_reasons"]
    assert out.loc["B", "lifecycle_stage"] == "new"

    # Sales accepts Ann a day later: MQL → SAL, her MQL stamp from the first run stays.
    leads, config = write(tmp_path, {"A": "Working - Contacted", "B": "Nurture"})
    summary, out = run(leads, config, tmp_path / "2.csv", datetime(2026, 11, 21, 9, tzinfo=UTC))
    ann = out.loc["A"]
    assert (ann["lifecycle_stage"], ann["mql_at"], ann["sal_at"]) == ("sal", "2026-11-20T12:00:00Z",
                                                                      "2026-11-21T09:00:00Z")
    # Bob was tracked as new: new → recycled is not an allowed move.
    assert out.loc["B", "lifecycle_stage"] == "new"
    assert out.loc["B", "lifecycle_reason"].startswith("refused new → recycled")
    assert summary["lifecycle_refused"] == 1

    # A third run with nothing new changes no lifecycle value.
    run_id = run(leads, config, tmp_path / "3.csv", datetime(2026, 11, 21, 10, tzinfo=UTC))[0]["run_id"]
    events = StateStore.open().events()
    assert events[(events["run_id"] == run_id) & events["column_name"].str.startswith("lifecycle")].empty
    trail = events[(events["lead_key"] == "file:A") & (events["column_name"] == "lifecycle_stage")]
    assert trail["new_value"].tolist() == ["mql", "sal"]
    assert StateStore.open().lifecycle_state(["file:A"]).loc["file:A", "sal_at"] == "2026-11-21T09:00:00Z"


def test_a_backfill_scores_as_of_its_window_end(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    leads, config = write(tmp_path)
    summary, out = run(leads, config, tmp_path / "old.csv", datetime(2026, 11, 1, tzinfo=UTC))
    assert float(out.loc["A", "engagement_score"]) == 0  # the demo request had not happened yet
    assert out.loc["A", "lifecycle_stage"] == "new"


def test_every_run_publishes_its_kpis(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    leads, config = write(tmp_path)
    run(leads, config, tmp_path / "out.csv", datetime.now(UTC))
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["leadflow-kpis"])))
    assert artifacts
    import json

    data = artifacts[0].data
    rows = {row["kpi"]: row["value"] for row in (json.loads(data) if isinstance(data, str) else data)}
    assert any(k.startswith("funnel") for k in rows) and any(k.startswith("sla") for k in rows)
