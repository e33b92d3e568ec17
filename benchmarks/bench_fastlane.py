"""Speed to lead: demo requests created one at a time, `lead_fastlane` on a loop; created → assigned and written back.

    python benchmarks/bench_fastlane.py                      # 20 leads, the lane every 5 s
    python benchmarks/bench_fastlane.py --interval 60        # as the minutely schedule runs it
    python benchmarks/bench_fastlane.py --leads 50 --org 5000
    python benchmarks/bench_fastlane.py --deployment --interval 60   # a scheduled deployment + process worker

Starts a `prefect server start` subprocess (unless PREFECT_API_URL is set) and a Salesforce sandbox (plus the
firmographics provider) with a routing config for its users, runs the initial load so the hourly watermark exists,
then creates demo-request leads in the org one at a time (1–5 s apart, owned by the web-to-lead queue) while the
main thread runs `lead_fastlane` every `--interval` seconds (start to start), as a schedule would. A lead counts as
done when leadflow's write-back sets its OwnerId in the sandbox to a rep (the org's update log, stamped as it is
applied). Prints p50/p95/max seconds from creation to that write (target p95 <= 60 s) and the lane's run times.

`--deployment` runs the lane as production does instead: a deployment of flows/fastlane.py with an interval
schedule of `--interval` seconds on a `process` work pool, and a `prefect worker start` subprocess, so each run
pays for the scheduler, the worker's polling and a fresh Python process (imports, GX context).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_hourly import REPO, WEB_TO_LEAD_QUEUE, age_stamps, flush_prefect_logs, prefect_server, quiet


class Stopwatch:
    """When each tracked lead was created and when an update first set its OwnerId to someone else than the queue."""

    def __init__(self, org: Any) -> None:
        self.org = org
        self.created: dict[str, float] = {}
        self.assigned: dict[str, tuple[float, str]] = {}
        self.lock = threading.Lock()
        put = org.put

        def timed_put(obj: str, values: dict[str, Any], record_id: str | None = None) -> str:
            result = put(obj, values, record_id)
            owner = values.get("OwnerId")
            if obj == "Lead" and record_id is not None and owner and owner != WEB_TO_LEAD_QUEUE:
                with self.lock:
                    if record_id in self.created and record_id not in self.assigned:
                        self.assigned[record_id] = (time.time(), owner)
            return result

        org.put = timed_put  # the sandbox's handlers call org.put for every update they apply

    def create(self, k: int) -> str:
        """A new demo request, as a web form would create it."""
        record_id = self.org.put("Lead", {
            "FirstName": f"Dana{k}", "LastName": f"Fastlane{k}", "Email": f"dana.fastlane{k}@prospect{k}-corp.com",
            "Company": f"Prospect {k} Corp", "Title": "VP Operations", "Phone": f"+1 415 555 {1000 + k:04d}",
            "Country": "United States", "State": "CA", "City": "San Francisco", "PostalCode": "94105",
            "Website": f"https://prospect{k}-corp.com", "LeadSource": "Demo Request" if k % 4 else "Contact Sales",
            "Status": "Open - Not Contacted", "OwnerId": WEB_TO_LEAD_QUEUE, "IsConverted": False,
            "HasOptedOutOfEmail": False,
        })
        with self.lock:
            self.created[record_id] = time.time()
        return record_id

    def done(self) -> bool:
        with self.lock:
            return len(self.assigned) == len(self.created)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (no interpolation: with 20 values, p95 is the 19th)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=20, help="demo requests created one at a time")
    parser.add_argument("--org", type=int, default=2000, help="leads seeded in the org before the initial load")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between lane run starts (60: minutely)")
    parser.add_argument("--gap", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN", "MAX"),
                        help="seconds between two new leads (uniform, seeded)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up waiting after this many seconds")
    parser.add_argument("--deployment", action="store_true",
                        help="a scheduled deployment run by a process worker instead of an in-process loop")
    args = parser.parse_args()
    quiet()
    sys.path.insert(0, str(REPO))  # flows/ and tasks/ are not installed packages

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["LEADFLOW_HOME"] = str(folder / ".leadflow")
        os.environ.pop("LEADFLOW_DATABASE_URL", None)
        with prefect_server(folder / "prefect"):
            from flows.crm_sync import crm_sync
            from flows.fastlane import lead_fastlane
            from leadflow.sandbox.launch import running_sandboxes

            with running_sandboxes(folder / "sandbox", leads=args.org, systems=("salesforce",), enrichment=True,
                                   routing=True) as boxes:
                config = str(boxes.config_path)
                org = boxes.handles["salesforce"].org
                reps = set(org.objects["User"])
                started = time.perf_counter()
                crm_sync(config_path=config, override_export_guard=True)
                crm_sync(config_path=config)  # absorbs the echo of the initial load's writes
                age_stamps(org, timedelta(hours=2))  # ...which the last hourly run did a while ago
                print(f"initial load and echo: {time.perf_counter() - started:.1f} s; warming the lane")
                lead_fastlane(config_path=config)  # first run: seeds the lane's watermark, imports, GX context

                watch = Stopwatch(org)
                gaps = random.Random(11)

                def create_leads() -> None:
                    for k in range(args.leads):
                        watch.create(k)
                        time.sleep(gaps.uniform(*args.gap))

                creator = threading.Thread(target=create_leads, name="web-forms", daemon=True)
                runs: list[tuple[float, int]] = []
                deadline = time.monotonic() + args.timeout
                if args.deployment:
                    with scheduled_lane(folder, config, args.interval) as deployment_id:
                        creator.start()
                        while time.monotonic() < deadline and (creator.is_alive() or not watch.done()):
                            time.sleep(0.5)
                        runs = deployment_runs(deployment_id)
                else:
                    creator.start()
                    while time.monotonic() < deadline and (creator.is_alive() or not watch.done()):
                        tick = time.monotonic()
                        summary = lead_fastlane(config_path=config)
                        runs.append((time.monotonic() - tick, int(summary.get("hot_leads", 0))))
                        time.sleep(max(0.0, args.interval - (time.monotonic() - tick)))
                creator.join()
                leads = {rid: dict(org.objects["Lead"][rid]) for rid in watch.created}
            flush_prefect_logs()

    report(watch, leads, reps, runs, args)
    return 0


POOL = "leadflow-fastlane-bench"


@contextmanager
def scheduled_lane(folder: Path, config: str, interval: float) -> Iterator[str]:
    """A deployment of lead_fastlane on an interval schedule and a process worker polling its pool (stopped on
    exit); yields the deployment id once the worker is up."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)
    deployment_id = flow.from_source(source=str(REPO), entrypoint="flows/fastlane.py:lead_fastlane").deploy(
        name="fastlane-bench", work_pool_name=POOL, interval=timedelta(seconds=interval),
        parameters={"config_path": config}, build=False, push=False, print_next_steps=False, ignore_warnings=True,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=os.environ["PREFECT_API_URL"], DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
               PREFECT_LOGGING_LEVEL="WARNING")
    with (folder / "worker.log").open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type",
                                   "process"], env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield str(deployment_id)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    failed = [line for line in (folder / "worker.log").read_text().splitlines() if "Failed" in line or "Crash" in line]
    for line in failed[:5]:
        print(f"  worker: {line}")


