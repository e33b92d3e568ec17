"""`leadflow trace` on a big state store: 10M audit events for ~1M leads, then 20 random traces (p50 / max).

    python benchmarks/bench_trace.py                          # 10,000,000 events, SQLite and PostgreSQL
    python benchmarks/bench_trace.py --events 1000000 --backends sqlite
    python benchmarks/bench_trace.py --sqlite-path /tmp/trace.db --keep   # reuse a filled SQLite file later

The store is filled the way the sync flows write it (flows/stages.py): 10 runs, each one page of leads through the
stages standardize → enrich → comply → score. Per run a `ChunkPlan` is fixed from the first stage's frame, each
stage's before/after values go through `pack_changes` into `StateStore.add_changes` (compressed Arrow chunks in
`audit_chunks`), and the first stage also writes the run's `lead_runs` rows (`lead_run_rows`: key, chunk, e-mail).
Each run stages a tenth of the leads (`--leads`, default events / 10) for the first time plus, shuffled in, twice
as many random leads of earlier runs (so a lead is in 2.7 runs on average, 2.7M lead-runs by default): a lead's
first run fills most columns, later runs change few. The change probabilities are scaled so that the changed
(lead, column) values the chunks hold — what `change_events` diffs out of them, counted from the generated masks —
come to ~--events. 9 in 10 leads are keyed `salesforce:<id>`, the rest `email:<address>`. Beside the chunks, 1% of
each run's leads are quarantined at comply (and skip score), 5% get a `writeback:salesforce` point event
(`add_events`), and 10% of the leads an assignment, so the look-ups in those tables cost what they would. Half of
the traces are by e-mail, half by id.
PostgreSQL comes from --postgres-url, LEADFLOW_BENCH_PG_URL, LEADFLOW_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/test (a throw-away schema `lf_bench_<hex>`, dropped afterwards).
Then 5 random `forget`s (erasures, which rewrite the chunks holding the lead) are timed. It also prints the query
plans of the look-ups a trace runs, to show they use the lead_key / email / (run_id, chunk) indexes.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from leadflow.audit.changes import ChunkPlan, lead_run_rows, pack_changes
from leadflow.store import StateStore
from leadflow.store.tables import audit_chunks, lead_events, lead_runs
from leadflow.audit.trace import forget, trace

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RUNS = 10
VISITS = 3
"""Each run stages 1/RUNS of the leads new and (VISITS - 1)/RUNS of them again (random leads of earlier runs)."""
QUARANTINE_SHARE = 0.01
WRITEBACK_SHARE = 0.05
ASSIGNED_EVERY = 10
START = datetime(2026, 1, 1, tzinfo=UTC)
COUNTRIES = np.array(["DE", "FR", "US", "GB", "NL", "ES", "IT", "SE", "PL", "CH"])
SOURCES = np.array(["Web", "Event", "Partner", "Webinar", "Referral"])
INDUSTRIES = np.array(["Software", "Manufacturing", "Retail", "Finance", "Healthcare", "Logistics", "Energy"])
SEGMENTS = np.array(["SMB", "Mid-Market", "Enterprise"])
GRADES = np.array(["A", "B", "C", "D"])


def lead_key(n: np.ndarray) -> pd.Series:
    ids = pd.Series(n).astype("string").str.zfill(9)
    keys = ("salesforce:00Q" + ids).astype("string")
    by_email = n % 10 == 9
    keys[by_email] = ("email:" + email(n[by_email])).astype("string").to_numpy()
    return keys


def email(n: np.ndarray) -> pd.Series:
    return ("lead" + pd.Series(n).astype("string") + "@company" + pd.Series(n % 5000).astype("string") + ".com"
            ).astype("string")


# -- the generated stage values --------------------------------------------------------------------------------------
# A column's value for lead n at version v; version v + 1 always differs from v as text (so a masked change is a real
# change, and the mask sums are exactly what `change_events` finds).


def _text(prefix: str, salt: int) -> Callable[[np.ndarray, int], pd.Series]:
    return lambda n, v: (prefix + pd.Series((n * 7919 + v * 104729 + salt) % 1_000_003).astype("string")
                         ).astype("string")


def _choice(values: np.ndarray) -> Callable[[np.ndarray, int], pd.Series]:
    return lambda n, v: pd.Series(values[(n + v) % len(values)], dtype="string")


def _number(high: int, salt: int) -> Callable[[np.ndarray, int], pd.Series]:
    return lambda n, v: pd.Series((n * 31 + v * 17 + salt) % high + 1, dtype="Int64")


def _flag(n: np.ndarray, v: int) -> pd.Series:
    return pd.Series((n + v) % 2 == 0, dtype="boolean")


@dataclass(frozen=True)
class Column:
    name: str
    value: Callable[[np.ndarray, int], pd.Series]
    first: float
    """Share of rows whose value the stage changes in the lead's first run (scaled to hit --events)."""
    again: float
    """The same in the lead's later runs."""
    clean: bool = False
    """Standardize: the input holds a messy form of the value (` UPPER`) that the stage cleans; else the stage
    fills the column in the first run (missing before) and updates it in later ones."""
    fixed: bool = False
    """Not scaled: every new lead that passes comply gets a score, so a trace finds a change (else a quarantine)."""


