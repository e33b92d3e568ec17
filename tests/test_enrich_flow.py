"""Enrichment inside the lead_sync flow: accounts file, the HTTPS provider emulator with faults, cache, audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leadflow.sandbox.enrichment import RunningEnrichment, running_enrichment
from leadflow.store import StateStore

pytestmark = pytest.mark.prefect

LEADS = pd.DataFrame(
    [
        {"lead_id": "L1", "email": "ann@acme.com", "company": "Acme", "employees": ""},  # the account
        {"lead_id": "L2", "email": "bo@hooli.com", "company": "Hooli"},  # provider
        {"lead_id": "L3", "email": "cy@slowcorp.com", "company": "Slowcorp"},  # provider times out
        {"lead_id": "L4", "email": "di@gmail.com", "company": "Nobody Ltd"},  # free mail, no website: nothing to ask
        {"lead_id": "L5", "email": "ed@initech.com", "company": "Initech", "employees": "35"},  # a rep typed 35
        {"lead_id": "L6", "email": "fay@acme.com", "company": "Acme"},  # same account, no second look-up
    ]
)
ACCOUNTS = pd.DataFrame(
    [{"account_id": "001ACME", "name": "Acme Inc.", "website": "www.acme.com", "owner_id": "005REP",
      "employees": "1200", "annual_revenue": "250000000", "industry": "Software"}]
)


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEnrichment]:
    with running_enrichment(tmp_path_factory.mktemp("provider"), seed=11, known_share=1.0) as running:
        yield running


def setup(tmp_path: Path, provider: RunningEnrichment) -> tuple[Path, Path]:
    LEADS.to_csv(tmp_path / "leads.csv", index=False)
    ACCOUNTS.to_csv(tmp_path / "accounts.csv", index=False)
    (tmp_path / "provider.secret").write_text(provider.api_key + "\n", encoding="utf-8")
    config = {
        "enrichment": {
            "accounts": "accounts.csv",
            "provider": {
                "base_url": provider.url, "api_key": {"file": str(tmp_path / "provider.secret")},
                "ca_bundle": str(provider.cert_path), "timeout_seconds": 0.5, "max_retries": 0,
            },
        }
    }
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path / "leads.csv", path


def run(leads: Path, config: Path, out: Path) -> dict:
    from flows.lead_sync import lead_sync

    return lead_sync(input_path=str(leads), output_path=str(out), config_path=str(config))


def test_enrichment_in_the_flow(prefect_api: str, state_home: Path, tmp_path: Path,
                                provider: RunningEnrichment) -> None:
    leads, config = setup(tmp_path, provider)
    provider.faults.inject(r"domain=slowcorp\.com", "delay", seconds=2.0)
    calls = provider.calls
    out = tmp_path / "out.csv"
    summary = run(leads, config, out)

    assert summary["rows_in"] == len(LEADS) == summary["rows_out"] + summary["rows_quarantined"]
    assert summary["rows_quarantined"] == 0  # a provider failure never costs a lead
    frame = pd.read_csv(out, dtype="string").set_index("lead_id")
    # Acme: the account, no provider call; hooli, slowcorp and initech (revenue and industry unknown) are asked once.
    assert provider.calls - calls == 3
    assert frame.loc["L1", "account_id"] == "001ACME" and frame.loc["L6", "account_id"] == "001ACME"
    assert frame.loc["L1", "account_owner_id"] == "005REP"
    assert (frame.loc["L1", "employees"], frame.loc["L1", "segment"]) == ("1200", "enterprise")
    assert frame.loc["L1", "enrichment_source"] == "employees=account;annual_revenue=account;industry=account"
    truth = provider.truth("hooli.com")
    assert truth is not None and frame.loc["L2", "employees"] == str(truth["employees"])
    assert frame.loc["L2", "enrichment_source"] == "employees=provider;annual_revenue=provider;industry=provider"
    assert frame.loc["L3", "enrichment_note"] == "provider_error: timeout"
    assert pd.isna(frame.loc["L3", "employees"])
    assert frame.loc["L4", "enrichment_note"] == "no_company_domain"
    assert frame.loc["L5", "employees"] == "35"  # the rep's value stands
    assert frame.loc["L5", "enrichment_source"].startswith("employees=crm;annual_revenue=provider")

    events = StateStore.open().events()
    enrich = events[events["stage"] == "enrich"]
    assert {"account_id", "employees", "enrichment_source", "segment"} <= set(enrich["column_name"])
    hooli = enrich[(enrich["lead_key"] == "file:L2") & (enrich["column_name"] == "employees")]
    assert hooli["new_value"].tolist() == [str(truth["employees"])]

    # Second run: hooli and initech come from the cache; the timed-out domain is asked again (errors are not cached).
    calls = provider.calls
    run(leads, config, tmp_path / "again.csv")
    assert provider.calls - calls == 1
    again = pd.read_csv(tmp_path / "again.csv", dtype="string").set_index("lead_id")
    assert again.loc["L3", "employees"] == str(provider.truth("slowcorp.com")["employees"])
    assert again.loc["L2", "employees"] == frame.loc["L2", "employees"]


def test_budget_exhausted_leaves_leads_unenriched_with_the_reason(
    prefect_api: str, state_home: Path, tmp_path: Path, provider: RunningEnrichment
) -> None:
    leads, config = setup(tmp_path, provider)
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["enrichment"]["provider"]["max_calls_per_run"] = 1
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    calls = provider.calls
    summary = run(leads, config, tmp_path / "out.csv")
    assert provider.calls - calls == 1
    assert summary["rows_quarantined"] == 0
    frame = pd.read_csv(tmp_path / "out.csv", dtype="string").set_index("lead_id")
    notes = frame.loc[["L2", "L3", "L5"], "enrichment_note"].fillna("").tolist()
    assert notes.count("provider_error: budget_exhausted") == 2
