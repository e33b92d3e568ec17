"""The whole push loop, end to end: the sandboxes push (Salesforce Outbound Messages, HubSpot webhooks) to a real
`leadflow intake serve` process, which records and processes them; the process is killed (exit 137, nothing cleaned
up: a kill -9) right after its first batch wrote back and before it completed its notifications; a restart replays
the stale claims. Then: no notification lost (all done), no lead routed twice (one owner assignment each in the
audit trail), every owner written back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from leadflow.store import StateStore
from tests.test_intake_processor import new_salesforce_lead, owner_events

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.prefect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it is truthy (a state to reach, not a delay to wait out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def serve(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "leadflow.cli", "intake", "serve", "--config", str(config)],
                            cwd=REPO, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_kill_9_mid_batch_then_restart_loses_nothing_and_routes_nothing_twice(
    tmp_path: Path, state_home: Path, prefect_api: str
) -> None:
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.launch import push_targets, running_sandboxes

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path / "boxes"
    targets = push_targets(folder, {"salesforce": f"{url}/intake/salesforce", "hubspot": f"{url}/intake/hubspot"})
    with running_sandboxes(folder, leads=30, systems=("salesforce", "hubspot"), routing=True) as boxes:
        crm_sync(config_path=str(boxes.config_path), override_export_guard=True)
        crm_sync(config_path=str(boxes.config_path))
        from leadflow.sandbox.launch import pushing

        with pushing(boxes, targets, time_scale=0.001) as outboxes:
            org_id = outboxes["salesforce"].fmt.org_id
            config = tmp_path / "intake.yaml"
            config.write_text(yaml.safe_dump({"intake": {
                "port": port,
                "sources": {"salesforce": {"organization_ids": [org_id[:15]]},
                            "hubspot": {"client_secret": {"file": str(folder / "hubspot-push.secret")}}},
                "processing": {"run_config": str(boxes.config_path), "claim_timeout_seconds": 3,
                               "wake_seconds": 0.5, "batch": {"max_notifications": 50, "max_wait_ms": 300}},
            }}))
            env = {**os.environ, "LEADFLOW_HOME": str(state_home), "PREFECT_API_URL": prefect_api,
                   "LEADFLOW_INTAKE_TEST_EXIT": "after_write", "LEADFLOW_PROJECT_DIR": str(REPO)}
            env.pop("LEADFLOW_DATABASE_URL", None)
            log = tmp_path / "intake.log"
            first = serve(config, env, log)
            try:
                until(lambda: healthy(url) or first.poll() is not None, 60, "the intake service to answer")
                sf_leads = [new_salesforce_lead(boxes, f"{first[0]}.{last}@{company.split()[0]}.com".lower(),
                                                first=first, last=last, company=company)
                            for first, last, company in PEOPLE]
                hubspot = boxes.handles["hubspot"]
                hs_contacts = [requests.post(f"{hubspot.url}/crm/v3/objects/contacts", headers={
                    "Authorization": f"Bearer {hubspot.token}"}, json={"properties": {
                        "email": f"{first}@{company.split()[0]}.org".lower(), "firstname": first, "lastname": last,
                        "company": company, "country": "United States"}}).json()["id"]
                    for first, last, company in [("Edsger", "Dijkstra", "Shortest Paths"),
                                                 ("Barbara", "Liskov", "Substitution Works")]]
                # Killed after its first batch wrote back, before it marked the notifications done.
                assert first.wait(90) == 137, log.read_text()[-3000:]
            finally:
                if first.poll() is None:
                    first.kill()
            store = StateStore.open()
            assert store.inbox_counts()["claimed"] >= 1  # the killed batch's claims, left behind
            env.pop("LEADFLOW_INTAKE_TEST_EXIT")
            second = serve(config, env, log)
            try:
                org = boxes.handles["salesforce"].org

                def settled() -> bool:
                    counts = store.inbox_counts()
                    owners = all(org.objects["Lead"][lead].get("OwnerId") in reps(boxes) for lead in sf_leads)
                    done = set(store.inbox_notifications(state="done")["record_id"])
                    return (owners and counts["pending"] == counts["claimed"] == 0
                            and set(hs_contacts) | set(sf_leads) <= done)

                until(settled, 60, f"the replay to settle the inbox: {store.inbox_counts()}")
            finally:
                second.terminate()
                second.wait(30)
    counts = store.inbox_counts()
    assert counts["failed"] == 0 and counts["pending"] == counts["claimed"] == 0  # 0 notifications lost
    recorded = store.inbox_notifications()
    assert set(sf_leads) <= set(recorded["record_id"]) and set(hs_contacts) <= set(recorded["record_id"])
    assert (recorded["attempts"] >= 2).any()  # the replay happened
    for key in [f"salesforce:{lead}" for lead in sf_leads]:
        assert len(owner_events(store, key)) == 1, key  # 0 leads routed twice
        assert len(store.assignments([key])) == 1
    for key in [f"hubspot:{contact}" for contact in hs_contacts]:
        assert len(store.assignments([key])) == 1
        assert len(owner_events(store, key)) == 1, key


PEOPLE = [("Ada", "Lovelace", "Analytical Engines"), ("Grace", "Hopper", "Cobol Systems"),
          ("Alan", "Turing", "Bletchley Computing")]


def reps(boxes: Any) -> set[str]:
    """The sandbox org's reps routing hands leads to (active users but the default owner and integration user)."""
    from leadflow.sandbox.launch import sandbox_unassigned_owners

    org = boxes.handles["salesforce"].org
    return {uid for uid, user in org.objects["User"].items() if user.get("IsActive")} - set(
        sandbox_unassigned_owners(org))
