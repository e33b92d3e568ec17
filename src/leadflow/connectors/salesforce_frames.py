"""Pulled Salesforce records → leadflow frames: a Lead page in canonical columns (with `source_modstamp` and
`_pull_error`, why a record is broken), and the datetime and number readings pulls and writes share.

Pure functions (no I/O). Records arrive as the REST API's query JSON (datetimes like `2024-05-01T12:00:00.000+0000`,
numbers as JSON numbers) or, in a backfill, as Bulk API 2.0 query CSV read into the same dicts by salesforce_bulk
(every value text, empty = null; "Get Results for a Query Job":
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd

from leadflow.connectors.base import CURSOR_COLUMN
from leadflow.connectors.salesforce_mapping import SYSTEM, ObjectMapping
from leadflow.pipeline.schema import (
    BOOLEAN_COLUMNS,
    NUMERIC_COLUMNS,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    conform,
    dtype_of,
    number_fits,
    number_problem,
)

PULL_ERROR_COLUMN: Final = "_pull_error"
_FAST_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


def iso_utc(value: Any) -> str | None:
    """Salesforce datetime → ISO-8601 UTC with milliseconds and `Z`; None when it is not a datetime."""
    if not isinstance(value, str):
        return None
    if _FAST_STAMP.match(value):
        return value[:23] + "Z"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def _canonical_datetime(value: Any) -> str | None:
    """A pulled Salesforce datetime as leadflow's canonical text, `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, UTC): what
    the stages write (lifecycle stamps), so a value leadflow wrote compares equal when it is read back."""
    iso = iso_utc(value)
    return None if iso is None else iso[:19] + "Z"


def to_frame(records: list[dict[str, Any]], mapping: ObjectMapping) -> pd.DataFrame:
    """Canonical columns + `source_modstamp` + `_pull_error` (why a record is broken; NA when it is fine)."""
    select = mapping.select()
    readers = [(name, spec) for name, spec in mapping.fields.items() if spec.read]
    rows: list[dict[str, Any]] = []
    for record in records:
        problems: list[str] = []
        missing = [name for name in select if name not in record]
        if missing:
            problems.append(f"missing fields: {', '.join(missing)}")
        row: dict[str, Any] = {"lead_id": record.get(mapping.id_field), "source": SYSTEM}
        stamp = iso_utc(record.get(mapping.modstamp_field))
        if stamp is None and mapping.modstamp_field not in missing:
            problems.append(f"{mapping.modstamp_field}: not a datetime")
        row[CURSOR_COLUMN] = stamp
        for name, spec in readers:
            value = record.get(name)
            if value is None:
                row[spec.column] = None
            elif spec.type == "boolean":
                if isinstance(value, bool):
                    row[spec.column] = value != spec.invert
                else:
                    row[spec.column] = None
                    problems.append(f"{name}: not a boolean ({str(value)[:40]!r})")
            elif spec.type == "datetime":
                row[spec.column] = _canonical_datetime(value)
                if row[spec.column] is None:
                    problems.append(f"{name}: not a datetime ({str(value)[:40]!r})")
                elif not TIMESTAMP_MIN.year <= int(row[spec.column][:4]) <= TIMESTAMP_MAX.year:
                    row[spec.column] = None
                    problems.append(f"{name}: datetime outside {TIMESTAMP_MIN.year}-{TIMESTAMP_MAX.year} "
                                    f"({str(value)[:40]!r})")
            elif spec.type == "number":
                dtype = NUMERIC_COLUMNS[spec.column]
                row[spec.column] = pulled_number(value, dtype)
                if row[spec.column] is None:
                    problems.append(f"{name}: {number_problem(value, dtype)} ({_shown(value)})")
            else:
                if not isinstance(value, str):
                    problems.append(f"{name}: not text ({type(value).__name__})")
                    value = str(value)
                if spec.type == "picklist" and spec.values is not None and value not in spec.values:
                    problems.append(f"{name}: unknown picklist value {value[:40]!r}")
                row[spec.column] = value
        row[PULL_ERROR_COLUMN] = "; ".join(problems) or None
        rows.append(row)
    columns = ["lead_id", "source", *(spec.column for _, spec in readers), CURSOR_COLUMN, PULL_ERROR_COLUMN]
    frame = pd.DataFrame(rows, columns=columns)
    for column in frame.columns:
        if column in NUMERIC_COLUMNS:
            values = pd.to_numeric(frame[column].astype(object), errors="coerce")
            frame[column] = (values.round() if NUMERIC_COLUMNS[column] == "Int64" else values).astype(dtype_of(column))
        else:
            frame[column] = frame[column].astype("boolean" if column in BOOLEAN_COLUMNS else "string")
    return conform(frame)


def pulled_number(value: Any, dtype: str = "Float64") -> float | None:
    """A number field's value (JSON number, or text from Bulk API CSV) as a float; None when it is not one or does
    not fit `dtype` (inf, NaN, beyond float range, or beyond the Int64 range for Int64 columns)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    except (ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
        return None
    return number if number_fits(number, dtype) else None


def _shown(value: Any) -> str:
    """A value for a `_pull_error` message, at most 40 characters (str() of a 4,300+ digit int raises ValueError)."""
    try:
        text = str(value)
    except ValueError:
        text = "an integer of over 4300 digits"
    return repr(text[:40])
