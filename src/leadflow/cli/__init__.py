"""The `leadflow` command line (the console script `leadflow = "leadflow.cli:app"`).

This module builds the Typer `app`: the global `--project-dir` option and the registration of every command, in the
order `leadflow --help` shows them. The commands live in one module per group: `pipeline` (run, demo, sync, backfill,
map and the run summaries they print), `sandboxes` (sandbox), `scoring` (score backtest), `routing` (routing test,
routing simulate; the work is in `leadflow.routing.simulate`), `state` (trace, forget, retention, report), `kpis`
(kpis), `ops` (sla check, alerts install, deploy, audit test-lead, version) and `setup` (setup salesforce, doctor);
what they share (the
one-line error exit, running a project flow through Prefect, the common options, the read-only state store) is in
`common`. A helper is looked up in the module that uses it: patch `leadflow.cli.common._run_flow`, not
`leadflow.cli._run_flow` (the private helpers are deliberately not re-exported here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from leadflow.cli.common import (
    CRM_SYNC_ENTRYPOINT,
    EPHEMERAL_TIMEOUT,
    FLOW_ENTRYPOINT,
    ConfigOption,
    DryRunOption,
    OverrideOption,
    SkipPreflightOption,
    SystemOption,
    _fail,
)
from leadflow.cli.ops import alerts_app, alerts_install, audit_app, audit_test_lead, deploy, sla_app, sla_check, version
from leadflow.cli.intake import intake_app
from leadflow.cli.kpis import kpis
from leadflow.cli.mirror import mirror_app
from leadflow.cli.pipeline import backfill, demo, process_map, run, sync
from leadflow.cli.routing import routing_app, routing_simulate, routing_test
from leadflow.cli.sandboxes import sandbox
from leadflow.cli.scoring import score_app, score_backtest
from leadflow.cli.setup import doctor_command, setup_app, setup_salesforce_command
from leadflow.cli.state import forget, report, retention, trace_command

__all__ = [
    "CRM_SYNC_ENTRYPOINT", "EPHEMERAL_TIMEOUT", "FLOW_ENTRYPOINT", "ConfigOption", "DryRunOption", "OverrideOption",
    "SkipPreflightOption", "SystemOption", "alerts_app", "alerts_install", "app", "audit_app", "audit_test_lead",
    "backfill", "demo", "deploy", "doctor_command", "forget", "kpis", "main", "process_map", "report", "retention",
    "routing_app", "routing_simulate", "routing_test", "run", "sandbox", "score_app", "score_backtest",
    "setup_app", "setup_salesforce_command", "sla_app", "sla_check", "sync", "trace_command", "version",
]

app = typer.Typer(no_args_is_help=True, add_completion=False, help="leadflow: lead-flow automation for RevOps teams.")


@app.callback()
def _project(
    project_dir: Annotated[Path | None, typer.Option(
        "--project-dir", help="The leadflow project (the folder with flows/ and tasks/); default: this folder or the "
        "nearest parent that is one, or $LEADFLOW_PROJECT.")] = None,
) -> None:
    """leadflow: lead-flow automation for RevOps teams."""
    if project_dir is not None:
        from leadflow.pipeline.project import PROJECT_ENV, ProjectNotFound, is_project

        folder = project_dir.expanduser().resolve()
        if not is_project(folder):
            _fail(ProjectNotFound(f"--project-dir {project_dir}: not a leadflow project (no flows/lead_sync.py and "
                                  "tasks/ there)"))
        os.environ[PROJECT_ENV] = str(folder)


# In this order in `leadflow --help` (Typer lists the commands first, then the groups, each in registration order).
app.command()(run)
app.command()(demo)
app.command()(sync)
app.command()(backfill)
app.command()(sandbox)
app.command("map")(process_map)
app.add_typer(score_app, name="score")
app.add_typer(routing_app, name="routing")
app.add_typer(sla_app, name="sla")
app.add_typer(alerts_app, name="alerts")
app.command()(deploy)
app.command("trace")(trace_command)
app.command()(forget)
app.command()(retention)
app.command()(report)
app.command()(kpis)
app.add_typer(audit_app, name="audit")
app.add_typer(mirror_app, name="mirror")
app.add_typer(intake_app, name="intake")
app.command()(version)
app.add_typer(setup_app, name="setup")
app.command("doctor")(doctor_command)


def main() -> None:  # pragma: no cover - console entry
    app()
