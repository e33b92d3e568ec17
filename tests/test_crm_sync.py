"""crm_sync end to end against the sandboxes over real HTTP, with a real Prefect test server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leadflow.sandbox.marketo import RunningMarketo, running_marketo
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect


@pytest.fixture
def marketo() -> Iterator[RunningMarketo]:
    with running_marketo(n=120, seed=11) as sandbox:
        yield sandbox


def marketo_config(tmp_path: Path, sandbox: RunningMarketo, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LF_TEST_MARKETO_SECRET", sandbox.client_secret)
    config = tmp_path / "leadflow.yaml"
    config.write_text(
        "systems:\n"
        "  marketo:\n"
        f"    base_url: {sandbox.url}\n"
        f"    client_id: {sandbox.client_id}\n"
        "    client_secret: {env: LF_TEST_MARKETO_SECRET}\n"
    )
    return config


def test_marketo_sync_writes_back_then_converges(
    prefect_api: str, state_home: Path, tmp_path: Path, marketo: RunningMarketo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync

    config = str(marketo_config(tmp_path, marketo, monkeypatch))
    first = crm_sync(config_path=config)
    report = first["systems"]["marketo"]
    assert report["pulled"] == first["rows_in"] > 0
    assert first["rows_in"] == first["rows_out"] + first["rows_quarantined"]
    assert report["written"] > 0 and report["failed"] == 0 and report["stopped"] is None

    store = StateStore.open()
    watermark = store.get_watermark("marketo")
    assert watermark is not None and watermark.isoformat() == report["watermark"].replace("Z", "+00:00")
    # Written back for real: the sandbox now holds the standardized values (e.g. lower-cased emails).
    emails = [lead.get("email") for lead in marketo.instance.leads.values() if lead.get("email")]
    assert emails and all(e == e.strip().lower() for e in emails if "@" in e)
    # The run pulled Marketo's activities and scored engagement with them (demo requests, form fills, visits…).
    events = store.events()
    engaged = events[events["column_name"] == "engagement_score"]["new_value"].astype(float)
    assert (engaged > 0).sum() > len(engaged) / 2
    assert set(report["lifecycle"]) <= {"new", "mql", "sal", "sql", "recycled"}

    second = crm_sync(config_path=config)
    again = second["systems"]["marketo"]
    assert again["written"] == 0  # our own write-back is pulled again (it changed the leads) but needs no write
    assert store.get_watermark("marketo") >= watermark


def test_hubspot_sync_writes_back_then_converges(
    prefect_api: str, state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.hubspot import running_hubspot

    with running_hubspot(n=150, seed=5) as hub:
        monkeypatch.setenv("LF_TEST_HUBSPOT_TOKEN", hub.token)
        config = tmp_path / "leadflow.yaml"
        config.write_text(f"systems:\n  hubspot:\n    base_url: {hub.url}\n    token: {{env: LF_TEST_HUBSPOT_TOKEN}}\n")
        first = crm_sync(config_path=str(config), override_export_guard=True)
        report = first["systems"]["hubspot"]
        assert report["pulled"] == first["rows_in"] >= 150
        assert first["rows_in"] == first["rows_out"] + first["rows_quarantined"]
        assert report["written"] > 0 and report["stopped"] is None
        second = crm_sync(config_path=str(config))
        assert second["systems"]["hubspot"]["written"] == 0

        # A contact that shows up in search late, stamped a minute before the watermark (search indexes trail
        # writes), is still pulled thanks to the look-back overlap, and cleaned.
        watermark = StateStore.open().get_watermark("hubspot")
        assert watermark is not None
        late = hub.portal.add({"email": "  LATE@Example.COM ", "firstname": "late", "lastname": "Comer"},
                              created_ms=int(watermark.timestamp() * 1000) - 60_000,
                              modified_ms=int(watermark.timestamp() * 1000) - 60_000)
        with_lookback = config.read_text()
        config.write_text(with_lookback + "    lookback_seconds: 0\n")
        assert crm_sync(config_path=str(config))["systems"]["hubspot"]["written"] == 0  # missed without it
        config.write_text(with_lookback)
        StateStore.open().set_watermark("hubspot", watermark, "test")  # as before the run that missed it
        third = crm_sync(config_path=str(config))["systems"]["hubspot"]
        assert third["written"] == 1
        assert hub.portal.contact(late)["properties"]["email"] == "late@example.com"


def test_a_pull_only_system_is_processed_but_never_written(
    prefect_api: str, state_home: Path, tmp_path: Path, marketo: RunningMarketo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync

    config = marketo_config(tmp_path, marketo, monkeypatch)
    config.write_text(config.read_text() + "    write_back: false\n")
    before = {k: dict(v) for k, v in marketo.instance.leads.items()}
    report = crm_sync(config_path=str(config))["systems"]["marketo"]
    assert report["pulled"] == 120 and report["written"] == 0 and report["write_back"] is False
    assert {k: dict(v) for k, v in marketo.instance.leads.items()} == before
    assert StateStore.open().get_watermark("marketo") is not None


def test_dry_run_writes_nothing_and_keeps_the_watermark(
    prefect_api: str, state_home: Path, tmp_path: Path, marketo: RunningMarketo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync

    before = {k: dict(v) for k, v in marketo.instance.leads.items()}
    summary = crm_sync(config_path=str(marketo_config(tmp_path, marketo, monkeypatch)), dry_run=True,
                       override_export_guard=True)
    report = summary["systems"]["marketo"]
    assert report["written"] > 0  # would be written
    assert report["changes"]["email"]["count"] > 0
    record_id, old, new = report["changes"]["email"]["examples"][0]
    assert record_id.startswith("mkto-") and old != new and new == new.strip().lower()
    assert {k: dict(v) for k, v in marketo.instance.leads.items()} == before
    assert StateStore.open().get_watermark("marketo") is None


def test_sandbox_and_sync_as_a_user_runs_them(prefect_api: str, tmp_path: Path) -> None:
    """`leadflow sandbox` in one process, `leadflow sync --config …` in another, as the README says."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from .conftest import REPO

    exe = str(Path(sys.executable).with_name("leadflow"))
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "LEADFLOW_HOME": str(tmp_path / "home")}
    env.pop("LEADFLOW_DATABASE_URL", None)
    folder = tmp_path / "sandbox"
    server = subprocess.Popen([exe, "sandbox", "--folder", str(folder), "--leads", "150"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        seen = []
        for line in server.stdout:  # blocks until the sandbox prints its config line (or exits)
            seen.append(line)
            if line.startswith("Config:"):
                break
        config = line.split(":", 1)[1].strip()
        assert Path(config).is_file(), "".join(seen)
        secret = (folder / "marketo.secret").read_text().strip()
        assert secret and secret not in Path(config).read_text()  # the config names the secret file, not the value
        refused = subprocess.run([exe, "sync", "--config", config], cwd=REPO, env=env, capture_output=True,
                                 text=True, timeout=300)
        assert refused.returncode != 0  # an initial load changes every lead: the export guard wants it said
        assert "export guard refused the write" in refused.stderr and "--override-export-guard" in refused.stderr
        proc = subprocess.run([exe, "sync", "--config", config, "--override-export-guard"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "marketo      pulled 150, written back" in proc.stdout
        assert "hubspot      pulled" in proc.stdout
        written = re.search(r"salesforce   pulled 150, written back (\d+)", proc.stdout)
        assert written and 0 < int(written.group(1)) < 150, proc.stdout  # converted leads are never written
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def test_cli_dry_run_shows_the_diff(
    prefect_api: str, state_home: Path, tmp_path: Path, marketo: RunningMarketo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from leadflow.cli import app

    config = marketo_config(tmp_path, marketo, monkeypatch)
    result = CliRunner().invoke(app, ["sync", "--config", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(dry run: nothing written)" in result.output and "would write" in result.output
    assert "email" in result.output and "e.g. mkto-" in result.output and "->" in result.output
