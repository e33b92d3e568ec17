"""Enrich stage: who is this lead? Its CRM account, whether it duplicates an existing record, firmographics, and
whether the address is a role mailbox or a disposable one.

Firmographics (`employees`, `annual_revenue`, `industry`) come, per value, from the first source that has one:
the CRM's own value (kept: a person may have set it, unless `overwrite_crm_values`), the matched account, the
firmographics reference file (by company domain), then the HTTP provider's answer fetched for this run
(`RunInputs.reference.provider`, looked up beforehand by the task from `domains_to_look_up`: the stage itself does no
I/O). `enrichment_source` says where each value came from (`employees=account;industry=provider`), and
`enrichment_note` why a value is still missing (`no_company_domain`, `not_found`, `provider_error: timeout`…).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from leadflow.identity.address_flags import ADDRESS_FLAG_COLUMNS, flag_addresses
from leadflow.identity.domains import is_free_domain
from leadflow.identity.duplicates import DUPLICATE_COLUMNS, find_duplicates
from leadflow.identity.matching import MATCH_COLUMNS, match_accounts
from leadflow.identity.normalize import registered_domains
from leadflow.pipeline.schema import FIRMOGRAPHIC_COLUMNS, NUMERIC_COLUMNS, parse_number
from leadflow.pipeline.stage import Stage
from leadflow.pipeline.uniques import map_unique

if TYPE_CHECKING:
    from leadflow.pipeline.config import Rules
    from leadflow.pipeline.run_inputs import RunInputs
    from leadflow.identity.enrichment import EnrichmentConfig, SegmentBand

SOURCES: Final[tuple[str, ...]] = ("crm", "account", "reference_file", "provider")
"""Where a firmographic value can come from, in order of precedence."""
LEADFLOW_SOURCES: Final[tuple[str, ...]] = SOURCES[1:]
"""Sources whose values leadflow itself wrote to the CRM: those are refreshed, never protected as a person's."""

READS: Final[tuple[str, ...]] = (
    "lead_id", "source", "email", "first_name", "last_name", "company", "website", "country_code", "email_domain",
    "is_free_email", "created_at", *FIRMOGRAPHIC_COLUMNS, "enrichment_source",
)
WRITES: Final[tuple[str, ...]] = (
    *MATCH_COLUMNS, *DUPLICATE_COLUMNS, *FIRMOGRAPHIC_COLUMNS, "segment", "enrichment_source", "enrichment_note",
    *ADDRESS_FLAG_COLUMNS,
)


def company_domains(frame: pd.DataFrame) -> pd.Series:
    """The registered domain of the lead's company: its corporate e-mail domain, else its website; never free mail."""
    by_email = registered_domains(frame["email_domain"])
    free = frame["is_free_email"].fillna(False).astype(bool) | map_unique(
        by_email, is_free_domain, dtype="boolean"
    ).fillna(False).astype(bool)
    by_site = registered_domains(frame["website"])
    site_free = map_unique(by_site, is_free_domain, dtype="boolean").fillna(False).astype(bool)
    return by_email.mask(free).fillna(by_site.mask(site_free)).astype("string")


def _typed(values: pd.Series, column: str) -> pd.Series:
    if column in NUMERIC_COLUMNS:
        return parse_number(values, NUMERIC_COLUMNS[column])[0]
    return values.astype("string")


def _by_key(frame: pd.DataFrame, key: pd.Series, column: str) -> pd.Series:
    """`frame[column]` looked up by the values of `key` (first row per key wins)."""
    if column not in frame.columns or not len(frame):
        return pd.Series(pd.NA, index=key.index, dtype=NUMERIC_COLUMNS.get(column, "string"))
    table = _typed(frame[column], column)
    table.index = frame["__key"].to_numpy()
    table = table[~table.index.duplicated() & pd.notna(table.index)]
    return _typed(key.map(table), column)


def _keyed(frame: pd.DataFrame, key: pd.Series) -> pd.DataFrame:
    out = frame.copy(deep=False)
    out["__key"] = key.to_numpy()
    return out


