"""`leadflow routing test` and `routing simulate` (their work is done in `leadflow.routing.simulate`) and `routing
graph` (`leadflow.cli.routing_graph`)."""

from __future__ import annotations

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
