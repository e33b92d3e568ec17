"""Bulk point-event inserts (`lead_events`: write-backs, SLA breaches) into the state store: rows/s on SQLite
(temp dir) and PostgreSQL (if reachable). Stage changes are stored as chunks instead (bench_pipeline.py --audit).

    python benchmarks/bench_store.py                  # 1,000,000 events on both backends
    python benchmarks/bench_store.py --rows 200000 --backends sqlite

PostgreSQL comes from --postgres-url, else LEADFLOW_TEST_POSTGRES_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/test;
the benchmark writes into a throw-away schema `lf_bench_<hex>` and drops it afterwards.
The events look like write-back events: ~10 changed columns per lead, one `at` per stage.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadflow.store import StateStore

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = np.array(
    ["email", "phone", "country", "state", "city", "title", "company", "website", "status", "owner_id"]
)


def make_events(rows: int, run_id: str, seed: int = 7) -> pd.DataFrame:
    """`rows` audit events for rows/10 leads, string dtype with pd.NA, in the shape the pipeline produces."""
    rng = np.random.default_rng(seed)
    i = np.arange(rows)
    lead = pd.Series(i // len(COLUMNS)).astype("string")
    suffix = pd.Series(rng.integers(0, 1_000_000, rows)).astype("string")
    old = ("Old Value " + suffix).astype("string")
    old[rng.random(rows) < 0.15] = pd.NA  # a column filled in where there was nothing
    return pd.DataFrame(
        {
            "run_id": pd.Series(run_id, index=i, dtype="string"),
            "lead_key": ("salesforce:00Q" + lead.str.zfill(12)).astype("string"),
            "stage": pd.Series("standardize", index=i, dtype="string"),
            "column_name": pd.Series(COLUMNS[i % len(COLUMNS)], dtype="string"),
            "old_value": old,
            "new_value": ("new value " + suffix).astype("string"),
            "at": pd.Series(datetime(2026, 11, 1, 12, tzinfo=UTC), index=i),
        }
    )


def bench(store: StateStore, rows: int) -> tuple[float, float]:
    """Insert `rows` events into `store`; returns (seconds, seconds for one lead's trail read back)."""
    run_id = store.start_run("bench_store", {"rows": rows})
    events = make_events(rows, run_id)
    started = time.perf_counter()
    written = store.add_events(events)
    elapsed = time.perf_counter() - started
    assert written == rows
    started = time.perf_counter()
    trail = store.events(lead_key=str(events["lead_key"].iloc[rows // 2]))
    lookup = time.perf_counter() - started
    assert len(trail) == len(COLUMNS) or rows < len(COLUMNS)
    store.finish_run(run_id, "completed", {"events": rows})
    return elapsed, lookup


def report(backend: str, rows: int, elapsed: float, lookup: float) -> None:
    print(f"{backend:<10} {rows:>12,} events  {elapsed:8.2f} s  {rows / elapsed:>12,.0f} rows/s   lead lookup {lookup * 1000:6.1f} ms")


def postgres_reachable(url: str) -> str | None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means skip, with the reason shown
        return f"{type(getattr(exc, 'orig', None) or exc).__name__}: {getattr(exc, 'orig', None) or exc}"
    finally:
        engine.dispose()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--postgres-url", default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    print(f"python {sys.version.split()[0]}, pandas {pd.__version__}, sqlalchemy {sa.__version__}, {os.cpu_count()} CPUs")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix="lf_bench_") as folder:
            with StateStore.open(f"sqlite:///{(Path(folder) / 'state.db').as_posix()}") as store:
                report("sqlite", args.rows, *bench(store, args.rows))
    if "postgres" in backends:
        hidden = sa.make_url(args.postgres_url).render_as_string(hide_password=True)
        reason = postgres_reachable(args.postgres_url)
        if reason is not None:
            print(f"postgres   skipped: {hidden} unreachable ({reason})")
            return
        schema = f"lf_bench_{uuid.uuid4().hex[:12]}"
        try:
            with StateStore.open(args.postgres_url, schema=schema) as store:
                report("postgres", args.rows, *bench(store, args.rows))
        finally:
            admin = sa.create_engine(args.postgres_url, poolclass=sa.pool.NullPool)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.dispose()


if __name__ == "__main__":
    main()
