"""Arrow's streaming CSV reader gives the chunks pandas gives, or hands the file to pandas (`leadflow.pipeline.csv_in`)."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline import csv_in
from leadflow.pipeline.csv_in import arrow_chunks, csv_chunks
from leadflow.pipeline.errors import InputError
from leadflow.pipeline.io import _read_csv, iter_leads


def pandas_chunks(path: Path, rows: int) -> list[pd.DataFrame]:
    with _read_csv(path, chunksize=rows) as reader:
        return list(reader)


def chunks_read(path: Path, rows: int) -> list[pd.DataFrame]:
    """`csv_chunks` as `iter_leads` calls it: with the header pandas reads."""
    return list(csv_chunks(path, rows, _read_csv, list(_read_csv(path, nrows=0).columns)))


def assert_same_chunks(path: Path, rows: int) -> None:
    expected = pandas_chunks(path, rows)
    got = chunks_read(path, rows)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)


def arrow_reads(path: Path, rows: int) -> bool:
    columns = list(_read_csv(path, nrows=0).columns)
    try:
        list(arrow_chunks(path, columns, rows))
    except Exception:  # noqa: BLE001 - any refusal sends the file to pandas
        return False
    return True


EDGE_CASES = {
    "quoted empty is missing": b'email,name\n"",x\n,y\n',
    "bom": b"\xef\xbb\xbfemail,name\na@x.com,2\n",
    "crlf": b"email,name\r\na@x.com,2\r\nb@x.com,4\r\n",
    "cr only": b"email,name\ra@x.com,2\rb@x.com,4\r",
    "line breaks in quotes": b'email,name\n"x\ny",2\n"p\r\nq",3\n',
    "quote after text": b'email,name\n"ab"cd,2\nab"cd,3\n',
    "blank lines skipped": b"email,name\n1,2\n\n\n3,4\n\n",
    "no final newline": b"email,name\n1,2",
    "words pandas could read as missing stay text": b"email,name\nNA,null\nN/A,nan\nNone,#N/A\n",
    "spaces kept": b"email,name\n  a@x.com , 2  \n",
    "doubled quotes": b'email,name\n"he said ""hi""",2\n',
    "duplicate header mangled by pandas": b"email,email,name\n1,2,3\n",
    "unicode": "email,name\nJürgen@x.de,東京\n".encode(),
    "whitespace line (pandas reads a row)": b"email,name\n1,2\n   \n3,4\n",
    "short row (pandas fills)": b"email,name,city\n1,2\n3,4,5\n",
    "trailing delimiter on every row (pandas: index)": b"email,name\n1,2,\n3,4,\n",
    "header only": b"email,name\n",
    "quoted header (pandas alone)": b'"email","na\nme"\n1,2\n',
}


@pytest.mark.parametrize("content", EDGE_CASES.values(), ids=EDGE_CASES.keys())
@pytest.mark.parametrize("rows", [1, 2, 50])
def test_edge_cases_read_as_pandas_reads_them(tmp_path: Path, content: bytes, rows: int) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    assert_same_chunks(path, rows)


def test_arrow_takes_the_plain_cases_and_refuses_the_odd_rows(tmp_path: Path) -> None:
    """The fast path is really taken where it can be (else the tests above would only test pandas against itself)."""
    path = tmp_path / "leads.csv"
    for name in ("quoted empty is missing", "bom", "line breaks in quotes", "doubled quotes", "unicode"):
        path.write_bytes(EDGE_CASES[name])
        assert arrow_reads(path, 2), name
    for name in ("whitespace line (pandas reads a row)", "short row (pandas fills)"):
        path.write_bytes(EDGE_CASES[name])
        assert not arrow_reads(path, 2), name


ALPHABET = ["a", "b", "Z", "0", "7", " ", ",", '"', "\n", "\r\n", "é", "東", "@", ".", "NA", "", "''", "\t", ";"]


def random_field(rng: random.Random) -> str:
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 8)))
    if any(c in text for c in ',"\n\r') or (text and rng.random() < 0.2):
        return '"' + text.replace('"', '""') + '"'
    return text


@pytest.mark.parametrize("seed", range(60))
def test_fuzzed_files_read_as_pandas_reads_them(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    columns = rng.randrange(1, 6)
    lines = [",".join(["email", "lead_id", "name", "city", "phone"][:columns])]
    for _ in range(rng.randrange(0, 40)):
        fields = [random_field(rng) for _ in range(columns)]
        if rng.random() < 0.03:  # now and then a row pandas reads differently or refuses
            fields = fields[: rng.randrange(0, columns + 1)] if rng.random() < 0.5 else [*fields, "x"]
        lines.append(",".join(fields))
    path = tmp_path / "leads.csv"
    path.write_bytes(rng.choice(["\n", "\r\n"]).join(lines).encode() + (b"\n" if rng.random() < 0.8 else b""))
    try:
        expected = pandas_chunks(path, 7)
    except ValueError:
        with pytest.raises(ValueError):
            chunks_read(path, 7)
        return
    got = chunks_read(path, 7)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)


def test_chunks_are_cut_at_the_same_rows_across_arrow_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Arrow's batches follow bytes, not rows: chunks are re-cut to `rows` rows, indexed by position in the file."""
    monkeypatch.setattr(csv_in, "BLOCK_BYTES", 256)  # many small batches
    frame = pd.DataFrame({"email": [f"lead{i}@example.com" for i in range(1_000)],
                          "name": [f'Name "{i}"\nline two' if i % 97 == 0 else f"Name {i}" for i in range(1_000)]})
    path = tmp_path / "leads.csv"
    frame.to_csv(path, index=False)
    assert arrow_reads(path, 64)
    for rows in (1, 64, 333, 1_000, 5_000):
        assert_same_chunks(path, rows)


def test_a_bad_row_after_arrow_chunks_gives_pandas_rows_then_its_error(tmp_path: Path) -> None:
    """Arrow gives the chunks before the row it refuses; pandas takes over from there and names the line."""
    rows = [f"lead{i}@example.com,{i}" for i in range(120)]
    rows[105] += ",surplus"  # more fields than the header: pandas refuses it, naming line 107
    path = tmp_path / "leads.csv"
    path.write_text("email,lead_id\n" + "\n".join(rows) + "\n")
    chunks = iter_leads(path, 50)
    assert [len(next(chunks).frame) for _ in range(2)] == [50, 50]
    with pytest.raises(InputError, match="line 107") as caught:
        next(chunks)
    assert caught.value.row == 107


def test_a_short_row_mid_file_is_read_by_pandas_from_there(tmp_path: Path) -> None:
    rows = [f"lead{i}@example.com,{i},Berlin" for i in range(120)]
    rows[77] = "lead77@example.com,77"  # pandas fills the missing city; Arrow refuses the row
    path = tmp_path / "leads.csv"
    path.write_text("email,lead_id,city\n" + "\n".join(rows) + "\n")
    assert_same_chunks(path, 25)
    assert not arrow_reads(path, 25)


def test_text_that_is_not_utf8_is_refused_as_before(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"email,name\n" + b"a@x.com,ok\n" * 30 + b"b@x.com,\xff\xfe\n")
    with pytest.raises(InputError, match="not UTF-8"):
        list(iter_leads(path, 10))