STAGES: dict[str, tuple[Column, ...]] = {
    "standardize": (
        Column("email", lambda n, v: email(n), 0.5, 0.05, clean=True),
        Column("first_name", _text("Name", 1), 0.3, 0.02, clean=True),
        Column("company", _text("Company ", 2), 0.4, 0.05, clean=True),
        Column("country_code", _choice(COUNTRIES), 0.8, 0.03, clean=True),
        Column("phone_e164", _text("+4930", 3), 0.7, 0.05, clean=True),
    ),
    "enrich": (
        Column("account_id", _text("001A", 4), 0.8, 0.02),
        Column("industry", _choice(INDUSTRIES), 0.7, 0.03),
        Column("employees", _number(50_000, 5), 0.6, 0.05),
        Column("segment", _choice(SEGMENTS), 0.7, 0.03),
    ),
    "comply": (
        Column("consent_required", _flag, 0.9, 0.01),
        Column("mailable", _flag, 0.9, 0.02),
    ),
    "score": (
        Column("score", _number(100, 6), 1.0, 0.3, fixed=True),
        Column("grade", _choice(GRADES), 0.9, 0.1),
    ),
}


def _stage_frames(columns: tuple[Column, ...], n: np.ndarray, first: np.ndarray, run: int, scale: float,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The stage's columns before and after it ran, for leads `n` (`first`: the lead's first run); and how many
    values it changed."""
    before: dict[str, pd.Series] = {}
    after: dict[str, pd.Series] = {}
    changed = 0
    for column in columns:
        share = np.where(first, column.first, column.again) * (1.0 if column.fixed else scale)
        mask = rng.random(len(n)) < np.minimum(share, 1.0)
        changed += int(mask.sum())
        if column.clean:
            new = column.value(n, 0)
            old = new.copy()
            old[mask] = (" " + new[mask].str.upper()).to_numpy()
        else:
            old = column.value(n, run)
            new = old.copy()
            new[mask] = column.value(n[mask], run + 1).to_numpy()
            old[first] = pd.NA  # a new lead has none of the stage's columns yet ...
            new[first & ~mask] = pd.NA  # ... and keeps them missing where the stage found nothing
        before[column.name], after[column.name] = old, new
    return pd.DataFrame(before), pd.DataFrame(after), changed


@dataclass
class Filled:
    changes: int = 0
    lead_runs: int = 0
    chunks: int = 0
    writebacks: int = 0
    quarantined: int = 0
    assigned: int = 0
    writing: float = 0.0
    """Seconds in the store's write calls; the rest of the fill generates and packs the values."""

    def write(self, call: Callable[..., int], *args: object) -> int:
        began = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.writing += time.perf_counter() - began


