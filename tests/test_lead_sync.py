"""The lead_sync flow end to end on a real Prefect test server, with the state store on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.pipeline.errors import DataQualityError
from leadflow.pipeline.io import quarantine_path
from leadflow.pipeline.schema import CANONICAL_COLUMNS
from leadflow.pipeline.settings import SAMPLE_LEADS
from leadflow.store import StateStore

from .conftest import REPO

pytestmark = pytest.mark.prefect


def sample(tmp_path: Path, rows: int = 400) -> Path:
    """The head of the bundled sample plus rows that must be refused or quarantined."""
    frame = pd.read_csv(SAMPLE_LEADS, dtype="string", keep_default_na=False).head(rows)
    extra = pd.DataFrame(
        [
            {"lead_id": "", "email": "", "first_name": "Nobody"},  # no identity: refused on input
            {"lead_id": "00QTESTOPTIN000001", "email": "optin@acme.com", "email_opt_in": "perhaps"},  # refused
            {"lead_id": "00QTESTDATE0000001", "email": "date@acme.com", "created_at": "yesterday"},  # quarantined
            {"lead_id": "00QTESTDE000000001", "source": "salesforce", "email": "Hans@Firma.DE ",
             "country": "Deutschland", "email_opt_in": ""},
        ]
    )
    path = tmp_path / "leads.csv"
    pd.concat([frame, extra]).fillna("").to_csv(path, index=False)
    return path


def run_flow(path: Path, out: Path, config: Path | None = None) -> dict:
    from flows.lead_sync import lead_sync

    return lead_sync(input_path=str(path), output_path=str(out), config_path=str(config) if config else None)


def test_lead_sync_end_to_end(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    path = sample(tmp_path)
    out = tmp_path / "out" / "leads.csv"
    summary = run_flow(path, out)

    rows_in = 404
    assert summary["rows_in"] == rows_in
    assert summary["rows_in"] == summary["rows_out"] + summary["rows_quarantined"]
    assert summary["quarantined_by_stage"]["input"] >= 2
    assert summary["quarantined_by_expectation"]["standardize"]["expect_column_values_to_match_regex"] >= 1

    written = pd.read_csv(out, dtype="string", keep_default_na=False)
    assert list(written.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    assert len(written) == summary["rows_out"]
    assert set(written["mailable"]) <= {"true", "false"}
    hans = written[written["lead_id"] == "00QTESTDE000000001"].iloc[0]
    assert (hans["email"], hans["country_code"], hans["consent_required"], hans["mailable"]) == (
        "hans@firma.de", "DE", "true", "false")
    assert hans["mailable_reason"] == "no_consent"

    quarantine = pd.read_csv(quarantine_path(out), dtype="string", keep_default_na=False)
    assert len(quarantine) == summary["rows_quarantined"]
    reasons = " | ".join(quarantine["reason"])
    assert "row has neither email nor lead_id" in reasons
    assert "email_opt_in: unrecognised value 'perhaps'" in reasons
    assert "created_at is not a parseable timestamp (value: 'yesterday')" in reasons

    store = StateStore.open()
    run = store.get_run(summary["run_id"])
    assert run is not None and run["status"] == "completed"
    stored = store.quarantine(summary["run_id"])
    assert len(stored) >= summary["rows_quarantined"]  # a row failing two expectations has two records
    assert (stored["stage"] == "input").sum() == summary["quarantined_by_stage"]["input"]
    trail = store.events(lead_key="salesforce:00QTESTDE000000001")
    changed = dict(zip(trail["column_name"], zip(trail["old_value"], trail["new_value"], strict=True), strict=True))
    assert changed["email"] == ("Hans@Firma.DE", "hans@firma.de")
    assert changed["country_code"] == (None, "DE") or changed["country_code"][1] == "DE"
    assert changed["mailable_reason"][1] == "no_consent"
    assert set(trail["stage"]) == {"standardize", "enrich", "comply", "score", "lifecycle"}


def test_data_quality_failure_fails_the_run_and_is_recorded(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "leadflow.yaml"
    config.write_text("quality:\n  max_quarantine_share: 0.0\n")
    quarantine = tmp_path / "out.csv.quarantine.csv"
    with pytest.raises(DataQualityError, match="leads_standardize.*over the configured maximum") as failed:
        run_flow(sample(tmp_path, rows=50), tmp_path / "out.csv", config)
    assert not (tmp_path / "out.csv").exists()
    runs = StateStore.open().runs()
    assert runs[0]["status"] == "failed" and "DataQualityError" in runs[0]["error"]
    # What tripped the gate is left to inspect: in the quarantine file (its path in the message) and the store.
    assert f"the rows quarantined so far are in {quarantine} and the state store run {runs[0]['run_id']}" in str(
        failed.value)
    written = pd.read_csv(quarantine)
    stored = StateStore.open().quarantine(runs[0]["run_id"])
    assert len(written) >= 1 and set(written["stage"]) <= {"input", "standardize"}
    assert "standardize" in set(written["stage"]) and "standardize" in set(stored["stage"])


@pytest.mark.postgres
def test_lead_sync_on_postgres(prefect_api: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
                               tmp_path: Path) -> None:
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", postgres_url)
    summary = run_flow(sample(tmp_path, rows=100), tmp_path / "out.csv")
    store = StateStore.open(postgres_url)
    assert store.get_run(summary["run_id"])["status"] == "completed"
    assert len(store.events(run_id=summary["run_id"])) > 100


def test_cli_run(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli" / "leads.csv"
    result = CliRunner().invoke(app, ["run", "--input", str(sample(tmp_path, rows=60)), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "rows in" in result.output and "quarantined at input" in result.output
    assert out.is_file() and quarantine_path(out).is_file()


@pytest.mark.postgres
def test_database_password_never_reaches_output(prefect_api: str, postgres_url: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.engine import make_url

    secret = "s3cret-Pa55word"  # trust auth on the test server ignores it; leadflow must still never print it
    url = make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["run", "-i", str(sample(tmp_path, rows=20)), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output
    assert secret not in result.output and "***" in result.output
    store = StateStore.open(url)
    run = store.runs()[0]
    assert secret not in str(run) and secret not in store.url


def test_offline_demo_as_a_user_runs_it(prefect_api: str, tmp_path: Path) -> None:
    """`leadflow demo --offline`, as a separate process against the session's Prefect server."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "LEADFLOW_HOME": str(tmp_path / "home")}
    env.pop("LEADFLOW_DATABASE_URL", None)
    out = tmp_path / "demo.csv"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("leadflow")), "demo", "--offline", "--output", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rows in" in proc.stdout and "mailable" in proc.stdout and "Where to look next" in proc.stdout
    written = pd.read_csv(out, dtype="string")
    assert len(written) >= 2000


