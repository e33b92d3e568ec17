"""Speed to lead through push intake against the polling fast lane, in one run: created → owner written back.

    python benchmarks/bench_intake.py                 # 200k-record org, 200 leads over 120 s, then 60 polled
    python benchmarks/bench_intake.py --quick         # smoke run: 2k records, 20 leads over 20 s, 10 polled

Starts a Prefect server (unless PREFECT_API_URL is set), the Salesforce (routing for its users), HubSpot and Marketo
sandboxes and the firmographics provider, all pushing to a `leadflow intake serve` subprocess whose intake.yaml this
script writes (secrets by reference: HubSpot's from the environment, Marketo's and the web form's from files). The
org is marked as synced up to now with its CRM mirror built, as after earlier hourly runs (bench_hourly.py). One lead
per source goes through first, unmeasured: the service is long-running, its cold start is not speed-to-lead.

Phase 1 (push): `--leads` demo requests (the fast lane's HOT_SOURCES) evenly over `--seconds`, round robin: Salesforce
Leads (REST API, owned by the web-to-lead queue), HubSpot contacts, Marketo leads (REST) and signed posts to the
intake's /intake/web. Phase 2 (polling): the intake restarted with `--no-process` (the sandboxes still push, nothing
is processed) and `lead_fastlane` run in-process every `--interval` s (start to start) as deployed; `--poll-leads`
over `--poll-seconds`: Salesforce, Marketo, and web forms as Web-to-Lead creates them (a Lead in the org). No HubSpot:
its mapping has no lead source, so the fast lane never takes a HubSpot contact (the hourly sync does).

Per lead, from creation (Salesforce: the Lead's CreatedDate; the others: when the create request or form post was
sent) to the owner written back: for Salesforce and web leads the org's field history (LeadHistory, Field "Owner",
CreatedDate, stamped as the update is applied); HubSpot and Marketo get no owner (their mappings carry none), so for
them the write receipt leadflow stores right after the lead's write-back (`write_receipts.at`, first value seen,
polled every 0.25 s), counted only with an owner in `assignments` (its `assigned_at` is the batch's or run's start,
earlier than the routing itself, so not used). Prints n, p50 / p95 / max and how many got no owner within
`--timeout`, per phase and source, the goal (push p95 <= 10 s), and where push latency goes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import yaml

from bench_fastlane import percentile
from bench_hourly import REPO, WEB_TO_LEAD_QUEUE, flush_prefect_logs, mark_synced, prefect_server, quiet

GOAL_P95 = 10.0
HUBSPOT_SECRET_ENV = "LEADFLOW_SANDBOX_HUBSPOT_CLIENT_SECRET"
PUSH_SOURCES = ("salesforce", "hubspot", "marketo", "web")
POLL_SOURCES = ("salesforce", "marketo", "web")
STORE_SOURCES = ("hubspot", "marketo")
"""Sources whose owner is observed in leadflow's state store (write receipt), not in the CRM."""


def _shuffled(left: list[str], right: list[str], seed: int) -> list[tuple[str, str]]:
    import random

    pairs = list(itertools.product(left, right))
    random.Random(seed).shuffle(pairs)
    return pairs


FIRST_NAMES = ("Aurelio Brisa Casimir Delphine Eero Fenna Gaspard Hiltrud Ivo Jolanda Kasimir Liesl Mattias Noor Osric "
               "Pernille Quirin Rosalind Sindre Tamsin Ulrich Valeska Wendelin Xenia Yannick Zofia Anselm Bettina Cosmo "
               "Dagny Evander Filippa Gudrun Hamish Ingrid Jarvis Katalin Leopold Mireille Nestor").split()
LAST_NAMES = ("Achterberg Bramwell Castellanos Dunleavy Eberhardt Fairbrother Gallardo Hollingsworth Isaksen Jablonski "
              "Kowalczyk Lindqvist Montgomery Nakashima Oyelaran Pettersen Quintero Rasmussen Szymanski Thorvaldsen "
              "Underwood Vasquez Whitlock Xiong Yamamoto Zielinski Abernathy Blackwood Crisostomo Delacroix Esterhazy "
              "Fitzgerald Grimaldi Hargreaves Illingworth Jovanovic Kristiansen Lockhart Marchetti Nightingale").split()
