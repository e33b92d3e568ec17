"""The wheel ships only the `leadflow` package — never top-level `flows`/`tasks` — with its data and migrations."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO


def test_wheel_ships_only_the_core(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = tmp_path.glob("leadflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"leadflow", wheel.name.split("-py")[0] + ".dist-info"}
    for needed in (
        "leadflow/data/sample_leads.csv",
        "leadflow/reference/consent_policy.yaml",
        "leadflow/store/migrations/env.py",
        "leadflow/store/migrations/versions/0001_initial.py",
    ):
        assert needed in names
    entry_points = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-py')[0]}.dist-info/entry_points.txt").decode()
    assert "leadflow = leadflow.cli:app" in entry_points
