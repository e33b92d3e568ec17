"""`leadflow routing test` and `routing simulate` (their work is done in `leadflow.routing.simulate`), `routing
graph` (`leadflow.cli.routing_graph`), and `routing pause` / `resume` / `pauses` (kept in the state store)."""

from __future__ import annotations

import difflib
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import _guard
from leadflow.cli.routing_graph import routing_graph

routing_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Lead routing: test rules against example cases, simulate a rules change, draw the rules.")
routing_app.command("graph")(routing_graph)


@routing_app.command("test")
def routing_test(
    cases: Annotated[Path | None, typer.Option("--cases", help="Routing test cases YAML (cases: name, lead, expect); "
                                               "default: the bundled routing_tests.yaml.")] = None,
    rules: Annotated[Path | None, typer.Option("--rules", help="Routing rules YAML to test instead of the one the "
                                               "cases file names (default: the bundled routing.yaml).")] = None,
) -> None:
    """Run example routing cases, one PASS/FAIL line per case.

    Each lead is routed alone from an empty state. Exit 0 if all pass, 1 if any fails, 2 on a bad cases or rules
    file."""
    from leadflow.routing.simulate import DEFAULT_CASES, load_cases, routing_test_lines, run_suite

    path = cases if cases is not None else DEFAULT_CASES

    def work() -> Any:
        suite = load_cases(path, rules)
        return suite, run_suite(suite)

    suite, results = _guard(work)
    for line in routing_test_lines(results, path=path, rules_path=suite.rules_path, as_of=suite.as_of):
        typer.echo(line)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


@routing_app.command("simulate")
def routing_simulate(
    rules: Annotated[Path, typer.Option("--rules", help="The new routing rules YAML.")],
    input: Annotated[Path | None, typer.Option("--input", "-i", help="Leads to route (.csv/.parquet), e.g. the "
                                               "output of leadflow run (standardized, enriched, scored).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Instead of --input: the leads assigned in this span "
                                              "(30d, 12h, or an ISO date), as the state store kept them.")] = None,
    current: Annotated[Path | None, typer.Option("--current", help="The current routing rules YAML; default: the "
                                                 "bundled routing.yaml.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Route as of this ISO date/time (UTC unless an offset "
                                              "is given; working hours matter); default: now.")] = None,
) -> None:
    """Route a lead file with the current rules and the new ones and print the difference.

    Both start from an empty routing state; the difference is shown per owner (before, after, moved in/out), per
    rule, and as leads changing owner, with examples. Every lead is routed afresh (routing columns from an earlier
    run are ignored). Writes nothing."""
    from leadflow.routing.simulate import simulate_lines, simulate_routing

    result = _guard(lambda: simulate_routing(rules, input, current, as_of, since=since))
    for line in simulate_lines(result):
        typer.echo(line)


RulesOption = Annotated[Path | None, typer.Option("--rules", help="The routing rules YAML that knows the user; default: "
                                                  "the one --config names, else the bundled routing.yaml.")]
RunConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Run config YAML whose routing section "
                                                      "names the rules.")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who does this (recorded); default: the OS user.")]


def _routing_user(user_id: str, rules: Path | None, config: Path | None) -> tuple[Any, str]:
    """(the routing config, its origin) after checking it knows `user_id`; else a one-line error with a suggestion."""
    from leadflow.pipeline.errors import ConfigError
    from leadflow.routing import DEFAULT_ROUTING, load_routing_config

    if rules is None and config is not None:
        from leadflow.pipeline.config import load_rules

        routing, origin = load_rules(config).routing, str(config)
        if routing is None:
            raise ConfigError(origin, "no routing section: give --rules ROUTING.yaml", yaml_path="routing")
    else:
        path = Path(rules if rules is not None else DEFAULT_ROUTING)
        routing, origin = load_routing_config(path), str(path)
    if user_id not in routing.users:
        named = [uid for uid, user in routing.users.items() if user_id.casefold() in user.name.casefold()]
        close = difflib.get_close_matches(user_id, list(routing.users), n=1) or named[:1]
        hint = f" (did you mean {close[0]!r}, {routing.users[close[0]].name}?)" if close else ""
        raise ConfigError(origin, f"unknown user {user_id!r}: not one of the routing config's users{hint}",
                          yaml_path="users")
    return routing, origin


