"""Operating leadflow: `leadflow sla check`, `alerts install`, `deploy`, `audit test-lead` and `version`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import ConfigOption, _checked_rules, _guard, _prefect_env, _run_crm_sync, _run_flow, _utc

sla_app = typer.Typer(help="First-touch SLAs of assigned leads.", no_args_is_help=True)


@sla_app.command("check")
def sla_check(
    as_of: Annotated[str | None, typer.Option("--as-of", help="ISO time to check at (default: now).")] = None,
) -> None:
    """Leads past their first-touch SLA with no first touch: recorded as breaches (once) and listed; exit 1 if any."""
    from datetime import UTC

    from leadflow.routing.sla import breach_summary, check_sla
    from leadflow.store import StateStore

    def run() -> dict[str, Any]:
        moment = datetime.fromisoformat(as_of) if as_of else datetime.now(UTC)
        moment = _utc(moment)
        store = StateStore.open()
        run_id = store.start_run("sla_check", {"as_of": moment.isoformat()})
        breaches = check_sla(store, moment, run_id=run_id)
        summary = breach_summary(breaches)
        store.finish_run(run_id, "completed", summary)
        return {**summary, "frame": breaches}

    try:
        result = _guard(run)
    except ValueError as exc:
        typer.secho(f"error: --as-of: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    breaches = result["frame"]
    if breaches.empty:
        typer.echo("No lead is past its first-touch SLA.")
        return
    typer.secho(f"{len(breaches)} leads past their first-touch SLA", bold=True)
    for row in breaches.itertuples():
        typer.echo(f"  {row.lead_key:<32} owner {row.owner_id or '(none)':<20} rule {row.routing_rule:<20} "
                   f"due {row.sla_due_at:%Y-%m-%d %H:%M}Z, {row.minutes_late:.0f} min late")
    raise typer.Exit(1)


alerts_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Alerts: leadflow events → Prefect Automations → Slack / webhooks.")


@alerts_app.command("install")
def alerts_install(
    config: Annotated[Path, typer.Option("--config", "-c", help="Run config YAML with an `alerts:` section.")],
) -> None:
    """Create or update the alert blocks and Automations in the Prefect server.

    One notification block per channel and one Automation per event, at PREFECT_API_URL; idempotent: re-running
    updates them."""
    _prefect_env()

    def install() -> list[str]:
        from leadflow.ops.alerts import install_alerts
        from leadflow.pipeline.config import RunConfig
        from leadflow.pipeline.errors import ConfigError
        from leadflow.pipeline.yamlio import load_yaml, parse_model

        run_config = parse_model(RunConfig, load_yaml(config), config)
        if run_config.alerts is None:
            raise ConfigError(str(config), "no `alerts:` section to install", yaml_path="alerts")
        return install_alerts(run_config.alerts, origin=str(config))

    names = _guard(install)
    from prefect.settings import get_current_settings

    typer.secho(f"Installed in the Prefect server at {get_current_settings().api.url}:", bold=True)
    for name in names:
        kind = "automation" if name.startswith("leadflow: ") else "notification block"
        typer.echo(f"  {kind:<20}{name}")


def deploy() -> None:
    """Deploy every flow in deployments/prefect.yaml to the Prefect server.

    Creates the `leadflow-process` work pool if missing; the server is the one at PREFECT_API_URL."""
    _prefect_env()
    from leadflow.ops.deploy import deploy as run_deploy

    done = _guard(lambda: run_deploy(echo=typer.echo))
    typer.secho(f"Deployed from {done.project_dir}.", bold=True)
    typer.echo(f"Start a worker (from the repository root, with LEADFLOW_PROJECT_DIR={done.project_dir}):\n"
               f"  {done.worker_command}")


audit_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Audit the lead flow end to end with a marked test lead.")


@audit_app.command("test-lead")
def audit_test_lead(
    profile: Annotated[str, typer.Option("--profile", help="demo-request (the fast lane), webinar or web-form "
                                         "(the hourly incremental sync).")] = "demo-request",
    config: ConfigOption = None,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the test lead in the source system and the state "
                                       "store.")] = False,
) -> None:
    """Send a marked test lead through Salesforce and the flow, and time each hop.

    Creates the lead, runs the flow over it, prints each hop's time since creation and the speed-to-lead, then
    deletes it and erases it from the state store. With no --config, local sandboxes (as in `leadflow demo`) are
    started and synced once first. Exit 1 if the flow or the cleanup failed."""
    from leadflow.audit.test_lead_probe import PROFILES, result_lines, run_test_lead

    if profile not in PROFILES:
        typer.secho(f"error: --profile must be one of {', '.join(PROFILES)}", fg="red", err=True)
        raise typer.Exit(2)

    def audit(path: Path) -> Any:
        _checked_rules(path)
        return run_test_lead(path, profile, _run_flow, keep=keep, echo=typer.echo)

    if config is not None:
        result = _guard(lambda: audit(config))
    else:
        import shutil

        from leadflow.sandbox.launch import running_sandboxes
        from leadflow.pipeline.settings import Settings

        folder = Settings().home / "audit-sandbox"
        shutil.rmtree(folder, ignore_errors=True)
        typer.secho("leadflow audit test-lead: no --config, starting local sandboxes", bold=True)
        with running_sandboxes(folder, leads=200, systems=("salesforce", "marketo"), enrichment=True,
                               routing=True) as boxes:
            typer.echo("Initial sync of the sandboxes (export guard overridden, as in the demo) ...")
            _guard(lambda: _run_crm_sync(boxes.config_path, None, override_export_guard=True))
            result = _guard(lambda: audit(boxes.config_path))
    for line in result_lines(result):
        typer.echo(line)
    if not result.ok:
        raise typer.Exit(1)


def version() -> None:
    """Print the version."""
    from leadflow import __version__

    typer.echo(__version__)