def test_demo_as_a_user_runs_it(prefect_api: str, tmp_path: Path) -> None:
    """The README's second command: the real sync against the Salesforce and Marketo sandboxes."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "LEADFLOW_HOME": str(tmp_path / "home")}
    env.pop("LEADFLOW_DATABASE_URL", None)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("leadflow")), "demo", "--leads", "300"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = re.search(r"salesforce   pulled 300, written back (\d+)", proc.stdout)
    assert written and 0 < int(written.group(1)) < 300, proc.stdout  # converted leads are never written
    routed = re.search(r"salesforce   pulled.*?routed (\d+) to .*?kept with their owner (\d+)", proc.stdout, re.S)
    assert routed and int(routed.group(1)) > 0 and int(routed.group(2)) > 0, proc.stdout
    assert "kept: owned by active user" in proc.stdout and "kept: converted" in proc.stdout
    assert "Rows quarantined" in proc.stdout
    assert "marketo      pulled 300, written back" in proc.stdout
    assert "What changed in the systems (written back)" in proc.stdout
    assert "salesforce country_code" in proc.stdout
    # Then sandbox reps work their new leads in the org (Tasks, Events, status changes over REST, the org's clock
    # fast-forwarded) and sla_watch pulls those first touches from the CRM and decides the SLAs; the report is written.
    assert "Reps at work" in proc.stdout and "SLA watch as of" in proc.stdout, proc.stdout
    home = tmp_path / "home"
    report = home / "demo-report.html"
    assert report.is_file() and f"Report: {report.resolve()}" in proc.stdout, proc.stdout
    assert 'data-kpi="sla.attainment"' in report.read_text(encoding="utf-8")
    store = StateStore.open(f"sqlite:///{home / 'state.db'}")
    try:
        made = store.assignments(since=datetime(2000, 1, 1, tzinfo=UTC))
    finally:
        store.close()
    touched = made[made["first_touch_at"].notna()]
    assert set(touched["first_touch_source"]) <= {"task", "event", "status_history"}  # the CRM's, no pull fallback
    assert {"task", "status_history"} <= set(touched["first_touch_source"])
    assert (touched["first_touch_at"] >= touched["assigned_at"]).all()
    met = touched["first_touch_at"] <= touched["sla_due_at"]
    assert met.any() and (~met).any()  # some reps in time, some late
    assert made["breached_at"].notna().any()  # and some leads nobody touched in time: breaches recorded
    assert re.search(r"SLA +\d+\.\d% met: \d+ met, \d+ missed", proc.stdout), proc.stdout
