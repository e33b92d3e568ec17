"""`leadflow trace`, `leadflow forget` and audit retention, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.store import StateStore
from leadflow.audit.trace import forget, retention, trace, trace_lines
from tests.dbs import backend_params, clear_tables, postgres_schema_url, sqlite_url

runner = CliRunner()
T0 = datetime(2026, 11, 1, 9, tzinfo=UTC)
EMAIL = "Ada@Example.com"


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=backend_params())
def store_and_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StateStore, str]]:
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_module_url")
    with StateStore.open(url) as store:
        clear_tables(store.engine)
        yield store, url


def _events(rows: list[tuple[str, str, str, str, str | None, str | None, datetime]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "lead_key", "stage", "column_name", "old_value", "new_value", "at"])


def _seed(store: StateStore) -> dict[str, str]:
    """Ada: salesforce:00Q1 (e-mail cleaned in run 1, written back in run 2), an e-mail-only lead in run 2;
    Bob: salesforce:00Q2 in both runs, plus an old event of Bob's for retention."""
    run1 = store.start_run("crm_sync", {"system": "salesforce"})
    run2 = store.start_run("crm_sync", {"system": "salesforce", "page": 2})
    store.finish_run(run1, "completed", {"rows": 2, "events": 3})
    store.finish_run(run2, "completed", {"rows": 2, "events": 3})
    old = T0 - timedelta(days=400)
    store.add_events(_events([
        (run2, "salesforce:00Q1", "writeback:salesforce", "country", "Germany", "DE", T0 + timedelta(hours=2)),
        (run1, "salesforce:00Q1", "standardize", "email", " Ada@Example.com", "ada@example.com", T0),
        (run1, "salesforce:00Q1", "standardize", "country", "Germany", "DE", T0 + timedelta(seconds=1)),
        (run1, "salesforce:00Q2", "standardize", "country", "france", "FR", T0 + timedelta(seconds=2)),
        (run2, "email:ada@example.com", "score", "score", None, "42", T0 + timedelta(hours=1)),
        (run2, "salesforce:00Q2", "score", "score", "10", "12", T0 + timedelta(hours=1, seconds=1)),
        (run1, "salesforce:00Q2", "standardize", "phone", "1", "+1", old),
    ]))
    store.add_quarantine(run2, "comply", pd.DataFrame({
        "lead_key": ["email:ada@example.com", "salesforce:00Q2"],
        "expectation": ["expect_column_values_to_not_be_null", "expect_column_values_to_be_in_set"],
        "reason": ["consent missing", "bad country"],
        "row": [{"email": "ada@example.com"}, {"email": "bob@example.com"}],
        "at": [T0 + timedelta(hours=1, minutes=1), old],
    }))
    with store.routing_session(run2) as session:
        session.record(pd.DataFrame({
            "lead_key": ["salesforce:00Q1", "salesforce:00Q2"], "owner_id": ["005A", "005B"],
            "routing_rule": ["emea", "amer"], "routing_reason": ["country DE", "country US"],
            "assigned_at": [T0 + timedelta(hours=1, minutes=2)] * 2,
            "sla_due_at": [T0 + timedelta(hours=3)] * 2,
            "inputs": [{"email": "ada@example.com", "country": "DE"}, {"email": "bob@example.com"}],
        }))
    store.mark_assignments(["salesforce:00Q1"], "first_touch_at", T0 + timedelta(hours=2, minutes=30))
    store.save_lifecycle_state(pd.DataFrame({
        "lead_key": ["salesforce:00Q1", "salesforce:00Q2"], "lifecycle_stage": ["mql", "lead"],
        "lifecycle_reason": ["score 42", None], "mql_at": [T0 + timedelta(hours=1), None],
        "sal_at": [None, None], "sql_at": [None, None], "recycled_at": [None, None],
    }), run2)
    store.add_dead_letters(run2, "salesforce", "Lead", pd.DataFrame({
        "record_id": ["00Q1", "00Q2"], "error_code": ["FIELD_INTEGRITY", "UNABLE_TO_LOCK_ROW"],
        "message": ["bad phone", "locked"], "retryable": [False, True], "payload": [{"Phone": "x"}, {"Phone": "y"}],
    }))
    store.write_receipts(pd.DataFrame({"lead_key": ["salesforce:00Q1", "salesforce:00Q2"], "receipt": [11, 22],
                                       "run_id": [run2, run2], "at": [T0 + timedelta(hours=2)] * 2}))
    # The CRM mirror holds Ada as a lead and (another record, same address) as a contact; Bob as a lead.
    store.replace_mirror("Lead", pd.DataFrame({"record_id": ["00Q1", "00Q2"], "email": [EMAIL.lower(), "bob@example.com"],
                                               "last_name": ["Lovelace", "Bob"]}),
                         method="rest", watermark=T0, last_change_at=T0, now=T0)
    store.replace_mirror("Contact", pd.DataFrame({"record_id": ["0031"], "email": [EMAIL.lower()],
                                                  "last_name": ["Lovelace"]}),
                         method="rest", watermark=T0, last_change_at=T0, now=T0)
    store.save_mirror_snapshot("Lead", "g", 1, store.mirror_rows("Lead"), T0)
    # what later features keep per person: CRM first touches, KPI facts, escalation steps, pushed notifications
    store.record_first_touches(pd.DataFrame({"lead_key": ["salesforce:00Q1", "salesforce:00Q2"],
                                             "touched_at": [T0 + timedelta(hours=2)] * 2, "source": ["task"] * 2}),
                               run_id=run2)
    from leadflow.store import escalation_steps, kpi_lead_facts
    from leadflow.store.inbox import InboxNotification

    with store._engine.begin() as conn:
        conn.execute(kpi_lead_facts.insert(), [
            {"lead_key": "salesforce:00Q1", "email": EMAIL.lower(), "first_seen": 1.0, "run_id": run2},
            {"lead_key": "salesforce:00Q2", "email": "bob@example.com", "first_seen": 1.0, "run_id": run2}])
        conn.execute(escalation_steps.insert(), [{
            "lead_key": "salesforce:00Q1", "chain_start": T0, "step": 1, "rule": "emea", "action": "remind",
            "last_step": False, "due_at": T0, "fired_at": T0, "run_id": run2, "owner_id": "005A"}])
    store.record_notifications([InboxNotification("salesforce", "Lead", record, "1", {"Email": email})
                                for record, email in (("00Q1", EMAIL), ("00Q2", "bob@example.com"))] + [
        InboxNotification("web", "lead", "W-9", "1", {"email": EMAIL.upper()}),   # a form not yet processed: Ada
        InboxNotification("hubspot", "contact", "00Q1", "1", {"email": "carol@example.com"})])  # same id, not Ada
    return {"run1": run1, "run2": run2}


