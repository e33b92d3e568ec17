"""`leadflow routing test` (the repo's own example cases: CI runs them) and `leadflow routing simulate`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.routing.simulate import DEFAULT_CASES, load_cases, run_routing_tests

runner = CliRunner()



@pytest.fixture(autouse=True)
def _own_state_home(state_home: Path) -> Path:
    """Each test its own (empty) state home, never the developer's `.leadflow`: `routing simulate` reads pauses and
    open leads from a state store when one exists."""
    return state_home

def _bundled_routing() -> Path:
    from leadflow.routing import DEFAULT_ROUTING

    return Path(DEFAULT_ROUTING)


def _write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _cases_data() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CASES.read_text(encoding="utf-8"))


# --- the repo's own cases ------------------------------------------------------------------------------------------


def test_repo_cases_pass_against_bundled_rules() -> None:
    """What CI runs: every example case in reference/routing_tests.yaml holds for the bundled routing.yaml."""
    results = run_routing_tests(DEFAULT_CASES)
    failed = [f"{r.name}: expected {r.expected}; got {r.got}" for r in results if not r.passed]
    assert not failed, "\n".join(failed)
    result = runner.invoke(app, ["routing", "test", "--cases", str(DEFAULT_CASES)])
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS  ") == len(results)
    assert f"{len(results)} case(s): {len(results)} passed, 0 failed" in result.output
    # the bundled cases are the default
    assert runner.invoke(app, ["routing", "test"]).exit_code == 0


def test_repo_cases_cover_every_rule() -> None:
    from leadflow.routing import load_routing_config

    config = load_routing_config(_bundled_routing())
    expected = {case.expect.rule for case in load_cases(DEFAULT_CASES).cases}
    missing = [rule.name for rule in config.rules if rule.name not in expected]
    assert not missing, f"no example case expects rule(s) {missing}"


def test_cases_with_explicit_rules_option() -> None:
    result = runner.invoke(app, ["routing", "test", "--cases", str(DEFAULT_CASES), "--rules", str(_bundled_routing())])
    assert result.exit_code == 0, result.output


# --- failing cases -------------------------------------------------------------------------------------------------


def test_failing_case_exits_1_and_shows_expected_and_got(tmp_path: Path) -> None:
    data = _cases_data()
    data["rules"] = str(_bundled_routing())
    good = data["cases"][0]
    rules = [r.name for r in load_cases(DEFAULT_CASES).config.rules]
    wrong = next(name for name in rules if name != good["expect"].get("rule"))
    bad = {"name": "deliberately wrong", "lead": good["lead"], "expect": {"rule": wrong}}
    data["cases"] = [good, bad]
    path = _write(tmp_path / "cases.yaml", data)

    result = runner.invoke(app, ["routing", "test", "--cases", str(path)])
    assert result.exit_code == 1, result.output
    fail = next(line for line in result.output.splitlines() if line.startswith("FAIL"))
    assert "deliberately wrong" in fail
    assert f"expected rule={wrong}" in fail
    assert re.search(r"got rule=\S+", fail)
    assert "[differs: rule]" in fail
    assert "2 case(s): 1 passed, 1 failed" in result.output


def test_reason_and_hold_expectations(tmp_path: Path) -> None:
    data = _cases_data()
    data["rules"] = str(_bundled_routing())
    case = data["cases"][0]
    results = run_routing_tests(_write(tmp_path / "ok.yaml", data))
    assert results[0].passed
    got_held = "hold, reason=" in results[0].got
    data["cases"] = [
        {"name": "hold flips", "lead": case["lead"], "expect": {"hold": not got_held}},
        {"name": "no such words", "lead": case["lead"], "expect": {"reason_contains": "zzz-not-in-any-reason"}},
    ]
    results = run_routing_tests(_write(tmp_path / "cases.yaml", data))
    assert [r.passed for r in results] == [False, False]
    assert results[0].failures == ["hold"] and results[1].failures == ["reason"]


# --- bad case files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cases", "where"),
    [
        ([{"name": "x", "lead": {"email": "a@b.com", "contry_code": "US"}, "expect": {"hold": True}}],
         "cases[0].lead.contry_code"),
        ([{"name": "x", "lead": {"email": "a@b.com"}, "expect": {}}], "cases[0].expect"),
        ([{"name": "x", "lead": {"email": "a@b.com"}, "expect": {"rule": "no_such_rule"}}], "cases[0].expect.rule"),
        ([{"name": "x", "lead": {"email": "a@b.com"}, "expect": {"hold": True}, "extra": 1}], "cases[0].extra"),
        ([{"name": "x", "lead": {"email": "a@b.com", "employees": "lots"}, "expect": {"hold": True}}],
         "cases[0].lead.employees"),
        ([{"name": "x", "lead": {"email": "a@b.com", "country_code": False}, "expect": {"hold": True}}],
         "cases[0].lead.country_code"),
        ([], "cases"),
    ],
)
def test_bad_cases_yaml_names_the_yaml_path(tmp_path: Path, cases: list[Any], where: str) -> None:
    path = _write(tmp_path / "cases.yaml", {"rules": str(_bundled_routing()), "cases": cases})
    result = runner.invoke(app, ["routing", "test", "--cases", str(path)])
    assert result.exit_code == 2, result.output
    assert f"cases.yaml: {where}:" in result.output


def test_unparseable_or_missing_cases_file(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text("cases: [\n", encoding="utf-8")
    result = runner.invoke(app, ["routing", "test", "--cases", str(path)])
    assert result.exit_code == 2 and "cases.yaml: line 2" in result.output
    result = runner.invoke(app, ["routing", "test", "--cases", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml: file not found" in result.output
    _write(path, {"rules": "missing.yaml", "cases": [{"name": "x", "lead": {"email": "a@b.com"},
                                                      "expect": {"hold": True}}]})
    result = runner.invoke(app, ["routing", "test", "--cases", str(path)])
    assert result.exit_code == 2 and "cases.yaml: rules:" in result.output and "missing.yaml" in result.output


# --- simulate ------------------------------------------------------------------------------------------------------


AS_OF = "2026-11-18T17:00:00Z"


def _case_leads(path: Path, copies: int = 4, **columns: str) -> Path:
    """The repo's example leads, `copies` times over, as one lead file: every rule is exercised."""
    from leadflow.pipeline.io import write_leads

    suite = load_cases(DEFAULT_CASES)
    frame = pd.concat(suite.leads * copies, ignore_index=True)
    frame["lead_id"] = [f"L{i:03d}" for i in range(len(frame))]
    for column, value in columns.items():
        frame[column] = value
    return write_leads(frame, path)


