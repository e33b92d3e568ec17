"""Streaming file mode: a lead file read, processed and written a chunk at a time gives what the whole file gives."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from leadflow.identity.duplicates import find_duplicates
from leadflow.identity.earlier_leads import EarlierLeads
from leadflow.pipeline.errors import InputError
from leadflow.pipeline.io import (
    LeadFileWriter,
    QuarantineFileWriter,
    iter_leads,
    quarantine_path,
    read_leads,
    write_leads,
)
from leadflow.pipeline.schema import CANONICAL_COLUMNS
from leadflow.stages.standardize import normalize_timestamps
from leadflow.synth import messy_leads


def messy_file(tmp_path: Path, rows: int = 1200, name: str = "leads.csv") -> Path:
    """Messy leads sorted by creation (as exports are), with rows the reader refuses and an extra column."""
    frame = messy_leads(rows, seed=23)
    created = normalize_timestamps(frame["created_at"])  # as the standardize stage will read it
    frame = frame.iloc[created.fillna("~").argsort(kind="stable")]
    frame = frame.drop_duplicates("lead_id", keep="first")  # one row per lead: see test_chunks_are_the_whole_file
    frame["crm_note"] = "note " + pd.Series(range(len(frame)), index=frame.index).astype(str)
    bad = pd.DataFrame([{"lead_id": "", "email": "", "first_name": "Nobody"},
                        {"lead_id": "00QBADOPTIN0000001", "email": "x@acme.com", "email_opt_in": "perhaps"}])
    frame = pd.concat([frame.iloc[:300], bad, frame.iloc[300:]], ignore_index=True)
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.astype("string").to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["leads.csv", "leads.parquet"])
@pytest.mark.parametrize("rows_per_chunk", [1, 97, 5000])
def test_chunks_read_what_the_whole_file_reads(tmp_path: Path, name: str, rows_per_chunk: int) -> None:
    path = messy_file(tmp_path, rows=150 if rows_per_chunk == 1 else 1200, name=name)
    whole = read_leads(path)
    chunks = list(iter_leads(path, rows_per_chunk))
    assert len(chunks) == -(-whole.rows_in // rows_per_chunk)
    frame = pd.concat([c.frame for c in chunks])
    refused = pd.concat([c.refused for c in chunks])
    pd.testing.assert_frame_equal(frame, whole.frame)
    # an empty chunk's refusals are object columns, so the concatenation's are too: compared as text
    pd.testing.assert_frame_equal(refused.fillna("").astype(str), whole.refused.fillna("").astype(str))
    assert all(c.ignored == ("crm_note",) for c in chunks)
    assert sum(c.rows_in for c in chunks) == whole.rows_in


def test_a_file_with_only_a_header_is_one_empty_chunk(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("email,lead_id\n")
    (chunk,) = iter_leads(path, 10)
    assert chunk.rows_in == 0


def test_a_malformed_row_far_into_the_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("email,lead_id\n" + "".join(f"a{i}@b.com,{i}\n" for i in range(50)) + "x@b.com,1,2,3\n")
    with pytest.raises(InputError, match=r"malformed CSV.*line 52"):
        list(iter_leads(path, 10))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_appended_chunks_are_the_file_written_whole(tmp_path: Path, suffix: str) -> None:
    frame = read_leads(messy_file(tmp_path)).frame
    whole = write_leads(frame, tmp_path / f"whole{suffix}")
    with LeadFileWriter(tmp_path / f"chunked{suffix}") as writer:
        for start in range(0, len(frame), 250):
            writer.append(frame.iloc[start:start + 250])
    read = pd.read_parquet if suffix == ".parquet" else (lambda p: pd.read_csv(p, dtype="string"))
    pd.testing.assert_frame_equal(read(tmp_path / f"chunked{suffix}"), read(whole))


def test_nothing_appears_until_commit_and_an_empty_file_keeps_its_header(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    writer = LeadFileWriter(target, extra_columns=("crm_note",))
    writer.append(read_leads(messy_file(tmp_path)).frame.head(3))
    assert not target.exists()
    writer.close()  # a failed run: no commit
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["leads.csv"]
    with LeadFileWriter(target, extra_columns=("crm_note",)):
        pass
    assert list(pd.read_csv(target).columns) == [*CANONICAL_COLUMNS, "crm_note"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not the temporary file's 0600
    with QuarantineFileWriter(quarantine_path(target)):
        pass
    assert pd.read_csv(quarantine_path(target)).empty


def test_earlier_leads_first_wins_and_normalizes(tmp_path: Path) -> None:
    with EarlierLeads(tmp_path) as earlier:
        assert earlier.targets(pd.Series(["a@b.com"], dtype="string")).isna().all()
        earlier.add(pd.DataFrame({"email": ["A@B.com", "c@d.com", "e@f.com"], "lead_id": ["L1", pd.NA, "L3"],
                                  "duplicate_of": [pd.NA, pd.NA, "003CRM"]}, dtype="string"))
        earlier.add(pd.DataFrame({"email": ["a@b.com"], "lead_id": ["L9"]}, dtype="string"))  # later: ignored
        asked = pd.Series([" a+news@B.COM", "c@d.com", "e@f.com", "z@z.com", pd.NA], index=[10, 11, 12, 13, 14],
                          dtype="string")
        assert earlier.targets(asked).fillna("-").tolist() == ["L1", "email:c@d.com", "003CRM", "-", "-"]
        assert earlier.size == 3
    assert not any(tmp_path.iterdir())  # its file is gone


def test_a_repeat_of_an_earlier_chunk_is_a_within_batch_duplicate() -> None:
    existing = pd.DataFrame(columns=["record_id", "object", "email", "first_name", "last_name", "company"],
                            dtype="string")
    leads = pd.DataFrame({"lead_id": ["L5", "L6", "L7", "L1"], "email": ["a@b.com", "a@b.com", "x@y.com", "a@b.com"],
                          "created_at": ["2026-01-01T00:00:00Z"] * 4}, index=[5, 6, 7, 8], dtype="string")
    earlier = pd.Series(["L1", "L1", pd.NA, "L1"], index=leads.index, dtype="string")
    found = find_duplicates(leads, existing, earlier=earlier)
    # both repeats point to the earlier chunk's lead; L1 itself pulled again is no duplicate of itself
    assert found["duplicate_of"].fillna("-").tolist() == ["L1", "L1", "-", "-"]
    alone = find_duplicates(leads, existing)
    assert alone["duplicate_of"].fillna("-").tolist() == ["-", "L5", "-", "L5"]


@pytest.mark.prefect
def test_chunks_are_the_whole_file(prefect_api: str, state_home: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A file sorted by creation with one row per lead gives the same output, quarantine and counts read whole or
    in chunks of 97 rows (duplicates across chunks included)."""
    from flows.lead_sync import lead_sync

    path = messy_file(tmp_path)
    outputs = {}
    for rows in (100_000, 97):
        monkeypatch.setenv("LEADFLOW_HOME", str(tmp_path / f"home-{rows}"))
        out = tmp_path / f"out-{rows}.csv"
        summary = lead_sync(input_path=str(path), output_path=str(out), chunk_rows=rows,
                            as_of=pd.Timestamp("2026-11-01", tz="UTC").to_pydatetime())
        outputs[rows] = (summary, pd.read_csv(out, dtype="string"),
                         pd.read_csv(quarantine_path(out), dtype="string"))
    (whole, whole_out, whole_q), (chunked, chunked_out, chunked_q) = outputs[100_000], outputs[97]
    assert chunked["rows_in"] == whole["rows_in"] == chunked["rows_out"] + chunked["rows_quarantined"]
    assert (chunked["rows_out"], chunked["quarantined_by_stage"]) == (whole["rows_out"], whole["quarantined_by_stage"])
    assert whole_out["duplicate_of"].notna().sum() > 0
    pd.testing.assert_frame_equal(chunked_out, whole_out)
    # the same lines; chunk by chunk, each chunk's input refusals come before its stages' quarantine
    def ordered(lines: pd.DataFrame) -> pd.DataFrame:
        return lines.sort_values(["stage", "lead_key", "reason"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(chunked_q), ordered(whole_q))
    assert len(whole_q) > 2
    assert chunked["mailable"] == whole["mailable"]
    assert set(chunked["timings"]) >= {"read_seconds", "write_seconds", "state_seconds", "kpis_seconds"}
