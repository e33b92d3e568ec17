"""Lead-to-account matching: by registered e-mail/website domain first, then by blocked fuzzy company name.

A pure function over DataFrames (not yet a pipeline stage). Every per-value Python function runs once per distinct
value (`leadflow.pipeline.uniques.map_unique`) and results are mapped back by integer codes, so 1M leads cost what their
distinct domains and names cost.

Confidence scale (documented contract, `account_match_confidence`):

- domain, exactly one account on that domain: 1.0; several accounts, decided by the tie-breakers: 0.97
- name, identical normalized name, one account: 0.95; several accounts (tie-breakers decided): 0.93
- name, fuzzy: 0.95 × score/100 (so a fuzzy match never outranks an exact one); ties between equally good names
  are decided by the tie-breakers too
- none: 0.0. Anything below `min_confidence` is reported as none: an empty account beats a wrong one.

Guards against wrong name matches: fuzzy candidates share the first `block_prefix` characters of the normalized name
(blocking, which is also what makes 1M × 100k feasible); a fuzzy pair must also agree word by word (at most
`max_word_edits` typos per word, or a split/joined word), so "Acme Rookwood Media" never becomes the account
"Acme Ironwood Media" however high its whole-string score. Among several accounts with the same domain or name, one
in the lead's `country_code` wins (`prefer_same_country`), then the `tie_breakers`, then the smallest account_id.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import tldextract
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from leadflow.identity.domains import is_free_domain
from leadflow.pipeline.settings import REFERENCE_DIR
from leadflow.pipeline.uniques import map_unique
from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = [
    "COMPANY_SUFFIXES",
    "MATCH_COLUMNS",
    "MatchConfig",
    "load_match_config",
    "match_accounts",
    "normalize_company",
    "registered_domain",
]

COMPANY_SUFFIXES: Final[Path] = REFERENCE_DIR / "company_suffixes.yaml"
MATCH_COLUMNS: Final[tuple[str, ...]] = (
    "account_id",
    "account_owner_id",
    "account_match_method",
    "account_match_confidence",
)

DOMAIN_CONFIDENCE: Final[float] = 1.0
DOMAIN_TIE_CONFIDENCE: Final[float] = 0.97
NAME_EXACT_CONFIDENCE: Final[float] = 0.95
NAME_TIE_CONFIDENCE: Final[float] = 0.93

TieBreaker = Literal["has_owner", "most_employees", "most_recent_activity"]
Scorer = Literal["ratio", "token_sort_ratio", "token_set_ratio", "WRatio"]

_SCORERS: Final[dict[str, Callable[..., float]]] = {
    "ratio": fuzz.ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
}
_MAX_CELLS: Final[int] = 20_000_000
"""Largest score matrix computed at once (float32: 80 MB), so one huge block cannot blow the memory."""


# ----------------------------------------------------------------------------------------------------------- config


class MatchConfig(BaseModel):
    """How leads are matched to accounts (YAML-loadable with `load_match_config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_confidence: float = Field(default=0.85, ge=0.0, le=1.0, description="Below this: no match.")
    # 92, not 90: at 90 "Brightpath Technologies" matched the account "Brightpath Echo Technologies" (90.2) in the
    # synthetic benchmark, while one-letter typos in names of 13+ characters still score above 92.
    fuzzy_cutoff: float = Field(default=92.0, ge=0.0, le=100.0, description="Lowest fuzzy name score (0-100).")
    tie_breakers: list[TieBreaker] = Field(
        default_factory=lambda: ["has_owner", "most_recent_activity", "most_employees"],
        description="Order in which to prefer one of several equally good accounts; account_id decides last.",
    )
    prefer_same_country: bool = Field(
        default=True,
        description="Among several accounts on the same domain or name, prefer one in the lead's country_code "
        "(before the tie_breakers).",
    )
    scorer: Scorer = "ratio"
    max_word_edits: int | None = Field(
        default=1,
        ge=0,
        description="A fuzzy pair with as many words on both sides may differ by at most this many typos (OSA edits: "
        "a swap is one) per word; None: off. Stops 'Acme Rookwood Media' matching 'Acme Ironwood Media'.",
    )
    block_prefix: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Fuzzy candidates share this many leading characters of the name.",
    )

    @field_validator("tie_breakers")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("tie_breakers lists a rule twice")
        return value


def load_match_config(path: Path) -> MatchConfig:
    """Load and validate a matching config YAML; errors name the file and YAML path."""
    return parse_model(MatchConfig, load_yaml(path), path)


class _SuffixData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    legal_suffixes: list[str]
    leading_words: list[str] = Field(default_factory=list)
    junk_names: list[str] = Field(default_factory=list)


@cache
def _suffix_data() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    data = parse_model(_SuffixData, load_yaml(COMPANY_SUFFIXES), COMPANY_SUFFIXES)
    return (
        frozenset(data.legal_suffixes),
        frozenset(data.leading_words),
        frozenset(data.junk_names),
    )


# ------------------------------------------------------------------------------------------------------- normalizers


@cache
def _extractor() -> tldextract.TLDExtract:
    # Offline: the bundled public-suffix snapshot; the default tries the network and logs a traceback.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def registered_domain(value: Any) -> str | None:
    """The registrable domain of a host, URL or e-mail address (`https://www.x.co.uk/a` → `x.co.uk`), else None."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip().lower()
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    if not text:
        return None
    ext = _extractor()(text)
    if not ext.domain or not ext.suffix:
        return None  # "localhost", "n/a", IP addresses: nothing to match on
    return f"{ext.domain}.{ext.suffix}"


_COMBINING = re.compile("[\u0300-\u036f]")
_JOINERS = re.compile(r"[.'’`´]")  # "S.A." → "sa", "O'Brien" → "obrien"
_NON_WORD = re.compile(r"[\W_]+")
_REPEATS = re.compile(r"(.)\1+")


def normalize_company(name: Any) -> str:
    """Matching key of a company name: case-folded, accents/punctuation/legal suffixes/leading "The" removed."""
    if name is None or name is pd.NA or (isinstance(name, float) and np.isnan(name)):
        return ""
    suffixes, leading, junk = _suffix_data()
    text = unicodedata.normalize("NFKC", str(name)).casefold().replace("&", " and ").replace("+", " and ")
    text = _COMBINING.sub("", unicodedata.normalize("NFD", text))
    words = _NON_WORD.sub(" ", _JOINERS.sub("", text)).split()
    if " ".join(words) in junk:
        return ""
    while len(words) > 1 and words[0] in leading:
        words = words[1:]
    while len(words) > 1 and words[-1] in suffixes:
        words = words[:-1]
    # A typo in a legal suffix ("Corporattion", "Limted", "IInc") must not keep it.
    if len(words) > 1 and len(words[-1]) >= 3 and _near_suffix(words[-1]):
        words = words[:-1]
        while len(words) > 1 and words[-1] in suffixes:
            words = words[:-1]
    return " ".join(words)


@cache
def _long_suffixes() -> tuple[str, ...]:
    return tuple(sorted(w for w in _suffix_data()[0] if len(w) >= 5))


@cache
def _collapsed_suffixes() -> frozenset[str]:
    return frozenset(_REPEATS.sub(r"\1", w) for w in _suffix_data()[0])


def _near_suffix(word: str) -> bool:
    """A legal suffix with one typo (5+ letters) or a doubled letter ("IInc", "LLLC")."""
    if _REPEATS.sub(r"\1", word) in _collapsed_suffixes():
        return True
    return (
        len(word) >= 5 and process.extractOne(word, _long_suffixes(), scorer=OSA.distance, score_cutoff=1) is not None
    )


# ---------------------------------------------------------------------------------------------------------- helpers


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """`frame[name]` as strings, or an all-NA column when it is absent."""
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _account_rank(accounts: pd.DataFrame, tie_breakers: list[str]) -> np.ndarray:
    """Rank (0 = preferred) of each account row under the configured tie-breakers, then account_id."""
    keys: list[np.ndarray] = []
    for rule in tie_breakers:
        if rule == "has_owner":
            keys.append(-(_column(accounts, "owner_id").str.strip().fillna("") != "").to_numpy(dtype=np.int64))
        elif rule == "most_employees":
            employees = pd.to_numeric(accounts.get("employees"), errors="coerce") if "employees" in accounts else None
            values = np.zeros(len(accounts)) if employees is None else employees.to_numpy(dtype=float, na_value=np.nan)
            keys.append(-np.nan_to_num(values, nan=-1.0))
        else:
            raw = accounts["last_activity_at"] if "last_activity_at" in accounts else pd.Series(index=accounts.index)
            when = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
            ns = when.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            ns[when.isna().to_numpy()] = np.iinfo(np.int64).min
            keys.append(-ns.astype(float))
    ids = _column(accounts, "account_id").fillna("").to_numpy(dtype=object)
    # lexsort sorts by the LAST key first: the account id is the final, deterministic tie-breaker.
    order = np.lexsort([pd.factorize(ids, sort=True)[0], *reversed(keys)]) if len(accounts) else np.zeros(0, int)
    rank = np.empty(len(accounts), dtype=np.int64)
    rank[order] = np.arange(len(accounts))
    return rank


def _best_per_key(keys: pd.Series, rank: np.ndarray) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """(distinct non-empty keys, best account row per key, accounts per key)."""
    frame = pd.DataFrame({"key": keys.to_numpy(dtype=object), "rank": rank, "row": np.arange(len(keys))})
    frame = frame[frame["key"].notna() & (frame["key"] != "")]
    frame = frame.sort_values("rank", kind="stable")
    grouped = frame.groupby("key", sort=False)
    best = grouped["row"].first()
    count = grouped["row"].size().reindex(best.index)
    return (
        pd.Index(best.index, dtype=object),
        best.to_numpy(dtype=np.int64),
        count.to_numpy(dtype=np.int64),
    )


def _fuzzy(
    queries: np.ndarray,
    choices: np.ndarray,
    choice_rank: np.ndarray,
    config: MatchConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(index into `choices` or -1, score) per query: best score ≥ cutoff, equal scores decided by rank."""
    best_choice = np.full(len(queries), -1, dtype=np.int64)
    best_score = np.zeros(len(queries), dtype=np.float64)
    if not len(queries) or not len(choices):
        return best_choice, best_score
    scorer, block = _SCORERS[config.scorer], config.block_prefix
    # Blocking: only names sharing their first `block` characters are compared, so the work grows with block
    # sizes, not with queries × accounts. A typo in those first characters is the price (it goes unmatched).
    q_key = np.array([q[:block] for q in queries], dtype=object)
    c_key = np.array([c[:block] for c in choices], dtype=object)
    c_order = np.argsort(c_key, kind="stable")
    c_sorted = c_key[c_order]
    q_codes, q_blocks = pd.factorize(q_key)
    for b, key in enumerate(q_blocks):
        lo, hi = (
            np.searchsorted(c_sorted, key, "left"),
            np.searchsorted(c_sorted, key, "right"),
        )
        if lo == hi:
            continue
        cand = c_order[lo:hi]
        cand_names = choices[cand].tolist()
        cand_rank = choice_rank[cand]
        q_rows = np.flatnonzero(q_codes == b)
        step = max(1, _MAX_CELLS // len(cand))
        for start in range(0, len(q_rows), step):
            rows = q_rows[start : start + step]
            # cdist runs in C over all threads; scores under the cutoff come back as 0.
            scores = process.cdist(
                queries[rows].tolist(),
                cand_names,
                scorer=scorer,
                score_cutoff=config.fuzzy_cutoff,
                dtype=np.float32,
                workers=-1,
            )
            top = scores.max(axis=1)
            tied_rank = np.where(scores == top[:, None], cand_rank[None, :], np.iinfo(np.int64).max)
            pick = tied_rank.argmin(axis=1)
            ok = top >= config.fuzzy_cutoff
            best_choice[rows[ok]] = cand[pick[ok]]
            best_score[rows[ok]] = top[ok]
    return best_choice, best_score


def _same_country(
    lead_key: np.ndarray, lead_country: np.ndarray, acct_key: np.ndarray, acct_country: np.ndarray, rank: np.ndarray
) -> np.ndarray:
    """Per lead, the best-ranked account with the lead's key (domain or name index) AND country, else -1.

    Keys and countries are integer codes (-1: none), so the pair lookup is a sorted-array search, not string work.
    """
    out = np.full(len(lead_key), -1, dtype=np.int64)
    rows = np.flatnonzero((acct_key >= 0) & (acct_country >= 0))
    if not len(rows) or not len(lead_key):
        return out
    width = int(max(acct_country.max(), lead_country.max(), 0)) + 1
    rows = rows[np.argsort(rank[rows], kind="stable")]
    pairs, first = np.unique(acct_key[rows] * width + acct_country[rows], return_index=True)
    best = rows[first]  # np.unique's first occurrence in rank order: the preferred account per pair
    wanted = lead_key * width + lead_country
    pos = np.minimum(np.searchsorted(pairs, wanted), len(pairs) - 1)
    hit = (lead_key >= 0) & (lead_country >= 0) & (pairs[pos] == wanted)
    out[hit] = best[pos[hit]]
    return out


def _words_agree(query: str, choice: str, config: MatchConfig) -> bool:
    """Second look at a fuzzy pair: same word count → every word within `max_word_edits`; else the text without
    spaces at least `fuzzy_cutoff` alike."""
    q_words, c_words = query.split(), choice.split()
    if len(q_words) != len(c_words):
        # "Blue Heron" vs "Blueheron": a split or joined word is a typo, not another company.
        return fuzz.ratio(query.replace(" ", ""), choice.replace(" ", "")) >= config.fuzzy_cutoff
    if config.max_word_edits is None:
        return True
    limit = config.max_word_edits

    def close(pairs: Iterable[tuple[str, str]]) -> bool:
        return all(OSA.distance(q, c, score_cutoff=limit) <= limit for q, c in pairs)

    # In order; and, for the token scorers that ignore word order, also sorted (a typo can move a word in the sort).
    return close(zip(q_words, c_words, strict=True)) or (
        config.scorer != "ratio" and close(zip(sorted(q_words), sorted(c_words), strict=True))
    )


# ------------------------------------------------------------------------------------------------------------- main


def match_accounts(
    leads: pd.DataFrame,
    accounts: pd.DataFrame,
    config: MatchConfig | None = None,
    *,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Match each lead to one account: by domain, else by company name, else none (see the module docstring).

    Returns, on `leads.index`, exactly MATCH_COLUMNS: account_id, account_owner_id, account_match_method
    ("domain"/"name"/"none") as "string", and account_match_confidence as float64 (0.0 for none).
    `timings`, when given, receives the seconds spent per phase: "domain", "name_exact", "fuzzy".
    """
    config = config or MatchConfig()
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if timings is not None:
            timings[phase] = timings.get(phase, 0.0) + now - clock
        clock = now

    n = len(leads)
    acct = accounts.reset_index(drop=True)
    rank = _account_rank(acct, list(config.tie_breakers))
    account_ids = _column(acct, "account_id").to_numpy(dtype=object, na_value=None)
    owner_ids = _column(acct, "owner_id").to_numpy(dtype=object, na_value=None)

    # Country codes as shared integer codes for leads and accounts (-1: unknown or not preferring countries).
    countries = (
        pd.concat([_column(acct, "country_code"), _column(leads, "country_code")], ignore_index=True)
        .str.strip()
        .str.upper()
    )
    country_codes = pd.factorize(countries)[0] if config.prefer_same_country else np.full(len(countries), -1)
    acct_country, lead_country = country_codes[: len(acct)], country_codes[len(acct) :]

    chosen = np.full(n, -1, dtype=np.int64)  # account row per lead
    method = np.zeros(n, dtype=np.int8)  # 0 none, 1 domain, 2 name
    confidence = np.zeros(n, dtype=np.float64)

    # (1) Domain. Accounts: `domain` where given, else `website`; free-mail domains never identify an account.
    acct_domain = map_unique(_column(acct, "domain").fillna(_column(acct, "website")), registered_domain)
    free_acct = map_unique(acct_domain, is_free_domain, dtype="boolean").fillna(False)
    domains, domain_best, domain_count = _best_per_key(acct_domain.mask(free_acct.to_numpy(dtype=bool)), rank)

    def lead_domain_hits(values: pd.Series) -> np.ndarray:
        """Row of `domains` per lead (-1: none, missing or free-mail)."""
        codes, uniques = map_unique(values, registered_domain).factorize()
        pos = domains.get_indexer(np.asarray(uniques, dtype=object))
        pos[np.fromiter((is_free_domain(u) for u in uniques), dtype=bool, count=len(uniques))] = -1
        return np.where(codes >= 0, pos[codes] if len(pos) else -1, -1)

    lead_free = (
        leads["is_free_email"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if "is_free_email" in leads.columns
        else np.zeros(n, dtype=bool)
    )
    email_hit = lead_domain_hits(_column(leads, "email_domain"))
    email_hit[lead_free] = -1  # trust the standardize stage's verdict too, even for a domain our list lacks
    # Free-mail, missing or unknown e-mail domain: the lead's own website may still name its company.
    web_hit = lead_domain_hits(_column(leads, "website"))
    dom = np.where(email_hit >= 0, email_hit, web_hit)
    has = dom >= 0
    chosen[has] = domain_best[dom[has]]
    local = _same_country(
        dom, lead_country, domains.get_indexer(acct_domain.to_numpy(dtype=object, na_value=None)), acct_country, rank
    )
    chosen[local >= 0] = local[local >= 0]
    method[has] = 1
    confidence[has] = np.where(domain_count[dom[has]] > 1, DOMAIN_TIE_CONFIDENCE, DOMAIN_CONFIDENCE)
    lap("domain")

    # (2) Name, for the rest: exact normalized name first, then fuzzy within blocks, on distinct names only.
    acct_names = map_unique(_column(acct, "name"), normalize_company).fillna("")
    names, name_best, name_count = _best_per_key(acct_names, rank)
    rest = np.flatnonzero(~has)
    if len(rest) and len(names):
        lead_names = map_unique(_column(leads, "company").iloc[rest], normalize_company).fillna("")
        codes, uniques = pd.factorize(lead_names.to_numpy(dtype=object))
        pos = names.get_indexer(uniques)
        u_name = pos.copy()  # index into `names` per distinct lead name, -1: none
        tied = name_count[np.maximum(pos, 0)] > 1
        u_conf = np.where(pos >= 0, np.where(tied, NAME_TIE_CONFIDENCE, NAME_EXACT_CONFIDENCE), 0.0)
        fuzzy_rows = np.flatnonzero((pos < 0) & (np.array([len(u) for u in uniques]) >= config.block_prefix))
        lap("name_exact")
        if len(fuzzy_rows):
            queries, name_array = (
                np.asarray(uniques, dtype=object)[fuzzy_rows],
                np.asarray(names, dtype=object),
            )
            # A name's rank is its best account's, so equally good names are decided by the tie-breakers too.
            pick, score = _fuzzy(queries, name_array, rank[name_best], config)
            # One Python call per distinct matched name (not per lead): cheap next to the matrix work.
            for i in np.flatnonzero(pick >= 0):
                if not _words_agree(queries[i], name_array[pick[i]], config):
                    pick[i] = -1
            ok = pick >= 0
            u_name[fuzzy_rows[ok]] = pick[ok]
            u_conf[fuzzy_rows[ok]] = NAME_EXACT_CONFIDENCE * score[ok] / 100.0
        lap("fuzzy")
        lead_name = np.where(codes >= 0, u_name[codes], -1)
        lead_conf = u_conf[codes]
        hit = lead_name >= 0
        lead_account = np.where(hit, name_best[np.maximum(lead_name, 0)], -1)
        local = _same_country(
            lead_name, lead_country[rest], names.get_indexer(acct_names.to_numpy(dtype=object)), acct_country, rank
        )
        lead_account[local >= 0] = local[local >= 0]
        chosen[rest[hit]] = lead_account[hit]
        method[rest[hit]] = 2
        confidence[rest[hit]] = lead_conf[hit]

    # (4) Empty beats wrong: anything under the bar is no match at all.
    weak = confidence < config.min_confidence
    chosen[weak], method[weak], confidence[weak] = -1, 0, 0.0

    found = chosen >= 0
    ids = np.full(n, None, dtype=object)
    owners = np.full(n, None, dtype=object)
    ids[found] = account_ids[chosen[found]]
    owners[found] = owner_ids[chosen[found]]
    return pd.DataFrame(
        {
            "account_id": pd.array(ids, dtype="string"),
            "account_owner_id": pd.array(owners, dtype="string"),
            "account_match_method": pd.array(
                np.array(["none", "domain", "name"], dtype=object)[method],
                dtype="string",
            ),
            "account_match_confidence": confidence,
        },
        index=leads.index,
    )