COMPANY_WORDS = ("Amberline Basalt Cobalt Driftwood Emberly Foxglove Granite Heliotrope Ironbark Juniper Kestrel Larkspur "
                 "Meridian Nimbus Obsidian Pinnacle Quartzite Redwood Saffron Tidewater Umberfield Vantage Wildflower "
                 "Yarrow Zephyr Alderbrook Bluestem Cinderhill Dovetail Evergreen").split()
COMPANY_KINDS = ("Analytics Robotics Logistics Biolabs Foundry Outfitters Dynamics Ventures Textiles Aerospace Mills "
                 "Kitchens Networks Pharma Studios Mining Marine Optics Orchards Acoustics Brewing Ceramics Instruments "
                 "Turbines Lumber Printing Semiconductors Vineyards Freight Insurance").split()
PEOPLE = _shuffled(FIRST_NAMES, LAST_NAMES, 1)
"""1,600 distinct (first, last) pairs; a run uses the n-th for its n-th lead."""
COMPANIES = [f"{word} {kind}" for word, kind in _shuffled(COMPANY_WORDS, COMPANY_KINDS, 2)]
"""900 distinct company names."""


@dataclass
class Lead:
    phase: str
    source: str
    email: str
    created: float
    record_id: str = ""
    """Salesforce Lead id (a web lead's once found), HubSpot contact id, Marketo lead id; web: the form's lead_id."""
    form_id: str = ""
    """A web lead's lead_id in the form post (its inbox record id)."""
    done: float | None = None
    note: str = ""
    """What was found at the end (for a lead without an owner in time)."""

    @property
    def key(self) -> str:
        prefix = {"hubspot": "hubspot:", "marketo": "marketo:mkto-"}.get(self.source, "salesforce:")
        return f"{prefix}{self.record_id}"