def _parse_until(value: str, zone: Any, now: datetime) -> datetime:
    """`--until`: an ISO date/time; without an offset, in the user's time zone (a date alone: its 00:00)."""
    from leadflow.pipeline.errors import InputError

    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError("--until", f"{value!r} is not an ISO date/time (e.g. 2026-12-24T09:00+01:00)") from None
    moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment
    if moment.astimezone(UTC) <= now:
        raise InputError("--until", f"{value} is not in the future (now {now:%Y-%m-%dT%H:%MZ})")
    return moment.astimezone(UTC)


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without the user in /etc/passwd)
        return "unknown"


@routing_app.command("pause")
def routing_pause(
    user_id: Annotated[str, typer.Argument(help="The CRM user id, as in the routing config's users.")],
    until: Annotated[str, typer.Option("--until", help="ISO date/time the pause ends, e.g. 2026-12-24T09:00+01:00 "
                                       "(without an offset: the user's time zone).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in routing reasons and simulate).")] = "",
    by: ByOption = None,
    rules: RulesOption = None,
    config: RunConfigOption = None,
) -> None:
    """Take a user out of routing until a moment.

    Round robin skips them (like an inactive user) and the routing reason says so. Recorded in the state store with
    who and when; a new pause replaces one in force."""
    from leadflow.store import StateStore

    def work() -> tuple[Any, datetime, datetime, str]:
        routing, _ = _routing_user(user_id, rules, config)
        now = datetime.now(UTC)
        end = _parse_until(until, routing.zone_of(user_id), now)
        who = _who(by)
        with StateStore.open() as store:
            store.pause_routing(user_id, end, reason=reason.strip(), by=who, at=now)
        return routing, end, now, who

    routing, end, now, who = _guard(work)
    local = end.astimezone(routing.zone_of(user_id))
    typer.echo(f"paused {routing.users[user_id].name} ({user_id}) until {end:%Y-%m-%dT%H:%MZ} "
               f"({local:%Y-%m-%d %H:%M} {local.tzname()})" + (f": {reason.strip()}" if reason.strip() else "")
               + f"; recorded by {who} at {now:%Y-%m-%dT%H:%M:%SZ}")


@routing_app.command("resume")
def routing_resume(
    user_id: Annotated[str, typer.Argument(help="The CRM user id, as in the routing config's users.")],
    by: ByOption = None,
    rules: RulesOption = None,
    config: RunConfigOption = None,
) -> None:
    """End a user's pause now (recorded with who and when); a user not paused is left alone."""
    from leadflow.store import StateStore

    def work() -> tuple[Any, Any, str, datetime]:
        routing, _ = _routing_user(user_id, rules, config)
        now, who = datetime.now(UTC), _who(by)
        with StateStore.open() as store:
            return routing, store.resume_routing(user_id, by=who, at=now), who, now

    routing, lifted, who, now = _guard(work)
    name = f"{routing.users[user_id].name} ({user_id})"
    if lifted is None:
        typer.echo(f"{name} is not paused: nothing recorded")
        return
    typer.echo(f"resumed {name} (was {lifted.text()}, by {lifted.by}); recorded by {who} at {now:%Y-%m-%dT%H:%M:%SZ}")


@routing_app.command("pauses")
def routing_pauses(
    log: Annotated[bool, typer.Option("--log", help="Every pause and resume ever recorded, oldest first.")] = False,
) -> None:
    """The pauses in force (or, with --log, every pause and resume with who and when)."""
    from leadflow.cli.common import _existing_store

    store = _guard(_existing_store)
    try:
        rows = store.pause_log() if log else None
        paused = store.routing_pauses(datetime.now(UTC))
    finally:
        store.close()
    if rows is not None:
        for row in rows.itertuples(index=False):
            until = "" if row.action == "resume" else f" until {row.until:%Y-%m-%dT%H:%MZ}"
            why = f": {row.reason}" if isinstance(row.reason, str) and row.reason else ""
            typer.echo(f"{row.at:%Y-%m-%dT%H:%M:%SZ}  {row.action:<6}  {row.user_id}{until}{why}  (by {row.by})")
        typer.echo(f"{len(rows)} pause/resume record(s)")
        return
    for user, pause in paused.items():
        typer.echo(f"{user}  {pause.text()}  (by {pause.by} at {pause.at:%Y-%m-%dT%H:%M:%SZ})")
    typer.echo(f"{len(paused)} user(s) paused")
