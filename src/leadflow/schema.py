"""The canonical lead schema: column names and types are part of leadflow's interface."""

from __future__ import annotations

from typing import Final

import pandas as pd

INPUT_COLUMNS: Final[tuple[str, ...]] = (
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
)
"""Columns the stages add."""

CANONICAL_COLUMNS: Final[tuple[str, ...]] = INPUT_COLUMNS + DERIVED_COLUMNS

BOOLEAN_COLUMNS: Final[frozenset[str]] = frozenset(
    {"email_opt_in", "email_valid", "is_free_email", "consent_required", "mailable"}
)

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

TRUE_WORDS: Final[frozenset[str]] = frozenset({"true", "t", "yes", "y", "1", "opt-in", "opted in", "opt in", "subscribed"})
FALSE_WORDS: Final[frozenset[str]] = frozenset(
    {"false", "f", "no", "n", "0", "opt-out", "opted out", "opt out", "unsubscribed"}
)


def dtype_of(column: str) -> str:
    """The pandas dtype a canonical column carries in memory."""
    return "boolean" if column in BOOLEAN_COLUMNS else "string"


def empty_column(column: str, index: pd.Index) -> pd.Series:
    """An all-unknown column of the right dtype."""
    return pd.Series(pd.NA, index=index, dtype=dtype_of(column), name=column)


def parse_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse free-text booleans; returns (parsed as `boolean`, mask of values that are neither true, false nor empty)."""
    text = values.astype("string").str.strip().str.lower()
    uniques = text.dropna().unique()
    mapping: dict[str, bool | None] = {}
    for value in uniques:
        if value in TRUE_WORDS:
            mapping[value] = True
        elif value in FALSE_WORDS:
            mapping[value] = False
        elif value == "":
            mapping[value] = None
    parsed = text.map(mapping).astype("boolean")
    bad = text.notna() & ~text.isin(list(mapping))
    return parsed, bad


def conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with every canonical column present and typed; extra columns are kept as they are."""
    out = frame.copy(deep=False)  # copy-on-write: columns are shared until replaced
    for column in CANONICAL_COLUMNS:
        if column not in out.columns:
            out[column] = empty_column(column, out.index)
        elif column in BOOLEAN_COLUMNS:
            if out[column].dtype != "boolean":
                out[column] = parse_bool(out[column])[0]
        elif out[column].dtype != "string":
            out[column] = out[column].astype("string")
    ordered = list(CANONICAL_COLUMNS) + [c for c in out.columns if c not in CANONICAL_COLUMNS]
    return out[ordered]


def lead_keys(frame: pd.DataFrame) -> pd.Series:
    """The key the audit trail and quarantine use: `source:lead_id` when there is an id, else the lower-cased email."""
    lead_id = frame["lead_id"] if "lead_id" in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
    email = frame["email"] if "email" in frame else pd.Series(pd.NA, index=frame.index, dtype="string")
    source = frame["source"].fillna("file") if "source" in frame else pd.Series("file", index=frame.index)
    with_id = source.astype("string") + ":" + lead_id.astype("string").str.strip()
    by_email = "email:" + email.astype("string").str.strip().str.lower()
    return with_id.fillna(by_email).astype("string")
