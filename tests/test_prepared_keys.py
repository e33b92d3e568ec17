"""Prepared reference keys: what prepare_accounts / prepare_existing store, and that matching and duplicate detection
answer the same from plain frames, prepared frames and a RecordIndex."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadflow.identity.duplicates import DuplicateConfig, find_duplicates
from leadflow.identity.enrichment import ACCOUNT_COLUMNS, EXISTING_COLUMNS
from leadflow.identity.matching import MatchConfig, match_accounts
from leadflow.identity.prepared import (
    ACCOUNT_KEY_COLUMNS,
    EXISTING_KEY_COLUMNS,
    keys_fingerprint,
    prepare_accounts,
    prepare_existing,
)
from leadflow.identity.records import RecordIndex
from leadflow.synth import (
    messy_accounts,
    messy_existing_records,
    messy_leads,
    messy_leads_for_accounts,
    messy_leads_for_existing,
)

TRUTH = ["true_duplicate_of", "true_person_id", "kind"]


def _strings(rows: list[dict[str, object]], columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns)).astype("string")


def test_account_keys() -> None:
    accounts = _strings(
        [
            {"account_id": "001A", "name": "The Acme, Inc.", "website": "https://www.Acme.co.uk/about"},
            {"account_id": "001B", "name": "  Globex  Corporation ", "website": "globex.com", "domain": "globex.de"},
            {"account_id": "001C", "name": "N/A", "website": "gmail.com"},
            {"account_id": "001D", "name": None, "website": "localhost"},
            {"account_id": "001E", "name": "Société Générale S.A.", "website": None},
        ],
        (*ACCOUNT_COLUMNS, "domain"),
    )
    accounts.index = [10, 10, 11, 12, 13]  # any index, even a duplicated one
    before = accounts.copy()
    out = prepare_accounts(accounts)
    pd.testing.assert_frame_equal(accounts, before)  # the input is left alone
    assert list(out.columns) == [*accounts.columns, *ACCOUNT_KEY_COLUMNS]
    assert all(str(out[c].dtype) == "string" for c in ACCOUNT_KEY_COLUMNS)
    assert out.index.equals(accounts.index)
    assert out["domain_key"].tolist() == ["acme.co.uk", "globex.de", pd.NA, pd.NA, pd.NA]  # gmail.com: free-mail
    assert out["name_key"].tolist() == ["acme", "globex", pd.NA, pd.NA, "societe generale"]
    pd.testing.assert_frame_equal(prepare_accounts(out), out)  # idempotent


def test_existing_keys() -> None:
    existing = _strings(
        [
            {"record_id": "003A", "object": "Contact", "email": " Jane.Doe+Webinar@ACME.com ", "first_name": "J. R.",
             "last_name": "O'Brien", "company": "Acme Inc."},
            {"record_id": "003B", "object": "Lead", "email": "bob99@gmail.com", "first_name": "Jean-Luc",
             "last_name": "van der Berg", "company": "N/A"},
            {"record_id": "003C", "object": "Lead", "email": "not an address", "first_name": "  ",
             "last_name": None, "company": None},
            {"record_id": "003D", "object": "Contact", "email": "x@mail.initech.co.uk", "first_name": "Łukasz",
             "last_name": "Müller", "company": "Initech Laboratories GmbH"},
        ],
        EXISTING_COLUMNS,
    )
    out = prepare_existing(existing)
    assert list(out.columns) == [*EXISTING_COLUMNS, *EXISTING_KEY_COLUMNS]
    assert all(str(out[c].dtype) == "string" for c in EXISTING_KEY_COLUMNS)
    assert out["email_key"].tolist() == ["jane.doe@acme.com", "bob99@gmail.com", pd.NA, "x@mail.initech.co.uk"]
    assert out["first_key"].tolist() == ["j", "jeanluc", pd.NA, "lukasz"]
    assert out["last_key"].tolist() == ["obrien", "vanderberg", pd.NA, "muller"]
    assert out["company_key"].tolist() == ["acme", pd.NA, pd.NA, "initech laboratories"]
    assert out["domain_key"].tolist() == ["acme.com", pd.NA, pd.NA, "initech.co.uk"]
    pd.testing.assert_frame_equal(prepare_existing(out), out)
    # An email_domain column, when the frame has one, is the corporate domain's first source.
    with_domain = prepare_existing(existing.assign(email_domain=["globex.com", None, "initech.io", None]))
    assert with_domain["domain_key"].tolist() == ["globex.com", pd.NA, "initech.io", "initech.co.uk"]


def test_keys_fingerprint_is_stable() -> None:
    first = keys_fingerprint()
    assert first == keys_fingerprint() and len(first) == 16 and int(first, 16) >= 0


def test_stored_keys_are_used_as_they_are() -> None:
    accounts = prepare_accounts(messy_accounts(50, seed=5))
    lead = pd.DataFrame({"company": ["Entirely Different Company"], "country_code": [None]}, dtype="string")
    assert match_accounts(lead, accounts)["account_id"].isna().all()
    # A stored name_key is trusted, not recomputed: the account whose key says so is the match.
    accounts.loc[accounts.index[7], "name_key"] = "entirely different"
    got = match_accounts(lead, accounts)
    assert got["account_id"].tolist() == [accounts["account_id"].iloc[7]]
    assert got["account_match_method"].tolist() == ["name"]


def _messy_accounts(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    accounts = messy_accounts(n, seed=seed)
    accounts["country_code"] = accounts["country_code"].mask(rng.random(n) < 0.1)
    pick = rng.random(n)
    accounts.loc[pick < 0.02, "website"] = "https://mail.GOOGLE.com/x"  # free-mail: never an account's domain
    accounts.loc[(pick > 0.3) & (pick < 0.33), "name"] = accounts.loc[(pick > 0.3) & (pick < 0.33), "name"].str.upper()
    accounts.loc[(pick > 0.5) & (pick < 0.51), "name"] = "  "
    accounts["domain"] = accounts["website"].where(rng.random(n) < 0.05)
    return accounts


@pytest.mark.parametrize(
    "config",
    [
        MatchConfig(),
        MatchConfig(scorer="token_sort_ratio", prefer_same_country=False, tie_breakers=["most_employees"]),
        MatchConfig(min_confidence=0.5, fuzzy_cutoff=80, block_prefix=2),
    ],
)
def test_match_accounts_same_from_prepared(config: MatchConfig) -> None:
    accounts = _messy_accounts(1500, seed=11)
    leads = messy_leads_for_accounts(accounts, 4000, seed=11).drop(columns=["true_account_id", "kind"])
    # Re-typed names in the accounts' blocks: fuzzy matches and equally good names the tie-breakers decide.
    name_rows = leads["company"].notna().to_numpy() & (np.arange(len(leads)) % 3 == 0)
    leads.loc[name_rows, "company"] = leads.loc[name_rows, "company"].str.slice(0, -1) + "x"
    leads.index = np.arange(len(leads))[::-1] * 2
    prepared = prepare_accounts(accounts)
    want = match_accounts(leads, accounts, config)
    assert want["account_match_method"].nunique() == 3
    pd.testing.assert_frame_equal(match_accounts(leads, prepared, config), want)
    pd.testing.assert_frame_equal(match_accounts(leads, prepared.sample(frac=1, random_state=1), config), want)
    pd.testing.assert_frame_equal(match_accounts(leads, prepared.drop(columns=["name_key"]), config), want)
    for start in (0, 900, 2600):  # small batches see only the accounts sharing a key with them
        batch = leads.iloc[start : start + 100]
        pd.testing.assert_frame_equal(match_accounts(batch, prepared, config), want.iloc[start : start + 100])


def _messy_existing(m: int, n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    existing = messy_existing_records(m, seed=seed)
    leads = messy_leads_for_existing(existing, n, seed=seed).drop(columns=TRUTH)
    existing = existing.drop(columns=["person_id"])
    rng = np.random.default_rng(seed)
    pick = rng.random(m)
    existing.loc[pick < 0.01, "record_id"] = " " + existing.loc[pick < 0.01, "record_id"] + " "
    upper = (pick > 0.5) & (pick < 0.52)
    existing.loc[upper, "email"] = existing.loc[upper, "email"].str.upper()
    existing.loc[(pick > 0.6) & (pick < 0.61), "first_name"] = None
    existing.loc[(pick > 0.7) & (pick < 0.705), "last_name"] = "  "
    existing.loc[(pick > 0.8) & (pick < 0.805), "company"] = "N/A"
    existing.loc[(pick > 0.9) & (pick < 0.905), "email"] = "not an address"
    # Realistic people beside the synthetic ones: free-mail, junk websites, missing names (sandbox seeding's source).
    people = messy_leads(300, seed=seed)
    realistic = people[["email", "first_name", "last_name", "company"]].assign(
        record_id=[f"0035e{k:010d}AAA" for k in range(len(people))], object="Contact"
    )
    existing = pd.concat([existing, realistic[list(EXISTING_COLUMNS)]], ignore_index=True)
    pick = rng.random(n)
    leads.loc[pick < 0.02, "lead_id"] = ""
    own = (pick > 0.3) & (pick < 0.32)
    leads.loc[own, "lead_id"] = existing["record_id"].sample(int(own.sum()), random_state=seed).str.strip().to_numpy()
    tagged = (pick > 0.5) & (pick < 0.52)
    leads.loc[tagged, "email"] = leads.loc[tagged, "email"].str.replace("@", "+x@", n=1)
    again = people.iloc[:40][["lead_id", "email", "first_name", "last_name", "company", "created_at"]]
    return existing, pd.concat([leads, again], ignore_index=True)


@pytest.mark.parametrize(
    "config",
    [
        DuplicateConfig(),
        DuplicateConfig(prefer=["Lead"], allow_initials=False, min_confidence=0.5, company_cutoff=80, block_prefix=2),
        DuplicateConfig(max_block_pairs=3, within_batch=False),
        DuplicateConfig(nicknames={"robert": ["bob"], "john": ["jack", "jon"]}, min_confidence=0.0),
    ],
)
def test_find_duplicates_same_from_prepared_and_index(config: DuplicateConfig) -> None:
    existing, leads = _messy_existing(6000, 3000, seed=4)
    leads.index = np.arange(len(leads)) % 50  # a duplicated index is kept as it is
    prepared = prepare_existing(existing)
    want = find_duplicates(leads, existing, config)
    assert want["duplicate_of"].notna().mean() > 0.3
    assert (want["duplicate_confidence"] < 1.0).any()  # the fuzzy rule found some
    index = RecordIndex(prepared, prefer=config.prefer)
    pd.testing.assert_frame_equal(find_duplicates(leads, prepared, config), want)
    pd.testing.assert_frame_equal(find_duplicates(leads, index, config), want)
    pd.testing.assert_frame_equal(find_duplicates(leads, RecordIndex(existing), config), want)
    for start in (0, 1450, 2940):  # small batches index only the records sharing a key with them
        batch = leads.iloc[start : start + 100]
        alone = find_duplicates(batch, existing, config)  # rule 3 looks within the batch: its own answer
        pd.testing.assert_frame_equal(find_duplicates(batch, prepared, config), alone)
        pd.testing.assert_frame_equal(find_duplicates(batch, index, config), alone)


def test_equally_good_fuzzy_names_go_to_the_preferred_account() -> None:
    # "Brightpath Solutionz" is one letter off both names (95 each): the tie-breakers pick the account with an owner,
    # though the other comes first; both were ranked only because the scores tied.
    accounts = _strings(
        [
            {"account_id": "001A", "name": "Brightpath Solutions"},
            {"account_id": "001B", "name": "Brightpath Solutiona", "owner_id": "005B"},
            {"account_id": "001C", "name": "Brightpath Media", "owner_id": "005C"},
            {"account_id": "001D", "name": "Globex", "owner_id": "005D"},
        ],
        ACCOUNT_COLUMNS,
    )
    leads = pd.DataFrame({"company": ["Brightpath Solutionz", "Brightpath Solutions"]}, dtype="string")
    for reference in (accounts, prepare_accounts(accounts)):
        got = match_accounts(leads, reference, MatchConfig(tie_breakers=["has_owner"]))
        assert got["account_id"].tolist() == ["001B", "001A"]
        assert got["account_match_confidence"].tolist() == [pytest.approx(0.95 * 0.95), 0.95]


def test_equally_good_fuzzy_companies_go_to_the_first_record_name() -> None:
    # "Initech Laboratoriez" is as close to "…ies" as to "…iea": the name of the earlier record wins ("…ies", a
    # colleague's), so John Smith at "…iea" is no duplicate. A batch index sees that colleague's name too.
    existing = _strings(
        [
            {"record_id": "003A", "object": "Contact", "first_name": "Jane", "last_name": "Doe",
             "company": "Initech Laboratories"},
            {"record_id": "003B", "object": "Contact", "first_name": "John", "last_name": "Smith",
             "company": "Initech Laboratoriea"},
            {"record_id": "003C", "object": "Lead", "first_name": "Mary", "last_name": "Roe",
             "company": "Initech Laboratoriea"},
        ],
        EXISTING_COLUMNS,
    )
    # Other people elsewhere: the two leads reach only a few records, so a frame gets a batch index.
    others = [{"record_id": f"003X{k:02d}", "object": "Lead", "first_name": "Ann", "last_name": "Lee",
               "company": "Globex"} for k in range(40)]
    existing = pd.concat([existing, _strings(others, EXISTING_COLUMNS)], ignore_index=True)
    leads = pd.DataFrame(
        {"lead_id": ["L1", "L2"], "first_name": ["John", "John"], "last_name": ["Smith", "Smith"],
         "company": ["Initech Laboratoriez", "Initech Laboratoriea"]},
        dtype="string",
    )
    for reference in (existing, prepare_existing(existing), RecordIndex(existing)):
        got = find_duplicates(leads, reference)
        assert got["duplicate_of"].tolist() == [pd.NA, "003B"]


def test_big_batch_lookups_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    # A big batch looks its keys up with Arrow instead of the index's hash table: the same codes, the same answers.
    import leadflow.identity.records as records

    existing, leads = _messy_existing(3000, 2000, seed=9)
    index = RecordIndex(existing)
    want = find_duplicates(leads, index)
    assert want["duplicate_of"].notna().mean() > 0.3
    monkeypatch.setattr(records, "_ARROW_LOOKUP_MIN", 1)
    pd.testing.assert_frame_equal(find_duplicates(leads, index), want)
    pd.testing.assert_frame_equal(find_duplicates(leads, existing), want)
