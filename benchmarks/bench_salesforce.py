"""Pull + write-back of N leads through the Salesforce connector against the local HTTPS sandbox.

    python benchmarks/bench_salesforce.py                          # 50,000 leads, REST pull, Bulk API 2.0 write
    python benchmarks/bench_salesforce.py --leads 20000 --write collections
    python benchmarks/bench_salesforce.py --pull bulk               # backfill through Bulk API 2.0 query

Prints leads/s and API calls per 1,000 leads for each phase. Client and sandbox share this process (and its GIL),
so the figures are a floor for the connector's own overhead, not a prediction of a real org's throughput.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from leadflow.connectors.salesforce import SalesforceCredentials, salesforce_connector
from leadflow.sandbox.salesforce import running_salesforce


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=2000, help="REST query batchSize (200..2000)")
    parser.add_argument("--pull", choices=("rest", "bulk"), default="rest")
    parser.add_argument("--write", choices=("bulk", "collections"), default="bulk")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        with running_salesforce(Path(folder), leads=args.leads, stamp_run=500, page_size=args.page_size) as sandbox:
            print(f"sandbox seeded with {args.leads:,} leads and started in {time.perf_counter() - started:.1f} s")
            credentials = SalesforceCredentials(
                login_url=sandbox.url, client_id=sandbox.client_id, client_secret=sandbox.client_secret
            )
            connector = salesforce_connector(
                credentials, session=sandbox.session(), page_size=args.page_size, bulk_wait=0.0,
                bulk_query_threshold=0 if args.pull == "bulk" else 10**9, max_change_share=1.0,
                bulk_write_threshold=2000 if args.write == "bulk" else 10**9,
            )

            started, calls = time.perf_counter(), connector.api_calls
            if args.pull == "bulk":
                pages = connector.backfill(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
            else:
                pages = connector.pull(None)
            pulled = pd.concat(list(pages), ignore_index=True)
            report("pull (" + args.pull + ")", len(pulled), time.perf_counter() - started, connector.api_calls - calls)

            # Three changed fields per lead, the shape leadflow's write-back produces.
            changes = pd.DataFrame({
                "record_id": pulled["lead_id"],
                "country_code": "US",
                "mailable": pd.array([i % 2 == 0 for i in range(len(pulled))], dtype="boolean"),
                "seniority": "manager",
            })
            started, calls = time.perf_counter(), connector.api_calls
            result = connector.write(changes)
            report("write (" + args.write + ")", len(result.written), time.perf_counter() - started,
                   connector.api_calls - calls)
            if len(result.failures):
                print(f"  {len(result.failures)} failures: {result.failures['error_code'].value_counts().to_dict()}")
    return 0


def report(phase: str, leads: int, seconds: float, calls: int) -> None:
    per_k = calls / leads * 1000 if leads else float("nan")
    print(f"{phase:<20} {leads:>8,} leads in {seconds:6.2f} s = {leads / seconds:>9,.0f} leads/s; "
          f"{calls} API calls = {per_k:.2f} per 1,000 leads")


if __name__ == "__main__":
    raise SystemExit(main())
