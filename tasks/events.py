"""leadflow's custom Prefect events: what went wrong in a run, as numbers an Automation can alert on.

Events are emitted only inside a Prefect flow or task run (elsewhere — `task.fn(...)` in unit tests, plain library
use — the helpers do nothing). Payloads carry counts, names and reasons; never secrets or lead data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leadflow.ops.alerts import BUDGET_EXHAUSTED, DQ_FAILED, SLA_BREACHED, SYNC_ERRORS

# SourceStopped reasons that mean an API allowance ran out (leadflow's own budget, the org's daily allocation, a
# MAP's daily quota), as opposed to e.g. a permission error.
_BUDGET_WORDS = ("budget", "quota", "api limit", "api usage", "allocation", "request_limit_exceeded")


def _in_prefect_run() -> tuple[bool, str | None]:
    from prefect.context import FlowRunContext, TaskRunContext

    flow_ctx = FlowRunContext.get()
    task_ctx = TaskRunContext.get()
    if flow_ctx is None and task_ctx is None:
        return False, None
    flow_run = getattr(flow_ctx, "flow_run", None)
    flow_run_id = str(flow_run.id) if flow_run is not None else (
        str(task_ctx.task_run.flow_run_id) if task_ctx is not None and task_ctx.task_run.flow_run_id else None)
    return True, flow_run_id


def emit_leadflow_event(name: str, payload: Mapping[str, Any], run_id: str | None) -> Any:
    """Emit `name` about leadflow run `run_id` (the state store's run id; without one, the Prefect flow run's id).

    A no-op (returns None) outside a Prefect flow or task run."""
    inside, flow_run_id = _in_prefect_run()
    if not inside:
        return None
    from prefect.events import emit_event

    resource_id = f"leadflow.run.{run_id or flow_run_id or 'unknown'}"
    return emit_event(
        event=name,
        resource={"prefect.resource.id": resource_id, "prefect.resource.name": "leadflow"},
        payload=dict(payload),
    )


def emit_dq_failed(gate: Any, run_id: str | None = None) -> Any:
    """`leadflow.dq.failed` for a GateResult whose batch failed its suite."""
    share = gate.rows_quarantined / gate.rows_in if gate.rows_in else 0.0
    return emit_leadflow_event(DQ_FAILED, {
        "suite": gate.suite,
        "stage": gate.stage,
        "rows_in": int(gate.rows_in),
        "rows_quarantined": int(gate.rows_quarantined),
        "share": round(share, 4),
        "failure": gate.failure,
    }, run_id)


def emit_sync_errors(system: str, report: Mapping[str, Any], run_id: str | None) -> Any:
    """`leadflow.sync.errors` when a system's sync had failed writes or permanent dead letters; else nothing."""
    letters = report.get("dead_letters") or {}
    failed = int(report.get("failed") or 0)
    permanent = int(letters.get("permanent") or 0)
    if not failed and not permanent:
        return None
    return emit_leadflow_event(SYNC_ERRORS, {
        "system": system,
        "failed": failed,
        "written": int(report.get("written") or 0),
        "dead_letters": {"pending": int(letters.get("pending") or 0), "permanent": permanent},
    }, run_id)


def is_budget_stop(reason: str | None) -> bool:
    """Whether a SourceStopped reason says an API budget/quota ran out."""
    text = (reason or "").lower()
    return any(word in text for word in _BUDGET_WORDS)


def emit_budget_exhausted(stop: Any, run_id: str | None, calls_used: int | None = None) -> Any:
    """`leadflow.budget.exhausted` when `stop` (a SourceStopped) says an API budget/quota ran out; else nothing."""
    from leadflow.connectors.base import BudgetExhausted

    reason = getattr(stop, "reason", None) or str(stop)
    if not isinstance(stop, BudgetExhausted) and not is_budget_stop(reason):
        return None
    system = getattr(stop, "system", None)
    return emit_leadflow_event(BUDGET_EXHAUSTED, {"system": system, "reason": reason, "calls_used": calls_used},
                               run_id)


def emit_sla_breached(summary: Mapping[str, Any], run_id: str | None) -> Any:
    """`leadflow.sla.breached` with sla_watch's breach summary (counts and minutes late)."""
    return emit_leadflow_event(SLA_BREACHED, summary, run_id)
