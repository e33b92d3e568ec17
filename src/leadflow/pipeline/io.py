"""Lead files in and out: CSV or Parquet, with errors naming the file, row and column."""

from __future__ import annotations

import csv
import logging
import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from rapidfuzz.distance import OSA

from leadflow.pipeline.csvsafe import defuse
from leadflow.pipeline.errors import InputError
from leadflow.pipeline.schema import (
    BOOLEAN_COLUMNS,
    CANONICAL_COLUMNS,
    IDENTITY_COLUMNS,
    INPUT_COLUMNS,
    NUMERIC_COLUMNS,
    conform,
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


def _read_raw(path: Path, nrows: int | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(str(path), f"unsupported file type {suffix!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    if not path.exists():
        raise InputError(str(path), "file not found")
    if not path.is_file():
        raise InputError(str(path), "not a file")
    try:
        if suffix == ".csv":
            return pd.read_csv(
                path,
                dtype="string",
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8-sig",
                nrows=nrows,
            )
        frame = pd.read_parquet(path)
        return (frame if nrows is None else frame.head(nrows)).astype("string")
    except pd.errors.EmptyDataError:
        raise InputError(str(path), "file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        match = _LINE_IN_PARSER_ERROR.search(str(exc))
        row = int(match.group(1)) if match else None
        raise InputError(str(path), f"malformed CSV: {str(exc).strip()}", row=row) from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start}): save the file as UTF-8") from None
    except PermissionError:
        raise InputError(str(path), "permission denied") from None
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from None


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


def prepare_leads(raw: pd.DataFrame, label: str = "(frame)", *, first_line: int = 1) -> LoadedLeads:
    """Trim, type and check raw string rows; rows with no identity or an unreadable boolean or number are refused."""
    raw = raw.copy(deep=False)  # copy-on-write: the caller's frame is never modified
    raw.index = pd.RangeIndex(len(raw))
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
        out[column] = out[column].map({True: "true", False: "false"}, na_action="ignore").astype("string")
    return out


def _atomic_write(path: Path, write: callable) -> None:  # type: ignore[valid-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_leads(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write leads with every canonical column; the file appears whole or not at all."""
    path = Path(path)
    out = to_output(frame)
    if path.suffix.lower() in (".parquet", ".pq"):
        _atomic_write(path, lambda tmp: out.to_parquet(tmp, index=False))
    else:
        # OWASP CSV injection: no cell may start a formula in a spreadsheet (Parquet is not evaluated, left as is)
        safe = defuse(out)
        _atomic_write(path, lambda tmp: safe.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL))
    return path


def quarantine_path(output: Path | str) -> Path:
    """`<output>.quarantine.csv` beside the output file."""
    output = Path(output)
    return output.with_name(output.name + ".quarantine.csv")


def write_quarantine(quarantine: pd.DataFrame, path: Path | str) -> Path:
    """One line per quarantined row: stage, expectations, reasons, then the row's canonical columns."""
    path = Path(path)
    if len(quarantine):
        grouped = quarantine.groupby(["stage", "position"], sort=False)
        head = grouped.agg(
            expectation=("expectation", "; ".join),
            reason=("reason", "; ".join),
            lead_key=("lead_key", "first"),
            row=("row", "first"),
        ).reset_index()
        rows = pd.DataFrame(list(head["row"]))
        body = to_output(rows) if len(rows) else rows
        out = pd.concat(
            [head[["stage", "expectation", "reason", "lead_key"]].reset_index(drop=True), body.reset_index(drop=True)],
            axis=1,
        )
    else:
        out = pd.DataFrame(columns=["stage", "expectation", "reason", "lead_key", *CANONICAL_COLUMNS])
    safe = defuse(out)  # OWASP CSV injection: see leadflow.pipeline.csvsafe
    _atomic_write(path, lambda tmp: safe.to_csv(tmp, index=False))
    return path