def epoch(stamp: str) -> float:
    """A Salesforce stamp (`2026-12-06T13:00:00.123+0000`) as Unix seconds."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class Sources:
    """Creates leads the way each source does, through the sandboxes' APIs (and the intake's web endpoint)."""

    def __init__(self, boxes: Any, intake_url: str, web_secret: str, tag: str) -> None:
        from leadflow.sandbox.salesforce import DATA

        sf, hub, mk = (boxes.handles[name] for name in ("salesforce", "hubspot", "marketo"))
        self.org, self.sf = sf.org, sf.session()
        self.sf.headers["Authorization"] = f"Bearer {sf.token()}"
        self.sf_leads = f"{sf.url}{DATA}/sobjects/Lead/"
        self.hub_url, self.hub_headers = f"{hub.url}/crm/v3/objects/contacts", {"Authorization": f"Bearer {hub.token}"}
        token = requests.get(f"{mk.url}/identity/oauth/token", params={
            "grant_type": "client_credentials", "client_id": mk.client_id, "client_secret": mk.client_secret},
            timeout=10).json()["access_token"]
        self.mk_url, self.mk_headers = f"{mk.url}/rest/v1/leads.json", {"Authorization": f"Bearer {token}"}
        self.http = requests.Session()
        self.http.trust_env = False
        self.intake_url, self.web_secret, self.tag = intake_url, web_secret, tag

    def person(self, phase: str, k: int) -> dict[str, str]:
        """A new person at a new company, unlike every other one of the run (else the enrich stage flags a possible
        duplicate, and routing holds it): the n-th of a shuffled product of distinct first and last names, and of
        company words; the e-mail domain carries the run's tag."""
        n = {"warmup": 0, "push": 10, "poll": 600}[phase] + k
        first, last = PEOPLE[n % len(PEOPLE)]
        company = COMPANIES[n % len(COMPANIES)]
        slug = company.lower().replace(" ", "")
        return {"first": first, "last": last, "company": company, "email": f"{first}.{last}@{slug}-{self.tag}.com".lower(),
                "title": "VP Operations", "source": "Demo Request" if k % 4 else "Contact Sales"}

    def create(self, phase: str, source: str, k: int, web_to_lead: bool = False) -> Lead:
        p = self.person(phase, k)
        if source == "salesforce" or (source == "web" and web_to_lead):
            # REST API, sObject Basic Information, POST /services/data/vXX.X/sobjects/Lead/
            # (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_sobject_create.htm).
            reply = self.sf.post(self.sf_leads, json={
                "FirstName": p["first"], "LastName": p["last"], "Email": p["email"], "Company": p["company"],
                "Title": p["title"], "Country": "United States", "State": "CA", "City": "San Francisco",
                "LeadSource": p["source"], "Status": "Open - Not Contacted", "OwnerId": WEB_TO_LEAD_QUEUE}, timeout=30)
            reply.raise_for_status()
            record_id = reply.json()["id"]
            return Lead(phase, source, p["email"], epoch(self.org.objects["Lead"][record_id]["CreatedDate"]), record_id)
        sent = time.time()
        if source == "hubspot":
            # CRM API, Contacts: POST /crm/v3/objects/contacts (https://developers.hubspot.com/docs/api/crm/contacts).
            reply = self.http.post(self.hub_url, headers=self.hub_headers, json={"properties": {
                "email": p["email"], "firstname": p["first"], "lastname": p["last"], "company": p["company"],
                "jobtitle": p["title"], "country": "United States"}}, timeout=30)
            reply.raise_for_status()
            return Lead(phase, source, p["email"], sent, str(reply.json()["id"]))
        if source == "marketo":
            # REST API, "Sync Leads": POST /rest/v1/leads.json (https://developer.adobe.com/marketo-apis/api/mapi/
            # #tag/Leads/operation/syncLeadUsingPOST). 606 (rate limit, 100 calls / 20 s shared with leadflow's own
            # calls) and 615 (concurrency) are answered with HTTP 200: wait and try again, as "Error Codes" advises
            # (https://experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/error-codes).
            for _ in range(30):
                sent = time.time()
                answer = self.http.post(self.mk_url, headers=self.mk_headers, timeout=30, json={
                    "action": "createOnly", "lookupField": "email", "input": [{
                        "email": p["email"], "firstName": p["first"], "lastName": p["last"], "company": p["company"],
                        "title": p["title"], "country": "United States", "leadSource": p["source"]}]}).json()
                if not {e.get("code") for e in answer.get("errors") or []} & {"606", "615"}:
                    break
                time.sleep(1.0)
            result = (answer.get("result") or [answer])[0]
            if "id" not in result:
                raise RuntimeError(f"Marketo refused the lead: {result}")
            return Lead(phase, source, p["email"], sent, str(result["id"]))
        from leadflow.intake.verify import web_signature

        lead_id = f"form-{self.tag}-{phase}-{k}"
        body = json.dumps({"leads": [{
            "lead_id": lead_id, "email": p["email"], "first_name": p["first"], "last_name": p["last"],
            "company": p["company"], "title": p["title"], "country": "United States", "state": "CA",
            "city": "San Francisco", "lead_source": p["source"]}]}).encode()
        stamp = str(int(time.time()))
        reply = self.http.post(f"{self.intake_url}/intake/web", data=body, timeout=30, headers={
            "Content-Type": "application/json", "X-Leadflow-Timestamp": stamp,
            "X-Leadflow-Signature": web_signature(self.web_secret, stamp, body)})
        reply.raise_for_status()
        return Lead(phase, source, p["email"], sent, form_id=lead_id)


