"""Progress bars: drawn on a terminal only, moved by the work code's steps in the bar's unit, silent elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from leadflow.pipeline import progress


def _terminal() -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=True, width=120), sink


def test_a_bar_on_a_terminal_moves_with_steps_in_its_unit() -> None:
    console, sink = _terminal()
    with progress.terminal_progress("leadflow run", total=3, unit="stages", console=console):
        assert progress.active()
        progress.step("standardize", unit="stages")
        progress.step("page 1", 500, unit="leads")  # another unit: the label only
        progress.step("enrich", unit="stages")
        (task,) = progress._active[0][0].tasks
        assert task.completed == 2 and task.fields["label"] == "enrich"
    assert not progress.active()
    assert "leadflow run" in sink.getvalue()


def test_work_discovered_as_it_goes_grows_the_total() -> None:
    console, _ = _terminal()
    with progress.terminal_progress("setup", total=0, unit="fields", console=console):
        progress.add_total(3, unit="fields")
        progress.add_total(5, unit="leads")  # not this bar's unit
        (task,) = progress._active[0][0].tasks
        assert task.total == 3


def test_no_terminal_no_bar_and_steps_do_nothing() -> None:
    sink = io.StringIO()
    with progress.terminal_progress("leadflow run", total=3, console=Console(file=sink, force_terminal=False)):
        assert not progress.active()
        progress.step("standardize")
        progress.add_total(4)
    assert sink.getvalue() == ""
    progress.step("outside any bar")  # harmless


def test_leadflow_no_progress_turns_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_NO_PROGRESS", "1")
    console, sink = _terminal()
    with progress.terminal_progress("leadflow run", total=3, console=console):
        assert not progress.active()
    assert sink.getvalue() == ""


@pytest.mark.prefect
def test_the_file_flow_steps_through_each_chunk_and_its_stages(prefect_api: str, state_home: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.lead_sync import lead_sync
    from tests.test_lead_sync import sample

    seen: list[str] = []
    monkeypatch.setattr(progress, "step", lambda label="", advance=1, *, unit="steps": seen.append(f"{unit}:{label}"))
    lead_sync(input_path=str(sample(tmp_path, rows=40)), output_path=str(tmp_path / "out.csv"), chunk_rows=30)
    stages = ["stages:standardize", "stages:enrich", "stages:comply", "stages:score", "stages:lifecycle"]
    # 44 rows in chunks of 30: each chunk's stages, then the chunk (counting rows so far), then the files written
    assert seen == [*stages, "chunks:chunk 1: 30 rows", *stages, "chunks:chunk 2: 44 rows", "chunks:written"]
