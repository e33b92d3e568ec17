"""`leadflow intake serve`: the push-intake HTTP service (`leadflow.intake`) and its micro-batch processor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import _guard

intake_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Push intake: accept, verify and record lead notifications from CRMs, MAPs and forms.")
SERVICE_ENTRYPOINT = "flows/intake_service.py:intake_service"


@intake_app.command("serve")
def intake_serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Intake config YAML (an `intake:` section, "
                                                "or the section itself); default: ./intake.yaml.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Bind address (overrides the config's `host`).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535,
                                             help="Port (overrides the config's `port`).")] = None,
    no_process: Annotated[bool, typer.Option("--no-process", help="Accept and record only; leave the inbox to "
                                             "another `leadflow intake serve`.")] = False,
) -> None:
    """Accept, verify and record pushed lead notifications, and process them in warm micro-batches.

    Serves POST /intake/{salesforce,hubspot,marketo,web} and GET /healthz until stopped (Ctrl-C, SIGTERM), and
    processes the inbox in micro-batches (fetch by id, then the sync's stages, gates, guard and write-back)."""
    from leadflow.intake.service import serve

    _guard(lambda: serve(config, host=host, port=port, handler_for=None if no_process else batch_handler))


def batch_handler(processing: Any) -> Any:
    """The project's `intake_batch` flow over warm systems (`flows.intake_service.warm_batch_handler`, what the
    Prefect-served `intake_service` uses too)."""
    from leadflow.cli.common import _load_flow, _prefect_env

    _prefect_env()
    service = _load_flow(SERVICE_ENTRYPOINT)  # puts the project on sys.path: the flows import flows.* and tasks.*
    return sys.modules[service.fn.__module__].warm_batch_handler(processing)
