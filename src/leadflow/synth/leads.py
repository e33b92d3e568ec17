"""The messy-lead generator itself: `messy_leads(n, seed)` (people, their e-mails, dates, and every kind of mess;
see the `leadflow.synth` docstring for the shares)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from leadflow.pipeline.schema import CORE_INPUT_COLUMNS
from leadflow.synth.arrays import (
    _CASE_SPACE,
    _SD,
    _arrow,
    _case_space_shares,
    _cat,
    _categories,
    _choose,
    _digit_pool,
    _fill,
    _groups,
    _lead_id_column,
    _pad,
    _pool_column,
    _rng,
    _salesforce_ids,
    _slug,
    _strings,
    _uniform,
    _unicode_local,
    _variant_pool,
    _vary,
)
from leadflow.synth.countries import _COUNTRIES_WITH_STATES, COUNTRIES
from leadflow.synth.pools import _clock, _companies, _geo, _websites
from leadflow.synth.vocab import (
    COMPANY_EMAIL_PATTERNS,
    DATE_FORMATS,
    DEFAULT_START,
    FIRST_NAMES,
    FREE_EMAIL_PATTERNS,
    JUNK_COMPANIES,
    JUNK_COUNTRIES,
    JUNK_DATES,
    JUNK_OPT_IN,
    JUNK_PHONES,
    JUNK_POSTAL,
    JUNK_STATES,
    JUNK_TITLES,
    JUNK_WEBSITES,
    LAST_NAMES,
    LEAD_ID_SHARE,
    LEAD_SOURCES,
    OPT_IN_VALUES,
    PLACEHOLDER_EMAILS,
    ROLE_LOCAL_PARTS,
    SOURCES,
    STATUSES,
    TITLES,
    TYPO_FREE_DOMAINS,
    TZ_OFFSETS,
    WEBSITE_FORMS,
)

__all__ = ["messy_leads"]


@dataclass(slots=True)
class _People:
    """Person-level attributes, shared by a lead and its duplicates: indexes and rendered strings."""

    country: np.ndarray
    city: np.ndarray  # index within the country's cities
    first: np.ndarray
    last: np.ndarray
    company: np.ndarray
    company_name: np.ndarray
    title: np.ndarray
    free_mail: np.ndarray
    email: np.ndarray
    phone: np.ndarray
    postal: np.ndarray

    def copy_rows(self, to: np.ndarray, source: np.ndarray) -> None:
        """Make rows `to` the same people as rows `source` (all right-hand sides are read before writing)."""
        for field in fields(self):
            values = getattr(self, field.name)
            values[to] = values[source]


def _people(n: int, seed: int) -> _People:
    geo = _geo()
    rng = _rng(seed, "people")
    country = _choose(rng, n, tuple((c.iso2, c.weight) for c in COUNTRIES))
    city = np.zeros(n, dtype=np.int64)
    phone = np.full(n, "", dtype=_SD)
    postal = np.full(n, "", dtype=_SD)
    suffix = np.zeros(n, dtype=np.int64)
    free_domain = np.zeros(n, dtype=np.int64)
    rng = _rng(seed, "geo")
    for ci, (spec, rows) in enumerate(zip(COUNTRIES, _groups(country, len(COUNTRIES)), strict=True)):
        m = rows.size
        if m == 0:
            continue
        cities = _choose(rng, m, tuple((c.names[0], c.weight) for c in spec.cities))
        city[rows] = cities
        area = np.full(m, "", dtype=_SD)
        for c, here in zip(spec.cities, _groups(cities, len(spec.cities)), strict=True):
            if c.areas:
                area[here] = _uniform(rng, here.size, c.areas)
            if c.postal:
                which = rng.integers(0, len(c.postal), here.size)
                for t, template in enumerate(c.postal):
                    postal[rows[here[which == t]]] = _fill(rng, template, int((which == t).sum()))
        formats = _choose(rng, m, spec.phones)
        for t, (template, _) in enumerate(spec.phones):
            here = np.flatnonzero(formats == t)
            phone[rows[here]] = _fill(rng, template, here.size, area[here])
        suffix[rows] = geo.suffix_offset[ci] + _choose(rng, m, spec.suffixes)
        free_domain[rows] = geo.free_offset[ci] + _choose(rng, m, spec.free_mail)

    rng = _rng(seed, "names")
    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    names, _, _ = _companies()
    # Mildly skewed: some companies send many leads, as big accounts do.
    company = np.minimum((rng.random(n) ** 1.4 * names.size).astype(np.int64), names.size - 1)
    title = _choose(rng, n, TITLES)
    # A legal suffix on ~60% of names (", Inc." style suffixes bring their own comma).
    company_name = names[company]
    with_suffix = np.flatnonzero(rng.random(n) < 0.6)
    suffixes = _strings(geo.suffixes)[suffix[with_suffix]]
    glue = np.where(np.strings.startswith(suffixes, ","), "", " ").astype(_SD)
    company_name[with_suffix] = _cat(company_name[with_suffix], glue, suffixes)
    email, free_mail = _emails(seed, n, first, last, company, free_domain)
    return _People(country, city, first, last, company, company_name, title, free_mail, email, phone, postal)


def _emails(
    seed: int, n: int, first: np.ndarray, last: np.ndarray, company: np.ndarray, free_domain: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Clean e-mail addresses (name-based, at the company's domain or a free-mail one); updates `first` in place."""
    rng = _rng(seed, "email")
    _, domains, company_patterns = _companies()
    pools = {
        "first": _strings([_slug(x) for x in FIRST_NAMES] + [_unicode_local(x) for x in FIRST_NAMES]),
        "last": _strings([_slug(x) for x in LAST_NAMES]),
        "f": _strings([_slug(x)[:1] for x in FIRST_NAMES]),
        "l": _strings([_slug(x)[:1] for x in LAST_NAMES]),
    }
    # A few mailboxes keep the accents of the name ("jürgen.müller@"): the unicode-local-part mess.
    accented_names = np.flatnonzero([_slug(x) != _unicode_local(x) for x in FIRST_NAMES])
    accented = rng.random(n) < 0.004
    first[accented] = accented_names[rng.integers(0, accented_names.size, int(accented.sum()))]
    indexes = {"first": first + accented * len(FIRST_NAMES), "last": last, "f": first, "l": last}

    def render(pattern: str, rows: np.ndarray) -> list[np.ndarray | str]:
        tokens = re.findall(r"first|last|f|l|[._]", pattern)
        return [pools[t][indexes[t][rows]] if t in pools else t for t in tokens]

    free_mail = rng.random(n) < 0.22
    local = np.full(n, "", dtype=_SD)
    by_company = company_patterns[company]
    for k, (pattern, _) in enumerate(COMPANY_EMAIL_PATTERNS):
        rows = np.flatnonzero(~free_mail & (by_company == k))
        local[rows] = _cat(*render(pattern, rows))
    free_pattern = _choose(rng, n, FREE_EMAIL_PATTERNS)
    years = _strings([str(y) for y in range(1960, 2006)])
    for k, (pattern, _) in enumerate(FREE_EMAIL_PATTERNS):
        rows = np.flatnonzero(free_mail & (free_pattern == k))
        stem = pattern.rstrip("#")
        digits = len(pattern) - len(stem)
        parts = render(stem, rows)
        if digits == 4:  # birth years
            parts.append(years[rng.integers(0, years.size, rows.size)])
        elif digits:
            parts.append(_digit_pool(digits)[rng.integers(0, 10**digits, rows.size)])
        local[rows] = _cat(*parts)
    role = np.flatnonzero(~free_mail & (rng.random(n) < 0.02))
    local[role] = _uniform(rng, role.size, ROLE_LOCAL_PARTS)
    domain = domains[company]
    domain[free_mail] = _strings(_geo().free_domains)[free_domain[free_mail]]
    return _cat(local, "@", domain), free_mail


