"""The leadflow project a command runs in: found like git or dbt find theirs.

A project is a folder holding the Prefect entrypoints (`flows/lead_sync.py`, `tasks/`); its embedded state lives in
`<project>/.leadflow/` and its suites in `<project>/expectations/`. It is, in order: `--project-dir` (which sets
`LEADFLOW_PROJECT`), the `LEADFLOW_PROJECT` environment variable (`LEADFLOW_PROJECT_DIR`, which the deployments set,
works too), else the working folder or the nearest parent that is a project. Outside any project, commands that run
flows say so in one line instead of failing on a missing file, and state is not created in a random folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from leadflow.pipeline.errors import LeadflowError

PROJECT_ENV: Final[str] = "LEADFLOW_PROJECT"
DEPLOYED_PROJECT_ENV: Final[str] = "LEADFLOW_PROJECT_DIR"
MARKER: Final[str] = "flows/lead_sync.py"
"""What makes a folder a leadflow project: its flow entrypoints (with `tasks/` beside `flows/`)."""


class ProjectNotFound(LeadflowError):
    """No leadflow project here (or where --project-dir / LEADFLOW_PROJECT point)."""


def is_project(folder: Path) -> bool:
    return (folder / MARKER).is_file() and (folder / "tasks").is_dir()


def find_project(start: Path | None = None) -> Path | None:
    """The project folder (absolute), or None. An explicit LEADFLOW_PROJECT that is not a project raises."""
    for variable in (PROJECT_ENV, DEPLOYED_PROJECT_ENV):
        named = os.environ.get(variable)
        if named:
            folder = Path(named).expanduser().resolve()
            if not is_project(folder):
                raise ProjectNotFound(f"{variable}={named} is not a leadflow project (no {MARKER} and tasks/ there)")
            return folder
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_project(folder):
            return folder
    return None


def require_project(start: Path | None = None) -> Path:
    """The project folder, or ProjectNotFound saying how to point at one."""
    found = find_project(start)
    if found is None:
        here = (start or Path.cwd()).resolve()
        raise ProjectNotFound(
            f"not inside a leadflow project: no {MARKER} in {here} or any parent; run from your leadflow checkout, "
            f"pass --project-dir PATH or set {PROJECT_ENV}"
        )
    return found


def project_home() -> Path:
    """Where embedded state lives by default: `<project>/.leadflow`, or `./.leadflow` outside a project."""
    try:
        found = find_project()
    except ProjectNotFound:
        found = None
    return found / ".leadflow" if found is not None else Path(".leadflow")
