"""`leadflow deploy` against a real Prefect server started here: the pool and every deployment with its schedule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prefect_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": "",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_UI_ENABLED": "false"}
    env.pop("PREFECT_API_URL")
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                if requests.get(f"{api}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prefect server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
        monkeypatch.setenv("PREFECT_API_URL", api)
        yield api
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_leadflow_deploy_creates_the_pool_and_every_deployment(
    prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadflow.cli import app

    monkeypatch.chdir(REPO)
    started = time.monotonic()
    outcome = CliRunner().invoke(app, ["deploy"])
    assert outcome.exit_code == 0, outcome.output
    assert "prefect worker start --pool leadflow-process" in outcome.output
    assert time.monotonic() - started < 60

    expected = {d["name"]: d for d in yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
                ["deployments"]}
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Explicitly this server: a session's Prefect test harness (other tests) would otherwise win over the env var.
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}), get_client(sync_client=True) as client:
        assert client.read_work_pool("leadflow-process").type == "process"
        deployments = {d.name: d for d in client.read_deployments()}
        assert set(deployments) == set(expected)
        for name, spec in expected.items():
            got = deployments[name]
            assert got.work_pool_name == "leadflow-process"
            got_schedules = [(getattr(s.schedule, "cron", None), getattr(s.schedule, "timezone", None),
                              getattr(s.schedule, "interval", None)) for s in got.schedules]
            want = [(s.get("cron"), s.get("timezone", "UTC"), None) for s in spec.get("schedules", []) if "cron" in s]
            got_crons = [(c, tz, None) for c, tz, _ in got_schedules if c is not None]
            assert got_crons == want
            intervals = [i.total_seconds() for c, _, i in got_schedules if c is None]
            assert intervals == [float(s["interval"]) for s in spec.get("schedules", []) if "interval" in s]
        assert deployments["lead-backfill"].enforce_parameter_schema is True
        for name in ("lead-sync-hourly", "lead-fastlane", "lead-backfill"):
            got = deployments[name]
            assert got.global_concurrency_limit is not None and got.global_concurrency_limit.limit == 1
            assert got.concurrency_options is not None
            assert str(got.concurrency_options.collision_strategy.value) == "ENQUEUE"
    # Again: the pool exists now, and the deployments are updated in place.
    again = CliRunner().invoke(app, ["deploy"])
    assert again.exit_code == 0 and "work pool leadflow-process exists" in again.output
