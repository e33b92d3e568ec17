"""A Salesforce org shaped like a real one, first met as a new user would: doctor → setup → doctor → first sync.

    python benchmarks/bench_real_org.py [--leads 5000] [--seed 7]

The sandbox is seeded like a real org (web-to-lead leads in a queue or with the default lead owner; open leads reps
typed in, and every worked, nurtured, closed and converted lead, with reps, some of them deactivated; status history)
and served as a *stock* org: none of leadflow's custom fields exist. The script then does what the README's
"Connecting a real org" says — `doctor` (must fail, naming the missing fields), `setup salesforce`, `doctor` (must
pass) — and one sync with routing (the initial load, export guard overridden), and prints what the sync changed:

- owner changes on leads reps work (a worked status, or open and owned by an active rep) and on converted leads —
  both must be 0;
- writes of any field to a converted lead (the sandbox's field-write log) — must be 0;
- the share of new leads nobody owns yet (open, in a queue or with the default lead owner / an inactive user) that
  got a rep — the issue asks ≥ 90%;
- the run's routed / kept / held counts, values refused or cut to fit, API calls and wall time.

Without PREFECT_API_URL, Prefect starts a temporary server first (10–20 s, not counted in the sync's time).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

OPEN = "Open - Not Contacted"


def snapshot(org: Any) -> dict[str, dict[str, Any]]:
    return {rid: {"OwnerId": r["OwnerId"], "Status": r["Status"], "IsConverted": r["IsConverted"]}
            for rid, r in org.objects["Lead"].items()}


def kind_of(owner: str | None, org: Any, unassigned: set[str]) -> str:
    if not owner:
        return "nobody"
    if owner.startswith("00G"):
        return "queue"
    if owner in unassigned:
        return "default owner"
    user = org.objects["User"].get(owner)
    if user is None:
        return "unknown"
    return "active rep" if user.get("IsActive") else "inactive rep"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LEADFLOW_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("LEADFLOW_DATABASE_URL", None)
        from flows.crm_sync import crm_sync
        from leadflow.pipeline.config import load_rules
        from leadflow.ops.doctor import preflight
        from leadflow.sandbox.launch import running_sandboxes, sandbox_unassigned_owners, setup_salesforce_sandbox

        with running_sandboxes(Path(tmp) / "sandbox", leads=args.leads, seed=args.seed, systems=("salesforce",),
                               enrichment=True, routing=True, stock_org=True, setup=False) as boxes:
            org = boxes.handles["salesforce"].org
            config = boxes.config_path
            print(f"stock org with {len(org.objects['Lead']):,} leads, {len(org.objects['User'])} users "
                  f"({sum(not u['IsActive'] for u in org.objects['User'].values())} inactive), "
                  f"{len(org.objects['Account']):,} accounts, {len(org.objects['Contact']):,} contacts")

            before_report = preflight(load_rules(config))
            missing = [c.item for c in before_report.failures]
            print(f"doctor before setup: {'FAIL' if not before_report.ok else 'ok'} — {len(missing)} problems, "
                  f"e.g. {', '.join(missing[:4])}")
            clock = time.perf_counter()
            result = setup_salesforce_sandbox(config)
            print(f"setup salesforce: {len(result.created)} fields created, {len(result.granted)} granted "
                  f"in {time.perf_counter() - clock:.1f} s")
            after_report = preflight(load_rules(config))
            print(f"doctor after setup: {'ok' if after_report.ok else 'FAIL'} "
                  f"({len(after_report.warnings)} warnings)")

            unassigned = set(sandbox_unassigned_owners(org))
            before = snapshot(org)
            writes_before = len(org.field_writes)
            crm_sync(config_path=str(config), systems=["salesforce"], dry_run=True,  # warm: Prefect server up
                     override_export_guard=True)
            clock = time.perf_counter()
            summary = crm_sync(config_path=str(config), systems=["salesforce"], override_export_guard=True)
            seconds = time.perf_counter() - clock
            after = snapshot(org)
            written = org.field_writes[writes_before:]
            from leadflow.store import StateStore

            letters = StateStore.open().dead_letters("salesforce")

        report = summary["systems"]["salesforce"]
        counts: dict[str, list[int]] = {}
        for rid, was in before.items():
            now = after[rid]
            kind = kind_of(was["OwnerId"], org, unassigned)
            if was["IsConverted"]:
                group = "converted"
            elif was["Status"] != OPEN:
                group = "worked status"
            elif kind == "active rep":
                group = "open, active rep owns it"
            elif kind in ("queue", "default owner", "inactive rep", "nobody"):
                group = "new: queue / default owner / inactive rep"
            else:
                group = "open, unknown owner"
            moved = now["OwnerId"] != was["OwnerId"]
            to_rep = moved and kind_of(now["OwnerId"], org, unassigned) == "active rep"
            entry = counts.setdefault(group, [0, 0, 0])
            entry[0] += 1
            entry[1] += moved
            entry[2] += to_rep
        converted = {rid for rid, was in before.items() if was["IsConverted"]}
        converted_writes = sum(1 for obj, rid, _ in written if obj == "Lead" and rid in converted)

        print()
        print(f"first sync: {seconds:.1f} s, pulled {report['pulled']:,}, written back {report['written']:,}, "
              f"failed {report['failed']}, API calls {report.get('api_calls')}")
        print(f"  routed {report.get('routed', 0):,}, held {report.get('held', 0):,}, kept with their owner "
              f"{report.get('kept_with_owner', 0):,}; converted leads never written: {report.get('skipped_converted', 0)}")
        for reason, n in sorted(report.get("kept_by_reason", {}).items(), key=lambda kv: -kv[1]):
            print(f"      {n:>7,}  kept: {reason}")
        if report.get("refused") or report.get("truncated"):
            print(f"  values refused (not written): {report.get('refused', {})}; cut to fit: {report.get('truncated', 0)}")
        print(f"  quarantined: {summary['rows_quarantined']}")
        if len(letters):
            codes = letters.groupby(["error_code"]).size().to_dict()
            print(f"  write failures (dead letters) by error: {codes}; e.g. {letters['message'].iloc[0]!r}")
        print()
        print(f"  {'leads before the sync':<44}{'leads':>8}{'owner changed':>15}{'to an active rep':>18}")
        for group, (n, moved, to_rep) in sorted(counts.items()):
            print(f"  {group:<44}{n:>8,}{moved:>15,}{to_rep:>18,}")
        new = counts.get("new: queue / default owner / inactive rep", [0, 0, 0])
        worked = counts.get("worked status", [0, 0, 0])[1] + counts.get("open, active rep owns it", [0, 0, 0])[1]
        print()
        print(f"  owner changes on leads reps work: {worked}; on converted leads: {counts.get('converted', [0, 0])[1]}")
        print(f"  writes to converted leads: {converted_writes}")
        share = new[2] / new[0] if new[0] else 0.0
        print(f"  new leads nobody owned yet that got a rep: {new[2]:,} of {new[0]:,} ({share:.1%})")


if __name__ == "__main__":
    main()
