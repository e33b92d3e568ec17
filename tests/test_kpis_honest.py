"""Honest KPI numbers (issue 19) on a hand-made store with known first touches, SLA outcomes, a cohort funnel with
skipped stages and skewed clocks: SLA attainment = met / (met + missed) with open-not-due apart, conversions never
over 100 %, no negative duration (skew clamped to 0 and counted), lead sources folded through the picklist, owners by
name — the same in the full read and the rollups; and `leadflow kpis --json` equals what the report page shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from leadflow.audit.kpi_report import load_summary, name_of, owner_names
from leadflow.audit.kpi_rollups import record_run_kpis, recount_rollups, rollup_kpi_summary
from leadflow.audit.kpis import kpi_summary, load_kpi_data, readable_rows
from leadflow.audit.durations import human_duration
from leadflow.audit.picklists import fold, lead_sources, parse_picklist
from leadflow.audit.report import render_report, tile_values
from leadflow.cli import app
from leadflow.pipeline.errors import ConfigError
from leadflow.routing import load_routing_config
from leadflow.store import StateStore
from leadflow.store.kpi_tables import kpi_rollups
from leadflow.store.tables import assignments, runs

SINCE = datetime(2026, 11, 2, tzinfo=UTC)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
AVERY, QUEUE, NAMELESS = "0058c00000AveryQ", "00G8c000004InbQ", "005000000000XYZ"  # reference routing.yaml


def t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# key, lead_source as typed, created_at
LEADS = [
    ("salesforce:A", "Paid search", "2026-11-02T09:00:00Z"),
    ("salesforce:B", "Tradeshow", "2026-11-02T10:00:00Z"),
    ("salesforce:C", "Trade Show", "2026-11-03T08:00:00Z"),
    ("salesforce:D", "Paid Search", "2026-11-03T09:00:00Z"),
    ("marketo:E", "Carrier Pigeon", "2026-11-10T12:00:00Z"),
    ("salesforce:F", "paid-search", "2026-11-10T12:00:00Z"),
    ("salesforce:G", "Webinar", "2026-11-11T08:00:00Z"),
    ("salesforce:H", "PPC", "2026-10-20T08:00:00Z"),  # created before the window: not in the cohort
]


def seed(store: StateStore) -> str:
    """One run (started on SINCE) staging the eight leads on 2026-11-12, its assignments, touches and lifecycle."""
    run = store.start_run("crm_sync", {})
    with store.engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.run_id == run).values(started_at=SINCE))
    frame = pd.DataFrame(LEADS, columns=["lead_key", "lead_source", "created_at"]).assign(
        chunk=0, email=[f"{k.split(':')[1].lower()}@x.com" for k, _, _ in LEADS])
    store.add_changes(run, "standardize", datetime(2026, 11, 12, tzinfo=UTC), [], frame)
    made = pd.DataFrame([
        # A: touched by a CRM task 40 min after creation, due after 70: met
        ("salesforce:A", AVERY, t("2026-11-02T09:10Z"), t("2026-11-02T10:10Z")),
        # B: touched late (seen by a pull): missed
        ("salesforce:B", AVERY, t("2026-11-02T10:30Z"), t("2026-11-02T11:00Z")),
        # C: untouched, due after AS_OF: open, counted neither way
        ("salesforce:C", QUEUE, t("2026-11-03T08:05Z"), t("2026-11-21T00:00Z")),
        # D: assigned 10 min before it was created (clock skew), untouched past due: missed
        ("salesforce:D", NAMELESS, t("2026-11-03T08:50Z"), t("2026-11-03T09:30Z")),
        # F: the CRM event is 10 min before the creation time (clock skew), in time: met
        ("salesforce:F", NAMELESS, t("2026-11-10T12:30Z"), t("2026-11-10T13:30Z")),
    ], columns=["lead_key", "owner_id", "assigned_at", "sla_due_at"]).assign(routing_rule="r", routing_reason="x")
    with store.routing_session(run) as session:
        session.record(made)
    touches = {"salesforce:A": ("2026-11-02T09:40Z", "task"), "salesforce:B": ("2026-11-02T11:30Z", "pull"),
               "salesforce:F": ("2026-11-10T11:50Z", "event")}
    with store.engine.begin() as conn:
        for key, (at, source) in touches.items():
            conn.execute(assignments.update().where(assignments.c.lead_key == key).values(
                first_touch_at=t(at).to_pydatetime(), first_touch_source=source))
    none = None
    store.save_lifecycle_state(pd.DataFrame([
        ("salesforce:A", "sql", "2026-11-02T12:00:00Z", "2026-11-03T12:00:00Z", "2026-11-05T12:00:00Z"),
        ("salesforce:B", "sal", none, "2026-11-04T10:00:00Z", none),          # SAL without MQL: skipped MQL
        ("salesforce:C", "mql", "2026-11-03T09:00:00Z", none, none),
        ("salesforce:D", "sal", "2026-11-04T10:00:00Z", "2026-11-04T09:00:00Z", none),  # SAL before MQL: skew
        ("marketo:E", "new", none, none, none),
        ("salesforce:F", "sql", none, none, "2026-11-12T09:00:00Z"),          # SQL only: skipped MQL and SAL
        ("salesforce:G", "sal", none, "2026-11-12T10:00:00Z", none),          # skipped MQL
        ("salesforce:H", "mql", "2026-11-11T09:00:00Z", none, none),
    ], columns=["lead_key", "lifecycle_stage", "mql_at", "sal_at", "sql_at"]).assign(
        lifecycle_reason=None, recycled_at=None), run)
    store.finish_run(run, "completed", {"rows_in": 8, "rows_quarantined": 0})
    return run


@pytest.fixture
def store(state_home: Path):
    opened = StateStore.open()
    seed(opened)
    yield opened
    opened.close()


def test_exact_kpis_of_the_hand_made_store(store: StateStore) -> None:
    names = owner_names(load_routing_config())
    summary = load_summary(store, SINCE, AS_OF, names)

    # SLA: 2 met (A, F), 2 missed (B late, D untouched past due), C open apart → 2 / 4, not (2 + 1) / 5
    assert summary["sla"] == {"with_sla": 5, "met": 2, "missed": 2, "open": 1, "attainment": 0.5}

    # speed-to-lead: created → first touch A 40 min, B 90 min, F −10 min clamped to 0 and counted
    touch = summary["speed_to_lead"]["created_to_first_touch"]
    assert (touch["n"], touch["skew_clamped"]) == (3, 1)
    assert touch["p50"] == {"seconds": 2400.0, "text": "40 min"}
    assert touch["p95"]["seconds"] == pytest.approx(2400 + 0.9 * 3000)
    # created → assigned: A 10, B 30, C 5, D −10 → 0 (skew), F 30 min
    assigned = summary["speed_to_lead"]["created_to_assigned"]
    assert (assigned["n"], assigned["skew_clamped"], assigned["p50"]["seconds"]) == (5, 1, 600.0)
    for measure, stats in summary["speed_to_lead"].items():
        if isinstance(stats, dict) and "p50" in stats and stats["n"]:
            assert all(stats[p]["seconds"] >= 0 for p in ("p50", "p90", "p95")), measure
    assert summary["skew_clamped"] == {"created_to_assigned_min": 1, "created_to_first_touch_min": 1,
                                       "speed_to_lead_min": 0, "mql_to_sal_days": 1, "sal_to_sql_days": 0}
    weekly = {row["week"]: row for row in summary["speed_to_lead"]["weekly"]}
    assert sorted(weekly) == ["2026-10-19", "2026-11-02", "2026-11-09"]
    assert weekly["2026-11-02"]["created_to_first_touch"]["n"] == 2

    # first touch: task, pull (the fallback), event
    assert summary["first_touch"]["by_source"] == {"task": 1, "event": 1, "status_history": 0, "pull": 1}
    assert summary["first_touch"]["fallback_share"] == pytest.approx(1 / 3, abs=1e-4)

    # funnel cohort (H created before the window is not in it): MQL A B C D F G, SAL A B D F G, SQL A F
    assert summary["funnel"]["cohort"] == {
        "leads": 7, "mql": 6, "sal": 5, "sql": 2, "skipped_mql": 3, "skipped_sal": 1,
        "new_to_mql": round(6 / 7, 4), "mql_to_sal": round(5 / 6, 4), "sal_to_sql": 0.4}
    for row in [summary["funnel"]["cohort"], *summary["funnel"]["by_week"], *summary["funnel"]["by_lead_source"]]:
        assert all(row[rate] is None or row[rate] <= 1 for rate in ("new_to_mql", "mql_to_sal", "sal_to_sql"))
    velocity = summary["funnel"]["velocity"]["mql_to_sal"]  # A one day, D −1 h clamped to 0
    assert (velocity["n"], velocity["skew_clamped"], velocity["p50"]) == (2, 1, {"seconds": 43200.0, "text": "12 h"})

    # lead sources folded and aliased; the unknown one kept and listed
    by_source = {row["group"]: row["leads"] for row in summary["speed_to_lead"]["by_lead_source"]}
    assert by_source == {"Paid Search": 4, "Trade Show": 2, "Webinar": 1, "Carrier Pigeon": 1}
    assert summary["lead_sources"]["unknown"] == {"Carrier Pigeon": 1}

    # owners by name, ids beside
    assert summary["owners"] == [  # most first, ties by id
        {"owner_id": NAMELESS, "owner_name": None, "assignments": 2},
        {"owner_id": AVERY, "owner_name": "Avery Chen", "assignments": 2},
        {"owner_id": QUEUE, "owner_name": "Inbound review", "assignments": 1}]
    json.dumps(summary, allow_nan=False)


def test_rollups_agree_with_the_full_read(store: StateStore) -> None:
    """The headline numbers the runs publish (rollups, both counting paths) equal the full read's, and a recount
    from the stored facts (what migration 0019 runs) gives the same counters."""
    run_id = store.runs(limit=1)[0]["run_id"]
    assert record_run_kpis(store, run_id) > 0
    full = kpi_summary(load_kpi_data(store, SINCE, as_of=AS_OF))
    rolled = rollup_kpi_summary(store, SINCE, AS_OF)
    for key in ("sla", "skew_clamped", "conversion", "leads", "assignments"):
        assert rolled[key] == full[key], key
    assert full["sla"]["attainment"] == 0.5 and full["conversion"]["mql_to_sal"] <= 1
    assert full["conversion"]["skipped_mql"] == 3  # H has its MQL stamp
    published = {row["kpi"]: row["value"] for row in readable_rows(rolled)}  # the artifact's rows
    assert published["sla.attainment"] == "50.0%" and published["velocity_days.mql_to_sal_days"] == "12 h"
    with store.engine.connect() as conn:
        before = sorted(conn.execute(sa.select(kpi_rollups.c.metric, kpi_rollups.c.dimension, kpi_rollups.c.count)
                                     .where(kpi_rollups.c.count != 0)).all())
    with store.engine.begin() as conn:
        conn.execute(kpi_rollups.update().where(kpi_rollups.c.metric == "reached").values(count=99))
        recount_rollups(conn, batch=3)
    with store.engine.connect() as conn:
        after = sorted(conn.execute(sa.select(kpi_rollups.c.metric, kpi_rollups.c.dimension, kpi_rollups.c.count)
                                    .where(kpi_rollups.c.count != 0)).all())
    assert after == before


def test_kpis_json_equals_the_report_page(store: StateStore, tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["kpis", "--since", "2026-11-02", "--json"])
    assert printed.exit_code == 0, printed.output
    summary = json.loads(printed.output)
    out = tmp_path / "report.html"
    written = runner.invoke(app, ["report", "--since", "2026-11-02", "--out", str(out)])
    assert written.exit_code == 0, written.output
    tiles = dict(re.findall(r'<td data-kpi="([^"]+)">([^<]*)</td>', out.read_text(encoding="utf-8")))
    assert tiles == tile_values(summary)
    # the tiles carry the JSON's numbers (as of now, C is past due untouched: missed)
    sla = summary["sla"]
    assert (sla["met"], sla["missed"], sla["open"]) == (2, 3, 0)
    assert tiles["sla.attainment"] == f"{sla['met'] / (sla['met'] + sla['missed']):.1%}"
    assert tiles["speed_to_lead.created_to_first_touch.p50"] == human_duration(2400) == "40 min"
    assert tiles["first_touch.fallback_share"] == "33.3%"
    assert tiles["funnel.cohort.mql_to_sal"] == f"{5 / 6:.1%}"
    human = runner.invoke(app, ["kpis", "--since", "2026-11-02"])
    assert human.exit_code == 0 and "sla.attainment" in human.output and "Carrier Pigeon" in human.output


def test_the_page_draws_the_summary_it_is_given(store: StateStore) -> None:
    summary = load_summary(store, SINCE, AS_OF, owner_names(load_routing_config()))
    page = render_report(summary, "flowchart TD\n")
    tiles = dict(re.findall(r'<td data-kpi="([^"]+)">([^<]*)</td>', page))
    assert tiles["sla.attainment"] == "50.0%" and tiles["sla.open"] == "1"
    assert "Avery Chen" in page and AVERY in page and "Carrier Pigeon" in page


def test_picklist_folding_and_its_errors() -> None:
    assert fold(" Paid-Search ") == fold("paid search") == "paidsearch"
    values = pd.Series(["Paid search", "Tradeshow", "PPC", "Trade Show", "", None, "Carrier pigeon", "Carrier Pigeon",
                        "Carrier Pigeon"])
    names, unknown = lead_sources().normalize(values, "(unknown)")
    assert names.tolist() == ["Paid Search", "Trade Show", "Paid Search", "Trade Show", "(unknown)", "(unknown)",
                              "Carrier Pigeon", "Carrier Pigeon", "Carrier Pigeon"]
    assert unknown == {"Carrier Pigeon": 3}
    with pytest.raises(ConfigError, match=r"x.yaml: Trade Show\[0\]: 'Paid-search' is already a name of 'Paid Search'"):
        parse_picklist({"Paid Search": ["PPC"], "Trade Show": ["Paid-search"]}, "x.yaml")
    with pytest.raises(ConfigError, match="x.yaml: Paid Search: expected a list"):
        parse_picklist({"Paid Search": "PPC"}, "x.yaml")


def test_owner_names_match_15_and_18_character_ids() -> None:
    names = {"005000000000ABC": "Dana", "00G8c000004InbQ": "Inbound review"}
    assert name_of("005000000000ABCAAA", names) == "Dana"
    assert name_of("00G8c000004InbQ", names) == "Inbound review"
    assert name_of("005000000000XYZ", names) is None and name_of(None, names) is None


def test_an_assignment_stamped_before_its_pull_in_the_same_run_is_no_skew() -> None:
    """A run assigns as of its start, to the second; the pull is stamped when the chunk's first stage is recorded.
    Both are leadflow's clock: pulled → assigned is 0, and created → pulled is not lengthened."""
    from leadflow.audit.kpis import build_leads

    empty = pd.DataFrame({"lead_key": [], "new_value": []})
    first = pd.DataFrame({"lead_key": ["salesforce:00Q1", "salesforce:00Q2"],
                          "pulled_at": ["2026-11-02T10:00:00.700Z", "2026-11-02T10:00:00.700Z"]})
    created = pd.DataFrame({"lead_key": ["salesforce:00Q1"], "new_value": ["2026-11-02T09:00:00Z"]})
    assigned = pd.DataFrame({"lead_key": ["salesforce:00Q1", "salesforce:00Q2"],
                             "assigned_at": ["2026-11-02T10:00:00Z", "2026-11-02T12:00:00Z"], "owner_id": ["005A"] * 2,
                             "inputs": [None, None], "written_at": [None, None]})
    leads = build_leads(first, created, empty, pd.DataFrame({"lead_key": [], "written_at": []}), assigned)
    waits = (leads["assigned_at"] - leads["pulled_at"]).dt.total_seconds().tolist()
    assert waits == [0.0, 2 * 3600 - 0.7]  # the later assignment keeps its real wait
    assert (leads["pulled_at"] - leads["created_at"]).dt.total_seconds().iloc[0] == 3600.0


