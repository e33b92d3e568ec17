"""tasks.report.ChunkKpis: a streamed run's KPI recordings a few audit chunks at a time, none lost on failure."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

import tasks.report as report
from leadflow.pipeline.ledger import RunLedger

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, range, datetime]]:
    calls: list[tuple[str, range, datetime]] = []
    monkeypatch.setattr(report, "record_chunk_kpis",
                        lambda run_id, chunks, since, by_chunk: calls.append((run_id, chunks, since, by_chunk)))
    return calls


def test_chunks_are_recorded_every_n_and_the_rest_at_the_end(recorded: list) -> None:
    ledger = RunLedger()
    with report.ChunkKpis("run-1", ledger, every=2) as kpis:
        for page in range(5):  # pages of one audit chunk each, the third with none (all refused)
            chunks = range(page, page) if page == 2 else range(page, page + 1)
            kpis.add(chunks, T0 + timedelta(minutes=page))
    assert recorded == [("run-1", range(0, 2), T0, True), ("run-1", range(3, 5), T0 + timedelta(minutes=3), True)]
    assert ledger.timings["kpis_seconds"] >= 0  # the recordings' time is the run's `kpis` timing


def test_a_failed_run_still_records_its_finished_chunks(recorded: list) -> None:
    with pytest.raises(RuntimeError, match="stage failed"), report.ChunkKpis("run-2", RunLedger(), every=4) as kpis:
        kpis.add(range(0, 1), T0)
        raise RuntimeError("stage failed")
    assert recorded == [("run-2", range(0, 1), T0, True)]


def test_a_recording_failure_does_not_hide_the_runs_own_error(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("store unreachable\n[parameters: ('ann@example.com',)]")

    monkeypatch.setattr(report, "record_chunk_kpis", broken)
    with caplog.at_level(logging.WARNING, logger="leadflow.kpis"), pytest.raises(RuntimeError, match="stage failed"), \
            report.ChunkKpis("run-3", RunLedger()) as kpis:
        kpis.add(range(0, 1), T0)
        raise RuntimeError("stage failed")
    assert "OSError: store unreachable" in caplog.text
    assert "ann@example.com" not in caplog.text  # a statement's parameters (leads' e-mails) stay out of the log
    with pytest.raises(OSError, match="store unreachable"), report.ChunkKpis("run-4", RunLedger()) as kpis:
        kpis.add(range(0, 1), T0)  # on success, a failure to record is the run's error


def test_a_page_of_several_audit_chunks_is_recorded_on_its_own_as_one_page(recorded: list) -> None:
    # `--chunk-rows` above an audit chunk's rows: a page spans audit chunks; its leads' facts are the whole page's
    with report.ChunkKpis("run-5", RunLedger(), every=4) as kpis:
        kpis.add(range(0, 1), T0)
        kpis.add(range(1, 3), T0 + timedelta(minutes=1))
        kpis.add(range(3, 4), T0 + timedelta(minutes=2))
    assert recorded == [("run-5", range(0, 1), T0, True), ("run-5", range(1, 3), T0 + timedelta(minutes=1), False),
                        ("run-5", range(3, 4), T0 + timedelta(minutes=2), True)]