def _retarget_smb_rule(path: Path) -> Path:
    """A copy of the bundled routing.yaml whose `smb` rule sends leads to na_east_ae instead of smb_sdr."""
    data = yaml.safe_load(_bundled_routing().read_text(encoding="utf-8"))
    rule = next(r for r in data["rules"] if r["name"] == "smb")
    assert rule["pool"] == "smb_sdr"
    rule["pool"] = "na_east_ae"
    return _write(path, data)


def _table(output: str, title: str) -> dict[str, list[int]]:
    """Rows of a printed table: label → numbers (signs kept)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title) + 2
    rows: dict[str, list[int]] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        parts = line.split()
        numbers = [p for p in parts if re.fullmatch(r"[+-]?\d+", p)]
        label = " ".join(parts[: len(parts) - len(numbers)])
        rows[label] = [int(n) for n in numbers]
    return rows


def test_simulate_modified_rules_moves_add_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadflow.routing.simulate import simulate_routing

    monkeypatch.chdir(tmp_path)
    # leads routed before (rule and assigned_at present) are routed afresh by both rule sets
    leads = _case_leads(tmp_path / "leads.csv", routing_rule="fallback", assigned_at="2026-11-01T00:00:00Z")
    new = _retarget_smb_rule(tmp_path / "new_routing.yaml")
    before = sorted(p.name for p in tmp_path.rglob("*"))

    result = runner.invoke(app, ["routing", "simulate", "--rules", str(new), "--input", str(leads), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # writes nothing

    owners = _table(result.output, "per owner")
    moved_in = sum(n[2] for n in owners.values())
    moved_out = -sum(n[3] for n in owners.values())
    changed = int(re.search(r"leads changing owner\s+(\d+)", result.output).group(1))
    assert changed > 0
    assert moved_in == moved_out == changed
    for numbers in owners.values():  # after = before + in - out, per owner
        assert numbers[1] == numbers[0] + numbers[2] + numbers[3]
    assert sum(n[0] for n in owners.values()) == sum(n[1] for n in owners.values()) == 44
    assert any(label.startswith("0058c00000GraceQ Grace Mbeki") for label in owners)
    rules = _table(result.output, "per rule")
    assert rules["smb"] == [4, 4]  # same rule, another pool
    assert "examples (owner via rule: current -> new)" in result.output
    assert re.search(r"file:L\d+: 0058c00000\w+ via smb -> 0058c00000\w+ via smb", result.output)

    # the same numbers from the function; Grace loses the smb rule's leads (the pool's rotation shifts too)
    sim = simulate_routing(new, leads, as_of=AS_OF)
    assert sim.changed == changed and sim.owners["moved_in"].sum() == sim.owners["moved_out"].sum() == changed
    grace = sim.owners.set_index("owner_id").loc["0058c00000GraceQ"]
    assert grace["moved_out"] > grace["moved_in"]


def test_simulate_same_rules_changes_nothing(tmp_path: Path) -> None:
    leads = _case_leads(tmp_path / "leads.csv", copies=1)
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(_bundled_routing()), "--input", str(leads),
                                 "--current", str(_bundled_routing()), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert re.search(r"leads changing owner\s+0\b", result.output)
    assert "no lead changes owner" in result.output


def test_simulate_bad_input_names_the_file(tmp_path: Path) -> None:
    leads = tmp_path / "leads.csv"
    leads.write_text("email,employees\nann@acme.com,many\n", encoding="utf-8")
    rules = _bundled_routing()
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(rules), "--input", str(leads)])
    assert result.exit_code == 2, result.output
    assert "leads.csv, row 2, column 'employees': not a number 'many'" in result.output
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(rules), "--input", str(tmp_path / "no.csv")])
    assert result.exit_code == 2 and "no.csv: file not found" in result.output
    people = tmp_path / "people.csv"
    people.write_text("first_name\nAnn\n", encoding="utf-8")
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(rules), "--input", str(people)])
    assert result.exit_code == 2 and "people.csv: needs an 'email' or a 'lead_id' column" in result.output


def test_simulate_bad_rules_or_as_of(tmp_path: Path) -> None:
    leads = _case_leads(tmp_path / "leads.csv")
    bad = tmp_path / "new.yaml"
    bad.write_text("rules: [\n", encoding="utf-8")
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(bad), "--input", str(leads)])
    assert result.exit_code == 2 and "new.yaml: line 2" in result.output
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(_bundled_routing()), "--input", str(leads),
                                 "--as-of", "yesterday"])
    assert result.exit_code == 2 and "--as-of 'yesterday'" in result.output
