"""crm_sync against the Salesforce sandbox (HTTPS, unmodified simple-salesforce): write-back, dead letters, and
exactly-once writes across a run that stopped half-way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.pipeline.schema import CANONICAL_COLUMNS as COLUMNS
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=600, seed=3, page_size=200) as sf:
        yield sf


@pytest.fixture
def config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": sandbox.url, "client_id": sandbox.client_id, "client_secret": {"env": "LF_TEST_SF_SECRET"},
        "ca_bundle": str(sandbox.cert_path), "page_size": 200,
    }}}))
    return str(path)


def without_enrich(config: str) -> None:
    """Pull mechanics only: no CRM reference pulls before the lead pull, so injected query faults hit the leads."""
    document = yaml.safe_load(Path(config).read_text())
    document["pipeline"] = ["standardize", "comply"]
    Path(config).write_text(yaml.safe_dump(document))


def writeback_events() -> list[tuple[str, str]]:
    events = StateStore.open().events()
    done = events[events["stage"] == "writeback:salesforce"]
    return list(zip(done["lead_key"], done["column_name"], strict=True))


def test_sync_writes_back_what_simple_salesforce_reads_back(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    # The initial load changes every lead: the export guard refuses it unless told this is intended.
    from leadflow.connectors.base import ExportGuardError

    with pytest.raises(ExportGuardError, match=r"export guard refused the write at page \d+: \d+ records changed"):
        crm_sync(config_path=config)
    assert StateStore.open().get_watermark("salesforce") is None
    first = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
    assert first["pulled"] == 600 and first["written"] > 0 and first["failed"] == 0
    leads = sandbox.lead_frame()
    assert leads["Country_Code__c"].notna().sum() > 400  # the standardized country, written by leadflow
    # (converted leads are never written)
    germans = leads[leads["Country"].isin(["Deutschland", "Germany", "DE", "DEU"]) & ~leads["IsConverted"]]
    assert len(germans) and (germans["Country_Code__c"] == "DE").all()
    again = crm_sync(config_path=config)["systems"]["salesforce"]
    assert again["written"] == 0  # the echo of our own writes needs nothing more


def test_locked_rows_become_dead_letters_and_the_next_run_retries_them(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "lock_row", times=1, count=3)
    first = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
    assert first["failed"] == 3 and first["dead_letters"] == {"pending": 3, "permanent": 0}
    store = StateStore.open()
    assert len(store.dead_letters("salesforce", "pending")) == 3
    assert crm_sync(config_path=config)["systems"]["salesforce"]["retried"] == 3
    assert store.dead_letters("salesforce", "pending").empty
    assert len(store.dead_letters("salesforce", "resolved")) == 3


def test_dead_letters_still_locked_on_retry_keep_replayable_changes(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "lock_row", times=1, count=3)
    first = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
    assert first["failed"] == 3
    store = StateStore.open()
    pending = store.dead_letters("salesforce", "pending")
    assert len(pending) == 3 and set(pending["error_code"]) == {"UNABLE_TO_LOCK_ROW"}
    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "lock_row", times=1, count=3)  # still locked on retry
    second = crm_sync(config_path=config)["systems"]["salesforce"]
    assert second["retried"] == 0  # the retry hit the lock again...
    letters = store.dead_letters("salesforce").set_index("record_id").loc[sorted(pending["record_id"])]
    assert set(letters["attempts"]) == {2}
    assert all(set(p) <= set(COLUMNS) for p in letters["payload"])  # ...and kept canonical, replayable changes
    # The same run re-pulled those leads (our other writes bumped their stamps) and wrote them on the normal path.
    assert set(letters["status"]) == {"resolved"}
    assert store.dead_letters("salesforce", "pending").empty
    for record_id, payload in zip(letters.index, letters["payload"], strict=True):
        row = sandbox.org.objects["Lead"][record_id]
        if "country_code" in payload:
            assert row["Country_Code__c"] == payload["country_code"]


def test_a_run_stopped_half_way_resumes_and_writes_each_field_once(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    # The org refuses the second page (REQUEST_LIMIT_EXCEEDED): the run stops cleanly after committing page one.
    without_enrich(config)
    sandbox.faults.inject(r"GET .*/query/[^?]+-\d+$", "403", times=1)
    stopped = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
    assert stopped["stopped"] and "REQUEST_LIMIT_EXCEEDED" in stopped["stopped"]
    assert 0 < stopped["pulled"] < 600
    watermark = StateStore.open().get_watermark("salesforce")
    assert watermark is not None

    resumed = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
    assert resumed["stopped"] is None
    settled = crm_sync(config_path=config)["systems"]["salesforce"]
    assert settled["written"] == 0
    writes = writeback_events()
    assert writes and len(writes) == len(set(writes)), "a field of a lead was written back twice"
    leads = sandbox.lead_frame()
    converted = leads["IsConverted"].astype(bool)  # converted leads are never written (CANNOT_UPDATE_CONVERTED_LEAD)
    assert leads.loc[~converted, "Mailable_Reason__c"].notna().all()  # every lead got processed and written in the end
    assert converted.any() and leads.loc[converted, "Mailable_Reason__c"].isna().all()


def test_a_stop_while_building_the_crm_mirror_syncs_nothing_and_moves_no_watermark(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    # The first query pulls the leads; the mirror is built when the first page has leads to process, starting with a
    # count of the org's accounts: that one is refused.
    sandbox.faults.inject(r"GET .*/query/", "403", times=1, skip=1)
    summary = crm_sync(config_path=config, override_export_guard=True)
    report = summary["systems"]["salesforce"]
    assert report["stopped"].startswith("CRM mirror:") and "REQUEST_LIMIT_EXCEEDED" in report["stopped"]
    assert report["pulled"] == report["written"] == 0
    assert StateStore.open().get_watermark("salesforce") is None
    assert not sandbox.org.field_writes


def test_enrichment_reaches_salesforce_and_settles(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    first = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
    assert first["account_match"].get("domain", 0) > 50
    leads = sandbox.lead_frame()
    matched = leads[leads["Account_Match_Method__c"] == "domain"]
    accounts = sandbox.org.objects["Account"]
    assert len(matched) and matched["Account__c"].map(lambda a: a in accounts).all()
    filled = leads[leads["Enrichment_Source__c"].fillna("").str.contains("employees=account")]
    assert len(filled) and (
        filled["NumberOfEmployees"] == filled["Account__c"].map(lambda a: accounts[a]["NumberOfEmployees"])).all()
    # Head counts a rep typed stay as they were.
    typed = leads[leads["Enrichment_Source__c"].fillna("").str.contains("employees=crm")]
    assert len(typed)
    for _ in range(3):  # our own writes come back once as an echo, then nothing is left to write
        if crm_sync(config_path=config)["systems"]["salesforce"]["written"] == 0:
            break
    else:
        pytest.fail("enrichment write-back never settled")


def test_a_run_killed_in_the_middle_of_write_back_re_runs_writing_each_field_once(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from collections import Counter

    from flows.crm_sync import crm_sync

    # One page of 600 leads, written in three Collections calls. The first goes through; the next keeps failing
    # authentication even after a re-login, so the run dies with part of the page written, watermark not committed.
    document = yaml.safe_load(Path(config).read_text())
    document["systems"]["salesforce"]["page_size"] = 2000
    Path(config).write_text(yaml.safe_dump(document))
    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "401", times=2, skip=1)
    with pytest.raises(Exception):
        crm_sync(config_path=config, override_export_guard=True)
    assert StateStore.open().get_watermark("salesforce") is None
    assert len(sandbox.org.field_writes) == 200

    crm_sync(config_path=config, override_export_guard=True)
    while (result := crm_sync(config_path=config)["systems"]["salesforce"])["written"]:
        assert result["pulled"] < 600  # only our own echo comes back, and it settles
    per_field = Counter((rid, name) for _, rid, names in sandbox.org.field_writes for name in names)
    assert per_field and max(per_field.values()) == 1, "a field of a lead was written twice"
    leads = sandbox.lead_frame()
    assert leads.loc[~leads["IsConverted"].astype(bool), "Mailable_Reason__c"].notna().all()  # converted: never written


def test_malformed_records_are_quarantined_with_a_reason_not_a_crash(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    without_enrich(config)
    sandbox.faults.inject(r"GET .*/query/", "malformed", times=1, drop="LastName", set={"HasOptedOutOfEmail": "maybe"})
    summary = crm_sync(config_path=config, override_export_guard=True)
    assert summary["quarantined_by_stage"]["pull"] == 2
    assert summary["rows_in"] == summary["rows_out"] + summary["rows_quarantined"] == 600
    stored = StateStore.open().quarantine(summary["run_id"])
    reasons = " | ".join(stored.loc[stored["stage"] == "pull", "reason"])
    assert "LastName" in reasons and "HasOptedOutOfEmail" in reasons


def test_backfill_of_a_range_leaves_the_incremental_watermark_alone(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from datetime import datetime

    from flows.crm_sync import crm_sync

    leads = sandbox.lead_frame()
    stamps = sorted(leads["SystemModstamp"])
    start, end = datetime.fromisoformat(stamps[100].replace("Z", "+00:00")), datetime.fromisoformat(
        stamps[400].replace("Z", "+00:00"))
    in_range = int(((leads["SystemModstamp"] >= stamps[100]) & (leads["SystemModstamp"] < stamps[400])).sum())
    report = crm_sync(config_path=config, start=start, end=end, override_export_guard=True)["systems"]["salesforce"]
    assert report["pulled"] == in_range > 0
    assert StateStore.open().get_watermark("salesforce") is None
