"""The routing core: actions, first match, round robin, caps, availability, territories, SLAs, config errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from leadflow.pipeline.errors import ConfigError
from leadflow.routing import (
    DEFAULT_ROUTING,
    ROUTING_COLUMNS,
    RoutingConfig,
    RoutingState,
    availability_from_file,
    explain,
    load_routing_config,
    route_leads,
)
from leadflow.synth import routing_leads

# Wednesday 2026-11-18, 15:00 UTC: 10:00 in New York, 07:00 in Los Angeles, 16:00 in Berlin.
WEDNESDAY = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:30"}


def users(**extra: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "u1": {"name": "Ann"},
        "u2": {"name": "Ben"},
        "u3": {"name": "Cai"},
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value}
    return base


def config(rules: list[dict[str, Any]], **parts: Any) -> RoutingConfig:
    data: dict[str, Any] = {
        "version": "t1",
        "timezone": "America/New_York",
        "users": users(),
        "pools": {"team": {"members": [{"user": "u1"}, {"user": "u2"}]}},
        "queues": {"review": {"owner_id": "00G_REVIEW"}},
        "rules": rules,
    }
    data.update(parts)
    return RoutingConfig.model_validate(data)


def leads(n: int = 1, **columns: list[Any]) -> pd.DataFrame:
    n = max([n, *(len(v) for v in columns.values())])
    frame = pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)]}, dtype="string")
    for name, values in columns.items():
        frame[name] = pd.array(values, dtype="string")
    return frame


def route(frame: pd.DataFrame, cfg: RoutingConfig, state: RoutingState | None = None,
          as_of: datetime = WEDNESDAY) -> pd.DataFrame:
    return route_leads(frame, cfg, state or RoutingState(), as_of=as_of)[0]


FALLBACK = {"name": "fallback", "queue": "review"}


# ------------------------------------------------------------------------------------------------------- actions


@pytest.mark.parametrize(
    ("action", "owner", "reason"),
    [
        ({"assign_to": "u3"}, "u3", "assigned to Cai"),
        ({"account_owner": True}, "u2", "account owner"),
        ({"territory": True}, "u1", "pool team round robin (territory Americas)"),
        ({"pool": "team"}, "u1", "pool team round robin"),
        ({"queue": "review"}, "00G_REVIEW", "queue review"),
        ({"hold": "waiting for enrichment"}, None, "hold: waiting for enrichment"),
    ],
)
def test_each_action(action: dict[str, Any], owner: str | None, reason: str) -> None:
    cfg = config([{"name": "the_rule", **action}],
                 territories=[{"name": "Americas", "countries": ["US"], "pool": "team"}])
    out = route(leads(account_owner_id=["u2"], country_code=["US"]), cfg)
    assert list(out.columns) == list(ROUTING_COLUMNS)
    assert all(str(out[c].dtype) == "string" for c in ROUTING_COLUMNS)
    row = out.iloc[0]
    assert (None if pd.isna(row["owner_id"]) else row["owner_id"]) == owner
    assert row["routing_rule"] == "the_rule"
    assert row["routing_reason"] == reason
    if owner is None:
        assert pd.isna(row["assigned_at"]) and pd.isna(row["sla_due_at"])
    else:
        assert row["assigned_at"] == "2026-11-18T15:00:00Z"


def test_first_matching_rule_wins_and_index_is_kept() -> None:
    cfg = config([
        {"name": "demo", "when": {"column": "lead_source", "equals": "Demo Request"}, "assign_to": "u1"},
        {"name": "germany", "when": {"column": "country_code", "equals": "DE"}, "assign_to": "u2"},
        FALLBACK,
    ])
    frame = leads(lead_source=["Demo Request", "Demo Request", "Web Form", None], country_code=["DE", "US", "DE", "FR"])
    frame.index = pd.Index([10, 20, 30, 40])
    out = route(frame, cfg)
    assert list(out.index) == [10, 20, 30, 40]
    assert out["routing_rule"].tolist() == ["demo", "demo", "germany", "fallback"]
    assert out["owner_id"].tolist() == ["u1", "u1", "u2", "00G_REVIEW"]


def test_conditions_may_use_score_and_enrichment_columns() -> None:
    cfg = config([
        {"name": "dupes", "when": {"column": "duplicate_of", "exists": True}, "hold": "possible duplicate"},
        {"name": "hot", "when": {"all": [{"column": "grade", "in": ["A", "B"]}, {"column": "score", "range": {"min": 50}}]},
         "assign_to": "u1"},
        FALLBACK,
    ])
    frame = leads(duplicate_of=["00Q1", None, None], grade=["A", "A", "A"])
    frame["score"] = pd.array([90.0, 90.0, 10.0], dtype="Float64")
    out = route(frame, cfg)
    assert out["routing_reason"].tolist() == ["hold: possible duplicate", "assigned to Ann", "queue review"]


# ------------------------------------------------------------------------------------------------- round robin


def weighted(weights: tuple[int, int], **member_extra: Any) -> RoutingConfig:
    members = [{"user": "u1", "weight": weights[0]}, {"user": "u2", "weight": weights[1]}]
    return config([{"name": "rr", "pool": "team"}], pools={"team": {"members": members, **member_extra}})


def test_weighted_round_robin_is_smooth_and_exactly_proportional() -> None:
    out = route(leads(8), weighted((3, 1)))
    assert out["owner_id"].tolist() == ["u1", "u1", "u2", "u1"] * 2
    counts = route(leads(400), weighted((5, 3)))["owner_id"].value_counts()
    assert counts["u1"] == 250 and counts["u2"] == 150


def test_round_robin_carries_over_through_the_state() -> None:
    cfg = weighted((3, 1))
    whole, state_whole = route_leads(leads(10), cfg, RoutingState(), as_of=WEDNESDAY)
    first, state = route_leads(leads(5), cfg, RoutingState(), as_of=WEDNESDAY)
    state = RoutingState.from_json(state.to_json())
    second, state_parts = route_leads(leads(5), cfg, state, as_of=WEDNESDAY)
    assert first["owner_id"].tolist() + second["owner_id"].tolist() == whole["owner_id"].tolist()
    # what is saved carries over (open leads are not saved: each routing session reads them from the store)
    assert state_parts.to_json() == state_whole.to_json()
    assert state_whole.assigned_today == {("u1", "2026-11-18"): 8, ("u2", "2026-11-18"): 2}


def test_input_state_is_not_changed_and_runs_are_deterministic() -> None:
    cfg = weighted((2, 1))
    state = RoutingState(weights={"team": {"u1": 1, "u2": -1}}, assigned_today={("u1", "2026-11-18"): 4})
    before = state.to_json()
    a, sa = route_leads(leads(7), cfg, state, as_of=WEDNESDAY)
    b, sb = route_leads(leads(7), cfg, state, as_of=WEDNESDAY)
    assert state.to_json() == before
    pd.testing.assert_frame_equal(a, b)
    assert sa == sb


def test_state_json_round_trip() -> None:
    state = RoutingState(weights={"p": {"u1": -3, "u2": 3}}, assigned_today={("u1", "2026-11-18"): 2})
    assert RoutingState.from_json(state.to_json()) == state
    assert RoutingState.from_json(None) == RoutingState()


def test_daily_cap_skips_a_member_and_resets_the_next_local_day() -> None:
    cfg = config([{"name": "rr", "pool": "team"}],
                 pools={"team": {"members": [{"user": "u1", "daily_cap": 2}, {"user": "u2"}]}})
    out, state = route_leads(leads(6), cfg, RoutingState(), as_of=WEDNESDAY)
    assert out["owner_id"].tolist() == ["u1", "u2", "u1", "u2", "u2", "u2"]
    # 23:30 New York is still Wednesday there: still capped.
    late = datetime(2026, 11, 19, 4, 30, tzinfo=UTC)
    out, state = route_leads(leads(2), cfg, state, as_of=late)
    assert out["owner_id"].tolist() == ["u2", "u2"]
    # 00:30 New York on Thursday: a new day.
    thursday = datetime(2026, 11, 19, 5, 30, tzinfo=UTC)
    out, state = route_leads(leads(2), cfg, state, as_of=thursday)
    assert "u1" in out["owner_id"].tolist()
    assert state.assigned_today[("u1", "2026-11-19")] == 1


def test_all_capped_overflows() -> None:
    cfg = config([{"name": "rr", "pool": "team"}],
                 pools={"team": {"members": [{"user": "u1", "daily_cap": 1}, {"user": "u2", "daily_cap": 1}],
                                 "overflow": {"queue": "review"}}})
    out = route(leads(4), cfg)
    assert out["owner_id"].tolist() == ["u1", "u2", "00G_REVIEW", "00G_REVIEW"]
    assert out["routing_reason"].iloc[3] == (
        "queue review (skipped Ann: daily cap 1; skipped Ben: daily cap 1; pool team: nobody available)")


@pytest.mark.parametrize(
    "u1",
    [
        {"active": False},
        {"out_of_office": [{"from": "2026-11-16", "to": "2026-11-18"}]},
        {"working_hours": OFFICE, "timezone": "America/Los_Angeles"},  # 07:00 there
    ],
    ids=["inactive", "out_of_office", "outside_working_hours"],
)
def test_unavailable_members_are_skipped(u1: dict[str, Any]) -> None:
    cfg = config([{"name": "rr", "pool": "team"}], users=users(u1=u1))
    assert route(leads(3), cfg)["owner_id"].tolist() == ["u2", "u2", "u2"]


def test_out_of_office_ends_after_its_last_date() -> None:
    cfg = config([{"name": "rr", "pool": "team"}],
                 users=users(u1={"out_of_office": [{"from": "2026-11-16", "to": "2026-11-17"}]}))
    assert route(leads(2), cfg)["owner_id"].tolist() == ["u1", "u2"]


def test_working_hours_in_each_members_time_zone() -> None:
    cfg = config([{"name": "rr", "pool": "team"}], users=users(
        u1={"timezone": "America/Los_Angeles", "working_hours": OFFICE},  # 07:00: not yet
        u2={"timezone": "Europe/Berlin", "working_hours": OFFICE},  # 16:00: at work
    ))
    assert route(leads(2), cfg)["owner_id"].tolist() == ["u2", "u2"]
    evening = datetime(2026, 11, 18, 18, 0, tzinfo=UTC)  # 10:00 Los Angeles, 19:00 Berlin
    assert route(leads(2), cfg, as_of=evening)["owner_id"].tolist() == ["u1", "u1"]
    saturday = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
    assert route(leads(1), cfg, as_of=saturday)["routing_reason"].tolist() == ["hold: pool team unavailable"]


def test_overflow_when_nobody_is_available() -> None:
    away = {"active": False}
    cfg = config([{"name": "rr", "pool": "team"}], users=users(u1=away, u2=away),
                 pools={"team": {"members": [{"user": "u1"}, {"user": "u2"}], "overflow": {"assign_to": "u3"}},
                        "other": {"members": [{"user": "u1"}]}})
    out = route(leads(2), cfg)
    assert out["owner_id"].tolist() == ["u3", "u3"]
    assert out["routing_reason"].iloc[0] == "assigned to Cai (pool team: nobody available)"
    default = config([{"name": "rr", "pool": "team"}], users=users(u1=away, u2=away))
    out = route(leads(1), default)
    assert out["routing_reason"].iloc[0] == "hold: pool team unavailable"
    assert pd.isna(out["owner_id"].iloc[0]) and pd.isna(out["assigned_at"].iloc[0])


def test_overflow_to_another_pool() -> None:
    cfg = config([{"name": "rr", "pool": "west"}], pools={
        "west": {"members": [{"user": "u1", "daily_cap": 1}], "overflow": {"pool": "east"}},
        "east": {"members": [{"user": "u2"}, {"user": "u3"}]},
    })
    out = route(leads(4), cfg)
    assert out["owner_id"].tolist() == ["u1", "u2", "u3", "u2"]
    assert out["routing_reason"].iloc[1] == "pool east round robin (skipped Ann: daily cap 1; pool west: nobody available)"


# ------------------------------------------------------------------------------------------------ account owner


@pytest.mark.parametrize(
    ("owner", "reason"),
    [
        ("u1", "pool team round robin (account owner Ann unavailable)"),
        (None, "pool team round robin (no account owner)"),
        ("005_FORMER", "pool team round robin (account owner not a routing user)"),
    ],
)
def test_account_owner_unavailable_goes_otherwise(owner: str | None, reason: str) -> None:
    cfg = config([{"name": "named", "account_owner": True, "otherwise": {"pool": "team"}}],
                 users=users(u1={"out_of_office": [{"from": "2026-11-18", "to": "2026-11-18"}]}))
    out = route(leads(account_owner_id=[owner]), cfg)
    assert out["routing_reason"].iloc[0] == reason
    assert out["owner_id"].iloc[0] == "u2"


def test_account_owner_without_otherwise_holds() -> None:
    cfg = config([{"name": "named", "account_owner": True}])
    out = route(leads(account_owner_id=[None, "u3"]), cfg)
    assert out["routing_reason"].tolist() == ["hold: no account owner", "account owner"]
    assert out["owner_id"].iloc[1] == "u3"


def test_assign_to_unavailable_user() -> None:
    cfg = config([{"name": "r", "assign_to": "u1", "otherwise": {"queue": "review"}}], users=users(u1={"active": False}))
    assert route(leads(), cfg)["routing_reason"].iloc[0] == "queue review (Ann unavailable)"
    cfg = config([{"name": "r", "assign_to": "u1"}], users=users(u1={"active": False}))
    assert route(leads(), cfg)["owner_id"].iloc[0] == "u1"


# ------------------------------------------------------------------------------------------------- territories

TERRITORIES = [
    {"name": "California", "states": ["US-CA"], "pool": "west"},
    {"name": "US West ZIPs", "postal_ranges": [{"country": "US", "from": "80000", "to": "96199"}], "pool": "west"},
    {"name": "US enterprise", "countries": ["US"], "segments": ["enterprise"], "pool": "east"},
    {"name": "UK London", "postal_ranges": [{"country": "GB", "from": "E1", "to": "WC2"}], "pool": "east"},
    {"name": "DACH", "countries": ["DE", "AT", "CH"], "pool": "emea"},
]


@pytest.mark.parametrize(
    ("lead", "territory"),
    [
        ({"country_code": "US", "state_code": "US-CA", "postal_code": "10001"}, "California"),
        ({"country_code": "US", "state_code": "US-CO", "postal_code": "80202"}, "US West ZIPs"),
        ({"country_code": "US", "state_code": "US-OR", "postal_code": "97201-1234"}, None),
        ({"country_code": "US", "state_code": "US-NV", "postal_code": "96199-1234"}, "US West ZIPs"),
        ({"country_code": "US", "state_code": "US-NY", "postal_code": "10001", "segment": "enterprise"}, "US enterprise"),
        ({"country_code": "US", "state_code": "US-NY", "postal_code": "10001", "segment": "smb"}, None),
        ({"country_code": "CA", "postal_code": "85000", "segment": "enterprise"}, None),
        ({"country_code": "GB", "postal_code": "sw1a 1aa"}, "UK London"),
        ({"country_code": "DE", "postal_code": "10115"}, "DACH"),
        ({"country_code": None}, None),
    ],
)
def test_territories(lead: dict[str, str | None], territory: str | None) -> None:
    members = {"members": [{"user": "u1"}]}
    cfg = config([{"name": "t", "territory": True, "otherwise": {"hold": "no territory"}}],
                 pools={"west": members, "east": members, "emea": members}, territories=TERRITORIES)
    out = route(leads(**{k: [v] for k, v in lead.items()}), cfg)
    reason = out["routing_reason"].iloc[0]
    if territory is None:
        assert reason == "hold: no territory (no territory)"
    else:
        assert reason.endswith(f"(territory {territory})")


# ----------------------------------------------------------------------------------------------- reassignment


def test_assigned_leads_keep_their_routing_unless_the_rule_reassigns() -> None:
    rules = [{"name": "rr", "pool": "team"}]
    frame = leads(2, owner_id=["u9", None], routing_rule=["old_rule", None], routing_reason=["by hand", None],
                  assigned_at=["2026-11-01T10:00:00Z", None], sla_due_at=["2026-11-01T11:00:00Z", None])
    out = route(frame, config(rules))
    assert out.iloc[0].tolist() == ["u9", "old_rule", "by hand", "2026-11-01T10:00:00Z", "2026-11-01T11:00:00Z"]
    assert out["owner_id"].iloc[1] == "u1"
    out = route(frame, config([{**rules[0], "reassign": True}]))
    assert out["owner_id"].tolist() == ["u1", "u2"]
    assert out["assigned_at"].iloc[0] == "2026-11-18T15:00:00Z"


def test_holds_are_routed_again() -> None:
    frame = leads(1, routing_rule=["dupes"], routing_reason=["hold: possible duplicate"], assigned_at=[None])
    out = route(frame, config([{"name": "rr", "pool": "team"}]))
    assert out["owner_id"].iloc[0] == "u1"


# ------------------------------------------------------------------------------------------------------- SLAs


@pytest.mark.parametrize(
    ("as_of", "minutes", "working", "due"),
    [
        (datetime(2026, 11, 18, 15, 0, tzinfo=UTC), 10, True, "2026-11-18T15:10:00Z"),  # 10:00 New York
        (datetime(2026, 11, 18, 22, 25, tzinfo=UTC), 10, True, "2026-11-19T14:05:00Z"),  # 17:25 → 09:05 next day
        (datetime(2026, 11, 20, 22, 25, tzinfo=UTC), 10, True, "2026-11-23T14:05:00Z"),  # Friday → Monday
        (datetime(2026, 11, 18, 22, 25, tzinfo=UTC), 10, False, "2026-11-18T22:35:00Z"),  # plain minutes
        (datetime(2026, 11, 18, 15, 0, tzinfo=UTC), 2 * 510 + 30, True, "2026-11-20T15:30:00Z"),  # two full days
        (datetime(2026, 10, 30, 21, 25, tzinfo=UTC), 10, True, "2026-11-02T14:05:00Z"),  # across the end of DST
    ],
)
def test_sla_counts_the_owners_working_hours(as_of: datetime, minutes: int, working: bool, due: str) -> None:
    cfg = config([{"name": "demo", "assign_to": "u1", "sla_minutes": minutes, "sla_working_hours": working}],
                 users=users(u1={"working_hours": OFFICE}))
    # After hours the user is unavailable, but assign_to without `otherwise` still assigns.
    out = route(leads(), cfg, as_of=as_of)
    assert out["sla_due_at"].iloc[0] == due


def test_sla_skips_out_of_office_days_and_is_na_without_sla_or_owner() -> None:
    cfg = config([
        {"name": "held", "when": {"column": "grade", "equals": "D"}, "hold": "later", "sla_minutes": 5},
        {"name": "demo", "assign_to": "u1", "sla_minutes": 10},
    ], users=users(u1={"working_hours": OFFICE, "out_of_office": [{"from": "2026-11-19", "to": "2026-11-19"}]}))
    out = route(leads(grade=["D", "A"]), cfg, as_of=datetime(2026, 11, 18, 22, 25, tzinfo=UTC))
    assert pd.isna(out["sla_due_at"].iloc[0])
    assert out["sla_due_at"].iloc[1] == "2026-11-20T14:05:00Z"
    no_sla = route(leads(), config([{"name": "r", "assign_to": "u1"}]))
    assert pd.isna(no_sla["sla_due_at"].iloc[0])


# -------------------------------------------------------------------------------------------------- YAML errors


def _load(tmp_path: Path, data: dict[str, Any]) -> RoutingConfig:
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_routing_config(path)


def _base() -> dict[str, Any]:
    return {
        "version": "t1",
        "users": {"u1": {"name": "Ann"}, "u2": {"name": "Ben"}},
        "pools": {"team": {"members": [{"user": "u1"}, {"user": "u2"}]}},
        "queues": {"review": {"owner_id": "00G1"}},
        "territories": [{"name": "US", "countries": ["US"], "pool": "team"}],
        "rules": [{"name": "r1", "when": {"column": "grade", "equals": "A"}, "pool": "team"},
                  {"name": "fallback", "queue": "review"}],
    }


def _with(path: str, value: Any) -> dict[str, Any]:
    data = _base()
    target: Any = data
    keys = [int(k) if k.isdigit() else k for k in path.split("/")]
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "yaml_path", "message"),
    [
        ("pools/team/members", [{"user": "u7"}], "pools.team.members[0].user", "unknown user 'u7'"),
        ("rules/0/pool", "nope", "rules[0].pool", "unknown pool 'nope'"),
        ("rules/1", {"name": "fallback", "when": {"column": "grade", "equals": "B"}, "queue": "review"}, "rules",
         "never left without an outcome"),
        ("rules/1/name", "r1", "rules[1].name", "used twice"),
        ("rules/1/queue", "missing", "rules[1].queue", "unknown queue"),
        ("territories/0/pool", "gone", "territories[0].pool", "unknown pool"),
        ("territories/0/countries", ["XX"], "territories[0].countries", "alpha-2"),
        ("timezone", "Mars/Olympus", "timezone", "IANA time zone"),
        ("users/u1/timezone", "Europe/Nowhere", "users.u1.timezone", "IANA time zone"),
        ("users/u1/working_hours", {"start": "18:00", "end": "18:00"}, "users.u1.working_hours", "needs a length"),
        ("users/u1/working_hours", {"start": 1050}, "users.u1.working_hours.start", "quote it"),
        ("pools/team/overflow", {"pool": "team"}, "pools.team.overflow", "circle"),
        ("rules/0/otherwise", {"assign_to": "ghost"}, "rules[0]", "does not apply to pool"),
        ("rules/1/otherwise", {"assign_to": "ghost"}, "rules[1]", "does not apply to queue"),
        ("pools/team/overflow", {"territory": True, "otherwise": {"assign_to": "ghost"}}, "pools.team.overflow.otherwise.assign_to",
         "unknown user 'ghost'"),
        ("rules/0/queue", "review", "rules[0]", "exactly one action"),
        ("pools/team/members", [{"user": "u1", "weight": 0}], "pools.team.members[0].weight", "greater than or equal"),
    ],
)
def test_config_errors_name_the_yaml_path(tmp_path: Path, path: str, value: Any, yaml_path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, _with(path, value))
    assert caught.value.yaml_path == yaml_path
    assert message in str(caught.value)


def test_a_rule_without_when_must_be_last(tmp_path: Path) -> None:
    data = _base()
    data["rules"].insert(0, {"name": "everything", "hold": "x"})
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, data)
    assert caught.value.yaml_path == "rules[0].when"


# ---------------------------------------------------------------------------------------------- reference config


def test_reference_config_routes_synthetic_leads() -> None:
    cfg = load_routing_config(DEFAULT_ROUTING)
    assert len(cfg.users) >= 8 and len(cfg.pools) >= 2 and cfg.rules[-1].when is None
    frame = routing_leads(3000, seed=3)
    out, state = route_leads(frame, cfg, RoutingState(), as_of=WEDNESDAY)
    again, state_again = route_leads(frame, cfg, RoutingState(), as_of=WEDNESDAY)
    pd.testing.assert_frame_equal(out, again)
    assert state == state_again
    assert out["routing_rule"].notna().all() and out["routing_reason"].notna().all()
    holds = out["routing_reason"].str.startswith("hold: ")
    assert (out["owner_id"].isna() == holds).all()
    assert set(out["routing_rule"]) >= {"possible_duplicate", "demo_request", "named_account", "smb", "fallback"}
    known = set(cfg.users) | {q.owner_id for q in cfg.queues.values()}
    assert set(out["owner_id"].dropna()) <= known
    assert "0058c00000HugoQ" not in set(out["owner_id"].dropna())  # inactive
    assert "fallback" in explain(cfg)


def test_availability_from_file(tmp_path: Path) -> None:
    path = tmp_path / "ooo.csv"
    path.write_text("user_id,from,to\nu1,2026-11-18,2026-11-20\nu1,2026-12-24,2026-12-31\n", encoding="utf-8")
    ranges = availability_from_file(path)
    assert [str(r.start) for r in ranges["u1"]] == ["2026-11-18", "2026-12-24"]
    path.write_text("user_id,from,to\nu1,2026-11-20,2026-11-18\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="row 2"):
        availability_from_file(path)


def test_routing_leads_is_deterministic_and_has_the_columns_the_rules_read() -> None:
    a, b = routing_leads(500, seed=5), routing_leads(500, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(routing_leads(500, seed=6))
    for column in ("lead_source", "country_code", "state_code", "postal_code", "segment", "account_owner_id",
                   "duplicate_of", "grade", "email"):
        assert column in a.columns and a[column].notna().any()


def test_static_overflow_and_path_in_the_reason() -> None:
    cfg = load_routing_config(DEFAULT_ROUTING)
    frame = leads(lead_source=["Demo Request"], country_code=["US"], state_code=["US-CA"], postal_code=["94105"],
                  segment=["enterprise"], email=["a@b.com"])
    out = route(frame, cfg)  # 07:00 in Los Angeles: na_west_ae is closed, its overflow is na_east_ae
    assert out["owner_id"].iloc[0] in {"0058c00000CarlaQ", "0058c00000DevonQ"}
    assert out["routing_reason"].iloc[0] == (
        "pool na_east_ae round robin (territory California; pool na_west_ae: nobody available)")
    assert out["sla_due_at"].iloc[0] == "2026-11-18T15:10:00Z"


def test_removed_pools_are_dropped_from_the_state() -> None:
    state = RoutingState(weights={"gone": {"u1": 2}, "team": {"u1": 0, "u2": 0}})
    _, new = route_leads(leads(1), weighted((1, 1)), state, as_of=WEDNESDAY)
    assert set(new.weights) == {"team"}


def test_daily_caps_count_a_users_round_robin_leads_across_pools() -> None:
    cfg = config([{"name": "first", "when": {"column": "grade", "equals": "A"}, "pool": "a"}, {"name": "rest", "pool": "b"}],
                 pools={"a": {"members": [{"user": "u1"}]},
                        "b": {"members": [{"user": "u1", "daily_cap": 2}, {"user": "u2"}]}})
    out = route(leads(grade=["A", "A", None, None, None]), cfg)
    assert out["owner_id"].tolist() == ["u1", "u1", "u2", "u2", "u2"]
