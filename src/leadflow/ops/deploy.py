"""`leadflow deploy`: the work pool and every deployment in deployments/prefect.yaml, against PREFECT_API_URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from leadflow.pipeline.errors import LeadflowError

WORK_POOL: Final[str] = "leadflow-process"
PREFECT_FILE: Final[str] = "deployments/prefect.yaml"


class DeployError(LeadflowError):
    """A prefect command failed while deploying; the message carries its output."""


@dataclass
class DeployResult:
    project_dir: Path
    pool_created: bool
    commands: list[list[str]] = field(default_factory=list)
    output: str = ""

    @property
    def worker_command(self) -> str:
        return f"prefect worker start --pool {WORK_POOL}"


def _prefect() -> str:
    beside = Path(sys.executable).with_name("prefect")
    found = str(beside) if beside.is_file() else shutil.which("prefect")
    if not found:
        raise DeployError("the `prefect` command is not installed in this environment (pip install -e .)")
    return found


def project_dir(start: Path | None = None) -> Path:
    """The repository root: the first folder from `start` (default: the working directory) upwards that holds
    deployments/prefect.yaml and flows/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PREFECT_FILE).is_file() and (folder / "flows").is_dir():
            return folder
    raise DeployError(f"no {PREFECT_FILE} under {here} or its parents: run leadflow deploy from the repository root")


def deploy(root: Path | None = None, *, echo: Callable[[str], None] = print, timeout: float = 600) -> DeployResult:
    """Create the process work pool if missing, then `prefect --no-prompt deploy --all` from the repository root
    with LEADFLOW_PROJECT_DIR set (the deployments' pull step changes into it)."""
    folder = project_dir(root)
    prefect = _prefect()
    env = {**os.environ, "LEADFLOW_PROJECT_DIR": str(folder)}
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    result = DeployResult(folder, pool_created=False)

    def run(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        result.commands.append(args)
        done = subprocess.run([prefect, *args], cwd=folder, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        result.output += done.stdout + done.stderr
        if check and done.returncode != 0:
            raise DeployError(f"`prefect {' '.join(args)}` failed (exit {done.returncode}):\n"
                              f"{(done.stdout + done.stderr).strip()[-3000:]}")
        return done

    if run(["work-pool", "inspect", WORK_POOL], check=False).returncode != 0:
        echo(f"creating work pool {WORK_POOL} (type process)")
        run(["work-pool", "create", WORK_POOL, "--type", "process"])
        result.pool_created = True
    else:
        echo(f"work pool {WORK_POOL} exists")
    echo(f"deploying every deployment in {folder / PREFECT_FILE}")
    run(["--no-prompt", "deploy", "--all", "--prefect-file", PREFECT_FILE])
    return result
