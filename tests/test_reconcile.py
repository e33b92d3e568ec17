"""map_crm_reconcile against the Salesforce and Marketo sandboxes, with known records removed and added."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from leadflow.sandbox.launch import running_sandboxes

pytestmark = pytest.mark.prefect


def test_reconcile_counts_leads_on_one_side_only(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    from flows.reconcile import map_crm_reconcile, normalize_emails

    with running_sandboxes(tmp_path / "boxes", leads=150, systems=("salesforce", "marketo")) as boxes:
        sf, mkto = boxes.handles["salesforce"], boxes.handles["marketo"].instance
        config = str(boxes.config_path)
        crm = set(normalize_emails(pd.concat([
            pd.Series([r["Email"] for r in sf.org.objects[o].values()], dtype="string") for o in ("Lead", "Contact")
        ])).dropna())
        mapped = set(normalize_emails(pd.Series([r.get("email") for r in mkto.leads.values()],
                                                dtype="string")).dropna())
        before = map_crm_reconcile(config_path=config)
        assert before["map_only"] == len(mapped - crm) and before["crm_only"] == len(crm - mapped)
        assert before["in_both"] == len(crm & mapped) > 100

        # Three leads the CRM loses (e-mails only on Leads there, and in the MAP) ...
        contacts = {e for e in normalize_emails(pd.Series(
            [r["Email"] for r in sf.org.objects["Contact"].values()], dtype="string")).dropna()}
        by_email: dict[str, list[str]] = {}
        for rid, row in sf.org.objects["Lead"].items():
            email = normalize_emails(pd.Series([row["Email"]], dtype="string")).iloc[0]
            if pd.notna(email):
                by_email.setdefault(email, []).append(rid)
        gone = [e for e, ids in sorted(by_email.items()) if len(ids) == 1 and e in mapped and e not in contacts][:3]
        with sf.org.lock:
            for email in gone:
                del sf.org.objects["Lead"][by_email[email][0]]
        # ... two new MAP leads that never reached the CRM, and one CRM lead the MAP never saw.
        now = datetime.now(UTC)
        for k in range(2):
            lead_id = max(mkto.leads) + 7
            mkto.leads[lead_id] = {"id": lead_id, "email": f"Only.In.Marketo{k}@Example-Map.com ",
                                   "firstName": "Map", "lastName": f"Only {k}", "company": "Map Only Inc",
                                   "unsubscribed": False, "createdAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "updatedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
            mkto.add_activity(lead_id, 12, now, str(lead_id), {"Source Type": "Web form fill"})
        sf.org.put("Lead", {"LastName": "Only", "Company": "CRM Only Ltd", "Email": "crm.only@example-crm.com"})

        after = map_crm_reconcile(config_path=config)
        assert after["map_only"] == before["map_only"] + 3 + 2
        assert after["crm_only"] == before["crm_only"] + 1
        assert after["in_both"] == before["in_both"] - 3
        shown = {e["email"] for e in after["map_only_examples"]}
        assert "only.in.marketo0@example-map.com" in shown or len(shown) == 10
        assert any(e["email"] == "crm.only@example-crm.com" for e in after["crm_only_examples"]) or \
            len(after["crm_only_examples"]) == 10
