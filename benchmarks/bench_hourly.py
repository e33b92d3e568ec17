"""One hourly `crm_sync` run, end to end, over N leads that are new since the watermark, with routing.

    python benchmarks/bench_hourly.py                       # 1,000 new leads over a 2,000-lead org
    python benchmarks/bench_hourly.py --new 5000 --org 10000
    PREFECT_API_URL=http://127.0.0.1:4200/api python benchmarks/bench_hourly.py   # against a running server

Starts a `prefect server start` subprocess (unless PREFECT_API_URL is set), a Salesforce sandbox plus the
firmographics provider with a routing config for the sandbox's users (`running_sandboxes(..., routing=True)`),
runs one sync to set the watermark (the initial load, export guard overridden), inserts N new leads, then times one
`crm_sync` flow run from call to return: the full default pipeline (standardize, enrich, comply, score, lifecycle,
assign) and the write-back. Prints seconds (target <= 15 s for 1,000) and the run summary's per-stage and per-gate
seconds. Sandbox, provider and flow share this process, so the figure includes serving the API calls.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
WEB_TO_LEAD_QUEUE = "00G5e0000000001AAA"
"""Owner of a lead as it arrives (a web-to-lead queue, not a rep): routing must give it a rep."""


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """The API URL of a Prefect server: $PREFECT_API_URL if set, else a `prefect server start` subprocess with its
    own PREFECT_HOME under `home` (stopped on exit). Sets PREFECT_API_URL for this process; import prefect after."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_HOME=str(home),
               PREFECT_UI_API_URL=api, PREFECT_API_URL=api)
    started = time.perf_counter()
    with (home / "server.log").open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
        try:
            while True:
                if server.poll() is not None:
                    raise SystemExit(f"prefect server exited:\n{(home / 'server.log').read_text()}")
                try:
                    if requests.get(f"{api}/health", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                if time.perf_counter() - started > 90:
                    raise SystemExit(f"prefect server not healthy after 90 s:\n{(home / 'server.log').read_text()}")
                time.sleep(0.3)
            print(f"prefect server on {api} healthy after {time.perf_counter() - started:.1f} s")
            os.environ["PREFECT_API_URL"] = api
            yield api
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def quiet() -> None:
    """Telemetry off (no internet here) and leadflow's state in a fresh folder, before prefect is imported."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def age_stamps(org: Any, by: timedelta) -> None:
    """Move every record's modification stamps `by` into the past (as if the last writes were that long ago)."""
    from leadflow.sandbox.salesforce import sf_datetime

    with org.lock:
        for records in org.objects.values():
            for record_id, record in list(records.items()):
                if record.get("SystemModstamp"):
                    moment = datetime.strptime(record["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
                    stamp = sf_datetime(moment - by)
                    records[record_id] = {**record, "SystemModstamp": stamp, "LastModifiedDate": stamp}


def insert_new_leads(org: Any, n: int, seed: int) -> list[str]:
    """`n` new messy leads (leadflow.synth) created now in the sandbox org, owned by the web-to-lead queue."""
    from leadflow.sandbox.salesforce import LEAD_STATUSES
    from leadflow.synth import messy_leads

    frame = messy_leads(n, seed)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    ids = []
    for row in records:
        ids.append(org.put("Lead", {
            "FirstName": row["first_name"], "LastName": row["last_name"] or "[not provided]", "Email": row["email"],
            "Company": row["company"] or "[not provided]", "Title": row["title"], "Phone": row["phone"],
            "Country": row["country"], "State": row["state"], "City": row["city"],
            "PostalCode": row["postal_code"], "Website": row["website"], "LeadSource": row["lead_source"],
            "Status": row["status"] if row["status"] in LEAD_STATUSES else "Open - Not Contacted",
            "OwnerId": WEB_TO_LEAD_QUEUE, "IsConverted": False, "HasOptedOutOfEmail": False,
        }))
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new", type=int, default=1000, help="leads created after the watermark (timed)")
    parser.add_argument("--org", type=int, default=2000, help="leads seeded in the org before the first sync")
    parser.add_argument("--no-provider", action="store_true", help="no firmographics provider emulator")
    parser.add_argument("--respect-export-guard", action="store_true",
                        help="do not override the export guard on the timed run (new leads are all changed, so a run "
                        "that pulls mostly new leads is refused; the refused attempt is reported, then re-run)")
    args = parser.parse_args()
    quiet()
    sys.path.insert(0, str(REPO))  # flows/ and tasks/ are not installed packages

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["LEADFLOW_HOME"] = str(folder / ".leadflow")
        os.environ.pop("LEADFLOW_DATABASE_URL", None)
        with prefect_server(folder / "prefect"):
            from flows.crm_sync import crm_sync
            from leadflow.connectors.base import ExportGuardError
            from leadflow.sandbox.launch import running_sandboxes

            with running_sandboxes(folder / "sandbox", leads=args.org, systems=("salesforce",),
                                   enrichment=not args.no_provider, routing=True) as boxes:
                config = str(boxes.config_path)
                org = boxes.handles["salesforce"].org
                started = time.perf_counter()
                first = crm_sync(config_path=config, override_export_guard=True)
                print(f"initial load: {first['systems']['salesforce']['pulled']:,} leads in "
                      f"{time.perf_counter() - started:.1f} s (sets the watermark)")
                # Our own writes bumped every stamp past the watermark: one sync absorbs that echo (writes nothing).
                started = time.perf_counter()
                echo = crm_sync(config_path=config)["systems"]["salesforce"]
                print(f"echo of the initial load: {echo['pulled']:,} pulled, {echo['written']} written in "
                      f"{time.perf_counter() - started:.1f} s (moves the watermark to now)")
                # The previous hourly run was a while ago: its echo lies before the connector's 5-minute look-back.
                age_stamps(org, timedelta(hours=2))
                ids = set(insert_new_leads(org, args.new, seed=4242))
                writes_before = len(org.field_writes)

                if not args.respect_export_guard:
                    print("timed run: export guard overridden (all new leads change; --respect-export-guard to see)")
                started = time.perf_counter()
                try:
                    summary = crm_sync(config_path=config, override_export_guard=not args.respect_export_guard)
                except ExportGuardError as exc:
                    print(f"timed run refused by the export guard after {time.perf_counter() - started:.1f} s: {exc}")
                    print("re-running with the guard overridden: no write and no watermark was committed, but the "
                          "refused run's routing assignments were (watch the OwnerId count below)")
                    started = time.perf_counter()
                    summary = crm_sync(config_path=config, override_export_guard=True)
                seconds = time.perf_counter() - started
                writes = org.field_writes[writes_before:]
                owners = {rid for obj, rid, fields in writes if obj == "Lead" and rid in ids and "OwnerId" in fields}
                failures = failure_codes()
            flush_prefect_logs()
    report(summary, args.new, seconds, len(owners))
    if failures:
        print(f"  write-back failures (dead letters): {failures}")
    return 0


def failure_codes() -> dict[str, int]:
    """Dead letters of the runs so far, by error code."""
    from leadflow.store import StateStore

    letters = StateStore.open().dead_letters("salesforce")
    return {str(k): int(v) for k, v in letters["error_code"].value_counts().items()} if len(letters) else {}


def flush_prefect_logs() -> None:
    """Send buffered run logs before the server stops (else: "Error logging to API" at exit)."""
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()


def report(summary: dict[str, Any], new: int, seconds: float, reassigned: int) -> None:
    sf = summary["systems"]["salesforce"]
    verdict = "within" if seconds <= 15 else "OVER"
    print(f"\ncrm_sync, {new:,} new leads: {seconds:.2f} s end to end ({verdict} the 15 s target); "
          f"{new / seconds:,.0f} leads/s")
    print(f"  pulled {sf['pulled']:,}, written {sf['written']:,}, failed {sf['failed']}, stopped {sf['stopped']}; "
          f"rows in {summary.get('rows_in')}, out {summary.get('rows_out')}, "
          f"quarantined {summary.get('rows_quarantined')}; OwnerId written on {reassigned:,} new leads")
    if sf.get("routed_by_rule"):
        print(f"  routed by rule {sf['routed_by_rule']}, held {sf.get('held', 0)}")
    changed = {name: change["count"] for name, change in (sf.get("changes") or {}).items()}
    top = ", ".join(f"{name} {count}" for name, count in sorted(changed.items(), key=lambda kv: -kv[1])[:6])
    print(f"  {len(changed)} fields changed (owner_id on {changed.get('owner_id', 0)}); most: {top}")
    stages, gates = summary.get("stage_seconds") or {}, summary.get("gate_seconds") or {}
    if stages or gates:
        print(f"  {'stage':<14}{'stage s':>9}{'gate s':>9}")
        for name in dict.fromkeys([*stages, *gates]):
            print(f"  {name:<14}{stages.get(name, 0.0):>9.3f}{gates.get(name, 0.0):>9.3f}")
        inside = sum(stages.values()) + sum(gates.values())
        print(f"  {'total':<14}{sum(stages.values()):>9.3f}{sum(gates.values()):>9.3f}   "
              f"(pull, reference pulls, write-back, state and Prefect: {seconds - inside:.2f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
