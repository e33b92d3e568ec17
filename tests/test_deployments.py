"""Every entrypoint named in deployments/prefect.yaml loads, and its parameters fit the flow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

PREFECT_YAML = Path(__file__).resolve().parents[1] / "deployments" / "prefect.yaml"
DEPLOYMENTS = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


def test_there_are_deployments() -> None:
    assert DEPLOYMENTS


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_loads(deployment: dict) -> None:
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    assert flow.name == deployment["entrypoint"].rsplit(":", 1)[1]
    flow.validate_parameters(deployment.get("parameters", {}))
