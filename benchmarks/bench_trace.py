"""`leadflow trace` on a big state store: 10M audit events for ~1M leads, then 20 random traces (p50 / max).

    python benchmarks/bench_trace.py                          # 10,000,000 events, SQLite and PostgreSQL
    python benchmarks/bench_trace.py --events 1000000 --backends sqlite
    python benchmarks/bench_trace.py --sqlite-path /tmp/trace.db --keep   # reuse a filled SQLite file later

The store is filled through `StateStore.add_events` (the bulk path: executemany on SQLite, COPY on PostgreSQL),
1M events per call. ~10 events per lead over 10 runs; every lead has one `email` event (its address as new value),
9 in 10 leads are keyed `salesforce:<id>`, the rest `email:<address>`. Plus quarantine rows and assignments for
1% / 10% of the leads, so the e-mail look-ups in those tables cost what they would. Half of the traces are by
e-mail, half by id. PostgreSQL comes from --postgres-url, LEADFLOW_BENCH_PG_URL, LEADFLOW_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test (a throw-away schema `lf_bench_<hex>`, dropped afterwards).
Then 5 random `forget`s (erasures) are timed. It also prints the query plans of the key look-ups, to show they use the lead_key index.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadflow.store import StateStore
from leadflow.trace import forget, trace

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
COLUMNS = np.array(["phone", "country", "state", "city", "title", "company", "website", "status", "owner_id"])
STAGES = np.array(["standardize", "enrich", "comply", "score", "writeback:salesforce"])
CHUNK = 1_000_000
RUNS = 10


def lead_key(n: np.ndarray) -> pd.Series:
    ids = pd.Series(n).astype("string").str.zfill(9)
    keys = ("salesforce:00Q" + ids).astype("string")
    by_email = n % 10 == 9
    keys[by_email] = ("email:" + email(n[by_email])).astype("string").to_numpy()
    return keys


def email(n: np.ndarray) -> pd.Series:
    return ("lead" + pd.Series(n).astype("string") + "@company" + pd.Series(n % 5000).astype("string") + ".com"
            ).astype("string")


def fill(store: StateStore, events: int, leads: int) -> float:
    """Write `events` events for `leads` leads; returns seconds spent in add_events."""
    run_ids = [store.start_run("bench_trace", {"run": r}) for r in range(RUNS)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(11)
    spent = 0.0
    for offset in range(0, events, CHUNK):
        i = np.arange(offset, min(offset + CHUNK, events))
        n = i % leads  # the lead
        k = i // leads  # its k-th event
        run = np.minimum(k, RUNS - 1)
        is_email = k == 0
        column = np.where(is_email, "email", COLUMNS[rng.integers(0, len(COLUMNS), len(i))])
        new = pd.Series(rng.integers(0, 1_000_000, len(i))).astype("string")
        new[is_email] = email(n[is_email]).to_numpy()
        frame = pd.DataFrame({
            "run_id": pd.Series(np.array(run_ids)[run], dtype="string"),
            "lead_key": lead_key(n),
            "stage": pd.Series(np.where(is_email, "standardize", STAGES[rng.integers(0, len(STAGES), len(i))]),
                               dtype="string"),
            "column_name": pd.Series(column, dtype="string"),
            "old_value": pd.Series("old", index=range(len(i)), dtype="string"),
            "new_value": new,
            "at": pd.Series(pd.to_datetime(start) + pd.to_timedelta(k * 86_400 + n % 86_400, unit="s")),
        })
        began = time.perf_counter()
        store.add_events(frame)
        spent += time.perf_counter() - began
        print(f"  {offset + len(i):>12,} events written ({spent:.0f} s in add_events)", flush=True)
    quarantined = np.arange(0, leads, 100)
    store.add_quarantine(run_ids[0], "comply", pd.DataFrame({
        "lead_key": lead_key(quarantined), "expectation": "expect_column_values_to_not_be_null",
        "reason": "consent missing", "row": [{"email": e} for e in email(quarantined)],
    }))
    assigned = np.arange(0, leads, 10)
    with store.routing_session(run_ids[-1]) as session:
        session.record(pd.DataFrame({
            "lead_key": lead_key(assigned), "owner_id": "005A", "routing_rule": "emea", "routing_reason": "bench",
            "assigned_at": start + timedelta(days=9), "sla_due_at": start + timedelta(days=10),
            "inputs": [{"email": e} for e in email(assigned)],
        }))
    for run_id in run_ids:
        store.finish_run(run_id, "completed", {})
    return spent


def explain(store: StateStore) -> None:
    """Print the plans of the per-key queries a trace runs (they must use ix_lead_events_lead_key_at)."""
    key_query = "SELECT * FROM lead_events WHERE lead_key IN ('salesforce:00Q000000001') ORDER BY at, id"
    email_query = ("SELECT DISTINCT lead_key FROM lead_events WHERE column_name = 'email' AND "
                   "length(new_value) <= 320 AND new_value IN ('lead1@company1.com')")
    with store.engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        for name, sql in (("by key", key_query), ("by email", email_query)):
            plan = [" ".join(str(c) for c in row) for row in conn.exec_driver_sql(prefix + sql)]
            print(f"  plan {name}: " + " | ".join(plan))


def time_traces(store: StateStore, leads: int, count: int = 20) -> dict[str, list[float]]:
    rng = np.random.default_rng(5)
    times: dict[str, list[float]] = {"email": [], "id": []}
    for j, n in enumerate(rng.integers(0, leads, count)):
        if j % 2 == 0:
            query = str(email(np.array([n]))[0])
            kind = "email"
        else:
            n = n - n % 10  # an id-keyed lead
            query = f"00Q{n:09d}"
            kind = "id"
        began = time.perf_counter()
        result = trace(store, query)
        times[kind].append(time.perf_counter() - began)
        assert result["found"], query
        assert sum(len(s["changes"]) for r in result["runs"] for s in r["stages"]) >= 1
    return times


def report(backend: str, times: dict[str, list[float]]) -> None:
    every = times["email"] + times["id"]
    print(f"{backend:<10} 20 traces  p50 {statistics.median(every) * 1000:7.1f} ms  max {max(every) * 1000:7.1f} ms"
          + "".join(f"   [{kind}: p50 {statistics.median(t) * 1000:.1f} ms, max {max(t) * 1000:.1f} ms]"
                    for kind, t in times.items() if t))


def run_backend(backend: str, url: str, events: int, leads: int, *, fill_store: bool = True) -> None:
    with StateStore.open(url) as store:
        if fill_store:
            print(f"{backend}: filling {events:,} events for {leads:,} leads ...", flush=True)
            spent = fill(store, events, leads)
            print(f"{backend}: filled in {spent:.0f} s ({events / spent:,.0f} rows/s)", flush=True)
            if backend == "postgres":
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            else:
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
        explain(store)
        trace(store, "warm-up")
        report(backend, time_traces(store, leads))
        erased = []
        for n in np.random.default_rng(9).integers(0, leads, 5):
            began = time.perf_counter()
            result = forget(store, str(email(np.array([n]))[0]))
            erased.append(time.perf_counter() - began)
            assert result["removed"] >= 10 and not trace(store, str(email(np.array([n]))[0]))["found"]
        print(f"{backend:<10} 5 forgets p50 {statistics.median(erased) * 1000:7.1f} ms  max {max(erased) * 1000:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--leads", type=int, default=None, help="default: events / 10")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sqlite-path", type=Path, default=None, help="SQLite file (reused when it exists)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    leads = args.leads or max(args.events // 10, 1)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.sqlite_path or Path(tmp) / "trace.db"
            existing = path.exists()
            run_backend("sqlite", f"sqlite:///{path}", args.events, leads, fill_store=not existing)
            if not args.keep and args.sqlite_path is not None and not existing:
                path.unlink(missing_ok=True)
    if "postgres" in backends:
        base = (args.postgres_url or os.environ.get("LEADFLOW_BENCH_PG_URL")
                or os.environ.get("LEADFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
        schema = f"lf_bench_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
        try:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        except Exception as exc:  # noqa: BLE001 - no PostgreSQL: report and skip
            print(f"postgres: skipped ({type(exc).__name__}: {exc})")
            return 0
        try:
            url = sa.engine.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
            run_backend("postgres", url.render_as_string(hide_password=False), args.events, leads)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
