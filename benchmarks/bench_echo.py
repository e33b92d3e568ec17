"""The echo of a sync's own writes: how many leads the next hourly `crm_sync` re-pulls and how many it processes again.

    python benchmarks/bench_echo.py                      # 5,000 leads, the full pipeline with routing
    python benchmarks/bench_echo.py --leads 20000
    python benchmarks/bench_echo.py --without-receipts   # the same, with the receipts dropped before sync 2
    PREFECT_API_URL=http://127.0.0.1:4200/api python benchmarks/bench_echo.py   # against a running server

Starts a `prefect server start` subprocess (unless PREFECT_API_URL is set), a Salesforce sandbox of `--leads` leads
plus the firmographics provider with a routing config for its users (`running_sandboxes(..., routing=True)`, as
bench_hourly does). Sync 1 is the initial load (export guard overridden): it writes nearly every lead, which moves
their SystemModstamp past the watermark. Sync 2, the next hourly run, re-pulls them; with write receipts it
recognizes its own writes and processes none of them (goal: 0 re-processed). `--without-receipts` empties the
`write_receipts` table between the two syncs: sync 2 then processes the whole echo, as before receipts. Prints
leads re-pulled, re-processed and written by sync 2, and both syncs' seconds (flow call to return).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_hourly import REPO, flush_prefect_logs, prefect_server, quiet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000, help="leads seeded in the org before the first sync")
    parser.add_argument("--no-provider", action="store_true", help="no firmographics provider emulator")
    parser.add_argument("--without-receipts", action="store_true",
                        help="empty the write_receipts table before sync 2 (the behaviour before receipts)")
    args = parser.parse_args()
    quiet()
    sys.path.insert(0, str(REPO))  # flows/ and tasks/ are not installed packages

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["LEADFLOW_HOME"] = str(folder / ".leadflow")
        os.environ.pop("LEADFLOW_DATABASE_URL", None)
        with prefect_server(folder / "prefect"):
            from flows.crm_sync import crm_sync
            from leadflow.sandbox.launch import running_sandboxes
            from leadflow.store import StateStore
            from leadflow.store.tables import write_receipts

            with running_sandboxes(folder / "sandbox", leads=args.leads, systems=("salesforce",),
                                   enrichment=not args.no_provider, routing=True) as boxes:
                config = str(boxes.config_path)
                org = boxes.handles["salesforce"].org
                started = time.perf_counter()
                first = crm_sync(config_path=config, override_export_guard=True)
                first_seconds = time.perf_counter() - started
                written = {rid for obj, rid, _ in org.field_writes if obj == "Lead"}
                with StateStore.open() as store, store.engine.begin() as conn:
                    receipts = conn.execute(write_receipts.select().with_only_columns(
                        write_receipts.c.lead_key)).all()
                    if args.without_receipts:
                        conn.execute(write_receipts.delete())
                writes_before = len(org.field_writes)
                started = time.perf_counter()
                second = crm_sync(config_path=config)
                second_seconds = time.perf_counter() - started
                rewritten = {rid for obj, rid, _ in org.field_writes[writes_before:] if obj == "Lead"}
            flush_prefect_logs()
    report(args, first, first_seconds, len(written), len(receipts), second, second_seconds, len(rewritten))
    return 0


def report(args: Any, first: dict[str, Any], first_seconds: float, written: int, receipts: int,
           second: dict[str, Any], second_seconds: float, rewritten: int) -> None:
    one, two = first["systems"]["salesforce"], second["systems"]["salesforce"]
    receipts_note = "dropped before sync 2" if args.without_receipts else "kept"
    print(f"\nsync 1 (initial load, {args.leads:,} leads): {first_seconds:.1f} s; pulled {one['pulled']:,}, "
          f"written {one['written']:,} ({written:,} leads updated in the org), failed {one['failed']}; "
          f"{receipts:,} write receipts ({receipts_note})")
    repulled = two["pulled"] + two.get("echo_skipped", 0)
    verdict = "goal met" if two["pulled"] == 0 else "goal: 0"
    print(f"sync 2 (the next hourly run): {second_seconds:.1f} s; re-pulled {repulled:,} leads, "
          f"re-processed {two['pulled']:,} ({verdict}), echo skipped {two.get('echo_skipped', 0):,}, "
          f"written {two['written']:,} ({rewritten:,} leads updated in the org), failed {two['failed']}")
    print(f"  rows in {second.get('rows_in')}, out {second.get('rows_out')}, "
          f"quarantined {second.get('rows_quarantined')}")


if __name__ == "__main__":
    raise SystemExit(main())
