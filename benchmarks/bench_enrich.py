"""The whole enrich stage over N synthetic leads against M accounts, E existing CRM records and a firmographics file.

    python benchmarks/bench_enrich.py --leads 100000 --accounts 100000
    python benchmarks/bench_enrich.py --leads 1000000 --accounts 100000 --existing 500000

Target on this 2-core machine: 1,000,000 leads × 100,000 accounts matched in ≤ 60 s with peak RSS ≤ 3 GB. Prints the
stage's total time and RSS, then each part timed on its own (matching by phase, duplicates, address flags), the match
rate by method, and where firmographics came from. Leads: `synth.messy_leads_for_accounts` (~50% an account's domain,
~20% only a re-typed company name, ~30% no account); a third of the non-account company domains are in the
reference file; no HTTP provider (its calls are bounded by `max_calls_per_run`, not by the lead count).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from leadflow.identity.address_flags import flag_addresses
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.identity.duplicates import find_duplicates
from leadflow.identity.enrichment import Reference
from leadflow.identity.matching import match_accounts
from leadflow.pipeline.schema import conform
from leadflow.stages import ENRICH
from leadflow.stages.enrich import company_domains
from leadflow.synth import messy_accounts, messy_existing_records, messy_leads_for_accounts

INDUSTRIES = ("Software", "Manufacturing", "Retail", "Financial Services", "Healthcare", "Education", "Media")


def firmographic_accounts(n: int, seed: int) -> pd.DataFrame:
    accounts = messy_accounts(n, seed=seed)
    rng = np.random.default_rng(seed)
    known = rng.random(n) < 0.8
    accounts["annual_revenue"] = pd.array(
        np.where(known, accounts["employees"].to_numpy(dtype=float, na_value=np.nan) * rng.uniform(1e5, 3e5, n),
                 np.nan), dtype="Float64")
    accounts["industry"] = pd.array(np.where(known, np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), n)], None),
                                    dtype="string")
    return accounts


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    accounts = firmographic_accounts(args.accounts, args.seed)
    generated = messy_leads_for_accounts(accounts, args.leads, seed=args.seed)
    existing = messy_existing_records(args.existing, seed=args.seed)
    leads = conform(generated.drop(columns=["true_account_id", "kind"]))
    leads["lead_id"] = pd.array([f"L{i:08d}" for i in range(len(leads))], dtype="string")
    leads["source"] = pd.array(["marketo"] * len(leads), dtype="string")
    people = np.array(["info", "sales", "j.doe", "anna.berg", "m.rossi", "li.wei", "k.tanaka", "o.smith"], dtype=object)
    picked = people[np.random.default_rng(args.seed).integers(0, people.size, len(leads))]
    local = np.where(np.isin(picked, ["info", "sales"]), picked, picked + leads.index.astype(str))  # role mailboxes
    leads["email"] = (pd.Series(local, index=leads.index, dtype="string") + "@" + leads["email_domain"]).astype("string")
    domains = company_domains(leads)
    outside = pd.Series(domains[leads["company"].notna() & generated["true_account_id"].isna()].dropna().unique())
    in_file = outside.sample(frac=1 / 3, random_state=args.seed)
    rng = np.random.default_rng(args.seed)
    firmographics = pd.DataFrame({
        "domain": in_file.to_numpy(),
        "employees": pd.array(rng.integers(1, 20_000, len(in_file)), dtype="Int64"),
        "annual_revenue": pd.array(rng.uniform(1e5, 5e9, len(in_file)), dtype="Float64"),
        "industry": pd.array(np.array(INDUSTRIES)[rng.integers(0, len(INDUSTRIES), len(in_file))], dtype="string"),
    })
    print(f"generated {len(leads):,} leads, {len(accounts):,} accounts, {len(existing):,} existing records, "
          f"{len(firmographics):,} reference-file domains in {time.perf_counter() - started:.1f} s")

    rules = load_rules()
    inputs = RunInputs(reference=Reference(accounts=accounts, existing=existing, firmographics=firmographics))
    started = time.perf_counter()
    out = ENRICH.apply(leads, rules, inputs)
    total = time.perf_counter() - started
    own, children = peak_rss_mb()
    print(f"enrich stage: {total:.1f} s, {len(leads) / total:,.0f} leads/s; peak RSS {own:,.0f} MB "
          f"(largest child {children:,.0f} MB)")

    print("parts, each timed alone:")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    match_accounts(leads, accounts, rules.enrichment.matching, timings=timings)
    print(f"  matching      {time.perf_counter() - started:6.1f} s  (" +
          ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ")")
    started = time.perf_counter()
    find_duplicates(leads, existing, rules.enrichment.duplicates)
    print(f"  duplicates    {time.perf_counter() - started:6.1f} s")
    started = time.perf_counter()
    flag_addresses(leads["email"], leads["email_domain"])
    print(f"  address flags {time.perf_counter() - started:6.1f} s")

    print("match rate by method (share of all leads):")
    print(out["account_match_method"].value_counts(normalize=True).round(4).to_string())
    print("firmographics known (share of leads) and their sources:")
    for column in ("employees", "annual_revenue", "industry"):
        print(f"  {column:<15} {out[column].notna().mean():.3f}")
    print(out["enrichment_source"].fillna("(none)").value_counts(normalize=True).head(6).round(4).to_string())
    print("segments:", out["segment"].value_counts(normalize=True, dropna=False).round(3).to_dict())
    print(f"duplicates flagged: {out['duplicate_of'].notna().mean():.3%}; role addresses "
          f"{out['is_role_email'].mean():.3%}; disposable {out['is_disposable_email'].mean():.3%}")
    assert len(out) == len(leads)


if __name__ == "__main__":
    main()
