"""Lead-to-account matching over N synthetic leads against M synthetic accounts: time per phase, match rates, RSS.

    python benchmarks/bench_matching.py --leads 100000 --accounts 100000
    python benchmarks/bench_matching.py --leads 1000000 --accounts 100000
    python benchmarks/bench_matching.py --leads 1000000 --accounts 100000 --stress   # far more distinct names
    python benchmarks/bench_matching.py --leads 100 --accounts 50000 --prepared --repeat 5   # a small batch

Target on a 2-core machine: 1,000,000 leads × 100,000 accounts in ≤ 60 s, peak RSS ≤ 3 GB; a 100-lead batch against
50,000 prepared accounts (`--prepared`: key columns from `prepare_accounts`, as a CRM mirror stores them) ≤ 0.3 s.
Leads come from `synth.messy_leads_for_accounts`: ~50% carry an account's domain, ~20% only a re-typed name,
~30% belong to no account; the ground truth gives precision (matched to the intended account, or to one sharing its
domain or normalized name: the synthetic duplicates make those equally right).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from leadflow.identity.matching import (
    MatchConfig,
    match_accounts,
    normalize_company,
    registered_domain,
)
from leadflow.identity.prepared import prepare_accounts
from leadflow.synth import (
    COMPANY_STEMS,
    COMPANY_WORDS,
    OUTSIDE_STEMS,
    _typo,
    messy_accounts,
    messy_leads_for_accounts,
)


def stress(leads: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Many more distinct names, all in the accounts' blocks: a fresh typo per name lead, and outside companies named
    like accounts ("Acme Zephyr Systems" next to the account "Acme Harbor Systems")."""
    rng = np.random.default_rng(seed)
    leads = leads.copy()
    name = (leads["kind"] == "name").to_numpy()
    leads.loc[name, "company"] = [_typo(rng, c) for c in leads.loc[name, "company"].tolist()]
    outside = (leads["kind"] == "outside").to_numpy()
    k = int(outside.sum())
    stems, others, words = (np.array(v, dtype=object) for v in (COMPANY_STEMS, OUTSIDE_STEMS, COMPANY_WORDS))
    leads.loc[outside, "company"] = (
        stems[rng.integers(0, stems.size, k)]
        + " "
        + others[rng.integers(0, others.size, k)]
        + " "
        + words[rng.integers(0, words.size, k)]
    )
    return leads


def peak_rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of the largest finished child process, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scorer", default="ratio")
    parser.add_argument(
        "--stress",
        action="store_true",
        help="far more distinct names, all in the accounts' blocks",
    )
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="add the accounts' key columns first (prepare_accounts, timed apart), as a CRM mirror stores them",
    )
    parser.add_argument("--repeat", type=int, default=1, help="match the same batch this many times (best and median)")
    args = parser.parse_args()

    started = time.perf_counter()
    accounts = messy_accounts(args.accounts, seed=args.seed)
    leads = messy_leads_for_accounts(accounts, args.leads, seed=args.seed)
    if args.stress:
        leads = stress(leads, args.seed)
    print(f"generated {len(leads):,} leads and {len(accounts):,} accounts in {time.perf_counter() - started:.1f} s")

    reference = accounts
    if args.prepared:
        started = time.perf_counter()
        reference = prepare_accounts(accounts)
        print(f"prepare_accounts: {time.perf_counter() - started:.2f} s for {len(accounts):,} accounts")

    runs: list[tuple[float, dict[str, float]]] = []
    for _ in range(max(1, args.repeat)):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        out = match_accounts(leads, reference, MatchConfig(scorer=args.scorer), timings=timings)
        runs.append((time.perf_counter() - started, timings))
    total, timings = min(runs, key=lambda run: run[0])
    median = float(np.median([run[0] for run in runs]))
    print(f"match_accounts: {total:.3f} s total (best of {len(runs)}; median {median:.3f} s), "
          f"{len(leads) / total:,.0f} leads/s")
    for phase, seconds in timings.items():
        print(f"  {phase:<11} {seconds:7.3f} s")
    print(f"  {'rest':<11} {total - sum(timings.values()):7.3f} s")
    print(
        f"distinct company values {leads['company'].nunique():,}, distinct domains "
        f"{leads['email_domain'].nunique():,} (e-mail) / {leads['website'].nunique():,} (website)"
    )

    print("match rate by method (share of all leads):")
    print(out["account_match_method"].value_counts(normalize=True).round(4).to_string())
    print("matched share by generated kind:")
    print(out["account_id"].notna().groupby(leads["kind"]).mean().round(4).to_string())

    # Precision: a match is right when it is the intended account or one with the same domain or normalized name.
    acct = accounts.set_index("account_id")
    dom = acct["website"].map(registered_domain, na_action="ignore")
    key = acct["name"].map(normalize_company)
    matched = out["account_id"].notna()
    got, want = out.loc[matched, "account_id"], leads.loc[matched, "true_account_id"]
    has_truth = want.notna()

    def agree(table: pd.Series) -> pd.Series:
        left, right = (
            table.reindex(got).reset_index(drop=True),
            table.reindex(want).reset_index(drop=True),
        )
        return (left == right).fillna(False)

    same = ((got == want).fillna(False).reset_index(drop=True) | agree(dom) | agree(key)).to_numpy(dtype=bool)
    same &= has_truth.to_numpy(dtype=bool)
    by_method = pd.Series(same, index=got.index).groupby(out.loc[matched, "account_match_method"]).mean()
    print("precision of matches by method:")
    print(by_method.round(4).to_string())
    own, children = peak_rss_mb()
    print(f"peak RSS: {own:,.0f} MB (largest child {children:,.0f} MB)")


if __name__ == "__main__":
    main()
