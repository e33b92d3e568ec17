"""CLI errors: clear message naming the file/row/YAML path, non-zero exit, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.mark.parametrize("content", ["", "   \n\n", "# leadflow config\n# (nothing yet)\n", "null\n", "~\n", "---\n"])
@pytest.mark.parametrize("command", [["run", "-i", "{leads}", "-o", "{out}"], ["map"]])
def test_empty_config_is_refused_in_one_line(tmp_path: Path, content: str, command: list[str]) -> None:
    leads, out = tmp_path / "leads.csv", tmp_path / "o.csv"
    leads.write_text("email\na@b.com\n")
    config = tmp_path / "leadflow.yaml"
    config.write_text(content)
    args = [a.format(leads=leads, out=out) for a in command] + ["--config", str(config)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    assert result.output.strip() == f"error: {config}: is empty (no YAML document: write `{{}}` to use every default)"
    assert not out.exists()


def test_config_of_empty_mapping_means_defaults(tmp_path: Path) -> None:
    config = tmp_path / "leadflow.yaml"
    config.write_text("{}\n")
    assert runner.invoke(app, ["map", "--config", str(config)]).exit_code == 0


def test_every_command_says_what_it_does_in_one_whole_sentence() -> None:
    """The command lists show each command's first paragraph: it must be one line ending a sentence, never a
    sentence cut where the docstring wrapped."""
    import typer.main

    from leadflow.cli import app

    cut = []

    def walk(command: object, prefix: str = "") -> None:
        for name, sub in getattr(command, "commands", {}).items():
            full = f"{prefix} {name}".strip()
            first = (sub.help or "").strip().split("\n\n")[0]
            if "\n" in first or not first.rstrip().endswith((".", ")")):
                cut.append(full)
            walk(sub, full)

    walk(typer.main.get_command(app))
    assert cut == []
