"""Per-record matching keys of the reference frames, computed once and stored beside the records.

`match_accounts` and `find_duplicates` need, for every CRM account and every existing Lead/Contact, keys that cost
Python work per value (registrable domains via tldextract, normalized company and person names). A CRM mirror keeps
them next to each record: `prepare_accounts` / `prepare_existing` add them as "string" columns (computed per distinct
value and mapped back); the matchers use the columns when a frame has them and compute them when it does not, with
identical results either way. A record's keys depend on that record only, so a mirror recomputes them for the rows
that changed, and for all rows when `keys_fingerprint()` changes (new reference lists or a new key definition).

Account keys (ACCOUNT_KEY_COLUMNS):

- domain_key: the registrable domain matching uses for the account: from `domain`, else `website`
  ("https://www.acme.co.uk/x" → "acme.co.uk"); NA when none, or when it is a free-mail domain (never an account's).
- name_key: `normalize_company(name)` ("The Acme, Inc." → "acme"); NA when empty.

Existing-record keys (EXISTING_KEY_COLUMNS):

- email_key: the normalized address (trimmed, lower case, "+tag" dropped); NA when not an address.
- first_key / last_key: `first_name_key(first_name)` / `last_name_key(last_name)`; NA when empty.
- company_key: `normalize_company(company)`; NA when empty.
- domain_key: the corporate registrable domain (from `email_domain` when the frame has it, else the address);
  NA for free-mail or none.

A batch reads only the rows sharing a key with it (one Arrow `is_in` per key column: `keys_in`). For many batches
against the same records, build `leadflow.identity.records.RecordIndex(prepared)` once and pass it to
`find_duplicates` instead of the frame: no per-batch pass over the records at all.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadflow.identity.domains import FREE_EMAIL_DOMAINS, is_free_domain
from leadflow.identity.normalize import (
    COMPANY_SUFFIXES,
    corporate_domains,
    first_name_key,
    last_name_key,
    normalize_company,
    normalize_emails,
    registered_domains,
)
from leadflow.pipeline.uniques import map_unique

__all__ = [
    "ACCOUNT_KEY_COLUMNS",
    "EXISTING_KEY_COLUMNS",
    "KEYS_REVISION",
    "keys_fingerprint",
    "keys_in",
    "prepare_accounts",
    "prepare_existing",
    "with_account_keys",
    "with_existing_keys",
]

ACCOUNT_KEY_COLUMNS: Final[tuple[str, ...]] = ("domain_key", "name_key")
EXISTING_KEY_COLUMNS: Final[tuple[str, ...]] = ("email_key", "first_key", "last_key", "company_key", "domain_key")
KEYS_REVISION: Final[int] = 1
"""Bumped whenever a key's definition changes: stored keys of an older revision must be recomputed."""


def keys_fingerprint() -> str:
    """Identifies everything stored keys depend on besides the record: this module's KEYS_REVISION, the company
    suffix list, the free-mail list and tldextract's version (its bundled public-suffix snapshot). Store it with the
    keys; when it changes, recompute them all."""
    digest = hashlib.sha256(f"leadflow-keys:{KEYS_REVISION}:tldextract {version('tldextract')}".encode())
    for path in (COMPANY_SUFFIXES, FREE_EMAIL_DOMAINS):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def keys_in(keys: pd.Series, values: Any) -> np.ndarray:
    """Per row: is its key one of `values` (Python strings)? NA never is. A writable boolean array.

    Arrow's hash lookup: `Series.isin` builds the value set with a Python loop, slow for a big batch's keys."""
    if not len(values):
        return np.zeros(len(keys), dtype=bool)
    data = pa.chunked_array(keys.astype("string").array.__arrow_array__())
    value_set = pa.array(np.asarray(values, dtype=object), type=data.type)
    found = pc.fill_null(pc.is_in(data, value_set=value_set), False)
    return np.array(found.to_numpy(zero_copy_only=False), dtype=bool)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """`frame[name]` as strings, or an all-NA column when it is absent."""
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _blank_to_na(values: pd.Series) -> pd.Series:
    values = values.astype("string")
    return values.mask((values == "").fillna(False).to_numpy(dtype=bool))


