"""Saving per-lead state at scale: each step of a run that writes one row per lead, timed on SQLite and PostgreSQL.

    python benchmarks/bench_state_saving.py                       # 1,000,000 leads on both backends
    python benchmarks/bench_state_saving.py --leads 200000 --backends sqlite
    python benchmarks/bench_state_saving.py --steps lifecycle          # only the lifecycle steps

Steps timed (a run of 1M leads takes ~100-200 s; the target is a few seconds, <= 5%, per step):
  assignments   `tasks.routing.record_assignments`: the snapshots of the routed leads and the upsert of `assignments`,
                first into an empty table ("new"), then again over the same leads ("again", every row a conflict)
  re-read       the routing session's re-read of those leads' assignments under the lock (what a second run does),
                and `StateStore.assignments` of the same leads, snapshots included (what the stage-state loader reads)
  lead_runs     `lead_run_rows` and `StateStore.add_changes` writing them
  lifecycle     `StateStore.save_lifecycle_state`, new rows then the same leads again, all in one call
  lifecycle run the stage-state tasks as a streamed `leadflow run` calls them: per 50,000-lead chunk
                `tasks.io.load_lifecycle_state` then `save_lifecycle_state`, into an emptied table ("new": no lead
                known, the table growing to --leads), then the same chunks again ("again": every lead known)
  first touch   `StateStore.mark_assignments(..., "first_touch_at")` for a tenth of the leads

Leads: `leadflow.synth.routing_leads`, conformed to the canonical schema, with the other columns the routing snapshot
keeps filled in (numbers, booleans, unicode, NA), routed by `route_leads` with the reference routing config and no
ownership (every lead routed: the most assignments a run can make). PostgreSQL comes from --postgres-url, else
LEADFLOW_TEST_POSTGRES_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/test; the benchmark writes into a
throw-away schema `lf_bench_<hex>` and drops it afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tasks` lives at the repository root

from leadflow.audit.changes import ChunkPlan, lead_run_rows  # noqa: E402
from leadflow.pipeline.schema import conform, lead_keys  # noqa: E402
from leadflow.routing import ROUTING_COLUMNS, RoutingState, load_routing_config, route_leads  # noqa: E402
from leadflow.store import StateStore  # noqa: E402
from leadflow.store.tables import lead_state  # noqa: E402
from leadflow.synth import routing_leads  # noqa: E402
from tasks.routing import record_assignments  # noqa: E402
from bench_store import DEFAULT_POSTGRES_URL, postgres_reachable  # noqa: E402  (this folder is on sys.path)

AS_OF = datetime(2026, 11, 18, 15, tzinfo=UTC)


def make_leads(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` canonical leads as the assign stage sees them, with every column `ROUTING_INPUTS` keeps."""
    rng = np.random.default_rng(seed)
    frame = conform(routing_leads(n, seed))
    employees = pd.array(rng.integers(1, 50_000, n), dtype="Int64")
    employees[rng.random(n) < 0.3] = pd.NA
    frame["employees"] = employees
    frame["seniority"] = pd.array(np.array(["vp", "director", "manager", None], dtype=object)[rng.integers(0, 4, n)],
                                  dtype="string")
    frame["department"] = pd.array(np.where(rng.random(n) < 0.5, "Engineering", "Ventes & Marketing — EMEA"),
                                   dtype="string")
    frame["status"] = pd.array(np.where(rng.random(n) < 0.8, "Open - Not Contacted", "Working"), dtype="string")
    frame["is_free_email"] = pd.array(rng.random(n) < 0.2, dtype="boolean")
    frame["company"] = frame["company"] + pd.Series(np.where(rng.random(n) < 0.1, " GmbH & Co. \"Köln\"", ""),
                                                    index=frame.index, dtype="string")
    frame["created_at"] = pd.array(np.full(n, "2026-11-17T09:30:00Z"), dtype="string")
    frame["mql_at"] = pd.array(np.where(frame["lifecycle_stage"] == "mql", "2026-11-17T10:00:00Z", None),
                               dtype="string")
    frame["lifecycle_reason"] = pd.array(np.where(frame["lifecycle_stage"] == "mql", "score 71 >= 60", None),
                                         dtype="string")
    return frame


def timed(what: str, step: Callable[[], Any], results: dict[str, float]) -> Any:
    started = time.perf_counter()
    value = step()
    results[what] = time.perf_counter() - started
    return value


STEPS = ("assignments", "lead_runs", "lifecycle", "first_touch")
RUN_CHUNK = 50_000
"""Leads per chunk of a streamed run (`leadflow run --chunk-rows` default)."""


