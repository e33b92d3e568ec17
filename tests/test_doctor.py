"""`leadflow doctor` and the sync preflight: pure checks, then each system's sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.pipeline.config import load_rules
from leadflow.connectors.salesforce import FieldSpec
from leadflow.connectors.salesforce_fit import rules_from_describe
from leadflow.connectors.salesforce_org import OrgOwner
from leadflow.ops.doctor import Check, DoctorReport, budget_check, preflight, routing_checks, salesforce_field_checks
from leadflow.routing import Queue, User
from leadflow.sandbox.hubspot import running_hubspot
from leadflow.sandbox.marketo import running_marketo
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.sandbox.salesforce_seed import DEFAULT_LEAD_OWNER_ID, WEB_QUEUE_ID

CONFIG = "leadflow.yaml"


def test_field_checks_name_each_problem_and_its_fix() -> None:
    rules = rules_from_describe({"fields": [
        {"name": "Title", "type": "string", "length": 128, "updateable": True},
        {"name": "CreatedDate", "type": "datetime", "updateable": False},
        {"name": "Status", "type": "picklist", "updateable": True, "restrictedPicklist": True,
         "picklistValues": [{"value": "Open", "active": True}]},
    ]})
    fields = {"Title": FieldSpec(column="title"), "CreatedDate": FieldSpec(column="created_at", type="datetime"),
              "Status": FieldSpec(column="status", type="picklist", values=["Open", "Nurture"]),
              "Grade__c": FieldSpec(column="grade", type="picklist", values=["A"]),
              "Industry": FieldSpec(column="industry")}
    checks = {c.item: c for c in salesforce_field_checks(fields, rules, CONFIG)}
    assert checks["mapped fields"].status == "fail" and checks["mapped fields"].detail.startswith("1 of 5 present")
    assert checks["field Grade__c"].fix == f"leadflow setup salesforce --config {CONFIG}"
    assert "field-level security" in checks["field Industry"].fix  # a standard field: setup cannot create it
    assert "not updateable" in checks["field CreatedDate"].detail
    assert "lacks 'Nurture'" in checks["field Status"].detail and "Object Manager" in checks["field Status"].fix
    assert "field Title" not in checks


def test_routing_checks() -> None:
    users = {"0055e0000000010AAA": User(name="Ada"), "0055e0000000011AAA": User(name="Bo"),
             "0055e0000000012AAA": User(name="Cy", active=False), "0055e0000000099AAA": User(name="Gone")}
    queues = {"web": Queue(owner_id="00G5e0000000001AAA"), "team": Queue(owner_id="00G5e0000000002AAA"),
              "old": Queue(owner_id="00G5e0000000003AAA")}
    found = {"0055e0000000010": OrgOwner("0055e0000000010AAA", "Ada", "user", True),
             "0055e0000000011": OrgOwner("0055e0000000011AAA", "Bo", "user", False),
             "0055e0000000012": OrgOwner("0055e0000000012AAA", "Cy", "user", False),
             "00G5e0000000001": OrgOwner("00G5e0000000001AAA", "Web", "queue", True, True),
             "00G5e0000000002": OrgOwner("00G5e0000000002AAA", "Team", "Regular", True, False),
             "00G5e0000000003": OrgOwner("00G5e0000000003AAA", "Cases", "queue", True, False)}
    got = [(c.item.split(" (")[0], c.status) for c in routing_checks(users, queues, found, CONFIG)]
    assert got == [("routing user Bo", "fail"), ("routing user Gone", "fail"), ("routing users", "ok"),
                   ("routing queue web", "ok"), ("routing queue team", "fail"), ("routing queue old", "fail")]
    fine = next(c for c in routing_checks(users, queues, found, CONFIG) if c.item == "routing users")
    assert fine.detail.startswith("2 of 4 ")  # Ada (active) and Cy (inactive, as configured)


@pytest.mark.parametrize(("used", "most", "share", "status"), [
    (100, 15_000, 0.8, "ok"), (14_000, 15_000, 0.95, "warn"), (12_000, 15_000, 0.8, "fail"), (None, None, 0.8, "ok"),
])
def test_budget_check(used: int | None, most: int | None, share: float, status: str) -> None:
    assert budget_check("salesforce", used, most, share, 5000).status == status


def test_report_message_lists_failures_and_fixes_once() -> None:
    report = DoctorReport([Check("salesforce", "field A__c", "fail", "missing", "leadflow setup salesforce --config x"),
                           Check("salesforce", "field B__c", "fail", "missing", "leadflow setup salesforce --config x"),
                           Check("salesforce", "field Title", "warn", "short")], config="x")
    text = report.message()
    assert not report.ok and "2 problem(s)" in text and "field A__c: missing" in text and "Title" not in text
    assert text.count("leadflow setup salesforce --config x") == 1 and "leadflow doctor --config x" in text
    assert DoctorReport([Check("hubspot", "login", "ok")]).ok


# ------------------------------------------------------------------------------------------------- sandboxes


def salesforce_config(tmp_path: Path, sf: RunningSalesforce, monkeypatch: pytest.MonkeyPatch,
                      **extra: Any) -> Path:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sf.client_secret)
    path = tmp_path / "leadflow.yaml"
    document = {"systems": {"salesforce": {"login_url": sf.url, "client_id": sf.client_id,
                                           "client_secret": {"env": "LF_TEST_SF_SECRET"},
                                           "ca_bundle": str(sf.cert_path)}}} | extra
    path.write_text(yaml.safe_dump(document))
    return path


def test_sync_stops_at_the_preflight_on_a_stock_org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_salesforce(tmp_path / "sf", leads=20, seed=3, stock_org=True) as sf:
        config = salesforce_config(tmp_path, sf, monkeypatch)
        result = CliRunner().invoke(app, ["sync", "--config", str(config)])
        seen = list(sf.org.requests_seen)
        queried = [r for r in seen if "/query" in r]
    assert result.exit_code == 1
    assert "preflight failed" in result.output and "Grade__c: custom field missing" in result.output
    assert f"leadflow setup salesforce --config {config}" in result.output
    assert "Starting Prefect" not in result.output and not queried  # stopped before the flow, before any pull
    assert any(r.endswith("/sobjects/Lead/describe/") or r.endswith("/sobjects/Lead/describe") for r in seen)
    assert "--skip-preflight" in CliRunner().invoke(app, ["sync", "--help"]).output


def test_doctor_checks_routing_users_and_queues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_salesforce(tmp_path / "sf", leads=40, seed=3) as sf:
        users = sf.org.objects["User"]
        active = next(u for u, r in users.items() if r["IsActive"] and u != DEFAULT_LEAD_OWNER_ID)
        inactive = next(u for u, r in users.items() if not r["IsActive"])
        (tmp_path / "routing.yaml").write_text(yaml.safe_dump({
            "version": "t-1",
            "users": {active: {"name": "Active rep"}, inactive: {"name": "Left rep"},
                      "0055e0000000999AAA": {"name": "Typo"}},
            "queues": {"web": {"owner_id": WEB_QUEUE_ID}, "bogus": {"owner_id": "00G5e0000000077AAA"}},
            "rules": [{"name": "web", "queue": "web"}],
        }))
        config = salesforce_config(tmp_path, sf, monkeypatch, routing={"rules": "routing.yaml"})
        report = preflight(load_rules(config))
    status = {c.item: c.status for c in report.checks}
    assert status["routing users"] == "ok"  # the active rep; the users that are fine share one line
    assert status[f"routing user Left rep ({inactive})"] == "fail"
    assert status["routing user Typo (0055e0000000999AAA)"] == "fail"
    assert status[f"routing queue web ({WEB_QUEUE_ID})"] == "ok"
    assert status["routing queue bogus (00G5e0000000077AAA)"] == "fail"
    assert status["login"] == "ok" and status["mapped fields"] == "ok"  # a set-up org: only routing is wrong
    assert {c.item for c in report.failures} == {f"routing user Left rep ({inactive})",
                                                 "routing user Typo (0055e0000000999AAA)",
                                                 "routing queue bogus (00G5e0000000077AAA)"}
    assert "set `active: false`" in report.message()


def test_doctor_on_marketo_and_hubspot_sandboxes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_marketo() as mkto, running_hubspot(n=20, seed=1) as hub:
        monkeypatch.setenv("LF_TEST_MKTO_SECRET", mkto.client_secret)
        monkeypatch.setenv("LF_TEST_HUB_TOKEN", hub.token)
        config = tmp_path / "leadflow.yaml"
        config.write_text(yaml.safe_dump({"systems": {
            "marketo": {"base_url": mkto.url, "client_id": mkto.client_id,
                        "client_secret": {"env": "LF_TEST_MKTO_SECRET"}},
            "hubspot": {"base_url": hub.url, "token": {"env": "LF_TEST_HUB_TOKEN"}}}}))
        good = preflight(load_rules(config))
        monkeypatch.setenv("LF_TEST_HUB_TOKEN", "pat-na1-wrong")
        monkeypatch.setenv("LF_TEST_MKTO_SECRET", "wrong")
        bad = CliRunner().invoke(app, ["doctor", "--config", str(config)])
    checks = {(c.system, c.item): c for c in good.checks}
    assert good.ok
    for system in ("marketo", "hubspot"):
        assert checks[(system, "login")].status == "ok" and checks[(system, "API budget")].status in ("ok", "skip")
        fields = checks[(system, "mapped fields")]
        # These sandboxes have no describe endpoint yet: login and budget only, and the doctor says so.
        assert fields.status in ("ok", "skip")
        if fields.status == "skip":
            assert "field check skipped" in fields.detail
    assert bad.exit_code == 1
    assert "marketo: login:" in bad.output and "hubspot: login:" in bad.output


@pytest.mark.parametrize(("url", "refused"), [
    ("https://login.salesforce.com", True),
    ("https://TEST.salesforce.com/", True),
    ("https://acme.my.salesforce.com", False),
    ("https://acme--uat.sandbox.my.salesforce.com", False),
])
def test_client_credentials_need_the_my_domain_url(tmp_path: Path, url: str, refused: bool) -> None:
    from leadflow.pipeline.config import load_rules
    from leadflow.pipeline.errors import ConfigError

    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": url, "client_id": "abc", "client_secret": {"env": "X"}}}}), encoding="utf-8")
    if not refused:
        assert load_rules(path).systems.salesforce is not None
        return
    with pytest.raises(ConfigError, match=r"systems\.salesforce\.login_url: .*My Domain URL") as info:
        load_rules(path)
    assert str(path) in str(info.value)