def _account_key(frame: pd.DataFrame, name: str) -> pd.Series:
    if name == "domain_key":
        domain = registered_domains(_column(frame, "domain").fillna(_column(frame, "website")))
        free = map_unique(domain, is_free_domain, dtype="boolean").fillna(False).to_numpy(dtype=bool)
        return domain.mask(free)
    return _blank_to_na(map_unique(_column(frame, "name"), normalize_company))


def _existing_key(frame: pd.DataFrame, name: str, email_key: pd.Series | None = None) -> pd.Series:
    if name == "email_key":
        return normalize_emails(_column(frame, "email"))
    if name == "domain_key":
        email = normalize_emails(_column(frame, "email")) if email_key is None else email_key
        return corporate_domains(_column(frame, "email_domain"), email)
    source, fn = {
        "first_key": ("first_name", first_name_key),
        "last_key": ("last_name", last_name_key),
        "company_key": ("company", normalize_company),
    }[name]
    return _blank_to_na(map_unique(_column(frame, source), fn))


def _with_keys(frame: pd.DataFrame, names: tuple[str, ...], compute: dict[str, pd.Series]) -> pd.DataFrame:
    out = frame.copy(deep=False)
    for name in names:
        out[name] = compute[name].astype("string").array  # positional: any index, even a duplicated one
    return out


def prepare_accounts(accounts: pd.DataFrame) -> pd.DataFrame:
    """`accounts` (ACCOUNT_COLUMNS, optionally `domain`) plus ACCOUNT_KEY_COLUMNS, recomputed from the record
    columns (so preparing twice gives the same frame). The input frame is not modified; any index is kept."""
    base = accounts.reset_index(drop=True)
    return _with_keys(accounts, ACCOUNT_KEY_COLUMNS, {k: _account_key(base, k) for k in ACCOUNT_KEY_COLUMNS})


def prepare_existing(existing: pd.DataFrame) -> pd.DataFrame:
    """`existing` (EXISTING_COLUMNS, optionally `email_domain`) plus EXISTING_KEY_COLUMNS, recomputed from the
    record columns (so preparing twice gives the same frame). The input frame is not modified; any index is kept."""
    return _with_keys(existing, EXISTING_KEY_COLUMNS, _existing_keys(existing, EXISTING_KEY_COLUMNS, None))


def with_account_keys(accounts: pd.DataFrame) -> pd.DataFrame:
    """`accounts` as is when it has every ACCOUNT_KEY_COLUMNS column, else with the missing ones computed."""
    missing = tuple(k for k in ACCOUNT_KEY_COLUMNS if k not in accounts.columns)
    if not missing:
        return accounts
    base = accounts.reset_index(drop=True)
    return _with_keys(accounts, missing, {k: _account_key(base, k) for k in missing})


def with_existing_keys(existing: pd.DataFrame) -> pd.DataFrame:
    """`existing` as is when it has every EXISTING_KEY_COLUMNS column, else with the missing ones computed."""
    missing = tuple(k for k in EXISTING_KEY_COLUMNS if k not in existing.columns)
    if not missing:
        return existing
    stored = existing["email_key"] if "email_key" in existing.columns else None
    return _with_keys(existing, missing, _existing_keys(existing, missing, stored))


def _existing_keys(existing: pd.DataFrame, names: tuple[str, ...], email: pd.Series | None) -> dict[str, pd.Series]:
    """The key columns `names` of `existing` (positional; `email`: its email_key when already known)."""
    base = existing.reset_index(drop=True)
    email = _existing_key(base, "email_key") if email is None else email.reset_index(drop=True).astype("string")
    return {k: email if k == "email_key" else _existing_key(base, k, email) for k in names}
