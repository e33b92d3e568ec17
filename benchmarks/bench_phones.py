"""Phone standardization: the reference algorithm (phonenumbers.parse + validity + format) against `phone_e164_of`
(per key) and `phone_e164_bulk` (all keys at once, column-wise).

    python benchmarks/bench_phones.py [--rows 200000] [--seed 7] [--repeat 3] [--csv messy.csv] [--no-reference]

Builds the keys the standardize stage maps, `"<country code>\\x1f<phone>"` for every distinct (country, phone) of
`messy_leads(rows)` (or of the first `--rows` rows of `--csv`; countries resolved and texts cleaned as the stage
does), then times the functions over all of them in this process (CPU time, best of `--repeat`) and prints µs per
unique value and the ratios. Exits 1 if any answer differs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import pandas as pd

from leadflow.pipeline.uniques import map_unique
from leadflow.stages.standardize import _keyed, clean_text
from leadflow.stages.standardize_countries import country_code_of
from leadflow.stages.standardize_phones import phone_e164_of, phone_e164_reference
from leadflow.stages.standardize_phones_bulk import phone_e164_bulk
from leadflow.synth import messy_leads


def phone_keys(rows: int, seed: int, csv: str | None = None) -> list[str]:
    """The distinct non-null keys `standardize` maps for `messy_leads(rows, seed)` (or the first rows of `csv`)."""
    if csv is None:
        frame = messy_leads(rows, seed=seed)
    else:
        frame = pd.read_csv(csv, nrows=rows, dtype=str, keep_default_na=False, na_values=[""])
    country_code = map_unique(clean_text(frame["country"]), country_code_of, workers=1)
    keys = _keyed(country_code, clean_text(frame["phone"]))
    return keys.dropna().unique().tolist()


def _time(fn: Callable[[str], str | None], keys: list[str], repeat: int) -> tuple[float, list[str | None]]:
    best = float("inf")
    answers: list[str | None] = []
    for _ in range(repeat):
        start = time.process_time()
        answers = [fn(key) for key in keys]
        best = min(best, time.process_time() - start)
    return best, answers


def _time_bulk(keys: list[str], repeat: int) -> tuple[float, list[str | None]]:
    best = float("inf")
    answers: list[str | None] = []
    for _ in range(repeat):
        start = time.process_time()
        answers = phone_e164_bulk(keys)
        best = min(best, time.process_time() - start)
    return best, answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--csv", help="take the leads from this CSV (e.g. bench_run.py's messy file)")
    parser.add_argument("--no-reference", action="store_true", help="skip timing phonenumbers.parse (slow)")
    args = parser.parse_args(argv)

    keys = phone_keys(args.rows, args.seed, args.csv)
    phone_e164_of(keys[0])  # load and compile the first regions' metadata outside the timing
    phone_e164_reference(keys[0])
    phone_e164_bulk(keys[:1000])
    new_s, new = _time(phone_e164_of, keys, args.repeat)
    bulk_s, bulk = _time_bulk(keys, args.repeat)
    differ = sum(a != b for a, b in zip(new, bulk, strict=True))
    if not args.no_reference:
        old_s, old = _time(phone_e164_reference, keys, args.repeat)
        differ += sum(a != b for a, b in zip(old, new, strict=True))
    valid = sum(a is not None for a in new)
    source = args.csv or f"messy_leads(seed={args.seed})"
    print(f"{source}, {args.rows:,} rows: {len(keys):,} unique (country, phone) keys, {valid:,} valid")
    if not args.no_reference:
        print(f"old  phonenumbers.parse path : {old_s * 1e6 / len(keys):7.2f} µs/value  ({old_s:.2f} s CPU)")
    print(f"per key  phone_e164_of       : {new_s * 1e6 / len(keys):7.2f} µs/value  ({new_s:.2f} s CPU)")
    print(f"bulk     phone_e164_bulk     : {bulk_s * 1e6 / len(keys):7.2f} µs/value  ({bulk_s:.2f} s CPU)")
    if not args.no_reference:
        print(f"ratio old/new                : {old_s / new_s:7.2f}x")
    print(f"ratio per key/bulk           : {new_s / bulk_s:7.2f}x")
    print(f"answers that differ          : {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
