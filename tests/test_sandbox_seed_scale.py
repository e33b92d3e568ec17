"""Seeding big Salesforce sandbox orgs: asked-for sizes, unchanged defaults, and seeding time that grows with the
org, not faster (the full 200k/50k/400k measurement is in the sandbox's notes, not a test)."""

from __future__ import annotations

import time

from leadflow.sandbox.salesforce_org import Org
from leadflow.sandbox.salesforce_seed import seed_org


def _seeded(leads: int, **sizes: int) -> tuple[Org, float]:
    start = time.process_time()
    org = seed_org(Org(), leads=leads, seed=3, **sizes).fill_defaults()
    return org, time.process_time() - start


def test_defaults_are_a_tenth_and_a_quarter_of_the_leads_record_for_record() -> None:
    default, _ = _seeded(1000)
    explicit, _ = _seeded(1000, accounts=100, contacts=250)
    for obj in ("Lead", "Account", "Contact", "LeadHistory", "User"):
        assert default.objects[obj] == explicit.objects[obj], obj
    assert (len(default.objects["Account"]), len(default.objects["Contact"])) == (100, 250)
    assert default.counters == explicit.counters


def test_a_big_org_seeds_to_the_asked_sizes_in_reasonable_time() -> None:
    small, small_cpu = _seeded(2000, accounts=500, contacts=4000)
    org, cpu = _seeded(20_000, accounts=5000, contacts=40_000)
    assert {o: len(org.objects[o]) for o in ("Lead", "Account", "Contact")} == {
        "Lead": 20_000, "Account": 5000, "Contact": 40_000}
    assert org.counters["Contact"] == 40_000 and org.counters["Account"] == 5000
    # Linear, not worse: ten times the records in well under twenty times the CPU (the small org pays the fixed
    # costs, so this is generous), and a few seconds in all (about 1.5 s on a laptop core).
    assert cpu < 20 * max(small_cpu, 0.05) and cpu < 15
    accounts = set(org.objects["Account"])
    assert all(c["AccountId"] in accounts for c in org.objects["Contact"].values())
    assert all(r["IsDeleted"] is False for o in ("Lead", "Account", "Contact") for r in org.objects[o].values())
    newest = max(r["SystemModstamp"] for r in org.objects["Contact"].values())
    window = f"SELECT Id FROM Contact WHERE SystemModstamp >= {newest[:19]}Z ORDER BY SystemModstamp, Id"
    rows = org.run_query(window)[1]
    assert len(rows) == 250  # the last run of equal stamps, not the 40,000


def test_more_accounts_and_contacts_than_leads() -> None:
    org, _ = _seeded(50, accounts=80, contacts=300)
    assert (len(org.objects["Account"]), len(org.objects["Contact"])) == (80, 300)
    names = [a["Name"] for a in org.objects["Account"].values()]
    assert all(names) and len(set(names)) > 50  # the extra accounts are other generated companies
