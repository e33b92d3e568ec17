"""Phone standardization: the reference algorithm (phonenumbers.parse + validity + format) against `phone_e164_of`.

    python benchmarks/bench_phones.py [--rows 200000] [--seed 7] [--repeat 3]

Builds the keys the standardize stage maps, `"<country code>\\x1f<phone>"` for every distinct (country, phone) of
`messy_leads(rows)` (countries resolved and texts cleaned as the stage does), then times both functions over all
of them in this process (CPU time, best of `--repeat`) and prints µs per unique value and the ratio. Exits 1 if any
answer differs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from leadflow.pipeline.uniques import map_unique
from leadflow.stages.standardize import _keyed, clean_text
from leadflow.stages.standardize_countries import country_code_of
from leadflow.stages.standardize_phones import phone_e164_of, phone_e164_reference
from leadflow.synth import messy_leads


def phone_keys(rows: int, seed: int) -> list[str]:
    """The distinct non-null keys `standardize` passes to `phone_e164_of` for `messy_leads(rows, seed)`."""
    frame = messy_leads(rows, seed=seed)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    keys = phone_keys(args.rows, args.seed)
    phone_e164_of(keys[0])  # load and compile the first regions' metadata outside the timing
    phone_e164_reference(keys[0])
    old_s, old = _time(phone_e164_reference, keys, args.repeat)
    new_s, new = _time(phone_e164_of, keys, args.repeat)
    differ = sum(a != b for a, b in zip(old, new, strict=True))
    valid = sum(a is not None for a in new)
    print(f"messy_leads({args.rows:,}, seed={args.seed}): {len(keys):,} unique (country, phone) keys, {valid:,} valid")
    print(f"old  phonenumbers.parse path : {old_s * 1e6 / len(keys):7.2f} µs/value  ({old_s:.2f} s CPU)")
    print(f"new  phone_e164_of           : {new_s * 1e6 / len(keys):7.2f} µs/value  ({new_s:.2f} s CPU)")
    print(f"ratio old/new                : {old_s / new_s:7.2f}x")
    print(f"answers that differ          : {differ}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
