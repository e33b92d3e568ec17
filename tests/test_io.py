"""Lead files: structural problems refuse the file with file/row/column; bad rows are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline.errors import InputError
from leadflow.pipeline.io import check_header, quarantine_path, read_leads, write_leads, write_quarantine
from leadflow.pipeline.schema import CANONICAL_COLUMNS


def write(tmp_path: Path, text: str | bytes, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "name", "match", "row"),
    [
        ("email,first_name\na@b.com,Ann\nc@d.com,Cy,extra\n", "leads.csv", "malformed CSV", 3),
        ("first_name,last_name\nAnn,Lee\n", "leads.csv", "needs an 'email' or a 'lead_id' column", None),
        ("", "leads.csv", "file is empty", None),
        (b"email,first_name\na@b.com,J\xe9r\xf4me\n", "leads.csv", "not UTF-8", None),
        ("email\n", "leads.xlsx", "unsupported file type", None),
        ("Email,EMAIL\nx@y.z,x@y.z\n", "leads.csv", "duplicate column", None),
    ],
)
def test_bad_files_are_refused_with_location(tmp_path: Path, content, name, match, row) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, content, name)
    with pytest.raises(InputError, match=match) as info:
        read_leads(path)
    assert str(path) in str(info.value)
    assert info.value.row == row
    if row is not None:
        assert f"row {row}" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        check_header(tmp_path / "nope.csv")


def test_headers_are_normalised_and_values_trimmed(tmp_path: Path) -> None:
    path = write(tmp_path, " Email ,First Name,Lead-Source\n  ann@acme.com , Ann ,Web Form\n")
    loaded = read_leads(path)
    assert loaded.frame.loc[0, "email"] == "ann@acme.com"
    assert loaded.frame.loc[0, "first_name"] == "Ann"
    assert loaded.frame.loc[0, "lead_source"] == "Web Form"
    assert list(loaded.frame.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)


def test_bad_rows_are_refused_with_reason_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "lead_id,email,email_opt_in\n"
        "00Q1,a@b.com,yes\n"
        ",,\n"
        "00Q3,c@d.com,maybe\n"
        ",e@f.com,\n"
        "00Q5,,FALSE\n",
    )
    loaded = read_leads(path)
    assert loaded.rows_in == 5
    assert len(loaded.frame) + len(loaded.refused) == loaded.rows_in
    assert loaded.refused["reason"].tolist() == [
        "row 3: row has neither email nor lead_id",
        "row 4: email_opt_in: unrecognised value 'maybe'",
    ]
    assert loaded.refused["lead_key"].tolist()[1] == "file:00Q3"
    assert loaded.frame["email_opt_in"].tolist() == [True, pd.NA, False]
    assert loaded.frame["email_opt_in"].dtype == "boolean"


def test_output_writes_every_canonical_column_and_true_false(tmp_path: Path) -> None:
    loaded = read_leads(write(tmp_path, "email,email_opt_in,crm_note\na@b.com,yes,keep me\nc@d.com,,\n"))
    out = write_leads(loaded.frame, tmp_path / "out" / "leads.csv")
    text = out.read_text().splitlines()
    assert text[0].split(",")[: len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)
    assert text[0].endswith(",crm_note")
    back = pd.read_csv(out, dtype="string", keep_default_na=False)
    assert back["email_opt_in"].tolist() == ["true", ""]
    assert back["crm_note"].tolist() == ["keep me", ""]


def test_parquet_round_trip(tmp_path: Path) -> None:
    loaded = read_leads(write(tmp_path, "lead_id,email\n00Q1,a@b.com\n"))
    out = write_leads(loaded.frame, tmp_path / "leads.parquet")
    again = read_leads(out)
    assert again.frame["email"].tolist() == ["a@b.com"]


def test_failed_write_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "leads.csv"
    target.write_text("previous,content\n")
    loaded = read_leads(write(tmp_path, "email\na@b.com\n", name="in.csv"))

    def crash_half_way(self: pd.DataFrame, target: object, **kwargs: object) -> None:
        if hasattr(target, "write"):  # the writer appends chunks to an open temporary file
            target.write("email\npartial")
        else:
            Path(target).write_text("email\npartial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        write_leads(loaded.frame, target)
    assert target.read_text() == "previous,content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "leads.csv"]


def test_quarantine_file_one_line_per_row(tmp_path: Path) -> None:
    records = pd.DataFrame(
        {
            "stage": ["standardize", "standardize", "input"],
            "position": [4, 4, 1],
            "lead_key": ["file:1", "file:1", "email:x@y.z"],
            "expectation": ["a", "b", "leadflow_input_row"],
            "reason": ["bad a", "bad b", "row 3: why"],
            "row": [{"email": "q@r.s", "email_valid": True}, {"email": "q@r.s", "email_valid": True}, {"email": "x@y.z"}],
        }
    )
    path = write_quarantine(records, quarantine_path(tmp_path / "leads.csv"))
    assert path.name == "leads.csv.quarantine.csv"
    back = pd.read_csv(path, dtype="string", keep_default_na=False)
    assert len(back) == 2
    assert back.loc[0, "expectation"] == "a; b" and back.loc[0, "reason"] == "bad a; bad b"
    assert back.loc[0, "email_valid"] == "true"
