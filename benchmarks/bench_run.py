"""`leadflow run` end to end against a pass-through of the same file, measured in the same run.

    python benchmarks/bench_run.py --rows 1000000
    python benchmarks/bench_run.py --rows 1000000 10000000 --keep /tmp/bench-run   # flat memory from 1M to 10M
    python benchmarks/bench_run.py --rows 1000000 --storeless   # also: the run with no per-lead store work

For each size: a messy lead file is written (CSV; generated once and kept under --keep), then two processes run one
after the other on it:
- the pass-through: `pandas.read_csv` + `DataFrame.to_csv` of the same file, nothing else;
- `leadflow run -i FILE -o OUT` exactly as a user types it (its own Prefect flow, state store, audit trail, gates,
  quarantine file and KPIs), with a fresh LEADFLOW_HOME.
A third process runs `leadflow run` on the file's first 100 leads: its CPU is what any run costs whatever its size
(Prefect's temporary server, imports, the GX suites), so the per-lead cost of the big run is printed beside it.
With --storeless, a fourth runs it with its per-lead store work stubbed out (`STORELESS`): the floor under any
store design.
Each process's CPU (user + sys, its child processes included) and peak RSS (the largest of it and its children) come
from the kernel (`wait4`), so nothing is sampled. Printed: CPU, wall time, peak RSS, the ratios run / pass-through,
and where the run's time went (read, stages, gates, audit trail, state saving, writing, KPIs) from the run's own
summary in the state store.

Targets (issue 17, 1M messy leads): CPU ≤ 5× the pass-through's; peak RSS ≤ 1.5 GB; at 10M, peak RSS within 10 % of
the 1M figure; GX ≤ 20 % of the run; publish_kpis and state saving each ≤ 5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

BLOCK = 250_000
"""Leads generated per block; blocks past the first reuse its messiness with new ids and addresses."""


def write_messy_file(path: Path, rows: int, seed: int = 17) -> Path:
    """`rows` messy leads as CSV, written block by block (memory stays at one block)."""
    if path.exists():
        return path
    from leadflow.synth import messy_leads

    tmp = path.with_suffix(".tmp")
    base = messy_leads(min(rows, BLOCK), seed=seed)
    written = 0
    block = 0
    with tmp.open("w", encoding="utf-8", newline="") as out:
        while written < rows:
            n = min(BLOCK, rows - written)
            frame = base.head(n).copy()
            if block:
                # same messiness, other people: unique ids and addresses for every block
                frame["lead_id"] = frame["lead_id"] + f"B{block}"
                frame["email"] = frame["email"].str.replace("@", f".b{block}@", n=1, regex=False)
            frame.to_csv(out, index=False, header=written == 0)
            written += n
            block += 1
    tmp.replace(path)
    return path


MEASURE = (
    "import json, resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "wall = time.perf_counter() - started\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps({'rc': done.returncode, 'out': (done.stdout + done.stderr)[-3000:], 'wall': wall,\n"
    "                  'cpu': usage.ru_utime + usage.ru_stime, 'rss_mb': usage.ru_maxrss / 1024}))\n"
)
"""Runs a command in a fresh process of its own, so the kernel's totals for that process's children are the command's
alone: CPU (user + sys) of it and every process it waited for, and the largest peak RSS among them."""


def run_measured(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """`argv`'s CPU seconds, wall seconds and peak RSS (MB), from the kernel; exits on failure with its output."""
    done = subprocess.run([sys.executable, "-c", MEASURE, *argv], env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result["rc"]:
        sys.exit(f"{' '.join(argv[:3])} failed ({result['rc']}):\n{result['out']}")
    return result


PASS_THROUGH = (
    "import sys, pandas as pd\n"
    "pd.read_csv(sys.argv[1]).to_csv(sys.argv[2], index=False)\n"
)


STORELESS = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import leadflow.audit.kpi_rollups as kpis, tasks.io as io, tasks.report as report\n"
    "io.record_changes.fn = lambda *args, **kwargs: None\n"
    "io.load_lifecycle_state.fn = lambda frame, rules=None: frame\n"
    "io.save_lifecycle_state.fn = lambda frame, run_id: 0\n"
    "report.record_chunk_kpis.fn = lambda *args, **kwargs: 0\n"
    "kpis.record_run_kpis = lambda *args, **kwargs: 0\n"
    "from leadflow.cli import main\n"
    "sys.argv = ['leadflow', *sys.argv[2:]]\n"
    "main()\n"
)
"""`leadflow run` with the store work a run does per lead stubbed out, in this process only (nothing in leadflow can
turn it off): the audit trail's rows (`record_changes`; its change chunks are still packed), the lifecycle state's
load and save, and the KPI recording (the KPI summary is still read and published). What is left — Prefect's
temporary server, imports, the GX suites, reading, the stages, the gates, writing — is a floor that no store design
goes below. The default pipeline has no `assign` stage, so no assignment is stored either way."""


def storeless(argv: list[str], out: Path, env: dict[str, str]) -> dict[str, float]:
    """`run_measured` of `argv` (a `leadflow run` command line) under `STORELESS`, writing `out`, into a fresh SQLite
    store of its own (never `LEADFLOW_DATABASE_URL`'s, which the other run may have filled); exits when that store
    holds any per-lead row afterwards (the stubs did not take: another project's tasks were loaded)."""
    home = Path(tempfile.mkdtemp(prefix="bench-run-home-"))
    command = argv[1:]
    command[command.index("-o") + 1] = str(out)  # its own output beside the measured run's
    root = str(Path(__file__).resolve().parents[1])
    own = {k: v for k, v in env.items() if k != "LEADFLOW_DATABASE_URL"} | {"LEADFLOW_HOME": str(home)}
    bare = run_measured([sys.executable, "-c", STORELESS, root, *command], own)
    if not (home / "state.db").is_file():
        sys.exit(f"--storeless: the run left no state store at {home / 'state.db'}")
    with sqlite3.connect(home / "state.db") as db:
        kept = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("lead_runs", "lead_state", "kpi_lead_facts")}
    if any(kept.values()):
        sys.exit(f"--storeless: the run still stored per-lead rows {kept}; run from this repository's project")
    return bare


