"""The project a command runs in is found like git finds its repository: from a sub-folder, with --project-dir or
LEADFLOW_PROJECT; outside any project, commands say so in one line and create no state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.pipeline.project import ProjectNotFound, find_project, require_project
from leadflow.pipeline.settings import Settings

from .conftest import REPO

runner = CliRunner()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder outside any project, with no state settings in the environment."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("LEADFLOW_HOME", "LEADFLOW_DATABASE_URL", "LEADFLOW_PROJECT", "LEADFLOW_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return folder


def _project(root: Path) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "lead_sync.py").write_text("", encoding="utf-8")
    (root / "tasks").mkdir()
    return root


def test_the_project_is_found_from_a_sub_folder(elsewhere: Path) -> None:
    root = _project(elsewhere / "checkout")
    deep = root / "data" / "inbox"
    deep.mkdir(parents=True)
    assert find_project(deep) == root.resolve()
    assert find_project(elsewhere) is None
    os.chdir(deep)
    assert Settings().home == root.resolve() / ".leadflow"  # state anchored to the project, not the folder


def test_leadflow_project_names_it_and_a_wrong_one_is_refused(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(elsewhere / "checkout")
    monkeypatch.setenv("LEADFLOW_PROJECT", str(root))
    assert find_project(elsewhere) == root.resolve()
    monkeypatch.setenv("LEADFLOW_PROJECT", str(elsewhere))
    with pytest.raises(ProjectNotFound, match="LEADFLOW_PROJECT=.* is not a leadflow project"):
        find_project()
    monkeypatch.delenv("LEADFLOW_PROJECT")
    with pytest.raises(ProjectNotFound, match="not inside a leadflow project: no flows/lead_sync.py in .*elsewhere"):
        require_project()


def test_trace_outside_a_project_says_so_and_creates_nothing(elsewhere: Path) -> None:
    result = runner.invoke(app, ["trace", "ada@example.com"])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "no state store at" in lines[0] and "not inside a leadflow project" in lines[0]
    assert not (elsewhere / ".leadflow").exists()


def test_run_outside_a_project_says_so_before_starting_anything(elsewhere: Path) -> None:
    result = runner.invoke(app, ["run", "--input", str(REPO / "src/leadflow/data/sample_leads.csv"),
                                 "--output", str(elsewhere / "out.csv")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: not inside a leadflow project: no flows/lead_sync.py in {elsewhere.resolve()} or any parent; run "
        "from your leadflow checkout, pass --project-dir PATH or set LEADFLOW_PROJECT"]
    assert not (elsewhere / ".leadflow").exists()


def test_a_wrong_project_dir_is_one_line(elsewhere: Path) -> None:
    result = runner.invoke(app, ["--project-dir", str(elsewhere), "trace", "ada@example.com"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: --project-dir {elsewhere}: not a leadflow project (no flows/lead_sync.py and tasks/ there)"]


@pytest.mark.prefect
def test_run_works_from_outside_with_project_dir(prefect_api: str, elsewhere: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "LEADFLOW_HOME": str(elsewhere / "state")}
    out = elsewhere / "out.csv"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("leadflow")), "--project-dir", str(REPO), "run", "--input",
         str(REPO / "src/leadflow/data/sample_leads.csv"), "--output", str(out)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and (elsewhere / "state" / "state.db").is_file()


def test_a_temporary_prefect_server_that_does_not_start_is_one_line(elsewhere: Path) -> None:
    """As on a loaded machine: the temporary server misses its start-up timeout (here 0 s)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0", "LEADFLOW_HOME": str(elsewhere / "state")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("leadflow")), "--project-dir", str(REPO), "run", "--input",
         str(REPO / "src/leadflow/data/sample_leads.csv"), "--output", str(elsewhere / "out.csv")],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("error:")]
    assert errors == ["error: the temporary Prefect server did not answer within 0 s (a busy machine); start one with "
                      "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api, or raise "
                      "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]
