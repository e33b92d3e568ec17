"""Lead files in and out: CSV or Parquet, with errors naming the file, row and column."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.distance import OSA

from leadflow.pipeline.csv_in import csv_chunks
from leadflow.pipeline.csv_out import write_csv
from leadflow.pipeline.errors import InputError
from leadflow.pipeline.schema import (
    BOOLEAN_COLUMNS,
    CANONICAL_COLUMNS,
    IDENTITY_COLUMNS,
    INPUT_COLUMNS,
    NUMERIC_COLUMNS,
    conform,
    dtype_of,
    lead_keys,
    number_problem,
    parse_bool,
    parse_number,
)

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")
_LINE_IN_PARSER_ERROR = re.compile(r"line (\d+)")
TYPO_EDITS = 1
"""A header this many edits (a letter added, dropped, changed, or two swapped; separators ignored) from an input
column the file lacks is taken for a misspelling of it, and the file is refused: `e_mail`, `emial`, `compnay`."""
log = logging.getLogger(__name__)
_COLUMN_WORDS = frozenset(word for column in CANONICAL_COLUMNS for word in column.split("_"))


@dataclass
class LoadedLeads:
    """Rows read from a file: those fit to process, and those refused with a reason (quarantined at `input`)."""

    frame: pd.DataFrame
    refused: pd.DataFrame
    path: str
    ignored: tuple[str, ...] = ()
    """Headers that are not leadflow columns: no stage reads them; they are carried to the output as they are."""

    @property
    def rows_in(self) -> int:
        return len(self.frame) + len(self.refused)


def _normalise_header(name: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _check_path(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(str(path), f"unsupported file type {suffix!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if not path.exists():
        raise InputError(str(path), "file not found")
    if not path.is_file():
        raise InputError(str(path), "not a file")


_READ_ERRORS = (OSError, ValueError)
"""What reading a lead file raises for a bad file (pandas' EmptyDataError and ParserError, UnicodeDecodeError and
PermissionError among them); `_read_error` says which in one line."""


def _read_error(path: Path, exc: Exception) -> InputError:
    if isinstance(exc, pd.errors.EmptyDataError):
        return InputError(str(path), "file is empty (no header row)")
    if isinstance(exc, pd.errors.ParserError):
        match = _LINE_IN_PARSER_ERROR.search(str(exc))
        return InputError(str(path), f"malformed CSV: {str(exc).strip()}", row=int(match.group(1)) if match else None)
    if isinstance(exc, UnicodeDecodeError):
        return InputError(str(path), f"not UTF-8 text (byte {exc.start}): save the file as UTF-8")
    if isinstance(exc, PermissionError):
        return InputError(str(path), "permission denied")
    return InputError(str(path), f"cannot read: {exc}")


def _read_csv(path: Path, **options: Any) -> Any:
    return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig", **options)


def _read_raw(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """The file's rows (its first `nrows`) as raw strings; a Parquet file's head is read from its first row group,
    not the whole file."""
    _check_path(path)
    try:
        if path.suffix.lower() == ".csv":
            return _read_csv(path, nrows=nrows)
        if nrows is None:
            return pd.read_parquet(path).astype("string")
        import pyarrow as pa
        import pyarrow.parquet as pq

        file = pq.ParquetFile(path)
        batch = next(file.iter_batches(batch_size=max(1, nrows)), None)
        table = file.schema_arrow.empty_table() if batch is None else pa.Table.from_batches([batch])
        return table.to_pandas().head(nrows).astype("string")
    except _READ_ERRORS as exc:
        raise _read_error(path, exc) from None


def _normalised(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    headers = [_normalise_header(c) for c in raw.columns]
    duplicates = sorted({h for h in headers if headers.count(h) > 1})
    if duplicates:
        raise InputError(str(path), f"duplicate column(s) after normalising headers: {duplicates}")
    raw.columns = headers
    if not any(c in raw.columns for c in IDENTITY_COLUMNS):
        typos = _misspelled(headers)
        raise InputError(
            str(path),
            f"needs an 'email' or a 'lead_id' column; found {list(raw.columns)}"
            + (f"; {_typo_message(typos)}" if typos else ""),
        )
    return raw


def _bare(name: str) -> str:
    return name.replace("_", "")


def _misspelled(headers: list[str]) -> dict[str, list[str]]:
    """Unknown header → the input columns absent from the file that it is nearest to, when that is `TYPO_EDITS` edits
    or fewer; an exact column, or a word leadflow's column names use (`stage`, `owner`), is never a misspelling."""
    present = set(headers)
    absent = [c for c in INPUT_COLUMNS if c not in present]
    out: dict[str, list[str]] = {}
    for header in headers:
        if header in CANONICAL_COLUMNS or header in _COLUMN_WORDS:  # `stage` is a word (lifecycle_stage), not `state`
            continue
        distance = {c: min(OSA.distance(header, c), OSA.distance(_bare(header), _bare(c))) for c in absent}
        best = min(distance.values(), default=TYPO_EDITS + 1)
        if best <= TYPO_EDITS:
            out[header] = [c for c in absent if distance[c] == best]
    return out


