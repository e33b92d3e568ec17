"""Leads as the route stage sees them, for the reference routing config (routing tests and benchmarks)."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from leadflow.synth.arrays import _rng
from leadflow.synth.reference import SAMPLE_INDUSTRIES

__all__ = ["ROUTING_OWNERS", "ROUTING_STATES", "routing_leads"]

ROUTING_STATES: Final[tuple[tuple[str, str, int, int], ...]] = (
    # (state_code, country, first ZIP, last ZIP): a few states per region, ZIPs inside the state's real range.
    ("US-CA", "US", 90001, 96162), ("US-WA", "US", 98001, 99403), ("US-CO", "US", 80001, 81658),
    ("US-TX", "US", 75001, 79999), ("US-NY", "US", 10001, 14925), ("US-MA", "US", 1001, 2791),
    ("US-FL", "US", 32003, 34997), ("US-IL", "US", 60001, 62999), ("CA-ON", "CA", 0, 0), ("CA-BC", "CA", 0, 0),
)
ROUTING_OWNERS: Final[tuple[str, ...]] = (
    "0058c00000AveryQ", "0058c00000CarlaQ", "0058c00000HugoQ", "0058c00000ElseQ", "0058c00099GoneQ",
)
"""Account owners `routing_leads` draws from: users of the reference routing config, one inactive, one unknown."""


def routing_leads(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` leads as the route stage sees them (after enrich/score/lifecycle), with the columns the reference routing
    config (`reference/routing.yaml`) reads: lead_id, source, email, company, lead_source, country_code,
    state_code, postal_code, segment, industry, account_owner_id (~20%), duplicate_of (~4%), grade, score,
    lifecycle_stage, mailable. About 45% US, 8% CA, 35% EMEA, the rest elsewhere. Deterministic in (n, seed)."""
    rng = _rng(seed, "routing-leads")
    countries = np.array(["US", "CA", "GB", "DE", "FR", "SE", "NL", "ES", "IN", "BR", "JP", "AU"])
    country = countries[rng.choice(len(countries), size=n,
                                   p=[0.45, 0.08, 0.1, 0.08, 0.06, 0.03, 0.04, 0.04, 0.05, 0.03, 0.02, 0.02])]
    us_states = [s for s in ROUTING_STATES if s[1] == "US"]
    ca_states = [s for s in ROUTING_STATES if s[1] == "CA"]
    state = np.full(n, None, dtype=object)
    postal = np.full(n, None, dtype=object)
    us = np.flatnonzero(country == "US")
    pick = rng.integers(0, len(us_states), us.size)
    state[us] = np.array([s[0] for s in us_states], dtype=object)[pick]
    low = np.array([s[2] for s in us_states])[pick]
    high = np.array([s[3] for s in us_states])[pick]
    zips = low + (rng.random(us.size) * (high - low + 1)).astype(np.int64)
    postal[us] = np.char.zfill(zips.astype(str), 5).astype(object)
    ca = np.flatnonzero(country == "CA")
    state[ca] = np.array([s[0] for s in ca_states], dtype=object)[rng.integers(0, len(ca_states), ca.size)]
    postal[ca] = np.where(state[ca] == "CA-ON", "M5V 2T6", "V6B 1A1")
    missing_postal = rng.random(n) < 0.07
    postal[missing_postal] = None
    segment = np.array(["smb", "mid_market", "enterprise"], dtype=object)[rng.choice(3, size=n, p=[0.55, 0.3, 0.15])]
    segment[rng.random(n) < 0.08] = None
    industries = np.array(SAMPLE_INDUSTRIES, dtype=object)
    sources = np.array(["Web Form", "Demo Request", "Webinar", "Content Download", "Paid Search", "Referral"], dtype=object)
    lead_source = sources[rng.choice(len(sources), size=n, p=[0.3, 0.1, 0.15, 0.2, 0.15, 0.1])]
    owners = np.array(ROUTING_OWNERS, dtype=object)
    account_owner = np.where(rng.random(n) < 0.2, owners[rng.integers(0, len(owners), n)], None)
    duplicate = np.where(rng.random(n) < 0.04, np.char.add("00Q9", np.char.zfill(np.arange(n).astype(str), 11)).astype(object), None)
    score = np.round(rng.gamma(2.0, 20.0, n), 1)
    grade = np.array(["A", "B", "C", "D"], dtype=object)[rng.choice(4, size=n, p=[0.08, 0.17, 0.35, 0.4])]
    email = np.char.add(np.char.add("p", np.arange(n).astype(str)), "@example.com").astype(object)
    email[rng.random(n) < 0.02] = None
    ids = np.char.add("00Q8", np.char.zfill(np.arange(n).astype(str), 11))
    return pd.DataFrame({
        "lead_id": pd.array(ids, dtype="string"),
        "source": pd.array(np.full(n, "salesforce"), dtype="string"),
        "email": pd.array(email, dtype="string"),
        "company": pd.array(np.char.add("company", (np.arange(n) % 50_000).astype(str)), dtype="string"),
        "lead_source": pd.array(lead_source, dtype="string"),
        "country_code": pd.array(country, dtype="string"),
        "state_code": pd.array(state, dtype="string"),
        "postal_code": pd.array(postal, dtype="string"),
        "segment": pd.array(segment, dtype="string"),
        "industry": pd.array(industries[rng.integers(0, len(industries), n)], dtype="string"),
        "account_owner_id": pd.array(account_owner, dtype="string"),
        "duplicate_of": pd.array(duplicate, dtype="string"),
        "score": pd.array(score, dtype="Float64"),
        "grade": pd.array(grade, dtype="string"),
        "lifecycle_stage": pd.array(np.where(score >= 60, "mql", "new"), dtype="string"),
        "mailable": pd.array(rng.random(n) < 0.85, dtype="boolean"),
    })
