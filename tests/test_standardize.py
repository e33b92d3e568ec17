"""The standardize stage: every rule on tiny frames, plus the unique-value mapping helper."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import leadflow.stages.standardize as standardize_module
from leadflow.pipeline.config import ConsentPolicy, Rules, default_consent_policy, parse_model
from leadflow.pipeline.errors import ConfigError
from leadflow.pipeline.schema import DEPARTMENTS, SENIORITIES, dtype_of
from leadflow.stages.standardize import STANDARDIZE, country_table, standardize
from leadflow.pipeline.uniques import compute_many, map_unique, map_unique_multi


@cache
def rules() -> Rules:
    try:
        return Rules(consent=default_consent_policy())
    except ConfigError:  # the default policy file is maintained elsewhere; the stage does not use it
        return Rules(consent=ConsentPolicy(opt_in_countries=["DE"]))


def run(**columns: list[str | None]) -> pd.DataFrame:
    """Standardize a frame with the given input columns (others missing), checking the stage contract."""
    n = len(next(iter(columns.values())))
    index = pd.RangeIndex(100, 100 + n)
    frame = pd.DataFrame(
        {c: pd.Series(columns.get(c, [None] * n), index=index, dtype="string") for c in STANDARDIZE.reads}
    )
    out = standardize(frame, rules())
    assert list(out.columns) == list(STANDARDIZE.writes)
    assert out.index.equals(frame.index)
    for column in out.columns:
        assert str(out[column].dtype) == dtype_of(column), column
    return out


def one(column: str, value: str | None, **others: str | None) -> object:
    """The single output value of `column` for one lead."""
    inputs = {k: [v] for k, v in others.items()}
    out = run(**inputs)
    result = out[column].iloc[0]
    return None if pd.isna(result) else result


# ------------------------------------------------------------------------------------------------------- contract


def test_declaration() -> None:
    assert STANDARDIZE.name == "standardize"
    assert STANDARDIZE.reads == (
        "email", "first_name", "last_name", "company", "title", "phone", "country", "state", "created_at", "updated_at"
    )  # fmt: skip
    assert STANDARDIZE.writes == (
        "email", "first_name", "last_name", "company", "country_code", "state_code", "phone_e164", "email_valid",
        "email_domain", "is_free_email", "seniority", "department", "created_at", "updated_at",
    )  # fmt: skip


def test_rows_in_equal_rows_out_through_apply() -> None:
    frame = pd.DataFrame(
        {c: pd.Series(["x", None, "Germany", ""], dtype="string") for c in STANDARDIZE.reads},
        index=pd.Index([7, 3, 3, 11]),
    )
    frame["lead_id"] = pd.Series(["a", "b", "c", "d"], index=frame.index, dtype="string")
    out = STANDARDIZE.apply(frame, rules())
    assert len(out) == len(frame)
    assert out.index.equals(frame.index)
    assert out["lead_id"].tolist() == ["a", "b", "c", "d"]


def test_empty_frame() -> None:
    frame = pd.DataFrame({c: pd.Series([], dtype="string") for c in STANDARDIZE.reads})
    out = standardize(frame, rules())
    assert list(out.columns) == list(STANDARDIZE.writes) and len(out) == 0


def test_all_missing_row() -> None:
    out = run(email=[None])
    assert out["seniority"].iloc[0] == "unknown" and out["department"].iloc[0] == "other"
    for column in STANDARDIZE.writes:
        if column not in ("seniority", "department"):
            assert pd.isna(out[column].iloc[0]), column


# ------------------------------------------------------------------------------------------------------ countries


@pytest.mark.parametrize(
    ("value", "code"),
    [
        # English names, any case and spacing, official and short forms
        ("Germany", "DE"),
        ("  GERMANY.  ", "DE"),
        ("united   states", "US"),
        ("United States of America", "US"),
        ("Korea, Republic of", "KR"),
        ("Republic of Korea", "KR"),
        ("Russian Federation", "RU"),
        ("The Netherlands", "NL"),
        ("Trinidad & Tobago", "TT"),
        ("St. Lucia", "LC"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d’Ivoire", "CI"),
        ("Bolivia, Plurinational State of", "BO"),
        ("British Virgin Islands", "VG"),
        ("Namibia", "NA"),
        # native-language names, with and without accents
        ("Deutschland", "DE"),
        ("España", "ES"),
        ("Espana", "ES"),
        ("Österreich", "AT"),
        ("Osterreich", "AT"),
        ("Schweiz", "CH"),
        ("Suisse", "CH"),
        ("Nederland", "NL"),
        ("Sverige", "SE"),
        ("Polska", "PL"),
        ("Brasil", "BR"),
        ("México", "MX"),
        ("Éire", "IE"),
        ("Türkiye", "TR"),
        ("Italia", "IT"),
        ("Norge", "NO"),
        ("Danmark", "DK"),
        ("Suomi", "FI"),
        ("België", "BE"),
        ("Belgique", "BE"),
        ("Česko", "CZ"),
        ("Magyarország", "HU"),
        ("Ελλάδα", "GR"),
        ("日本", "JP"),
        ("Россия", "RU"),
        # codes
        ("de", "DE"),
        ("DEU", "DE"),
        ("USA", "US"),
        ("gbr", "GB"),
        # aliases
        ("U.S.A.", "US"),
        ("US of A", "US"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("Wales", "GB"),
        ("Northern Ireland", "GB"),
        ("Great Britain", "GB"),
        ("Holland", "NL"),
        ("UAE", "AE"),
        ("South Korea", "KR"),
        ("North Korea", "KP"),
        ("Ivory Coast", "CI"),
        ("Russia", "RU"),
        ("Czech Republic", "CZ"),
        ("Vietnam", "VN"),
        ("Taiwan", "TW"),
        ("Iran", "IR"),
        ("Turkey", "TR"),
        ("DRC", "CD"),
        # typos, when one country is clearly meant (more in tests/test_standardize_countries.py)
        ("Germny", "DE"),
    ],
)
def test_country_resolves(value: str, code: str) -> None:
    assert one("country_code", None, country=value) == code


@pytest.mark.parametrize(
    "value",
    [
        # placeholders and junk
        "Select",
        "-- Select --",
        "Please select",
        "N/A",
        "n.a.",
        "NA",  # "not available", not Namibia: see reference/country_aliases.yaml
        "unknown",
        "-",
        "none",
        "null",
        "test",
        "12345",
        "other",
        "Europe",
        "",
        "   ",
        # ambiguous: never guessed
        "Korea",
        "Congo",
        "Virgin Islands",
        "America",
        # not a country, or one slip from two (typo repair leaves those empty)
        "Austrlia",
        "Kosovo",
        "Atlantis",
        "Bavaria",
    ],
)
def test_country_empty_rather_than_wrong(value: str) -> None:
    assert one("country_code", None, country=value) is None


def test_country_table_has_no_guessable_conflicts() -> None:
    table = country_table()
    assert table["korea"] is None and table["na"] is None
    assert all(code is None or len(code) == 2 for code in table.values())


# --------------------------------------------------------------------------------------------------------- states


@pytest.mark.parametrize(
    ("country", "state", "code"),
    [
        ("US", "California", "CA"),
        ("USA", "california", "CA"),
        ("United States", "CA", "CA"),
        ("US", "ca", "CA"),
        ("US", "Calif.", "CA"),
        ("US", "N.Y.", "NY"),
        ("US", "Washington DC", "DC"),
        ("Canada", "Ontario", "ON"),
        ("Canada", "Québec", "QC"),
        ("Canada", "quebec", "QC"),
        ("CA", "BC", "BC"),
        ("Australia", "NSW", "NSW"),
        ("Australia", "Victoria", "VIC"),
        ("AU", "WA", "WA"),
        ("Deutschland", "Bayern", "BY"),
        ("Germany", "Bavaria", "BY"),
        ("Mexico", "Nuevo Leon", "NLE"),
        # no country: only a name or code unique across US, CA and AU
        (None, "California", "CA"),
        (None, "Ontario", "ON"),
        (None, "Northern Territory", "NT"),
        ("N/A", "Texas", "TX"),
    ],
)
def test_state_resolves(country: str | None, state: str, code: str) -> None:
    assert one("state_code", None, country=country, state=state) == code


@pytest.mark.parametrize(
    ("country", "state"),
    [
        (None, "WA"),  # Washington or Western Australia
        (None, "NT"),  # Northwest Territories or Northern Territory
        (None, "Bayern"),  # not a US/CA/AU subdivision
        ("US", "Ontario"),
        ("US", "XX"),
        ("US", "-"),
        ("Germany", "California"),
        ("US", None),
    ],
)
def test_state_empty_rather_than_wrong(country: str | None, state: str | None) -> None:
    assert one("state_code", None, country=country, state=state) is None


# --------------------------------------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    ("country", "phone", "e164"),
    [
        ("US", "(415) 555-2671", "+14155552671"),
        ("US", "(415) 555-2671 x123", "+14155552671"),
        ("US", "+1 (415) 555-2671 ext. 5", "+14155552671"),
        ("US", "415.555.2671", "+14155552671"),
        ("US", "tel: +1-415-555-2671", "+14155552671"),
        (None, "+44 20 7946 0958", "+442079460958"),
        ("UK", "020 7946 0958", "+442079460958"),
        ("Germany", "030 1234567", "+49301234567"),
        (None, "0049 30 1234567", "+49301234567"),
        ("US", "0049 30 1234567", "+49301234567"),
    ],
)
def test_phone_e164(country: str | None, phone: str, e164: str) -> None:
    assert one("phone_e164", None, country=country, phone=phone) == e164


@pytest.mark.parametrize(
    ("country", "phone"),
    [
        ("US", "n/a"),
        ("US", "000"),
        ("US", "123"),
        ("US", "+1 000 000 0000"),
        (None, "4155552671"),  # no country, no +: the region is unknown
        ("US", ""),
        ("US", None),
    ],
)
def test_phone_invalid_is_empty(country: str | None, phone: str | None) -> None:
    assert one("phone_e164", None, country=country, phone=phone) is None


# --------------------------------------------------------------------------------------------------------- emails


@pytest.mark.parametrize(
    ("raw", "email", "valid", "domain", "free"),
    [
        ("  John.Doe@Acme.COM ", "john.doe@acme.com", True, "acme.com", False),
        ("jane@gmail.com", "jane@gmail.com", True, "gmail.com", True),
        ("x@googlemail.com", "x@googlemail.com", True, "googlemail.com", True),
        ("x@yahoo.co.uk", "x@yahoo.co.uk", True, "yahoo.co.uk", True),
        ("x@yahoo.de", "x@yahoo.de", True, "yahoo.de", True),
        ("x@hotmail.fr", "x@hotmail.fr", True, "hotmail.fr", True),
        ("x@gmx.net", "x@gmx.net", True, "gmx.net", True),
        ("x@web.de", "x@web.de", True, "web.de", True),
        ("x@proton.me", "x@proton.me", True, "proton.me", True),
        ("x@qq.com", "x@qq.com", True, "qq.com", True),
        ("x@yahoo.acme.com", "x@yahoo.acme.com", True, "yahoo.acme.com", False),
        ("not-an-email", "not-an-email", False, None, None),
        ("bad@", "bad@", False, None, None),
        ("a@b..com", "a@b..com", False, None, None),
        ("JOHN DOE@ACME.COM", "john doe@acme.com", False, None, None),
        ("", None, None, None, None),
        ("   ", None, None, None, None),
        (None, None, None, None, None),
    ],
)
def test_email(raw: str | None, email: str | None, valid: bool | None, domain: str | None, free: bool | None) -> None:
    out = run(email=[raw])
    row = out.iloc[0]
    assert (None if pd.isna(row["email"]) else row["email"]) == email
    assert (None if pd.isna(row["email_valid"]) else bool(row["email_valid"])) == valid
    assert (None if pd.isna(row["email_domain"]) else row["email_domain"]) == domain
    assert (None if pd.isna(row["is_free_email"]) else bool(row["is_free_email"])) == free


# --------------------------------------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("title", "seniority", "department"),
    [
        ("CEO", "c_level", "executive"),
        ("C.E.O.", "c_level", "executive"),
        ("Chief Revenue Officer", "c_level", "sales"),
        ("CFO", "c_level", "finance"),
        ("CTO", "c_level", "engineering"),
        ("SVP Sales", "vp", "sales"),
        ("VP, People", "vp", "hr"),
        ("Vice President of Marketing", "vp", "marketing"),
        ("Head of Marketing", "director", "marketing"),
        ("Dir. of Finance", "director", "finance"),
        ("IT Manager", "manager", "it"),
        ("Sr. Software Engineer", "individual", "engineering"),
        ("Founder", "c_level", "executive"),
        ("Co-Founder", "c_level", "executive"),
        ("Owner", "c_level", "executive"),
        ("Product Owner", "individual", "engineering"),
        ("President", "c_level", "executive"),
        ("Account Executive", "individual", "sales"),
        ("Executive Assistant to the CEO", "individual", "executive"),
        ("RevOps Manager", "manager", "operations"),
        ("People Operations Lead", "manager", "hr"),
        ("intern", "individual", "other"),
        ("Marketing Intern", "individual", "marketing"),
        ("Student", "individual", "other"),
        ("Geschäftsführer", "c_level", "executive"),
        ("Consultant", "individual", "other"),
        ("", "unknown", "other"),
        ("n/a", "unknown", "other"),
        ("-", "unknown", "other"),
        (None, "unknown", "other"),
    ],
)
def test_title(title: str | None, seniority: str, department: str) -> None:
    out = run(title=[title])
    assert (out["seniority"].iloc[0], out["department"].iloc[0]) == (seniority, department)
    assert seniority in SENIORITIES and department in DEPARTMENTS


# ---------------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("first", "last", "first_out", "last_out"),
    [
        ("jOHN", "sMITH", "John", "Smith"),
        ("JOHN", "SMITH", "John", "Smith"),
        ("  john   paul ", "o'brien", "John Paul", "O'Brien"),
        ("Mary", "O'BRIEN", "Mary", "O'Brien"),
        ("DeShawn", "McDonald", "DeShawn", "McDonald"),
        ("anna", "mcdonald", "Anna", "McDonald"),
        ("Piet", "van der berg", "Piet", "van der Berg"),
        ("PIET", "VAN DER BERG", "Piet", "van der Berg"),
        ("Jan", "van der Berg", "Jan", "van der Berg"),
        ("jean-luc", "smith-jones", "Jean-Luc", "Smith-Jones"),
        ("ÉMILIE", "GARCÍA", "Émilie", "García"),
        ("DE ANDRE", "d'angelo", "De Andre", "D'Angelo"),
        ("", None, None, None),
    ],
)
def test_names(first: str | None, last: str | None, first_out: str | None, last_out: str | None) -> None:
    out = run(first_name=[first], last_name=[last])
    got_first, got_last = out["first_name"].iloc[0], out["last_name"].iloc[0]
    assert (None if pd.isna(got_first) else got_first) == first_out
    assert (None if pd.isna(got_last) else got_last) == last_out


@pytest.mark.parametrize(
    ("company", "expected"),
    [("  Acme   Inc. ", "Acme Inc."), ("ACME GMBH", "ACME GMBH"), ("acme\u00a0corp", "acme corp"), ("", None)],
)
def test_company_trimmed_not_recased(company: str, expected: str | None) -> None:
    assert one("company", None, company=company) == expected


# ----------------------------------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-04T10:00:00+02:00", "2026-03-04T08:00:00Z"),
        ("2026-03-04T10:00:00Z", "2026-03-04T10:00:00Z"),
        ("2026-03-04T10:00:00.123-05:30", "2026-03-04T15:30:00Z"),
        ("2026-03-04 10:00", "2026-03-04T10:00:00Z"),
        ("2026-03-04", "2026-03-04T00:00:00Z"),
        ("03/04/2026", "2026-03-04T00:00:00Z"),
        ("3/4/2026 1:05 PM", "2026-03-04T13:05:00Z"),
        ("04.03.2026", "2026-03-04T00:00:00Z"),
        ("1772618400", "2026-03-04T10:00:00Z"),
        ("1772618400000", "2026-03-04T10:00:00Z"),
        ("  2026-03-04T10:00:00Z ", "2026-03-04T10:00:00Z"),
        # unparseable: kept, trimmed, for the quality gate to quarantine
        (" not a date ", "not a date"),
        ("2026-02-30", "2026-02-30"),
        ("13/45/2026", "13/45/2026"),
        ("now", "now"),  # pandas would read these as the current time
        ("today", "today"),
        ("yesterday", "yesterday"),
        ("", None),
        (None, None),
    ],
)
def test_timestamps(raw: str | None, expected: str | None) -> None:
    out = run(created_at=[raw], updated_at=[raw])
    for column in ("created_at", "updated_at"):
        got = out[column].iloc[0]
        assert (None if pd.isna(got) else got) == expected


# ------------------------------------------------------------------------------------------------- unique mapping


def test_map_unique_computes_each_value_once() -> None:
    calls: list[str] = []

    def fn(value: str) -> str:
        calls.append(value)
        return value.upper()

    series = pd.Series(["a", None, "b", "a", "a"], index=[9, 8, 7, 6, 5], dtype="string", name="x")
    out = map_unique(series, fn)
    assert sorted(calls) == ["a", "b"]
    assert out.index.equals(series.index) and out.name == "x" and str(out.dtype) == "string"
    assert out.tolist() == ["A", pd.NA, "B", "A", "A"]


@pytest.mark.skipif(os.name != "posix", reason="process pool uses fork")
def test_map_unique_across_processes_matches_in_process() -> None:
    series = pd.Series([f"v{i % 50}" for i in range(200)] + [None], dtype="string")
    parallel = map_unique(series, lambda v: v[::-1], workers=2, parallel_min=1)
    serial = map_unique(series, lambda v: v[::-1], workers=1)
    assert parallel.equals(serial)
    assert compute_many(list(range(10)), lambda v: v * 2, workers=2, parallel_min=1) == list(range(0, 20, 2))


def test_map_unique_multi() -> None:
    series = pd.Series(["a@x.io", None, "b"], dtype="string")
    out = map_unique_multi(series, lambda v: ("@" in v, v.upper()), ("has_at", "upper"), dtypes=("boolean", "string"))
    assert list(out.columns) == ["has_at", "upper"]
    assert out["has_at"].tolist() == [True, pd.NA, False]
    assert out["upper"].tolist() == ["A@X.IO", pd.NA, "B"]


# ------------------------------------------------------------------------------------------------- reference data


@pytest.mark.parametrize(
    ("model", "data", "yaml_path"),
    [
        ("CountryData", {"aliases": {"XX": ["nowhere"]}}, "aliases"),
        ("CountryData", {"languages": ["xx_NOPE"]}, "languages"),
        ("SubdivisionData", {"aliases": {"US": {"calif": "ZZ"}}}, "aliases"),
        ("TitleData", {"seniority": [{"level": "boss", "patterns": []}], "department": []}, "seniority[0].level"),
        ("TitleData", {"seniority": [], "department": [{"department": "sales", "patterns": ["("]}]},
         "department[0].patterns[0]"),
    ],
)
def test_bad_reference_data_names_the_yaml_path(model: str, data: dict[str, object], yaml_path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(getattr(standardize_module, model), data, Path("reference.yaml"))
    assert info.value.yaml_path == yaml_path


def test_clean_text_prefilter_changes_nothing() -> None:
    """Above its threshold `clean_text` cleans only the values its Arrow prefilter flags: the result equals cleaning
    every value, for every kind of whitespace Python, Unicode or the pattern knows, mixed into mostly clean values."""
    from leadflow.stages.standardize import _clean_all, clean_text

    rng = np.random.default_rng(0)
    alphabet = [*"ab ", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2000", "\u200a",
                "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", "\u180e", "é"]
    messy = ["".join(rng.choice(alphabet, rng.integers(0, 6))) for _ in range(3_000)]
    values = [f"word {i}" for i in range(20_000)] + messy + [None] * 50
    for series in (pd.Series(values, dtype="string"), pd.Series(values, dtype=object),
                   pd.Series(messy, dtype="string", index=np.arange(len(messy)) * 3)):
        pd.testing.assert_series_equal(clean_text(series), _clean_all(series.astype("string")))
