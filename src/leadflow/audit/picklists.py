"""Picklist values as people meant them: a mapping file (canonical name → aliases, e.g.
`src/leadflow/reference/lead_sources.yaml`) and folding (case, accents, spaces and punctuation ignored), so "Paid
search" and "PAID-SEARCH" count as "Paid Search" and "Tradeshow" as "Trade Show". A value the file does not know is
kept (its most frequent spelling stands for every spelling that folds alike) and listed with its count, never
dropped."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import pandas as pd
import yaml

from leadflow.pipeline.errors import ConfigError

LEAD_SOURCES_FILE: Final[Path] = Path(__file__).resolve().parents[1] / "reference" / "lead_sources.yaml"
_NOT_WORD: Final = re.compile(r"[\W_]+", re.UNICODE)


def fold(value: str) -> str:
    """The comparison key of a picklist value: accents removed, case folded, everything but letters and digits
    dropped ("Paid-search " → "paidsearch")."""
    decomposed = unicodedata.normalize("NFKD", str(value))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_WORD.sub("", bare.casefold())


@dataclass(frozen=True)
class Picklist:
    """Folded name or alias → canonical name."""

    canonical: dict[str, str]
    source: str

    def normalize(self, values: pd.Series, missing: str) -> tuple[pd.Series, dict[str, int]]:
        """(each value's canonical name — `missing` for an empty one, an unknown value's most frequent spelling
        for it —, the unknown values with their counts, most first). Works on the distinct values."""
        text = values.astype("string").str.strip()
        text = text.mask(text == "")
        counts = text.value_counts(dropna=True)
        names: dict[str, str] = {}
        unknown_spelling: dict[str, str] = {}
        unknown: dict[str, int] = {}
        for raw, n in counts.items():  # most frequent first: the first spelling of a key stands for it
            key = fold(str(raw))
            if key in self.canonical:
                names[str(raw)] = self.canonical[key]
                continue
            if not key:
                names[str(raw)] = missing
                continue
            spelling = unknown_spelling.setdefault(key, str(raw))
            names[str(raw)] = spelling
            unknown[spelling] = unknown.get(spelling, 0) + int(n)
        mapped = text.map(names).astype("object")
        mapped = mapped.where(text.notna(), missing)
        ordered = dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
        return mapped, ordered


def parse_picklist(document: object, source: str) -> Picklist:
    """A picklist from a parsed YAML mapping (canonical name → list of aliases); a bad entry or an alias claimed by
    two names is a `ConfigError` naming the YAML path."""
    if not isinstance(document, dict) or not document:
        raise ConfigError(source, "expected a mapping of canonical name → list of aliases")
    canonical: dict[str, str] = {}

    def claim(name: str, owner: str, where: str) -> None:
        key = fold(name)
        if not key:
            raise ConfigError(source, f"{name!r} has no letter or digit", yaml_path=where)
        if canonical.get(key, owner) != owner:
            raise ConfigError(source, f"{name!r} is already a name of {canonical[key]!r}", yaml_path=where)
        canonical[key] = owner

    for name, aliases in document.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(source, f"canonical name {name!r} is not text", yaml_path=str(name))
        owner = name.strip()
        claim(owner, owner, owner)
        if aliases is None:
            continue
        if not isinstance(aliases, list):
            raise ConfigError(source, "expected a list of aliases", yaml_path=owner)
        for i, alias in enumerate(aliases):
            if not isinstance(alias, str):
                raise ConfigError(source, f"alias {alias!r} is not text", yaml_path=f"{owner}[{i}]")
            claim(alias, owner, f"{owner}[{i}]")
    return Picklist(canonical, source)


def load_picklist(path: Path | str) -> Picklist:
    """Read a picklist mapping file."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(str(path), f"{where}not valid YAML") from None
    return parse_picklist(document, str(path))


@cache
def lead_sources() -> Picklist:
    """The bundled lead source picklist."""
    return load_picklist(LEAD_SOURCES_FILE)
