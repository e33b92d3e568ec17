"""Alerts end to end: `leadflow alerts install` against a real `prefect server start`, a data-quality failure in
`lead_sync`, and the notification arriving at a local webhook — plus the config and CLI refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from leadflow.ops.alerts import EMAIL_REFUSAL, AlertsConfig, install_alerts
from leadflow.cli import app
from leadflow.pipeline.errors import ConfigError, DataQualityError, LeadflowError
from leadflow.pipeline.settings import SAMPLE_LEADS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_prefect_server(home: Path, env: Mapping[str, str] | None = None, *, timeout: float = 90) -> Iterator[str]:
    """A real `prefect server start` on a free port with its own PREFECT_HOME; yields its API URL."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    server_env.update({
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        **(env or {}),
    })
    log_path = home / "server.log"
    prefect = Path(sys.executable).with_name("prefect")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env, stdout=log, stderr=subprocess.STDOUT, cwd=home,
        )
        url = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"prefect server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"prefect server not healthy after {timeout}s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.25)
            yield url
        finally:
            _flush_prefect_workers()
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _flush_prefect_workers() -> None:
    """Send the logs and events this process holds and stop the workers; they restart, for the current API URL, on
    next use."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5, at_exit=False)


class Receiver:
    """A local webhook endpoint recording every request (path, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.path, self.rfile.read(length).decode("utf-8", "replace")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, text: str, *, path: str | None = None, timeout: float = 30) -> list[tuple[str, str]]:
        """Requests mentioning `text` (to `path`), as soon as there is one; [] after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [(p, b) for p, b in list(self.requests) if text in b and (path is None or p == path)]
            if hits or time.monotonic() > deadline:
                return hits
            time.sleep(0.1)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prefect_server(tmp_path_factory.mktemp("prefect-home")) as url:
        yield url


@contextmanager
def api(url: str | None) -> Iterator[None]:
    """Talk to the Prefect API at `url` in this block.

    Prefect reads its settings once per process, so an environment change needs a settings context. And its events
    and log workers are process-wide singletons bound to the API URL they started with (the events worker is keyed by
    client type only): drain them on the way in and out, or this block's events would go to the session's test
    harness started by other tests."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _flush_prefect_workers()
    with temporary_settings({PREFECT_API_URL: url}):
        try:
            yield
        finally:
            _flush_prefect_workers()


def bad_dates(tmp_path: Path, rows: int = 40, garbage: int = 30) -> Path:
    """`rows` sample leads, `garbage` of them with an unparseable created_at: the standardize gate fails the batch."""
    frame = pd.read_csv(SAMPLE_LEADS, dtype="string", keep_default_na=False).head(rows).copy()
    frame.loc[frame.index[:garbage], "created_at"] = "not-a-date"
    path = tmp_path / "leads.csv"
    frame.to_csv(path, index=False)
    return path


