"""CRM accounts and existing contacts/leads that fit a lead file: the bundled demo's reference data."""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from leadflow.synth.arrays import _rng

__all__ = ["SAMPLE_INDUSTRIES", "SAMPLE_OWNERS", "sample_reference"]

SAMPLE_OWNERS: Final[tuple[str, ...]] = tuple(f"0055e00000{i:02d}repAAA" for i in range(1, 9))
SAMPLE_INDUSTRIES: Final[tuple[str, ...]] = (
    "Software", "Manufacturing", "Retail", "Financial Services", "Healthcare", "Education", "Media", "Logistics",
)


def sample_reference(leads: pd.DataFrame, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CRM accounts and existing contacts/leads that fit a lead file (for the bundled demo): about 60% of the
    corporate e-mail domains are accounts (80% of them with firmographics); about 5% of the people are already
    contacts or leads, a fifth of those under another address. Deterministic in (leads, seed)."""
    from leadflow.identity.domains import is_free_domain

    rng = _rng(seed, "sample-reference")
    email = leads["email"].astype("string").str.strip().str.lower()
    domain = email.str.extract(r"@([a-z0-9.-]+\.[a-z]{2,})$")[0]
    corporate = domain.notna() & ~domain.fillna("").map(is_free_domain).astype(bool)
    by_domain = (
        pd.DataFrame({"domain": domain[corporate], "company": leads["company"][corporate]})
        .dropna()
        .groupby("domain", sort=True)["company"]
        .agg(lambda names: names.value_counts().index[0])
    )
    chosen = by_domain[rng.random(len(by_domain)) < 0.6]
    n = len(chosen)
    known = rng.random(n) < 0.8
    employees = np.round(np.exp(rng.uniform(np.log(5), np.log(50_000), n)))
    accounts = pd.DataFrame(
        {
            "account_id": [f"0015e0000{i:06d}AAA" for i in range(1, n + 1)],
            "name": chosen.to_numpy(),
            "website": ["https://www." + d for d in chosen.index],
            "owner_id": np.array(SAMPLE_OWNERS)[rng.integers(0, len(SAMPLE_OWNERS), n)],
            "employees": np.where(known, employees, np.nan),
            "annual_revenue": np.where(known, np.round(employees * rng.uniform(8e4, 3e5, n), -3), np.nan),
            "industry": np.where(known, np.array(SAMPLE_INDUSTRIES)[rng.integers(0, len(SAMPLE_INDUSTRIES), n)], None),
        }
    )
    accounts["employees"] = accounts["employees"].astype("Int64")
    accounts["annual_revenue"] = accounts["annual_revenue"].astype("Float64")

    people = leads[email.notna()].copy()
    picked = people[rng.random(len(people)) < 0.05]
    other_address = rng.random(len(picked)) < 0.2
    record_email = email[picked.index].where(
        ~other_address, picked["first_name"].str.lower().str[:1] + "." + picked["last_name"].str.lower().str.replace(
            r"[^a-z]", "", regex=True) + "@" + domain[picked.index].fillna("example.com"))
    is_contact = rng.random(len(picked)) < 0.6
    existing = pd.DataFrame(
        {
            "record_id": [("0035e0000" if c else "00Q5e0000") + f"{i:06d}XYZ" for i, c in enumerate(is_contact, 1)],
            "object": np.where(is_contact, "Contact", "Lead"),
            "email": record_email.to_numpy(),
            "first_name": picked["first_name"].to_numpy(),
            "last_name": picked["last_name"].to_numpy(),
            "company": picked["company"].to_numpy(),
        }
    )
    return accounts.astype({"account_id": "string", "name": "string", "website": "string", "owner_id": "string",
                            "industry": "string"}), existing.astype("string")