def test_trace_by_email_returns_the_whole_journey_in_time_order(store_and_url: tuple[StateStore, str]) -> None:
    store, _ = store_and_url
    ids = _seed(store)
    result = trace(store, EMAIL)
    assert result["kind"] == "email" and result["found"]
    assert result["lead_keys"] == ["email:ada@example.com", "salesforce:00Q1"]
    assert [r["run_id"] for r in result["runs"]] == [ids["run1"], ids["run2"]]
    first = result["runs"][0]
    assert first["flow"] == "crm_sync" and first["params"] == {"system": "salesforce"}
    assert first["stages"][0]["stage"] == "standardize"
    assert [(c["column"], c["old"], c["new"]) for c in first["stages"][0]["changes"]] == [
        ("email", " Ada@Example.com", "ada@example.com"), ("country", "Germany", "DE")]
    second = result["runs"][1]
    assert [s["stage"] for s in second["stages"]] == ["score", "writeback:salesforce"]
    assert second["quarantine"][0]["expectation"] == "expect_column_values_to_not_be_null"
    assert second["quarantine"][0]["reason"] == "consent missing"
    assert [w["new"] for w in result["writeback"]] == ["DE"]
    (assignment,) = result["assignments"]
    assert assignment["owner_id"] == "005A" and assignment["routing_rule"] == "emea"
    assert assignment["first_touch_at"].startswith("2026-11-01T11:00")  # the CRM's Task, not the pull's 11:30
    assert [s["lifecycle_stage"] for s in result["lifecycle"]] == ["mql"]
    assert [(d["record_id"], d["status"]) for d in result["dead_letters"]] == [("00Q1", "permanent")]
    times = [item["at"] for item in result["timeline"]]
    assert times == sorted(times)
    kinds = [item["kind"] for item in result["timeline"]]
    assert kinds[:2] == ["change", "change"] and "quarantine" in kinds and "writeback" in kinds
    assert "first_touch" in kinds and "dead_letter" in kinds and "lifecycle:mql" in kinds
    # nothing of Bob's
    assert all("00Q2" not in json.dumps(item, default=str) for item in result["timeline"])
    text = "\n".join(trace_lines(result))
    assert "'Germany' -> 'DE'" in text and "QUARANTINED at comply" in text and "owner 005A" in text


