"""Accounts, and leads that refer to them (for lead-to-account matching tests and benchmarks)."""

from __future__ import annotations

import re
from typing import Final

import numpy as np
import pandas as pd

from leadflow.synth.arrays import _categories, _choose, _rng, _salesforce_ids, _slug
from leadflow.synth.vocab import COMPANY_STEMS, COMPANY_TLDS, COMPANY_WORDS, DEFAULT_START, Weighted

__all__ = ["ACCOUNT_COUNTRIES", "ACCOUNT_SUFFIXES", "OUTSIDE_STEMS", "messy_accounts", "messy_leads_for_accounts"]

ACCOUNT_SUFFIXES: Final[Weighted] = (
    ("", 30), (" Inc.", 12), (", Inc.", 5), (" Inc", 4), (" LLC", 8), (" Ltd", 5), (" Ltd.", 3), (" Limited", 2),
    (" GmbH", 5), (" S.A.", 3), (" AG", 2), (" B.V.", 2), (" Pty Ltd", 2), (" plc", 2), (" Corp.", 4),
    (" Corporation", 3), (" Co.", 2), (" Company", 1), (" GmbH & Co. KG", 1), (" SAS", 1), (" S.r.l.", 1),
)
ACCOUNT_COUNTRIES: Final[Weighted] = (
    ("US", 45), ("GB", 10), ("DE", 9), ("FR", 6), ("CA", 5), ("AU", 4), ("NL", 4), ("IN", 4), ("ES", 3), ("IT", 3),
    ("SE", 2), ("BR", 2), ("JP", 2), ("IE", 1),
)
# Stems for companies that are NOT accounts: leads from them must stay unmatched.
OUTSIDE_STEMS: Final[tuple[str, ...]] = (
    "Zephyr", "Quillon", "Yarrow", "Xantho", "Ulmus", "Vireo", "Wrenfield", "Tamarack", "Sorrel", "Rookwood",
    "Quartzline", "Pellucid", "Obsidian", "Nettle", "Marigold", "Larkspur", "Kingfisher", "Jasper", "Ivybridge",
    "Hawthorn", "Gossamer", "Foxglove", "Emberly", "Driftwood", "Cinder", "Bramble", "Amberly",
)