def _mess_emails(rng: np.random.Generator, email: np.ndarray, people: _People) -> None:
    """In place: the ways e-mail addresses get mangled on the way into a CRM."""
    kind = _categories(
        rng, email.size,
        # upper, capitalised, padded, trailing dot, no "@", "@@", inner space, typo domain, placeholder, comma,
        # mailto:, "Name <addr>"
        (0.025, 0.02, 0.03, 0.004, 0.004, 0.003, 0.003, 0.007, 0.004, 0.002, 0.002, 0.002),
    )
    rows = [np.flatnonzero(kind == k) for k in range(13)]
    email[rows[1]] = np.strings.upper(email[rows[1]])
    email[rows[2]] = np.strings.capitalize(email[rows[2]])
    email[rows[3]] = _pad(rng, email[rows[3]])
    email[rows[4]] = _cat(email[rows[4]], ".")
    email[rows[5]] = np.strings.replace(email[rows[5]], "@", _uniform(rng, rows[5].size, ("", " at ", "(at)", "")))
    email[rows[6]] = np.strings.replace(email[rows[6]], "@", "@@")
    email[rows[7]] = np.strings.replace(email[rows[7]], "@", _uniform(rng, rows[7].size, (" @", "@ ", " @ ")))
    typo_free = rows[8][people.free_mail[rows[8]]]
    local_part = np.strings.partition(email[typo_free], np.array("@", dtype=_SD))[0]
    email[typo_free] = _cat(local_part, "@", _uniform(rng, typo_free.size, TYPO_FREE_DOMAINS))
    typo_company = rows[8][~people.free_mail[rows[8]]]
    email[typo_company] = np.strings.replace(email[typo_company], ".com", ".con")
    email[rows[9]] = _uniform(rng, rows[9].size, PLACEHOLDER_EMAILS)
    email[rows[10]] = np.strings.replace(email[rows[10]], ".", ",", 1)
    email[rows[11]] = _cat("mailto:", email[rows[11]])
    named = rows[12]
    first = _strings(FIRST_NAMES)[people.first[named]]
    last = _strings(LAST_NAMES)[people.last[named]]
    email[named] = _cat(first, " ", last, " <", email[named], ">")


