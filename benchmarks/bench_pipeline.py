"""The pipeline's stages with their GX gates over N generated messy leads: per-stage and per-gate time, leads/s, RSS.

    python benchmarks/bench_pipeline.py --rows 100000
    python benchmarks/bench_pipeline.py --rows 1000000 --audit --audit-store sqlite:////tmp/a.db   # + the audit trail

Targets at 1M leads on a 2-core machine: ≥ 10,000 leads/s for all stages including their gates, GX ≤ 20% of that
time, peak RSS ≤ 2 GB (the largest of this process and any worker process). `--config` picks the pipeline (e.g.
`pipeline: [standardize, comply]`); the default is standardize → enrich → comply with no reference data. The peak
RSS seen during each step is sampled every 10 ms.

With --audit, each stage's audit-trail chunks are packed (and with --audit-store written, with the first stage's
`lead_runs`) the way `flows/stages.py` does; target: the audit trail ≤ 20% of the run's time with it.
"""

from __future__ import annotations

import argparse
import resource
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from leadflow.audit.changes import ChunkPlan, lead_run_rows, pack_changes
from leadflow.pipeline.config import load_rules
from leadflow.pipeline.io import prepare_leads
from leadflow.pipeline.ledger import RunLedger
from leadflow.pipeline.quality import QualityGate
from leadflow.pipeline.schema import lead_keys
from leadflow.pipeline.settings import Settings
from leadflow.stages import pipeline_from_names
from leadflow.synth import messy_leads


class RssSampler:
    """Highest resident set size seen since the last `take()`, sampled every 10 ms on a thread."""

    def __init__(self) -> None:
        self.peak = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    @staticmethod
    def current() -> float:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.current())
            time.sleep(0.01)

    def take(self) -> float:
        peak, self.peak = max(self.peak, self.current()), self.current()
        return peak


def peak_rss_mb() -> tuple[float, float]:
    """Peak RSS of this process and of the largest finished child process, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--config", type=Path, default=None, help="run config (pipeline, enrichment); default: none")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--audit", action="store_true", help="also pack each stage's audit-trail chunks")
    parser.add_argument("--audit-store", default=None, help="with --audit, also write the chunks and lead_runs to this state store "
                        "URL (e.g. sqlite:////tmp/bench.db or a PostgreSQL URL) and report the audit trail's share")
    args = parser.parse_args()

    started = time.perf_counter()
    raw = messy_leads(args.rows, seed=args.seed)
    generated = time.perf_counter() - started
    print(f"generated {args.rows:,} messy leads in {generated:.1f}s (not counted below)")

    rules = load_rules(args.config)
    gate = QualityGate(Settings().suites_dir(), rules.max_quarantine_share)
    gate.suite("leads_standardize"), gate.suite("leads_comply")
    from leadflow.pipeline.quality import _batch_definition

    _batch_definition()  # GX context start-up (~2-4 s import) is paid once per process, outside the timed loop

    ledger = RunLedger()
    t0 = time.perf_counter()
    loaded = prepare_leads(raw)
    prepare_s = time.perf_counter() - t0
    del raw  # as in file mode, where the raw strings do not outlive reading
    ledger.rows_in = loaded.rows_in
    ledger.quarantine("input", loaded.refused)
    frame = loaded.frame
    rows: list[tuple[str, float, int]] = [("prepare (trim, types, refuse)", prepare_s, loaded.rows_in)]
    stage_total = gate_total = audit_total = 0.0
    audit_bytes = 0
    plan: ChunkPlan | None = None
    run_id = "bench"
    store = None
    if args.audit and args.audit_store:
        from leadflow.store import StateStore

        store = StateStore.open(args.audit_store)
        run_id = store.start_run("bench_pipeline", {"rows": args.rows})
    sampler = RssSampler()
    peaks: dict[str, float] = {"prepare": 0.0}
    for stage in pipeline_from_names(rules.pipeline):
        sampler.take()
        t = time.perf_counter()
        changed = stage.apply(frame, rules)
        stage_s = time.perf_counter() - t
        peaks[f"stage {stage.name}"] = sampler.take()
        t = time.perf_counter()
        result = gate.check(changed, stage.name, stage.suite)
        gate_s = time.perf_counter() - t
        peaks[f"gate {result.suite}"] = sampler.take()
        if args.audit:
            t = time.perf_counter()
            keys = lead_keys(changed)
            leads = None
            if plan is None:
                plan = ChunkPlan.for_frame(changed.index)
                leads = lead_run_rows(changed, keys, plan)
            chunks = pack_changes(frame, changed, stage.writes, keys, plan)
            pack_s = time.perf_counter() - t
            if store is not None:
                store.add_changes(run_id, stage.name, datetime.now(UTC), chunks, leads)
            audit_s = time.perf_counter() - t
            packed = sum(len(c.payload) for c in chunks)
            audit_bytes += packed
            audit_total += audit_s
            write = "" if store is None else f", write {audit_s - pack_s:.2f}s" + (" incl. lead_runs" if leads is not None else "")
            rows.append((f"  audit {stage.name} ({packed / 1e6:,.1f} MB; pack {pack_s:.2f}s{write})", audit_s, len(frame)))
            del chunks, leads, keys
        rows.append((f"stage {stage.name}", stage_s, len(frame)))
        rows.append((f"  gate {result.suite} ({result.rows_quarantined:,} quarantined)", gate_s, len(changed)))
        ledger.quarantine(stage.name, result.quarantine)
        stage_total += stage_s
        gate_total += gate_s
        frame = result.passed
        del changed, result  # as the flow does: the stage's full output must not outlive its gate
    ledger.close(len(frame))
    total = prepare_s + stage_total + gate_total

    own, children = peak_rss_mb()
    print(f"\n{'step':<62}{'seconds':>9}{'leads/s':>12}")
    for name, seconds, n in rows:
        print(f"{name:<62}{seconds:>9.2f}{n / seconds if seconds else float('inf'):>12,.0f}")
    print(f"{'-' * 83}")
    print(f"{'prepare + all stages incl. gates':<62}{total:>9.2f}{args.rows / total:>12,.0f}")
    print(f"GX share of that time: {gate_total / total:.1%}   (stages {stage_total:.2f}s, gates {gate_total:.2f}s)")
    if args.audit:
        what = "pack + write to the store" if store is not None else "pack only"
        print(f"audit trail ({what}, not in the total): {audit_total:.2f}s, {audit_bytes / 1e6:,.1f} MB of chunks; "
              f"share of the run with it: {audit_total / (total + audit_total):.1%}")
    print(f"rows in {ledger.rows_in:,} = rows out {ledger.rows_out:,} + quarantined {ledger.total_quarantined:,} "
          f"{ledger.quarantined}")
    print(f"peak RSS: this process {own:,.0f} MB, largest worker process {children:,.0f} MB")
    print("peak RSS sampled per step: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in peaks.items() if v))


if __name__ == "__main__":
    main()
