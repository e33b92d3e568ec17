"""tasks.runner: leadflow tasks are Prefect task runs, except inside `inline_tasks()`, where they are plain calls
retried as their options say."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.context import TaskRunContext

from tasks.io import _transient
from tasks.runner import inline_tasks, retry_delay, running_inline, task


@task
def where_am_i() -> bool:
    """True when running as a Prefect task run."""
    return TaskRunContext.get() is not None


@flow
def calls_task(inline: bool) -> tuple[bool, bool]:
    if inline:
        with inline_tasks():
            return where_am_i(), running_inline()
    return where_am_i(), running_inline()


def test_a_task_is_a_task_run_outside_and_a_plain_call_inside_inline_tasks(prefect_api):
    assert calls_task(False) == (True, False)
    assert calls_task(True) == (False, True)
    assert not running_inline()  # the block is left as it was found


def flaky(errors: list[BaseException]):
    calls = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=_transient)
    def read() -> int:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return len(calls)

    return read, calls


def test_inline_retries_a_transient_failure_as_the_task_says():
    read, calls = flaky([OSError("disk busy"), OSError("disk busy")])
    with inline_tasks():
        assert read() == 3
    assert len(calls) == 3


def test_inline_gives_up_after_the_tasks_retries():
    read, calls = flaky([OSError("1"), OSError("2"), OSError("3")])
    with inline_tasks(), pytest.raises(OSError, match="3"):
        read()
    assert len(calls) == 3


def test_inline_never_retries_what_the_condition_calls_permanent():
    read, calls = flaky([ValueError("bad input")])
    with inline_tasks(), pytest.raises(ValueError, match="bad input"):
        read()
    assert len(calls) == 1


@pytest.mark.parametrize(("delays", "attempt", "expected"), [
    (0, 0, 0.0), (5, 2, 5.0), ([1, 4, 15], 0, 1.0), ([1, 4, 15], 2, 15.0), ([1, 4], 3, 4.0),
])
def test_retry_delay_reads_prefects_option(delays, attempt, expected):
    @task(retries=3, retry_delay_seconds=delays)
    def noop() -> None:
        return None

    assert retry_delay(noop, attempt) == expected