class Watch:
    """Which leads have their owner written back, and when (see the module docstring for how each is observed)."""

    def __init__(self, org: Any, store_url: str, reps: set[str]) -> None:
        import sqlalchemy as sa

        self.org, self.engine, self.reps = org, sa.create_engine(store_url), reps
        self.leads: list[Lead] = []
        self.lock = threading.Lock()
        self._scanned = 0
        self._by_email: dict[str, str] = {}
        self._receipt_at: dict[str, float] = {}

    def add(self, lead: Lead) -> None:
        with self.lock:
            self.leads.append(lead)

    def _new_lead_emails(self) -> None:
        """Salesforce Lead ids by e-mail, for the leads created since the last look (a web lead's Lead)."""
        table = self.org.objects["Lead"]
        with self.org.lock:
            fresh = list(itertools.islice(table.keys(), self._scanned, None))
        for record_id in fresh:
            email = table[record_id].get("Email")
            if email:
                self._by_email[str(email).lower()] = record_id
        self._scanned += len(fresh)

    def _receipts(self, keys: list[str]) -> None:
        import sqlalchemy as sa

        from leadflow.store.tables import write_receipts as t

        wanted = [k for k in keys if k not in self._receipt_at]
        if not wanted:
            return
        with self.engine.connect() as conn:
            for key, at in conn.execute(sa.select(t.c.lead_key, t.c.at).where(t.c.lead_key.in_(wanted))):
                stamp = at if at.tzinfo else at.replace(tzinfo=UTC)
                self._receipt_at.setdefault(key, stamp.timestamp())

    def pending(self) -> int:
        """Look once: how many leads have no owner written yet (marks those that have)."""
        with self.lock:
            leads = [lead for lead in self.leads if lead.done is None]
        if any(lead.source == "web" for lead in leads):
            self._new_lead_emails()
        for lead in leads:
            if lead.source == "web" and not lead.record_id:
                lead.record_id = self._by_email.get(lead.email.lower(), "")
        self._receipts([lead.key for lead in leads if lead.source in STORE_SOURCES])
        left = 0
        for lead in leads:
            if lead.source in STORE_SOURCES:
                lead.done = self._receipt_at.get(lead.key)
            elif lead.record_id and (self.org.objects["Lead"].get(lead.record_id) or {}).get("OwnerId") in self.reps:
                lead.done = -1.0  # a rep owns it; the exact time comes from the field history in `settle`
            left += lead.done is None
        return left

    def settle(self, store: Any, timeout: float) -> None:
        """Exact times at the end: Salesforce and web leads' first owner change in the field history (LeadHistory,
        Field "Owner": Object Reference "LeadHistory"); owners checked for all; an owner after `timeout` is late."""
        with self.lock, self.org.lock:
            leads, rows = list(self.leads), list(self.org.objects["LeadHistory"].values())
        history: dict[str, float] = {}
        for row in (r for r in rows if r.get("Field") == "Owner"):
            history[row["LeadId"]] = min(epoch(row["CreatedDate"]), history.get(row["LeadId"], float("inf")))
        routed = store.assignments([lead.key for lead in leads], inputs=False)
        owners = dict(zip(routed["lead_key"], routed["owner_id"], strict=True)) if len(routed) else {}
        reasons = dict(zip(routed["lead_key"], routed["routing_reason"], strict=True)) if len(routed) else {}
        for lead in leads:
            if lead.source in STORE_SOURCES:
                lead.note = (f"receipt {'yes' if lead.key in self._receipt_at else 'no'}, owner {owners.get(lead.key)}"
                             f" ({reasons.get(lead.key)})")
                if not owners.get(lead.key):
                    lead.done = None
            else:
                owner = (self.org.objects["Lead"].get(lead.record_id) or {}).get("OwnerId")
                lead.done = history.get(lead.record_id) if owner in self.reps else None
                lead.note = f"Lead {lead.record_id or 'not found'}, OwnerId {owner}"
            if lead.done is not None:
                lead.note += f", after {lead.done - lead.created:.1f} s"
                lead.done = lead.done if lead.done - lead.created <= timeout else None


def paced(count: int, seconds: float, sources: tuple[str, ...], make: Callable[[str, int], Lead],
          watch: Watch, errors: list[str]) -> threading.Thread:
    """A thread creating `count` leads evenly over `seconds`, round robin across `sources`."""
    gap = seconds / max(count, 1)

    def run() -> None:
        start = time.monotonic()
        for k in range(count):
            time.sleep(max(0.0, start + k * gap - time.monotonic()))
            try:
                watch.add(make(sources[k % len(sources)], k))
            except Exception as exc:  # noqa: BLE001 - reported, the workload goes on
                errors.append(f"{sources[k % len(sources)]} #{k}: {type(exc).__name__}: {exc}"[:300])

    thread = threading.Thread(target=run, name="leads", daemon=True)
    thread.start()
    return thread