def fill(store: StateStore, events: int, leads: int) -> Filled:
    """Write ~`events` stage changes for `leads` leads over RUNS runs, as the sync flows do."""
    block = math.ceil(leads / RUNS)
    new_leads = [np.arange(r * block, min((r + 1) * block, leads)) for r in range(RUNS)]
    revisits = [min(r * block, leads, (VISITS - 1) * block) for r in range(RUNS)]
    later_runs = sum(revisits)
    fixed = sum(c.first * leads + c.again * later_runs for cs in STAGES.values() for c in cs if c.fixed)
    scalable = sum(c.first * leads + c.again * later_runs for cs in STAGES.values() for c in cs if not c.fixed)
    scale = max(events - fixed, 0) / scalable
    if any(max(c.first, c.again) * scale > 1 for cs in STAGES.values() for c in cs if not c.fixed):
        print(f"  note: the stages' columns cannot change {events:,} values of {leads:,} leads; pass more --leads",
              flush=True)
    rng = np.random.default_rng(11)
    out = Filled()
    began = time.perf_counter()
    run_ids = [store.start_run("bench_trace", {"run": r}) for r in range(RUNS)]
    for r, run_id in enumerate(run_ids):
        at = START + timedelta(days=r)
        # the run's page in source order: its new leads and leads earlier runs staged, shuffled together
        again = rng.choice(min(r * block, leads), revisits[r], replace=False)
        order = rng.permutation(len(new_leads[r]) + len(again))
        n = np.concatenate((new_leads[r], again))[order]
        first = order < len(new_leads[r])
        index = pd.RangeIndex(len(n))
        keys = lead_key(n)
        plan: ChunkPlan | None = None
        comply_passed: np.ndarray | None = None
        for s, (stage, columns) in enumerate(STAGES.items()):
            rows = np.ones(len(n), dtype=bool) if comply_passed is None else comply_passed
            before, after, changed = _stage_frames(columns, n[rows], first[rows], r, scale, rng)
            before.index = after.index = index[rows]
            stage_keys = keys[rows]
            leads_rows = None
            if plan is None:
                plan = ChunkPlan.for_frame(after.index)
                after = after.assign(created_at=(at - timedelta(hours=1)).isoformat(),
                                     lead_source=pd.Series(SOURCES[n % len(SOURCES)], dtype="string", index=index))
                leads_rows = lead_run_rows(after, stage_keys, plan)
            packed = pack_changes(before, after, [c.name for c in columns], stage_keys, plan)
            out.write(store.add_changes, run_id, stage, at + timedelta(seconds=10 * s), packed, leads_rows)
            out.changes += changed
            out.chunks += len(packed)
            out.lead_runs += 0 if leads_rows is None else len(leads_rows)
            if stage == "comply":
                comply_passed = rng.random(len(n)) >= QUARANTINE_SHARE
                refused = n[~comply_passed]
                quarantine = pd.DataFrame({
                    "lead_key": keys[~comply_passed].to_numpy(), "expectation": "expect_column_values_to_not_be_null",
                    "reason": "consent missing", "row": [{"email": e} for e in email(refused)],
                    "at": at + timedelta(seconds=10 * s)})
                out.quarantined += out.write(store.add_quarantine, run_id, stage, quarantine)
        assert comply_passed is not None
        back = comply_passed & (rng.random(len(n)) < WRITEBACK_SHARE)
        writeback = pd.DataFrame({
            "run_id": run_id, "lead_key": keys[back].to_numpy(), "stage": "writeback:salesforce",
            "column_name": "status", "old_value": "Open", "new_value": "Working",
            "at": at + timedelta(minutes=5)})
        out.writebacks += out.write(store.add_events, writeback)
        print(f"  run {r + 1}/{RUNS}: {len(n):,} leads ({len(new_leads[r]):,} new), {out.changes:,} changes so far "
              f"({time.perf_counter() - began - out.writing:.0f} s generating and packing, {out.writing:.0f} s "
              "writing)", flush=True)
    assigned = np.arange(0, leads, ASSIGNED_EVERY)
    routed = pd.DataFrame({
        "lead_key": lead_key(assigned), "owner_id": "005A", "routing_rule": "emea", "routing_reason": "bench",
        "assigned_at": START + timedelta(days=RUNS - 1), "sla_due_at": START + timedelta(days=RUNS),
        "inputs": [{"email": e} for e in email(assigned)],
    })
    with store.routing_session(run_ids[-1]) as session:
        out.assigned = out.write(session.record, routed)
    for run_id in run_ids:
        store.finish_run(run_id, "completed", {})
    return out


