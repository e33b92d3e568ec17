"""The CRM mirror in the state store at real-org size: write it, load it in a fresh process, catch up on a delta.

    python benchmarks/bench_mirror.py                                  # 50,000 accounts, 600,000 contacts + leads
    python benchmarks/bench_mirror.py --accounts 5000 --records 60000
    python benchmarks/bench_mirror.py --database-url postgresql://127.0.0.1:5432/test

Builds synthetic mirror rows (keys computed by `leadflow.identity.prepared`, as a refresh computes them), writes them
as a build does (`replace_mirror`), then times in a FRESH Python process (`load_mirror` as a new flow-run process
would: imports excluded) the whole load, and in this process: a refresh applying 1,000 changed and 100 deleted records
(`apply_mirror_changes`) and the catch-up of a process that already held the mirror (reads only the changed rows).
Prints seconds and peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

LOAD_SNIPPET = """
import sys, time
from leadflow.store import StateStore
from leadflow.sync.mirror import load_mirror
store = StateStore.open(sys.argv[1])
started = time.perf_counter()
view = load_mirror(store)
print(f"{time.perf_counter() - started:.3f} {len(view.accounts)} {len(view.existing)}")
"""


def synthetic(accounts: int, records: int, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(accounts, contacts, leads) mirror rows with realistic-looking names, domains and e-mails."""
    from leadflow.identity.prepared import prepare_accounts, prepare_existing

    rng = np.random.default_rng(seed)
    words = np.array(["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent",
                      "Hooli", "Vandelay", "Wonka", "Pied", "Piper", "Aperture", "Black", "Mesa", "Oscorp"])
    suffixes = np.array(["Inc", "GmbH", "Ltd", "LLC", "SA", "AG", "Corp", ""])
    stamp = pd.Timestamp(datetime(2026, 10, 1, tzinfo=UTC))
    a_words = rng.choice(words, (accounts, 2))
    names = pd.Series([f"{x} {y} {k} {s}".strip() for (x, y), k, s in
                       zip(a_words, range(accounts), rng.choice(suffixes, accounts), strict=True)])
    domains = pd.Series([f"{x.lower()}{y.lower()}{k}.com" for (x, y), k in zip(a_words, range(accounts), strict=True)])
    account_rows = prepare_accounts(pd.DataFrame({
        "account_id": [f"0015e{k:010d}AAA" for k in range(accounts)], "name": names,
        "website": "https://www." + domains, "billing_country": "Germany", "country_code": "DE",
        "owner_id": "0055e0000000002AAA", "employees": rng.integers(1, 10_000, accounts),
        "annual_revenue": rng.uniform(1e5, 1e9, accounts), "industry": "Technology", "last_activity_at": None,
    }))
    firsts = np.array(["Ann", "Bob", "Cem", "Dana", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea"])
    lasts = np.array(["Smith", "Meyer", "Rossi", "Kowalski", "Novak", "Garcia", "Tanaka", "Silva", "Berg"])
    first, last = rng.choice(firsts, records), rng.choice(lasts, records)
    at = rng.integers(0, accounts, records)
    emails = [f"{f.lower()}.{x.lower()}{k}@{domains[a]}" for k, (f, x, a) in enumerate(zip(first, last, at,
                                                                                            strict=True))]
    existing = prepare_existing(pd.DataFrame({
        "record_id": [f"0035e{k:010d}AAA" for k in range(records)], "object": "Contact", "email": emails,
        "first_name": first, "last_name": last, "company": None,
        "account_id": account_rows["account_id"].to_numpy()[at]}))
    split = records * 2 // 3
    contacts = existing.iloc[:split].reset_index(drop=True)
    leads = existing.iloc[split:].assign(object="Lead", account_id=None, company=names.to_numpy()[at[split:]])
    leads["record_id"] = [f"00Q5e{k:010d}AAA" for k in range(len(leads))]
    return (account_rows.assign(modstamp=stamp), contacts.assign(modstamp=stamp),
            prepare_existing(leads.reset_index(drop=True)).assign(modstamp=stamp))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=600_000, help="contacts (two thirds) and leads (a third)")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from leadflow.store import StateStore
    from leadflow.sync.mirror import forget_process_copies, load_mirror, save_snapshots, to_rows

    started = time.perf_counter()
    accounts, contacts, leads = synthetic(args.accounts, args.records)
    print(f"synthetic rows and keys: {args.accounts:,} accounts, {args.records:,} contacts and leads in "
          f"{time.perf_counter() - started:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'state.db'}"
        with StateStore.open(url) as store:
            now = datetime.now(UTC)
            started = time.perf_counter()
            for obj, frame in (("Account", accounts), ("Contact", contacts), ("Lead", leads)):
                store.replace_mirror(obj, frame, method="bulk", watermark=now, last_change_at=now, now=now)
            for obj in ("User", "QueueSobject"):
                store.replace_mirror(obj, to_rows(obj, []), method="rest", watermark=None, last_change_at=None,
                                     now=now)
            load_mirror(store)
            save_snapshots(store, force=True)
            forget_process_copies()
            print(f"write (a build, with its snapshots): {time.perf_counter() - started:.1f} s")
            loads = []
            for _ in range(3):
                done = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, url], capture_output=True, text=True,
                                      check=True)
                loads.append(float(done.stdout.split()[0]))
            print(f"load in a fresh process: {min(loads):.2f} s (best of 3; {', '.join(f'{x:.2f}' for x in loads)})")
            started = time.perf_counter()
            load_mirror(store)
            print(f"load in this process (first): {time.perf_counter() - started:.2f} s")
            changed = contacts.iloc[:1000].assign(last_name="Changed", is_deleted=False)
            gone = contacts.iloc[1000:1100].assign(is_deleted=True)
            started = time.perf_counter()
            store.apply_mirror_changes("Contact", pd.concat([changed, gone]), watermark=now, last_change_at=now,
                                       now=now)
            applied = time.perf_counter() - started
            started = time.perf_counter()
            view = load_mirror(store)
            print(f"a refresh of 1,000 changes + 100 deletions: applied in {applied:.3f} s, caught up in "
                  f"{time.perf_counter() - started:.3f} s ({len(view.existing):,} records live)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
