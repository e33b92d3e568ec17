"""The canonical lead schema: column names and types are part of leadflow's interface."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from leadflow.pipeline.errors import ConfigError

CORE_INPUT_COLUMNS: Final[tuple[str, ...]] = (
    "lead_id",
    "source",
    "email",
    "first_name",
    "last_name",
    "company",
    "title",
    "phone",
    "country",
    "state",
    "city",
    "postal_code",
    "website",
    "lead_source",
    "email_opt_in",
    "created_at",
    "updated_at",
    "owner_id",
    "status",
)
"""The person and their form or CRM record."""

FIRMOGRAPHIC_COLUMNS: Final[tuple[str, ...]] = ("employees", "annual_revenue", "industry")
"""Company facts; on input they are what the CRM holds (possibly set by a person), after `enrich` the best known."""

CRM_STATE_COLUMNS: Final[tuple[str, ...]] = ("is_converted",)
"""What the CRM says about the record itself, read-only for leadflow: `is_converted` (Salesforce `IsConverted`): a
converted lead is never routed and never written (Salesforce refuses it: CANNOT_UPDATE_CONVERTED_LEAD). Unknown
(a file, a MAP) counts as not converted."""

INPUT_COLUMNS: Final[tuple[str, ...]] = CORE_INPUT_COLUMNS + FIRMOGRAPHIC_COLUMNS + CRM_STATE_COLUMNS
"""Columns a lead file may carry; all optional except that one of `email`/`lead_id` must be present."""

IDENTITY_COLUMNS: Final[tuple[str, ...]] = ("lead_id", "email")

DERIVED_COLUMNS: Final[tuple[str, ...]] = (
    "country_code",
    "state_code",
    "phone_e164",
    "email_valid",
    "email_domain",
    "is_free_email",
    "seniority",
    "department",
    "consent_required",
    "mailable",
    "mailable_reason",
    "account_id",
    "account_owner_id",
    "account_match_method",
    "account_match_confidence",
    "duplicate_of",
    "duplicate_confidence",
    "segment",
    "enrichment_source",
    "enrichment_note",
    "is_role_email",
    "is_disposable_email",
    "fit_score",
    "engagement_score",
    "score",
    "grade",
    "rating",
    "score_reasons",
    "score_model_version",
    "lifecycle_stage",
    "lifecycle_reason",
    "mql_at",
    "sal_at",
    "sql_at",
    "recycled_at",
    "routing_rule",
    "routing_reason",
    "assigned_at",
    "sla_due_at",
)
"""Columns the stages add."""

CANONICAL_COLUMNS: Final[tuple[str, ...]] = INPUT_COLUMNS + DERIVED_COLUMNS

BOOLEAN_COLUMNS: Final[frozenset[str]] = frozenset(
    {"email_opt_in", "email_valid", "is_free_email", "consent_required", "mailable", "is_role_email",
     "is_disposable_email", "is_converted"}
)
NUMERIC_COLUMNS: Final[dict[str, str]] = {
    "employees": "Int64",
    "annual_revenue": "Float64",
    "account_match_confidence": "Float64",
    "duplicate_confidence": "Float64",
    "fit_score": "Float64",
    "engagement_score": "Float64",
    "score": "Float64",
}
"""Numeric columns and their nullable pandas dtype."""

SENIORITIES: Final[tuple[str, ...]] = ("c_level", "vp", "director", "manager", "individual", "unknown")
DEPARTMENTS: Final[tuple[str, ...]] = (
    "sales",
    "marketing",
    "it",
    "engineering",
    "finance",
    "hr",
    "operations",
    "executive",
    "other",
)

YES_NO_WORDS_FILE: Final[Path] = Path(__file__).resolve().parents[1] / "reference" / "yes_no_words.yaml"
"""The words a boolean column accepts, per language (en, de, fr, es, it, pt, nl, sv, da, no, pl, fi): data, not code."""

# Letters NFKD does not decompose into a base letter and an accent.
_UNACCENTED = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"})
_SEPARATORS = re.compile(r"[\s_\-]+")


def fold_word(text: str) -> str:
    """A word as the yes/no table compares it: case-folded, accents dropped, `-`/`_`/spaces read as one space."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_UNACCENTED)
    return _SEPARATORS.sub(" ", bare).strip()


