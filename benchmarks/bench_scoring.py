"""Scoring N synthetic leads with M activities against the default scoring model.

    python benchmarks/bench_scoring.py                                # 1,000,000 leads, 10,000,000 activities
    python benchmarks/bench_scoring.py --leads 100000 --activities 1000000

Target on this 2-core machine: 1,000,000 leads with 10,000,000 activities scored in ≤ 30 s. Leads:
`synth.scoring_leads` (standardized columns the default model reads); activities: `synth.messy_activities`
(log-normal activity rate per lead, 365 days before `synth.DEFAULT_START`). Prints seconds per part (fit rules,
engagement, reasons and the rest), leads/s and peak RSS, then the grade/rating mix.
"""

from __future__ import annotations

import argparse
import resource
import time

from leadflow.scoring.model import load_scoring_model, score_leads
from leadflow.synth import DEFAULT_START, messy_activities, scoring_leads


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--activities", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    started = time.perf_counter()
    leads = scoring_leads(args.leads, seed=args.seed)
    activities = messy_activities(leads, args.activities, seed=args.seed, end=DEFAULT_START)
    print(f"generated {len(leads):,} leads and {len(activities):,} activities in "
          f"{time.perf_counter() - started:.1f} s (peak RSS so far {peak_rss_mb()[0]:,.0f} MB)")

    model = load_scoring_model()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out = score_leads(leads, activities, model, as_of=DEFAULT_START, timings=timings)
    total = time.perf_counter() - started
    own, children = peak_rss_mb()
    print(f"scored in {total:.1f} s (fit {timings['fit']:.1f} s, engagement {timings['engagement']:.1f} s, "
          f"reasons and output {timings['reasons']:.1f} s); {len(leads) / total:,.0f} leads/s; "
          f"peak RSS {own:,.0f} MB (largest child {children:,.0f} MB)")
    print(f"model {model.version}: {len(model.fit_rules)} fit rules, {len(model.engagement_rules)} engagement rules")
    print("grades:", out["grade"].value_counts(normalize=True).sort_index().round(3).to_dict())
    print("ratings (top 6):", out["rating"].value_counts(normalize=True).head(6).round(3).to_dict())
    print(f"MQL share: {model.is_mql(out['score']).mean():.3%}; distinct reason texts: "
          f"{out['score_reasons'].nunique():,}")
    assert len(out) == len(leads) and out.index.equals(leads.index)


if __name__ == "__main__":
    main()
