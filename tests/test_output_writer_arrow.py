"""The CSV writer's faster paths (issue 17): lines written by Arrow's CSV writer with the quoted cells patched in,
cells replaced by splicing, columns defused once per distinct value, quarantine lines without grouping, booleans
as text in Arrow. Each must write what the plain path (and, before it, pandas' `to_csv` of the defused frame) wrote."""

from __future__ import annotations

import csv
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leadflow.pipeline import csv_out, io
from leadflow.pipeline.csvsafe import _SPLICE_MAX, defuse, defuse_arrow, defuse_cell, replace_cells
from leadflow.pipeline.schema import CANONICAL_COLUMNS

from tests.test_output_writer_speed import HOSTILE, expected_csv, fast_csv


def joined(cells: list[pa.Array]) -> bytes:
    """The lines as the cell-by-cell join writes them (the path taken when Arrow's writer is not)."""
    return bytes(csv_out._joined([csv_out._filled(csv_out.quoted(column)) for column in cells]))


def count_fallbacks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = csv_out._joined
    monkeypatch.setattr(csv_out, "_joined", lambda cells: calls.append(len(cells)) or real(cells))
    return calls


def test_arrow_writer_with_quoted_cells_in_many_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    rows = 3000
    frame = pd.DataFrame({
        "a": pd.Series([rng.choice(HOSTILE) for _ in range(rows)], dtype="string"),
        "b": pd.Series([rng.choice([*HOSTILE, None]) for _ in range(rows)], dtype="str"),
        "n": pd.array([rng.choice([1.5, None, -0.0, 1e20]) for _ in range(rows)], dtype="Float64"),
        "c": pd.Series([rng.choice(["x", "Acme, Inc.", 'say "hi"', "", None]) for _ in range(rows)], dtype=object),
        "last": pd.Series([rng.choice(["a,b", "z", None]) for _ in range(rows)], dtype="string"),
    })
    fallbacks = count_fallbacks(monkeypatch)
    assert fast_csv(frame) == expected_csv(frame)
    assert fallbacks == []


