"""Write receipts: how a sync recognizes its own writes when they come back in the next pull (the "echo").

Writing a lead moves its modification stamp, so the next incremental pull returns every lead the previous run wrote.
After a page is processed, each lead gets a receipt: a 64-bit hash of the lead as it stands in the system after the
write, i.e. the values as pulled (every pulled column but the stamps and pull errors) overlaid with the values that
were written and landed, in the form the system will return them (text cut to fit its field, as the write did). On
the next pull a lead whose values hash to its receipt changed only by our own write (or not at all): it is skipped.
A person's edit after our write changes some value, hence the hash, and the lead is processed.

A lead with no receipt, or a null one (its write failed, or it was quarantined), is always processed. A wrong guess
about what the system returns makes the hash differ, so its cost is a lead processed again, not an edit missed.

Pure functions (no I/O). Hashes come from `pandas.util.hash_array` over a normalized text form of each column, joined
per row, so they do not depend on the frame's dtypes: a value compares by the text the system returns for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadflow.connectors.base import CURSOR_COLUMN
from leadflow.connectors.salesforce_fit import CUTTABLE_TYPES, FieldRule, cut_at_word
from leadflow.connectors.salesforce_org import cached_lead_rules
from leadflow.pipeline.ledger import as_text
from leadflow.pipeline.schema import BOOLEAN_COLUMNS, NUMERIC_COLUMNS, parse_bool
from leadflow.sync.writeback import RECORD_ID

RECEIPT_COLUMNS: Final[tuple[str, ...]] = ("lead_key", "receipt", "run_id", "at")
"""What `StateStore.write_receipts` takes: `receipt` is the int64 hash, or NA for "process it whenever pulled"."""
NOT_HASHED: Final[frozenset[str]] = frozenset({CURSOR_COLUMN, "_pull_error", "updated_at"})
"""Columns left out of a receipt: the modification stamps (`source_modstamp`; `updated_at` is the system's last
modified date, Salesforce LastModifiedDate), which every write moves, and the reason a record could not be read."""
STAMP_COLUMNS: Final[frozenset[str]] = frozenset(
    {"created_at", "mql_at", "sal_at", "sql_at", "recycled_at", "assigned_at", "sla_due_at"})
"""Canonical datetime columns: compared as whole seconds, UTC (a system may keep milliseconds we did not write)."""
_MISSING: Final[str] = "\x00"
"""Stands for a missing value in the hashed text: no pulled or written value is this string."""
_SEPARATOR: Final[str] = "\x1f\x00"
"""Between a row's texts when they are joined to be hashed (a control sequence no field value holds)."""


@dataclass(frozen=True)
class ReceiptSpec:
    """How a system holds the values a receipt covers.

    `columns` and `datetimes` normalize every value compared (the pulled ones and the written ones alike),
    so they come from the field mapping alone, the same on every run. `overlay` and `lengths` describe what a write
    does, and only shape the written values: the columns whose written field is the field they are read from (a
    column written to one field and read from another does not show the write), and text cut to a field's length
    (`salesforce_fit.cut_at_word`, as the write fits it). Numbers come back as written: through the API a number
    field keeps every decimal it is given, whatever its scale (Salesforce Help, knowledge article 000212661, "Why is
    the field of data type number storing more numbers in decimal places than defined?":
    https://help.salesforce.com/apex/HTViewSolution?id=000212661), so they compare unrounded."""

    overlay: frozenset[str] = frozenset()
    columns: tuple[str, ...] | None = None
    """The columns hashed (those the system's pulls fill); None: every column of the pulled frame."""
    datetimes: frozenset[str] = STAMP_COLUMNS
    lengths: Mapping[str, int] = field(default_factory=dict)


