"""The synthetic lead generator: shape, determinism, and that its mess stays in realistic proportions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest

from leadflow.pipeline.schema import CORE_INPUT_COLUMNS as INPUT_COLUMNS
from leadflow.pipeline.schema import parse_bool
from leadflow.pipeline.settings import SAMPLE_LEADS
from leadflow.synth import (
    JUNK_COUNTRIES,
    JUNK_DATES,
    PLACEHOLDER_EMAILS,
    main,
    messy_leads,
)

N = 10_000


@pytest.fixture(scope="module")
def leads() -> pd.DataFrame:
    return messy_leads(N, seed=11)


def _read_csv(path: Path) -> pd.DataFrame:
    # Placeholders such as "N/A" and "none" are data here, not missing values.
    return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])


def _parse_times(values: pd.Series) -> pd.Series:
    text = values.str.strip()
    epoch = text.str.fullmatch(r"\d{9,11}").fillna(False).astype(bool)
    parsed = pd.to_datetime(text.where(~epoch), format="mixed", utc=True, errors="coerce")
    parsed[epoch] = pd.to_datetime(text[epoch].astype("int64"), unit="s", utc=True)
    return parsed


@pytest.mark.parametrize("n", [0, 1, 7, 500])
def test_columns_dtypes_and_row_count(n: int) -> None:
    frame = messy_leads(n)
    assert list(frame.columns) == list(INPUT_COLUMNS)
    assert len(frame) == n
    for column in frame.columns:
        assert frame[column].dtype == pd.StringDtype(na_value=pd.NA), column


def test_negative_n_is_refused() -> None:
    with pytest.raises(ValueError):
        messy_leads(-1)


def test_deterministic() -> None:
    pd.testing.assert_frame_equal(messy_leads(3_000, seed=5), messy_leads(3_000, seed=5))
    assert not messy_leads(300, seed=5).equals(messy_leads(300, seed=6))


def test_start_moves_the_dates_only() -> None:
    base = messy_leads(1_000, seed=2)
    earlier = messy_leads(1_000, seed=2, start=datetime(2025, 1, 1, tzinfo=UTC))
    same = [c for c in INPUT_COLUMNS if c not in {"created_at", "updated_at", "lead_id"}]
    pd.testing.assert_frame_equal(base[same], earlier[same])
    created = _parse_times(earlier["created_at"]).dropna()
    assert created.max() < pd.Timestamp("2025-01-01", tz="UTC")
    assert created.min() >= pd.Timestamp("2024-10-01", tz="UTC")


def test_default_start_is_fixed(leads: pd.DataFrame) -> None:
    created = _parse_times(leads["created_at"]).dropna()
    assert pd.Timestamp("2026-08-01", tz="UTC") <= created.min()
    assert created.max() < pd.Timestamp("2026-11-01", tz="UTC")


def test_identity_mess(leads: pd.DataFrame) -> None:
    neither = (leads["lead_id"].isna() & leads["email"].isna()).mean()
    assert 0 < neither < 0.01
    assert 0.08 < leads["lead_id"].isna().mean() < 0.25
    assert set(leads["source"].unique()) == {"salesforce", "marketo", "hubspot", "webform"}
    ids = leads["lead_id"].dropna()
    assert ids.str.fullmatch(r"00Q[0-9A-Za-z]{15}").mean() > 0.95  # the rest: 15-char or space-padded
    assert ids.str.strip().str.len().eq(15).any()
    assert not ids.str.strip().duplicated().any()
    assert 0.3 < leads["owner_id"].notna().mean() < 0.5
    assert leads["owner_id"].dropna().str.startswith("005").all()


def test_email_mess(leads: pd.DataFrame) -> None:
    email = leads["email"].dropna()
    assert 0.02 < leads["email"].isna().mean() < 0.1
    normalized = email.str.strip().str.lower()
    clean = normalized.str.fullmatch(r"[a-z0-9._'+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+")
    assert clean.mean() > 0.9
    assert 0.005 < normalized.duplicated().mean() < 0.08
    assert email.str.contains("@@", regex=False).any()
    assert (~email.str.contains("@", regex=False)).mean() < 0.03
    assert (email != email.str.strip()).any()
    assert (email == email.str.upper()).any()
    assert email.isin(PLACEHOLDER_EMAILS).any()
    assert email.str.contains("@gmial.com|@gmail.con|@gmai.com|@gnail.com", regex=True).any()
    assert email.str.match(r"(info|sales|contact)@").any()
    assert email.str.contains(r"[^\x00-\x7f]", regex=True).any()  # unicode local parts
    free = normalized.str.extract(r"@(.*)$")[0].isin(["gmail.com", "yahoo.co.uk", "outlook.com", "gmx.de", "web.de"])
    assert 0.05 < free.mean() < 0.4


def test_names_titles_companies(leads: pd.DataFrame) -> None:
    last = leads["last_name"].dropna()
    assert last.isin(["O'Brien", "van der Berg"]).any()
    assert last.str.contains("-", regex=False).any()
    assert (last == last.str.lower()).mean() > 0.02
    assert leads["first_name"].isna().mean() < 0.05
    titles = leads["title"].dropna()
    assert titles.nunique() > 60
    assert titles.isin(["CEO", "Chief Revenue Officer", "VP, People", "intern", "student", "-"]).sum() > 50
    company = leads["company"].dropna()
    assert company.str.contains(r"(?:Inc\.|GmbH|Ltd|S\.A\.)$", regex=True).mean() > 0.2


def test_country_and_state_mess(leads: pd.DataFrame) -> None:
    country = leads["country"]
    us = country.isin(["United States", "USA", "U.S.A.", "us", "United States of America"])
    assert 0.25 < us.mean() < 0.5
    assert country.isin(["Deutschland", "España", "Österreich", "Türkiye", "Éire", "Holland"]).any()
    junk = country.isin(JUNK_COUNTRIES).mean()
    assert 0.005 < junk < 0.05
    assert 0.01 < country.isna().mean() < 0.1
    assert country.nunique() > 80
    states = leads["state"]
    assert states.isin(["CA", "NY", "TX"]).any() and states.isin(["California", "Texas"]).any()
    assert states.isin(["NSW", "ontario", "Ontario", "ON"]).any()


def test_phones_mostly_valid(leads: pd.DataFrame) -> None:
    phone = leads["phone"].dropna()
    assert phone.str.fullmatch(r"\(\d{3}\) \d{3}-\d{4}").any()
    assert phone.str.startswith("0049 ").any() and phone.str.startswith("+44 ").any()
    international = phone[phone.str.fullmatch(r"\+[\d ()./x-]{8,}")].head(2_000)
    valid = [phonenumbers.is_valid_number(phonenumbers.parse(p, None)) for p in international]
    assert len(valid) > 500 and sum(valid) / len(valid) > 0.85
    assert phone.isin(["n/a", "000", "123", "tel:"]).any()
    assert phone.duplicated().mean() < 0.1


def test_opt_in_and_dates(leads: pd.DataFrame) -> None:
    _, unrecognised = parse_bool(leads["email_opt_in"])
    assert 0 < unrecognised.mean() < 0.01
    assert leads["email_opt_in"].isna().mean() > 0.1
    created, updated = _parse_times(leads["created_at"]), _parse_times(leads["updated_at"])
    junk = leads["created_at"].isin(JUNK_DATES)
    assert 0 < junk.mean() < 0.01
    assert (created.isna() & leads["created_at"].notna()).mean() < 0.01
    both = created.notna() & updated.notna()
    assert both.mean() > 0.9
    assert (updated[both] >= created[both]).all()
    assert leads["created_at"].str.endswith("Z").mean() > 0.3
    assert leads["created_at"].str.fullmatch(r"\d{2}/\d{2}/\d{4}").any()
    assert leads["created_at"].str.fullmatch(r"\d{10}").any()


def test_most_rows_are_usable(leads: pd.DataFrame) -> None:
    email_ok = leads["email"].str.strip().str.lower().str.fullmatch(r"[a-z0-9._'+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+")
    country_ok = leads["country"].notna() & ~leads["country"].isin(JUNK_COUNTRIES)
    assert (email_ok.fillna(False) & country_ok).mean() > 0.75


def test_cli_writes_csv_and_parquet(tmp_path: Path) -> None:
    csv_path, parquet_path = tmp_path / "leads.csv", tmp_path / "out" / "leads.parquet"
    assert main(["--rows", "300", "--seed", "4", "--out", str(csv_path)]) == 0
    assert main(["--rows", "300", "--seed", "4", "--out", str(parquet_path)]) == 0
    expected = messy_leads(300, seed=4)
    pd.testing.assert_frame_equal(_read_csv(csv_path), expected)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet_path).astype("string"), expected)
    with pytest.raises(SystemExit):
        main(["--rows", "3", "--out", str(tmp_path / "leads.json")])


def test_bundled_sample_is_current() -> None:
    # Regenerate with the command in leadflow.synth's docstring when the generator changes.
    pd.testing.assert_frame_equal(_read_csv(SAMPLE_LEADS), messy_leads(2_500, seed=7))


def test_bundled_demo_reference_is_current() -> None:
    # Regenerate: accounts, records = sample_reference(<sample leads as read here>); write both with index=False.
    from leadflow.pipeline.config import load_rules
    from leadflow.pipeline.settings import DEMO_CONFIG
    from leadflow.synth import sample_reference

    leads = pd.read_csv(SAMPLE_LEADS, dtype="string", keep_default_na=False, na_values=[""])
    accounts, records = sample_reference(leads)
    reference = load_rules(DEMO_CONFIG).reference
    pd.testing.assert_frame_equal(reference.accounts, accounts)
    pd.testing.assert_frame_equal(reference.existing, records)
    assert 0.3 < len(accounts) / leads["email"].str.split("@").str[1].nunique() < 0.7
    assert (records["object"] == "Contact").any() and (records["object"] == "Lead").any()
