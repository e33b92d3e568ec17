"""Lead-to-account matching: by registered e-mail/website domain first, then by blocked fuzzy company name.

A pure function over DataFrames (not yet a pipeline stage). Every per-value Python function runs once per distinct
value (`leadflow.pipeline.uniques.map_unique`) and results are mapped back by integer codes, so 1M leads cost what their
distinct domains and names cost.

Accounts may carry prepared key columns (`leadflow.identity.prepared`: domain_key, name_key), as a CRM mirror stores
them; missing ones are computed per call. Either way a batch only touches the accounts sharing a domain, a name or a
name block with it, and ranks (tie-breakers) only the accounts that can win: 100 leads against 50,000 prepared accounts
take well under 0.1 s, with the same answers as a full pass.

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

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from leadflow.identity.domains import is_free_domain
from leadflow.identity.normalize import COMPANY_SUFFIXES, normalize_company, registered_domain, registered_domains
from leadflow.identity.prepared import keys_in, with_account_keys
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
_WHOLE_RANK_SHARE: Final[int] = 10
"""A batch with at least one lead per this many accounts ranks all accounts once rather than the reachable ones."""
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


class _Ranker:
    """Tie-breaker ranks of account rows (positions in `accounts`), comparable among the rows of one call.

    For a small batch only the few accounts that can win are ranked, each time; for a batch that reaches most
    accounts anyway all are ranked once and sliced. Both orders agree, so the answers do too."""

    def __init__(self, accounts: pd.DataFrame, tie_breakers: list[str], whole: bool) -> None:
        self._accounts, self._tie_breakers = accounts, tie_breakers
        self._all: np.ndarray | None = None
        self._whole = whole

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if not self._whole:
            return _account_rank(self._accounts.iloc[rows], self._tie_breakers)
        if self._all is None:
            self._all = _account_rank(self._accounts, self._tie_breakers)
        return self._all[rows]


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
    choice_rank: np.ndarray | None,
    config: MatchConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """(index into `choices` or -1, score) per query: best score ≥ cutoff, equal scores decided by rank (None:
    by position in `choices`)."""
    best_choice, best_score, _ = _fuzzy_scan(queries, choices, choice_rank, config)
    return best_choice, best_score


def _fuzzy_scan(
    queries: np.ndarray,
    choices: np.ndarray,
    choice_rank: np.ndarray | None,
    config: MatchConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_fuzzy`, plus per query how many choices share its best score (more than one: the rank decided)."""
    best_choice = np.full(len(queries), -1, dtype=np.int64)
    best_score = np.zeros(len(queries), dtype=np.float64)
    n_top = np.zeros(len(queries), dtype=np.int64)
    if not len(queries) or not len(choices):
        return best_choice, best_score, n_top
    scorer, block = _SCORERS[config.scorer], config.block_prefix
    if choice_rank is None:
        choice_rank = np.arange(len(choices), dtype=np.int64)
    # Blocking: only names sharing their first `block` characters are compared, so the work grows with block
    # sizes, not with queries × accounts. A typo in those first characters is the price (it goes unmatched).
    # Integer block codes shared by queries and choices; candidates of a block in their order in `choices`.
    codes = pd.factorize(np.array([t[:block] for t in (*queries, *choices)], dtype=object))[0]
    q_codes, c_codes = codes[: len(queries)], codes[len(queries) :]
    c_order = np.argsort(c_codes, kind="stable")
    bounds = np.searchsorted(c_codes[c_order], np.arange(codes.max() + 2))
    for b in pd.unique(q_codes):
        lo, hi = bounds[b], bounds[b + 1]
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
            at_top = scores == top[:, None]
            tied_rank = np.where(at_top, cand_rank[None, :], np.iinfo(np.int64).max)
            pick = tied_rank.argmin(axis=1)
            ok = top >= config.fuzzy_cutoff
            best_choice[rows[ok]] = cand[pick[ok]]
            best_score[rows[ok]] = top[ok]
            n_top[rows[ok]] = at_top[ok].sum(axis=1)
    return best_choice, best_score, n_top


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

    `accounts` may carry the key columns of `leadflow.identity.prepared.prepare_accounts` (a CRM mirror stores
    them): they are used as they are; missing ones are computed here, with the same result. Either way only the
    accounts sharing a domain, a name or a name block with the batch are looked at beyond one `isin` per key, so
    100 leads against 50,000 prepared accounts cost what those few accounts cost.

    Returns, on `leads.index`, exactly MATCH_COLUMNS: account_id, account_owner_id, account_match_method
    ("domain"/"name"/"none") as "string", and account_match_confidence as float64 (0.0 for none).
    `timings`, when given, receives the seconds spent per phase: "keys" (account keys the frame lacks), "domain",
    "name_exact", "fuzzy".
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
    acct = with_account_keys(accounts).reset_index(drop=True)
    ranker = _Ranker(acct, list(config.tie_breakers), whole=n * _WHOLE_RANK_SHARE >= len(acct))
    lap("keys")
    ids = np.full(n, None, dtype=object)  # account_id per lead
    owners = np.full(n, None, dtype=object)
    method = np.zeros(n, dtype=np.int8)  # 0 none, 1 domain, 2 name
    confidence = np.zeros(n, dtype=np.float64)
    if not len(acct):  # no account to match: every lead gets none, as the steps below would find (without their keys)
        for phase in ("domain", "name_exact", "fuzzy"):
            lap(phase)
        return _matches(ids, owners, method, confidence, leads.index)
    lead_country = _column(leads, "country_code")

    # (1) Domain. Accounts: `domain` where given, else `website` (their domain_key); free-mail domains never
    # identify an account. Only the accounts on one of the batch's domains take part.
    lead_free = (
        leads["is_free_email"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if "is_free_email" in leads.columns
        else np.zeros(n, dtype=bool)
    )
    email_domain = registered_domains(_column(leads, "email_domain"))
    web_domain = registered_domains(_column(leads, "website"))
    wanted = np.concatenate([np.asarray(d.dropna().unique(), dtype=object) for d in (email_domain, web_domain)])
    rows = _rows_in(acct["domain_key"], pd.unique(wanted))
    sub = acct.iloc[rows].reset_index(drop=True)
    acct_domain = sub["domain_key"].astype("string")
    free_acct = map_unique(acct_domain, is_free_domain, dtype="boolean").fillna(False).to_numpy(dtype=bool)
    acct_domain = acct_domain.mask(free_acct)
    rank = ranker(rows)
    acct_country, lead_codes = _country_codes(sub, lead_country, config)
    domains, domain_best, domain_count = _best_per_key(acct_domain, rank)

    def lead_domain_hits(values: pd.Series) -> np.ndarray:
        """Row of `domains` per lead (-1: none, missing or free-mail)."""
        codes, uniques = values.factorize()
        pos = domains.get_indexer(np.asarray(uniques, dtype=object))
        pos[np.fromiter((is_free_domain(u) for u in uniques), dtype=bool, count=len(uniques))] = -1
        return np.where(codes >= 0, pos[codes] if len(pos) else -1, -1)

    email_hit = lead_domain_hits(email_domain)
    email_hit[lead_free] = -1  # trust the standardize stage's verdict too, even for a domain our list lacks
    # Free-mail, missing or unknown e-mail domain: the lead's own website may still name its company.
    web_hit = lead_domain_hits(web_domain)
    dom = np.where(email_hit >= 0, email_hit, web_hit)
    has = dom >= 0
    chosen = np.where(has, domain_best[np.maximum(dom, 0)] if len(domains) else -1, -1)
    local = _same_country(
        dom, lead_codes, domains.get_indexer(acct_domain.to_numpy(dtype=object, na_value=None)), acct_country, rank
    )
    chosen[local >= 0] = local[local >= 0]
    _take(sub, chosen, has, ids, owners)
    method[has] = 1
    confidence[has] = np.where(domain_count[dom[has]] > 1, DOMAIN_TIE_CONFIDENCE, DOMAIN_CONFIDENCE)
    lap("domain")

    # (2) Name, for the rest: exact normalized name first, then fuzzy within blocks, on distinct names only.
    rest = np.flatnonzero(~has)
    if len(rest):
        lead_names = map_unique(_column(leads, "company").iloc[rest], normalize_company).fillna("")
        codes, uniques = pd.factorize(lead_names.to_numpy(dtype=object))
        u_name, u_exact, u_score, names, rows = _name_hits(np.asarray(uniques, dtype=object), acct, ranker, config, lap)
        # Only now the tie-breakers, on the accounts bearing a chosen name (every account with that name).
        rows = rows[_rows_in(acct["name_key"].iloc[rows], names[u_name[u_name >= 0]])]
        sub = acct.iloc[rows].reset_index(drop=True)
        acct_names = sub["name_key"].astype("string").fillna("")
        rank = ranker(rows)
        acct_country, lead_codes = _country_codes(sub, lead_country, config)
        sub_names, name_best, name_count = _best_per_key(acct_names, rank)
        u_sub = np.full(len(u_name), -1, dtype=np.int64)  # index into `sub_names` per distinct lead name
        u_sub[u_name >= 0] = sub_names.get_indexer(names[u_name[u_name >= 0]])
        tied = name_count[np.maximum(u_sub, 0)] > 1 if len(sub_names) else np.zeros(len(u_sub), dtype=bool)
        exact_conf = np.where(tied, NAME_TIE_CONFIDENCE, NAME_EXACT_CONFIDENCE)
        u_conf = np.where(u_sub < 0, 0.0, np.where(u_exact, exact_conf, NAME_EXACT_CONFIDENCE * u_score / 100.0))
        lead_name = np.where(codes >= 0, u_sub[codes], -1)
        hit = lead_name >= 0
        lead_account = np.where(hit, name_best[np.maximum(lead_name, 0)] if len(sub_names) else -1, -1)
        local = _same_country(
            lead_name, lead_codes[rest], sub_names.get_indexer(acct_names.to_numpy(dtype=object)), acct_country, rank
        )
        lead_account[local >= 0] = local[local >= 0]
        chosen = np.full(n, -1, dtype=np.int64)
        chosen[rest] = lead_account
        matched = np.zeros(n, dtype=bool)
        matched[rest[hit]] = True
        _take(sub, chosen, matched, ids, owners)
        method[rest[hit]] = 2
        confidence[rest[hit]] = u_conf[codes[hit]]

    # (4) Empty beats wrong: anything under the bar is no match at all.
    weak = confidence < config.min_confidence
    ids[weak], owners[weak], method[weak], confidence[weak] = None, None, 0, 0.0
    return _matches(ids, owners, method, confidence, leads.index)


def _matches(ids: np.ndarray, owners: np.ndarray, method: np.ndarray, confidence: np.ndarray,
             index: pd.Index) -> pd.DataFrame:
    """MATCH_COLUMNS from the per-lead arrays of `match_accounts` (method: 0 none, 1 domain, 2 name)."""
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
        index=index,
    )