def receipt_spec(lead_mapping: Any | None, writable: Sequence[str],
                 rules: Mapping[str, FieldRule] | None = None) -> ReceiptSpec:
    """The spec of a system: from a Salesforce Lead `ObjectMapping` (field name → spec with column, type, read,
    write) and the org's describe `rules` when known; for a system without such a mapping (Marketo,
    HubSpot: one field per column), every `writable` column comes back as written."""
    if lead_mapping is None:
        return ReceiptSpec(overlay=frozenset(writable))
    rules = rules or {}
    overlay: set[str] = set()
    read = {"lead_id", "source"}
    datetimes, lengths = set(STAMP_COLUMNS), {}
    for name, spec in lead_mapping.fields.items():
        if not spec.read:
            continue
        read.add(spec.column)
        if spec.type == "datetime":
            datetimes.add(spec.column)
        if not spec.write:
            continue
        overlay.add(spec.column)
        rule = rules.get(name)
        if spec.type in ("string", "picklist") and rule is not None and rule.type in CUTTABLE_TYPES and rule.length:
            lengths[spec.column] = rule.length
    return ReceiptSpec(frozenset(overlay), tuple(sorted(read - NOT_HASHED)), frozenset(datetimes), lengths)


def connector_receipt_spec(connector: Any) -> ReceiptSpec:
    """The spec of a connector's system: a Salesforce connector's Lead mapping and, once a write fetched it, its
    org's Lead describe (read from the connector's cache: no API call); for other connectors their writable columns."""
    mapping = getattr(connector, "mapping", None)
    lead = getattr(mapping, "objects", {}).get("Lead") if mapping is not None else None
    rules = cached_lead_rules(connector) if lead is not None else None
    return receipt_spec(lead, tuple(getattr(connector, "writable_columns", ())), rules)


def hashed_columns(frame: pd.DataFrame, spec: ReceiptSpec) -> list[str]:
    """The columns a receipt covers, in a fixed order: the spec's (those of them the frame has), else every
    column of the pulled frame but `NOT_HASHED`."""
    names = spec.columns if spec.columns is not None else frame.columns
    return sorted(str(c) for c in names if c in frame.columns and c not in NOT_HASHED)


def receipt_text(values: pd.Series, column: str, spec: ReceiptSpec) -> pd.Series:
    """`values` as the text compared: booleans `true`/`false`; numbers as Float64 (whole for Int64 columns);
    datetimes as `YYYY-MM-DDTHH:MM:SSZ`; empty text as missing (Salesforce keeps no empty text: it reads back null)."""
    if values.isna().all():
        return pd.Series(pd.NA, index=values.index, dtype="string")
    if column in spec.datetimes:
        # few distinct stamps per page: parse each once and map back
        raw = values.astype("string")
        distinct = raw.dropna().unique()
        stamps = pd.to_datetime(pd.Series(distinct, dtype="string"), utc=True, errors="coerce", format="ISO8601")
        canonical = stamps.dt.floor("s").dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("string").fillna(
            pd.Series(distinct, dtype="string"))
        text = raw.map(dict(zip(distinct, canonical, strict=True))).astype("string")
    elif column in NUMERIC_COLUMNS:
        numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
        numbers = (values if numeric else pd.to_numeric(values.astype("string").str.strip(), errors="coerce"))
        numbers = numbers.astype("Float64")
        if NUMERIC_COLUMNS[column] == "Int64":
            numbers = numbers.round()  # written as a whole number (salesforce_write._as_number)
        text = numbers.astype("string").fillna(values.astype("string"))
    elif column in BOOLEAN_COLUMNS or values.dtype == "boolean":
        flags = values if values.dtype == "boolean" else parse_bool(values)[0]
        text = as_text(flags.rename(column))
    else:
        text = values.astype("string")
    return text.mask(text == "").astype("string")


def receipt_texts(frame: pd.DataFrame, spec: ReceiptSpec) -> pd.DataFrame:
    """The normalized text of every hashed column of `frame` (string dtype, NA for missing), index kept."""
    return pd.DataFrame({c: receipt_text(frame[c], c, spec) for c in hashed_columns(frame, spec)},
                        index=frame.index)


