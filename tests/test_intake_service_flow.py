"""The Prefect-served intake (`flows/intake_service.py:intake_service`, deployment `lead-intake`): a real process
runs the flow, serves the endpoints, records a signed web lead in the inbox and settles it through an `intake_batch`
flow run; SIGTERM (what cancelling the flow run sends) stops it cleanly and the flow run is Completed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml

from leadflow.store import StateStore
from tests.test_intake_app import web_body, web_headers
from tests.test_intake_loop import REPO, free_port, healthy, until

pytestmark = pytest.mark.prefect
SECRET = "web-form-hmac-0123456789abcdef"


async def flow_runs(name: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async with get_client() as client:
        runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))
    return [run.state.type.value for run in runs if run.state is not None]


def test_the_prefect_served_intake_records_processes_and_stops_cleanly(
    tmp_path: Path, state_home: Path, prefect_api: str
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp_path / "web.secret").write_text(SECRET)
    (tmp_path / "leadflow.yaml").write_text("{}\n")  # no systems: the web lead has no CRM to be created in
    config = tmp_path / "intake.yaml"
    config.write_text(yaml.safe_dump({"intake": {
        "port": port, "sources": {"web": {"secret": {"file": str(tmp_path / "web.secret")}}},
        "processing": {"run_config": str(tmp_path / "leadflow.yaml"), "batch": {"max_wait_ms": 100}}}}))
    env = {**os.environ, "LEADFLOW_HOME": str(state_home), "PREFECT_API_URL": prefect_api}
    env.pop("LEADFLOW_DATABASE_URL", None)
    log = tmp_path / "service.log"
    code = f"from flows.intake_service import intake_service; intake_service(config_path={str(config)!r})"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=log.open("ab"),
                               stderr=subprocess.STDOUT)
    try:
        until(lambda: healthy(url) or process.poll() is not None, 90, "the served intake to answer")
        assert process.poll() is None, log.read_text()[-3000:]
        body = web_body({"lead_id": "W-1", "email": "ada@analytical.example", "last_name": "Lovelace",
                         "company": "Analytical Engines"})
        answer = requests.post(f"{url}/intake/web", data=body, headers=web_headers(SECRET, body), timeout=10)
        assert answer.status_code == 200 and answer.json()["recorded"] == 1, answer.text
        store = StateStore.open()
        until(lambda: len(store.inbox_notifications(state="failed")), 60, "the batch to settle the web lead")
        failed = store.inbox_notifications(state="failed")
        assert "salesforce is not configured" in failed["error"].iloc[0]  # said why, in the inbox
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert asyncio.run(flow_runs("intake_service")) == ["COMPLETED"], log.read_text()[-3000:]
    assert "COMPLETED" in asyncio.run(flow_runs("intake_batch"))
    assert SECRET not in log.read_text() and json.loads(body)["leads"][0]["email"] not in log.read_text()
