"""Pools of the messy-lead generator that do not depend on the seed (built once, cached): flattened geography,
companies with their domains and e-mail patterns, website renderings, clock strings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from leadflow.synth.arrays import _slug, _strings
from leadflow.synth.countries import COUNTRIES
from leadflow.synth.vocab import (
    COMPANY_EMAIL_PATTERNS,
    COMPANY_STEMS,
    COMPANY_TLDS,
    COMPANY_WORDS,
    JUNK_STATES,
    JUNK_WEBSITES,
    WEBSITE_FORMS,
)


@dataclass(frozen=True, slots=True)
class _Geo:
    """Flattened geography: every country spelling, city spelling and state value, with per-country offsets."""

    spellings: tuple[str, ...]
    spelling_offset: tuple[int, ...]
    city_names: tuple[str, ...]
    city_offset: tuple[tuple[int, ...], ...]  # per country, per city: first spelling's position
    states: tuple[str, ...]  # codes, names, lower-case names, upper-case names, then JUNK_STATES
    state_index: tuple[tuple[int, ...], ...]  # per country, per city: position of the code (or -1: no state)
    suffixes: tuple[str, ...]
    suffix_offset: tuple[int, ...]
    free_domains: tuple[str, ...]
    free_offset: tuple[int, ...]


@cache
def _geo() -> _Geo:
    spellings: list[str] = []
    spelling_offset: list[int] = []
    city_names: list[str] = []
    city_offset: list[tuple[int, ...]] = []
    codes: list[str] = []
    names: list[str] = []
    state_index: list[tuple[int, ...]] = []
    suffixes: list[str] = []
    suffix_offset: list[int] = []
    free: list[str] = []
    free_offset: list[int] = []
    for spec in COUNTRIES:
        spelling_offset.append(len(spellings))
        spellings.extend(v for v, _ in spec.spellings)
        offsets: list[int] = []
        states: list[int] = []
        for city in spec.cities:
            offsets.append(len(city_names))
            city_names.extend(city.names)
            if city.state[1]:
                states.append(len(codes))
                codes.append(city.state[0] or city.state[1])
                names.append(city.state[1])
            else:
                states.append(-1)
        city_offset.append(tuple(offsets))
        state_index.append(tuple(states))
        suffix_offset.append(len(suffixes))
        suffixes.extend(v for v, _ in spec.suffixes)
        free_offset.append(len(free))
        free.extend(v for v, _ in spec.free_mail)
    states_pool = (*codes, *names, *(s.lower() for s in names), *(s.upper() for s in names), *JUNK_STATES)
    return _Geo(
        tuple(spellings), tuple(spelling_offset), tuple(city_names), tuple(city_offset), states_pool,
        tuple(state_index), tuple(suffixes), tuple(suffix_offset), tuple(free), tuple(free_offset),
    )


@cache
def _companies() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Company base names, their domains, and each company's e-mail pattern (index into COMPANY_EMAIL_PATTERNS)."""
    names: list[str] = []
    domains: list[str] = []
    for i, (stem, word) in enumerate((s, w) for w in COMPANY_WORDS for s in COMPANY_STEMS):
        names.append(f"{stem} {word}")
        joiner = "-" if i % 3 == 2 else ""
        domains.append(f"{_slug(stem)}{joiner}{_slug(word)}{COMPANY_TLDS[i % len(COMPANY_TLDS)]}")
    cycle = np.repeat(np.arange(len(COMPANY_EMAIL_PATTERNS)), [int(w) for _, w in COMPANY_EMAIL_PATTERNS])
    patterns = np.random.default_rng(0).permutation(cycle)[np.arange(len(names)) % cycle.size]
    return _strings(names), _strings(domains), patterns


@cache
def _websites() -> tuple[str, ...]:
    """Every company domain in every WEBSITE_FORMS rendering (company-major), then JUNK_WEBSITES."""
    _, domains, _ = _companies()
    rendered = [
        form.replace("{}", d.upper() if form.isupper() else d) for d in domains.tolist() for form, _ in WEBSITE_FORMS
    ]
    return (*rendered, *JUNK_WEBSITES)


@cache
def _clock() -> tuple[np.ndarray, np.ndarray]:
    """"HH:MM:SS" for every second of a day, and "HH:MM" for every minute."""
    seconds = _strings([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)])
    minutes = _strings([f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)])
    return seconds, minutes