def _suggestion(columns: list[str]) -> str:
    return " or ".join(repr(c) for c in columns)


def _typo_message(typos: dict[str, list[str]]) -> str:
    return "; ".join(
        f"column {header!r} is not a leadflow column; did you mean {_suggestion(columns)}?"
        for header, columns in typos.items()
    )


@dataclass(frozen=True)
class HeaderCheck:
    """What a lead file's header holds besides leadflow's columns (misspelt ones have already refused the file)."""

    path: str
    ignored: tuple[str, ...]
    """Headers that are not leadflow columns, carried through unchanged."""
    hints: dict[str, str]
    """Ignored header → an input column the file lacks whose words it holds (`email_address`: `email`), for the
    warning's "did you mean"."""

    @property
    def warning(self) -> str | None:
        """One line naming the ignored columns, or None when every header is a leadflow column."""
        if not self.ignored:
            return None
        named = ", ".join(
            repr(h) + (f" (did you mean {self.hints[h]!r}?)" if h in self.hints else "") for h in self.ignored
        )
        if len(self.ignored) == 1:
            return (f"{self.path}: 1 column is not a leadflow column; no stage reads it, and it is carried to the "
                    f"output unchanged: {named}")
        return (f"{self.path}: {len(self.ignored)} columns are not leadflow columns; no stage reads them, and they are "
                f"carried to the output unchanged: {named}")


def check_columns(headers: list[str], path: Path | str) -> HeaderCheck:
    """Check normalised headers: a likely misspelling of a leadflow input column the file lacks refuses the file
    (InputError, one line, naming each with its "did you mean"); other unknown headers are reported as ignored."""
    typos = _misspelled(headers)
    if typos:
        raise InputError(str(path), _typo_message(typos) + " (rename it; a column of your own needs a name less like "
                         "leadflow's)")
    present = set(headers)
    absent = [c for c in INPUT_COLUMNS if c not in present]
    ignored = tuple(h for h in headers if h not in CANONICAL_COLUMNS)
    hints: dict[str, str] = {}
    for header in ignored:
        words = set(header.split("_"))
        holds = [c for c in absent if set(c.split("_")) <= words]  # email_address holds email, job_title title
        if holds:
            hints[header] = max(holds, key=lambda c: c.count("_"))
    return HeaderCheck(str(path), ignored, hints)


def check_header(path: Path | str) -> HeaderCheck:
    """Cheap up-front check that a file is a readable lead file (type, existence, header, misspelt columns); returns
    the columns leadflow will ignore (`read_leads` logs them once, as a warning)."""
    path = Path(path)
    return check_columns(list(_normalised(_read_raw(path, nrows=5), path).columns), path)


def read_leads(path: Path | str) -> LoadedLeads:
    """Read a lead file; refuse the file on structural problems (a misspelt column among them), and single rows with
    a reason on row problems. Columns that are not leadflow's are carried through, and named once in a warning."""
    path = Path(path)
    line = 2 if path.suffix.lower() == ".csv" else 1  # CSV line numbers count the header
    raw = _normalised(_read_raw(path), path)
    header = check_columns(list(raw.columns), path)
    if header.warning:
        log.warning(header.warning)
    return replace(prepare_leads(raw, str(path), first_line=line), ignored=header.ignored)


DEFAULT_CHUNK_ROWS = 50_000
"""Rows a streamed file is read, processed and written in at a time (`leadflow run --chunk-rows`): a run's memory is
that of one chunk, whatever the file's size."""