def test_trace_by_id_finds_every_source_key(store_and_url: tuple[StateStore, str]) -> None:
    store, _ = store_and_url
    ids = _seed(store)
    result = trace(store, "00Q2")
    assert result["kind"] == "id" and result["lead_keys"] == ["salesforce:00Q2"]
    changes = [c for run in result["runs"] for stage in run["stages"] for c in stage["changes"]]
    assert [c["column"] for c in changes] == ["phone", "country", "score"]
    assert [r["run_id"] for r in result["runs"]] == [ids["run1"], ids["run2"]]
    assert [d["record_id"] for d in result["dead_letters"]] == ["00Q2"]
    assert trace(store, "nope")["found"] is False
    assert trace_lines(trace(store, "nope")) == ["Nothing in the state store for 'nope'."]


def test_forget_erases_exactly_one_person_and_leaves_a_tombstone(store_and_url: tuple[StateStore, str]) -> None:
    store, _ = store_and_url
    ids = _seed(store)
    stats_before = {r["run_id"]: r["stats"] for r in store.runs()}
    dry = forget(store, EMAIL, dry_run=True)
    assert dry["tables"] == {"audit_chunks": 0, "lead_runs": 0, "lead_events": 4, "quarantine": 1,
                             "dead_letters": 1, "assignments": 1, "lead_state": 1, "write_receipts": 1,
                             "kpi_lead_facts": 1, "lead_first_touches": 1, "escalation_steps": 1,
                             "intake_inbox": 2, "mirror_records": 2}
    assert trace(store, EMAIL)["found"]  # a dry run erases nothing

    done = forget(store, EMAIL)
    assert done["tables"] == dry["tables"] and done["removed"] == 16
    assert list(store.mirror_rows("Lead")["record_id"]) == ["00Q2"] and store.mirror_rows("Contact").empty
    assert store.mirror_snapshot("Lead") is None  # the snapshot held Ada too
    assert list(store.receipts(["salesforce:00Q1", "salesforce:00Q2"]).index) == ["salesforce:00Q2"]
    assert done["per_run"] == {ids["run1"]: 2, ids["run2"]: 3}
    after = trace(store, EMAIL)
    assert not after["found"] and after["lead_keys"] == [] and after["timeline"] == []
    # Bob is untouched
    assert len(store.events(lead_key="salesforce:00Q2")) == 3
    assert store.quarantine()["lead_key"].tolist() == ["salesforce:00Q2"]
    assert store.assignments()["lead_key"].tolist() == ["salesforce:00Q2"]
    assert store.dead_letters()["record_id"].tolist() == ["00Q2"]
    assert list(store.lifecycle_state(["salesforce:00Q1", "salesforce:00Q2"]).index) == ["salesforce:00Q2"]
    # the runs' stats are untouched; the tombstone is anonymous
    assert {r["run_id"]: r["stats"] for r in store.runs() if r["flow"] != "forget"} == stats_before
    tomb = store.events(lead_key=done["tombstone"])
    assert len(tomb) == 1 and tomb.loc[0, "stage"] == "forget" and tomb.loc[0, "column_name"] == "erased"
    assert tomb.loc[0, "new_value"] == "16" and "ada" not in done["tombstone"]
    assert sorted(map(tuple, store.inbox_notifications()[["system", "record_id"]].to_numpy().tolist())) == [
        ("hubspot", "00Q1"), ("salesforce", "00Q2")]
    assert json.loads(tomb.loc[0, "old_value"])["per_run"] == {ids["run1"]: 2, ids["run2"]: 3}
    (forget_run,) = store.runs(flow="forget")
    assert forget_run["run_id"] == tomb.loc[0, "run_id"]
    with pytest.raises(ValueError):
        forget(store, "00Q2")


