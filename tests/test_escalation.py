"""Escalation chains (`escalation:` on a routing rule): which steps are due as the clock advances, each fired once,
never for a touched lead; end to end on the Salesforce sandbox with a local Slack webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from leadflow.pipeline.errors import ConfigError
from leadflow.routing import RoutingConfig, load_routing_config
from leadflow.routing.escalation import ESCALATED, claim_notices, due_steps, escalate_owners
from leadflow.store import StateStore
from leadflow.store.escalations import fired_steps, open_assignments
from tests.dbs import store_urls

T0 = datetime(2026, 11, 6, 16, 20, tzinfo=UTC)  # a Friday; 17:20 in Berlin
CHAIN = [{"after": "5m", "action": "remind"}, {"after": "15m", "action": "notify_manager"},
         {"after": "30m", "action": "reassign_pool"}, {"after": "1h", "action": "queue", "queue": "review"}]


def routing(working_hours: bool = False, chain: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    hours = {"working_hours": {"start": "09:00", "end": "17:30"}, "timezone": "Europe/Berlin"} if working_hours else {}
    return {
        "version": "t", "timezone": "UTC",
        "users": {"u1": {"name": "Ann", "manager": "m1", **hours}, "u2": {"name": "Ben", "manager": "m1"},
                  "m1": {"name": "Mia"}},
        "pools": {"team": {"members": [{"user": "u1"}, {"user": "u2"}]}},
        "queues": {"review": {"owner_id": "00GREVIEW"}},
        "rules": [{"name": "all", "pool": "team", "sla_minutes": 60, "sla_working_hours": working_hours,
                   "escalation": CHAIN if chain is None else chain}],
    }


def config(**options: Any) -> RoutingConfig:
    return RoutingConfig.model_validate(routing(**options))


def open_frame(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {"lead_key": "salesforce:00Q1", "owner_id": "u1", "routing_rule": "all", "routing_reason": "pool team",
            "assigned_at": T0, "sla_due_at": T0 + timedelta(hours=1)}
    frame = pd.DataFrame([{**base, **row} for row in rows or [{}]])
    frame["assigned_at"] = pd.to_datetime(frame["assigned_at"], utc=True)
    return frame


def fired_frame(steps: list[int], chain_start: datetime = T0, lead_key: str = "salesforce:00Q1") -> pd.DataFrame:
    frame = pd.DataFrame([{"lead_key": lead_key, "chain_start": chain_start, "step": s, "rule": "all",
                           "action": CHAIN[s]["action"], "chain_owner": "u1", "last_step": s == 3,
                           "due_at": chain_start, "fired_at": chain_start + timedelta(minutes=5 * (s + 1)),
                           "run_id": "r", "owner_id": "u1", "outcome": "x"} for s in steps],
                         columns=["lead_key", "chain_start", "step", "rule", "action", "chain_owner", "last_step",
                                  "due_at", "fired_at", "run_id", "owner_id", "outcome"])
    for column in ("chain_start", "due_at", "fired_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def plan_of(frame: pd.DataFrame) -> list[tuple[int, bool]]:
    return [(int(s), bool(a)) for s, a in zip(frame["step"], frame["acts"], strict=True)]


# -- which steps are due ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("minutes", "fired", "expected"), [
    (4, [], []),
    (5, [], [(0, True)]),
    (14, [0], []),
    (16, [0], [(1, True)]),
    (16, [], [(0, True), (1, True)]),                        # notices do not supersede each other
    (31, [0, 1], [(2, True)]),
    (61, [0, 1], [(2, False), (3, True)]),                   # watch down: only the last owner step acts
    (61, [], [(0, False), (1, False), (2, False), (3, True)]),
    (61, [0, 1, 2, 3], []),                                  # fired once, never again
    (61, [2], [(3, True)]),                                  # never behind a later step
])
def test_due_steps_follow_the_clock(minutes: int, fired: list[int], expected: list[tuple[int, bool]]) -> None:
    plan = due_steps(open_frame(), fired_frame(fired), config(), T0 + timedelta(minutes=minutes))
    assert plan_of(plan) == expected
    assert plan["superseded_by"].tolist() == [3 if not acts else -1 for _, acts in expected]


@pytest.mark.parametrize(("working_hours", "at", "expected"), [
    (True, datetime(2026, 11, 6, 16, 26, tzinfo=UTC), [(0, True)]),       # Fri 17:26 Berlin: 5 working minutes
    (True, datetime(2026, 11, 9, 8, 4, tzinfo=UTC), [(0, True)]),         # Mon 09:04: 14 working minutes
    (True, datetime(2026, 11, 9, 8, 5, tzinfo=UTC), [(0, True), (1, True)]),  # Mon 09:05: 15
    (False, datetime(2026, 11, 6, 16, 35, tzinfo=UTC), [(0, True), (1, True)]),  # wall time: 15 minutes
])
def test_steps_count_in_the_rules_sla_clock(working_hours: bool, at: datetime, expected: list[tuple[int, bool]]
                                            ) -> None:
    plan = due_steps(open_frame(), fired_frame([]), config(working_hours=working_hours), at)
    assert plan_of(plan) == expected


def test_an_assignment_a_step_made_continues_its_chain_and_any_other_starts_a_new_one() -> None:
    moved = open_frame({"owner_id": "u2", "assigned_at": T0 + timedelta(minutes=31),
                        "routing_reason": f"{ESCALATED}3 (reassign_pool): pool team round robin"})
    plan = due_steps(moved, fired_frame([0, 1, 2]), config(), T0 + timedelta(minutes=61))
    assert plan_of(plan) == [(3, True)]
    assert plan.at[0, "chain_start"] == pd.Timestamp(T0) and plan.at[0, "owner_id"] == "u2"
    fresh = open_frame({"owner_id": "u2", "assigned_at": T0 + timedelta(minutes=40)})
    assert plan_of(due_steps(fresh, fired_frame([0, 1, 2]), config(), T0 + timedelta(minutes=44))) == []
    plan = due_steps(fresh, fired_frame([0, 1, 2]), config(), T0 + timedelta(minutes=46))
    assert plan_of(plan) == [(0, True)] and plan.at[0, "chain_start"] == pd.Timestamp(T0 + timedelta(minutes=40))


# -- the chain as YAML -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "yaml_path", "words"), [
    ({"rules": [{**routing()["rules"][0], "escalation": [{"after": 5, "action": "remind"}]}]},
     "rules[0].escalation[0].after", "with its unit"),
    ({"rules": [{**routing()["rules"][0], "escalation": [{"after": "5 minutes", "action": "remind"}]}]},
     "rules[0].escalation[0].after", "not a duration"),
    ({"rules": [{**routing()["rules"][0], "escalation": [CHAIN[1], CHAIN[0]]}]},
     "rules[0].escalation[1].after", "must be later than the step before it (after 15m)"),
    ({"rules": [{**routing()["rules"][0], "escalation": [{"after": "1h", "action": "queue", "queue": "nope"}]}]},
     "rules[0].escalation[0].queue", "unknown queue 'nope'"),
    ({"rules": [{**routing()["rules"][0], "escalation": [{"after": "1h", "action": "queue"}]}]},
     "rules[0].escalation[0]", "`queue` names the queue"),
    ({"rules": [{**routing()["rules"][0], "escalation": [{"after": "1h", "action": "reassign_pool", "pool": "x"}]}]},
     "rules[0].escalation[0].pool", "unknown pool 'x'"),
    ({"rules": [{**routing()["rules"][0], "escalation": [{"after": "1h", "action": "page"}]}]},
     "rules[0].escalation[0].action", "remind"),
    ({"rules": [{**routing()["rules"][0], "on_sla_breach": "reassign"}]}, "rules[0].on_sla_breach", "both reassign"),
    ({"rules": [{"name": "all", "hold": "wait", "escalation": CHAIN[:1]}]}, "rules[0].escalation", "nothing to escalate"),
    ({"users": {**routing()["users"], "u2": {"name": "Ben", "manager": "boss"}}}, "users.u2.manager",
     "unknown user 'boss'"),
])
def test_bad_chains_are_refused_naming_the_yaml_path(tmp_path: Path, change: dict[str, Any], yaml_path: str,
                                                     words: str) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump({**routing(), **change}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_routing_config(path)
    assert caught.value.yaml_path == yaml_path
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_good_chain_loads_in_minutes(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(routing(chain=[*CHAIN[:3], {"after": "1h30m", "action": "queue",
                                                               "queue": "review"}])), encoding="utf-8")
    steps = load_routing_config(path).rules[0].escalation
    assert [s.after for s in steps] == [5, 15, 30, 90]
    assert steps[3].text() == "after 1h30m: queue review"


# -- recorded once, in the state store -------------------------------------------------------------------------------
state_url = store_urls()


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    """A fresh store on SQLite and on PostgreSQL (the step claims are dialect-specific upserts)."""
    with StateStore.open(state_url) as opened:
        yield opened


def assign(store: StateStore, keys: list[str], owner: str = "u1", at: datetime = T0) -> None:
    run_id = store.start_run("test", {})
    made = pd.DataFrame({"lead_key": keys, "owner_id": owner, "routing_rule": "all", "routing_reason": "pool team",
                         "assigned_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "sla_due_at": None,
                         "inputs": [{"lead_id": k.split(":")[1], "email": f"{k[-2:]}@acme.com", "company": "Acme",
                                     "source": "salesforce"} for k in keys]})
    with store.routing_session(run_id) as session:
        session.record(made)


def plan(store: StateStore, routing_config: RoutingConfig, at: datetime) -> pd.DataFrame:
    open_ = open_assignments(store, ["all"], ESCALATED)
    return due_steps(open_, fired_steps(store, open_["lead_key"].tolist()), routing_config, at)


def test_each_step_fires_once_across_runs_and_touched_leads_never_escalate(store: StateStore) -> None:
    routing_config = config()
    assign(store, ["salesforce:00Q1", "salesforce:00Q2", "salesforce:00Q3"])
    store.mark_assignments(["salesforce:00Q3"], "first_touch_at", T0 + timedelta(minutes=2))
    at = T0 + timedelta(minutes=16)
    due = plan(store, routing_config, at)
    assert sorted(set(due["lead_key"])) == ["salesforce:00Q1", "salesforce:00Q2"]  # 00Q3 was touched
    first = claim_notices(store, due, routing_config, at, run_id=store.start_run("w1", {}))
    assert sorted(zip(first["lead_key"], first["action"], first["recipient_id"], strict=True)) == [
        ("salesforce:00Q1", "notify_manager", "m1"), ("salesforce:00Q1", "remind", "u1"),
        ("salesforce:00Q2", "notify_manager", "m1"), ("salesforce:00Q2", "remind", "u1")]
    # A second watch with the same (stale) plan, and a re-plan: nothing fires twice.
    assert claim_notices(store, due, routing_config, at, run_id=store.start_run("w2", {})).empty
    assert plan(store, routing_config, at).empty
    events = store.events()
    assert sorted(events["stage"].unique()) == ["escalation:notify_manager", "escalation:remind"]
    assert len(events) == 4

    # 45 minutes on: the reassign step, fired once even when two watches both planned it.
    at = T0 + timedelta(minutes=45)
    due = plan(store, routing_config, at)
    assert plan_of(due) == [(2, True), (2, True)]
    moved = escalate_owners(store, due, routing_config, at, run_id=store.start_run("w3", {}))
    assert sorted(moved["lead_key"]) == ["salesforce:00Q1", "salesforce:00Q2"] and set(moved["owner_id"]) == {"u2"}
    assert escalate_owners(store, due, routing_config, at, run_id=store.start_run("w4", {})).empty
    now = store.assignments().set_index("lead_key")
    assert now.at["salesforce:00Q1", "owner_id"] == "u2"
    assert now.at["salesforce:00Q1", "routing_reason"].startswith(ESCALATED + "3 (reassign_pool)")
    assert now.at["salesforce:00Q3", "owner_id"] == "u1"

    # The new owner's lead goes on with the same chain: the queue at 60 minutes, then nothing more.
    at = T0 + timedelta(minutes=61)
    due = plan(store, routing_config, at)
    assert plan_of(due) == [(3, True), (3, True)]
    assert set(due["chain_start"]) == {pd.Timestamp(T0)}
    escalate_owners(store, due, routing_config, at, run_id=store.start_run("w5", {}))
    now = store.assignments().set_index("lead_key")
    assert now.at["salesforce:00Q2", "owner_id"] == "00GREVIEW"
    assert open_assignments(store, ["all"], ESCALATED).empty  # chains finished; 00Q3 touched
    assert plan(store, routing_config, T0 + timedelta(days=3)).empty
    steps = fired_steps(store, ["salesforce:00Q1"])
    assert steps["step"].tolist() == [0, 1, 2, 3] and steps["last_step"].tolist() == [False, False, False, True]


def test_a_reassign_step_may_name_its_pool_and_a_step_nobody_can_take_is_recorded(store: StateStore) -> None:
    data = routing(chain=[{"after": "30m", "action": "reassign_pool", "pool": "solo"}])
    data["pools"]["solo"] = {"members": [{"user": "u1"}]}
    routing_config = RoutingConfig.model_validate(data)
    assign(store, ["salesforce:00Q1"], owner="u1")
    at = T0 + timedelta(minutes=31)
    assert escalate_owners(store, plan(store, routing_config, at), routing_config, at,
                           run_id=store.start_run("w", {})).empty
    (row,) = fired_steps(store, ["salesforce:00Q1"]).to_dict("records")
    assert row["outcome"].startswith("kept by u1: nobody else available")
    assert store.assignments().at[0, "owner_id"] == "u1"


# -- end to end on the Salesforce sandbox ----------------------------------------------------------------------------

@pytest.fixture
def salesforce(tmp_path: Path) -> Iterator[Any]:
    from leadflow.sandbox.salesforce import running_salesforce

    with running_salesforce(tmp_path / "sf", leads=60, seed=11, page_size=200) as sf:
        yield sf


@pytest.mark.prefect
def test_an_untouched_sandbox_lead_is_reminded_escalated_reassigned_and_queued(
    prefect_api: str, state_home: Path, tmp_path: Path, salesforce: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.crm_sync import crm_sync
    from flows.sla_watch import sla_watch
    from leadflow.audit.trace import trace, trace_lines
    from leadflow.sandbox.launch import sandbox_routing
    from leadflow.sandbox.salesforce_seed import WEB_QUEUE_ID
    from tests.test_notify import http_receiver

    users = sorted(salesforce.org.objects["User"])
    document = yaml.safe_load(sandbox_routing(users))
    manager = users[0]
    for uid, user in document["users"].items():
        if uid != manager:
            user["manager"] = manager
    document["queues"] = {"inbound_review": {"owner_id": WEB_QUEUE_ID}}
    for rule in document["rules"]:
        if rule["name"] == "everyone_else":
            rule["escalation"] = [{"after": "5m", "action": "remind"}, {"after": "15m", "action": "notify_manager"},
                                  {"after": "30m", "action": "reassign_pool"},
                                  {"after": "60m", "action": "queue", "queue": "inbound_review"}]
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    monkeypatch.setenv("LF_TEST_SF_SECRET", salesforce.client_secret)
    with http_receiver() as slack:
        monkeypatch.setenv("LF_TEST_SLACK_WEBHOOK", slack.url + "/hook")
        config = tmp_path / "leadflow.yaml"
        config.write_text(yaml.safe_dump({
            "systems": {"salesforce": {"login_url": salesforce.url, "client_id": salesforce.client_id,
                                       "client_secret": {"env": "LF_TEST_SF_SECRET"},
                                       "ca_bundle": str(salesforce.cert_path), "page_size": 200}},
            "routing": {"rules": "routing.yaml"},
            "notifications": {"slack": {"webhook_url": {"env": "LF_TEST_SLACK_WEBHOOK"}}},
        }), encoding="utf-8")
        crm_sync(config_path=str(config), override_export_guard=True)
        store = StateStore.open()
        slack.requests.clear()  # the sync announced the new leads; only escalations from here on
        assigned = store.assignments(inputs=False).set_index("lead_key")
        chained = assigned[assigned["routing_rule"] == "everyone_else"]
        assert len(chained) >= 3
        touched = chained.index[0]
        store.mark_assignments([touched], "first_touch_at", chained.at[touched, "assigned_at"] + timedelta(minutes=1))
        watched = [k for k in chained.index if k != touched]
        start = chained["assigned_at"].min().to_pydatetime()

        def watch(minutes: int) -> dict[str, Any]:
            return sla_watch(as_of=start + timedelta(minutes=minutes, seconds=1), config_path=str(config))

        assert "escalation_leads" not in watch(4)
        reminders = watch(5)
        assert reminders["escalation_remind"] == len(watched) and reminders["breaches"] == 0
        assert len(slack.requests) == len(watched)
        assert all("has waited 5m for a first touch" in r["json"]["text"] for r in slack.requests)
        assert "escalation_leads" not in watch(5)  # the same moment again: nothing fires twice
        assert len(slack.requests) == len(watched)

        notices = watch(15)
        with_manager = [k for k in watched if chained.at[k, "owner_id"] != manager]
        assert notices["escalation_notify_manager"] == len(watched)
        assert len(slack.requests) == len(watched) + len(with_manager)
        assert all(r["json"]["text"].startswith("Sandbox rep 0, ") for r in slack.requests[len(watched):])

        moved = watch(30)
        assert moved["escalation_owner_changes"] == len(watched)
        assert moved["escalation_written"] == {"salesforce": len(watched)}
        now = store.assignments(inputs=False).set_index("lead_key")
        for key in watched:
            record = salesforce.org.objects["Lead"][key.split(":", 1)[1]]
            assert record["OwnerId"] == now.at[key, "owner_id"] != chained.at[key, "owner_id"]

        queued = watch(60)
        assert queued["escalation_written"] == {"salesforce": len(watched)}
        now = store.assignments(inputs=False).set_index("lead_key")
        for key in watched:
            assert now.at[key, "owner_id"] == WEB_QUEUE_ID
            assert salesforce.org.objects["Lead"][key.split(":", 1)[1]]["OwnerId"] == WEB_QUEUE_ID
        assert "escalation_leads" not in watch(24 * 60)
        assert now.at[touched, "owner_id"] == chained.at[touched, "owner_id"]
        others = assigned[assigned["routing_rule"] != "everyone_else"].index
        assert (now.loc[others, "owner_id"] == assigned.loc[others, "owner_id"]).all()

    lead = watched[-1]
    journey = trace(store, lead.split(":", 1)[1])
    assert journey["kind"] == "id"
    steps = [(e["step"], e["action"]) for e in journey["escalations"]]
    assert steps == [(0, "remind"), (1, "notify_manager"), (2, "reassign_pool"), (3, "queue")]
    stages = [e["stage"] for e in journey["timeline"] if e["kind"] == "escalation"]
    assert stages == ["escalation:remind", "escalation:notify_manager", "escalation:reassign_pool", "escalation:queue"]
    text = "\n".join(trace_lines(journey))
    assert "step 1 remind of rule everyone_else" in text and "step 4 (last) queue" in text
    assert f"queued to inbound_review ({WEB_QUEUE_ID})" in text
    assert "escalation:reassign_pool" in text and "slack sent" in text
    assert journey["escalations"][0]["fired_at"] < journey["escalations"][3]["fired_at"]
    untouched = trace(store, touched.split(":", 1)[1])
    assert untouched["escalations"] == []