def run_stats(home: Path) -> dict:
    """The last `lead_sync` run's summary from the state store under `home`."""
    os.environ["LEADFLOW_HOME"] = str(home)
    from leadflow.store import StateStore

    runs = StateStore.open().runs(limit=1, flow="lead_sync")
    stats = runs[0].get("stats") if runs else None
    return stats if isinstance(stats, dict) else json.loads(stats or "{}")


def breakdown(stats: dict, wall: float) -> list[tuple[str, float]]:
    timings = stats.get("timings", {})
    parts = [("read", timings.get("read_seconds", 0.0)),
             ("stages", sum(stats.get("stage_seconds", {}).values())),
             ("gates (GX)", sum(stats.get("gate_seconds", {}).values())),
             ("audit trail", stats.get("audit_seconds", 0.0)),
             ("state saving", timings.get("state_seconds", 0.0)),
             ("write", timings.get("write_seconds", 0.0)),
             ("publish_kpis", timings.get("kpis_seconds", 0.0))]
    return parts


FIXED_ROWS = 100


def fixed_cost(folder: Path, source: Path, leadflow: str, env: dict[str, str], config: Path | None) -> dict:
    """The CPU of `leadflow run` on the first FIXED_ROWS leads of `source`: what a run costs whatever its size."""
    small = folder / f"head-{FIXED_ROWS}.csv"
    if not small.exists():
        pd.read_csv(source, nrows=FIXED_ROWS, dtype=str, keep_default_na=False).to_csv(small, index=False)
    argv = [leadflow, "run", "-i", str(small), "-o", str(folder / "out-head.csv")]
    if config:
        argv += ["--config", str(config)]
    return run_measured(argv, {**env, "LEADFLOW_HOME": tempfile.mkdtemp(prefix="bench-run-home-")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000])
    parser.add_argument("--keep", type=Path, default=None, help="Folder for the generated files (kept for reruns).")
    parser.add_argument("--config", type=Path, default=None, help="leadflow.yaml for the run (default: built-in).")
    parser.add_argument("--storeless", action="store_true",
                        help="Also run it with its per-lead store work stubbed out: the floor under any store design.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-run-"))
    folder.mkdir(parents=True, exist_ok=True)
    leadflow = str(Path(sys.executable).with_name("leadflow"))
    results = []
    for rows in args.rows:
        source = write_messy_file(folder / f"messy-{rows}.csv", rows)
        size_mb = source.stat().st_size / 1e6
        env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        passed = run_measured([sys.executable, "-c", PASS_THROUGH, str(source), str(folder / "pass.csv")], env)
        home = Path(tempfile.mkdtemp(prefix="bench-run-home-"))
        argv = [leadflow, "run", "-i", str(source), "-o", str(folder / f"out-{rows}.csv")]
        if args.config:
            argv += ["--config", str(args.config)]
        ran = run_measured(argv, {**env, "LEADFLOW_HOME": str(home)})
        stats = run_stats(home)
        fixed = fixed_cost(folder, source, leadflow, env, args.config)
        results.append((rows, passed, ran))
        print(f"\n{rows:,} messy leads ({size_mb:,.0f} MB CSV); rows out {stats.get('rows_out')}, "
              f"quarantined {stats.get('rows_quarantined')}")
        print(f"  {'':<14}{'CPU s':>9}{'wall s':>9}{'peak RSS MB':>13}")
        print(f"  {'pass-through':<14}{passed['cpu']:>9.1f}{passed['wall']:>9.1f}{passed['rss_mb']:>13.0f}")
        print(f"  {'leadflow run':<14}{ran['cpu']:>9.1f}{ran['wall']:>9.1f}{ran['rss_mb']:>13.0f}")
        print(f"  ratio run / pass-through: CPU {ran['cpu'] / passed['cpu']:.2f}x (target <= 5), "
              f"RSS {ran['rss_mb'] / passed['rss_mb']:.2f}x; {rows / ran['wall']:,.0f} leads/s")
        per_lead = (ran["cpu"] - fixed["cpu"]) / rows * 1e6
        print(f"  fixed cost: a {FIXED_ROWS}-lead run takes {fixed['cpu']:.1f} s CPU (Prefect's temporary server, "
              f"imports, GX suites); the rest is {per_lead:.0f} us CPU per lead "
              f"(pass-through: {passed['cpu'] / rows * 1e6:.1f} us)")
        print("  where the run's wall time went (share of the run):")
        for name, seconds in breakdown(stats, ran["wall"]):
            print(f"    {name:<16}{seconds:>8.1f} s  {100 * seconds / ran['wall']:>5.1f} %")
        if args.storeless:
            bare = storeless(argv, folder / f"out-{rows}-storeless.csv", env)
            print(f"  without its per-lead store work (audit rows, lifecycle state, KPI recording stubbed out): "
                  f"{bare['cpu']:.1f} s CPU, {bare['cpu'] / passed['cpu']:.2f}x the pass-through, peak RSS "
                  f"{bare['rss_mb']:.0f} MB; the store work is {ran['cpu'] - bare['cpu']:.1f} s CPU")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"\npeak RSS {last[0]:,} vs {first[0]:,} leads: {last[2]['rss_mb'] / first[2]['rss_mb']:.3f}x "
              "(target within 10 %)")


if __name__ == "__main__":
    main()