def deployment_runs(deployment_id: str, wait: float = 60.0) -> list[tuple[float, int]]:
    """(run seconds, 0) of each finished run of the deployment, once none is pending or running (at most `wait` s);
    prints how late the runs started against their schedule."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + wait
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[
                UUID(deployment_id)])))
            busy = [r for r in runs if r.state_type and r.state_type.value in ("PENDING", "RUNNING")]
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(1)
    done = [r for r in runs if r.end_time and r.start_time and r.expected_start_time]
    late = sorted((r.start_time - r.expected_start_time).total_seconds() for r in done)
    states: dict[str, int] = {}
    for r in runs:
        states[r.state_name or "?"] = states.get(r.state_name or "?", 0) + 1
    print(f"deployment runs by state: {states}")
    if late:
        print(f"  flow start minus scheduled time: p50 {percentile(late, 0.5):+.1f} s, max {late[-1]:+.1f} s "
              "(the worker prefetches: the process starts before the scheduled time)")
    return [((r.end_time - r.start_time).total_seconds(), 0) for r in done]


def report(watch: Stopwatch, leads: dict[str, dict[str, Any]], reps: set[str], runs: list[tuple[float, int]],
           args: argparse.Namespace) -> None:
    latencies = [watch.assigned[rid][0] - created for rid, created in watch.created.items() if rid in watch.assigned]
    missing = sorted(set(watch.created) - set(watch.assigned))
    wrong = sorted(rid for rid, lead in leads.items() if lead["OwnerId"] not in reps)
    print(f"\n{len(watch.created)} demo requests, lane every {args.interval:g} s: {len(latencies)} assigned and "
          f"written back, {len(missing)} not within {args.timeout:g} s, {len(wrong)} not owned by a rep at the end")
    if latencies:
        p95 = percentile(latencies, 0.95)
        verdict = "within" if p95 <= 60 else "OVER"
        print(f"created → OwnerId written: p50 {percentile(latencies, 0.5):.1f} s, p95 {p95:.1f} s ({verdict} the 60 s "
              f"target), max {max(latencies):.1f} s, min {min(latencies):.1f} s")
    if runs:
        seconds = sorted(s for s, _ in runs)
        pulled = f", {sum(n for _, n in runs)} hot leads pulled in all" if not args.deployment else ""
        print(f"lead_fastlane runs: {len(runs)}{pulled}; run time p50 {percentile(seconds, 0.5):.1f} s, "
              f"max {seconds[-1]:.1f} s")
    for rid in missing[:5]:
        print(f"  not written: {rid} {leads[rid]['LeadSource']} owner {leads[rid]['OwnerId']}")


if __name__ == "__main__":
    raise SystemExit(main())
