"""`leadflow intake serve`: the push-intake HTTP service (`leadflow.intake`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadflow.cli.common import _guard

intake_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Push intake: accept, verify and record lead notifications from CRMs, MAPs and forms.")


@intake_app.command("serve")
def intake_serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Intake config YAML (an `intake:` section, "
                                                "or the section itself); default: ./intake.yaml.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (overrides the config's `host`).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535,
                                             help="Port (overrides the config's `port`).")] = None,
) -> None:
    """Serve POST /intake/{salesforce,hubspot,marketo,web} and GET /healthz until stopped (Ctrl-C, SIGTERM)."""
    from leadflow.intake.service import serve

    _guard(lambda: serve(config, host=host, port=port))
