"""leadflow's `task` decorator: Prefect's task, which a latency-bound flow may run inline.

A Prefect task run costs tens of milliseconds of orchestration (its run recorded, its states sent to the API) on top
of its work. That is nothing for an hourly sync, but a push-intake micro-batch calls ~30 tasks per system and is
meant to route a lead within seconds. Inside `inline_tasks()`, calling a leadflow task calls its function directly —
in the calling flow run, whose logger and artifacts it uses — with the same retries: a failure the task's
`retry_condition_fn` calls transient is tried again after the task's `retry_delay_seconds`, up to `retries` times.
Outside it (every other flow), a call is an ordinary Prefect task run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from prefect import Task
from prefect.states import Failed

_INLINE: ContextVar[bool] = ContextVar("leadflow_inline_tasks", default=False)

log = logging.getLogger("leadflow.tasks")


@contextmanager
def inline_tasks() -> Iterator[None]:
    """Within the block (this thread or task context), leadflow tasks run as plain calls; see the module."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def running_inline() -> bool:
    return _INLINE.get()


class LeadflowTask(Task):
    """A Prefect task that runs as a plain call inside `inline_tasks()`."""

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any) -> Any:
        if _INLINE.get() and not return_state and wait_for is None:
            return call_inline(self, args, kwargs)
        return super().__call__(*args, return_state=return_state, wait_for=wait_for, **kwargs)


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """`prefect.task`, making a `LeadflowTask`: `@task` or `@task(retries=..., ...)`."""
    if fn is None:
        return lambda f: LeadflowTask(fn=f, **options)
    return LeadflowTask(fn=fn, **options)


def call_inline(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`task`'s function called now, retried as its options say."""
    attempt = 0
    while True:
        try:
            return task.fn(*args, **kwargs)
        except Exception as exc:
            if attempt >= (task.retries or 0) or not _retryable(task, exc):
                raise
            delay = retry_delay(task, attempt)
            log.warning("%s failed (%s: %s); retry %d of %d in %.0f s", task.name, type(exc).__name__, exc,
                        attempt + 1, task.retries, delay)
            time.sleep(delay)  # the backoff Prefect would wait between attempts (I/O retries only)
            attempt += 1


def _retryable(task: Task, exc: BaseException) -> bool:
    condition = task.retry_condition_fn
    return True if condition is None else bool(condition(task, None, Failed(data=exc)))


def retry_delay(task: Task, attempt: int) -> float:
    """The delay before retry `attempt + 1`, as Prefect reads `retry_delay_seconds` (a number, or a list whose last
    entry repeats)."""
    delays = task.retry_delay_seconds
    if callable(delays):
        delays = delays(task.retries)
    if isinstance(delays, (list, tuple)):
        return float(delays[min(attempt, len(delays) - 1)]) if delays else 0.0
    return float(delays or 0)