def test_a_bare_cr_left_unquoted_falls_back_to_the_join(monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow refuses a CR in an unquoted cell; Python's csv writer (3.11, lines ending in LF) writes it unquoted.
    A categorical column is not defused, so its CR survives."""
    frame = pd.DataFrame({"t": pd.Categorical(["cr\rinside", "a,b", "plain"]), "u": ["x", "y,z", "w"]})
    fallbacks = count_fallbacks(monkeypatch)
    assert fast_csv(frame) == expected_csv(frame)
    assert fallbacks == ([] if "\r" in csv_out.QUOTE_TRIGGERS else [2])


def test_cells_holding_the_placeholder_byte_stay_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quoted cells are patched where the lengths say, whatever other cells hold (a categorical keeps 0x01)."""
    frame = pd.DataFrame({"t": pd.Categorical(["\x01", "\x01\x01", "a", "\x01"] * 50),
                          "u": ["x,1", "\x01", '"q"', "y"] * 50, "v": ["a,b", "c", "\x01,", "d"] * 50})
    fallbacks = count_fallbacks(monkeypatch)
    assert fast_csv(frame) == expected_csv(frame)
    assert fallbacks == []


def null_with_bytes() -> pa.Array:
    """`['=ab,c', null (its slot holding 'x,"y'), '+1', null (empty slot)]`: Arrow allows a null's slot to hold
    bytes."""
    data = b'=ab,cx,"y+1'
    offsets = np.array([0, 5, 9, 11, 11], dtype=np.int64)
    validity = pa.array([True, False, True, False]).buffers()[1]
    return pa.Array.from_buffers(pa.large_string(), 4, [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


def test_null_slots_holding_bytes_are_written_empty() -> None:
    cells = null_with_bytes()
    assert cells.to_pylist() == ["=ab,c", None, "+1", None]
    defused = defuse_arrow(cells)
    assert defused.to_pylist() == ["'=ab,c", None, "+1", None]
    other = pa.array(["p", "q,r", None, 's"'], type=pa.large_string())
    expected = b'"\'=ab,c",p\n,"q,r"\n+1,\n,"s"""\n'
    assert joined([defused, other]) == expected
    assert bytes(csv_out._written_by_arrow([defused, other])) == expected
    assert bytes(csv_out._written_by_arrow([other, defused])) == joined([other, defused])


@pytest.mark.parametrize("count", [1, _SPLICE_MAX, _SPLICE_MAX + 1, 2000])
def test_replace_cells_splices_or_masks_alike(count: int) -> None:
    rng = np.random.default_rng(count)
    cells = pa.array([f"c{i}" if i % 7 else None for i in range(3000)], type=pa.large_string()).slice(10)
    where = np.sort(rng.choice(len(cells), count, replace=False))
    values = pa.array([f"new{i}" for i in range(count)], type=pa.large_string())
    expected = cells.to_pylist()
    for index, value in zip(where.tolist(), values.to_pylist()):
        expected[index] = value
    assert replace_cells(cells, where, values).to_pylist() == expected


def test_defused_once_per_distinct_value() -> None:
    """Many cells starting with a trigger, few distinct: the column's dictionary is defused, then taken."""
    values = ["+15 Director; +10 Buying department", "+5 Phone number known", "-3 No e-mail", "=1+1",
              "+14155550100", "-12", "plain", "@x", "+١٢٣", "\r=1", "a\x00b"]
    rng = random.Random(3)
    cells = [rng.choice([*values, None]) for _ in range(12000)]
    for kind in (pa.string(), pa.large_string()):
        array = pa.array(cells, type=kind)
        assert defuse_arrow(array).to_pylist() == [None if c is None else defuse_cell(c) for c in cells]
        assert defuse_arrow(array, by_value=False).to_pylist() == defuse_arrow(array).to_pylist()


def old_quarantine_lines(quarantine: pd.DataFrame, extra_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """`quarantine_lines` as it was: grouped by stage and position, every row column parsed."""
    columns = [*io.QUARANTINE_HEAD, *CANONICAL_COLUMNS, *extra_columns]
    if not len(quarantine):
        return pd.DataFrame(columns=columns)
    grouped = quarantine.groupby(["stage", "position"], sort=False)
    head = grouped.agg(expectation=("expectation", "; ".join), reason=("reason", "; ".join),
                       lead_key=("lead_key", "first"), row=("row", "first")).reset_index()
    rows = pd.DataFrame(list(head["row"]))
    body = io.to_output(rows) if len(rows) else rows
    out = pd.concat([head[io.QUARANTINE_HEAD].reset_index(drop=True), body.reset_index(drop=True)], axis=1)
    return out.reindex(columns=columns)


def quarantine_records(repeat_rows: bool) -> pd.DataFrame:
    rows = [{"email": "a@x.com", "is_converted": "yes", "employees": "12", "company": "=Acme, Inc.", "utm": "=x"},
            {"email": None, "is_converted": None, "employees": None, "company": "B", "utm": None},
            {"email": "c@y.org", "is_converted": "no", "employees": "n/a", "company": None, "utm": None}]
    for row in rows:  # no value in any row: a canonical column of each kind, and an extra column
        row.update(phone=None, email_opt_in=None, annual_revenue=None, utm_blank=None)
    records = [
        {"lead_key": "k0", "expectation": "e1", "column": "email", "reason": "r1", "row": rows[0], "position": 0,
         "stage": "input"},
        {"lead_key": None, "expectation": "e2", "column": "email", "reason": "=r2", "row": rows[1], "position": 1,
         "stage": "input"},
        {"lead_key": "k2", "expectation": "e3", "column": "x", "reason": "r3", "row": rows[2], "position": 0,
         "stage": "standardize"},
    ]
    if repeat_rows:
        records.append({**records[0], "expectation": "e4", "reason": "r4, again", "lead_key": None})
    return pd.DataFrame(records).astype({"lead_key": "str", "expectation": "str", "reason": "str", "stage": "str"})


@pytest.mark.parametrize("repeat_rows", [False, True])
def test_quarantine_lines_as_before(repeat_rows: bool) -> None:
    quarantine = quarantine_records(repeat_rows)
    new = io.quarantine_lines(quarantine, ("utm", "utm_blank"))
    old = old_quarantine_lines(quarantine, ("utm", "utm_blank"))
    pd.testing.assert_frame_equal(new, old)
    assert expected_csv(new) == expected_csv(old)
    assert len(new) == 3 and (new["expectation"].iloc[0] == "e1; e4") == repeat_rows


def test_bool_text_as_map() -> None:
    values = pd.Series(pd.array([True, None, False, True], dtype="boolean"), index=[3, 1, 2, 0], name="b")
    expected = values.map({True: "true", False: "false"}, na_action="ignore").astype("string")
    pd.testing.assert_series_equal(io._bool_text(values), expected)
    no_missing = values.fillna(False)
    pd.testing.assert_series_equal(io._bool_text(no_missing),
                                   no_missing.map({True: "true", False: "false"}).astype("string"))


def test_quoting_matches_the_csv_module_on_random_cells() -> None:
    alphabet = ["a", ",", '"', "\n", "=", "+", "1", " ", "ü", "\x01"]
    rng = random.Random(17)
    cells = ["".join(rng.choices(alphabet, k=rng.randint(0, 6))) for _ in range(2000)]
    frame = pd.DataFrame({"x": cells, "y": cells[::-1]}, dtype="string")
    lines = fast_csv(frame, header=False).decode("utf-8")
    assert list(csv.reader(lines.splitlines(keepends=True))) == [
        [defuse_cell(a), defuse_cell(b)] for a, b in zip(cells, cells[::-1])]
    assert fast_csv(frame) == defuse(frame).to_csv(index=False).encode("utf-8")
