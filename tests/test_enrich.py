"""The enrich stage: account match, duplicates, firmographics by source precedence, segment, notes, address flags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline.config import load_rules
from leadflow.identity.enrichment import EnrichmentConfig, Reference, SegmentBand
from leadflow.pipeline.errors import ConfigError, PipelineOrderError
from leadflow.pipeline.schema import conform
from leadflow.stages import ENRICH, pipeline_from_names
from leadflow.stages.enrich import domains_to_look_up

ACCOUNTS = pd.DataFrame(
    {
        "account_id": ["001A", "001B"],
        "name": ["Acme Corp", "Globex GmbH"],
        "website": ["https://www.acme.com", "globex.de"],
        "owner_id": ["005OWNER1", "005OWNER2"],
        "employees": pd.array([250, None], dtype="Int64"),
        "annual_revenue": pd.array([40_000_000.0, None], dtype="Float64"),
        "industry": pd.array(["Software", None], dtype="string"),
    }
)
FILE = pd.DataFrame(
    {
        "domain": ["initech.com", "globex.de"],
        "employees": pd.array([12, 4000], dtype="Int64"),
        "annual_revenue": pd.array([1_500_000.0, None], dtype="Float64"),
        "industry": pd.array(["Consulting", "Manufacturing"], dtype="string"),
    }
)


def leads(*rows: dict[str, object]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows)).astype("string")
    if "email" in frame:
        frame["email_domain"] = frame["email"].str.split("@").str[1]
    frame = conform(frame)
    frame["is_free_email"] = frame["email_domain"].isin(["gmail.com", "yahoo.com"]).astype("boolean")
    return frame


def rules(reference: Reference | None = None, **config: object):  # type: ignore[no-untyped-def]
    base = load_rules()
    return replace(base, enrichment=EnrichmentConfig(**config), reference=reference or Reference())


def test_account_firmographics_and_segment() -> None:
    frame = leads({"lead_id": "1", "email": "ann@acme.com", "company": "Acme"})
    out = ENRICH.apply(frame, rules(Reference(accounts=ACCOUNTS)))
    row = out.iloc[0]
    assert (row["account_id"], row["account_owner_id"], row["account_match_method"]) == ("001A", "005OWNER1", "domain")
    assert row["account_match_confidence"] == 1.0
    assert (row["employees"], row["annual_revenue"], row["industry"]) == (250, 40_000_000.0, "Software")
    assert row["segment"] == "mid_market"
    assert row["enrichment_source"] == "employees=account;annual_revenue=account;industry=account"
    assert pd.isna(row["enrichment_note"])


def test_values_fall_through_account_then_file_per_field() -> None:
    # Globex's account has no firmographics: employees and industry come from the reference file, revenue nowhere.
    frame = leads({"lead_id": "1", "email": "bo@globex.de"})
    out = ENRICH.apply(frame, rules(Reference(accounts=ACCOUNTS, firmographics=FILE)))
    row = out.iloc[0]
    assert row["account_id"] == "001B"
    assert (row["employees"], row["industry"]) == (4000, "Manufacturing")
    assert pd.isna(row["annual_revenue"])
    assert row["enrichment_source"] == "employees=reference_file;industry=reference_file"
    assert row["segment"] == "enterprise"
    assert row["enrichment_note"] == "no_source"


@pytest.mark.parametrize(
    ("overwrite", "employees", "source"),
    [(False, 7, "employees=crm"), (True, 250, "employees=account"), (["industry"], 7, "employees=crm")],
)
def test_a_value_set_in_the_crm_is_kept_unless_config_allows(overwrite: object, employees: int, source: str) -> None:
    frame = leads({"lead_id": "1", "email": "ann@acme.com", "employees": "7"})
    out = ENRICH.apply(frame, rules(Reference(accounts=ACCOUNTS), overwrite_crm_values=overwrite))
    assert out.iloc[0]["employees"] == employees
    assert out.iloc[0]["enrichment_source"].startswith(source)


def test_provider_answers_and_failures_never_fail_the_lead() -> None:
    answers = pd.DataFrame(
        {
            "domain": ["hooli.com", "piedpiper.com"],
            "status": ["ok", "error"],
            "employees": pd.array([30_000, None], dtype="Int64"),
            "annual_revenue": pd.array([None, None], dtype="Float64"),
            "industry": pd.array(["Internet", None], dtype="string"),
            "reason": pd.array([None, "timeout"], dtype="string"),
            "from_cache": pd.array([False, False], dtype="boolean"),
        }
    )
    frame = leads({"lead_id": "1", "email": "gavin@hooli.com"}, {"lead_id": "2", "email": "rh@piedpiper.com"},
                  {"lead_id": "3", "email": "someone@gmail.com"})
    config = {"provider": {"base_url": "https://provider.invalid"}}
    out = ENRICH.apply(frame, rules(Reference(provider=answers), **config))
    assert out["employees"].tolist()[:1] == [30_000]
    assert out.iloc[0]["enrichment_source"] == "employees=provider;industry=provider"
    assert out.iloc[0]["enrichment_note"] == "not_found"  # revenue still unknown
    assert out.iloc[1]["enrichment_note"] == "provider_error: timeout"
    assert out.iloc[1][["employees", "annual_revenue", "industry"]].isna().all()
    assert out.iloc[2]["enrichment_note"] == "no_company_domain"
    assert len(out) == len(frame)


def test_domains_to_look_up_skip_free_mail_known_domains_and_complete_leads() -> None:
    frame = leads(
        {"lead_id": "1", "email": "ann@acme.com"},  # account has all three
        {"lead_id": "2", "email": "x@initech.com"},  # reference file has all three
        {"lead_id": "3", "email": "bo@globex.de"},  # account and file incomplete: ask
        {"lead_id": "4", "email": "me@gmail.com", "website": "https://shop.hooli.com/"},  # free mail: the website
        {"lead_id": "5", "email": "z@full.io", "employees": "5", "annual_revenue": "1m", "industry": "Retail"},
    )
    config = {"provider": {"base_url": "https://provider.invalid"}}
    assert domains_to_look_up(frame, rules(Reference(accounts=ACCOUNTS, firmographics=FILE), **config)) == [
        "globex.de", "hooli.com",
    ]
    assert domains_to_look_up(frame, rules(Reference(accounts=ACCOUNTS))) == []  # no provider configured


def test_duplicates_and_address_flags() -> None:
    existing = pd.DataFrame(
        {"record_id": ["003C1"], "object": ["Contact"], "email": ["ann@acme.com"], "first_name": ["Ann"],
         "last_name": ["Lee"], "company": ["Acme"]}
    )
    frame = leads(
        {"lead_id": "1", "email": "Ann+webinar@acme.com", "first_name": "Ann", "last_name": "Lee"},
        {"lead_id": "2", "email": "info@acme.com"},
        {"lead_id": "3", "email": "temp@mailinator.com"},
    )
    out = ENRICH.apply(frame, rules(Reference(existing=existing)))
    assert out.iloc[0]["duplicate_of"] == "003C1" and out.iloc[0]["duplicate_confidence"] == 1.0
    assert out["is_role_email"].tolist() == [False, True, False]
    assert out["is_disposable_email"].tolist() == [False, False, True]


def test_segments_fall_back_to_revenue() -> None:
    bands = [SegmentBand(name="small", max_employees=10, max_annual_revenue=1e6), SegmentBand(name="big")]
    frame = leads({"lead_id": "1", "email": "a@x.com", "annual_revenue": "$500k"},
                  {"lead_id": "2", "email": "b@y.com", "employees": "11"})
    out = ENRICH.apply(frame, rules(segments=bands))
    assert out["segment"].tolist() == ["small", "big"]


def test_enrich_needs_standardized_columns() -> None:
    with pytest.raises(PipelineOrderError, match="standardize"):
        pipeline_from_names(["enrich", "standardize"])


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leadflow.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "yaml_path"),
    [
        ("enrichment:\n  segments:\n    - {name: smb, max_employees: 99}\n", "enrichment.segments"),
        ("enrichment:\n  overwrite_crm_values: [phone]\n", "enrichment.overwrite_crm_values"),
        ("enrichment:\n  accounts: missing.csv\n", "enrichment.accounts"),
        ("enrichment:\n  matching: {min_confidence: 2}\n", "enrichment.matching.min_confidence"),
        ("enrichment:\n  provider: {base_url: not-a-url}\n", "enrichment.provider.base_url"),
    ],
)
def test_bad_enrichment_config_names_the_yaml_path(tmp_path: Path, text: str, yaml_path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_rules(write_config(tmp_path, text))
    assert yaml_path in str(info.value)


def test_reference_files_load_relative_to_the_config(tmp_path: Path) -> None:
    ACCOUNTS.to_csv(tmp_path / "accounts.csv", index=False)
    FILE.to_parquet(tmp_path / "firmo.parquet")
    loaded = load_rules(write_config(
        tmp_path, "enrichment:\n  accounts: accounts.csv\n  firmographics_file: firmo.parquet\n"))
    assert loaded.reference.accounts["account_id"].tolist() == ["001A", "001B"]
    assert loaded.reference.firmographics["employees"].tolist() == [12, 4000]


def test_a_bad_number_in_a_reference_file_names_file_row_and_column(tmp_path: Path) -> None:
    (tmp_path / "firmo.csv").write_text("domain,employees\na.com,10\nb.com,lots\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(write_config(tmp_path, "enrichment:\n  firmographics_file: firmo.csv\n"))
    message = str(info.value)
    assert "firmo.csv" in message and "row 3" in message and "employees" in message and "lots" in message


def test_a_value_leadflow_wrote_earlier_is_refreshed_not_protected() -> None:
    # Last run filled employees from the account and wrote it back; the account has grown since.
    frame = leads({"lead_id": "1", "email": "ann@acme.com", "employees": "200",
                   "enrichment_source": "employees=account"},
                  {"lead_id": "2", "email": "ann@acme.com", "employees": "200"},  # a person typed 200
                  {"lead_id": "3", "email": "x@gone.com", "employees": "80", "enrichment_source": "employees=provider"})
    out = ENRICH.apply(frame, rules(Reference(accounts=ACCOUNTS)))
    assert out["employees"].tolist() == [250, 200, 80]
    assert out.iloc[0]["enrichment_source"].startswith("employees=account")
    assert out.iloc[1]["enrichment_source"].startswith("employees=crm")
    assert out.iloc[2]["enrichment_source"] == "employees=provider"  # nothing newer: kept, still the provider's


def test_a_stage_may_read_its_own_earlier_output_but_not_a_later_stages() -> None:
    assert "enrichment_source" in ENRICH.reads and "enrichment_source" in ENRICH.writes
    pipeline_from_names(["standardize", "enrich", "comply"])