def iter_leads(path: Path | str, rows_per_chunk: int = DEFAULT_CHUNK_ROWS) -> Iterator[LoadedLeads]:
    """`read_leads` a chunk at a time: the same checks, refusals and row numbers, each chunk's index continuing the
    last one's, so positions are the file's. A file with a header and no rows gives one empty chunk."""
    path = Path(path)
    line = 2 if path.suffix.lower() == ".csv" else 1
    header: HeaderCheck | None = None
    start = 0
    for raw in _raw_chunks(path, max(1, rows_per_chunk)):
        raw = _normalised(raw, path)
        if header is None:
            header = check_columns(list(raw.columns), path)
            if header.warning:
                log.warning(header.warning)
        loaded = prepare_leads(raw, str(path), first_line=line, start=start)
        start += len(raw)
        yield replace(loaded, ignored=header.ignored)
    if header is None:
        yield read_leads(path)


def _raw_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows as raw string frames of `rows` rows, with `_read_raw`'s errors."""
    header = _read_raw(path, nrows=0)  # type, existence, header and readability, with their errors
    if path.suffix.lower() == ".csv":
        # Arrow where it reads as pandas does
        chunks: Iterator[pd.DataFrame] = csv_chunks(path, rows, _read_csv, list(header.columns))
    else:
        import pyarrow.parquet as pq

        chunks = (batch.to_pandas().astype("string") for batch in pq.ParquetFile(path).iter_batches(batch_size=rows))
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except _READ_ERRORS as exc:
                raise _read_error(path, exc) from None
            yield chunk
    finally:
        chunks.close()  # the CSV reader's file (a generator's close for Parquet)


def prepare_leads(raw: pd.DataFrame, label: str = "(frame)", *, first_line: int = 1, start: int = 0) -> LoadedLeads:
    """Trim, type and check raw string rows; rows with no identity or an unreadable boolean or number are refused.
    `start`: the position of the first row in its file (a later chunk of a streamed file), for row numbers and the
    frame's index, so both stay unique across the file."""
    raw = raw.copy(deep=False)  # copy-on-write: the caller's frame is never modified
    raw.index = pd.RangeIndex(start, start + len(raw))
    for column in raw.columns:
        if column not in BOOLEAN_COLUMNS and raw[column].dtype == "string":
            raw[column] = raw[column].str.strip().replace("", pd.NA)

    reasons = pd.Series(pd.NA, index=raw.index, dtype="string")
    columns = pd.Series(pd.NA, index=raw.index, dtype="string")
    for column in sorted(BOOLEAN_COLUMNS & set(raw.columns)):
        parsed, bad = parse_bool(raw[column])
        if bad.any():
            shown = raw[column].where(bad).str.strip().str.slice(0, 40).map(repr, na_action="ignore").astype("string")
            reasons = reasons.fillna((column + ": unrecognised value " + shown).where(bad))
            columns = columns.fillna(pd.Series(column, index=raw.index, dtype="string").where(bad))
        raw[column] = parsed
    for column in sorted(set(NUMERIC_COLUMNS) & set(raw.columns)):
        parsed, bad = parse_number(raw[column], NUMERIC_COLUMNS[column])
        if bad.any():
            dtype = NUMERIC_COLUMNS[column]
            shown = raw[column].where(bad).map(
                lambda v, d=dtype: f"{number_problem(v, d)} {str(v).strip()[:40]!r}", na_action="ignore"
            )
            reasons = reasons.fillna((column + ": " + shown.astype("string")).where(bad))
            columns = columns.fillna(pd.Series(column, index=raw.index, dtype="string").where(bad))
        raw[column] = parsed
    has_identity = pd.Series(False, index=raw.index)
    for column in IDENTITY_COLUMNS:
        if column in raw.columns:
            has_identity |= raw[column].notna()
    missing_identity = ~has_identity
    reasons = reasons.mask(missing_identity, "row has neither email nor lead_id")
    columns = columns.mask(missing_identity, "email")

    frame = conform(raw)
    refused_mask = reasons.notna().to_numpy()
    refused_rows = frame[refused_mask]
    records = refused_rows.astype(object).where(refused_rows.notna(), None).to_dict("records")
    refused = pd.DataFrame(
        {
            "lead_key": lead_keys(refused_rows).to_numpy(),
            "expectation": "leadflow_input_row",
            "column": columns[refused_mask].to_numpy(),
            "reason": [f"row {i + first_line}: {r}" for i, r in zip(refused_rows.index, reasons[refused_mask], strict=True)],
            "row": records,
            "position": refused_rows.index.to_numpy(),
        },
        index=refused_rows.index,
    )
    return LoadedLeads(frame=frame[~refused_mask], refused=refused, path=label)


