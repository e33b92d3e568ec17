"""Duplicate detection against existing CRM leads and contacts: exact e-mail, fuzzy person, within the batch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadflow.identity.duplicates import (
    DUPLICATE_COLUMNS,
    DuplicateConfig,
    find_duplicates,
    first_name_key,
    last_name_key,
    load_duplicate_config,
    normalize_email,
)
from leadflow.pipeline.errors import ConfigError
from leadflow.synth import duplicate_answer_persons, messy_existing_records, messy_leads_for_existing

LEAD_COLUMNS = (
    "lead_id", "source", "email", "first_name", "last_name", "company", "email_domain", "is_free_email", "created_at",
)
EXISTING_COLUMNS = ("record_id", "object", "email", "first_name", "last_name", "company")


def _leads(*rows: dict[str, object], index: list[object] | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([{c: r.get(c) for c in LEAD_COLUMNS} for r in rows], index=index, columns=list(LEAD_COLUMNS))
    free = frame.pop("is_free_email").astype("boolean")
    frame = frame.astype("string")
    frame.insert(LEAD_COLUMNS.index("is_free_email"), "is_free_email", free)
    return frame


def _existing(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in EXISTING_COLUMNS} for r in rows], columns=list(EXISTING_COLUMNS)).astype(
        "string"
    )


EXISTING = _existing(
    {"record_id": "00Q001", "object": "Lead", "email": "jane.doe@acme.com", "first_name": "Jane", "last_name": "Doe",
     "company": "Acme Inc."},
    {"record_id": "003001", "object": "Contact", "email": "Jane.Doe@ACME.com", "first_name": "Jane",
     "last_name": "Doe", "company": "Acme"},
    {"record_id": "003002", "object": "Contact", "email": "robert.smith@globex.com", "first_name": "Robert",
     "last_name": "Smith", "company": "Globex Corporation"},
    {"record_id": "00Q002", "object": "Lead", "email": "john.obrien@initech.io", "first_name": "John",
     "last_name": "O'Brien", "company": "Initech Laboratories"},
    {"record_id": "003003", "object": "Contact", "email": "mary.jones@gmail.com", "first_name": "Mary",
     "last_name": "Jones", "company": None},
)


def _one(lead: dict[str, object], existing: pd.DataFrame = EXISTING, **config: object) -> tuple[object, float]:
    out = find_duplicates(_leads(lead), existing, DuplicateConfig(**config))
    return out["duplicate_of"].iloc[0], float(out["duplicate_confidence"].iloc[0])


def _is_none(result: tuple[object, float]) -> bool:
    return result[0] is pd.NA and result[1] == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jane.Doe@Acme.com", "jane.doe@acme.com"),
        ("  jane.doe+webinar@acme.com ", "jane.doe@acme.com"),
        ("jane+a+b@acme.com", "jane@acme.com"),
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_email(value: str | None, expected: str | None) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    ("name", "last", "first"),
    [("O'Brien", "obrien", "obrien"), ("van der Berg", "vanderberg", "van"), ("J.", "j", "j"),
     ("Jean-Luc", "jeanluc", "jeanluc"), ("Müller", "muller", "muller"), (None, "", "")],
)
def test_name_keys(name: str | None, last: str, first: str) -> None:
    assert last_name_key(name) == last
    assert first_name_key(name) == first


@pytest.mark.parametrize(
    ("lead", "expected", "confidence"),
    [
        ({"email": "robert.smith@globex.com"}, "003002", 1.0),  # exact
        ({"email": "robert.smith+webinar@globex.com"}, "003002", 1.0),  # +tag
        ({"email": "ROBERT.SMITH@GLOBEX.COM "}, "003002", 1.0),  # case and spaces
        ({"email": "jane.doe@acme.com"}, "003001", 1.0),  # Contact preferred over the Lead with the same address
        ({"email": "nobody@acme.com"}, None, 0.0),
    ],
)
def test_exact_email(lead: dict[str, object], expected: str | None, confidence: float) -> None:
    got, conf = _one(lead)
    assert (got is pd.NA) if expected is None else (got == expected)
    assert conf == confidence


def test_prefer_lead_when_configured() -> None:
    assert _one({"email": "jane.doe@acme.com"}, prefer=["Lead", "Contact"]) == ("00Q001", 1.0)


def test_same_kind_smallest_record_id_wins() -> None:
    existing = _existing(
        {"record_id": "003009", "object": "Contact", "email": "a@x.com"},
        {"record_id": "003005", "object": "Contact", "email": "a@x.com"},
    )
    assert _one({"email": "a@x.com"}, existing) == ("003005", 1.0)


def test_a_lead_is_never_its_own_duplicate() -> None:
    # The Salesforce lead 00Q002 pulled back: only itself has the address, so nothing is found …
    assert _one({"lead_id": "00Q002", "source": "salesforce", "email": "john.obrien@initech.io", "first_name": "John",
                 "last_name": "O'Brien", "company": "Initech Laboratories"})[0] is pd.NA
    # … and the lead 00Q001 finds the contact with its address, not itself (even with Lead preferred).
    assert _one({"lead_id": "00Q001", "email": "jane.doe@acme.com"}, prefer=["Lead", "Contact"]) == ("003001", 1.0)


@pytest.mark.parametrize(
    ("lead", "expected", "confidence"),
    [
        # Name + company (normalized, then fuzzy), free-mail address.
        ({"email": "rsmith@gmail.com", "is_free_email": True, "first_name": "Robert", "last_name": "Smith",
          "company": "GLOBEX CORP"}, "003002", 0.95),
        ({"email": "rs@gmail.com", "is_free_email": True, "first_name": "Robert", "last_name": "smith",
          "company": "Initech Laboratoires"}, None, 0.0),  # another person: Smith is not at Initech
        ({"email": "jo@gmail.com", "is_free_email": True, "first_name": "John", "last_name": "OBrien",
          "company": "Initech Laboratoires"}, "00Q002", pytest.approx(0.95 * 0.95, abs=0.01)),  # company typo
        # Nickname and initial.
        ({"email": "bob@gmail.com", "is_free_email": True, "first_name": "Bob", "last_name": "Smith",
          "company": "Globex"}, "003002", 0.92),
        ({"email": "j@gmail.com", "is_free_email": True, "first_name": "J.", "last_name": "O'Brien",
          "company": "Initech Laboratories LLC"}, "00Q002", 0.90),
        # Name + corporate domain, no company given; with the company too it is stronger.
        ({"email": "rsmith@globex.com", "email_domain": "globex.com", "first_name": "Robert", "last_name": "Smith"},
         "003002", 0.95),
        ({"email": "rsmith@eu.globex.com", "email_domain": "eu.globex.com", "first_name": "Robert",
          "last_name": "Smith", "company": "Globex"}, "003002", 0.98),
    ],
)
def test_fuzzy(lead: dict[str, object], expected: str | None, confidence: object) -> None:
    got, conf = _one(lead)
    assert (got is pd.NA) if expected is None else (got == expected)
    assert conf == confidence
    assert conf < 1.0


def test_free_mail_domain_is_no_shared_company() -> None:
    # Mary Jones is known at gmail.com; another Mary Jones at gmail.com without a company is not her.
    lead = {"email": "mjones77@gmail.com", "email_domain": "gmail.com", "first_name": "Mary", "last_name": "Jones"}
    assert _one(lead)[0] is pd.NA
    assert _one({**lead, "is_free_email": True})[0] is pd.NA


@pytest.mark.parametrize("first", ["Roberta", "Richard", "Ruby", "", None])
def test_different_first_name_is_no_duplicate(first: str | None) -> None:
    lead = {"email": "x@globex.com", "email_domain": "globex.com", "first_name": first, "last_name": "Smith",
            "company": "Globex"}
    assert _is_none(_one(lead))


def test_below_threshold_is_none() -> None:
    # An initial and a company typo: 0.90 × ~0.95 ≈ 0.85 — under a 0.9 bar, nothing.
    lead = {"email": "j@gmail.com", "is_free_email": True, "first_name": "J.", "last_name": "O'Brien",
            "company": "Initech Laboratoires"}
    got, conf = _one(lead)
    assert got == "00Q002" and 0.8 < conf < 0.9
    assert _is_none(_one(lead, min_confidence=0.9))
    assert _is_none(_one({"email": "rsmith@globex.com", "first_name": "Robert", "last_name": "Smith"}, fuzzy=False))


def test_ambiguous_initial_is_none() -> None:
    existing = _existing(
        {"record_id": "003010", "object": "Contact", "first_name": "John", "last_name": "Smith", "company": "Acme"},
        {"record_id": "003011", "object": "Contact", "first_name": "James", "last_name": "Smith", "company": "Acme"},
    )
    assert _is_none(_one({"first_name": "J.", "last_name": "Smith", "company": "Acme"}, existing))
    assert _one({"first_name": "James", "last_name": "Smith", "company": "Acme"}, existing)[0] == "003011"


def test_within_batch() -> None:
    leads = _leads(
        {"lead_id": "00QB2", "email": "new@startup.io", "created_at": "2026-10-02T00:00:00Z"},
        {"lead_id": "00QB1", "email": "New+x@Startup.io", "created_at": "2026-10-01T00:00:00Z"},  # the original
        {"email": "new@startup.io", "created_at": None},
        {"email": "solo@other.io", "created_at": "2026-10-01T00:00:00Z"},
        {"email": "anon@other.io", "created_at": "2026-10-03T00:00:00Z"},
        {"email": "anon@other.io", "created_at": "2026-10-01T00:00:00Z"},  # original without a lead_id
        {"email": "jane.doe@acme.com"},  # the CRM has it: not a batch duplicate
        {"email": "jane.doe@acme.com"},
    )
    out = find_duplicates(leads, EXISTING)
    assert out["duplicate_of"].tolist() == [
        "00QB1", pd.NA, "00QB1", pd.NA, "email:anon@other.io", pd.NA, "003001", "003001",
    ]
    assert out["duplicate_confidence"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    off = find_duplicates(leads, EXISTING, DuplicateConfig(within_batch=False))
    assert off["duplicate_of"].isna().sum() == 6


def test_within_batch_same_lead_id_twice_is_one_record() -> None:
    leads = _leads({"lead_id": "00QX", "email": "a@b.io"}, {"lead_id": "00QX", "email": "a@b.io"})
    assert find_duplicates(leads, EXISTING)["duplicate_of"].isna().all()


@pytest.mark.parametrize(
    "existing",
    [pd.DataFrame(), _existing(), pd.DataFrame({"record_id": pd.Series([], dtype="string")})],
    ids=["no-columns", "no-rows", "some-columns"],
)
def test_empty_existing(existing: pd.DataFrame) -> None:
    leads = _leads({"email": "a@b.io", "first_name": "A", "last_name": "B", "company": "C"}, {"email": "A@b.io"})
    out = find_duplicates(leads, existing)
    assert out["duplicate_of"].tolist() == [pd.NA, "email:a@b.io"]


def test_shape_dtypes_and_index_preserved() -> None:
    leads = _leads(
        {"email": "robert.smith@globex.com"}, {"email": None}, {"email": "zzz@nowhere.io"},
        index=["x", 10, "x"],  # non-default and even duplicated
    )
    out = find_duplicates(leads, EXISTING)
    assert tuple(out.columns) == DUPLICATE_COLUMNS
    assert out.index.equals(leads.index)
    assert out["duplicate_of"].dtype == pd.StringDtype(na_value=pd.NA)
    assert out["duplicate_confidence"].dtype == "Float64"
    assert out["duplicate_of"].tolist() == ["003002", pd.NA, pd.NA]
    assert out["duplicate_confidence"].tolist() == [1.0, 0.0, 0.0]
    empty = find_duplicates(_leads(), EXISTING)
    assert len(empty) == 0 and tuple(empty.columns) == DUPLICATE_COLUMNS


def test_existing_records_may_carry_email_domain() -> None:
    existing = _existing({"record_id": "003020", "object": "Contact", "first_name": "Ana", "last_name": "Lima"})
    existing["email_domain"] = pd.array(["mail.acme.com"], dtype="string")
    lead = {"email": "alima@acme.com", "email_domain": "acme.com", "first_name": "Ana", "last_name": "Lima"}
    assert _one(lead, existing) == ("003020", 0.95)


@pytest.mark.parametrize(
    ("text", "yaml_path"),
    [
        ("min_confidence: 1.5\n", "min_confidence"),
        ("prefer: [Contact, Account]\n", "prefer[1]"),
        ("prefer: [Lead, Lead]\n", "prefer"),
        ("nicknames:\n  robert: [bob]\n  bobby: [bob]\n", "nicknames"),
        ("min_confidance: 0.9\n", "min_confidance"),
    ],
)
def test_config_errors_name_the_yaml_path(tmp_path: Path, text: str, yaml_path: str) -> None:
    path = tmp_path / "duplicates.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_duplicate_config(path)
    assert info.value.yaml_path == yaml_path
    assert str(path) in str(info.value)


def test_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "duplicates.yaml"
    path.write_text("min_confidence: 0.9\nprefer: [Lead]\nnicknames: {margaret: [peggy]}\n", encoding="utf-8")
    config = load_duplicate_config(path)
    assert config.min_confidence == 0.9 and config.prefer == ["Lead"] and config.nicknames == {"margaret": ["peggy"]}


def test_synthetic_precision_and_recall() -> None:
    existing = messy_existing_records(6_000, seed=3)
    leads = messy_leads_for_existing(existing, 12_000, seed=3)
    truth = ["true_duplicate_of", "true_person_id", "kind"]
    out = find_duplicates(leads.drop(columns=truth), existing.drop(columns=["person_id"]))
    found = out["duplicate_of"].notna()
    person = duplicate_answer_persons(out["duplicate_of"], leads, existing)
    right = (person == leads["true_person_id"]).fillna(False).astype(bool) & found
    assert found.sum() > 5_000
    assert right.sum() / found.sum() >= 0.99
    expected = leads["true_duplicate_of"].notna()
    assert (right & expected).sum() / expected.sum() >= 0.95
    assert not found[leads["kind"] == "new"].any()


def test_crowded_block_is_skipped() -> None:
    existing = _existing(
        *({"record_id": f"0030{i}", "object": "Contact", "first_name": "Test", "last_name": "Test", "company": "Umbrella"}
          for i in range(3))
    )
    leads = _leads(*({"first_name": "Test", "last_name": "Test", "company": "Umbrella Inc"} for _ in range(2)))
    assert find_duplicates(leads, existing)["duplicate_of"].tolist() == ["00300", "00300"]
    crowded = find_duplicates(leads, existing, DuplicateConfig(max_block_pairs=5))
    assert crowded["duplicate_of"].isna().all()


@pytest.mark.parametrize("n", [0, 1, 50])
def test_generators_shape_and_determinism(n: int) -> None:
    existing = messy_existing_records(n, seed=5)
    assert len(existing) == n
    assert list(existing.columns) == [*EXISTING_COLUMNS, "email_domain", "person_id"]
    assert existing["record_id"].is_unique
    pd.testing.assert_frame_equal(existing, messy_existing_records(n, seed=5))
    if n:
        leads = messy_leads_for_existing(existing, 3 * n, seed=5)
        assert list(leads.columns) == [*LEAD_COLUMNS, "true_duplicate_of", "true_person_id", "kind"]
        assert leads["is_free_email"].dtype == "boolean"
        pd.testing.assert_frame_equal(leads, messy_leads_for_existing(existing, 3 * n, seed=5))
    else:
        with pytest.raises(ValueError):
            messy_leads_for_existing(existing, 1)
