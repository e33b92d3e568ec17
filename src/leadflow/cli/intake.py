"""`leadflow intake serve`: the push-intake HTTP service (`leadflow.intake`) and its micro-batch processor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from leadflow.cli.common import _guard

intake_app = typer.Typer(no_args_is_help=True, add_completion=False,
                         help="Push intake: accept, verify and record lead notifications from CRMs, MAPs and forms.")
BATCH_ENTRYPOINT = "flows/intake.py:intake_batch"


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
    """The `intake_batch` flow of the project, bound to warm systems built from `processing.run_config`."""
    from leadflow.cli.common import _load_flow, _prefect_env

    _prefect_env()
    batch_flow = _load_flow(BATCH_ENTRYPOINT)  # puts the project on sys.path: the flow imports flows.* and tasks.*
    module = sys.modules[batch_flow.fn.__module__]
    warm = module.WarmSystems(processing.run_config, processing.refresh_seconds)
    return lambda rows: batch_flow(module.IntakeBatch(rows, warm))
