"""Lead-to-account matching: domain first, blocked fuzzy name second, empty beats wrong."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline.errors import ConfigError
from leadflow.identity.matching import (
    MATCH_COLUMNS,
    MatchConfig,
    load_match_config,
    match_accounts,
    normalize_company,
    registered_domain,
)
from leadflow.synth import messy_accounts, messy_leads_for_accounts


def _accounts(*rows: dict[str, object]) -> pd.DataFrame:
    base = {
        "account_id": None,
        "name": None,
        "website": None,
        "owner_id": None,
        "employees": None,
        "last_activity_at": None,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def _leads(*rows: dict[str, object]) -> pd.DataFrame:
    base = {
        "email_domain": None,
        "website": None,
        "company": None,
        "is_free_email": None,
    }
    frame = pd.DataFrame([{**base, **r} for r in rows])
    frame["is_free_email"] = frame["is_free_email"].astype("boolean")
    return frame


ACCOUNTS = _accounts(
    {
        "account_id": "001A",
        "name": "Acme Inc.",
        "website": "https://www.acme.co.uk/about",
        "owner_id": "005A",
    },
    {
        "account_id": "001B",
        "name": "Globex Corporation",
        "website": "globex.com",
        "owner_id": "005B",
    },
    {
        "account_id": "001C",
        "name": "Initech Labs LLC",
        "website": None,
        "owner_id": None,
    },
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sub.example.co.uk", "example.co.uk"),
        ("https://www.example.co.uk/path", "example.co.uk"),
        ("HTTP://WWW.Example.com/", "example.com"),
        ("jane@mail.example.com.au", "example.com.au"),
        ("example.io", "example.io"),
        ("localhost", None),
        ("n/a", None),
        ("", None),
        (None, None),
    ],
)
def test_registered_domain(value: str | None, expected: str | None) -> None:
    assert registered_domain(value) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("The Acme Company, Inc.", "acme"),
        ("ACME Co", "acme"),
        ("Acme GmbH & Co. KG", "acme"),
        ("Société Générale S.A.", "societe generale"),
        ("Blue Heron Pty. Ltd.", "blue heron"),
        ("Stark  Industries plc", "stark industries"),
        ("n/a", ""),
        ("Self-employed", ""),
        ("Co", "co"),
    ],
)
def test_normalize_company(name: str, expected: str) -> None:
    assert normalize_company(name) == expected


@pytest.mark.parametrize(
    ("lead", "account_id", "method"),
    [
        ({"email_domain": "acme.co.uk"}, "001A", "domain"),
        (
            {"email_domain": "eu.mail.acme.co.uk"},
            "001A",
            "domain",
        ),  # subdomain, multi-part TLD
        (
            {"email_domain": "globex.com", "company": "Something Else"},
            "001B",
            "domain",
        ),  # domain wins over name
        ({"email_domain": "acme.com"}, None, "none"),  # another registrable domain
    ],
)
def test_domain_match(lead: dict[str, object], account_id: str | None, method: str) -> None:
    out = match_accounts(_leads(lead), ACCOUNTS)
    assert out["account_id"].iloc[0] is pd.NA if account_id is None else out["account_id"].iloc[0] == account_id
    assert out["account_match_method"].iloc[0] == method
    assert out["account_match_confidence"].iloc[0] == (1.0 if method == "domain" else 0.0)


def test_free_mail_never_matches_by_domain() -> None:
    accounts = pd.concat(
        [
            ACCOUNTS,
            _accounts({"account_id": "001G", "name": "Google", "website": "gmail.com"}),
        ]
    )
    leads = _leads(
        {"email_domain": "gmail.com", "is_free_email": True},  # nothing else: no match
        {
            "email_domain": "gmail.com",
            "is_free_email": True,
            "website": "www.globex.com",
        },  # falls to website
        {
            "email_domain": "yahoo.co.uk",
            "is_free_email": pd.NA,
            "company": "Initech Labs",
        },  # falls to name
        {
            "email_domain": "gmail.com",
            "is_free_email": False,
        },  # the reference list still says free
    )
    out = match_accounts(leads, accounts)
    assert out["account_id"].tolist() == [pd.NA, "001B", "001C", pd.NA]
    assert out["account_match_method"].tolist() == ["none", "domain", "name", "none"]


def test_name_match_after_normalization() -> None:
    accounts = _accounts({"account_id": "001X", "name": "ACME Co", "owner_id": "005X"})
    out = match_accounts(_leads({"company": "The Acme Company, Inc."}), accounts)
    assert out.iloc[0].tolist() == ["001X", "005X", "name", 0.95]


def test_fuzzy_name_match_with_typo() -> None:
    accounts = _accounts({"account_id": "001X", "name": "Northwind Logistics Ltd"})
    out = match_accounts(_leads({"company": "Northwind Logsitics"}), accounts)
    assert out["account_id"].iloc[0] == "001X"
    assert out["account_match_method"].iloc[0] == "name"
    assert 0.85 <= out["account_match_confidence"].iloc[0] < 0.95


@pytest.mark.parametrize("company", ["Acme Analytics", "Northwind Trading", "Acme", "n/a", None])
def test_near_but_different_name_is_no_match(company: str | None) -> None:
    accounts = _accounts(
        {"account_id": "001X", "name": "Acme Logistics Inc"},
        {"account_id": "001Y", "name": "Northwind Traders"},
    )
    out = match_accounts(_leads({"company": company}), accounts)
    assert out["account_match_method"].iloc[0] == "none"
    assert out["account_match_confidence"].iloc[0] == 0.0
    assert out["account_id"].iloc[0] is pd.NA


def test_min_confidence_turns_weak_matches_into_none() -> None:
    accounts = _accounts({"account_id": "001X", "name": "Northwind Logistics Ltd"})
    leads = _leads({"company": "Northwind Logsitics"})
    strict = match_accounts(leads, accounts, MatchConfig(min_confidence=0.95))
    assert strict["account_match_method"].iloc[0] == "none"


TIED = _accounts(
    {
        "account_id": "001A",
        "name": "Acme",
        "website": "acme.com",
        "owner_id": None,
        "employees": 5000,
        "last_activity_at": "2026-10-01T00:00:00Z",
    },
    {
        "account_id": "001B",
        "name": "Acme Inc",
        "website": "https://acme.com",
        "owner_id": "005B",
        "employees": 10,
        "last_activity_at": "2024-01-01T00:00:00Z",
    },
    {
        "account_id": "001C",
        "name": "ACME LLC",
        "website": "www.acme.com",
        "owner_id": "005C",
        "employees": 200,
        "last_activity_at": None,
    },
)


@pytest.mark.parametrize(
    ("tie_breakers", "expected"),
    [
        (["has_owner", "most_employees"], "001C"),
        (["has_owner", "most_recent_activity"], "001B"),
        (["most_employees"], "001A"),
        (["most_recent_activity", "has_owner"], "001A"),
        ([], "001A"),  # account_id decides last
    ],
)
@pytest.mark.parametrize("lead", [{"email_domain": "acme.com"}, {"company": "Acme Corp."}])
def test_tie_breakers(tie_breakers: list[str], expected: str, lead: dict[str, object]) -> None:
    out = match_accounts(_leads(lead), TIED, MatchConfig(tie_breakers=tie_breakers))
    assert out["account_id"].iloc[0] == expected
    # A tie decided by rules is reported slightly less sure than a unique hit.
    assert out["account_match_confidence"].iloc[0] == (0.97 if "email_domain" in lead else 0.93)


def test_shape_index_and_dtypes() -> None:
    leads = _leads(
        {"email_domain": "acme.co.uk"},
        {"company": "Globex"},
        {"company": None},
        {"email_domain": "x.org"},
    )
    leads.index = pd.Index([10, 20, 30, 40], name="row")
    out = match_accounts(leads, ACCOUNTS)
    assert list(out.columns) == list(MATCH_COLUMNS)
    assert out.index.equals(leads.index)
    assert [str(t) for t in out.dtypes] == ["string", "string", "string", "float64"]
    assert out["account_match_method"].tolist() == ["domain", "name", "none", "none"]
    assert ((out["account_match_confidence"] >= 0) & (out["account_match_confidence"] <= 1)).all()


def test_empty_inputs() -> None:
    out = match_accounts(_leads({"company": "Acme"}).iloc[:0], ACCOUNTS)
    assert list(out.columns) == list(MATCH_COLUMNS) and len(out) == 0
    out = match_accounts(_leads({"company": "Acme"}), ACCOUNTS.iloc[:0])
    assert out["account_match_method"].tolist() == ["none"]


def test_config_yaml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "matching.yaml"
    path.write_text("min_confidence: 0.9\nfuzzy_cutoff: 92\ntie_breakers: [most_employees]\nscorer: WRatio\n")
    config = load_match_config(path)
    assert config.min_confidence == 0.9 and config.tie_breakers == ["most_employees"] and config.scorer == "WRatio"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("tie_breakers: [has_owner, biggest]\n", "tie_breakers[1]"),
        ("min_confidence: 1.5\n", "min_confidence"),
        ("scorer: levenshtein\n", "scorer"),
        ("fuzzy_cuttoff: 90\n", "fuzzy_cuttoff"),
        ("tie_breakers: [has_owner, has_owner]\n", "tie_breakers"),
    ],
)
def test_config_errors_name_the_yaml_path(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "matching.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_match_config(path)
    assert info.value.yaml_path == where
    assert str(path) in str(info.value)


def test_synthetic_accounts_and_leads_match_as_generated() -> None:
    accounts = messy_accounts(3000, seed=3)
    assert accounts["account_id"].str.startswith("001").all() and accounts["account_id"].is_unique
    leads = messy_leads_for_accounts(accounts, 4000, seed=3)
    out = match_accounts(leads, accounts)
    assert len(out) == len(leads)
    outside = leads["kind"] == "outside"
    assert (out.loc[outside, "account_match_method"] == "none").mean() > 0.98
    matched = out["account_id"].notna() & ~outside
    assert matched[leads["kind"] == "domain"].mean() > 0.97
    assert matched[leads["kind"] == "name"].mean() > 0.8


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Acme Systems Corporattion", "acme systems"),
        ("Acme Systems, LLLC", "acme systems"),
        ("Acme Systems IInc.", "acme systems"),
        ("Acme Systems Limted", "acme systems"),
        ("Acme Coop", "acme coop"),  # short words are never guessed to be suffixes
    ],
)
def test_normalize_company_forgives_suffix_typos(name: str, expected: str) -> None:
    assert normalize_company(name) == expected


@pytest.mark.parametrize(
    ("company", "account_id"),
    [
        (
            "Acme Rookwood Media",
            None,
        ),  # shares most letters, but one word is another word: no match
        ("Acme Ironwod Media", "001X"),  # one typo in one word
        ("Acme Iornwood Media", "001X"),  # a swap counts as one typo
        ("Acme Ironwood Media Corporatoin", "001X"),
        ("AcmeIronwood Media", "001X"),  # a joined word is a typo too
    ],
)
def test_fuzzy_words_must_agree(company: str, account_id: str | None) -> None:
    accounts = _accounts({"account_id": "001X", "name": "Acme Ironwood Media GmbH"})
    out = match_accounts(_leads({"company": company}), accounts)
    assert (out["account_id"].iloc[0] is pd.NA) if account_id is None else out["account_id"].iloc[0] == account_id


COUNTRIES = _accounts(
    {"account_id": "001US", "name": "Acme Inc", "website": "acme.com", "owner_id": "005US", "country_code": "US"},
    {"account_id": "001DE", "name": "Acme GmbH", "website": "acme.com", "owner_id": None, "country_code": "DE"},
)


@pytest.mark.parametrize(
    ("lead", "prefer", "expected"),
    [
        ({"email_domain": "acme.com", "country_code": "de"}, True, "001DE"),  # same country beats has_owner
        ({"company": "ACME", "country_code": "DE"}, True, "001DE"),
        ({"company": "ACME", "country_code": "FR"}, True, "001US"),  # no account there: tie-breakers decide
        ({"email_domain": "acme.com", "country_code": None}, True, "001US"),
        ({"email_domain": "acme.com", "country_code": "DE"}, False, "001US"),
    ],
)
def test_same_country_preferred(lead: dict[str, object], prefer: bool, expected: str) -> None:
    config = MatchConfig(prefer_same_country=prefer, tie_breakers=["has_owner"])
    out = match_accounts(_leads(lead), COUNTRIES, config)
    assert out["account_id"].iloc[0] == expected
