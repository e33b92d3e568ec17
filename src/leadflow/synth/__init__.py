"""Deterministic generator of realistic, messy synthetic B2B leads (for the demo, tests and benchmarks).

What lives where: `leads` holds the messy-lead generator (`messy_leads`), fed by `vocab` (names, companies, e-mail
patterns, titles, junk values, `DEFAULT_START`), `countries` (per-country spellings, cities, phone formats,
suffixes) and `pools` (seed-independent pools built from them); `arrays` holds the vectorised helpers every
generator shares (seeded streams, pools to Arrow strings, Salesforce ids); `cli` is `python -m leadflow.synth`
(`main`); `accounts` generates CRM accounts and leads that refer to them (matching), `existing` existing CRM
records and leads that may duplicate them (duplicate detection), `reference` the demo's accounts and existing
records for a lead file (`sample_reference`), `history` marketing activities and scoring leads/backtest history,
and `routing` leads as the route stage sees them. Every name is importable from `leadflow.synth` itself.

The bundled sample was created, from the repository root, with::

    python -m leadflow.synth --rows 2500 --seed 7 --out src/leadflow/data/sample_leads.csv

`messy_leads(n, seed)` returns the columns of `leadflow.pipeline.schema.CORE_INPUT_COLUMNS` (no firmographics), all dtype "string" with pd.NA for
missing. Most rows are reasonably clean; the rest carry the mess real CRM/MAP exports carry: country spellings and
placeholders, broken or duplicated e-mails, phone numbers in every national format, mixed date formats, free-text
booleans, and a tiny share of rows that must be refused (no lead_id and no e-mail) or quarantined (opt-in "maybe",
junk dates). Output depends only on (n, seed, start): never on the clock. Placeholders such as "N/A" are values,
not missing: read the CSV with `keep_default_na=False, na_values=[""]` to get back exactly what was generated.

Approximate shares (of all rows): no lead_id 14%; neither lead_id nor e-mail 0.3%; e-mail missing 5%, broken
(no "@", "@@", spaces, placeholders, "mailto:", "Name <addr>") 2.5%, typo domain 0.7%, duplicate of another row's
address ~3%; country missing 5%, placeholder ("Select", "N/A", "12345") 1.5%; phone missing 12%, junk 2.5%;
opt-in unrecognised ("maybe", "pending") 0.2%; junk created_at/updated_at 0.3% each; owner_id set 40%.
The vocabularies (`vocab`, `countries`) are test data, not reference data.

Everything is vectorised (numpy StringDType, and integer indexes into pools turned into strings by Arrow):
1,000,000 rows take about 6 s of CPU.
"""

from __future__ import annotations

from leadflow.synth.accounts import (
    ACCOUNT_COUNTRIES,
    ACCOUNT_SUFFIXES,
    OUTSIDE_STEMS,
    _typo,  # noqa: F401  (imported from here by benchmarks/bench_matching.py)
    messy_accounts,
    messy_leads_for_accounts,
)
from leadflow.synth.cli import main
from leadflow.synth.countries import COUNTRIES, City, Country
from leadflow.synth.existing import (
    FREE_MAIL_FOR_EXISTING,
    duplicate_answer_persons,
    messy_existing_records,
    messy_leads_for_existing,
)
from leadflow.synth.history import (
    ACTIVITY_DETAILS,
    ACTIVITY_MIX,
    SCORING_TITLES,
    messy_activities,
    scoring_history,
    scoring_leads,
)
from leadflow.synth.leads import messy_leads
from leadflow.synth.reference import SAMPLE_INDUSTRIES, SAMPLE_OWNERS, sample_reference
from leadflow.synth.routing import ROUTING_OWNERS, ROUTING_STATES, routing_leads
from leadflow.synth.vocab import (
    COMPANY_EMAIL_PATTERNS,
    COMPANY_STEMS,
    COMPANY_TLDS,
    COMPANY_WORDS,
    DATE_FORMATS,
    DEFAULT_START,
    FIRST_NAMES,
    FREE_EMAIL_PATTERNS,
    FREE_MAIL_DEFAULT,
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
    SF_POD,
    SOURCES,
    STATUSES,
    TITLES,
    TYPO_FREE_DOMAINS,
    TZ_OFFSETS,
    WEBSITE_FORMS,
    Weighted,
)

__all__ = [
    # generators and the command line
    "DEFAULT_START",
    "duplicate_answer_persons",
    "main",
    "messy_accounts",
    "messy_activities",
    "messy_existing_records",
    "messy_leads",
    "messy_leads_for_accounts",
    "messy_leads_for_existing",
    "routing_leads",
    "sample_reference",
    "scoring_history",
    "scoring_leads",
    # vocabularies and pools (test data)
    "ACCOUNT_COUNTRIES",
    "ACCOUNT_SUFFIXES",
    "ACTIVITY_DETAILS",
    "ACTIVITY_MIX",
    "COMPANY_EMAIL_PATTERNS",
    "COMPANY_STEMS",
    "COMPANY_TLDS",
    "COMPANY_WORDS",
    "COUNTRIES",
    "City",
    "Country",
    "DATE_FORMATS",
    "FIRST_NAMES",
    "FREE_EMAIL_PATTERNS",
    "FREE_MAIL_DEFAULT",
    "FREE_MAIL_FOR_EXISTING",
    "JUNK_COMPANIES",
    "JUNK_COUNTRIES",
    "JUNK_DATES",
    "JUNK_OPT_IN",
    "JUNK_PHONES",
    "JUNK_POSTAL",
    "JUNK_STATES",
    "JUNK_TITLES",
    "JUNK_WEBSITES",
    "LAST_NAMES",
    "LEAD_ID_SHARE",
    "LEAD_SOURCES",
    "OPT_IN_VALUES",
    "OUTSIDE_STEMS",
    "PLACEHOLDER_EMAILS",
    "ROLE_LOCAL_PARTS",
    "ROUTING_OWNERS",
    "ROUTING_STATES",
    "SAMPLE_INDUSTRIES",
    "SAMPLE_OWNERS",
    "SCORING_TITLES",
    "SF_POD",
    "SOURCES",
    "STATUSES",
    "TITLES",
    "TYPO_FREE_DOMAINS",
    "TZ_OFFSETS",
    "WEBSITE_FORMS",
    "Weighted",
]
