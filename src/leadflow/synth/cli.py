"""Deterministic generator of realistic, messy synthetic B2B leads (for the demo, tests and benchmarks).

The command line of `leadflow.synth.messy_leads`: `python -m leadflow.synth --rows N --seed S --out PATH`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from leadflow.synth.leads import messy_leads

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m leadflow.synth --rows N --seed S --out PATH(.csv|.parquet)`."""
    parser = argparse.ArgumentParser(prog="python -m leadflow.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, required=True, help="number of leads")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, required=True, help="output file: .csv or .parquet")
    parser.add_argument(
        "--start", type=datetime.fromisoformat, default=None,
        help="leads are created in the ~90 days before this ISO instant (default 2026-11-01T00:00:00Z)",
    )
    args = parser.parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        parser.error("--out must end in .csv or .parquet")
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    frame = messy_leads(args.rows, args.seed, start=args.start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    print(f"wrote {len(frame):,} leads to {args.out}")
    return 0
