"""The fast CSV writer (`leadflow.pipeline.csv_out`): byte for byte what `defuse(frame).to_csv(...)` wrote, for every
dtype the writers see, and the fast path (no per-cell Python) taken for real pipeline output."""

from __future__ import annotations

import csv
import io
import random
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from leadflow.pipeline import csv_out
from leadflow.pipeline.csvsafe import defuse, defuse_arrow, defuse_cell
from leadflow.pipeline.io import LeadFileWriter, QuarantineFileWriter, prepare_leads, quarantine_lines

HOSTILE = [
    "plain", "a,b", 'say "hi"', '"', "line\nbreak", "cr\rinside", "crlf\r\nx", "=1+1", "+cmd|' /C calc'!A0",
    "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-12", "+3.5", "-.5e-3", "1e3", "+14155550100", "+49 171 8867863",
    "-٣", "+١٢٣", "+٣ 4", "Ada\x00Lovelace", "bell\x07", "esc\x1b[31m", "del\x7f", "Zoë, Müller", "東京", "🙂,x",
    "", " spaced ", "-", "+", "=", "'already", ",", '""', "x\n=1",
]
"""Text cells the writers must write as `defuse` + `to_csv` did: quote triggers, formula starts, plain and E.164
numbers (kept), other scripts' digits (Python's `\\d` takes them), control characters, CR, non-ASCII, empties."""


def expected_csv(frame: pd.DataFrame, header: bool = True) -> bytes:
    """What the writers wrote before: pandas' `to_csv` of the defused frame."""
    return defuse(frame).to_csv(None, index=False, header=header, quoting=csv.QUOTE_MINIMAL).encode("utf-8")


def fast_csv(frame: pd.DataFrame, header: bool = True) -> bytes:
    raw = io.BytesIO()
    handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    csv_out.write_csv(frame, handle, header=header)
    handle.flush()
    return raw.getvalue()


def with_missing(values: list, missing: object) -> list:
    return [*values, missing, *values[:3], missing]


FLOATS = [0.0, -0.0, 0.1 + 0.2, 1e20, 1e16, 1e-7, 5e-324, 1.7976931348623157e308, float("inf"), float("-inf"),
          1.5, 123456789.123, -2.0, 25.0]
TIMES = ["2024-01-01 00:00:00", "2024-03-05 13:45:10", "2024-03-05 13:45:10.123456", "1999-12-31 23:59:59"]
DATES = ["2024-01-01", "2024-02-29", "1970-01-01"]

