"""Duplicate detection over N synthetic leads against M existing CRM records: time per rule, rates, RSS.

    python benchmarks/bench_duplicates.py --leads 100000 --existing 50000
    python benchmarks/bench_duplicates.py --leads 1000000 --existing 500000

Target on a 2-core machine: 1,000,000 leads × 500,000 records in well under 60 s, peak RSS < 3 GB.
Leads come from `synth.messy_leads_for_existing`: ~30% a known person under a known address, ~15% a known person
under another address (fuzzy), ~5% CRM leads pulled back (self), ~5% repeats within the batch, ~45% new people
(some of them colleagues with a known person's last name and company). A found duplicate is right when it names
the same person as the ground truth (`true_person_id`): any record of that person, or an earlier lead of the batch
that is that person. Recall is over the leads whose `true_duplicate_of` is set.
"""

from __future__ import annotations

import argparse
import resource
import time

import pandas as pd

from leadflow.identity.duplicates import DuplicateConfig, find_duplicates
from leadflow.synth import duplicate_answer_persons, messy_existing_records, messy_leads_for_existing


def peak_rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of the largest finished child process, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-confidence", type=float, default=0.85)
    args = parser.parse_args()

    started = time.perf_counter()
    existing = messy_existing_records(args.existing, seed=args.seed)
    leads = messy_leads_for_existing(existing, args.leads, seed=args.seed)
    print(f"generated {len(leads):,} leads and {len(existing):,} records in {time.perf_counter() - started:.1f} s")
    truth_columns = ["true_duplicate_of", "true_person_id", "kind"]
    truth = leads[truth_columns]
    leads, records = leads.drop(columns=truth_columns), existing.drop(columns=["person_id"])

    timings: dict[str, float] = {}
    started = time.perf_counter()
    out = find_duplicates(leads, records, DuplicateConfig(min_confidence=args.min_confidence), timings=timings)
    total = time.perf_counter() - started
    print(f"find_duplicates: {total:.1f} s total, {len(leads) / total:,.0f} leads/s")
    for rule, seconds in timings.items():
        print(f"  {rule:<13} {seconds:6.1f} s")
    print(f"  {'rest':<13} {total - sum(timings.values()):6.1f} s")

    found = out["duplicate_of"].notna()
    expected = truth["true_duplicate_of"].notna()
    print(f"duplicate rate: {found.mean():.4f} (ground truth {expected.mean():.4f})")

    answer_person = duplicate_answer_persons(out["duplicate_of"], pd.concat([leads, truth], axis=1), existing)
    right = (answer_person == truth["true_person_id"]).fillna(False).to_numpy(dtype=bool) & found.to_numpy(dtype=bool)
    right = pd.Series(right, index=out.index)
    precision = right.sum() / max(int(found.sum()), 1)
    recall = (right & expected).sum() / max(int(expected.sum()), 1)
    print(f"precision {precision:.4f}, recall {recall:.4f} ({int(found.sum() - right.sum()):,} wrong)")
    by_kind = (
        pd.DataFrame({"found": found, "right": right, "kind": truth["kind"]}).groupby("kind")[["found", "right"]].mean()
    )
    print("found / right share by generated kind:")
    print(by_kind.round(4).to_string())
    confidence = out.loc[found, "duplicate_confidence"]
    print("confidence of found duplicates:")
    print(confidence.round(2).value_counts().sort_index(ascending=False).to_string())
    own, children = peak_rss_mb()
    print(f"peak RSS: {own:,.0f} MB (largest child {children:,.0f} MB)")


if __name__ == "__main__":
    main()
