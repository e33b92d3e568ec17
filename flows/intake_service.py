"""`intake_service`: `leadflow intake serve` as a Prefect-served process — a long-running flow run (the `lead-intake`
deployment in deployments/prefect.yaml) that serves the intake endpoints and processes the inbox until it is
cancelled, each micro-batch an `intake_batch` flow run beside it. The plain service (`leadflow intake serve`, a
systemd unit or a container) runs exactly the same steps."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.intake import IntakeBatch, WarmSystems, intake_batch
from leadflow.intake.service import serve


@flow(name="intake_service", log_prints=False)
def intake_service(config_path: str = "intake.yaml", host: str | None = None, port: int | None = None) -> None:
    """Serve POST /intake/{salesforce,hubspot,marketo,web} and process the inbox in warm micro-batches until the
    flow run is cancelled (SIGTERM) or interrupted. SIGTERM is the way a service is stopped: the flow returns once
    uvicorn has shut down and the batch under way has finished (a run cancelled from Prefect is marked Cancelled by
    the runner; a plain SIGTERM, e.g. from systemd, leaves it Completed, not Crashed)."""
    try:
        with sigterm_stops():
            serve(Path(config_path), host=host, port=port, handler_for=warm_batch_handler)
    except ServiceStopped:
        get_run_logger().info("intake service stopped (SIGTERM)")


class ServiceStopped(Exception):
    """SIGTERM reached the service outside uvicorn's own handling (before it served, or re-raised after its graceful
    shutdown)."""


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """Within the block, SIGTERM raises `ServiceStopped` instead of reaching Prefect's handler, which would call a
    service stopped on purpose a crash. uvicorn handles SIGTERM itself while it serves (graceful shutdown) and
    re-raises it when done; that re-raise lands here."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise ServiceStopped()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def warm_batch_handler(processing: Any) -> Any:
    """The batch handler the processor calls: `intake_batch` over systems kept warm between batches, built from
    `processing.run_config` and refreshed every `processing.refresh_seconds`."""
    warm = WarmSystems(processing.run_config, processing.refresh_seconds)
    return lambda rows: intake_batch(IntakeBatch(rows, warm))