def hash_texts(texts: pd.DataFrame) -> pd.Series:
    """One int64 per row of a `receipt_texts` table: the row's texts joined (in Arrow) behind the column names, so a
    receipt made with another set of columns never matches, then hashed by `pandas.util.hash_array`."""
    if texts.empty:
        return pd.Series(np.zeros(len(texts), dtype=np.int64), index=texts.index, dtype="int64")
    names = pa.array(np.full(len(texts), "\x1f".join(map(str, texts.columns)), dtype=object), type=pa.string())
    columns = [pa.array(texts[c], type=pa.string()) for c in texts.columns]
    joined = pc.binary_join_element_wise(names, *columns, _SEPARATOR, null_handling="replace",
                                         null_replacement=_MISSING)
    hashed = pd.util.hash_array(joined.to_numpy(zero_copy_only=False), categorize=False)
    return pd.Series(hashed.view(np.int64), index=texts.index, dtype="int64")


def receipt_hashes(frame: pd.DataFrame, spec: ReceiptSpec) -> pd.Series:
    """The receipt hash of each pulled lead as it is (int64, index of `frame`)."""
    return hash_texts(receipt_texts(frame, spec))


def written_values(values: pd.Series, column: str, spec: ReceiptSpec) -> pd.Series:
    """The values of one written column as the system keeps them: text cut to the field's length as the write
    fitted it (only the few values too long go through `cut_at_word`)."""
    if column not in spec.lengths:
        return values
    text = values.astype("string")
    limit = spec.lengths[column]
    long = (text.str.len() > limit).fillna(False).to_numpy(dtype=bool)
    if long.any():
        text = text.copy()
        text[long] = [cut_at_word(str(v), limit) for v in text[long]]
    return text


def after_write_hashes(pulled: pd.DataFrame, sent: pd.DataFrame, written: Collection[str],
                       spec: ReceiptSpec) -> pd.Series:
    """The receipt hash of each lead of `pulled` as the system holds it after the write: the values as pulled,
    overlaid, for the records in `written` only, with the values `sent` (`record_id` plus one column per written
    column, NA where nothing was sent; refused values already cleared) of the `spec.overlay` columns.

    `sent` shares `pulled`'s index (a subset of it)."""
    texts = receipt_texts(pulled, spec)
    if sent.empty or not written:
        return hash_texts(texts)
    landed = sent[RECORD_ID].astype("string").isin({str(w) for w in written}).fillna(False).to_numpy(dtype=bool)
    rows = sent[landed]
    for column in rows.columns:
        if column == RECORD_ID or column not in spec.overlay or column not in texts.columns:
            continue
        values = rows[column][rows[column].notna().to_numpy(dtype=bool)]
        if values.empty:
            continue
        texts.loc[values.index, column] = receipt_text(written_values(values, column, spec), column, spec)
    return hash_texts(texts)


def echo_mask(keys: pd.Series, hashes: pd.Series, stored: pd.Series) -> np.ndarray:
    """Per lead (positionally): does its hash equal its stored receipt? `stored`: lead_key → receipt (int64 or NA
    for "always process"); keys without one are not echoes."""
    known = stored.dropna()
    if known.empty or keys.empty:
        return np.zeros(len(keys), dtype=bool)
    lookup = pd.Index(known.index.astype(str))
    positions = lookup.get_indexer(keys.astype("string").fillna(_MISSING).astype(str).to_numpy())
    found = positions >= 0
    receipts = known.to_numpy(dtype=np.int64)[np.where(found, positions, 0)]
    return found & (receipts == hashes.to_numpy(dtype=np.int64))


def receipt_rows(keys: pd.Series, hashes: pd.Series, run_id: str, at: datetime) -> pd.DataFrame:
    """Rows for `StateStore.write_receipts`: one per lead key (the last one wins), NA hashes kept as "always process";
    leads without a key are left out."""
    frame = pd.DataFrame({"lead_key": keys.astype("string").to_numpy(),
                          "receipt": pd.array(hashes, dtype="Int64")})  # not via numpy: NA makes it float
    frame = frame[frame["lead_key"].notna().to_numpy(dtype=bool)].drop_duplicates("lead_key", keep="last")
    frame["run_id"] = run_id
    frame["at"] = at
    return frame[list(RECEIPT_COLUMNS)].reset_index(drop=True)
