"""Marketing activities and a scoring history (for scoring tests, benchmarks and backtests)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from leadflow.synth.arrays import _choose, _rng
from leadflow.synth.reference import SAMPLE_INDUSTRIES
from leadflow.synth.vocab import DEFAULT_START, Weighted

__all__ = [
    "ACTIVITY_DETAILS", "ACTIVITY_MIX", "SCORING_TITLES", "messy_activities", "scoring_history", "scoring_leads",
]

ACTIVITY_MIX: Final[Weighted] = (
    ("page_visit", 0.46),
    ("email_open", 0.24),
    ("email_click", 0.10),
    ("form_fill", 0.07),
    ("content_download", 0.03),
    ("webinar_registered", 0.03),
    ("webinar_attended", 0.02),
    ("demo_request", 0.012),
    ("event_attended", 0.01),
    ("email_unsubscribe", 0.008),
)
ACTIVITY_DETAILS: Final[dict[str, tuple[str, ...]]] = {
    "page_visit": (
        "/", "/pricing", "/pricing#enterprise", "/product", "/product/integrations", "/product/security", "/blog",
        "/blog/lead-routing-101", "/blog/scoring-models", "/customers", "/careers", "/docs/getting-started",
        "/docs/api", "/about", "/contact",
    ),
    "email_open": ("Newsletter November", "Newsletter October", "Product launch: Routing", "Webinar invite",
                   "Nurture 1: Welcome", "Nurture 2: Case study", "Nurture 3: ROI"),
    "email_click": ("Newsletter November", "Product launch: Routing", "Webinar invite", "Nurture 2: Case study"),
    "form_fill": ("Contact us", "Talk to sales", "Request a quote", "Whitepaper: RevOps 2027", "Ebook: Lead scoring",
                  "Newsletter signup", "Report: State of B2B pipeline"),
    "content_download": ("Whitepaper: RevOps 2027", "Ebook: Lead scoring", "Report: State of B2B pipeline"),
    "webinar_registered": ("Webinar: Routing at scale", "Webinar: Scoring that sales trusts"),
    "webinar_attended": ("Webinar: Routing at scale", "Webinar: Scoring that sales trusts"),
    "demo_request": ("Demo request", "Free trial"),
    "event_attended": ("SaaStr booth", "Dreamforce dinner", "RevOps meetup"),
    "email_unsubscribe": ("All emails", "Newsletter"),
}


def messy_activities(leads: pd.DataFrame, n: int, seed: int = 7, *, end: datetime | None = None) -> pd.DataFrame:
    """`n` marketing activities of `leads` in `leadflow.scoring.model.ACTIVITY_COLUMNS`, sorted by `occurred_at`.

    Keys are `leadflow.pipeline.schema.lead_keys(leads)` (leads without a key get none). Skewed like real engagement: a
    lead's activity rate is log-normal, so most leads have few activities and some many (and some none). Times lie
    in the 365 days before `end` (default `DEFAULT_START`), more of them recent; ~8% of details are missing.
    Deterministic in (leads' keys, n, seed, end)."""
    from leadflow.pipeline.schema import lead_keys

    end = end or DEFAULT_START
    keys = lead_keys(leads).dropna().unique()
    rng = _rng(seed, "activities")
    if n == 0 or len(keys) == 0:
        return pd.DataFrame({
            "lead_key": pd.Series(dtype="string"),
            "activity_type": pd.Series(dtype="string"),
            "occurred_at": pd.Series(dtype="datetime64[ns, UTC]"),
            "detail": pd.Series(dtype="string"),
        })
    rate = rng.lognormal(0.0, 1.4, len(keys))
    cdf = np.cumsum(rate)
    who = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(keys) - 1)
    kind = _choose(rng, n, ACTIVITY_MIX)
    # Detail: one flat pool, each type drawing from its own slice of it.
    pool: list[str] = []
    offsets, sizes = [], []
    for name, _ in ACTIVITY_MIX:
        offsets.append(len(pool))
        sizes.append(len(ACTIVITY_DETAILS[name]))
        pool += ACTIVITY_DETAILS[name]
    offset, size = np.array(offsets)[kind], np.array(sizes)[kind]
    # Skewed within a type too: the first details (home page, pricing, newsletter) are the most common.
    pick = np.minimum((rng.power(0.6, n) * size).astype(np.int64), size - 1)
    detail_idx = offset + pick
    missing = rng.random(n) < 0.08
    age_s = np.minimum(rng.exponential(60 * 86_400, n), 365 * 86_400 - 1).astype(np.int64)
    stamp = pd.Timestamp(end)
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    stamps = np.datetime64(stamp.tz_localize(None).as_unit("ns").to_datetime64(), "ns") - age_s.astype("timedelta64[s]")
    order = np.argsort(stamps, kind="stable")
    key_arr = pa.array(pd.Series(keys, dtype="string").to_numpy(dtype=object), type=pa.large_string())
    type_arr = pa.array([name for name, _ in ACTIVITY_MIX], type=pa.large_string())
    pool_arr = pa.array(pool, type=pa.large_string())

    def strings(table: pa.Array, idx: np.ndarray, mask: np.ndarray | None = None) -> pd.arrays.ArrowStringArray:
        taken = table.take(pa.array(idx, mask=mask))
        return pd.arrays.ArrowStringArray(pa.chunked_array([taken]))

    return pd.DataFrame({
        "lead_key": strings(key_arr, who[order]),
        "activity_type": strings(type_arr, kind[order]),
        "occurred_at": pd.DatetimeIndex(stamps[order]).tz_localize(UTC).as_unit("ns"),
        "detail": strings(pool_arr, detail_idx[order], missing[order]),
    })


