"""The `leadflow` command line."""

import typer

app = typer.Typer(no_args_is_help=True, help="leadflow: lead-flow automation for RevOps.")


@app.command()
def version() -> None:
    """Print the version."""
    from leadflow import __version__

    typer.echo(__version__)