def _rows_in(keys: pd.Series, values: Any) -> np.ndarray:
    """Positions of the rows whose key is one of `values` (NA keys never are)."""
    return np.flatnonzero(keys_in(keys, values))


def _country_codes(sub: pd.DataFrame, lead_country: pd.Series, config: MatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """Country codes as shared integer codes for accounts and leads (-1: unknown or not preferring countries)."""
    countries = pd.concat([_column(sub, "country_code"), lead_country], ignore_index=True).str.strip().str.upper()
    codes = pd.factorize(countries)[0] if config.prefer_same_country else np.full(len(countries), -1)
    return codes[: len(sub)], codes[len(sub) :]


def _take(sub: pd.DataFrame, chosen: np.ndarray, rows: np.ndarray, ids: np.ndarray, owners: np.ndarray) -> None:
    """Write account_id / owner_id of the chosen `sub` row into `ids` / `owners` where `rows` (a mask)."""
    ok = rows & (chosen >= 0)
    ids[ok] = _column(sub, "account_id").to_numpy(dtype=object, na_value=None)[chosen[ok]]
    owners[ok] = _column(sub, "owner_id").to_numpy(dtype=object, na_value=None)[chosen[ok]]


def _name_hits(
    uniques: np.ndarray, acct: pd.DataFrame, ranker: _Ranker, config: MatchConfig, lap: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The account name each distinct lead name matches: (index into `names` or -1, exact?, fuzzy score),
    `names` and `rows`: the distinct account names and the account rows that took part (those with one of
    the lead names or in one of their blocks).

    The tie-breakers only decide between equally good fuzzy names, so they are computed only for the accounts of the
    blocks where that happened, as the "rank" of a name (its best account's).
    """
    block = config.block_prefix
    keys = acct["name_key"]
    blocks = pd.unique(np.array([u[:block] for u in uniques if len(u) >= block], dtype=object))
    in_block = _rows_in(keys.str.slice(0, block), blocks)
    rows = np.union1d(_rows_in(keys, uniques[uniques != ""]), in_block)
    acct_names = keys.iloc[rows].to_numpy(dtype=object, na_value="")
    names = pd.unique(acct_names[acct_names != ""])
    pos = pd.Index(names).get_indexer(uniques)
    u_name = pos.copy()  # index into `names` per distinct lead name, -1: none
    u_score = np.where(pos >= 0, 100.0, 0.0)
    fuzzy_rows = np.flatnonzero((pos < 0) & (np.array([len(u) for u in uniques], dtype=np.int64) >= block))
    lap("name_exact")
    if len(fuzzy_rows) and len(names):
        queries = uniques[fuzzy_rows]
        pick, score, n_top = _fuzzy_scan(queries, names, None, config)
        tied = np.flatnonzero(n_top > 1)
        if len(tied):
            # Equally good names: the one whose best account the tie-breakers prefer, as if all were ranked.
            tied_blocks = pd.unique(np.array([q[:block] for q in queries[tied]], dtype=object))
            sub_rows = rows[_rows_in(keys.iloc[rows].str.slice(0, block), tied_blocks)]
            sub = acct.iloc[sub_rows].reset_index(drop=True)
            rank = ranker(sub_rows)
            sub_names, sub_best, _ = _best_per_key(sub["name_key"].astype("string"), rank)
            name_rank = np.full(len(names), np.iinfo(np.int64).max, dtype=np.int64)
            name_rank[pd.Index(names).get_indexer(sub_names)] = rank[sub_best]
            pick[tied], score[tied], _ = _fuzzy_scan(queries[tied], names, name_rank, config)
        # One Python call per distinct matched name (not per lead): cheap next to the matrix work.
        for i in np.flatnonzero(pick >= 0):
            if not _words_agree(queries[i], names[pick[i]], config):
                pick[i] = -1
        ok = pick >= 0
        u_name[fuzzy_rows[ok]] = pick[ok]
        u_score[fuzzy_rows[ok]] = score[ok]
    lap("fuzzy")
    return u_name, pos >= 0, u_score, np.asarray(names, dtype=object), rows