def _timestamps(rng: np.random.Generator, seconds: np.ndarray, formats: np.ndarray) -> np.ndarray:
    """Render epoch seconds, each row in its DATE_FORMATS format (-1: junk)."""
    clock, minutes = _clock()
    n = seconds.size
    out = np.full(n, "", dtype=_SD)
    if n == 0:
        return out
    day0 = int(seconds.min()) // 86400 - 1
    dates = [datetime.fromtimestamp((day0 + d) * 86400, UTC) for d in range(int(seconds.max()) // 86400 - day0 + 2)]
    iso_t = _strings([f"{d:%Y-%m-%d}T" for d in dates])
    iso_space = _strings([f"{d:%Y-%m-%d} " for d in dates])
    us = _strings([f"{d:%m/%d/%Y}" for d in dates])
    us_space = _strings([f"{d:%m/%d/%Y} " for d in dates])
    for k in range(len(DATE_FORMATS)):
        rows = np.flatnonzero(formats == k)
        at = seconds[rows]
        if k == 1:  # local time with its offset: the same instant
            offset = rng.integers(0, len(TZ_OFFSETS), rows.size)
            at = at + np.array([s for _, s in TZ_OFFSETS])[offset]
        day, tod = at // 86400 - day0, at % 86400
        if k == 0:
            out[rows] = _cat(iso_t[day], clock[tod], "Z")
        elif k == 1:
            out[rows] = _cat(iso_t[day], clock[tod], _strings([o for o, _ in TZ_OFFSETS])[offset])
        elif k == 2:
            millis = _digit_pool(3)[rng.integers(0, 1000, rows.size)]
            out[rows] = _cat(iso_t[day], clock[tod], ".", millis, "Z")
        elif k == 3:
            out[rows] = _cat(iso_space[day], clock[tod])
        elif k == 4:
            out[rows] = us[day]
        elif k == 5:
            out[rows] = _cat(us_space[day], minutes[tod // 60])
        else:
            out[rows] = at.astype(_SD)
    junk = np.flatnonzero(formats == -1)
    out[junk] = _uniform(rng, junk.size, JUNK_DATES)
    return out


def _dates(seed: int, n: int, start: datetime) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """created_at and updated_at (rendered), and the creation instant (epoch seconds)."""
    rng = _rng(seed, "dates")
    start_s = int(start.timestamp())
    # Most leads arrive in (roughly US) business hours, the rest at any time of day.
    day = rng.integers(1, 91, n)
    business = rng.normal(16.5 * 3600, 3 * 3600, n).astype(np.int64) % 86400
    tod = np.where(rng.random(n) < 0.7, business, rng.integers(0, 86400, n))
    created = np.minimum(start_s // 86400 * 86400 - day * 86400 + tod, start_s - 120)
    # A third are never touched after creation (bar a sync a few minutes later); the rest are worked for weeks.
    touched = rng.random(n) >= 0.3
    delta = np.where(touched, rng.exponential(10 * 86400, n).astype(np.int64) + 60, rng.integers(60, 600, n))
    late = created + delta > start_s
    delta[late] = 60 + ((start_s - created[late] - 60) * rng.random(int(late.sum()))).astype(np.int64)
    updated = created + delta

    p = np.array(DATE_FORMATS) / sum(DATE_FORMATS)
    created_format = rng.choice(p.size, size=n, p=p)
    updated_format = rng.choice(p.size, size=n, p=p)
    # A date-only value reads as midnight: only use one for updated_at once the update is on a later day.
    updated_format[(updated_format == 4) & (updated // 86400 <= created // 86400)] = 0
    created_format[rng.random(n) < 0.003] = -1
    updated_format[rng.random(n) < 0.003] = -1
    return _timestamps(rng, created, created_format), _timestamps(rng, updated, updated_format), created


def messy_leads(n: int, seed: int = 7, *, start: datetime | None = None) -> pd.DataFrame:
    """`n` realistic, messy B2B leads: CORE_INPUT_COLUMNS in order, all dtype "string" (pd.NA when missing).

    Deterministic: the same (n, seed, start) always gives the same frame. Leads are created in the 90 days before
    `start` (default DEFAULT_START; a naive datetime is taken as UTC).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    geo = _geo()
    columns: dict[str, pa.Array] = {}

    # Duplicates: ~3% of rows are a person seen before (another form fill, another system).
    people = _people(n, seed)
    rng = _rng(seed, "duplicates")
    again = np.flatnonzero(rng.random(n) < 0.03) if n > 1 else np.zeros(0, dtype=np.int64)
    people.copy_rows(again, rng.integers(0, n, again.size))

    # Identity: lead_id for CRM-born or synced leads, the e-mail for the rest; a few rows have neither.
    rng = _rng(seed, "identity")
    source = _choose(rng, n, SOURCES)
    columns["source"] = _pool_column([s for s, _ in SOURCES], source, np.zeros(n, dtype=bool))
    no_id = rng.random(n) >= np.array([LEAD_ID_SHARE[s] for s, _ in SOURCES])[source]
    no_email = ~no_id & (rng.random(n) < 0.05)
    neither = rng.random(n) < 0.003
    no_id |= neither
    no_email |= neither
    created_at, updated_at, created_s = _dates(seed, n, start)
    # Ids grow with creation time, as Salesforce's do; with gaps, because other records share the counter.
    sequence = np.empty(n, dtype=np.int64)
    sequence[np.argsort(created_s, kind="stable")] = 1_100_000 + np.cumsum(rng.integers(1, 40, n))
    short = rng.random(n) < 0.02  # 15-character ids, as reports and Excel exports carry them
    left, right = rng.random(n) < 0.0015, rng.random(n) < 0.0015
    columns["lead_id"] = _lead_id_column(_salesforce_ids("00Q", sequence), short, left, right, no_id)
    email = people.email
    _mess_emails(_rng(seed, "email-mess"), email, people)
    columns["email"] = _arrow(email, no_email)

    # Names: case, spaces, honorifics, a full name typed into first_name.
    rng = _rng(seed, "name-mess")
    shares = _case_space_shares(0.05, 0.035, 0.03)
    first = _vary(rng, people.first, len(FIRST_NAMES), shares)
    last = _vary(rng, people.last, len(LAST_NAMES), shares)
    kind = _categories(rng, n, (0.003, 0.005))
    honorific = np.flatnonzero(kind == 1)
    whole = np.flatnonzero(kind == 2)
    first_pool, last_pool = _variant_pool(FIRST_NAMES), _variant_pool(LAST_NAMES)
    override_rows = np.concatenate([honorific, whole])
    override_values = np.concatenate([
        _cat(_uniform(rng, honorific.size, ("Dr. ", "Mr. ", "Ms. ", "Prof. ")), _strings(first_pool)[first[honorific]]),
        _cat(_strings(first_pool)[first[whole]], " ", _strings(last_pool)[last[whole]]),
    ])
    order = np.argsort(override_rows)
    missing_last = rng.random(n) < 0.015
    missing_last[whole] = True
    columns["first_name"] = _pool_column(
        first_pool, first, rng.random(n) < 0.025, (override_rows[order], override_values[order])
    )
    columns["last_name"] = _pool_column(last_pool, last, missing_last)

    # Company.
    rng = _rng(seed, "company-mess")
    company = people.company_name
    kind = _categories(rng, n, (0.03, 0.03, 0.03, 0.003, 0.01))
    rows = [np.flatnonzero(kind == k) for k in range(6)]
    company[rows[1]] = np.strings.lower(company[rows[1]])
    company[rows[2]] = np.strings.upper(company[rows[2]])
    company[rows[3]] = _pad(rng, company[rows[3]])
    company[rows[4]] = np.strings.replace(company[rows[4]], " ", "  ", 1)
    company[rows[5]] = _uniform(rng, rows[5].size, JUNK_COMPANIES)
    columns["company"] = _arrow(company, rng.random(n) < 0.04)

    # Title.
    rng = _rng(seed, "title")
    title_pool = [*_variant_pool([t for t, _ in TITLES]), *JUNK_TITLES]
    title = _vary(rng, people.title, len(TITLES), _case_space_shares(0.03, 0.015, 0.01))
    junk = np.flatnonzero(rng.random(n) < 0.012)
    title[junk] = len(title_pool) - len(JUNK_TITLES) + rng.integers(0, len(JUNK_TITLES), junk.size)
    columns["title"] = _pool_column(title_pool, title, rng.random(n) < 0.08)

    # Phone.
    rng = _rng(seed, "phone")
    phone = people.phone
    kind = _categories(rng, n, (0.025, 0.005, 0.01))
    rows = [np.flatnonzero(kind == k) for k in range(4)]
    phone[rows[1]] = _uniform(rng, rows[1].size, JUNK_PHONES)
    phone[rows[2]] = _cat("tel:", phone[rows[2]])
    phone[rows[3]] = _pad(rng, phone[rows[3]])
    columns["phone"] = _arrow(phone, rng.random(n) < 0.12)

    # Geography, per row, for the person's true country: its spelling, the city's spelling, the state's form.
    rng = _rng(seed, "geo-mess")
    country = np.zeros(n, dtype=np.int64)
    city = np.zeros(n, dtype=np.int64)
    state = np.zeros(n, dtype=np.int64)
    no_state = np.ones(n, dtype=bool)
    postal = people.postal
    n_states = (len(geo.states) - len(JUNK_STATES)) // 4
    for ci, (spec, rows_c) in enumerate(zip(COUNTRIES, _groups(people.country, len(COUNTRIES)), strict=True)):
        m = rows_c.size
        if m == 0:
            continue
        country[rows_c] = geo.spelling_offset[ci] + _choose(rng, m, spec.spellings)
        cities = people.city[rows_c]
        first_spelling = np.array(geo.city_offset[ci])[cities]
        n_spellings = np.array([len(c.names) for c in spec.cities])[cities]
        # The usual spelling for most; a variant ("Munich", "Muenchen") for a quarter of those that have one.
        variant = (rng.random(m) < 0.25) * (1 + rng.integers(0, 1 << 30, m) % np.maximum(n_spellings - 1, 1))
        city[rows_c] = first_spelling + np.where(n_spellings > 1, variant, 0)
        state_code = np.array(geo.state_index[ci])[cities]
        if spec.iso2 in _COUNTRIES_WITH_STATES:
            # code, name, lower-case name, upper-case name, junk; the remainder is left empty
            form = _categories(rng, m, (0.55, 0.33, 0.04, 0.02, 0.01))
            rendered = state_code + np.maximum(form - 1, 0) * n_states
            junk_state = form == 5
            rendered[junk_state] = 4 * n_states + rng.integers(0, len(JUNK_STATES), int(junk_state.sum()))
            state[rows_c] = rendered
            no_state[rows_c] = form == 0
        elif spec.region_share:
            filled = (rng.random(m) < spec.region_share) & (state_code >= 0)
            state[rows_c[filled]] = state_code[filled] + n_states
            no_state[rows_c[filled]] = False
        if spec.iso2 == "US":
            plus4 = rows_c[rng.random(m) < 0.12]
            postal[plus4] = _cat(postal[plus4], "-", _digit_pool(4)[rng.integers(0, 10000, plus4.size)])
            # Spreadsheets eat the leading zero of New England ZIP codes.
            eaten = rows_c[np.strings.startswith(postal[rows_c], "0") & (rng.random(m) < 0.25)]
            postal[eaten] = np.strings.lstrip(postal[eaten], "0")
        elif spec.iso2 == "GB":
            squashed = rows_c[rng.random(m) < 0.1]
            postal[squashed] = np.strings.replace(np.strings.lower(postal[squashed]), " ", "")
    country_pool = [*_variant_pool(geo.spellings, (*_CASE_SPACE, lambda v: v + ".")), *JUNK_COUNTRIES]
    country = _vary(rng, country, len(geo.spellings), (0.005, 0.005, 0.0025, 0.0025, 0.003))
    junk = np.flatnonzero(rng.random(n) < 0.015)
    country[junk] = len(country_pool) - len(JUNK_COUNTRIES) + rng.integers(0, len(JUNK_COUNTRIES), junk.size)
    columns["country"] = _pool_column(country_pool, country, rng.random(n) < 0.05)
    columns["state"] = _pool_column(geo.states, state, no_state)
    city_pool = [*_variant_pool(geo.city_names), "-"]
    city = _vary(rng, city, len(geo.city_names), _case_space_shares(0.02, 0.01, 0.01))
    city[rng.random(n) < 0.003] = len(city_pool) - 1
    columns["city"] = _pool_column(city_pool, city, rng.random(n) < 0.08)
    junk = np.flatnonzero(rng.random(n) < 0.005)
    postal[junk] = _uniform(rng, junk.size, JUNK_POSTAL)
    columns["postal_code"] = _arrow(postal, (rng.random(n) < 0.15) | (np.strings.str_len(postal) == 0))

    # Website: the company's domain, written every way people write it; free-mail leads rarely give one.
    rng = _rng(seed, "website")
    websites = _websites()
    site = people.company * len(WEBSITE_FORMS) + _choose(rng, n, WEBSITE_FORMS)
    junk = rng.random(n) < 0.01
    site[junk] = len(websites) - len(JUNK_WEBSITES) + rng.integers(0, len(JUNK_WEBSITES), int(junk.sum()))
    columns["website"] = _pool_column(websites, site, (rng.random(n) < 0.2) | (people.free_mail & ~junk))

    # Marketing and sales fields.
    rng = _rng(seed, "crm")
    lead_source = _choose(rng, n, LEAD_SOURCES)
    columns["lead_source"] = _pool_column([s for s, _ in LEAD_SOURCES], lead_source, rng.random(n) < 0.09)
    opt_in_pool = [*(v for v, _ in OPT_IN_VALUES), *JUNK_OPT_IN]
    opt_in = _choose(rng, n, OPT_IN_VALUES)
    junk = rng.random(n) < 0.002
    opt_in[junk] = len(OPT_IN_VALUES) + rng.integers(0, len(JUNK_OPT_IN), int(junk.sum()))
    columns["email_opt_in"] = _pool_column(opt_in_pool, opt_in, ~junk & (rng.random(n) < 0.19))
    columns["created_at"] = _arrow(created_at, rng.random(n) < 0.01)
    columns["updated_at"] = _arrow(updated_at, rng.random(n) < 0.04)
    owner_codes = _salesforce_ids("005", 400_000 + np.sort(rng.choice(60_000, size=40, replace=False)))
    owners = [code.decode() for code in owner_codes.view("S18").ravel()]
    columns["owner_id"] = _pool_column(owners, rng.integers(0, len(owners), n), rng.random(n) >= 0.4)
    columns["status"] = _pool_column([s for s, _ in STATUSES], _choose(rng, n, STATUSES), rng.random(n) < 0.06)

    return pd.DataFrame(
        {c: pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([columns[c]])), name=c) for c in CORE_INPUT_COLUMNS}
    )
