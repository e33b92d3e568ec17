"""What one random-key index costs SQLite per lead, the floor under a file run's store work (issue 17).

    python benchmarks/bench_store_floor.py                 # 1,000,000 leads in 20 chunks of 50,000
    python benchmarks/bench_store_floor.py --leads 200000

A file run adds each lead to five B-trees keyed by values in no useful order: `lead_runs` by lead key and e-mail,
`lead_state` by lead key, `kpi_lead_facts` by lead key and e-mail. This writes `--leads` rows chunk by chunk, one
transaction per chunk, sorted by key as the store sends them, into a table like `lead_runs` (WAL, 16 KiB pages,
64 MB cache: the store's settings) with 0, 1 and 2 such indexes, and with the settings one might hope would help: a
512 MB page cache, 2 GB of mmap, a 64-bit hash instead of the e-mail text, four chunks per transaction. Printed: CPU
seconds (executemany + commit) and the CPU each index adds per lead.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

CHUNK = 50_000


def run(folder: Path, leads: int, indexes: int, *, pragma: str = "", hashed: bool = False, per_commit: int = 1
        ) -> float:
    """CPU seconds to insert `leads` rows with `indexes` random-key indexes (key, then e-mail)."""
    path = folder / f"floor-{uuid.uuid4().hex[:8]}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in ("PRAGMA page_size = 16384", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                      "PRAGMA cache_size = -65536", *([pragma] if pragma else [])):
        conn.execute(statement)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, lead_key TEXT, email, run_id TEXT, at TEXT)")
    for column in ("lead_key", "email")[:indexes]:
        conn.execute(f"CREATE INDEX ix_{column} ON t ({column})")
    rng = random.Random(17)
    spent = 0.0
    chunks = -(-leads // CHUNK)
    for chunk in range(chunks):
        rows = sorted((f"csv:{uuid.UUID(int=rng.getrandbits(128))}",
                       rng.getrandbits(63) if hashed else f"p{rng.getrandbits(40)}.b{chunk}@x{rng.randrange(999)}.com",
                       "0b5d9ad4-5f1e-4c55-9d52-3f0c2a7d8e61", "2026-12-06 19:29:03.123456")
                      for _ in range(min(CHUNK, leads - chunk * CHUNK)))
        started = time.process_time()
        if chunk % per_commit == 0:
            conn.execute("BEGIN")
        conn.executemany("INSERT INTO t (lead_key, email, run_id, at) VALUES (?, ?, ?, ?)", rows)
        if chunk % per_commit == per_commit - 1 or chunk == chunks - 1:
            conn.execute("COMMIT")
        spent += time.process_time() - started
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        folder = Path(tmp)
        base = run(folder, args.leads, 0)
        print(f"{args.leads:,} leads, {CHUNK:,} per transaction; CPU s (executemany + commit)")
        print(f"  no index                         {base:6.2f}")
        one = run(folder, args.leads, 1)
        two = run(folder, args.leads, 2)
        print(f"  lead key index                   {one:6.2f}   +{(one - base) / args.leads * 1e6:.2f} us per lead")
        print(f"  lead key + e-mail indexes        {two:6.2f}   +{(two - one) / args.leads * 1e6:.2f} us per lead "
              "for the e-mail index")
        for label, options in (("  ... 512 MB page cache          ", {"pragma": "PRAGMA cache_size = -524288"}),
                               ("  ... 2 GB mmap                  ", {"pragma": "PRAGMA mmap_size = 2147483648"}),
                               ("  ... 64-bit hash, not e-mail    ", {"hashed": True}),
                               ("  ... 4 chunks per transaction   ", {"per_commit": 4})):
            print(f"{label} {run(folder, args.leads, 2, **options):6.2f}")


if __name__ == "__main__":
    main()