def bench(store: StateStore, frame: pd.DataFrame, out: pd.DataFrame, steps: tuple[str, ...] = STEPS
          ) -> dict[str, float]:
    results: dict[str, float] = {}
    keys = lead_keys(frame)
    run_id = store.start_run("bench_state_saving", {"leads": len(frame)})
    if "assignments" in steps:
        bench_assignments(store, frame, out, keys, run_id, results)
    if "lead_runs" in steps:
        plan = ChunkPlan.for_frame(frame.index)
        leads = timed("lead_run_rows", lambda: lead_run_rows(frame, keys, plan), results)
        timed("lead_runs write", lambda: store.add_changes(run_id, "standardize", AS_OF, [], leads), results)
    if "lifecycle" in steps:
        state = frame[["lifecycle_stage", "lifecycle_reason", "mql_at", "sal_at", "sql_at", "recycled_at"]].assign(
            lead_key=keys.to_numpy())
        for label in ("new", "again"):
            timed(f"lifecycle {label}", lambda: store.save_lifecycle_state(state, run_id), results)
        bench_lifecycle_run(store, frame, run_id, results)
    if "first_touch" in steps:
        touched = keys.iloc[::10].tolist()
        timed("first touch (1/10)", lambda: store.mark_assignments(touched, "first_touch_at", AS_OF), results)
    store.finish_run(run_id, "completed", {})
    return results


def bench_lifecycle_run(store: StateStore, frame: pd.DataFrame, run_id: str, results: dict[str, float]) -> None:
    """The lifecycle stage's state tasks chunk by chunk, as `flows.stages.run_stages` calls them."""
    import tasks.io as io_tasks

    with store.engine.begin() as conn:  # untimed: the streamed run starts from a store without these leads
        conn.execute(lead_state.delete())
    chunks = [frame.iloc[start : start + RUN_CHUNK] for start in range(0, len(frame), RUN_CHUNK)]
    opened = io_tasks.state_store
    io_tasks.state_store = lambda: store  # the tasks' own store is the configured one; this one is the benchmark's
    try:
        for label in ("new", "again"):
            load = save = 0.0
            for chunk in chunks:
                started = time.perf_counter()
                loaded = io_tasks.load_lifecycle_state.fn(chunk)
                load += time.perf_counter() - started
                started = time.perf_counter()
                io_tasks.save_lifecycle_state.fn(loaded, run_id)
                save += time.perf_counter() - started
            results[f"lifecycle run {label}: load"] = load
            results[f"lifecycle run {label}: save"] = save
            results[f"lifecycle run {label}"] = load + save
    finally:
        io_tasks.state_store = opened


def bench_assignments(store: StateStore, frame: pd.DataFrame, out: pd.DataFrame, keys: pd.Series, run_id: str,
                      results: dict[str, float]) -> None:
    for label in ("new", "again"):
        with store.routing_session(run_id) as session:
            recorded = timed(f"assignments {label}", lambda: record_assignments(session, frame, out)[0], results)
    assert recorded == int(out["assigned_at"].notna().sum()), recorded
    wanted = keys.dropna().unique().tolist()
    with store.routing_session(run_id) as session:
        known = timed("re-read under the lock", lambda: session.assignments(wanted, inputs=False), results)
    assert len(known) == recorded
    known = timed("read with snapshots", lambda: store.assignments(wanted), results)
    assert len(known) == recorded


def report(backend: str, results: dict[str, float], leads: int) -> None:
    for step, seconds in results.items():
        print(f"{backend:<9} {step:<28} {seconds:7.2f} s  {leads / seconds:>12,.0f} leads/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--postgres-url", default=os.environ.get("LEADFLOW_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated: {', '.join(STEPS)}")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}: choose from {', '.join(STEPS)}")

    print(f"python {sys.version.split()[0]}, pandas {pd.__version__}, sqlalchemy {sa.__version__}, {os.cpu_count()} CPUs")
    started = time.perf_counter()
    frame = make_leads(args.leads)
    routed, _ = route_leads(frame, load_routing_config(), RoutingState(), as_of=AS_OF)
    out = frame.copy()
    for column in ROUTING_COLUMNS:
        out[column] = routed[column]
    print(f"{len(frame):,} leads made and routed in {time.perf_counter() - started:.1f} s; "
          f"{int(out['assigned_at'].notna().sum()):,} assigned")

    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix="lf_bench_") as folder:
            with StateStore.open(f"sqlite:///{(Path(folder) / 'state.db').as_posix()}") as store:
                report("sqlite", bench(store, frame, out, steps), len(frame))
    if "postgres" in backends:
        hidden = sa.make_url(args.postgres_url).render_as_string(hide_password=True)
        reason = postgres_reachable(args.postgres_url)
        if reason is not None:
            print(f"postgres  skipped: {hidden} unreachable ({reason})")
            return
        schema = f"lf_bench_{uuid.uuid4().hex[:12]}"
        try:
            with StateStore.open(args.postgres_url, schema=schema) as store:
                report("postgres", bench(store, frame, out, steps), len(frame))
        finally:
            admin = sa.create_engine(args.postgres_url, poolclass=sa.pool.NullPool)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            admin.dispose()


if __name__ == "__main__":
    main()