def _load_yes_no_words(path: Path) -> dict[str, bool]:
    """The folded word → True/False table; a word meaning both, or a malformed file, is refused naming its place."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"cannot read the yes/no word table: {exc}") from None
    languages = data.get("languages") if isinstance(data, dict) else None
    if not isinstance(languages, dict) or not languages:
        raise ConfigError(str(path), "needs a mapping of languages", yaml_path="languages")
    words: dict[str, bool] = {}
    origin: dict[str, str] = {}
    for language, entry in languages.items():
        for key, meaning in (("true", True), ("false", False)):
            where = f"languages.{language}.{key}"
            listed = entry.get(key, []) if isinstance(entry, dict) else None
            if not isinstance(listed, list) or not all(isinstance(w, str) and fold_word(w) for w in listed):
                raise ConfigError(str(path), "needs a list of quoted words", yaml_path=where)
            for word in listed:
                folded = fold_word(word)
                if words.get(folded, meaning) != meaning:
                    raise ConfigError(str(path), f"{word!r} means {meaning} here but {not meaning} at "
                                      f"{origin[folded]}", yaml_path=where)
                words[folded], origin[folded] = meaning, where
    return words


YES_NO_WORDS: Final[dict[str, bool]] = _load_yes_no_words(YES_NO_WORDS_FILE)
"""Folded word (see `fold_word`) → the boolean it means."""
TRUE_WORDS: Final[frozenset[str]] = frozenset(w for w, v in YES_NO_WORDS.items() if v) | frozenset(
    w.replace(" ", "-") for w, v in YES_NO_WORDS.items() if v
)
"""Lower-case words that mean true (folded, and with `-` for spaces: `opt in`, `opt-in`), for exact-match callers."""
FALSE_WORDS: Final[frozenset[str]] = frozenset(w for w, v in YES_NO_WORDS.items() if not v) | frozenset(
    w.replace(" ", "-") for w, v in YES_NO_WORDS.items() if not v
)


def dtype_of(column: str) -> str:
    """The pandas dtype a canonical column carries in memory."""
    if column in BOOLEAN_COLUMNS:
        return "boolean"
    return NUMERIC_COLUMNS.get(column, "string")


def empty_column(column: str, index: pd.Index) -> pd.Series:
    """An all-unknown column of the right dtype."""
    return pd.Series(pd.NA, index=index, dtype=dtype_of(column), name=column)


def parse_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse free-text booleans (the yes/no words of `YES_NO_WORDS_FILE`, in any case, with or without accents);
    returns (parsed as `boolean`, mask of values that are neither true, false nor empty)."""
    text = values.astype("string").str.strip()
    uniques = text.dropna().unique()
    mapping: dict[str, bool | None] = {}
    for value in uniques:  # few distinct values, however many rows
        folded = fold_word(value)
        if folded in YES_NO_WORDS:
            mapping[value] = YES_NO_WORDS[folded]
        elif value == "":
            mapping[value] = None
    parsed = text.map(mapping).astype("boolean")
    bad = text.notna() & ~text.isin(list(mapping))
    return parsed, bad


_NUMBER = re.compile(r"^(?P<num>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*(?P<unit>[kmb])?$")
_UNITS: Final[dict[str, float]] = {"k": 1e3, "m": 1e6, "b": 1e9}


def _number(text: str) -> float | None:
    cleaned = text.strip().lower().replace(",", "").replace("_", "").replace(" ", "")
    cleaned = cleaned.lstrip("$€£").removesuffix("+")
    if re.match(r"^\d[\d.kmb]*-\d", cleaned):  # a band such as "51-200" or "1k-5k": its lower bound, known to be true
        cleaned = cleaned.split("-", 1)[0]
    match = _NUMBER.match(cleaned)
    if not match:
        return None
    return float(match["num"]) * _UNITS.get(match["unit"] or "", 1.0)


# The timestamps leadflow accepts: whole years inside pandas' datetime64[ns] span (1677-09-21..2262-04-11), which
# later stages use; expectations/leads_standardize.json's created_at/updated_at regex allows the same years.
TIMESTAMP_MIN: Final[pd.Timestamp] = pd.Timestamp("1678-01-01T00:00:00Z")
TIMESTAMP_MAX: Final[pd.Timestamp] = pd.Timestamp("2261-12-31T23:59:59Z")
_INT64_LIMIT: Final[float] = 2.0**63  # the first magnitude an Int64 cannot hold (floats below it are exact integers)


def _fits(values: np.ndarray, dtype: str) -> np.ndarray:
    """Which parsed floats fit `dtype`: finite, and for Int64 inside the signed 64-bit range after rounding."""
    fits = np.isfinite(values)
    if dtype == "Int64":
        with np.errstate(invalid="ignore"):
            fits &= np.abs(np.round(values)) < _INT64_LIMIT
    return fits


def number_fits(number: float, dtype: str = "Float64") -> bool:
    """Whether one parsed number fits a column of `dtype` (finite; inside the Int64 range for Int64)."""
    return bool(_fits(np.array([number], dtype=float), dtype)[0])


