"""`leadflow sandbox`: serve the local CRM/MAP sandboxes until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import _fail, _guard, _print_sandbox_setup
from leadflow.pipeline.errors import LeadflowError


def sandbox(
    folder: Annotated[Path, typer.Option(help="Where the sandboxes keep their state and config.")] = Path(
        ".leadflow/sandbox"
    ),
    leads: Annotated[int, typer.Option(help="Leads to seed on first start.")] = 500,
    accounts: Annotated[int | None, typer.Option(
        help="Salesforce accounts to seed on first start (default: leads / 10).", min=1)] = None,
    contacts: Annotated[int | None, typer.Option(
        help="Salesforce contacts to seed on first start (default: leads / 4).", min=1)] = None,
    stock_org: Annotated[bool, typer.Option(
        "--stock-org", help="Serve Salesforce as a stock org: only standard fields until you run `leadflow setup "
        "salesforce` (by default the sandbox runs it for you).")] = False,
    fault_rate: Annotated[float | None, typer.Option(
        "--fault-rate", help="Fail this share of the API calls (0 to 1, e.g. 0.1) the way the real services fail "
        "now and then: 429s, 5xx, Marketo 606/615/604, Salesforce row locks.")] = None,
    fault_kinds: Annotated[str | None, typer.Option(
        "--fault-kinds", help="With --fault-rate: the fault kinds to serve, comma-separated (e.g. 503,429); each "
        "sandbox serves the ones it knows. Default: each sandbox's transient kinds.")] = None,
    fault_seed: Annotated[int | None, typer.Option(
        "--fault-seed", help="With --fault-rate: seed of the fault draws, to replay a run's faults (default: "
        "random, printed).")] = None,
) -> None:
    """Serve the local CRM/MAP sandboxes on 127.0.0.1 until Ctrl-C, with a config that points leadflow at them."""
    import threading

    from leadflow.sandbox.launch import ALL_SYSTEMS, plan_fault_rates, running_sandboxes

    faults: dict[str, Any] | None = None
    if fault_rate is not None:
        wanted: dict[str, Any] = {"rate": fault_rate, "kinds": fault_kinds, "seed": fault_seed}
        planned = _guard(lambda: plan_fault_rates(wanted, ALL_SYSTEMS))  # one line and exit 2 if unusable
        faults = wanted | {"seed": next(iter(planned.values()))["seed"]}  # the drawn seed, printed for replays
    elif fault_kinds is not None or fault_seed is not None:
        _fail(LeadflowError("--fault-kinds and --fault-seed need --fault-rate"))

    with running_sandboxes(folder, leads=leads, enrichment=True, routing=True, setup=not stock_org,
                           faults=faults, accounts=accounts, contacts=contacts) as boxes:
        for name, url in boxes.urls.items():
            typer.echo(f"  {name:<12} {url}")
        for name, rate in boxes.faults.items():
            typer.echo(f"  faults       {name}: {rate['rate']:.0%} of calls fail ({', '.join(rate['kinds'])}), "
                       f"seed {rate['seed']}")
        _print_sandbox_setup(boxes.setup)
        if stock_org:
            typer.echo("Salesforce is a stock org: `leadflow doctor --config CONFIG` names the fields it lacks, "
                       "`leadflow setup salesforce --config CONFIG` creates them.")
        typer.secho(f"\nConfig: {boxes.config_path}", bold=True)
        try:  # from the moment Ctrl-C is offered, it stops the sandboxes cleanly
            typer.echo(f"Try:    leadflow sync --config {boxes.config_path}\nStop with Ctrl-C.")
            threading.Event().wait()
        except KeyboardInterrupt:
            typer.echo("stopping sandboxes")