def test_retention_deletes_only_old_rows(store_and_url: tuple[StateStore, str]) -> None:
    store, _ = store_and_url
    _seed(store)
    now = T0 + timedelta(days=10)
    assert retention(store, 365, dry_run=True, now=now)["tables"] == {"lead_events": 1, "audit_chunks": 0,
                                                                       "lead_runs": 0, "quarantine": 1,
                                                                       "intake_inbox": 0}
    assert len(store.events()) == 7
    assert retention(store, 365, now=now, chunk_rows=1)["tables"] == {"lead_events": 1, "audit_chunks": 0,
                                                                       "lead_runs": 0, "quarantine": 1,
                                                                       "intake_inbox": 0}
    assert len(store.events()) == 6 and len(store.quarantine()) == 1
    assert store.prune_events(T0 - timedelta(days=1)) == 0
    assert store.prune_events(T0 + timedelta(hours=1, seconds=1)) == 4  # strictly older than `before`
    with pytest.raises(ValueError):
        store.prune_events(datetime(2026, 1, 1))


def test_cli_trace_forget_retention(store_and_url: tuple[StateStore, str], monkeypatch: pytest.MonkeyPatch) -> None:
    store, url = store_and_url
    _seed(store)
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", url)
    out = runner.invoke(app, ["trace", EMAIL, "--json"])
    assert out.exit_code == 0, out.output
    parsed = json.loads(out.output)
    assert parsed["lead_keys"] == ["email:ada@example.com", "salesforce:00Q1"]
    out = runner.invoke(app, ["trace", "00Q1"])
    assert out.exit_code == 0 and "standardize" in out.output and "'Germany' -> 'DE'" in out.output
    out = runner.invoke(app, ["forget", EMAIL, "--dry-run"])
    assert out.exit_code == 0 and "Would remove 16 rows" in out.output
    out = runner.invoke(app, ["forget", EMAIL])
    assert out.exit_code == 0 and "Removed 16 rows" in out.output and "lead_events" in out.output
    assert json.loads(runner.invoke(app, ["trace", EMAIL, "--json"]).output)["found"] is False
    assert runner.invoke(app, ["forget", "not-an-email"]).exit_code == 2
    out = runner.invoke(app, ["retention", "--days", "365", "--dry-run"])
    assert out.exit_code == 0 and "Would delete" in out.output
    out = runner.invoke(app, ["retention", "--days", "365"])
    assert out.exit_code == 0 and "lead_events" in out.output


@pytest.mark.parametrize("command", [["forget", EMAIL], ["forget", EMAIL, "--dry-run"], ["trace", EMAIL],
                                     ["trace", "00Q1", "--json"]])
def test_cli_trace_forget_on_a_store_with_no_runs_say_so(
    store_and_url: tuple[StateStore, str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """A fresh or wrong store (LEADFLOW_HOME / LEADFLOW_DATABASE_URL pointing elsewhere): a clear error, rc != 0,
    the URL shown with its password masked, and nothing written (no tombstone)."""
    from sqlalchemy.engine import make_url

    store, url = store_and_url
    secret = "s3cret-Pa55word"  # SQLite ignores it; the PostgreSQL test server's trust auth too
    with_password = make_url(url).set(password=secret) if url.startswith("postgresql") else make_url(url)
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", with_password.render_as_string(hide_password=False))
    out = runner.invoke(app, command)
    assert out.exit_code == 2, out.output
    assert isinstance(out.exception, SystemExit)  # handled: no traceback
    shown = with_password.render_as_string(hide_password=True)
    assert out.output.strip() == (
        f"error: the state store at {shown} has no runs: is LEADFLOW_HOME / LEADFLOW_DATABASE_URL right?"
    )
    assert secret not in out.output
    assert store.events().empty and store.runs() == []


def test_cli_trace_forget_unknown_lead_on_a_store_with_runs(
    store_and_url: tuple[StateStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is right, the person is not in it: today's answers (not found / 0 rows), rc 0."""
    store, url = store_and_url
    _seed(store)
    monkeypatch.setenv("LEADFLOW_DATABASE_URL", url)
    out = runner.invoke(app, ["trace", "nobody@example.com", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["found"] is False
    out = runner.invoke(app, ["forget", "nobody@example.com"])
    assert out.exit_code == 0 and "Removed 0 rows for 0 lead key(s)" in out.output
