"""CLI errors: clear message naming the file/row/YAML path, non-zero exit, nothing written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from leadflow.cli import app

runner = CliRunner()


def test_map_prints_mermaid() -> None:
    result = runner.invoke(app, ["map"])
    assert result.exit_code == 0
    assert result.output.startswith("flowchart TD")
    assert "GX gate: leads_comply" in result.output


def test_missing_input_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["run", "--input", str(tmp_path / "nope.csv"), "--output", str(out)])
    assert result.exit_code == 2
    assert "nope.csv: file not found" in result.output
    assert not out.exists()


def test_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("first_name,last_name\nAnn,Lee\n")
    result = runner.invoke(app, ["run", "--input", str(path), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 2
    assert "people.csv: needs an 'email' or a 'lead_id' column" in result.output


def test_bad_config_names_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("email\na@b.com\n")
    config = tmp_path / "leadflow.yaml"
    config.write_text("pipeline: [comply, standardize]\n")
    result = runner.invoke(app, ["run", "-i", str(path), "-o", str(tmp_path / "o.csv"), "-c", str(config)])
    assert result.exit_code == 2
    assert "leadflow.yaml: pipeline:" in result.output and "before 'comply'" in result.output
    result = runner.invoke(app, ["map", "-c", str(config)])
    assert result.exit_code == 2