def to_output(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical columns first, booleans as `true`/`false`, unknown as empty."""
    out = conform(frame)
    for column in BOOLEAN_COLUMNS:
        out[column] = _bool_text(out[column])
    return out


_TRUE = pa.scalar("true", type=pa.large_string())
_FALSE = pa.scalar("false", type=pa.large_string())


def _bool_text(values: pd.Series) -> pd.Series:
    """`true`/`false` as a `string` column, missing stays missing: what `values.map({True: "true", False: "false"},
    na_action="ignore").astype("string")` gives, in one Arrow call for a `boolean` column."""
    if values.dtype != "boolean":
        return values.map({True: "true", False: "false"}, na_action="ignore").astype("string")
    missing = values.isna().to_numpy()
    flags = pa.array(values.to_numpy(dtype=bool, na_value=False), mask=missing if missing.any() else None)
    return pd.Series(pd.array(pc.if_else(flags, _TRUE, _FALSE), dtype="string"), index=values.index, name=values.name)


def _publish(tmp: Path, path: Path) -> None:
    """Move a finished temporary file into place with the permissions a new file gets (mkstemp made it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)
    os.replace(tmp, path)


class _StagedFile:
    """A file written to a temporary file beside `path` and moved into place whole by `commit()` (once; later calls
    only return the path); `close()` without a commit removes it. Subclasses close their writers in `_finish`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.rows = 0
        self._committed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)

    def _finish(self) -> None:
        """Close what writes to the temporary file (called by both `commit` and `close`; must be idempotent)."""

    def commit(self) -> Path:
        if not self._committed:
            self._committed = True
            self._finish()
            _publish(self._tmp, self.path)
        return self.path

    def close(self) -> None:
        self._finish()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            self.commit()
        self.close()


def _atomic_write(path: Path, write: callable) -> None:  # type: ignore[valid-type]
    with _StagedFile(path) as staged:
        write(staged._tmp)


def write_leads(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write leads with every canonical column; the file appears whole or not at all."""
    with LeadFileWriter(path) as writer:
        writer.append(frame)
    return Path(path)


class LeadFileWriter(_StagedFile):
    """Processed leads appended chunk by chunk (CSV or Parquet) to a temporary file beside `path`, moved into place
    whole by `commit()`; nothing appears at `path` when the run fails (`close()` without a commit removes it).

    Every chunk has every canonical column (`to_output`), then the input's own extra columns, in the first chunk's
    order. A CSV cell never starts a formula (OWASP CSV injection, `leadflow.pipeline.csvsafe`)."""

    def __init__(self, path: Path | str, extra_columns: tuple[str, ...] = ()) -> None:
        super().__init__(path)
        self.parquet = self.path.suffix.lower() in (".parquet", ".pq")
        self.extra_columns = tuple(extra_columns)
        self._columns: list[str] | None = None
        self._parquet_writer: Any = None
        self._handle = None if self.parquet else self._tmp.open("w", encoding="utf-8", newline="")

    def _shaped(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = to_output(frame)
        if self._columns is None:
            extras = [c for c in out.columns if c not in CANONICAL_COLUMNS]
            self._columns = [*CANONICAL_COLUMNS, *extras, *(c for c in self.extra_columns if c not in extras)]
        return out.reindex(columns=self._columns)

    def append(self, frame: pd.DataFrame) -> None:
        out = self._shaped(frame)
        if self.parquet:
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(out, preserve_index=False)
            if self._parquet_writer is None:
                self._parquet_writer = pq.ParquetWriter(self._tmp, table.schema)
            self._parquet_writer.write_table(table.cast(self._parquet_writer.schema))
        else:
            write_csv(out, self._handle, header=not self._wrote_header)  # defused: OWASP CSV injection, see csvsafe
            self._wrote_header = True
        self.rows += len(out)

    _wrote_header = False

    def commit(self) -> Path:
        if not self._committed and (self._columns is None or (self.parquet and self._parquet_writer is None)):
            self.append(pd.DataFrame(columns=list(self.extra_columns)))  # no rows: the header (schema) alone
        return super().commit()

    def _finish(self) -> None:
        if self._parquet_writer is not None:
            self._parquet_writer.close()
            self._parquet_writer = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def quarantine_path(output: Path | str) -> Path:
    """`<output>.quarantine.csv` beside the output file."""
    output = Path(output)
    return output.with_name(output.name + ".quarantine.csv")


QUARANTINE_HEAD = ["stage", "expectation", "reason", "lead_key"]


def write_quarantine(quarantine: pd.DataFrame, path: Path | str) -> Path:
    """One line per quarantined row: stage, expectations, reasons, then the row's canonical columns."""
    with QuarantineFileWriter(path) as writer:
        writer.append(quarantine)
    return Path(path)


def quarantine_lines(quarantine: pd.DataFrame, extra_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Quarantine records as the quarantine file's lines: one per row (its expectations and reasons joined), then
    the row's canonical columns and the input's extra columns."""
    columns = [*QUARANTINE_HEAD, *CANONICAL_COLUMNS, *extra_columns]
    if not len(quarantine):
        return pd.DataFrame(columns=columns)
    head = _one_per_row(quarantine)
    if head is None:
        grouped = quarantine.groupby(["stage", "position"], sort=False)
        head = grouped.agg(
            expectation=("expectation", "; ".join),
            reason=("reason", "; ".join),
            lead_key=("lead_key", "first"),
            row=("row", "first"),
        ).reset_index()
    rows = pd.DataFrame(list(head["row"]))
    body = to_output(_unparsed_blanks(rows)) if len(rows) else rows
    out = pd.concat([head[QUARANTINE_HEAD].reset_index(drop=True), body.reset_index(drop=True)], axis=1)
    return out.reindex(columns=columns)


def _unparsed_blanks(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with a canonical column no row has a value in replaced by the all-unknown column `conform` would make
    of it, all added in one go (`conform` leaves a column of the right dtype as it is, and adds them one by one)."""
    present = rows.notna().any().to_numpy() | ~rows.columns.isin(CANONICAL_COLUMNS)
    if present.all():
        return rows
    kept = rows.loc[:, present]
    blanks = [column for column in CANONICAL_COLUMNS if column not in kept.columns]
    if not blanks:
        return kept
    return pd.concat([kept, pd.DataFrame({column: pd.array([pd.NA] * len(rows), dtype=dtype_of(column))
                                          for column in blanks}, index=rows.index)], axis=1)


def _one_per_row(quarantine: pd.DataFrame) -> pd.DataFrame | None:
    """The records as they are when each row was quarantined once (one expectation, one reason, text both): what
    grouping them by stage and position would give, without the grouping. None otherwise."""
    keys = quarantine[["stage", "position"]]
    text = quarantine[["expectation", "reason"]]
    if keys.isna().any(axis=None) or keys.duplicated().any() or text.isna().any(axis=None):
        return None
    if not all(isinstance(value, str) for column in text for value in text[column].unique()):
        return None
    return quarantine[["stage", "position", "expectation", "reason", "lead_key", "row"]].reset_index(drop=True)


class QuarantineFileWriter(_StagedFile):
    """The quarantine file (`quarantine_lines`) appended chunk by chunk, like `LeadFileWriter`; `commit()` moves it
    into place, header and all, even when no row was quarantined."""

    def __init__(self, path: Path | str, extra_columns: tuple[str, ...] = ()) -> None:
        super().__init__(path)
        self.extra_columns = tuple(extra_columns)
        self._handle: Any = self._tmp.open("w", encoding="utf-8", newline="")
        quarantine_lines(pd.DataFrame(), self.extra_columns).to_csv(self._handle, index=False)  # the header

    def append(self, quarantine: pd.DataFrame) -> None:
        if len(quarantine):
            lines = quarantine_lines(quarantine, self.extra_columns)
            write_csv(lines, self._handle, header=False)  # defused: OWASP CSV injection, see csvsafe
            self.rows += len(lines)

    def _finish(self) -> None:
        self._handle.close()
