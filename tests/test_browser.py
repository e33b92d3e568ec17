"""A person's view: the `lead_backfill` deployment's run form in a real browser, then a run of it that completes.

A real `prefect server start` (its own PREFECT_HOME and port), a `process` work pool, a deployment of
`flows/lead_backfill.py:lead_backfill` from this repository, headless Debian Chromium through playwright on
`/deployments/deployment/<id>/run`, and a run triggered through the API that a `prefect worker start --run-once`
subprocess executes against a Salesforce sandbox. The screenshot of the form lands in tests/artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.prefect

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ENTRYPOINT = "flows/lead_backfill.py:lead_backfill"
POOL = "leadflow-browser-test"
FORM_FIELDS = ("start", "end", "sources", "dry_run", "reprocess", "chunk_hours")

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_env(**extra: str) -> dict[str, str]:
    """This process's environment with telemetry off and no Prefect settings leaking in from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` on a free port with its own home; yields the API URL once /api/health answers."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=quiet_env(PREFECT_HOME=str(home), PREFECT_UI_API_URL=api, PREFECT_API_URL=api),
        stdout=log, stderr=subprocess.STDOUT, cwd=home,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"prefect server exited ({server.returncode}):\n{(home / 'server.log').read_text()}")
            try:
                if requests.get(f"{api}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy after 60 s:\n{(home / 'server.log').read_text()}")
            time.sleep(0.3)
        yield api
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def on_server(prefect_server: str) -> Iterator[str]:
    """Point this process's Prefect client at the test's own server (over any session harness)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
        yield prefect_server


def deploy_backfill() -> str:
    """A `process` work pool and a deployment of lead_backfill from this checkout; returns the deployment id."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
    deployment_id = flow.from_source(source=str(REPO), entrypoint=ENTRYPOINT).deploy(
        name="lead-backfill", work_pool_name=POOL, enforce_parameter_schema=True, build=False, push=False,
        print_next_steps=False, ignore_warnings=True,
    )
    return str(deployment_id)


def open_run_form(api: str, deployment_id: str, screenshot: Path) -> dict[str, Any]:
    """What the run form shows once its parameters rendered (text lines and widget counts); saves a screenshot."""
    from playwright.sync_api import sync_playwright

    ui = api.removesuffix("/api")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(f"{ui}/deployments/deployment/{deployment_id}/run", wait_until="domcontentloaded")
            # The parameter form renders from the deployment's schema once the SPA has fetched it.
            page.get_by_text("chunk_hours", exact=False).first.wait_for(state="visible", timeout=30_000)
            page.wait_for_load_state("networkidle", timeout=15_000)
            seen = {
                "lines": [line.strip() for line in page.inner_text("body").splitlines() if line.strip()],
                "date_pickers": page.get_by_text("Select date and time", exact=True).count(),
                "toggles": page.locator("[role=switch]").count(),
                "numbers": page.locator("input[type=number]").evaluate_all("inputs => inputs.map(i => i.value)"),
            }
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


def test_backfill_form_renders_and_a_run_completes(on_server: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from leadflow.sandbox.launch import running_sandboxes
    from leadflow.sandbox.salesforce import SEED_BASE, sf_datetime

    deployment_id = deploy_backfill()

    # What a person sees: every typed parameter as a field of the run form.
    screenshot = ARTIFACTS / "backfill-form.png"
    screenshot.unlink(missing_ok=True)
    seen = open_run_form(on_server, deployment_id, screenshot)
    lines = seen["lines"]
    assert not any("Can't connect to Server API" in line for line in lines), lines
    labels = {line.removesuffix(" (Optional)") for line in lines}
    assert set(FORM_FIELDS) <= labels, f"fields missing from the run form: {set(FORM_FIELDS) - labels}\n{lines}"
    assert seen["date_pickers"] == 2, seen  # start and end: date-time pickers with a time zone
    assert seen["toggles"] >= 3, seen  # dry_run, reprocess, parallel
    assert "24" in seen["numbers"], seen  # chunk_hours, with its default
    assert "salesforce" in lines[lines.index("sources (Optional)"):], lines  # the multi-select's default choice
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000

    # What the API does with the same form: a run over one minute of sandbox stamps, executed by a worker.
    home = tmp_path / ".leadflow"
    with running_sandboxes(tmp_path / "sandbox", leads=300, systems=("salesforce",)) as boxes:
        parameters = {
            # Seeded leads share a stamp per run of 250: minute 1 holds the last 50 of 300.
            "start": SEED_BASE + timedelta(minutes=1), "end": SEED_BASE + timedelta(minutes=2),
            "sources": ["salesforce"], "config_path": str(boxes.config_path), "chunk_hours": 1,
        }
        sandbox = boxes.handles["salesforce"]
        window = {record_id for record_id, lead in sandbox.org.objects["Lead"].items()
                  if lead["SystemModstamp"].startswith(sf_datetime(parameters["start"])[:16])}
        assert len(window) == 50
        run = run_deployment(deployment_id, parameters=parameters, timeout=0)
        worker = subprocess.run(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--run-once", "--type", "process"],
            env=quiet_env(PREFECT_API_URL=on_server, LEADFLOW_HOME=str(home)), cwd=REPO,
            capture_output=True, text=True, timeout=80,
        )
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + 20
            while True:
                state = client.read_flow_run(run.id).state
                if (state and state.is_final()) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        written = {record_id for obj, record_id, _ in sandbox.org.field_writes if obj == "Lead"}
    output = worker.stdout[-4000:] + worker.stderr[-4000:]
    assert state is not None and state.is_completed(), f"{state!r}\n{output}"
    assert written, "the backfill run completed but wrote nothing back to the sandbox"
    assert written <= window, f"wrote leads outside the backfill range: {sorted(written - window)[:5]}"