def _typo(rng: np.random.Generator, text: str) -> str:
    """One keyboard slip after the first 3 characters (drop, double or swap a letter)."""
    if len(text) < 6:
        return text
    i = int(rng.integers(3, len(text) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def messy_accounts(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` synthetic CRM accounts: account_id ("001…"), name, website, owner_id, employees, last_activity_at,
    country_code; all dtype "string" except employees ("Int64"). ~2% share a name and ~3% a domain with another
    account (duplicates and subsidiaries, for the tie-breakers). Deterministic in (n, seed)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    stems, words = COMPANY_STEMS, COMPANY_WORDS
    capacity = len(stems) * len(stems) * len(words)
    rng = _rng(seed, "accounts")
    pick = rng.permutation(capacity)[: min(n, capacity)]
    if n > capacity:  # beyond the name space: numbered branches ("Acme Harbor Systems 2")
        pick = np.concatenate([pick, rng.integers(0, capacity, n - capacity)])
    a, rest = np.divmod(pick, len(stems) * len(words))
    b, c = np.divmod(rest, len(words))
    base = [f"{stems[i]} {stems[j]} {words[k]}" for i, j, k in zip(a.tolist(), b.tolist(), c.tolist(), strict=True)]
    if n > capacity:
        base[capacity:] = [f"{name} {i}" for i, name in enumerate(base[capacity:], start=2)]
    tlds = np.array(COMPANY_TLDS)[rng.integers(0, len(COMPANY_TLDS), n)].tolist()
    domains = [_slug(name.replace(" ", "")) + tld for name, tld in zip(base, tlds, strict=True)]
    same_name = np.flatnonzero(rng.random(n) < 0.02)
    same_domain = np.flatnonzero(rng.random(n) < 0.03)
    if n > 1:
        for row, other in zip(same_name.tolist(), rng.integers(0, n, same_name.size).tolist(), strict=True):
            base[row] = base[other]
        for row, other in zip(same_domain.tolist(), rng.integers(0, n, same_domain.size).tolist(), strict=True):
            domains[row] = domains[other]
    suffix = np.array([s for s, _ in ACCOUNT_SUFFIXES])[_choose(rng, n, ACCOUNT_SUFFIXES)].tolist()
    the = (rng.random(n) < 0.02).tolist()
    names = [("The " if t else "") + name + s for name, s, t in zip(base, suffix, the, strict=True)]
    forms = ("https://www.{}", "http://www.{}", "www.{}", "{}", "https://{}/", "https://www.{}/en/home")
    form = rng.integers(0, len(forms), n).tolist()
    websites = [forms[f].format(d) for f, d in zip(form, domains, strict=True)]
    owner_codes = _salesforce_ids("005", 400_000 + np.sort(rng.choice(60_000, size=200, replace=False)))
    owners = np.array([code.decode() for code in owner_codes.view("S18").ravel()], dtype=object)
    last = (DEFAULT_START.timestamp() - rng.integers(0, 730 * 86400, n)).astype("datetime64[s]")
    frame = pd.DataFrame(
        {
            "account_id": [c.decode() for c in _salesforce_ids("001", 2_000_000 + np.arange(n) * 7).view("S18").ravel()],
            "name": names,
            "website": websites,
            "owner_id": owners[rng.integers(0, owners.size, n)],
            "employees": np.maximum(1, rng.lognormal(4.0, 1.6, n)).astype(np.int64),
            "last_activity_at": np.datetime_as_string(last, unit="s").astype(object) + "Z",
            "country_code": np.array([c for c, _ in ACCOUNT_COUNTRIES])[_choose(rng, n, ACCOUNT_COUNTRIES)],
        }
    ).astype("string")
    frame["employees"] = frame["employees"].astype("Int64").mask(rng.random(n) < 0.05)
    frame["website"] = frame["website"].mask(rng.random(n) < 0.04)
    frame["owner_id"] = frame["owner_id"].mask(rng.random(n) < 0.2)
    frame["last_activity_at"] = frame["last_activity_at"].mask(rng.random(n) < 0.1)
    return frame


def messy_leads_for_accounts(accounts: pd.DataFrame, n: int, seed: int = 7) -> pd.DataFrame:
    """`n` standardized-looking leads referring to `accounts` (from `messy_accounts`).

    Columns: email, email_domain, is_free_email (boolean), website, company, country_code ("string"), and the
    ground truth `true_account_id` (NA for leads of companies that are not accounts) and `kind`: "domain" (~50%:
    a company address, ~10% of them on a subdomain; or free-mail with the company website given), "name" (~20%:
    free-mail, no website, the company name re-typed: case, suffix, punctuation, a typo), "outside" (~30%: companies
    that are no account, half of them with a name close to an account's; half on free-mail). Deterministic in (accounts, n, seed).
    """
    rng = _rng(seed, "account-leads")
    m = len(accounts)
    if m == 0 and n:
        raise ValueError("accounts is empty")
    kind = _categories(rng, n, (0.5, 0.2))  # 1 domain, 2 name, 0 outside
    account = rng.integers(0, max(m, 1), n)
    site_domain = [d or "" for d in (accounts["website"].fillna("").map(_domain_of).tolist() if m else [])]
    names = accounts["name"].tolist() if m else []
    # Per account, a few ways people re-type its name (computed per account, then indexed: no per-lead Python).
    base = [re.sub(r",?\s+(Inc\.?|LLC|Ltd\.?|Limited|GmbH( & Co\. KG)?|S\.A\.|AG|B\.V\.|Pty Ltd|plc|Corp\.?|"
                   r"Corporation|Co\.|Company|SAS|S\.r\.l\.)$", "", re.sub(r"^The ", "", x)) for x in names]
    variants = np.array(
        [[b.upper() + " CORPORATION", b.lower(), b + " Inc", b.replace(" ", "  ") + ", LLC", _typo(rng, b), b]
         for b in base] or [[""] * 6], dtype=object)
    variant = rng.integers(0, variants.shape[1], n)
    free_pool = np.array(["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "yahoo.co.uk",
                          "web.de", "gmx.de", "protonmail.com"], dtype=object)
    free_domain = free_pool[rng.integers(0, free_pool.size, n)]
    domain_arr = np.array(site_domain or [""], dtype=object)[account]
    name_arr = np.array(names or [""], dtype=object)[account]

    email_domain = np.full(n, None, dtype=object)
    website = np.full(n, None, dtype=object)
    company = np.full(n, None, dtype=object)
    free = np.zeros(n, dtype=bool)
    truth = np.full(n, None, dtype=object)
    ids = accounts["account_id"].to_numpy(dtype=object) if m else np.array([None], dtype=object)

    d = np.flatnonzero((kind == 1) & (domain_arr != ""))
    via_site = rng.random(d.size) < 0.15
    sub = rng.random(d.size) < 0.1
    email_domain[d] = np.where(sub, "mail." + domain_arr[d].astype(str), domain_arr[d]).astype(object)
    email_domain[d[via_site]] = free_domain[d[via_site]]
    free[d[via_site]] = True
    website[d[via_site]] = "https://www." + domain_arr[d[via_site]].astype(str)
    company[d] = name_arr[d]
    truth[d] = ids[account[d]]

    k = np.flatnonzero((kind == 2) | ((kind == 1) & (domain_arr == "")))
    email_domain[k] = free_domain[k]
    free[k] = True
    company[k] = variants[account[k], variant[k]]
    truth[k] = ids[account[k]]

    o = np.flatnonzero(kind == 0)
    # Half the outside companies share a stem with accounts ("Acme Systems" vs the account "Acme Harbor Systems"):
    # near-but-different names that a matcher must leave unmatched.
    stem_pool = np.array(OUTSIDE_STEMS + COMPANY_STEMS, dtype=object)
    near = rng.random(o.size) < 0.5
    outside_stem = np.where(
        near,
        stem_pool[len(OUTSIDE_STEMS) + rng.integers(0, len(COMPANY_STEMS), o.size)],
        stem_pool[rng.integers(0, len(OUTSIDE_STEMS), o.size)],
    )
    outside_word = np.array(COMPANY_WORDS, dtype=object)[rng.integers(0, len(COMPANY_WORDS), o.size)]
    company[o] = outside_stem + " " + outside_word
    own = rng.random(o.size) < 0.5
    email_domain[o] = np.where(
        own, np.char.replace(np.char.lower((outside_stem + outside_word).astype(str)), " ", "").astype(object) + ".com", free_domain[o]
    )
    free[o] = ~own
    country = accounts["country_code"].to_numpy(dtype=object)[account] if m else np.full(n, None, dtype=object)
    country[o] = None
    kinds = np.array(["outside", "domain", "name"], dtype=object)[kind]
    kinds[(kind == 1) & (domain_arr == "")] = "name"
    frame = pd.DataFrame(
        {
            "email_domain": email_domain,
            "is_free_email": free,
            "website": website,
            "company": company,
            "country_code": country,
            "true_account_id": truth,
            "kind": kinds,
        }
    ).astype("string")
    frame["is_free_email"] = pd.array(free, dtype="boolean")
    return frame


def _domain_of(website: str) -> str:
    """Host of a synthetic account website without "www." (test data only: no public-suffix logic needed)."""
    host = re.sub(r"^[a-z]+://", "", website.lower()).split("/", 1)[0]
    return host.removeprefix("www.")
