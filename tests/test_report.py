"""KPIs from a small, hand-made state store (numbers checked exactly), then `leadflow report` writing the HTML page and
a headless Chromium rendering it (screenshot in tests/artifacts/report.png)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.audit.kpis import (
    conversion,
    flatten_summary,
    funnel_counts,
    kpi_summary,
    load_kpi_data,
    mql_by_month,
    owner_distribution,
    quarantine_rates,
    quarantine_trend,
    sla_attainment,
    speed_frame,
    speed_percentiles,
    stage_velocity,
    sync_errors,
)
from leadflow.store import StateStore

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def event(run_id: str, key: str, stage: str, column: str, old: str | None, new: str | None, at: str) -> dict:
    return {"run_id": run_id, "lead_key": key, "stage": stage, "column_name": column, "old_value": old,
            "new_value": new, "at": t(at)}


def seed(store: StateStore) -> None:
    """Four leads, three assigned; runs with quarantine stats; three dead letters; lifecycle state.

    speed-to-lead (created → written back): L1 40 min, L2 60 min, M1 120 min (written_at stamp), M2 never assigned.
    SLA: L1 touched in time, L2 breached, M1 not yet due at AS_OF → 1 met of 2 decided (M1 open, apart).
    """
    run = store.start_run("crm_sync", {"systems": ["salesforce", "marketo"]})
    store.add_events(pd.DataFrame([
        # an event before the window: that lead is not in the report
        event(run, "salesforce:OLD", "standardize", "email", "A@x.com", "a@x.com", "2026-10-01T00:00:00Z"),
        event(run, "salesforce:L1", "standardize", "created_at", "2026-11-10 10:00 +0100", "2026-11-10T09:00:00Z",
              "2026-11-10T09:10:00Z"),
        event(run, "salesforce:L1", "standardize", "lead_source", "web", "Web", "2026-11-10T09:10:00Z"),
        event(run, "salesforce:L1", "writeback:salesforce", "owner_id", None, "005A", "2026-11-10T09:40:00Z"),
        event(run, "salesforce:L1", "writeback:salesforce", "lead_status", None, "Open", "2026-11-10T09:41:00Z"),
        event(run, "salesforce:L2", "standardize", "created_at", "10/11/2026 10:00", "2026-11-10T10:00:00Z",
              "2026-11-10T10:05:00Z"),
        event(run, "salesforce:L2", "writeback:salesforce", "owner_id", None, "005A", "2026-11-10T11:00:00Z"),
        # MAP-born: the form fill (created_at) is in October, the pull in November
        event(run, "marketo:M1", "standardize", "created_at", "2026-10-31 23:00", "2026-10-31T23:00:00Z",
              "2026-11-01T00:10:00Z"),
        event(run, "marketo:M1", "standardize", "lead_source", None, "Webinar", "2026-11-01T00:10:00Z"),
        event(run, "marketo:M2", "standardize", "created_at", "2026-11-02", "2026-11-02T08:00:00Z",
              "2026-11-02T08:30:00Z"),
    ]))
    made = pd.DataFrame({
        "lead_key": ["salesforce:L1", "salesforce:L2", "marketo:M1"],
        "owner_id": ["005A", "005A", "005B"],
        "routing_rule": ["territory", "territory", "round_robin"],
        "routing_reason": ["EMEA", "EMEA", "pool"],
        "assigned_at": [t("2026-11-10T09:20:00Z"), t("2026-11-10T10:30:00Z"), t("2026-11-01T00:30:00Z")],
        "sla_due_at": [t("2026-11-10T10:20:00Z"), t("2026-11-10T11:30:00Z"), t("2026-11-21T00:00:00Z")],
    })
    with store.routing_session(run) as session:
        session.record(made)
    store.mark_assignments(["salesforce:L1"], "first_touch_at", t("2026-11-10T10:00:00Z").to_pydatetime())
    store.mark_assignments(["salesforce:L2"], "breached_at", t("2026-11-10T11:30:00Z").to_pydatetime())
    store.mark_assignments(["marketo:M1"], "written_at", t("2026-11-01T01:00:00Z").to_pydatetime())
    store.save_lifecycle_state(pd.DataFrame({
        "lead_key": ["salesforce:L1", "salesforce:L2", "marketo:M1", "marketo:M2"],
        "lifecycle_stage": ["sql", "sal", "mql", "new"],
        "lifecycle_reason": [None, None, None, None],
        "mql_at": ["2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z", "2026-11-01T01:00:00Z", None],
        "sal_at": ["2026-11-11T10:00:00Z", "2026-11-13T12:00:00Z", None, None],
        "sql_at": ["2026-11-14T10:00:00Z", None, None, None],
        "recycled_at": [None, None, None, None],
    }), run)
    store.finish_run(run, "completed", {
        "rows_in": 100, "rows_out": 92, "rows_quarantined": 8,
        "quarantined_by_stage": {"standardize": 5, "comply": 3},
        "quarantined_by_expectation": {"standardize": {"email_valid": 4, "country_known": 1},
                                       "comply": {"consent_known": 3}},
    })
    second = store.start_run("crm_sync", {})
    store.finish_run(second, "completed", {
        "rows_in": 50, "rows_out": 48, "rows_quarantined": 2, "quarantined_by_stage": {"standardize": 2},
        "quarantined_by_expectation": {"standardize": {"email_valid": 2}},
    })
    store.add_dead_letters(second, "salesforce", "Lead", pd.DataFrame({
        "record_id": ["00Q1", "00Q2", "00Q3"],
        "error_code": ["FIELD_CUSTOM_VALIDATION_EXCEPTION", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "UNABLE_TO_LOCK_ROW"],
        "message": ["bad", "bad", "locked"],
        "retryable": [False, False, True],
        "payload": [{"OwnerId": "005A"}] * 3,
    }))


@pytest.fixture
def store(state_home: Path):
    opened = StateStore.open()
    seed(opened)
    yield opened
    opened.close()


def test_speed_to_lead_and_sla(store: StateStore) -> None:
    data = load_kpi_data(store, SINCE, as_of=AS_OF)
    assert sorted(data.leads["lead_key"]) == ["marketo:M1", "marketo:M2", "salesforce:L1", "salesforce:L2"]
    speed = speed_frame(data).set_index("lead_key")
    assert speed.loc["salesforce:L1", "speed_to_lead_min"] == 40.0
    assert speed.loc["salesforce:L1", "created_to_pulled_min"] == 10.0
    assert speed.loc["salesforce:L1", "pulled_to_assigned_min"] == 10.0
    assert speed.loc["salesforce:L1", "assigned_to_written_min"] == 20.0
    assert speed.loc["salesforce:L2", "speed_to_lead_min"] == 60.0
    assert speed.loc["marketo:M1", "speed_to_lead_min"] == 120.0  # form fill → written_at stamp
    assert speed.loc["marketo:M1", "created_to_pulled_min"] == 70.0
    assert math.isnan(speed.loc["marketo:M2", "speed_to_lead_min"])

    overall = speed_percentiles(data, None).iloc[0]
    assert (overall["n"], overall["p50"]) == (3, 60.0)
    assert overall["p90"] == pytest.approx(108.0)  # 60 + 0.8 * (120 - 60)
    per_source = speed_percentiles(data, "source").set_index("group")
    assert per_source.loc["salesforce", "p50"] == 50.0
    assert per_source.loc["marketo", "p50"] == 120.0
    assert per_source.loc["marketo", "n"] == 1
    per_lead_source = speed_percentiles(data, "lead_source").set_index("group")
    assert per_lead_source.loc["Web", "p50"] == 40.0
    assert per_lead_source.loc["Webinar", "p50"] == 120.0

    assert sla_attainment(data) == {"with_sla": 3, "met": 1, "open": 1, "missed": 1, "attainment": 0.5}
    assert owner_distribution(data) == {"005A": 2, "005B": 1}


def test_funnel_velocity_and_quality(store: StateStore) -> None:
    data = load_kpi_data(store, SINCE, as_of=AS_OF)
    assert funnel_counts(data) == {"new": 1, "mql": 1, "sal": 1, "sql": 1, "recycled": 0}
    overall = conversion(data).iloc[0]
    assert (overall["leads"], overall["mql"], overall["sal"], overall["sql"]) == (4, 3, 2, 1)
    assert (overall["new_to_mql"], overall["mql_to_sal"], overall["sal_to_sql"]) == (0.75, 2 / 3, 0.5)
    by_month = conversion(data, "month").set_index("group")
    assert by_month.loc["2026-10", ["leads", "mql", "sal"]].tolist() == [1, 1, 0]  # M1: created in October
    assert by_month.loc["2026-11", ["leads", "mql", "sal", "sql"]].tolist() == [3, 2, 2, 1]
    by_source = conversion(data, "lead_source").set_index("group")
    assert by_source.loc["Web", "sql"] == 1 and by_source.loc["(unknown)", "leads"] == 2
    assert stage_velocity(data) == {"mql_to_sal_days": 2.0, "sal_to_sql_days": 3.0}
    assert mql_by_month(data) == {"2026-11": 3}

    rates = quarantine_rates(data)
    stage_rows = rates[rates["expectation"] == ""].set_index(["rows_in", "stage"])["rate"]
    assert stage_rows[(100, "standardize")] == 0.05 and stage_rows[(100, "comply")] == 0.03
    assert stage_rows[(50, "standardize")] == 0.04
    email = rates[rates["expectation"] == "email_valid"].set_index("rows_in")["rate"]
    assert email[100] == 0.04 and email[50] == 0.04
    trend = quarantine_trend(data)
    assert trend[["rows_in", "quarantined"]].values.tolist() == [[150, 10]]
    assert trend["rate"].iloc[0] == pytest.approx(10 / 150)
    errors = sync_errors(data)
    assert errors[["error_code", "count", "permanent", "pending"]].values.tolist() == [
        ["FIELD_CUSTOM_VALIDATION_EXCEPTION", 2, 2, 0], ["UNABLE_TO_LOCK_ROW", 1, 0, 1]]

    summary = kpi_summary(data)
    assert summary["speed_to_lead_min"]["p50"] == 60.0
    assert summary["sla"]["attainment"] == 0.5
    assert summary["quarantine_rate"] == pytest.approx(0.0667)
    assert summary["dead_letters"] == 3 and summary["owners"] == 2
    assert summary["velocity_days"] == {"mql_to_sal_days": 2.0, "sal_to_sql_days": 3.0}
    import json

    json.dumps(summary, allow_nan=False)  # publishable as an artifact as is
    flat = flatten_summary(summary)
    assert flat["sla.attainment"] == summary["sla"]["attainment"] and flat["funnel.sql"] == 1


@pytest.mark.postgres
def test_same_kpis_on_postgres(state_home: Path, postgres_url: str) -> None:
    with StateStore.open() as lite, StateStore.open(postgres_url) as pg:
        seed(lite)
        seed(pg)
        expected = kpi_summary(load_kpi_data(lite, SINCE, as_of=AS_OF))
        got = kpi_summary(load_kpi_data(pg, SINCE, as_of=AS_OF))
    assert got == expected
    assert got["speed_to_lead_min"]["p50"] == 60.0 and got["funnel"]["sql"] == 1


def test_empty_store_reports_without_data(state_home: Path, tmp_path: Path) -> None:
    from leadflow.audit.report import write_report

    with StateStore.open() as empty:
        data = load_kpi_data(empty, SINCE, as_of=AS_OF)
        summary = kpi_summary(data)
        assert summary["leads"] == 0 and summary["speed_to_lead_min"]["p50"] is None
        page = write_report(empty, SINCE, tmp_path / "empty.html", "flowchart TD\n", as_of=AS_OF).read_text()
    assert "no data in this window" in page


def test_report_command_bad_since(state_home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--since", "yesterday", "--out", str(tmp_path / "r.html")])
    assert result.exit_code != 0
    assert "yesterday" in result.output
    assert not (tmp_path / "r.html").exists()


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)")
def test_report_command_renders_in_chromium(store: StateStore, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "--since", "2026-11-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    page_text = out.read_text(encoding="utf-8")
    assert "<script" not in page_text and "http://" not in page_text.replace("http://www.w3.org/2000/svg", "")
    assert "flowchart TD" in page_text and "st_standardize" in page_text  # the Mermaid source

    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(out.as_uri(), wait_until="load")
            headings = [h.strip() for h in page.locator("h2").all_inner_texts()]
            svgs = page.locator("svg").count()
            charts = page.locator("svg").evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")
            body = page.inner_text("body")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    for heading in ("Summary", "Speed-to-lead", "Funnel", "Data quality", "Owner distribution", "Process map"):
        assert heading in headings, headings
    assert svgs >= 4, charts
    assert "Process map" in charts and "Assignments per owner" in charts
    assert "005A" in body and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in body
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000
