"""Progress bars for long terminal jobs (rich), quiet when stderr is not a terminal.

A CLI command opens one with `terminal_progress(description, total)`; the code doing the work — a flow's stage loop,
a sync's pages, a backfill's chunks, setup's fields, retention's tables, the report's sections — calls `step(label)`
or `add_total(n)`, which do nothing unless a bar is open in this process. Work code never imports rich and never
knows whether a person is watching. `LEADFLOW_NO_PROGRESS=1` turns the bars off; a pipe, a file or CI never sees
one (rich only draws on a terminal).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_active: list[Any] = []  # the open bar, if any: (progress, task id)


def _wanted(console: Any) -> bool:
    return console.is_terminal and os.environ.get("LEADFLOW_NO_PROGRESS", "").strip() not in ("1", "true", "yes")


@contextmanager
def terminal_progress(description: str, total: int | None = None, *, unit: str = "steps",
                      console: Any = None) -> Iterator[None]:
    """Show a bar (or, with no `total`, a spinner with a count) on stderr while the block runs, if stderr is a
    terminal; `step` calls in that `unit` move it, other steps only change the label."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    if not _wanted(console) or _active:
        yield
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[label]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, redirect_stderr=True, redirect_stdout=False) as bar:
        task = bar.add_task(description, total=total, label="")
        _active.append((bar, task, unit))
        try:
            yield
        finally:
            _active.clear()


def step(label: str = "", advance: int = 1, *, unit: str = "steps") -> None:
    """Mark `advance` units of the open bar done, showing `label` (what was just finished), when the bar counts in
    `unit`; a bar counting something else only shows the label; no bar: nothing."""
    if _active:
        bar, task, counted = _active[0]
        bar.update(task, advance=advance if unit == counted else 0, label=label)


def add_total(units: int, *, unit: str = "steps") -> None:
    """Grow the open bar's total by `units` of `unit` (work discovered as it goes)."""
    if _active:
        bar, task, counted = _active[0]
        if unit == counted:
            current = next((t.total for t in bar.tasks if t.id == task), None)
            bar.update(task, total=(current or 0) + units)


def active() -> bool:
    """Whether a bar is open in this process."""
    return bool(_active)