def parse_number(values: pd.Series, dtype: str = "Float64") -> tuple[pd.Series, pd.Series]:
    """Parse numbers as CRMs and forms write them (`1,200`, `$5M`, `2.5k`, `51-200` → 51); returns (parsed as
    `dtype`, mask of values that are not empty and not a number, or a number that does not fit `dtype`: infinite,
    `1e309`, beyond the Int64 range; those parse to NA; ranges are for GX suites to judge)."""
    if values.dtype in ("Int64", "int64"):
        return values.astype(dtype), pd.Series(False, index=values.index)
    if values.dtype in ("Float64", "float64"):
        floats = values.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        present = values.notna().to_numpy(dtype=bool)
    else:
        text = values.astype("string").str.strip()
        mapping = {value: _number(value) for value in text.dropna().unique()}
        numbers = pd.to_numeric(text.map(mapping), errors="coerce").astype("Float64")
        floats = numbers.to_numpy(dtype=float, na_value=np.nan)
        present = (text.notna() & (text != "")).fillna(False).to_numpy(dtype=bool)
    fits = _fits(floats, dtype)
    bad = pd.Series(present & ~fits, index=values.index)
    kept = np.where(fits, floats, np.nan)
    if dtype == "Int64":
        kept = np.round(kept)
    parsed = pd.Series(pd.array(kept, dtype="Float64"), index=values.index)  # NaN → NA
    return parsed.astype(dtype), bad


def number_problem(value: object, dtype: str = "Float64") -> str:
    """Why `parse_number` refused one value: "not a number" or "out of range for <dtype>" (inf, NaN, overflow)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"out of range for {dtype}"
    text = str(value).strip()
    if text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return f"out of range for {dtype}"
    return "not a number" if _number(text) is None else f"out of range for {dtype}"


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with every canonical column present and typed; extra columns are kept as they are."""
    out = frame.copy(deep=False)  # copy-on-write: columns are shared until replaced
    for column in CANONICAL_COLUMNS:
        if column not in out.columns:
            out[column] = empty_column(column, out.index)
        elif column in BOOLEAN_COLUMNS:
            if out[column].dtype != "boolean":
                out[column] = parse_bool(out[column])[0]
        elif column in NUMERIC_COLUMNS:
            if out[column].dtype != NUMERIC_COLUMNS[column]:
                out[column] = parse_number(out[column], NUMERIC_COLUMNS[column])[0]
        elif out[column].dtype != "string":
            out[column] = out[column].astype("string")
    ordered = list(CANONICAL_COLUMNS) + [c for c in out.columns if c not in CANONICAL_COLUMNS]
    return out[ordered]


def lead_keys(frame: pd.DataFrame) -> pd.Series:
    """The key the audit trail and quarantine use: `source:lead_id` when there is an id, else the lower-cased email."""
    keys = _arrow_lead_keys(frame)
    return pandas_lead_keys(frame) if keys is None else keys


def pandas_lead_keys(frame: pd.DataFrame) -> pd.Series:
    """`lead_keys` in pandas: for columns that are not pyarrow strings (and the reference the Arrow path is tested
    against)."""
    lead_id = frame["lead_id"] if "lead_id" in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
    email = frame["email"] if "email" in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
    source = frame["source"].fillna("file") if "source" in frame else pd.Series("file", index=frame.index)
    with_id = source.astype("string") + ":" + lead_id.astype("string").str.strip()
    by_email = "email:" + email.astype("string").str.strip().str.lower()
    return with_id.fillna(by_email).astype("string")


def _arrow_text(frame: pd.DataFrame, column: str) -> pa.ChunkedArray | None | bool:
    """The column's Arrow strings when it is a pyarrow `string` column; None when absent; False otherwise."""
    if column not in frame:
        return None
    series = frame[column]
    if not isinstance(series, pd.Series) or series.dtype != pd.StringDtype("pyarrow"):
        return False
    return series.array._pa_array  # type: ignore[attr-defined]


def _arrow_lead_keys(frame: pd.DataFrame) -> pd.Series | None:
    """`lead_keys` in a few Arrow kernels, for frames whose key columns are pyarrow `string` columns (what pandas'
    `+`, `str.strip`, `str.lower` and `fillna` on such columns run: `binary_join_element_wise`, `utf8_trim_whitespace`,
    `utf8_lower`, `coalesce`); None for any other frame (its columns are converted the pandas way)."""
    lead_id, email, source = (_arrow_text(frame, c) for c in ("lead_id", "email", "source"))
    if any(part is False for part in (lead_id, email, source)):
        return None
    rows, text = len(frame), pa.large_string()
    source = (pa.repeat(pa.scalar("file", text), rows) if source is None
              else pc.fill_null(pc.cast(source, text), pa.scalar("file", text)))
    with_id = pa.nulls(rows, text) if lead_id is None else pc.binary_join_element_wise(
        source, pc.utf8_trim_whitespace(pc.cast(lead_id, text)), pa.scalar(":", text))
    keys = with_id.combine_chunks() if isinstance(with_id, pa.ChunkedArray) else with_id
    if keys.null_count and email is not None:  # the e-mail key only where there is no id
        no_id = keys.is_null()
        emails = pc.cast(email, text).filter(no_id)
        by_email = pc.binary_join_element_wise(pa.scalar("email:", text), pc.utf8_lower(pc.utf8_trim_whitespace(
            emails)), pa.scalar("", text))
        keys = pc.replace_with_mask(keys, no_id, by_email.combine_chunks())
    return pd.Series(pd.array(keys, dtype="string"), index=frame.index)