SCORING_TITLES: Final[tuple[tuple[str, str, str, float], ...]] = (
    # title, seniority, department, weight
    ("Chief Revenue Officer", "c_level", "executive", 0.03),
    ("CEO", "c_level", "executive", 0.03),
    ("VP Marketing", "vp", "marketing", 0.05),
    ("VP Sales", "vp", "sales", 0.05),
    ("Director of IT", "director", "it", 0.06),
    ("Director, Demand Generation", "director", "marketing", 0.06),
    ("Marketing Operations Manager", "manager", "marketing", 0.10),
    ("Sales Manager", "manager", "sales", 0.08),
    ("Finance Manager", "manager", "finance", 0.04),
    ("Software Engineer", "individual", "engineering", 0.12),
    ("Account Executive", "individual", "sales", 0.10),
    ("HR Specialist", "individual", "hr", 0.05),
    ("Marketing Student", "individual", "other", 0.04),
    ("Intern", "individual", "other", 0.03),
    ("Consultant", "unknown", "other", 0.16),
)


def scoring_leads(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` standardized-looking leads (as after standardize/enrich/comply) with the columns the default scoring
    model reads, plus `created_at` (UTC, in the 180 days before `DEFAULT_START`). Deterministic in (n, seed)."""
    rng = _rng(seed, "scoring-leads")
    titles = SCORING_TITLES
    t = rng.choice(len(titles), size=n, p=np.array([w for *_, w in titles]) / sum(w for *_, w in titles))
    free = rng.random(n) < 0.18
    companies = np.array([f"company{i:05d}" for i in range(max(1, n // 4))], dtype=object)
    company = companies[rng.integers(0, len(companies), n)]
    free_domains = np.array(["gmail.com", "yahoo.com", "outlook.com"], dtype=object)
    domain = np.where(free, free_domains[rng.integers(0, 3, n)], np.char.add(company.astype(str), ".com").astype(object))
    competitor = rng.random(n) < 0.004
    domain = np.where(competitor, "rivalsoft.io", domain)
    role = rng.random(n) < 0.04
    local = np.where(role, "info", np.char.add("p", np.arange(n).astype(str)).astype(object))
    email = np.char.add(np.char.add(local.astype(str), "@"), domain.astype(str))
    employees = np.round(np.exp(rng.uniform(np.log(2), np.log(50_000), n))).astype(np.int64)
    known_size = rng.random(n) < 0.85
    segment = np.where(employees <= 99, "smb", np.where(employees <= 999, "mid_market", "enterprise"))
    countries = np.array(["US", "CA", "GB", "DE", "FR", "NO", "IN", "BR", "JP", "ES"])
    country = countries[rng.choice(10, size=n, p=[0.35, 0.06, 0.1, 0.08, 0.05, 0.02, 0.12, 0.08, 0.06, 0.08])]
    industries = np.array(SAMPLE_INDUSTRIES + ("Government",))
    industry = industries[rng.integers(0, len(industries), n)]
    has_phone = rng.random(n) < 0.6
    mailable = rng.random(n) < 0.85
    created_s = rng.integers(0, 180 * 86_400, n)
    created = pd.DatetimeIndex(
        np.datetime64(DEFAULT_START.replace(tzinfo=None), "ns") - created_s.astype("timedelta64[s]")
    ).tz_localize(UTC)
    leads = pd.DataFrame({
        "lead_id": pd.array([f"00Q{i:012d}" for i in range(n)], dtype="string"),
        "source": pd.array(["salesforce"] * n, dtype="string"),
        "email": pd.array(email, dtype="string"),
        "email_domain": pd.array(domain.astype(str), dtype="string"),
        "is_free_email": pd.array(free, dtype="boolean"),
        "is_role_email": pd.array(role, dtype="boolean"),
        "is_disposable_email": pd.array(np.zeros(n, bool), dtype="boolean"),
        "company": pd.array(company.astype(str), dtype="string"),
        "title": pd.array([titles[i][0] for i in t], dtype="string"),
        "seniority": pd.array([titles[i][1] for i in t], dtype="string"),
        "department": pd.array([titles[i][2] for i in t], dtype="string"),
        "country_code": pd.array(country, dtype="string"),
        "phone_e164": pd.array(np.where(has_phone, np.char.add("+1555", np.char.zfill((np.arange(n) % 10_000_000).astype(str), 7)), None),
                               dtype="string"),
        "employees": pd.array(np.where(known_size, employees, 0), dtype="Int64").copy(),
        "industry": pd.array(industry, dtype="string"),
        "segment": pd.array(np.where(known_size, segment, None), dtype="string"),
        "mailable": pd.array(mailable, dtype="boolean"),
        "created_at": created,
    })
    leads.loc[~known_size, "employees"] = pd.NA
    return leads


def scoring_history(n: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(leads, activities) for scoring backtests: `scoring_leads(n, seed)` plus an `outcome` column (Int64 0/1:
    became an opportunity), and their activities (`messy_activities`, ~8 per lead, up to `DEFAULT_START`).

    `outcome` is drawn with a probability that rises with fit and engagement (a logistic of the default model's
    fit and engagement scores as of `DEFAULT_START`, plus noise), so a good model ranks converters first without
    separating them perfectly. Deterministic in (n, seed)."""
    from leadflow.scoring.model import load_scoring_model, score_leads

    leads = scoring_leads(n, seed)
    rng = _rng(seed, "scoring-history")
    activities = messy_activities(leads, 8 * n, seed, end=DEFAULT_START)
    scores = score_leads(leads, activities, load_scoring_model(), as_of=DEFAULT_START)
    fit = scores["fit_score"].to_numpy(dtype=float)
    engagement = scores["engagement_score"].to_numpy(dtype=float)
    logit = -3.2 + 0.035 * fit + 0.04 * engagement + rng.normal(0.0, 0.8, n)
    outcome = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    leads["outcome"] = pd.array(outcome.astype(np.int64), dtype="Int64")
    return leads, activities