def test_alerts_reach_a_webhook_end_to_end(prefect_server: str, receiver: Receiver, state_home: Path,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.lead_sync import lead_sync

    secret_hook = f"{receiver.url}/secret-hook?token=s3cr3t-token"
    monkeypatch.setenv("LEADFLOW_TEST_ALERT_HOOK", secret_hook)
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    config = tmp_path / "leadflow.yaml"
    config.write_text(
        "alerts:\n"
        "  notify:\n"
        f"    - webhook: {receiver.url}/hook\n"
        "    - webhook: {env: LEADFLOW_TEST_ALERT_HOOK}\n"
        "      name: ops-hook\n"
    )
    runner = CliRunner()
    with api(prefect_server):
        first = runner.invoke(app, ["alerts", "install", "--config", str(config)])
        assert first.exit_code == 0, first.output
        second = runner.invoke(app, ["alerts", "install", "--config", str(config)])  # idempotent
        assert second.exit_code == 0, second.output
    assert "s3cr3t-token" not in first.output + second.output
    for name in ("leadflow-alerts-1", "ops-hook", "leadflow: leadflow.dq.failed", "leadflow: leadflow.sync.errors",
                 "leadflow: leadflow.sla.breached", "leadflow: leadflow.budget.exhausted"):
        assert name in first.output

    from prefect.client.orchestration import get_client

    with api(prefect_server), get_client(sync_client=True) as client:
        automations = [a for a in client.read_automations() if a.name.startswith("leadflow: ")]
        assert sorted(a.name for a in automations) == sorted(
            f"leadflow: {e}" for e in ("leadflow.dq.failed", "leadflow.sync.errors", "leadflow.sla.breached",
                                       "leadflow.budget.exhausted"))  # re-install updated, did not duplicate
        assert all(len(a.actions) == 2 for a in automations)
        stored = client.read_block_document_by_name("ops-hook", "custom-webhook", include_secrets=False)
        assert "s3cr3t-token" not in json.dumps(stored.data, default=str)

    started = time.monotonic()
    with api(prefect_server), pytest.raises(DataQualityError, match="leads_standardize"):
        lead_sync(input_path=str(bad_dates(tmp_path)), output_path=str(tmp_path / "out.csv"))
    hits = receiver.wait_for("leadflow.dq.failed", path="/hook", timeout=30)
    assert hits, f"no alert within 30 s; received: {receiver.requests}"
    body = json.loads(hits[0][1])
    assert body["source"] == "leadflow"
    assert "leads_standardize" in body["subject"]
    assert "30 of 40 rows quarantined" in body["text"] and "share 0.75" in body["text"]
    secret_hits = receiver.wait_for("leadflow.dq.failed", path="/secret-hook?token=s3cr3t-token", timeout=10)
    assert secret_hits, f"the secret-URL webhook got nothing; received: {receiver.requests}"
    print(f"alert arrived {time.monotonic() - started:.1f}s after the flow started")


def test_emit_outside_a_prefect_run_is_a_no_op() -> None:
    from tasks.events import emit_leadflow_event

    assert emit_leadflow_event("leadflow.dq.failed", {"rows_in": 1}, "r1") is None


def test_budget_stops_are_told_apart() -> None:
    from leadflow.connectors.base import BudgetExhausted, SourceStopped
    from tasks.events import emit_budget_exhausted, is_budget_stop

    assert is_budget_stop("REQUEST_LIMIT_EXCEEDED: the org's daily API limit is spent")
    assert is_budget_stop("daily API quota reached (607: Max rate limit)")
    assert not is_budget_stop("still throttled after 5 attempts (606)")
    # Outside a run both are no-ops; the point is they do not raise on either kind.
    assert emit_budget_exhausted(BudgetExhausted("marketo", "API budget of 5 calls for this run is spent"), "r") is None
    assert emit_budget_exhausted(SourceStopped("hubspot", "forbidden"), "r") is None


def test_config_refuses_unknown_kinds_events_and_email(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        AlertsConfig.model_validate({"notify": [{"webhok": "http://x"}]})
    with pytest.raises(ValidationError):
        AlertsConfig.model_validate({"notify": [{"webhook": "http://x/h"}], "events": ["leadflow.oops"]})
    with pytest.raises(ValidationError):
        AlertsConfig.model_validate({"notify": [{"slack_webhook": "https://hooks.slack.com/services/T/B/X"}]})
    config = AlertsConfig.model_validate({"notify": [{"email": ["ops@acme.com"], "smtp_block": "smtp"}]})
    with api("http://127.0.0.1:9/api"), pytest.raises(ConfigError) as info:
        install_alerts(config)
    assert EMAIL_REFUSAL in str(info.value) and info.value.yaml_path == "alerts.notify[0]"


def test_install_needs_a_prefect_server(tmp_path: Path) -> None:
    config = AlertsConfig.model_validate({"notify": [{"webhook": "http://127.0.0.1:9/hook"}]})
    with api(None), pytest.raises(LeadflowError, match="PREFECT_API_URL is not set"):
        install_alerts(config)
    with api(f"http://127.0.0.1:{free_port()}/api"), pytest.raises(LeadflowError, match="cannot reach"):
        install_alerts(config)
    path = tmp_path / "leadflow.yaml"
    path.write_text("quality: {max_quarantine_share: 0.5}\n")
    result = CliRunner().invoke(app, ["alerts", "install", "--config", str(path)])
    assert result.exit_code == 2 and "no `alerts:` section" in result.output


def test_missing_secret_names_the_yaml_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEADFLOW_NO_SUCH_HOOK", raising=False)
    config = AlertsConfig.model_validate({"notify": [{"slack_webhook": {"env": "LEADFLOW_NO_SUCH_HOOK"}}]})
    with api("http://127.0.0.1:9/api"), pytest.raises(ConfigError) as info:
        install_alerts(config)
    assert info.value.yaml_path == "alerts.notify[0].slack_webhook"


def test_cli_help_lists_alerts() -> None:
    result = CliRunner().invoke(app, ["alerts", "--help"])
    assert result.exit_code == 0 and "install" in result.output


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every event leadflow emits in this test (captured instead of sent)."""
    import prefect.events

    captured: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kwargs: captured.append(kwargs) or kwargs)
    return captured


@pytest.mark.prefect
def test_a_spent_api_budget_raises_its_event(prefect_api: str, state_home: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, emitted: list[dict[str, Any]]) -> None:
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.marketo import running_marketo

    with running_marketo(n=60, seed=3) as sandbox:
        monkeypatch.setenv("LF_TEST_MARKETO_SECRET", sandbox.client_secret)
        config = tmp_path / "leadflow.yaml"
        config.write_text(
            "systems:\n  marketo:\n"
            f"    base_url: {sandbox.url}\n    client_id: {sandbox.client_id}\n"
            "    client_secret: {env: LF_TEST_MARKETO_SECRET}\n    max_calls_per_run: 2\n"
        )
        summary = crm_sync(config_path=str(config))
    assert "budget" in summary["systems"]["marketo"]["stopped"]
    budget = [e for e in emitted if e["event"] == "leadflow.budget.exhausted"]
    assert len(budget) == 1
    assert budget[0]["resource"] == {"prefect.resource.id": f"leadflow.run.{summary['run_id']}",
                                     "prefect.resource.name": "leadflow"}
    payload = budget[0]["payload"]
    assert payload["system"] == "marketo" and payload["calls_used"] == 2 and "2 calls" in payload["reason"]
    assert sandbox.client_secret not in json.dumps(emitted, default=str)


@pytest.mark.prefect
def test_sync_errors_and_sla_events_carry_counts(prefect_api: str, emitted: list[dict[str, Any]]) -> None:
    from prefect import flow

    from tasks.events import emit_sla_breached, emit_sync_errors

    @flow
    def report() -> None:
        emit_sync_errors("salesforce", {"failed": 0, "dead_letters": {"pending": 3, "permanent": 0}}, "r1")  # quiet
        emit_sync_errors("salesforce", {"failed": 2, "written": 5, "dead_letters": {"pending": 2, "permanent": 1}},
                         "r1")
        emit_sla_breached({"breaches": 4, "max_minutes_late": 30.0}, "r2")

    report()
    assert [(e["event"], e["payload"]) for e in emitted if e["event"].startswith("leadflow.")] == [
        ("leadflow.sync.errors", {"system": "salesforce", "failed": 2, "written": 5,
                                  "dead_letters": {"pending": 2, "permanent": 1}}),
        ("leadflow.sla.breached", {"breaches": 4, "max_minutes_late": 30.0}),
    ]


def test_slack_url_is_resolved_into_a_secret_field(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.blocks.notifications import SlackWebhook

    from leadflow.ops.alerts import build_block

    hook = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    monkeypatch.setenv("LF_TEST_SLACK", hook)
    config = AlertsConfig.model_validate({"notify": [{"slack_webhook": {"env": "LF_TEST_SLACK"}}]})
    block = build_block(config.notify[0], "leadflow-alerts-1", origin="leadflow.yaml", yaml_path="alerts.notify[0]")
    assert isinstance(block, SlackWebhook) and block.url.get_secret_value() == hook
    assert "XXXXSECRET" not in repr(block) and "XXXXSECRET" not in repr(config)
