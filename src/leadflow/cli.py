"""The `leadflow` command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leadflow.errors import LeadflowError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="leadflow: lead-flow automation for RevOps teams.")

T = TypeVar("T")
FLOW_ENTRYPOINT = "flows/lead_sync.py:lead_sync"
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Run config YAML (pipeline, quality, consent policy, suppression).")
]


def _fail(exc: LeadflowError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(exc.exit_code)


def _guard(call: Callable[[], T]) -> T:
    try:
        return call()
    except LeadflowError as exc:
        _fail(exc)
        raise  # unreachable: _fail always exits


def _prefect_env() -> None:
    # No internet here or on most ops boxes: telemetry only fills the log with name-resolution errors.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _load_flow(entrypoint: str) -> Any:
    script = Path(entrypoint.split(":", 1)[0])
    if not script.is_file():
        raise LeadflowError(
            f"{script} not found under {Path.cwd()}: run leadflow from the repository root (flows/ and tasks/ are "
            "Prefect entrypoint folders, not installed packages)"
        )
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(entrypoint)


def _run_sync(input_path: Path, output_path: Path | None, config: Path | None) -> dict[str, Any]:
    from leadflow.config import load_rules
    from leadflow.io import check_header
    from leadflow.stages import pipeline_from_names

    # Fail fast on bad config or an unreadable file, before paying Prefect's start-up.
    rules = load_rules(config)
    pipeline_from_names(rules.pipeline, origin=rules.source)
    check_header(input_path)
    _prefect_env()
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        typer.secho(
            "Starting Prefect: with no PREFECT_API_URL set, a temporary local Prefect server starts first "
            "(about 10-20 s; set PREFECT_API_URL to a running server to skip this).",
            fg=typer.colors.CYAN,
        )
    lead_sync = _load_flow(FLOW_ENTRYPOINT)
    return lead_sync(
        input_path=str(input_path), output_path=str(output_path) if output_path else None,
        config_path=str(config) if config else None,
    )


def _print_summary(summary: dict[str, Any]) -> None:
    from leadflow.settings import Settings

    rows_in, rows_out = summary["rows_in"], summary["rows_out"]
    typer.echo("")
    typer.secho(f"leadflow run {summary['run_id']}", bold=True)
    typer.echo(f"  {'rows in':<30}{rows_in:>8}")
    for stage, count in summary["quarantined_by_stage"].items():
        typer.echo(f"  {'quarantined at ' + stage:<30}{count:>8}")
        for name, n in sorted(summary["quarantined_by_expectation"].get(stage, {}).items(), key=lambda kv: -kv[1]):
            typer.echo(f"  {'':<30}{n:>8}  {name}")
    typer.echo(f"  {'rows out':<30}{rows_out:>8}")
    if rows_out:
        share = summary.get("mailable", 0) / rows_out
        typer.echo(f"  {'mailable':<30}{summary.get('mailable', 0):>8}  ({share:.1%} of rows out)")
        for reason, n in summary.get("mailable_reasons", {}).items():
            typer.echo(f"  {'':<30}{n:>8}  {reason}")
    typer.echo("")
    typer.secho("Where to look next", bold=True)
    if "output" in summary:
        typer.echo(f"  leads         {summary['output']}")
        typer.echo(f"  quarantine    {summary['quarantine']}  (one line per refused row, with the reason)")
    from sqlalchemy.engine import make_url

    store = make_url(Settings().state_url()).render_as_string(hide_password=True)
    typer.echo(f"  state store   {store}  (runs, quarantine, lead_events audit trail)")
    typer.echo("  process map   leadflow map")


@app.command()
def run(
    input: Annotated[Path, typer.Option("--input", "-i", help="Lead file to process (.csv or .parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the processed leads (.csv/.parquet).")],
    config: ConfigOption = None,
) -> None:
    """Run every stage over a lead file (offline file mode); quarantined rows go beside the output."""
    _print_summary(_guard(lambda: _run_sync(input, output, config)))


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the demo output.")] = Path(
        ".leadflow/demo/leads.csv"
    ),
) -> None:
    """Run the pipeline on the bundled sample of messy leads and show what happened."""
    from leadflow.settings import SAMPLE_LEADS

    typer.secho(f"leadflow demo: {SAMPLE_LEADS.name}, a bundled sample of messy leads", bold=True)
    _print_summary(_guard(lambda: _run_sync(SAMPLE_LEADS, output, None)))


@app.command("map")
def process_map(config: ConfigOption = None) -> None:
    """Print the process map (Mermaid flowchart) generated from the stage declarations."""
    from leadflow.config import load_rules
    from leadflow.stage import process_map as render
    from leadflow.stages import pipeline_from_names

    def build() -> str:
        rules = load_rules(config)
        return render(pipeline_from_names(rules.pipeline, origin=rules.source))

    typer.echo(_guard(build), nl=False)


@app.command()
def version() -> None:
    """Print the version."""
    from leadflow import __version__

    typer.echo(__version__)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
