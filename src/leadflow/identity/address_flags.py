"""Role-based (info@, sales@) and disposable (mailinator.com) e-mail address flags.

A pure function over Series (not yet a pipeline stage). Both lists are data, kept in leadflow/reference/:
`role_localparts.txt` and `disposable_domains.txt` (the community blocklist; see its header for source and licence).
Each distinct domain is looked at once (`leadflow.pipeline.uniques.map_unique`); local parts, nearly all distinct, go through
vectorised string kernels. 1M addresses take about a second.

- Role: the local part, without a "+tag" and with dots, hyphens and underscores removed, is a listed role
  ("No-Reply+x@acme.com" → "noreply"). A person's name that merely starts with a role word ("infoteam", "salesjane")
  is not a role: a false flag here would hide a real buyer.
- Disposable: the domain or any parent domain is listed ("eu.mailinator.com" counts), never a bare public suffix.
- Missing e-mail: NA in both columns (unknown, not "no").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Final

import pandas as pd

from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.uniques import map_unique

__all__ = [
    "ADDRESS_FLAG_COLUMNS",
    "DISPOSABLE_DOMAINS",
    "ROLE_LOCALPARTS",
    "disposable_domains",
    "flag_addresses",
    "is_disposable_domain",
    "is_role_localpart",
    "role_key",
    "role_localparts",
]

ROLE_LOCALPARTS: Final[Path] = REFERENCE_DIR / "role_localparts.txt"
DISPOSABLE_DOMAINS: Final[Path] = REFERENCE_DIR / "disposable_domains.txt"
ADDRESS_FLAG_COLUMNS: Final[tuple[str, ...]] = ("is_role_email", "is_disposable_email")

_SEPARATORS = re.compile(r"[.\-_]")


def _read_entries(path: Path) -> list[str]:
    """Non-empty, lower-cased lines of a reference list, comments ("#") removed."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            entries.append(entry)
    return entries


def role_key(local_part: str) -> str:
    """Comparison key of a local part: lower case, "+tag" dropped, dots/hyphens/underscores removed."""
    return _SEPARATORS.sub("", local_part.strip().lower().split("+", 1)[0])


def _domain_key(domain: str) -> str:
    return domain.strip().lower().strip(".").lstrip("@")


@cache
def role_localparts() -> frozenset[str]:
    """Role local parts from reference/role_localparts.txt, as `role_key`s."""
    return frozenset(role_key(e) for e in _read_entries(ROLE_LOCALPARTS))


@cache
def disposable_domains() -> frozenset[str]:
    """Disposable domains from reference/disposable_domains.txt."""
    return frozenset(_domain_key(e) for e in _read_entries(DISPOSABLE_DOMAINS))


def is_role_localpart(local_part: str, roles: frozenset[str] | None = None) -> bool:
    """True when `local_part` is a role mailbox (see the module docstring)."""
    key = role_key(local_part)
    return bool(key) and key in (role_localparts() if roles is None else roles)


def is_disposable_domain(domain: str, domains: frozenset[str] | None = None) -> bool:
    """True when `domain` or one of its parent domains is a listed disposable domain."""
    listed = disposable_domains() if domains is None else domains
    labels = _domain_key(domain).split(".")
    # Parents down to two labels: "a.b.mailinator.com" → itself, "b.mailinator.com", "mailinator.com"; a bare
    # "com" is never looked up, so no entry can flag a whole top-level domain.
    return any(".".join(labels[i:]) in listed for i in range(max(len(labels) - 1, 1)))


def flag_addresses(
    email: pd.Series,
    email_domain: pd.Series,
    *,
    extra_roles: Iterable[str] = (),
    extra_disposable: Iterable[str] = (),
) -> pd.DataFrame:
    """Flag role and disposable addresses: ADDRESS_FLAG_COLUMNS as "boolean" on `email.index` (NA: no e-mail).

    `email_domain` (aligned with `email`) is used where given, else the part after the last "@" of the address.
    `extra_roles` / `extra_disposable` add to the reference lists (e.g. from a run config).
    """
    roles = role_localparts() | {role_key(r) for r in extra_roles}
    domains = disposable_domains() | {_domain_key(d) for d in extra_disposable}
    text = email.astype("string").str.strip().str.lower()
    missing = text.isna() | (text == "")
    has_at = text.str.contains("@", regex=False).fillna(False)
    # An address without "@" has no local part or domain to judge: not a role, not disposable (it is invalid, and
    # that is the standardize stage's verdict to give).
    # Regex replacements run in Arrow; str.rsplit would run in Python, once per row.
    local = text.str.replace(r"@[^@]*$", "", regex=True).where(has_at)
    own_domain = text.str.replace(r"^.*@", "", regex=True).where(has_at)
    domain = email_domain.astype("string").reindex(email.index).str.strip().str.lower()
    domain = domain.where(domain.notna() & (domain != ""), own_domain)

    # Local parts are nearly all distinct, so the role key is computed with vectorised string kernels (the same
    # steps as `role_key`) rather than once per distinct value; domains repeat, so they go through map_unique.
    key = local.str.replace(r"\+.*$", "", regex=True).str.replace(r"[.\-_]", "", regex=True)
    role = (key.isin(list(roles)) & (key != "")).fillna(False).astype("boolean")
    disposable = map_unique(domain, lambda v: is_disposable_domain(v, domains), dtype="boolean").fillna(False)
    return pd.DataFrame(
        {
            "is_role_email": role.mask(missing).astype("boolean"),
            "is_disposable_email": disposable.mask(missing).astype("boolean"),
        },
        index=email.index,
    )