def _complete(frame: pd.DataFrame) -> pd.Series:
    if not len(frame):
        return pd.Series(False, index=frame.index)
    present = [frame[c].notna() if c in frame.columns else pd.Series(False, index=frame.index)
               for c in FIRMOGRAPHIC_COLUMNS]
    return pd.concat(present, axis=1).all(axis=1)


def _needs_value(frame: pd.DataFrame, config: EnrichmentConfig) -> pd.Series:
    # A value leadflow wrote earlier is kept when no source has a new one, so it is not asked for again.
    needs = pd.Series(False, index=frame.index)
    for column in FIRMOGRAPHIC_COLUMNS:
        needs |= frame[column].isna() | config.overwrites(column)
    return needs


def domains_to_look_up(frame: pd.DataFrame, rules: Rules, inputs: RunInputs | None = None) -> list[str]:
    """Company domains the provider should be asked about: a value is still wanted, and neither an account on that
    domain nor the reference file has all three firmographics."""
    config = rules.enrichment
    if config.provider is None or not len(frame):
        return []
    domain = company_domains(frame)
    wanted = _needs_value(frame, config) & domain.notna()
    known: set[str] = set()
    known_data = rules.reference if inputs is None else inputs.reference_for(rules)
    accounts, reference = known_data.accounts, known_data.firmographics
    if len(accounts):
        site = accounts["domain"] if "domain" in accounts.columns else accounts.get("website")
        if site is not None:
            domains = registered_domains(site)
            known.update(domains[_complete(accounts).to_numpy()].dropna())
    if len(reference):
        domains = registered_domains(reference["domain"])
        known.update(domains[_complete(reference).to_numpy()].dropna())
    asked = domain[wanted & ~domain.isin(known)]
    return sorted(asked.dropna().unique().tolist())


def _earlier_source(text: pd.Series, column: str) -> pd.Series:
    """Per lead, where `column`'s value came from according to an earlier `enrichment_source` (NA: not recorded)."""
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    table = [dict(part.split("=", 1) for part in str(u).split(";") if "=" in part).get(column) for u in uniques]
    # Once per distinct text, then one `take` (-1, a missing text: NA), no per-row dict look-up.
    return pd.Series(pd.array(table, dtype="string").take(np.asarray(codes), allow_fill=True), index=text.index,
                     dtype="string")


def _segments(employees: pd.Series, revenue: pd.Series, bands: list[SegmentBand]) -> pd.Series:
    staff = employees.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    money = revenue.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    out = np.full(len(staff), None, dtype=object)
    by_staff, by_money = ~np.isnan(staff), np.isnan(staff) & ~np.isnan(money)
    for band in reversed(bands):  # the first band that fits wins, so assign from the last
        cap_staff = np.inf if band.max_employees is None else band.max_employees
        cap_money = np.inf if band.max_annual_revenue is None else band.max_annual_revenue
        fits = (by_staff & (staff <= cap_staff)) | (by_money & (money <= cap_money))
        out[fits] = band.name
    return pd.Series(out, index=employees.index, dtype="string")


def _source_text(sources: pd.DataFrame) -> pd.Series:
    """`employees=account;industry=provider` per row, computed once per distinct combination."""
    # One int64 key per row from each column's codes (a MultiIndex would build a tuple per row): the columns are few
    # and each has a handful of values, so the mixed-radix key cannot overflow.
    key = np.zeros(len(sources), dtype=np.int64)
    levels = []
    for column in sources.columns:
        codes, values = pd.factorize(sources[column].fillna("").astype(str), use_na_sentinel=False)
        key = key * max(len(values), 1) + codes
        levels.append(np.asarray(values, dtype=object))
    combo, keys = pd.factorize(key)
    first = np.empty(len(keys), dtype=np.int64)
    first[combo[::-1]] = np.arange(len(key) - 1, -1, -1)  # each combination's first row
    texts = []
    for row in first:
        parts, rest = [], int(key[row])
        for column, values in zip(reversed(sources.columns), reversed(levels), strict=True):
            rest, code = divmod(rest, max(len(values), 1))
            if values[code]:
                parts.append(f"{column}={values[code]}")
        texts.append(";".join(reversed(parts)) or None)
    labels = np.array(texts + [None], dtype=object)
    return pd.Series(labels[combo], index=sources.index, dtype="string")


