"""Country lookup: CLDR names in the common locales (Babel), ambiguity, and conservative typo repair."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pycountry
import pytest

import leadflow.stages.standardize_countries as countries
from leadflow.pipeline.config import parse_model
from leadflow.pipeline.errors import ConfigError
from leadflow.stages.standardize import STANDARDIZE, standardize
from leadflow.stages.standardize_countries import (
    CountryData,
    cldr_territory_names,
    country_code_of,
    country_data,
    country_table,
    repaired_country_code,
)

ISO_ALPHA2 = frozenset(c.alpha_2 for c in pycountry.countries)

# CLDR names that resolve only since the CLDR layer was added (pycountry's translations lack them).
CLDR_EXAMPLES = [
    ("الولايات المتحدة", "US"),  # Arabic
    ("كوريا الجنوبية", "KR"),
    ("फ़्रांस", "FR"),  # Hindi
    ("ब्राज़ील", "BR"),
    ("Hoa Kỳ", "US"),  # Vietnamese
    ("Đức", "DE"),
    ("Vương quốc Anh", "GB"),
    ("Νότια Κορέα", "KR"),  # Greek
    ("Κάτω Χώρες", "NL"),
    ("בריטניה", "GB"),  # Hebrew
    ("טייוואן", "TW"),
    ("Великобритания", "GB"),  # Russian
    ("ОАЭ", "AE"),
    ("러시아", "RU"),  # Korean
    ("대만", "TW"),
    ("阿拉伯联合酋长国", "AE"),  # Chinese
    ("俄羅斯", "RU"),
    ("イギリス", "GB"),  # Japanese
    ("ロシア", "RU"),
    ("ایالات متحده", "US"),  # Persian
    ("ตุรกี", "TR"),  # Thai
    ("Сполучені Штати", "US"),  # Ukrainian
    ("Rusia", "RU"),  # Spanish, Romanian, Indonesian
    ("Russie", "RU"),
    ("Ryssland", "RU"),
    ("Tyrkiet", "TR"),
    ("Tchéquia", "CZ"),
    ("Irã", "IR"),
    ("Iso-Britannia", "GB"),
    ("Țările de Jos", "NL"),
    ("Inggris Raya", "GB"),
    ("Hong Kong SAR China", "HK"),
    ("Myanmar (Burma)", "MM"),
]


@pytest.mark.parametrize(("value", "code"), CLDR_EXAMPLES)
def test_cldr_names_resolve(value: str, code: str) -> None:
    assert country_code_of(value) == code


@pytest.mark.parametrize(
    "value",
    [
        "Kosovo",  # CLDR XK: no ISO 3166-1 code
        "Косово",
        "Canarias",  # CLDR IC: part of Spain
        "Europa",  # CLDR 150
        "Union européenne",  # CLDR EU
        "Kongo",  # CD in Norwegian, CG in Polish
        "刚果",  # "刚果（金）" and "刚果（布）" without their parentheses
        "Mikronesia",  # FM in Finnish, the region 057 in Norwegian
    ],
)
def test_cldr_non_countries_and_shared_names_are_empty(value: str) -> None:
    assert country_code_of(value) is None


def test_configured_locales_cover_the_common_scripts() -> None:
    locales = set(country_data().cldr_locales)
    assert len(locales) == 30
    assert {"ar", "hi", "vi", "el", "he", "ru", "ko", "zh", "zh_Hant", "ja", "de", "fr", "es", "pl"} <= locales


@pytest.mark.parametrize("locale", country_data().cldr_locales)
def test_every_cldr_name_resolves_right_or_empty(locale: str) -> None:
    names = {code: name for code, name in cldr_territory_names(locale).items() if code in ISO_ALPHA2}
    outcomes = {code: country_code_of(name) for code, name in names.items()}
    wrong = {code: (names[code], got) for code, got in outcomes.items()
             if got is not None and got != code}
    assert wrong == {}
    right = sum(got == code for code, got in outcomes.items())
    assert right >= 0.99 * len(names) and len(names) > 240


def test_bad_cldr_locale_names_the_yaml_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model(CountryData, {"cldr_locales": ["xx_NOPE"]}, Path("country_aliases.yaml"))
    assert info.value.yaml_path == "cldr_locales"


def test_country_table_is_built_once() -> None:
    assert country_table() is country_table()


# ----------------------------------------------------------------------------------------------------- typo repair


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Untied States", "US"),
        ("Untied Kingdom", "GB"),
        ("Germnay", "DE"),
        ("Frnace", "FR"),
        ("Brazl", "BR"),
        ("Austrai", "AT"),  # one swap from Austria; Australia is two edits off
        ("Autralia", "AU"),
        ("Phillipines", "PH"),  # two edits in a long name
        ("Nwe Zealand", "NZ"),
        ("  SWITZERLNAD ", "CH"),
        ("Belguim", "BE"),
    ],
)
def test_typos_repaired(value: str, code: str) -> None:
    assert country_code_of(value) == code


@pytest.mark.parametrize(
    "value",
    [
        "Austrlia",  # Austria + l, or Australia - a
        "Nigera",  # Niger + a, or Nigeria - i
        "Malia",  # Mali + a, or Malta l→i
        "Malwi",  # Malawi - a, or Mali + w
        "Irann",  # Iran, Iraq: names under five letters are never repair targets
        "Ieland",  # Ireland - r, or Iceland c→e
        "Chila",  # Chile or China
        "Ambia",  # Zambia or Gambia
        "Slovania",  # Slovenia or Slovakia
        "Dominican",  # Dominica's adjective, or the Dominican Republic
        "Koreaa",  # nearest to an ambiguous name
        "Slect",  # nearest to a placeholder
        "Eurpoe",  # nearest to a region
        "Texas",
        "Ontario",
        "Atlantis",
        "Canadian",
        "Germ4ny",  # not letters only
    ],
)
def test_typo_repair_leaves_doubtful_values_empty(value: str) -> None:
    assert country_code_of(value) is None


def _one_slip_variants(name: str) -> set[str]:
    """Every deletion and every swap of neighbouring letters."""
    deletions = {name[:i] + name[i + 1 :] for i in range(len(name))}
    swaps = {name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(len(name) - 1)}
    return (deletions | swaps) - {name}


def test_one_slip_typos_of_english_names_never_resolve_wrong() -> None:
    """A typo one slip from two countries' names stays empty; one from a single country's resolves to it or nothing."""
    meant: dict[str, set[str]] = {}
    for country in pycountry.countries:
        for name in {country.name, getattr(country, "common_name", country.name)}:
            key = countries._name_key(name)
            if key.isascii() and len(key) >= countries.TYPO_MIN_LENGTH:
                for variant in _one_slip_variants(key):
                    meant.setdefault(variant, set()).add(country.alpha_2)
    table = country_table()
    typos = {variant: codes for variant, codes in meant.items() if variant not in table}
    repaired = {variant: repaired_country_code(variant) for variant in typos}
    wrong = {v: (typos[v], got) for v, got in repaired.items() if got is not None and (typos[v] != {got})}
    assert wrong == {}
    single = [v for v, codes in typos.items() if len(codes) == 1 and len(v) >= countries.TYPO_MIN_LENGTH]
    assert sum(repaired[v] is not None for v in single) >= 0.85 * len(single)


def test_typo_repair_runs_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    repair = countries.repaired_country_code

    def counting(key: str) -> str | None:
        calls.append(key)
        return repair(key)

    monkeypatch.setattr(countries, "repaired_country_code", counting)
    values = ["Germnay", "Frnace", "Germany"] * 400
    frame = pd.DataFrame({c: pd.Series([None] * len(values), dtype="string") for c in STANDARDIZE.reads})
    frame["country"] = pd.Series(values, dtype="string")
    out = standardize(frame, None)  # type: ignore[arg-type]  # the stage does not read its rules
    assert out["country_code"].tolist() == ["DE", "FR", "DE"] * 400
    assert sorted(calls) == ["frnace", "germnay"]


@pytest.mark.parametrize(("value", "expected"), [("NGA", "NG"), ("Nga", None), ("nga", None), ("Nigeria", "NG"),
                                                 ("DEU", "DE"), ("Deu", "DE")])
def test_a_code_that_is_another_countrys_name_is_read_as_the_code_only_in_capitals(value: str,
                                                                                     expected: str | None) -> None:
    # Vietnamese CLDR "Nga" is Russia; NGA is Nigeria's alpha-3 code: empty beats wrong unless typed as a code
    assert country_code_of(value) == expected