FRAMES = {
    "object strings": pd.DataFrame({"t": pd.Series(with_missing(HOSTILE, None), dtype=object)}),
    "object strings, NaN and NA": pd.DataFrame({"t": pd.Series([*HOSTILE, np.nan, pd.NA], dtype=object)}),
    "string (NA, pyarrow)": pd.DataFrame({"t": pd.Series(with_missing(HOSTILE, None),
                                                         dtype=pd.StringDtype("pyarrow"))}),
    "string (NA, python)": pd.DataFrame({"t": pd.Series(with_missing(HOSTILE, None),
                                                        dtype=pd.StringDtype("python"))}),
    "str (NaN, default)": pd.DataFrame({"t": pd.Series(with_missing(HOSTILE, None), dtype="str")}),
    "str (NaN, python)": pd.DataFrame({"t": pd.Series(with_missing(HOSTILE, None),
                                                      dtype=pd.StringDtype("python", na_value=np.nan))}),
    "arrow string": pd.DataFrame({"t": pd.Series(with_missing(HOSTILE, None), dtype=pd.ArrowDtype(pa.string()))}),
    "categorical strings": pd.DataFrame({"t": pd.Categorical(with_missing(HOSTILE, None))}),
    "float64": pd.DataFrame({"x": with_missing(FLOATS, np.nan)}),
    "float32": pd.DataFrame({"x": np.array(with_missing([0.0, -0.0, 0.1, 3.3, 1e20, 1e-7, 25.0, float("inf")], np.nan), dtype=np.float32)}),
    "Float64": pd.DataFrame({"x": pd.array(with_missing(FLOATS, None), dtype="Float64")}),
    "Float32": pd.DataFrame({"x": pd.array(with_missing([0.1, -0.0, 3.3, 1e20], None), dtype="Float32")}),
    "Float64 all NA": pd.DataFrame({"x": pd.array([None] * 4, dtype="Float64")}),
    "int64": pd.DataFrame({"i": [0, -1, 2**63 - 1, -(2**63), 42, 42]}),
    "int8": pd.DataFrame({"i": np.array([0, -128, 127, 5], dtype=np.int8)}),
    "uint64": pd.DataFrame({"i": np.array([0, 2**64 - 1, 7], dtype=np.uint64)}),
    "Int64": pd.DataFrame({"i": pd.array(with_missing([0, -5, 2**62, 10], None), dtype="Int64")}),
    "UInt8": pd.DataFrame({"i": pd.array([0, 255, None, 3], dtype="UInt8")}),
    "int64[pyarrow]": pd.DataFrame({"i": pd.array([1, None, -3], dtype="int64[pyarrow]")}),
    "sparse float": pd.DataFrame({"x": pd.arrays.SparseArray([0.0, np.nan, 1.5, 0.0])}),
    "bool": pd.DataFrame({"b": [True, False, True]}),
    "boolean": pd.DataFrame({"b": pd.array([True, None, False, True], dtype="boolean")}),
    "datetime naive": pd.DataFrame({"d": pd.to_datetime(with_missing(TIMES, None), format="ISO8601")}),
    "datetime dates only": pd.DataFrame({"d": pd.to_datetime(with_missing(DATES, None))}),
    "datetime seconds unit": pd.DataFrame({"d": pd.to_datetime(TIMES[:2] + [None], format="ISO8601").astype("datetime64[s]")}),
    "datetime UTC": pd.DataFrame({"d": pd.to_datetime(with_missing(TIMES, None), format="ISO8601").tz_localize("UTC")}),
    "datetime Europe/Berlin": pd.DataFrame({"d": pd.to_datetime(with_missing(DATES, None))
                                            .tz_localize("Europe/Berlin")}),
    "all NaT": pd.DataFrame({"d": pd.to_datetime([None, None])}),
    "timedelta": pd.DataFrame({"d": pd.to_timedelta(["1 day", None, "00:00:01.5"])}),
    "period": pd.DataFrame({"p": pd.period_range("2024-01", periods=3, freq="M")}),
    "interval": pd.DataFrame({"v": pd.arrays.IntervalArray.from_breaks([0, 1.5, 3, 10])}),
    "object mixed": pd.DataFrame({"o": pd.Series(
        [1, 1.0, True, "1", None, np.float64(0.5), np.int64(3), Decimal("1.10"), b"x", "=1", "a,b", 2.5, np.nan,
         pd.Timestamp("2024-01-02 03:04:05"), pd.NaT, pd.NA, -0.0, 1e20, complex(1, 2)], dtype=object)}),
    "object with NaT among strings": pd.DataFrame({"o": pd.Series(["=a", pd.NaT, "b,c"], dtype=object)}),
    "hostile column names": pd.DataFrame({"=SUM(A1)": ["1"], "a,b": ["2"], 'q"uote': ["3"], "\rname": ["4"],
                                          "plain": ["5"]}),
    "non-text column names": pd.DataFrame({0: ["a"], 1.5: ["b"], "x": ["c"]}),
    "empty frame": pd.DataFrame({"a": pd.Series([], dtype="string"), "b": pd.Series([], dtype="Float64")}),
    "no columns": pd.DataFrame(),
    "no columns, rows": pd.DataFrame(index=range(3)),
    "one column of empties": pd.DataFrame({"e": pd.Series(["", None, "x", ""], dtype="string")}),
    "one column of NaN": pd.DataFrame({"e": [np.nan, 1.0]}),
    "repeated column names": pd.DataFrame([["=1", "a"], ["b", "+x y"]], columns=["c", "c"]),
}


def mixed_frame() -> pd.DataFrame:
    """Every dtype side by side (a multi-column row is never written `""`)."""
    rows = 6
    columns = {}
    for name, frame in FRAMES.items():
        if len(frame.columns) == 1 and len(frame) >= 3:
            columns[name] = frame.iloc[:, 0].iloc[:3].reset_index(drop=True).reindex(range(rows))
    return pd.DataFrame(columns)


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("name", [*FRAMES, "every dtype side by side"])
def test_byte_identical_to_pandas(name: str, header: bool) -> None:
    frame = mixed_frame() if name == "every dtype side by side" else FRAMES[name]
    assert fast_csv(frame, header) == expected_csv(frame, header)


def test_sliced_and_chunked_arrow_strings() -> None:
    """Arrow arrays that start at an offset or come in several chunks are read at the right bytes."""
    chunked = pa.chunked_array([pa.array(HOSTILE[:10]), pa.array([None, *HOSTILE[10:]])])
    frame = pd.DataFrame({"t": pd.Series(pd.arrays.ArrowStringArray(chunked)),
                          "u": pd.Series([*HOSTILE, "z"], dtype="string")})
    for part in (frame, frame.iloc[7:], frame.iloc[3:25:2], frame.iloc[::-1]):
        assert fast_csv(part) == expected_csv(part)


def test_datetime_format_follows_pandas_row_chunks() -> None:
    """`to_csv` formats a datetime column per chunk of rows (dates only where a chunk has no time of day): the fast
    writer formats the same chunks."""
    columns = 50
    chunk_rows = 100_000 // columns
    stamps = pd.Series(pd.to_datetime(["2024-01-01"] * chunk_rows + ["2024-01-02 10:30:00"] * chunk_rows,
                                      format="ISO8601"))
    frame = pd.DataFrame({f"c{i}": stamps if i == 0 else pd.Series(np.arange(len(stamps)) * i)
                          for i in range(columns)})
    written = fast_csv(frame)
    assert written == expected_csv(frame)
    assert b"\n2024-01-01," in written and b"\n2024-01-02 10:30:00," in written  # both formats in one file


