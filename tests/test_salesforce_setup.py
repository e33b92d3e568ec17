"""`leadflow setup salesforce`: planning, the Metadata API package, and the whole path on a stock-org sandbox read back
with unmodified simple-salesforce."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from simple_salesforce import Salesforce
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.connectors.salesforce import FieldSpec, load_mapping
from leadflow.connectors.salesforce_setup import (
    PERMISSION_SET,
    WantedField,
    field_metadata,
    label_of,
    package_files,
    plan_setup,
    wanted_fields,
)
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce

NS = {"md": "http://soap.sforce.com/2006/04/metadata"}


@pytest.mark.parametrize(("spec", "expected"), [
    (FieldSpec(column="country_code"), {"type": "Text", "length": 255}),
    (FieldSpec(column="lifecycle_reason", length=80), {"type": "Text", "length": 80}),
    (FieldSpec(column="lifecycle_reason", length=2000), {"type": "LongTextArea", "length": 2000, "visibleLines": 3}),
    (FieldSpec(column="mailable", type="boolean"), {"type": "Checkbox", "defaultValue": "false"}),
    (FieldSpec(column="mql_at", type="datetime"), {"type": "DateTime"}),
    (FieldSpec(column="employees", type="number"), {"type": "Number", "precision": 18, "scale": 0}),
    (FieldSpec(column="annual_revenue", type="number"), {"type": "Number", "precision": 18, "scale": 2}),
    (FieldSpec(column="duplicate_confidence", type="number", precision=5, scale=4),
     {"type": "Number", "precision": 5, "scale": 4}),
    (FieldSpec(column="grade", type="picklist", values=["A", "B"]),
     {"type": "Picklist", "valueSet": {"restricted": True, "valueSetDefinition": {"sorted": False, "value": [
         {"fullName": "A", "default": False, "label": "A"}, {"fullName": "B", "default": False, "label": "B"}]}}}),
])
def test_field_metadata_follows_the_mapping(spec: FieldSpec, expected: dict[str, Any]) -> None:
    assert field_metadata("Some_Field__c", spec) == {"label": "Some Field", **expected}


def test_field_spec_validates_its_metadata() -> None:
    with pytest.raises(ValueError, match="length applies"):
        FieldSpec(column="mailable", type="boolean", length=3)
    with pytest.raises(ValueError, match="scale 6 is larger than precision 4"):
        FieldSpec(column="duplicate_confidence", type="number", precision=4, scale=6)
    assert FieldSpec(column="title").length == 255 and FieldSpec(column="grade", type="picklist").length is None


def test_wanted_fields_cover_every_custom_field_of_the_mapping() -> None:
    mapping = load_mapping()
    wanted = {w.name: w for w in wanted_fields(mapping)}
    assert set(wanted) == {n for n in mapping.objects["Lead"].fields if n.endswith("__c")}
    assert wanted["Grade__c"].metadata["valueSet"]["restricted"] is True
    assert wanted["Account_Match_Confidence__c"].metadata["scale"] >= 2  # confidences 0-1
    assert wanted["MQL_Date__c"].describe() == "DateTime" and wanted["Country_Code__c"].describe() == "Text(255)"
    assert all(w.editable for w in wanted.values())  # every __c field is written
    assert label_of("Account_Match_Method__c") == "Account Match Method"


def _field(name: str, editable: bool = True) -> WantedField:
    return WantedField("Lead", name, {"label": label_of(name), "type": "Text", "length": 255}, editable)


def test_plan_creates_only_what_is_missing() -> None:
    fields = [_field("A__c"), _field("B__c", editable=False), _field("C__c")]
    fresh = plan_setup(fields, existing={"Lead.A__c"}, permission_set_id=None, permissions={}, assigned=False,
                       user_id="005X")
    assert [w.name for w in fresh.missing] == ["B__c", "C__c"] and len(fresh.grants) == 3
    assert not fresh.nothing_to_do
    perms = {"Lead.A__c": ("0PS1", True, True), "Lead.B__c": ("0PS2", True, True), "Lead.C__c": ("0PS3", True, False)}
    partial = plan_setup(fields, {"Lead.A__c", "Lead.B__c", "Lead.C__c"}, "0PS", perms, True, "005X")
    # B is read-only for leadflow (write: false), C lacks edit: both are set to what the mapping needs
    assert [(w.name, pid) for w, pid in partial.grants] == [("B__c", "0PS2"), ("C__c", "0PS3")]
    done = {"Lead.A__c": ("1", True, True), "Lead.B__c": ("2", True, False), "Lead.C__c": ("3", True, True)}
    assert plan_setup(fields, {"Lead.A__c", "Lead.B__c", "Lead.C__c"}, "0PS", done, True, "005X").nothing_to_do


def test_package_is_metadata_api_format() -> None:
    fields = wanted_fields(load_mapping())
    grade = next(w for w in fields if w.name == "Grade__c")
    mailable = next(w for w in fields if w.name == "Mailable__c")
    files = package_files([grade, mailable], fields, "59.0")
    assert set(files) == {"package.xml", "objects/Lead.object", f"permissionsets/{PERMISSION_SET}.permissionset"}
    package = ET.fromstring(files["package.xml"])
    assert package.tag == "{%s}Package" % NS["md"] and package.findtext("md:version", namespaces=NS) == "59.0"
    types = {t.findtext("md:name", namespaces=NS): [m.text for m in t.findall("md:members", NS)]
             for t in package.findall("md:types", NS)}
    assert types == {"CustomField": ["Lead.Grade__c", "Lead.Mailable__c"], "PermissionSet": [PERMISSION_SET]}
    lead = ET.fromstring(files["objects/Lead.object"])
    by_name = {f.findtext("md:fullName", namespaces=NS): f for f in lead.findall("md:fields", NS)}
    assert set(by_name) == {"Grade__c", "Mailable__c"}
    assert by_name["Mailable__c"].findtext("md:type", namespaces=NS) == "Checkbox"
    assert by_name["Mailable__c"].findtext("md:defaultValue", namespaces=NS) == "false"
    value_set = by_name["Grade__c"].find("md:valueSet", NS)
    assert value_set is not None and value_set.findtext("md:restricted", namespaces=NS) == "true"
    assert [v.findtext("md:fullName", namespaces=NS) for v in value_set.iter("{%s}value" % NS["md"])] == \
        ["A", "B", "C", "D"]
    perms = ET.fromstring(files[f"permissionsets/{PERMISSION_SET}.permissionset"])
    assert perms.findtext("md:label", namespaces=NS) == "Leadflow Integration"
    granted = {p.findtext("md:field", namespaces=NS): (p.findtext("md:readable", namespaces=NS),
                                                       p.findtext("md:editable", namespaces=NS))
               for p in perms.findall("md:fieldPermissions", NS)}
    assert len(granted) == len(fields) and granted["Lead.Grade__c"] == ("true", "true")


# ------------------------------------------------------------------------------------------------- against the sandbox


@pytest.fixture
def stock(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=60, seed=3, stock_org=True) as sf:
        yield sf


def write_config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": sandbox.url, "client_id": sandbox.client_id, "client_secret": {"env": "LF_TEST_SF_SECRET"},
        "ca_bundle": str(sandbox.cert_path)}}}))
    return str(path)


def test_setup_on_a_stock_org_then_doctor_passes_and_simple_salesforce_sees_the_fields(
    tmp_path: Path, stock: RunningSalesforce, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, stock, monkeypatch)
    runner = CliRunner()
    custom = [n for n in load_mapping().objects["Lead"].fields if n.endswith("__c")]
    doctor = runner.invoke(app, ["doctor", "--config", config])
    assert doctor.exit_code == 1
    for name in custom:  # every missing field is named, with the command that fixes it
        assert f"field {name}: custom field missing" in doctor.output
    assert f"leadflow setup salesforce --config {config}" in doctor.output

    dry = runner.invoke(app, ["setup", "salesforce", "--config", config, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would create" in dry.output and "Grade__c" in dry.output
    assert "Picklist(A, B, C, D; restricted)" in dry.output
    assert not stock.org.custom_fields  # a dry run changes nothing

    done = runner.invoke(app, ["setup", "salesforce", "--config", config])
    assert done.exit_code == 0, done.output
    assert f"Created {len(custom)} fields" in done.output
    assert {f"Lead.{n}" for n in custom} <= set(stock.org.custom_fields)
    again = runner.invoke(app, ["setup", "salesforce", "--config", config])
    assert again.exit_code == 0 and "Nothing to create" in again.output  # idempotent

    doctor = runner.invoke(app, ["doctor", "--config", config])
    assert doctor.exit_code == 0, doctor.output
    assert "All checks passed" in doctor.output

    # Read back with a client we did not write: the describe shows the fields, a query selecting them works.
    session = stock.session()
    sf = Salesforce(instance_url=stock.url, session_id=stock.token(), session=session, version="59.0")
    described = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert set(custom) <= set(described)
    assert described["Grade__c"]["restrictedPicklist"] is True
    assert [p["value"] for p in described["Grade__c"]["picklistValues"]] == ["A", "B", "C", "D"]
    assert described["Mailable__c"]["type"] == "boolean" and described["Country_Code__c"]["length"] == 255
    assert described["Account_Match_Confidence__c"]["scale"] == 4 and described["MQL_Date__c"]["updateable"]
    rows = sf.query(f"SELECT Id, {', '.join(custom)} FROM Lead WHERE IsConverted = false LIMIT 5")["records"]
    assert rows and all(set(custom) <= set(row) for row in rows)
    lead_id = rows[0]["Id"]
    assert sf.Lead.update(lead_id, {"Grade__c": "B", "Lifecycle_Stage__c": "mql"}) == 204
    assert sf.Lead.get(lead_id)["Grade__c"] == "B"


def test_a_user_who_may_not_customize_gets_a_package_and_a_non_zero_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_salesforce(tmp_path / "sf", leads=20, seed=3, stock_org=True, api_user_can_customize=False) as sf:
        config = write_config(tmp_path, sf, monkeypatch)
        package = tmp_path / "package"
        result = CliRunner().invoke(app, ["setup", "salesforce", "--config", config, "--package-dir", str(package)])
        assert not sf.org.custom_fields
    assert result.exit_code == 1
    assert "Customize Application" in result.output and str(package) in result.output
    assert "sf project deploy start --metadata-dir" in result.output
    lead = ET.fromstring((package / "objects" / "Lead.object").read_text())
    created = {f.findtext("md:fullName", namespaces=NS) for f in lead.findall("md:fields", NS)}
    assert created == {n for n in load_mapping().objects["Lead"].fields if n.endswith("__c")}
    assert (package / "package.xml").is_file()
    assert (package / "permissionsets" / f"{PERMISSION_SET}.permissionset").is_file()


@pytest.mark.prefect
def test_after_setup_a_sync_runs_clean_on_the_stock_org(
    prefect_api: str, state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync

    with running_salesforce(tmp_path / "sf", leads=120, seed=4, stock_org=True) as stock:
        config = write_config(tmp_path, stock, monkeypatch)
        assert CliRunner().invoke(app, ["setup", "salesforce", "--config", config]).exit_code == 0
        report = crm_sync(config_path=config, override_export_guard=True)["systems"]["salesforce"]
        assert report["pulled"] == 120 and report["written"] > 0 and report["failed"] == 0
        sf = Salesforce(instance_url=stock.url, session_id=stock.token(), session=stock.session(), version="59.0")
        rows = sf.query_all("SELECT Id, Country_Code__c, Mailable__c FROM Lead WHERE Country_Code__c != null")
        assert rows["totalSize"] > 0 and all(len(r["Country_Code__c"]) == 2 for r in rows["records"])
