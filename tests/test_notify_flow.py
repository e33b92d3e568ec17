"""Owner notifications in the sync: a `crm_sync` against the Salesforce sandbox tells each owner of the leads it
assigned and wrote (a digest in the first, bulk run; one message per lead after), on a real local Slack-compatible
webhook, with the SLA due time and the record link; a run that assigns nothing new tells nobody."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_intake_processor import new_salesforce_lead
from tests.test_notify import http_receiver

pytestmark = pytest.mark.prefect


def texts(receiver: Any) -> list[str]:
    return [request["json"]["text"] for request in receiver.requests]


def test_a_sync_tells_owners_of_the_leads_it_assigned_once(tmp_path: Path, state_home: Path, prefect_api: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.crm_sync import crm_sync
    from leadflow.sandbox.launch import running_sandboxes

    with http_receiver() as slack, running_sandboxes(tmp_path / "boxes", leads=30, systems=("salesforce",),
                                                     routing=True) as boxes:
        monkeypatch.setenv("LF_TEST_SLACK_WEBHOOK", f"{slack.url}/services/T000/B000/secret")
        config = yaml.safe_load(boxes.config_path.read_text())
        config["notifications"] = {"slack": {"webhook_url": {"env": "LF_TEST_SLACK_WEBHOOK"}},
                                   "batch_threshold": 3}
        boxes.config_path.write_text(yaml.safe_dump(config))

        first = crm_sync(config_path=str(boxes.config_path), override_export_guard=True)
        notices = first["owner_notices"]
        assert notices["slack_sent"] >= 1 and notices["leads_notified"] >= 1
        assert notices["leads_notified"] <= first["systems"]["salesforce"]["written"]
        assert all("SLA" in text or "due" in text.lower() for text in texts(slack))
        told = len(slack.requests)

        again = crm_sync(config_path=str(boxes.config_path))
        assert "owner_notices" not in again and len(slack.requests) == told  # nobody told twice

        lead_id = new_salesforce_lead(boxes, "ada.lovelace@analytical.example", first="Ada", last="Lovelace",
                                      company="Analytical Engines")
        crm_sync(config_path=str(boxes.config_path))
        new = texts(slack)[told:]
        assert len(new) == 1, new
        assert "Lovelace" in new[0] and "Analytical Engines" in new[0]
        assert f"/lightning/r/Lead/{lead_id}/view" in new[0]
