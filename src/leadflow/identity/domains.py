"""Free-mail domains, kept as data (reference/free_email_domains.txt); a leaf module every stage may import."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Final

from leadflow.pipeline.settings import REFERENCE_DIR

FREE_EMAIL_DOMAINS: Final[Path] = REFERENCE_DIR / "free_email_domains.txt"


@cache
def free_email_matcher() -> tuple[frozenset[str], re.Pattern[str] | None]:
    """(exact domains, pattern for `name.*` entries) from reference/free_email_domains.txt."""
    exact: set[str] = set()
    bases: set[str] = set()
    for line in FREE_EMAIL_DOMAINS.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if entry.endswith(".*"):
            bases.add(re.escape(entry[:-2]))
        else:
            exact.add(entry)
    # name.<tld> or name.<second level>.<country>: yahoo.com, yahoo.de, yahoo.co.uk, yahoo.com.br
    pattern = (
        re.compile(rf"(?:{'|'.join(sorted(bases))})\.(?:[a-z]{{2,6}}|(?:co|com|net|org|ne|or|ac)\.[a-z]{{2}})")
        if bases
        else None
    )
    return frozenset(exact), pattern


def is_free_domain(domain: str) -> bool:
    """True when `domain` is a consumer mailbox provider (reference/free_email_domains.txt)."""
    exact, pattern = free_email_matcher()
    return domain in exact or (pattern is not None and pattern.fullmatch(domain) is not None)
