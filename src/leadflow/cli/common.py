"""What every command group of the `leadflow` CLI shares: the one-line error exit (`_fail`, `_guard`), running a
project flow through Prefect (`_prefect_env`, `_load_flow`, `_run_flow`, `_run_sync`, `_run_crm_sync`), the shared
options (`ConfigOption`, `SystemOption`, ...), the read-only state store (`_existing_store`, `_require_runs`) and
`_utc`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leadflow.pipeline.errors import LeadflowError

T = TypeVar("T")
FLOW_ENTRYPOINT = "flows/lead_sync.py:lead_sync"
CRM_SYNC_ENTRYPOINT = "flows/crm_sync.py:crm_sync"
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Run config YAML (pipeline, quality, consent policy, suppression).")
]
SystemOption = Annotated[
    list[str] | None, typer.Option("--system", "-s", help="Sync only this system (repeatable); default: all configured.")
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Write nothing back; show what would be written.")]
SkipPreflightOption = Annotated[
    bool, typer.Option("--skip-preflight", help="Skip the doctor's checks before the run (login, API budget, mapped "
                       "fields, routing users and queues).")
]
OverrideOption = Annotated[
    bool,
    typer.Option("--override-export-guard", help="Allow a write that changes more records than the export guard "
                 "permits (e.g. an intended initial load)."),
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
    import logging

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _HandledErrorFilter) for f in target.filters):
            target.addFilter(_HandledErrorFilter())


class _HandledErrorFilter:
    """Prefect logs a failed flow or task run with its traceback; for leadflow's own errors (a refused write, a
    busy writer, a bad config) the one-line message is the whole story, and the CLI prints it once more at the end."""

    def filter(self, record: Any) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, LeadflowError):
            record.exc_info, record.exc_text = None, None
        return True


def _load_flow(entrypoint: str) -> Any:
    from leadflow.pipeline.project import require_project

    root = require_project()  # flows/ and tasks/ are Prefect entrypoint folders of the project, not packages
    path, name = entrypoint.split(":", 1)
    script = root / path
    if not script.is_file():
        raise LeadflowError(f"{script} not found: the leadflow project at {root} is incomplete")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the flows import `flows.*` and `tasks.*` from the project
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(f"{script}:{name}")


def _checked_rules(config: Path | None) -> Any:
    from leadflow.pipeline.config import load_rules
    from leadflow.stages import pipeline_from_names

    # Fail fast on bad config, before paying Prefect's start-up.
    rules = load_rules(config)
    pipeline_from_names(rules.pipeline, origin=rules.source)
    return rules


def _run_flow(entrypoint: str, **params: Any) -> dict[str, Any]:
    _prefect_env()
    flow = _load_flow(entrypoint)
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        typer.secho(
            "Starting Prefect: with no PREFECT_API_URL set, a temporary local Prefect server starts first "
            "(about 10-20 s; set PREFECT_API_URL to a running server to skip this).",
            fg=typer.colors.CYAN,
        )
    try:
        result: dict[str, Any] = flow(**params)
    except RuntimeError as exc:
        if not str(exc).startswith(EPHEMERAL_TIMEOUT):
            raise
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        raise LeadflowError(
            f"the temporary Prefect server did not answer within "
            f"{PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()} s (a busy machine); start one with "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api, or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") from None
    return result


EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"
"""How Prefect's temporary server says it did not start (prefect.server.api.server.SubprocessASGIServer.start)."""


def _run_sync(input_path: Path, output_path: Path | None, config: Path | None, *,
              chunk_rows: int | None = None) -> dict[str, Any]:
    from leadflow.pipeline.io import check_header

    _checked_rules(config)  # a bad config fails here, before Prefect starts
    check_header(input_path)
    from leadflow.pipeline.progress import terminal_progress

    # one step per chunk read, processed and written (on a terminal only); each stage shows as the label
    with terminal_progress(f"leadflow run {input_path.name}", unit="chunks"):
        return _run_flow(
            FLOW_ENTRYPOINT, input_path=str(input_path), output_path=str(output_path) if output_path else None,
            config_path=str(config) if config else None, **({"chunk_rows": chunk_rows} if chunk_rows else {}),
        )


def _run_crm_sync(config: Path | None, systems: list[str] | None, *, preflight: bool = False,
                  **params: Any) -> dict[str, Any]:
    rules = _checked_rules(config)
    from leadflow.pipeline.errors import ConfigError

    wanted = systems or rules.systems.names
    if not wanted:
        raise ConfigError(rules.source, "no systems configured to sync", yaml_path="systems")
    for name in wanted:
        if name not in rules.systems.names:
            raise ConfigError(rules.source, f"system {name!r} is not configured", yaml_path=f"systems.{name}")
    if preflight:  # stop with the doctor's message rather than fail mid-run
        from leadflow.ops.doctor import PreflightFailed
        from leadflow.ops.doctor import preflight as run_preflight

        report = run_preflight(rules, systems=wanted)
        if not report.ok:
            raise PreflightFailed(report)
    from leadflow.pipeline.progress import terminal_progress

    what = "leadflow backfill" if params.get("start") is not None else "leadflow sync"
    with terminal_progress(what, unit="leads"):  # leads pulled, page by page: the total is not known up front
        return _run_flow(CRM_SYNC_ENTRYPOINT, systems=wanted, config_path=str(config) if config else None,
                         **params)


def _print_sandbox_setup(result: Any) -> None:
    if result is None:
        return
    typer.echo(f"  leadflow setup salesforce: {len(result.created)} custom fields created in the stock org, "
               "access granted to the integration user through a permission set" if result.created else
               "  leadflow setup salesforce: the org already has leadflow's fields")


def _utc(moment: datetime) -> datetime:
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _existing_store() -> Any:
    """The state store a read-only command (trace, forget, report, retention) reads: never created on the way. An
    embedded store that does not exist says where it was looked for and how to point at the right one."""
    from leadflow.pipeline.project import find_project
    from leadflow.pipeline.settings import Settings
    from leadflow.store import StateStore, StoreError

    settings = Settings()
    if not settings.database_url:
        path = settings.home / "state.db"
        if not path.is_file():
            where = ("" if find_project() is not None or os.environ.get("LEADFLOW_HOME") else
                     "; not inside a leadflow project: run from your project folder, pass --project-dir PATH, or set "
                     "LEADFLOW_HOME / LEADFLOW_DATABASE_URL")
            raise StoreError(f"no state store at {path.resolve()}: no run has been recorded there{where}")
    return StateStore.open()


def _require_runs(store: Any) -> None:
    """`trace`/`forget` on a store that has never recorded a run is almost always the wrong store (LEADFLOW_HOME or
    LEADFLOW_DATABASE_URL not set as for the runs): say so, rather than "not found" / "Removed 0 rows"."""
    from leadflow.store import StoreError

    if not store.runs(limit=1):
        raise StoreError(
            f"the state store at {store.url} has no runs: is LEADFLOW_HOME / LEADFLOW_DATABASE_URL right?"
        )
