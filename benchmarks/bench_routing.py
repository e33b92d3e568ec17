"""The routing core over N synthetic leads with the reference routing config.

    python benchmarks/bench_routing.py --leads 100000
    python benchmarks/bench_routing.py --leads 1000000

Target on this 2-core machine: 1,000,000 leads routed in ≤ 15 s. Leads: `synth.routing_leads` (the columns the
reference rules read). `as_of` is a Wednesday 15:00 UTC, when the US East and EMEA reps are at work and US West opens
at 16:00; the SMB pool has daily caps, so a million leads exhaust it and the rest overflow to a hold. Prints the
parts (rule conditions and static actions, round robin, output strings), leads/s, peak RSS, then leads per rule
and per owner, and a second run over the same leads with the first run's output and state (everything kept).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

import pandas as pd

from leadflow.routing import ROUTING_COLUMNS, RoutingState, load_routing_config, route_leads
from leadflow.synth import routing_leads


def peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2026-11-18T15:00:00Z")
    args = parser.parse_args()

    config = load_routing_config()
    started = time.perf_counter()
    leads = routing_leads(args.leads, args.seed)
    print(f"generated {len(leads):,} leads in {time.perf_counter() - started:.1f} s")
    as_of = datetime.fromisoformat(args.as_of.replace("Z", "+00:00")).astimezone(UTC)

    timings: dict[str, float] = {}
    started = time.perf_counter()
    routed, state = route_leads(leads, config, RoutingState(), as_of=as_of, timings=timings)
    total = time.perf_counter() - started
    own, children = peak_rss_mb()
    print(f"route_leads: {total:.2f} s, {len(leads) / total:,.0f} leads/s; peak RSS {own:,.0f} MB "
          f"(largest child {children:,.0f} MB)")
    print("  " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))

    print("leads per rule:")
    for rule, count in routed["routing_rule"].value_counts().items():
        print(f"  {rule:<22} {count:>9,}")
    names = {u: user.name for u, user in config.users.items()}
    names |= {q.owner_id: f"queue {q.name or key}" for key, q in config.queues.items()}
    print("leads per owner:")
    for owner, count in routed["owner_id"].value_counts(dropna=False).items():
        label = "(hold)" if pd.isna(owner) else names.get(str(owner), str(owner))
        print(f"  {label:<22} {count:>9,}")
    holds = routed["routing_reason"].str.startswith("hold: ").sum()
    print(f"holds: {holds:,}; state: {len(state.to_json()):,} bytes of JSON")

    again = leads.copy()
    for column in ROUTING_COLUMNS:
        again[column] = routed[column]
    started = time.perf_counter()
    second, _ = route_leads(again, config, state, as_of=as_of)
    kept = (second.fillna("") == routed.fillna("")).all(axis=1).mean()
    print(f"second run over its own output: {time.perf_counter() - started:.2f} s, {kept:.1%} rows unchanged "
          "(holds are routed again)")


if __name__ == "__main__":
    main()