def test_defuse_arrow_matches_defuse_cell() -> None:
    """The vectorised defusing changes exactly what `defuse_cell` changes, on hostile and random cells."""
    alphabet = ["=", "+", "-", "@", "\t", "\r", "\n", "\x00", "\x1f", "\x7f", "1", "9", "0", ".", "e", "E", "٣", "a",
                " ", ",", '"', "ü", "🙂"]
    rng = random.Random(11)
    cells = [*HOSTILE, *("".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(3000))]
    cells += ["+" + "".join(rng.choices("0123456789", k=rng.randint(1, 17))) for _ in range(300)]
    for kind in (pa.string(), pa.large_string()):
        array = pa.array([*cells, None], type=kind)
        assert defuse_arrow(array).to_pylist() == [*(defuse_cell(c) for c in cells), None]
        assert defuse_arrow(array.slice(5)).to_pylist() == [*(defuse_cell(c) for c in cells[5:]), None]


def test_quote_triggers_are_the_csv_writers() -> None:
    """Probed from this Python's csv writer: at least the delimiter, the quote and the line terminator."""
    assert {",", '"', "\n"} <= set(csv_out.QUOTE_TRIGGERS)


def test_text_handle_without_a_byte_buffer() -> None:
    frame = FRAMES["object strings"]
    handle = io.StringIO()
    csv_out.write_csv(frame, handle, header=True)
    assert handle.getvalue().encode("utf-8") == expected_csv(frame)


def old_lead_file(path: Path, frames: list[pd.DataFrame], extra: tuple[str, ...] = ()) -> bytes:
    """The output file `LeadFileWriter` wrote before the fast writer."""
    with LeadFileWriter(path, extra) as writer:
        for frame in frames:
            out = writer._shaped(frame)
            writer._handle.write(expected_csv(out, header=not writer._wrote_header).decode("utf-8"))
            writer._wrote_header = True
            writer.rows += len(out)
    return path.read_bytes()


def new_lead_file(path: Path, frames: list[pd.DataFrame], extra: tuple[str, ...] = ()) -> bytes:
    with LeadFileWriter(path, extra) as writer:
        for frame in frames:
            writer.append(frame)
    return path.read_bytes()


def pipeline_output(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real pipeline output: messy leads prepared and run through every default stage, and the input quarantine."""
    from leadflow.pipeline.config import load_rules
    from leadflow.stages import pipeline_from_names
    from leadflow.synth import messy_leads

    loaded = prepare_leads(messy_leads(rows, seed=23))
    rules = load_rules(None)
    frame = loaded.frame
    for stage in pipeline_from_names(rules.pipeline):
        frame = stage.apply(frame, rules)
    return frame, loaded.refused.assign(stage="input")


@pytest.fixture(scope="module")
def real_chunk() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pipeline_output(1500)


def test_real_chunks_byte_identical_and_fast(real_chunk: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    frame, quarantine = real_chunk
    extra = ("utm_campaign",)
    chunks = [frame.iloc[:700].assign(utm_campaign="=spring,2026"), frame.iloc[700:]]
    expected = old_lead_file(tmp_path / "old.csv", chunks, extra)

    formatted_by_pandas: list[str] = []
    real = csv_out._pandas_cells
    monkeypatch.setattr(csv_out, "_pandas_cells",
                        lambda series, rows: formatted_by_pandas.append(series.name) or real(series, rows))
    assert new_lead_file(tmp_path / "new.csv", chunks, extra) == expected
    assert formatted_by_pandas == []  # every dtype of real output takes the fast path

    old_quarantine = tmp_path / "old.quarantine.csv"
    with QuarantineFileWriter(old_quarantine, extra) as writer:
        writer._handle.write(expected_csv(quarantine_lines(quarantine, extra), header=False).decode("utf-8"))
    with QuarantineFileWriter(tmp_path / "new.quarantine.csv", extra) as writer:
        writer.append(quarantine)
        writer.append(quarantine.iloc[:0])
    assert len(quarantine) and (tmp_path / "new.quarantine.csv").read_bytes() == old_quarantine.read_bytes()


def test_header_only_and_empty_first_chunk(real_chunk: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    frame = real_chunk[0].head(20)
    assert new_lead_file(tmp_path / "new0.csv", [], ("extra",)) == \
        old_lead_file(tmp_path / "old0.csv", [pd.DataFrame(columns=["extra"])], ("extra",))
    for frames in ([frame.iloc[:0], frame], [frame, frame.iloc[:0], frame]):
        assert new_lead_file(tmp_path / "new.csv", frames) == old_lead_file(tmp_path / "old.csv", frames)