def store_size(store: StateStore) -> str:
    """The store's size on disk: the SQLite file, or the tables (with indexes and TOAST) of the PostgreSQL schema."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            path = store.engine.url.database or ""
            size, wal = (os.path.getsize(p) if os.path.exists(p) else 0 for p in (path, f"{path}-wal"))
            return f"{size / 2**20:,.0f} MiB file + {wal / 2**20:,.0f} MiB WAL"
        sizes = dict(conn.exec_driver_sql(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace s ON s.oid = "
            "c.relnamespace WHERE s.nspname = current_schema() AND c.relkind = 'r'").all())
    parts = ", ".join(f"{t} {sizes.get(t, 0) / 2**20:,.0f}"
                      for t in ("audit_chunks", "lead_runs", "lead_events"))
    return f"{sum(sizes.values()) / 2**20:,.0f} MiB in tables ({parts} MiB)"


def explain(store: StateStore) -> None:
    """Print the plans of the look-ups a trace runs: lead_runs by key and by e-mail, the chunks by run (the
    (run_id, chunk) index) and then their payloads by id, and the point events of lead_events by key and by e-mail (migration 0007's partial index)."""
    with store.engine.connect() as conn:
        run_id, chunk = conn.execute(sa.select(lead_runs.c.run_id, lead_runs.c.chunk).limit(1)).one()
        queries = {
            "lead_runs by key": sa.select(lead_runs.c.run_id, lead_runs.c.chunk).where(
                lead_runs.c.lead_key.in_(["salesforce:00Q000000001"])),
            "lead_runs by email": sa.select(lead_runs.c.lead_key).where(
                lead_runs.c.email.in_(["lead1@company1.com"])).distinct(),
            "audit_chunks by run": sa.select(audit_chunks.c.id, audit_chunks.c.run_id, audit_chunks.c.chunk).where(
                audit_chunks.c.run_id.in_([run_id])),
            "audit_chunks payload by id": sa.select(audit_chunks.c.payload).where(audit_chunks.c.id.in_([1, 2])),
            "lead_events by key": sa.select(lead_events).where(
                lead_events.c.lead_key.in_(["salesforce:00Q000000001"])).order_by(lead_events.c.at, lead_events.c.id),
            "lead_events by email": sa.select(lead_events.c.lead_key).where(
                sa.text("column_name = 'email' AND length(new_value) <= 320"),
                lead_events.c.new_value.in_(["lead1@company1.com"])).distinct(),
        }
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        for name, query in queries.items():
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
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
        assert sum(len(s["changes"]) for r in result["runs"] for s in r["stages"]) >= 1 or result["quarantine"], query
    return times


def report(backend: str, times: dict[str, list[float]]) -> None:
    every = times["email"] + times["id"]
    print(f"{backend:<10} 20 traces  p50 {statistics.median(every) * 1000:7.1f} ms  max {max(every) * 1000:7.1f} ms"
          + "".join(f"   [{kind}: p50 {statistics.median(t) * 1000:.1f} ms, max {max(t) * 1000:.1f} ms]"
                    for kind, t in times.items() if t))


def run_backend(backend: str, url: str, events: int, leads: int, *, fill_store: bool = True) -> None:
    with StateStore.open(url) as store:
        if fill_store:
            print(f"{backend}: filling ~{events:,} change events for {leads:,} leads in {RUNS} runs ...", flush=True)
            began = time.perf_counter()
            filled = fill(store, events, leads)
            analyzing = time.perf_counter()
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
            analyze = time.perf_counter() - analyzing
            took = time.perf_counter() - began
            print(f"{backend}: filled in {took:.0f} s ({filled.writing:.0f} s of it writing to the store, "
                  f"{analyze:.0f} s ANALYZE): {filled.changes:,} change events "
                  f"in {filled.chunks:,} audit chunks, {filled.lead_runs:,} lead_runs rows, {filled.writebacks:,} "
                  f"write-back events, {filled.quarantined:,} quarantined rows, {filled.assigned:,} assignments",
                  flush=True)
        print(f"{backend}: store size {store_size(store)}", flush=True)
        explain(store)
        trace(store, "warm-up")
        report(backend, time_traces(store, leads))
        erased: list[float] = []
        rng = np.random.default_rng(9)
        while len(erased) < 5:
            address = str(email(rng.integers(0, leads, 1))[0])
            if not store.keys_for_email(address):
                continue  # erased by an earlier run on a reused SQLite file
            began = time.perf_counter()
            result = forget(store, address)
            erased.append(time.perf_counter() - began)
            assert result["tables"].get("lead_runs", 0) >= 1 and not trace(store, address)["found"], address
        print(f"{backend:<10} 5 forgets p50 {statistics.median(erased) * 1000:7.1f} ms  "
              f"max {max(erased) * 1000:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="stage changes the audit chunks hold")
    parser.add_argument("--leads", type=int, default=None, help="default: events / 10")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sqlite-path", type=Path, default=None, help="SQLite file (reused when it exists)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    leads = args.leads or max(args.events // 10, RUNS)
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
