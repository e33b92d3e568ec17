"""`leadflow setup salesforce` (custom fields and their permission set) and `leadflow doctor` (preflight checks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import _fail
from leadflow.pipeline.errors import ConfigError, LeadflowError

SystemsConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Run config YAML with a `systems:` section.")]
"""Required here, unlike the optional `--config` of the other commands (`common.ConfigOption`)."""


def _table(title: str, columns: list[str], rows: list[tuple[str, ...]], styles: dict[str, str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for i, column in enumerate(columns):
        last = i == len(columns) - 1
        table.add_column(column, overflow="fold", no_wrap=not last)
    for row in rows:
        table.add_row(*row, style=(styles or {}).get(row[2] if len(row) > 2 else "", None))
    Console(width=max(150, Console().width)).print(table)


setup_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Prepare a system for leadflow (custom fields, permissions).")


@setup_app.command("salesforce")
def setup_salesforce_command(
    config: SystemsConfigOption,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be created; change nothing.")] = False,
    package_dir: Annotated[Path, typer.Option(
        "--package-dir", help="Where to write the Metadata API package when the integration user may not "
        "customize the org.")] = Path(".leadflow/salesforce-package"),
) -> None:
    """Create the custom fields the Salesforce mapping needs, and their permission set.

    Uses the Tooling API; the permission set lets the integration user read and write them; idempotent. Without the
    permission, writes a Metadata API package for an admin to deploy, and exits 1."""
    from leadflow.pipeline.config import load_rules
    from leadflow.connectors.registry import connect
    from leadflow.connectors.salesforce_setup import setup_salesforce

    def run() -> Any:
        rules = load_rules(config)
        if rules.systems.salesforce is None:
            raise ConfigError(str(config), "no Salesforce org configured", yaml_path="systems.salesforce")
        from leadflow.pipeline.progress import terminal_progress

        with connect("salesforce", rules.systems, origin=rules.source) as connector, \
                terminal_progress("leadflow setup salesforce", total=0, unit="fields"):
            return setup_salesforce(connector, dry_run=dry_run, package_dir=package_dir)

    try:
        result = run()
    except LeadflowError as exc:
        _fail(exc)
        return
    plan = result.plan
    title = "leadflow setup salesforce" + (" (dry run: nothing changed)" if dry_run else "")
    _table(title, ["Component", "Type", "Access", "Action"], [tuple(r) for r in result.rows()])
    if plan.nothing_to_do:
        typer.secho("Nothing to create: every field, the permission set and its assignment are already in place.",
                    fg=typer.colors.GREEN)
    elif dry_run:
        typer.echo(f"Would create {len(plan.missing)} fields and grant access to {len(plan.grants)}; run without "
                   "--dry-run to do it.")
    else:
        typer.secho(f"Created {len(result.created)} fields, granted access to {len(result.granted)}"
                    + (", assigned the permission set to the integration user" if result.assigned_now else "")
                    + f". Check with: leadflow doctor --config {config}", fg=typer.colors.GREEN)


_STYLES = {"fail": "red", "warn": "yellow", "skip": "dim"}


def doctor_command(config: SystemsConfigOption) -> None:
    """Check every configured system and name each problem with its fix.

    Login, API version, remaining API budget, mapped fields (present, writable, values that fit) and, for
    Salesforce, routing users and queues. Exit 1 if anything is wrong."""
    from leadflow.pipeline.config import load_rules
    from leadflow.ops.doctor import preflight

    try:
        rules = load_rules(config)
        if not rules.systems.names:
            raise ConfigError(str(config), "no systems configured", yaml_path="systems")
        report = preflight(rules)
    except LeadflowError as exc:
        _fail(exc)
        return
    rows = [(c.system, c.item, c.status, c.detail) for c in report.checks]
    _table(f"leadflow doctor --config {config}", ["System", "Check", "Status", "Detail"], rows, _STYLES)
    if report.ok:
        warned = f" ({len(report.warnings)} warnings)" if report.warnings else ""
        typer.secho(f"All checks passed{warned}.", fg=typer.colors.GREEN)
        return
    typer.secho(report.message(), fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
