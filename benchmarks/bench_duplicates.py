"""Duplicate detection over N synthetic leads against M existing CRM records: time per rule, rates, RSS.

    python benchmarks/bench_duplicates.py --leads 100000 --existing 50000
    python benchmarks/bench_duplicates.py --leads 1000000 --existing 500000
    python benchmarks/bench_duplicates.py --leads 100 --existing 600000 --prepared --repeat 5
    python benchmarks/bench_duplicates.py --leads 100 --existing 600000 --index --repeat 5

Target on a 2-core machine: 1,000,000 leads × 500,000 records in well under 60 s, peak RSS < 3 GB; a 100-lead batch
against 600,000 records ≤ 0.3 s with `--index` (a `RecordIndex` built once from the prepared records, as a CRM mirror
would keep it). `--prepared` passes the prepared frame itself (key columns from `prepare_existing`).
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
from leadflow.identity.prepared import prepare_existing
from leadflow.identity.records import RecordIndex
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
    parser.add_argument(
        "--prepared", action="store_true", help="add the records' key columns first (prepare_existing, timed apart)"
    )
    parser.add_argument(
        "--index", action="store_true", help="--prepared, then build a RecordIndex once (timed apart) and pass it"
    )
    parser.add_argument("--repeat", type=int, default=1, help="check the same batch this many times (best and median)")
    args = parser.parse_args()

    started = time.perf_counter()
    existing = messy_existing_records(args.existing, seed=args.seed)
    leads = messy_leads_for_existing(existing, args.leads, seed=args.seed)
    print(f"generated {len(leads):,} leads and {len(existing):,} records in {time.perf_counter() - started:.1f} s")
    truth_columns = ["true_duplicate_of", "true_person_id", "kind"]
    truth = leads[truth_columns]
    leads, records = leads.drop(columns=truth_columns), existing.drop(columns=["person_id"])

    reference: pd.DataFrame | RecordIndex = records
    if args.prepared or args.index:
        started = time.perf_counter()
        reference = prepare_existing(records)
        print(f"prepare_existing: {time.perf_counter() - started:.2f} s for {len(records):,} records")
    if args.index:
        started = time.perf_counter()
        reference = RecordIndex(reference)
        print(f"RecordIndex: {time.perf_counter() - started:.2f} s")

    config = DuplicateConfig(min_confidence=args.min_confidence)
    runs: list[tuple[float, dict[str, float]]] = []
    for _ in range(max(1, args.repeat)):
        timings: dict[str, float] = {}
        started = time.perf_counter()
        out = find_duplicates(leads, reference, config, timings=timings)
        runs.append((time.perf_counter() - started, timings))
    total, timings = min(runs, key=lambda run: run[0])
    median = sorted(run[0] for run in runs)[len(runs) // 2]
    print(f"find_duplicates: {total:.3f} s total (best of {len(runs)}; median {median:.3f} s), "
          f"{len(leads) / total:,.0f} leads/s")
    for rule, seconds in timings.items():
        print(f"  {rule:<13} {seconds:7.3f} s")
    print(f"  {'rest':<13} {total - sum(timings.values()):7.3f} s")

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
