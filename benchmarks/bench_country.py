"""How free-text countries resolve: CLDR territory names per locale, common typos, and near-misses.

    python benchmarks/bench_country.py
    python benchmarks/bench_country.py --show 10        # list up to 10 wrong and empty names per locale

For each CLDR locale configured in reference/country_aliases.yaml (`cldr_locales`), every territory with an ISO
3166-1 code is looked up by its CLDR name (Babel's `Locale(locale).territories`): the share resolved to its own code
(right), to another code (wrong: must be 0 or explained below), and left empty. Then TYPOS, realistic misspellings of
country names, must come out right or empty, and NEAR_MISSES, values one slip from two countries or from a name that
is not a country, must come out empty (or right where a code is given), never wrong. Also prints the table's build
time in a fresh process. Exits 1 when a typo or near-miss resolves to a wrong code.

Known wrong names (explained): Vietnamese "Nga" (Russia) is NGA, Nigeria's ISO alpha-3 code, which takes precedence.
Known empty names: Spanish "Congo" (CG; "Congo" is ambiguous by design), "Kongo" (CD in Norwegian, CG in Polish) and
"Mikronesia"/"Mikronésie" (FM in Finnish, Indonesian and Czech; the region Micronesia in Norwegian and others).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable

import pycountry

from leadflow.stages.standardize_countries import (
    cldr_territory_names,
    country_code_of,
    country_data,
    country_table,
)

# Realistic misspellings (swapped, dropped, doubled or wrong letters) and the code they mean.
TYPOS: tuple[tuple[str, str], ...] = (
    ("Untied States", "US"), ("Unted States", "US"), ("United Sates", "US"), ("Untied Kingdom", "GB"),
    ("Unites Kingdom", "GB"), ("Germnay", "DE"), ("Gemany", "DE"), ("Grmany", "DE"), ("Frnace", "FR"),
    ("Farnce", "FR"), ("Brazl", "BR"), ("Barzil", "BR"), ("Austrai", "AT"), ("Autsria", "AT"), ("Austrlaia", "AU"),
    ("Autralia", "AU"), ("Canda", "CA"), ("Cnada", "CA"), ("Mexcio", "MX"), ("Inida", "IN"), ("Indai", "IN"),
    ("Chnia", "CN"), ("Japna", "JP"), ("Itlay", "IT"), ("Spian", "ES"), ("Netherlnads", "NL"), ("Nehterlands", "NL"),
    ("Belguim", "BE"), ("Switzerlnad", "CH"), ("Swtizerland", "CH"), ("Sweeden", "SE"), ("Norwya", "NO"),
    ("Denmakr", "DK"), ("Finalnd", "FI"), ("Polnad", "PL"), ("Portgual", "PT"), ("Irleand", "IE"),
    ("Phillipines", "PH"), ("Philipines", "PH"), ("Singapoor", "SG"), ("Isreal", "IL"), ("Argentia", "AR"),
    ("Colomiba", "CO"), ("Venezuala", "VE"), ("Guatamala", "GT"), ("Nwe Zealand", "NZ"), ("South Afirca", "ZA"),
    ("Saudi Arbia", "SA"), ("Egpyt", "EG"), ("Niegria", "NG"), ("Pakistna", "PK"), ("Bangladsh", "BD"),
    ("Indonesa", "ID"), ("Malaysa", "MY"), ("Thialand", "TH"), ("Vietnma", "VN"), ("Hong Knog", "HK"),
    ("Tawian", "TW"), ("Ukriane", "UA"), ("Romaina", "RO"), ("Hungray", "HU"), ("Slovakai", "SK"), ("Croatai", "HR"),
    ("Ethopia", "ET"), ("Tanzaina", "TZ"), ("Zimbabew", "ZW"), ("Luxemburg", "LU"), ("Columbia", "CO"),
)

# One slip from two countries, from a short name, or from no country at all: empty, or the code given, never wrong.
NEAR_MISSES: tuple[tuple[str, str | None], ...] = (
    ("Austrlia", None),  # Austria + l, or Australia - a
    ("Australa", "AU"),
    ("Nigera", None),  # Niger + a, or Nigeria - i
    ("Nigerai", "NG"),
    ("Malia", None),  # Mali + a, or Malta with l→i
    ("Malwi", None),  # Malawi - a, or Mali + w
    ("Irann", None),  # Iran and Iraq are too short to repair towards
    ("Iraqq", None),
    ("Ieland", None),  # Ireland - r, or Iceland with c→e
    ("Chila", None),  # Chile or China
    ("Ambia", None),  # Zambia or Gambia
    ("Tongo", None),  # Tonga, Togo, Congo
    ("Slovenija", "SI"),
    ("Slovania", None),  # Slovenia or Slovakia
    ("Dominican", None),  # Dominica's adjective, or the Dominican Republic
    ("Guinae", "GN"),
    ("Koreaa", None),  # Korea is ambiguous itself
    ("Amercia", None),  # America: the continents, or the United States
    ("Eurpoe", None),  # Europe: no country
    ("Slect", None),  # a placeholder misspelt
    ("Bavaria", None),
    ("Texas", None),
    ("Ontario", None),
    ("Atlantis", None),
    ("Kosovo", None),  # CLDR XK: no ISO 3166-1 code
    ("Canadian", None),
)


def classify(value: str, expected: str | None) -> str:
    got = country_code_of(value)
    if got is None:
        return "empty"
    return "right" if got == expected else "wrong"


def share(counts: dict[str, int], total: int) -> str:
    return "  ".join(f"{kind} {100 * counts[kind] / total:5.1f}%" for kind in ("right", "wrong", "empty"))


def report_locales(locales: Iterable[str], show: int) -> None:
    iso = {c.alpha_2 for c in pycountry.countries}
    print(f"{'locale':<9}{'names':>6}   right / wrong / empty")
    totals = {"right": 0, "wrong": 0, "empty": 0}
    for locale in locales:
        names = {code: name for code, name in cldr_territory_names(locale).items() if code in iso}
        outcomes = {code: classify(name, code) for code, name in names.items()}
        counts = {kind: sum(o == kind for o in outcomes.values()) for kind in ("right", "wrong", "empty")}
        print(f"{locale:<9}{len(names):>6}   {share(counts, len(names))}")
        totals = {kind: totals[kind] + counts[kind] for kind in totals}
        for kind in ("wrong", "empty"):
            listed = [f"{names[c]} ({c}→{country_code_of(names[c]) or '∅'})" for c, o in outcomes.items() if o == kind]
            if listed and (show or kind == "wrong"):
                print(f"{'':<18}{kind}: " + ", ".join(listed[: max(show, 10)]))
    print(f"{'all':<9}{sum(totals.values()):>6}   {share(totals, sum(totals.values()))}")


def report_list(title: str, cases: Iterable[tuple[str, str | None]]) -> int:
    cases = list(cases)
    outcomes = [(value, expected, classify(value, expected)) for value, expected in cases]
    counts = {kind: sum(o == kind for *_, o in outcomes) for kind in ("right", "wrong", "empty")}
    print(f"{title:<15}{len(cases):>6}   {share(counts, len(cases))}")
    for value, expected, outcome in outcomes:
        if outcome != "right" and (expected is not None or outcome == "wrong"):
            print(f"{'':<18}{outcome}: {value!r} (expected {expected or '∅'}, got {country_code_of(value) or '∅'})")
    return counts["wrong"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", type=int, default=0, help="list up to N empty names per locale (wrong always)")
    args = parser.parse_args()

    data = country_data()
    wall, cpu = time.perf_counter(), time.process_time()
    table = country_table()
    print(f"country table: {len(table)} keys built in {time.perf_counter() - wall:.3f} s "
          f"({time.process_time() - cpu:.3f} s CPU), once per process\n")
    report_locales(data.cldr_locales, args.show)
    print()
    wrong = report_list("typos", TYPOS)
    wrong += report_list("near-misses", NEAR_MISSES)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
