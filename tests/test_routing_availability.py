"""Availability ops: pauses (CLI and state store), holiday calendars, hourly and open-lead caps, shifts crossing
midnight, and how each shows in routing reasons and `leadflow routing simulate`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.pipeline.errors import ConfigError
from leadflow.routing import RoutingConfig, RoutingState, load_routing_config, route_leads
from leadflow.routing.times import Pause, _due

runner = CliRunner()
# Wednesday 2026-11-18, 15:00 UTC: 10:00 in New York, 16:00 in Berlin.
WEDNESDAY = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def config(members: list[dict[str, Any]] | None = None, **parts: Any) -> RoutingConfig:
    data: dict[str, Any] = {
        "version": "t1",
        "timezone": "America/New_York",
        "users": {"u1": {"name": "Ann"}, "u2": {"name": "Ben"}},
        "pools": {"team": {"members": members or [{"user": "u1"}, {"user": "u2"}], "overflow": {"queue": "review"}}},
        "queues": {"review": {"owner_id": "00G_REVIEW"}},
        "rules": [{"name": "rr", "pool": "team", "sla_minutes": 60}],
    }
    data.update(parts)
    return RoutingConfig.model_validate(data)


def leads(n: int) -> pd.DataFrame:
    return pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)]}, dtype="string")


def route(cfg: RoutingConfig, n: int, state: RoutingState | None = None,
          as_of: datetime = WEDNESDAY) -> tuple[pd.DataFrame, RoutingState]:
    return route_leads(leads(n), cfg, state or RoutingState(), as_of=as_of)


# --- who is skipped, and the reason says why ---------------------------------------------------------------------------

PAUSED = RoutingState(paused={"u1": Pause(until=datetime(2026, 11, 20, tzinfo=UTC), reason="vacation", by="ops",
                                          at=datetime(2026, 11, 17, tzinfo=UTC))})


@pytest.mark.parametrize(
    ("users", "state", "why"),
    [
        (None, PAUSED, "skipped Ann: paused until 2026-11-20 00:00 UTC (vacation)"),
        # 2026-11-18 is Buß- und Bettag in Saxony (DE-SN), a working day in Bavaria
        ({"u1": {"name": "Ann", "timezone": "Europe/Berlin", "holidays": {"country": "DE", "subdivision": "SN"}},
          "u2": {"name": "Ben"}}, None, "skipped Ann: holiday Repentance and Prayer Day (DE-SN)"),
        ({"u1": {"name": "Ann", "holidays": {"dates": ["2026-11-18"]}}, "u2": {"name": "Ben"}}, None,
         "skipped Ann: holiday 2026-11-18"),
    ],
    ids=["paused", "holiday_de_sn", "holiday_date"],
)
def test_paused_and_holiday_members_are_skipped_and_named(users: dict[str, Any] | None, state: RoutingState | None,
                                                          why: str) -> None:
    cfg = config(**({"users": users} if users else {}))
    out, new = route(cfg, 2, state)
    assert out["owner_id"].tolist() == ["u2", "u2"]
    assert out["routing_reason"].tolist() == [f"pool team round robin ({why})"] * 2
    assert sum(new.skipped.values()) == 2


def test_holiday_de_by_and_a_pause_that_is_over_or_not_started() -> None:
    bavaria = {"u1": {"name": "Ann", "timezone": "Europe/Berlin", "holidays": {"country": "DE", "subdivision": "BY"}},
               "u2": {"name": "Ben"}}
    epiphany = datetime(2027, 1, 6, 10, 0, tzinfo=UTC)  # Heilige Drei Könige: a holiday in Bavaria only
    out, _ = route(config(users=bavaria), 1, as_of=epiphany)
    assert out["owner_id"].tolist() == ["u2"]
    assert "holiday Epiphany (DE-BY)" in out["routing_reason"].iloc[0]
    out, _ = route(config(users=bavaria), 2, as_of=epiphany + timedelta(days=1))
    assert out["owner_id"].tolist() == ["u1", "u2"]
    for moment in (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)):
        assert route(config(), 2, PAUSED, as_of=moment)[0]["owner_id"].tolist() == ["u1", "u2"]


def test_assign_to_a_paused_user_names_the_pause() -> None:
    cfg = config(rules=[{"name": "direct", "assign_to": "u1", "otherwise": {"queue": "review"}}])
    out, _ = route(cfg, 1, PAUSED)
    assert out["routing_reason"].iloc[0] == "queue review (Ann unavailable: paused until 2026-11-20 00:00 UTC (vacation))"


def test_all_paused_overflows_with_the_reasons() -> None:
    state = RoutingState(paused={u: Pause(until=datetime(2026, 12, 1, tzinfo=UTC)) for u in ("u1", "u2")})
    out, _ = route(config(), 1, state)
    assert out["owner_id"].tolist() == ["00G_REVIEW"]
    assert out["routing_reason"].iloc[0] == ("queue review (skipped Ann: paused until 2026-12-01 00:00 UTC; skipped Ben: "
                                             "paused until 2026-12-01 00:00 UTC; pool team: nobody available)")


# --- caps ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cap", "state", "owners", "why", "skipped"),
    [
        ({"hourly_cap": 2}, None, ["u1", "u2", "u1", "u2", "u2"], "hourly cap 2", 2),
        ({"open_cap": 3}, RoutingState(open_leads={"u1": 2}), ["u1", "u2", "u2", "u2"], "open-lead cap 3", 3),
        ({"daily_cap": 1}, None, ["u1", "u2", "u2"], "daily cap 1", 2),
    ],
    ids=["hourly", "open", "daily"],
)
def test_a_capped_member_is_skipped_and_named(cap: dict[str, int], state: RoutingState | None, owners: list[str],
                                              why: str, skipped: int) -> None:
    out, new = route(config([{"user": "u1", **cap}, {"user": "u2"}]), len(owners), state)
    assert out["owner_id"].tolist() == owners
    assert out["routing_reason"].iloc[-1] == f"pool team round robin (skipped Ann: {why})"
    assert out["routing_reason"].iloc[0] == "pool team round robin"
    assert new.skipped == {("u1", why): skipped}


def test_hourly_cap_resets_the_next_local_hour_and_all_capped_overflow() -> None:
    cfg = config([{"user": "u1", "hourly_cap": 1}, {"user": "u2", "hourly_cap": 1}])
    out, state = route(cfg, 3)
    assert out["owner_id"].tolist() == ["u1", "u2", "00G_REVIEW"]
    assert out["routing_reason"].iloc[2] == ("queue review (skipped Ann: hourly cap 1; skipped Ben: hourly cap 1; "
                                             "pool team: nobody available)")
    assert state.assigned_hour == {("u1", "2026-11-18T10-0500"): 1, ("u2", "2026-11-18T10-0500"): 1}
    assert RoutingState.from_json(state.to_json()).assigned_hour == state.assigned_hour
    out, _ = route(cfg, 1, state, as_of=WEDNESDAY + timedelta(minutes=59))
    assert out["owner_id"].tolist() == ["00G_REVIEW"]
    out, _ = route(cfg, 2, state, as_of=WEDNESDAY + timedelta(hours=1))
    assert sorted(out["owner_id"]) == ["u1", "u2"]


def test_open_cap_counts_this_runs_direct_assignments() -> None:
    cfg = config([{"user": "u1", "open_cap": 1}, {"user": "u2"}], rules=[
        {"name": "direct", "when": {"column": "grade", "equals": "A"}, "assign_to": "u1"},
        {"name": "rr", "pool": "team"}])
    frame = leads(3).assign(grade=pd.array(["A", None, None], dtype="string"))
    out, _ = route_leads(frame, cfg, RoutingState(), as_of=WEDNESDAY)
    assert out["owner_id"].tolist() == ["u1", "u2", "u2"]


# --- shifts crossing midnight ---------------------------------------------------------------------------------------------

NIGHT = {"days": ["fri", "sat"], "start": "22:00", "end": "06:00"}


@pytest.mark.parametrize(
    ("local", "working"),
    [
        ("2026-10-23T23:00", True),   # Friday 23:00: Friday's shift
        ("2026-10-24T01:00", True),   # Saturday 01:00: still Friday's shift
        ("2026-10-24T21:59", False),
        ("2026-10-25T01:00", True),   # Sunday 01:00, the night Berlin leaves summer time: Saturday's shift
        ("2026-10-25T05:59", True),
        ("2026-10-25T06:00", False),
        ("2026-10-26T01:00", False),  # Monday 01:00: no shift started on Sunday
        ("2026-10-23T21:00", False),
    ],
)
def test_overnight_shift_belongs_to_the_day_it_starts(local: str, working: bool) -> None:
    cfg = config(users={"u1": {"name": "Ann", "timezone": "Europe/Berlin", "working_hours": NIGHT}, "u2": {"name": "Ben"}})
    moment = datetime.fromisoformat(local).replace(tzinfo=cfg.zone_of("u1"))
    out, _ = route(cfg, 1, as_of=moment)
    assert (out["owner_id"].iloc[0] == "u1") is working


def test_overnight_shift_as_a_string_and_its_sla_clock_across_the_dst_change() -> None:
    cfg = config(users={"u1": {"name": "Ann", "timezone": "Europe/Berlin", "working_hours": "22:00-06:00"},
                        "u2": {"name": "Ben"}})
    user, zone = cfg.users["u1"], cfg.zone_of("u1")
    assert user.working_hours is not None and user.working_hours.overnight
    # Thursday 2026-10-22 23:00 Berlin (CEST, +02:00): 120 working minutes end at 01:00 on Friday
    start = datetime(2026, 10, 22, 23, 0, tzinfo=zone)
    assert _due(start, 120, zone, user) == datetime(2026, 10, 22, 23, 0, tzinfo=UTC)
    # Friday 05:30: 30 minutes left in the shift, the other 30 after 22:00 on Friday (Mon-Fri shifts)
    start = datetime(2026, 10, 23, 5, 30, tzinfo=zone)
    assert _due(start, 60, zone, user).astimezone(zone) == datetime(2026, 10, 23, 22, 30, tzinfo=zone)
    # Friday 23:00 → the shift that started Friday runs to 06:00 on Saturday, 8 h; the next starts Monday 22:00 (CET)
    start = datetime(2026, 10, 23, 23, 0, tzinfo=zone)
    assert _due(start, 8 * 60, zone, user).astimezone(zone) == datetime(2026, 10, 26, 23, 0, tzinfo=zone)


def test_sla_clock_skips_holidays() -> None:
    user = config(users={"u1": {"name": "Ann", "timezone": "Europe/Berlin", "holidays": {"country": "DE", "subdivision": "BY"},
                                "working_hours": {"start": "09:00", "end": "17:00"}}, "u2": {"name": "Ben"}}).users["u1"]
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Berlin")
    start = datetime(2027, 1, 5, 16, 30, tzinfo=zone)  # Tuesday; Wednesday 6 January is Epiphany in Bavaria
    assert _due(start, 60, zone, user).astimezone(zone) == datetime(2027, 1, 7, 9, 30, tzinfo=zone)


def test_pool_hours_and_holidays_close_the_pool() -> None:
    pools = {"team": {"members": [{"user": "u1"}, {"user": "u2"}], "overflow": {"queue": "review"},
                      "timezone": "Europe/Berlin", "working_hours": "22:00-06:00"}}
    out, _ = route(config(pools=pools), 1)  # 16:00 in Berlin
    assert out["routing_reason"].iloc[0] == "queue review (pool team closed: outside its working hours)"
    pools["team"] = {**pools["team"], "working_hours": None, "holidays": {"dates": ["2026-11-18"]}}
    out, _ = route(config(pools=pools), 1)
    assert out["routing_reason"].iloc[0] == "queue review (pool team closed: holiday 2026-11-18)"


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("users", "u1", "holidays"), {"country": "DE", "subdivision": "ZZ"}, "no subdivision 'ZZ'"),
        (("users", "u1", "holidays"), {"subdivision": "BY"}, "needs its country"),
        (("users", "u1", "working_hours"), "22:00", "is not working hours"),
        (("pools", "team", "members", 0, "open_cap"), -1, "greater than or equal to 0"),
    ],
)
def test_config_errors_name_the_yaml_path(tmp_path: Path, where: tuple[Any, ...], value: Any, message: str) -> None:
    data: dict[str, Any] = {"version": "t1", "users": {"u1": {"name": "Ann"}},
                            "pools": {"team": {"members": [{"user": "u1"}]}},
                            "rules": [{"name": "rr", "pool": "team"}]}
    target: Any = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_routing_config(path)
    assert caught.value.yaml_path is not None and caught.value.yaml_path.startswith(".".join(map(str, where[:2])))
    assert message in str(caught.value)


# --- the CLI and the state store -------------------------------------------------------------------------------------------


def test_pause_resume_round_trip_and_unknown_user(state_home: Path) -> None:
    from leadflow.store import StateStore

    result = runner.invoke(app, ["routing", "pause", "0058c00000FinQ", "--until", "2099-12-24T09:00+01:00"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "unknown user '0058c00000FinQ'" in lines[0] and "did you mean '0058c00000FinnQ'" in lines[0]

    result = runner.invoke(app, ["routing", "pause", "0058c00000FinnQ", "--until", "2099-12-24T09:00+01:00",
                                 "--reason", "parental leave", "--by", "ops-ann"])
    assert result.exit_code == 0, result.output
    assert "until 2099-12-24T08:00Z" in result.output and "recorded by ops-ann" in result.output
    store = StateStore.open()
    now = datetime.now(UTC)
    pause = store.routing_pauses(now)["0058c00000FinnQ"]
    assert (pause.until, pause.reason, pause.by) == (datetime(2099, 12, 24, 8, tzinfo=UTC), "parental leave", "ops-ann")
    with store.routing_session("run-1") as session:  # every routing run reads the pauses under its lock
        assert RoutingState.from_json(session.payload).paused == {"0058c00000FinnQ": pause}
    assert "1 user(s) paused" in runner.invoke(app, ["routing", "pauses"]).output

    result = runner.invoke(app, ["routing", "resume", "0058c00000FinnQ"])
    assert result.exit_code == 0 and "resumed Finn O'Brien" in result.output
    assert store.routing_pauses(now) == {}
    assert "not paused" in runner.invoke(app, ["routing", "resume", "0058c00000FinnQ"]).output
    log = store.pause_log()
    assert log["action"].tolist() == ["pause", "resume"]
    assert log["by"].iloc[0] == "ops-ann" and log["by"].iloc[1]  # the OS user by default
    assert (log["at"] <= pd.Timestamp.now(tz=UTC)).all()

    bad = runner.invoke(app, ["routing", "pause", "0058c00000FinnQ", "--until", "2001-01-01"])
    assert bad.exit_code == 2 and "not in the future" in bad.output


def test_open_leads_are_untouched_assignments(state_home: Path) -> None:
    from leadflow.store import StateStore

    store = StateStore.open()
    made = pd.DataFrame({"lead_key": ["a", "b", "c"], "owner_id": ["u1", "u1", "u2"], "routing_rule": "rr",
                         "routing_reason": "x", "assigned_at": "2026-11-18T15:00:00Z", "sla_due_at": None})
    with store.routing_session("run-1") as session:
        session.record(made)
    store.mark_assignments(["b"], "first_touch_at", WEDNESDAY)
    assert store.open_leads() == {"u1": 1, "u2": 1}
    with store.routing_session("run-2") as session:
        assert RoutingState.from_json(session.payload).open_leads == {"u1": 1, "u2": 1}


def test_simulate_shows_who_was_skipped_and_why(state_home: Path, tmp_path: Path) -> None:
    from leadflow.routing import DEFAULT_ROUTING

    data = yaml.safe_load(Path(DEFAULT_ROUTING).read_text(encoding="utf-8"))
    data["users"]["0058c00000ElseQ"]["holidays"] = {"country": "SE", "dates": ["2098-01-15"]}
    rules = tmp_path / "new.yaml"
    rules.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    lead_file = tmp_path / "leads.csv"
    pd.DataFrame({"lead_id": ["L1", "L2"], "email": ["a@acme.de", "b@acme.de"], "company": ["Acme", "Acme"],
                  "country_code": ["DE", "DE"], "segment": ["enterprise", "enterprise"], "grade": ["A", "A"]}
                 ).to_csv(lead_file, index=False)
    assert runner.invoke(app, ["routing", "pause", "0058c00000FinnQ", "--until", "2099-01-01",
                               "--reason", "vacation"]).exit_code == 0
    result = runner.invoke(app, ["routing", "simulate", "--rules", str(rules), "-i", str(lead_file),
                                 "--as-of", "2098-01-15T10:00:00Z"])  # a Wednesday, after the pause began
    assert result.exit_code == 0, result.output
    out = result.output
    assert "members skipped (leads routed around them)" in out
    finn = next(line for line in out.splitlines() if line.strip().startswith("Finn O'Brien: paused"))
    assert finn.split()[-2:] == ["2", "2"]  # before and after: both leads went round him
    else_ = next(line for line in out.splitlines() if line.strip().startswith("Else Lindqvist: holiday"))
    assert else_.split()[-2:] == ["0", "2"]
    assert "0058c00000HugoQ Hugo Weber: inactive" in out


def test_open_cap_holds_when_leads_are_routed_one_call_at_a_time() -> None:
    """Escalation and breach reassignment route lead by lead on one state: each call counts what the calls before it
    gave out, as one call over all the leads would."""
    cfg = config([{"user": "u1", "open_cap": 1, "weight": 5}, {"user": "u2"}])
    state = RoutingState(open_leads={"u1": 0})
    owners = []
    for _ in range(3):
        out, state = route(cfg, 1, state)
        owners.append(out["owner_id"].iloc[0])
    together, _ = route(cfg, 3, RoutingState(open_leads={"u1": 0}))
    assert owners == together["owner_id"].tolist() == ["u1", "u2", "u2"]
    assert state.open_leads == {"u1": 1, "u2": 2}
