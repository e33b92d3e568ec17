"""Ownership: leadflow routes only the leads nobody works (no owner, a queue, an inactive or default owner), keeps its
own earlier assignments, never touches worked or converted leads, and re-owns a person's lead only under explicit
`reassign:` conditions. Config errors name their YAML path; counts and GX suites know "kept with its owner"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from leadflow.pipeline.errors import ConfigError
from leadflow.routing.ownership import OwnerDirectory, Ownership, RouteWhen
from leadflow.pipeline.ledger import routing_counts
from leadflow.routing import RoutingConfig, RoutingState, explain, route_leads
from leadflow.pipeline.schema import conform

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
OPEN, WORKED = "Open - Not Contacted", "Working - Contacted"
WEB_QUEUE = "00G5e000000WebQAAA"
DEFAULT_OWNER = "005DEFAULTOWNER"
DIRECTORY = OwnerDirectory(active=frozenset({"005ACTIVE"}), inactive=frozenset({"005GONE"}),
                           queues=frozenset({"QCRM1"}))
POLICY = Ownership(unassigned_owners=frozenset({DEFAULT_OWNER}), directory=DIRECTORY)


def config(reassign: Any = False, **parts: Any) -> RoutingConfig:
    data: dict[str, Any] = {
        "version": "t1",
        "timezone": "UTC",
        "users": {"u1": {"name": "Ann"}, "u2": {"name": "Ben"}, "u9": {"name": "Old", "active": False}},
        "pools": {"team": {"members": [{"user": "u1"}, {"user": "u2"}]}},
        "queues": {"review": {"owner_id": "Q_REVIEW"}},
        "rules": [{"name": "everyone", "pool": "team", "sla_minutes": 60, "reassign": reassign}],
    }
    data.update(parts)
    return RoutingConfig.model_validate(data)


def lead(owner: str | None = None, status: str | None = OPEN, converted: bool | None = None,
         created_hours_ago: float | None = None, assigned_hours_ago: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"lead_id": "L", "owner_id": owner, "status": status,
                           "is_converted": None if converted is None else str(converted).lower()}
    if created_hours_ago is not None:
        row["created_at"] = (pd.Timestamp(NOW) - pd.Timedelta(hours=created_hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if assigned_hours_ago is not None:
        at = (pd.Timestamp(NOW) - pd.Timedelta(hours=assigned_hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        row |= {"routing_rule": "everyone", "routing_reason": "pool team round robin", "assigned_at": at,
                "sla_due_at": at}
    return row


def route_one(row: dict[str, Any], cfg: RoutingConfig | None = None, policy: Ownership = POLICY) -> pd.Series:
    frame = conform(pd.DataFrame([row]).astype("string"))
    return route_leads(frame, cfg or config(), RoutingState(), as_of=NOW, ownership=policy)[0].iloc[0]


def value(out: pd.Series, column: str) -> Any:
    return None if pd.isna(out[column]) else out[column]


ROUTED = "routed"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (lead(None), ROUTED),  # nobody owns it
        (lead(WEB_QUEUE), ROUTED),  # a Salesforce queue (Group key prefix 00G)
        (lead("Q_REVIEW"), ROUTED),  # a queue of the routing config
        (lead("QCRM1"), ROUTED),  # a queue the CRM reports
        (lead("005GONE"), ROUTED),  # the CRM says inactive
        (lead("u9"), ROUTED),  # the routing config says inactive
        (lead(DEFAULT_OWNER), ROUTED),  # the default lead owner
        (lead(WEB_QUEUE, status=None), ROUTED),  # no status: nothing says anyone works it
        (lead(WEB_QUEUE, status="New"), ROUTED),
        (lead(WEB_QUEUE, converted=False), ROUTED),
        (lead("u1"), "kept: owned by active user"),  # active per the routing config
        (lead("005ACTIVE"), "kept: owned by active user"),  # active per the CRM
        (lead("005WHO"), "kept: owner not a known user or queue (treated as a person)"),
        (lead(WEB_QUEUE, status=WORKED), f"kept: worked status {WORKED}"),
        (lead(None, status="Closed - Not Converted"), "kept: worked status Closed - Not Converted"),
        (lead(WEB_QUEUE, converted=True), "kept: converted"),
        (lead("u1", status=WORKED, converted=True), "kept: converted"),
    ],
)
def test_only_leads_nobody_works_are_routed(row: dict[str, Any], expected: str) -> None:
    out = route_one(row)
    if expected == ROUTED:
        assert value(out, "owner_id") in ("u1", "u2")
        assert value(out, "routing_rule") == "everyone" and value(out, "assigned_at") == "2026-11-18T15:00:00Z"
    else:  # the owner exactly as given, why, and nothing that looks like an assignment
        assert value(out, "owner_id") == row["owner_id"]
        assert value(out, "routing_reason") == expected
        assert [value(out, c) for c in ("routing_rule", "assigned_at", "sla_due_at")] == [None, None, None]


@pytest.mark.parametrize(
    ("switch", "owner", "reason"),
    [
        ("owner_is_queue", WEB_QUEUE, "kept: owned by a queue (route_when.owner_is_queue is off)"),
        ("owner_inactive", "005GONE", "kept: owner inactive (route_when.owner_inactive is off)"),
        ("owner_unassigned", DEFAULT_OWNER, "kept: default owner (route_when.owner_unassigned is off)"),
    ],
)
def test_route_when_switches_each_owner_kind_off(switch: str, owner: str, reason: str) -> None:
    policy = Ownership(unassigned_owners=frozenset({DEFAULT_OWNER}), directory=DIRECTORY,
                       route_when=RouteWhen(**{switch: False}))
    out = route_one(lead(owner), policy=policy)
    assert (value(out, "owner_id"), value(out, "routing_reason")) == (owner, reason)
    assert value(route_one(lead(None), policy=policy), "owner_id") in ("u1", "u2")  # no owner: always routed


def test_the_crm_word_on_activity_wins_over_the_config() -> None:
    policy = Ownership(directory=OwnerDirectory(active=frozenset({"u9"})))
    assert value(route_one(lead("u9"), policy=policy), "routing_reason") == "kept: owned by active user"


STALE = {"statuses": [OPEN], "min_age_hours": 48, "owners": "any_active"}


@pytest.mark.parametrize(
    ("reassign", "row", "routed"),
    [
        (STALE, lead("u1", created_hours_ago=72), True),  # open and old enough: re-owned
        (STALE, lead("u1", created_hours_ago=24), False),  # too young
        (STALE, lead("u1", status="New", created_hours_ago=72), False),  # open, but not a listed status
        (STALE, lead("u1"), False),  # age unknown: the condition does not hold
        (STALE, lead("u1", status=WORKED, created_hours_ago=72), False),  # worked: never
        (STALE, lead("u1", converted=True, created_hours_ago=72), False),  # converted: never
        (STALE, lead("005WHO", created_hours_ago=72), False),  # unknown owner is not "any_active"
        ({**STALE, "owners": "any"}, lead("005WHO", created_hours_ago=72), True),
        ({**STALE, "owners": ["u2"]}, lead("u1", created_hours_ago=72), False),
        ({**STALE, "owners": ["u2"]}, lead("u2", created_hours_ago=72), True),
        ({"min_age_hours": 48}, lead("u1", status="New", created_hours_ago=72), True),
        ({"statuses": [OPEN]}, lead("u1"), True),
        # age from leadflow's own assignment: old lead, fresh assignment → keeps it; old assignment → re-routed
        ({**STALE, "age_from": "assigned_at"}, lead("u1", created_hours_ago=500, assigned_hours_ago=1), False),
        ({**STALE, "age_from": "assigned_at"}, lead("u1", created_hours_ago=500, assigned_hours_ago=60), True),
        ({**STALE, "age_from": "assigned_at"}, lead("u1", created_hours_ago=72), True),  # never assigned: created
        # legacy `reassign: true`: leadflow's own assignments only, never a worked one, never a person's
        (True, lead("u1", assigned_hours_ago=5), True),
        (True, lead("u1", status=WORKED, assigned_hours_ago=5), False),
        (True, lead("u1", created_hours_ago=500), False),
        (False, lead("u1", assigned_hours_ago=5), False),
    ],
)
def test_reassign_conditions(reassign: Any, row: dict[str, Any], routed: bool) -> None:
    out = route_one(row, config(reassign=reassign))
    assert (value(out, "assigned_at") == "2026-11-18T15:00:00Z") is routed
    if not routed:
        assert value(out, "owner_id") == row["owner_id"]


def test_leadflows_own_assignments_stay_unless_the_owner_left() -> None:
    mine = lead("u1", assigned_hours_ago=5)
    out = route_one(mine)
    assert [value(out, c) for c in ("owner_id", "routing_rule", "routing_reason")] == [
        "u1", "everyone", "pool team round robin"]  # kept as leadflow routed it, not "kept: …"
    worked = route_one({**mine, "status": WORKED})
    assert value(worked, "routing_reason") == "pool team round robin" and value(worked, "owner_id") == "u1"
    gone = route_one({**mine, "owner_id": "005GONE"})  # the rep left: routed again
    assert value(gone, "owner_id") in ("u1", "u2") and value(gone, "assigned_at") == "2026-11-18T15:00:00Z"


def test_without_a_policy_every_lead_is_routed_as_before() -> None:
    frame = conform(pd.DataFrame([lead("u1"), lead(WEB_QUEUE, status=WORKED)]).astype("string"))
    out, _ = route_leads(frame, config(), RoutingState(), as_of=NOW)
    assert out["routing_rule"].tolist() == ["everyone", "everyone"]


def test_kept_leads_take_no_round_robin_turn() -> None:
    frame = conform(pd.DataFrame([lead("u1"), lead(WEB_QUEUE), lead("005ACTIVE"), lead(WEB_QUEUE)])
                    .assign(lead_id=["A", "B", "C", "D"]).astype("string"))
    out, state = route_leads(frame, config(), RoutingState(), as_of=NOW, ownership=POLICY)
    assert out["owner_id"].tolist() == ["u1", "u1", "005ACTIVE", "u2"]
    assert sum(state.assigned_today.values()) == 2


def test_routing_counts_name_what_was_kept() -> None:
    frame = conform(pd.DataFrame([lead("u1"), lead(WEB_QUEUE), lead("005ACTIVE"), lead(WEB_QUEUE, status=WORKED),
                                  lead(WEB_QUEUE, converted=True)]).astype("string"))
    out, _ = route_leads(frame, config(), RoutingState(), as_of=NOW, ownership=POLICY)
    counts = routing_counts(frame.assign(**{c: out[c] for c in out.columns}))
    assert counts["routed"] == 1 and counts["held"] == 0 and counts["kept_with_owner"] == 4
    assert counts["kept_by_reason"] == {"owned by active user": 2, f"worked status {WORKED}": 1, "converted": 1}
    assert counts["routed_by_rule"] == {"everyone": 1} and counts["assigned_per_owner"] == {"u1": 1}
    everyone_kept = frame.iloc[[0]].assign(**{c: out[c].iloc[[0]] for c in out.columns})
    assert routing_counts(everyone_kept)["kept_with_owner"] == 1  # counted even when nothing was routed


# ------------------------------------------------------------------------------------------------ run config


def write_config(tmp_path: Path, routing: dict[str, Any], reassign: Any = None) -> Path:
    rules = yaml.safe_load(yaml.safe_dump(config().model_dump(mode="json", exclude_none=True, by_alias=True)))
    for rule in rules["rules"]:
        rule.pop("reassign", None)
        if reassign is not None:
            rule["reassign"] = reassign
    for pool in rules["pools"].values():
        pool.pop("overflow", None)
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({"routing": {"rules": "routing.yaml", **routing}}), encoding="utf-8")
    return path


def test_the_routing_section_sets_the_policy(tmp_path: Path) -> None:
    from leadflow.pipeline.config import load_rules

    rules = load_rules(write_config(tmp_path, {
        "unassigned_owners": [DEFAULT_OWNER], "open_statuses": [OPEN, "Open"],
        "route_when": {"owner_is_queue": False}}, reassign=STALE))
    assert rules.ownership.unassigned_owners == {DEFAULT_OWNER}
    assert rules.ownership.open_statuses == {OPEN, "Open"} == rules.untouched_statuses
    assert rules.ownership.route_when == RouteWhen(owner_is_queue=False)
    assert "re-owns leads (status Open - Not Contacted; ≥ 48 h since created; owner any active)" in explain(
        rules.routing)
    # Defaults: safe; the earlier name of open_statuses still reads.
    rules = load_rules(write_config(tmp_path, {"untouched_statuses": ["Open"]}))
    assert rules.ownership.open_statuses == {"Open"} and rules.ownership.route_when == RouteWhen()
    assert load_rules(write_config(tmp_path, {})).ownership.open_statuses >= {OPEN, "New", "NEW", "OPEN", "Open"}


@pytest.mark.parametrize(
    ("routing", "reassign", "where", "words"),
    [
        ({}, {"owners": "any"}, "rules[0].reassign", "give at least one condition"),
        ({}, {"statuses": [WORKED]}, "rules[0].reassign.statuses", "never re-routed"),
        ({"open_statuses": ["Open"]}, {"statuses": [OPEN]}, "rules[0].reassign.statuses", "not open statuses"),
        ({}, {"min_age_hours": -1}, "rules[0].reassign", "min_age_hours: Input should be greater than or equal to 0"),
        ({}, "yes please", "rules[0].reassign", "true, false or conditions"),
        ({"route_when": {"owner_is_person": True}}, None, "routing.route_when.owner_is_person", "Extra inputs"),
        ({"unassigned_owners": [5]}, None, "routing.unassigned_owners", "quote it"),
    ],
)
def test_ownership_config_errors_name_their_yaml_path(
    tmp_path: Path, routing: dict[str, Any], reassign: Any, where: str, words: str
) -> None:
    from leadflow.pipeline.config import load_rules

    with pytest.raises(ConfigError) as info:
        load_rules(write_config(tmp_path, routing, reassign))
    assert where in str(info.value) and words in str(info.value), str(info.value)


# ------------------------------------------------------------------------------------------------ gates, write-back


def test_the_assigned_suite_accepts_kept_leads_and_still_wants_an_outcome_for_routed_ones() -> None:
    from leadflow.pipeline.quality import QualityGate
    from leadflow.pipeline.settings import Settings

    frame = conform(pd.DataFrame([lead("u1"), lead(WEB_QUEUE), lead(None, status=WORKED)]).astype("string"))
    out, _ = route_leads(frame, config(), RoutingState(), as_of=NOW, ownership=POLICY)
    routed = frame.assign(**{c: out[c] for c in out.columns})
    gate = QualityGate(Settings().suites_dir(), 1.0)
    assert gate.check(routed, "assign", "leads_assigned").rows_quarantined == 0
    broken = routed.copy()
    broken.loc[1, "routing_rule"] = pd.NA  # routed, but no rule: still refused
    assert gate.check(broken, "assign", "leads_assigned").rows_quarantined == 1


def test_the_lifecycle_suite_accepts_an_undated_first_sight_only() -> None:
    from leadflow.pipeline.quality import QualityGate
    from leadflow.pipeline.settings import Settings

    frame = conform(pd.DataFrame({
        "lead_id": ["1", "2", "3"], "lifecycle_stage": ["sal", "sal", "sal"],
        "lifecycle_reason": [f"first seen with crm status {WORKED} (date unknown)", f"refused sal → new (crm status "
                             "Open)", f"crm status → sal: {WORKED}"],
    }).astype("string"))
    result = QualityGate(Settings().suites_dir(), 1.0).check(frame, "lifecycle")
    assert result.quarantine["lead_key"].tolist() == ["file:3"]


def test_converted_leads_are_dropped_from_the_changes() -> None:
    from leadflow.sync.writeback import drop_converted

    frame = conform(pd.DataFrame({"lead_id": ["a", "b", "c"], "is_converted": ["true", "false", None]})
                    .astype("string"))
    changes = pd.DataFrame({"record_id": ["a", "b", "c"], "owner_id": ["u1", "u2", "u1"]}, index=frame.index)
    kept, dropped = drop_converted(changes, frame)
    assert kept["record_id"].tolist() == ["b", "c"] and dropped == 1
    empty, none = drop_converted(changes.iloc[:0], frame)
    assert empty.empty and none == 0


# ------------------------------------------------------------------------------------------------ Salesforce reads


@pytest.fixture
def org(tmp_path: Path) -> Any:
    from leadflow.sandbox.salesforce import running_salesforce

    with running_salesforce(tmp_path / "sf", leads=450, seed=5, page_size=2000) as running:
        yield running


def connect(sf: Any) -> Any:
    from leadflow.connectors.salesforce import SalesforceCredentials, salesforce_connector

    creds = SalesforceCredentials(login_url=sf.url, client_id=sf.client_id, client_secret=sf.client_secret)
    return salesforce_connector(creds, session=sf.session(), backoff=0.0)


def test_the_org_says_who_is_active_inactive_or_a_queue(org: Any) -> None:
    from leadflow.connectors.salesforce_history import owner_directory
    from leadflow.sandbox.salesforce_seed import WEB_QUEUE_ID

    directory = owner_directory(connect(org))
    users = org.org.objects["User"]
    assert directory.active == {u for u, r in users.items() if r["IsActive"]}
    assert directory.inactive == {u for u, r in users.items() if not r["IsActive"]} and directory.inactive
    assert directory.queues == {WEB_QUEUE_ID}


def test_status_history_is_read_in_chunks_of_200_one_call_each(org: Any) -> None:
    from leadflow.connectors.salesforce_history import status_history

    connector = connect(org)
    history = org.org.objects["LeadHistory"]
    tracked = sorted({r["LeadId"] for r in history.values() if r["Field"] == "Status"})
    ids = sorted(org.org.objects["Lead"])  # 450 leads: 3 chunks, whether or not they have history
    assert len(tracked) > 100
    connector._client()  # log in (and read the limits) before counting
    calls = connector.api_calls
    found = status_history(connector, [*ids, "not an id", None])
    assert connector.api_calls - calls == 3
    assert list(found.columns) == ["lead_key", "status", "changed_at"]
    assert set(found["lead_key"]) == {f"salesforce:{i}" for i in tracked}
    row = next(r for r in history.values() if r["Field"] == "Status")
    match = found[found["lead_key"] == f"salesforce:{row['LeadId']}"]
    assert match["changed_at"].tolist() == [pd.Timestamp(row["CreatedDate"]).strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert match["status"].tolist() == [row["NewValue"]]
    assert status_history(connector, []).empty and connector.api_calls - calls == 3  # nothing asked: no call


def test_an_org_without_lead_history_access_gives_no_history() -> None:
    """The sandbox always tracks Status; a user without access to LeadHistory gets INVALID_TYPE (SOQL and SOSL
    Reference, "SOQL error codes"), here raised the way simple-salesforce raises it."""
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    from leadflow.connectors.salesforce_history import status_history

    class NoHistory:
        calls = 0

        def _call(self, fn: Any) -> Any:
            self.calls += 1
            raise SalesforceMalformedRequest("url", 400, "query", [{
                "errorCode": "INVALID_TYPE", "message": "sObject type 'LeadHistory' is not supported."}])

    connector = NoHistory()
    ids = [f"00Q5e{n:010d}AAA" for n in range(450)]
    assert status_history(connector, ids).empty and connector.calls == 1  # the remaining chunks are not asked

    class Broken(NoHistory):
        def _call(self, fn: Any) -> Any:
            raise SalesforceMalformedRequest("url", 400, "query", [{"errorCode": "MALFORMED_QUERY", "message": "x"}])

    with pytest.raises(SalesforceMalformedRequest):
        status_history(Broken(), ids)


@pytest.mark.parametrize(
    ("status", "converted", "owner"),
    [
        ("Open - Not Contacted", False, "005OURS"),  # our write failed: our owner still wins (it is not written yet)
        ("Working - Contacted", False, "005PERSON"),  # a person took it and works it: theirs, never ours again
        ("Open - Not Contacted", True, "005PERSON"),  # converted: left as the CRM has it
    ],
)
def test_an_unwritten_assignment_never_takes_a_worked_or_converted_lead_back(
    state_home: Path, status: str, converted: bool, owner: str
) -> None:
    from leadflow.pipeline.config import Rules, default_consent_policy
    from leadflow.routing.ownership import Ownership
    from leadflow.store import StateStore
    from tasks.io import load_assignments

    with StateStore.open().routing_session("run-1") as session:
        session.record(pd.DataFrame({
            "lead_key": ["salesforce:00QA"], "owner_id": ["005OURS"], "routing_rule": ["everyone_else"],
            "routing_reason": ["pool reps"], "assigned_at": ["2026-11-20T12:00:00Z"], "sla_due_at": [None],
        }))
    frame = pd.DataFrame({
        "lead_id": ["00QA"], "source": ["salesforce"], "email": ["a@acme.com"], "owner_id": ["005PERSON"],
        "status": [status], "is_converted": [converted], "routing_rule": [None], "routing_reason": [None],
        "assigned_at": [None], "sla_due_at": [None],
    })
    rules = Rules(consent=default_consent_policy(), ownership=Ownership())
    out = load_assignments.fn(frame, rules)
    assert out.loc[0, "owner_id"] == owner
    assert out.loc[0, "routing_rule"] == "everyone_else"  # the recorded routing stays known either way


@pytest.mark.parametrize(
    ("now_owner", "now_status", "now_converted", "owner_sent", "settled"),
    [
        (WEB_QUEUE, OPEN, False, "u1", False),           # still nobody's: our routed owner is written
        ("005ACTIVE", OPEN, False, None, False),         # a rep took it: the owner change is dropped, the rest goes
        ("u1", OPEN, False, "u1", False),                # the owner we chose is already there: harmless
        (WEB_QUEUE, WORKED, False, None, False),         # someone works it (status moved): never re-owned
        ("005GONE", OPEN, False, "u1", False),           # its owner left: still leadflow's to route
        ("005SOMEONE", OPEN, False, None, False),        # an owner we do not know: treated as a person
        ("005ACTIVE", OPEN, True, None, True),           # converted: nothing is written, the letter ends
        (None, None, None, None, True),                  # deleted since: nothing to write
    ],
)
def test_a_dead_letter_replay_is_checked_against_the_lead_as_it_is_now(
    now_owner: str | None, now_status: str | None, now_converted: bool | None, owner_sent: str | None, settled: bool
) -> None:
    from leadflow.routing.ownership import check_replay

    replay = pd.DataFrame({"record_id": ["00QA"], "owner_id": ["u1"], "country_code": ["DE"]})
    rows = [] if now_converted is None else [
        {"record_id": "00QA", "owner_id": now_owner, "status": now_status, "is_converted": now_converted}]
    current = pd.DataFrame(rows, columns=["record_id", "owner_id", "status", "is_converted"])
    checked = check_replay(replay, current, POLICY, config())
    assert checked.settled == (["00QA"] if settled else [])
    if settled:
        assert checked.replay.empty
        return
    sent = checked.replay.iloc[0]
    assert (None if pd.isna(sent["owner_id"]) else sent["owner_id"]) == owner_sent
    assert sent["country_code"] == "DE"  # other fields are still written
    assert checked.owners_dropped == (0 if owner_sent else 1)


def test_a_replay_left_with_nothing_to_write_is_settled() -> None:
    from leadflow.routing.ownership import check_replay

    replay = pd.DataFrame({"record_id": ["00QA", "00QB"], "owner_id": ["u1", "u2"]})
    current = pd.DataFrame({"record_id": ["00QA", "00QB"], "owner_id": ["005ACTIVE", WEB_QUEUE],
                            "status": [OPEN, OPEN], "is_converted": [False, False]})
    checked = check_replay(replay, current, POLICY, config())
    assert checked.settled == ["00QA"] and checked.replay["record_id"].tolist() == ["00QB"]