def enrich(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """Account match, duplicates, firmographics with their sources, segment, role/disposable flags."""
    config, reference = rules.enrichment, inputs.reference_for(rules)
    matched = match_accounts(frame, reference.accounts, config.matching)
    earlier = inputs.earlier_leads.targets(frame["email"]) if inputs.earlier_leads is not None else None
    duplicates = find_duplicates(frame, reference.existing, config.duplicates, earlier=earlier)
    flags = flag_addresses(
        frame["email"], frame["email_domain"],
        extra_roles=reference.role_localparts, extra_disposable=reference.disposable_domains,
    )

    domain = company_domains(frame)
    accounts = _keyed(reference.accounts, reference.accounts["account_id"]) if len(reference.accounts) else (
        reference.accounts.assign(__key=pd.Series(dtype="string"))
    )
    files = reference.firmographics
    files = _keyed(files, registered_domains(files["domain"])) if len(files) else files.assign(
        __key=pd.Series(dtype="string"))
    answers = reference.provider
    ok = answers[answers["status"] == "ok"] if len(answers) else answers
    ok = _keyed(ok, ok["domain"]) if len(ok) else ok.assign(__key=pd.Series(dtype="string"))

    out = pd.DataFrame(index=frame.index)
    for column in MATCH_COLUMNS:
        out[column] = matched[column]
    for column in DUPLICATE_COLUMNS:
        out[column] = duplicates[column]

    account_id = matched["account_id"].astype("string")
    sources = pd.DataFrame(index=frame.index)
    for column in FIRMOGRAPHIC_COLUMNS:
        crm = _typed(frame[column], column)
        # The source this value had last run (our own write-back read back): a CRM value leadflow put there is no
        # person's and is refreshed; anything else in the CRM is a person's and stays unless config says otherwise.
        earlier = _earlier_source(frame["enrichment_source"], column)
        ours = earlier.isin(LEADFLOW_SOURCES).fillna(False).astype(bool)
        keep = crm.notna() & ~ours & (not config.overwrites(column))
        value = crm.where(keep)
        source = pd.Series(pd.NA, index=frame.index, dtype="string").mask(keep, "crm")
        for name, candidates in (
            ("account", _by_key(accounts, account_id, column)),
            ("reference_file", _by_key(files, domain, column)),
            ("provider", _by_key(ok, domain, column)),
        ):
            fill = value.isna() & candidates.notna()
            value = value.mask(fill, candidates)
            source = source.mask(fill, name)
        # Allowed to overwrite, but nothing better was found: the CRM's value stays, with the source it had.
        fallback = value.isna() & crm.notna()
        out[column] = value.mask(fallback, crm)
        sources[column] = source.mask(fallback, earlier.where(ours, "crm"))

    out["segment"] = _segments(out["employees"], out["annual_revenue"], config.segments)
    out["enrichment_source"] = _source_text(sources)
    out["enrichment_note"] = _notes(out, domain, answers, provider=config.provider is not None)
    for column in ADDRESS_FLAG_COLUMNS:
        out[column] = flags[column]
    return out[list(WRITES)]


def _notes(out: pd.DataFrame, domain: pd.Series, answers: pd.DataFrame, *, provider: bool) -> pd.Series:
    """Why a lead still lacks a firmographic value (NA when it has all three)."""
    incomplete = _complete(out[list(FIRMOGRAPHIC_COLUMNS)]).eq(False)
    note = pd.Series("not_found" if provider else "no_source", index=out.index, dtype="string")
    if len(answers):
        table = answers.drop_duplicates("domain").set_index("domain")
        status = domain.map(table["status"]).astype("string")
        reason = domain.map(table["reason"]).astype("string")
        failed = status.eq("error").fillna(False).astype(bool)
        note = note.mask(failed, "provider_error: " + reason.fillna("unknown"))
    elif provider:
        note = note.mask(domain.notna(), "not_looked_up")
    note = note.mask(domain.isna() & out["account_id"].isna(), "no_company_domain")
    return note.where(incomplete)


ENRICH = Stage(
    name="enrich",
    reads=READS,
    writes=WRITES,
    fn=enrich,
    description="Account match, duplicates vs CRM leads/contacts, firmographics with sources, segment, address flags.",
    gate="leads_enriched",
)
