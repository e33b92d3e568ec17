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
    push_salesforce: Annotated[str | None, typer.Option(
        "--push-salesforce", envvar="LEADFLOW_SANDBOX_PUSH_SALESFORCE", help="POST Salesforce Outbound Messages "
        "(SOAP) for every Lead and Contact created or updated to this URL; retried until acknowledged.")] = None,
    push_hubspot: Annotated[str | None, typer.Option(
        "--push-hubspot", envvar="LEADFLOW_SANDBOX_PUSH_HUBSPOT", help="POST HubSpot webhooks (contact.creation, "
        "contact.propertyChange; X-HubSpot-Signature-v3 with LEADFLOW_SANDBOX_HUBSPOT_CLIENT_SECRET, else a secret "
        "kept in FOLDER/hubspot-push.secret) to this URL.")] = None,
    push_marketo: Annotated[str | None, typer.Option(
        "--push-marketo", envvar="LEADFLOW_SANDBOX_PUSH_MARKETO", help="POST a Marketo smart-campaign webhook for "
        "every lead created or updated through the API to this URL (header X-Leadflow-Marketo-Secret: "
        "LEADFLOW_SANDBOX_MARKETO_WEBHOOK_SECRET, else FOLDER/marketo-push.secret).")] = None,
    push_time_scale: Annotated[float, typer.Option(
        "--push-time-scale", min=0.000001, help="Multiply the systems' retry intervals by this (e.g. 0.01: "
        "Salesforce's 15 s first retry after 0.15 s).")] = 1.0,
    push_ca_bundle: Annotated[Path | None, typer.Option(
        "--push-ca-bundle", help="CA bundle to trust an https push URL with (default: the system's).")] = None,
) -> None:
    """Serve the local CRM/MAP sandboxes on 127.0.0.1 until Ctrl-C, with a config that points leadflow at them."""
    import threading

    from leadflow.sandbox.launch import ALL_SYSTEMS, plan_fault_rates, push_targets, running_sandboxes

    faults: dict[str, Any] | None = None
    if fault_rate is not None:
        wanted: dict[str, Any] = {"rate": fault_rate, "kinds": fault_kinds, "seed": fault_seed}
        planned = _guard(lambda: plan_fault_rates(wanted, ALL_SYSTEMS))  # one line and exit 2 if unusable
        faults = wanted | {"seed": next(iter(planned.values()))["seed"]}  # the drawn seed, printed for replays
    elif fault_kinds is not None or fault_seed is not None:
        _fail(LeadflowError("--fault-kinds and --fault-seed need --fault-rate"))

    urls = {"salesforce": push_salesforce, "hubspot": push_hubspot, "marketo": push_marketo}
    push = push_targets(folder, urls, verify=str(push_ca_bundle) if push_ca_bundle else True)
    with running_sandboxes(folder, leads=leads, enrichment=True, routing=True, setup=not stock_org,
                           faults=faults, accounts=accounts, contacts=contacts, push=push,
                           push_time_scale=push_time_scale) as boxes:
        for name, url in boxes.urls.items():
            typer.echo(f"  {name:<12} {url}")
        for name, rate in boxes.faults.items():
            typer.echo(f"  faults       {name}: {rate['rate']:.0%} of calls fail ({', '.join(rate['kinds'])}), "
                       f"seed {rate['seed']}")
        for name, box in boxes.push.items():
            typer.echo(f"  push         {name} → {box.target.url}")
        if boxes.push:
            typer.echo(f"  push ids and secret references: {boxes.folder / 'push.yaml'}")
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