def _owners(summary: dict) -> dict[str, str | None]:
    return {row["owner_id"]: row["owner_name"] for row in summary["owners"]}


def test_kpis_json_names_owners_as_the_crm_mirror_does(store: StateStore, tmp_path: Path) -> None:
    """With a CRM mirror, owners are named by the CRM's User.Name and queue (Group) name — matched in the 15- or
    18-character id form — and routing.yaml names only the owners the CRM does not; without one, routing.yaml alone."""
    from leadflow.connectors.salesforce import SalesforceCredentials, salesforce_connector
    from leadflow.sandbox.salesforce import running_salesforce
    from leadflow.sync.mirror import forget_process_copies, refresh_mirror

    from leadflow.routing.loading import DEFAULT_ROUTING

    config = tmp_path / "leadflow.yaml"
    config.write_text(f"routing:\n  rules: {json.dumps(str(DEFAULT_ROUTING))}\n", encoding="utf-8")
    kpis = ["kpis", "--since", "2026-11-02", "--json", "--config", str(config)]
    runner = CliRunner()
    before = runner.invoke(app, kpis)
    assert before.exit_code == 0, before.output
    assert _owners(json.loads(before.output)) == {AVERY: "Avery Chen", QUEUE: "Inbound review", NAMELESS: None}

    with running_salesforce(tmp_path / "sf", leads=20, accounts=5, contacts=10, seed=3) as sf:
        org = sf.org
        stamp = org.objects["Group"][next(iter(org.objects["Group"]))]["SystemModstamp"]
        with org.lock:  # the ids the hand-made store's assignments carry, in their 18-character form
            org.objects["User"][NAMELESS + "AAA"] = {
                **{n: None for n in org.all_fields("User")}, "Id": NAMELESS + "AAA", "Username": "noor@x.example",
                "Email": "noor@x.example", "FirstName": "Noor", "LastName": "Haddad", "IsActive": False,
                "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
            org.objects["Group"][QUEUE + "AAA"] = {
                **{n: None for n in org.all_fields("Group")}, "Id": QUEUE + "AAA", "Name": "Inbound Triage (CRM)",
                "Type": "Queue", "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
            org.objects["QueueSobject"]["03g000000000InbAAA"] = {
                "Id": "03g000000000InbAAA", "QueueId": QUEUE + "AAA", "SobjectType": "Lead", "SystemModstamp": stamp}
        creds = SalesforceCredentials(login_url=sf.url, client_id=sf.client_id, client_secret=sf.client_secret)
        try:
            refresh_mirror(salesforce_connector(creds, session=sf.session(), backoff=0.0), store)
        finally:
            forget_process_copies()

    after = runner.invoke(app, kpis)
    assert after.exit_code == 0, after.output
    summary = json.loads(after.output)
    assert _owners(summary) == {AVERY: "Avery Chen", QUEUE: "Inbound Triage (CRM)", NAMELESS: "Noor Haddad"}
    by_owner = {row["owner_id"]: row["owner_name"] for row in summary["speed_to_lead"]["by_owner"]}
    assert by_owner[NAMELESS] == "Noor Haddad"
    out = tmp_path / "report.html"
    written = runner.invoke(app, ["report", "--since", "2026-11-02", "--out", str(out), "--config", str(config)])
    assert written.exit_code == 0, written.output
    page = out.read_text(encoding="utf-8")
    assert "Noor Haddad" in page and "Inbound Triage (CRM)" in page and "Avery Chen" in page


def test_crm_names_win_over_routing_names_in_either_id_form() -> None:
    routing = load_routing_config()
    names = owner_names(routing, {QUEUE + "AAA": "Inbound Triage (CRM)", "005000000000ABCAAA": "Dana"})
    assert name_of(QUEUE, names) == name_of(QUEUE + "AAA", names) == "Inbound Triage (CRM)"
    assert name_of(AVERY, names) == "Avery Chen" and name_of("005000000000ABC", names) == "Dana"
    assert owner_names(routing, {}) == owner_names(routing) and owner_names(None, {"005A": "Ann"}) == {"005A": "Ann"}