def wait_for(watch: Watch, creator: threading.Thread, timeout: float, tick: float = 0.25,
             between: Callable[[], None] | None = None) -> None:
    """Until every lead created has its owner, or `timeout` seconds after the last was created."""
    deadline = None
    while True:
        left = watch.pending()
        if not creator.is_alive():
            deadline = deadline or time.monotonic() + timeout
            if not left or time.monotonic() > deadline:
                return
        if between is not None:
            between()
        else:
            time.sleep(tick)


class Intake:
    """A `leadflow intake serve` subprocess (its log in the run folder)."""

    def __init__(self, config: Path, url: str, log: Path) -> None:
        self.config, self.url, self.log, self.process = config, url, log, None

    def start(self, *, process: bool = True) -> None:
        command = [sys.executable, "-m", "leadflow.cli", "intake", "serve", "--config", str(self.config)]
        env = {**os.environ, "LEADFLOW_PROJECT_DIR": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command + ([] if process else ["--no-process"]), cwd=REPO, env=env,
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SystemExit(f"intake not up (exit {self.process.poll()}):\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: uvicorn stops, the processor finishes its batch
            self.process.wait(120)
        self.process = None


def write_intake_config(folder: Path, port: int, run_config: Path, org_id: str, web_secret: str,
                        args: argparse.Namespace) -> Path:
    """intake.yaml with every source; secrets by reference (HubSpot's from the environment, the others from files)."""
    web = folder / "web-form.secret"
    web.write_text(web_secret + "\n", encoding="utf-8")
    web.chmod(0o600)
    path = folder / "intake.yaml"
    path.write_text(yaml.safe_dump({"intake": {
        "host": "127.0.0.1", "port": port,
        "sources": {"salesforce": {"organization_ids": [org_id[:15]]},
                    "hubspot": {"client_secret": {"env": HUBSPOT_SECRET_ENV}},
                    "marketo": {"shared_secret": {"file": str((folder / "marketo-push.secret").resolve())}},
                    "web": {"secret": {"file": str(web.resolve())}}},
        "processing": {"run_config": str(run_config), "batch": {"max_notifications": args.batch_size,
                                                                 "max_wait_ms": args.batch_wait_ms}},
    }}, sort_keys=False), encoding="utf-8")
    return path


def org_sizes(records: int) -> tuple[int, int, int]:
    """(leads, accounts, contacts) of an org of `records` records: a tenth leads, a fifth accounts, the rest
    contacts. HubSpot and Marketo get as many contacts/leads as the org has leads."""
    leads, accounts = max(records // 10, 10), max(records // 5, 10)
    return leads, accounts, max(records - leads - accounts, 10)


def main() -> int:
    args = parse_args()
    quiet()
    sys.path.insert(0, str(REPO))  # flows/ and tasks/ are not installed packages
    os.environ.setdefault(HUBSPOT_SECRET_ENV, secrets.token_hex(24))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        os.environ["LEADFLOW_HOME"] = str(folder / ".leadflow")
        os.environ.pop("LEADFLOW_DATABASE_URL", None)
        with prefect_server(folder / "prefect"):
            results = run(folder, args)
            flush_prefect_logs()
    report(*results, args)
    return 0


def run(folder: Path, args: argparse.Namespace) -> tuple[list[Lead], dict[str, Any]]:
    from flows.fastlane import lead_fastlane
    from leadflow.sandbox.launch import push_targets, running_sandboxes, sandbox_unassigned_owners
    from leadflow.sandbox.salesforce_org import ORG_ID
    from leadflow.store import StateStore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    boxes_dir = folder / "boxes"
    targets = push_targets(boxes_dir, {s: f"{url}/intake/{s}" for s in ("salesforce", "hubspot", "marketo")})
    leads_n, accounts, contacts = org_sizes(args.records)
    started = time.perf_counter()
    with running_sandboxes(boxes_dir, leads=leads_n, accounts=accounts, contacts=contacts, routing=True,
                           enrichment=not args.no_provider, push=targets) as boxes:
        org = boxes.handles["salesforce"].org
        print(f"org: {leads_n:,} leads, {accounts:,} accounts, {contacts:,} contacts = {args.records:,} records; "
              f"HubSpot and Marketo {leads_n:,} each (up in {time.perf_counter() - started:.1f} s)", flush=True)
        # The sandboxes write their whole state file on every HubSpot/Marketo write: not the real systems' cost.
        boxes.handles["marketo"].instance.persist_to = None
        boxes.handles["hubspot"].portal.state_file = None
        config = str(boxes.config_path)
        build = mark_synced(config)
        with StateStore.open() as store:
            for system in ("hubspot", "marketo"):
                store.set_watermark(system, datetime.now(UTC), "bench-setup")
            store_url = store.url
        print(f"CRM mirror built in {build['seconds']:.1f} s ({build['methods']}); all systems marked synced",
              flush=True)
        web_secret = secrets.token_hex(24)
        intake = Intake(write_intake_config(boxes_dir, port, boxes.config_path, ORG_ID, web_secret, args), url,
                        folder / "intake.log")
        reps = {uid for uid, user in org.objects["User"].items() if user.get("IsActive")} - set(
            sandbox_unassigned_owners(org))
        sources = Sources(boxes, url, web_secret, secrets.token_hex(3))
        extra: dict[str, Any] = {"errors": []}
        try:
            intake.start()
            warm = Watch(org, store_url, reps)
            started = time.perf_counter()
            for k, source in enumerate(PUSH_SOURCES):
                warm.add(sources.create("warmup", source, k))
            wait_for(warm, threading.Thread(), 240)
            print(f"intake warm: {len(warm.leads) - warm.pending()}/{len(warm.leads)} warm-up leads through in "
                  f"{time.perf_counter() - started:.1f} s (cold start: mirror, connectors, GX)", flush=True)

            push = Watch(org, store_url, reps)
            push_started = datetime.now(UTC)
            print(f"phase 1 (push): {args.leads} leads over {args.seconds:g} s ...", flush=True)
            creator = paced(args.leads, args.seconds, PUSH_SOURCES,
                            lambda source, k: sources.create("push", source, k), push, extra["errors"])
            wait_for(push, creator, args.timeout)
            with StateStore.open() as store:
                push.settle(store, args.timeout)
                extra["inbox"] = store.inbox_notifications()
                extra["batches"] = [r for r in store.runs(limit=100_000, flow="intake")
                                    if r["started_at"] and _utc(r["started_at"]) >= push_started]
            intake.stop()

            intake.start(process=False)
            started = time.perf_counter()
            lead_fastlane(config_path=config)  # seeds the lane's watermark; picks up phase 1's echoes
            print(f"phase 2 (polling): intake accepting only; fast lane warm run {time.perf_counter() - started:.1f} "
                  f"s; {args.poll_leads} leads over {args.poll_seconds:g} s, lane every {args.interval:g} s ...",
                  flush=True)
            poll = Watch(org, store_url, reps)
            lane_runs: list[tuple[float, int]] = []
            next_run = [time.monotonic()]

            def lane() -> None:
                now = time.monotonic()
                if now < next_run[0]:
                    time.sleep(min(0.25, next_run[0] - now))
                    return
                next_run[0] = now + args.interval
                summary = lead_fastlane(config_path=config)
                lane_runs.append((time.monotonic() - now, int(summary.get("hot_leads", 0))))

            creator = paced(args.poll_leads, args.poll_seconds, POLL_SOURCES,
                            lambda source, k: sources.create("poll", source, k, web_to_lead=True), poll,
                            extra["errors"])
            wait_for(poll, creator, args.timeout, between=lane)
            with StateStore.open() as store:
                poll.settle(store, args.timeout)
            extra["lane_runs"] = lane_runs
            try:
                extra["tasks"] = prefect_tasks("intake_batch", push_started)
            except Exception as exc:  # noqa: BLE001 - a breakdown, not the figures
                print(f"no Prefect task breakdown: {type(exc).__name__}: {exc}"[:300])
        finally:
            intake.stop()
            sources.sf.close()
        extra["pushed"] = {name: box.stats() for name, box in boxes.push.items()}
    return push.leads + poll.leads, extra


def prefect_tasks(flow_name: str, since: datetime) -> dict[str, Any]:
    """From the Prefect API: the runs of `flow_name` started since `since` (count, seconds) and their task runs'
    seconds by task name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters as f

    flows, tasks, since_filter = f.FlowFilter(name=f.FlowFilterName(any_=[flow_name])), [], f.FlowRunFilter(
        start_time=f.FlowRunFilterStartTime(after_=since))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=flows, flow_run_filter=since_filter, limit=200)
        for offset in itertools.count(0, 200):  # the API answers at most 200 rows a call
            page = client.read_task_runs(flow_filter=flows, flow_run_filter=since_filter, limit=200, offset=offset)
            tasks += page
            if len(page) < 200:
                break
    by_name: dict[str, list[float]] = {}
    for task in (t for t in tasks if t.start_time and t.end_time):
        by_name.setdefault(task.name.rsplit("-", 1)[0], []).append((task.end_time - task.start_time).total_seconds())
    seconds = [(run.end_time - run.start_time).total_seconds() for run in runs if run.start_time and run.end_time]
    return {"runs": len(runs), "flow_seconds": seconds, "tasks": by_name}


def _utc(value: Any) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- the report ------------------------------------------------------------------------------------------------------


def figures(values: list[float]) -> str:
    if not values:
        return "n 0"
    return (f"n {len(values):>3}  p50 {percentile(values, 0.5):6.1f} s  p95 {percentile(values, 0.95):6.1f} s  "
            f"max {max(values):6.1f} s")


def report(leads: list[Lead], extra: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nspeed to lead, created → owner written back (no owner within {args.timeout:g} s: 'late')")
    print("  Salesforce, web: OwnerId in the org's field history; HubSpot, Marketo: leadflow's write receipt after the "
          "write-back (owner in its assignments; their systems get no owner)")
    verdict = None
    for phase, title in (("push", f"push intake (batch ≤ {args.batch_size} or {args.batch_wait_ms} ms)"),
                         ("poll", f"polling fast lane (every {args.interval:g} s)")):
        mine = [lead for lead in leads if lead.phase == phase]
        done = [lead.done - lead.created for lead in mine if lead.done is not None]
        print(f"\n{title}: {figures(done)}  late {len(mine) - len(done)}")
        for source in PUSH_SOURCES:
            some = [lead for lead in mine if lead.source == source]
            if some:
                values = [lead.done - lead.created for lead in some if lead.done is not None]
                label = "web (web-to-lead)" if phase == "poll" and source == "web" else source
                print(f"  {label:<18} {figures(values)}  late {len(some) - len(values)}")
        if phase == "push" and mine:  # a late lead counts as infinitely late
            verdict = percentile(done + [float("inf")] * (len(mine) - len(done)), 0.95)
    if verdict is not None:
        print(f"\ngoal: push p95 ≤ {GOAL_P95:g} s (late leads counted as never): {verdict:.1f} s → "
              f"{'MET' if verdict <= GOAL_P95 else 'NOT MET'}")
    breakdown([lead for lead in leads if lead.phase == "push"], extra)
    runs = extra.get("lane_runs") or []
    if runs:
        seconds = sorted(s for s, _ in runs)
        print(f"fast lane: {len(runs)} runs, {sum(n for _, n in runs)} hot leads pulled; run time p50 "
              f"{percentile(seconds, 0.5):.1f} s, max {seconds[-1]:.1f} s")
    print("pushed by the sandboxes: " + "; ".join(
        f"{name} {stats['events']} events, {stats['attempts']} requests, {stats['gave_up']} given up"
        for name, stats in (extra.get("pushed") or {}).items()))
    for lead in [lead for lead in leads if lead.done is None][:10]:
        print(f"  late: {lead.phase} {lead.source} {lead.key} ({lead.note})")
    for error in extra["errors"][:10]:
        print(f"  creation failed: {error}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")


def breakdown(leads: list[Lead], extra: dict[str, Any]) -> None:
    """Where push latency goes, per lead: delivery (created → recorded in the inbox), inbox wait (→ claimed by a
    batch), batch (→ owner written); and the intake batches' own timings."""
    inbox = extra.get("inbox")
    if inbox is None or inbox.empty:
        return
    inbox = inbox.sort_values("id")
    first = inbox.drop_duplicates(["system", "record_id"], keep="first").set_index(["system", "record_id"])
    parts: dict[str, list[float]] = {"delivery": [], "inbox wait": [], "batch": []}
    for lead in leads:
        ident = (lead.source, lead.form_id or lead.record_id)
        if ident not in first.index or lead.done is None:
            continue
        row = first.loc[ident]
        received, claimed = _utc(row["received_at"]).timestamp(), row["claimed_at"]
        parts["delivery"].append(received - lead.created)
        if not pd.isna(claimed):
            parts["inbox wait"].append(_utc(claimed).timestamp() - received)
            parts["batch"].append(lead.done - _utc(claimed).timestamp())
    print("\nwhere push latency goes (per lead; 'batch' = claimed → owner written: fetch, stages, write-back):")
    for name, values in parts.items():
        print(f"  {name:<11} {figures(values)}")
    prefect = extra.get("tasks") or {}
    if prefect.get("runs"):
        flows, tasks = prefect["flow_seconds"], prefect["tasks"]
        inside = sum(sum(v) for v in tasks.values())
        print(f"intake_batch flow runs (Prefect): {prefect['runs']}, {figures(flows)}; per run: "
              f"{inside / max(len(flows), 1):.2f} s in {sum(len(v) for v in tasks.values()) / max(len(flows), 1):.0f} "
              f"task runs, {(sum(flows) - inside) / max(len(flows), 1):.2f} s outside tasks")
        top = sorted(tasks.items(), key=lambda kv: -sum(kv[1]))[:10]
        print("  task seconds per batch: " + ", ".join(
            f"{name} {sum(v) / max(len(flows), 1):.2f} ({len(v)}x)" for name, v in top))
    batches = extra.get("batches") or []
    if batches:  # the runs' own timings: the work inside the stages and gates, without task orchestration
        sizes = [int((b["params"] or {}).get("notifications", 0)) for b in batches]
        inner = pd.DataFrame([{f"{group.split('_')[0]}:{name}": float(value or 0.0) for group in
                               ("stage_seconds", "gate_seconds", "timings")
                               for name, value in ((b["stats"] or {}).get(group) or {}).items()} for b in batches])
        top = inner.mean().sort_values(ascending=False).head(10)
        print(f"intake runs (state store): {len(batches)}, notifications per batch p50 {percentile(sizes, 0.5)}, max "
              f"{max(sizes)}; stages + gates {inner.filter(regex='^(stage|gate):').sum(axis=1).mean():.2f} s a "
              "batch; mean s: " + ", ".join(f"{name} {value:.2f}" for name, value in top.items()))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="Salesforce org size (leads, accounts, contacts)")
    parser.add_argument("--leads", type=int, default=200, help="phase 1: leads pushed")
    parser.add_argument("--seconds", type=float, default=120.0, help="phase 1: over this many seconds, evenly")
    parser.add_argument("--poll-leads", type=int, default=60, help="phase 2: leads the polling fast lane gets")
    parser.add_argument("--poll-seconds", type=float, default=None, help="phase 2: over this many seconds "
                        "(default: --seconds: the arrivals cover several lane intervals)")
    parser.add_argument("--interval", type=float, default=30.0, help="phase 2: seconds between fast lane starts")
    parser.add_argument("--timeout", type=float, default=300.0, help="a lead without owner this long after its "
                        "creation counts as late; waiting stops this long after the last creation")
    parser.add_argument("--batch-size", type=int, default=50, help="intake batch.max_notifications")
    parser.add_argument("--batch-wait-ms", type=int, default=500, help="intake batch.max_wait_ms")
    parser.add_argument("--no-provider", action="store_true", help="no firmographics provider emulator")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="run in DIR (kept: state store, intake.log, sandboxes) instead of a temporary folder")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2,000 records, 20 leads over 20 s, 10 polled over 20 s (about 2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.records, args.leads, args.seconds, args.poll_leads = 2000, 20, 20.0, 10
        args.timeout = min(args.timeout, 90.0)
    if args.poll_seconds is None:
        args.poll_seconds = args.seconds
    return args


if __name__ == "__main__":
    raise SystemExit(main())
