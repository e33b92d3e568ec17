"""Duplicate detection: is an incoming lead someone the CRM already has as a Lead or Contact?

Pure functions over DataFrames (not yet a pipeline stage). Per-value Python work (name keys, company names, domains)
runs once per distinct value (`leadflow.pipeline.uniques.map_unique`); e-mail addresses are normalized with vectorised string
kernels (nearly every address is distinct, so there is nothing to share); candidate pairs come from integer-keyed
joins on blocking keys, never from comparing every lead with every record. 1M leads × 500k records stay in seconds.
Records may carry prepared key columns (`leadflow.identity.prepared`) or come as a `RecordIndex` built once
(`leadflow.identity.records`); a small batch then only touches the records sharing a key with it. Same answers.

Rules, in order; the first that finds anything decides:

1. Exact e-mail. Both sides normalized: trimmed, lower case, a "+tag" in the local part dropped
   ("Jane.Doe+webinar@Acme.com" → "jane.doe@acme.com"). Several records with the address: the first object type in
   `prefer` (default Contact, then Lead) wins, then the smallest record_id.
2. Fuzzy person. Same normalized last name (accents, case, spaces and punctuation ignored: "O'Brien" = "obrien"),
   a compatible first name, and the same company: equal normalized company name (`leadflow.identity.matching.normalize_company`),
   a company name at least `company_cutoff` alike (rapidfuzz, word by word as in matching), or the same corporate
   registrable e-mail domain (a free-mail domain, by the reference list or the lead's `is_free_email`, never counts
   as shared). Blocking: candidates share the last name and the first letter of the canonical first name (nicknames
   resolved), and the company or the domain, so pairs come from equi-joins on integer codes.
3. Within the batch (`within_batch`), for leads nothing above matched: leads sharing a normalized e-mail are one
   person; the earliest (created_at, then position) is the original and the others point to its lead_id, or to
   "email:<normalized address>" when it has none. When that original is itself a duplicate of a CRM record, the
   others point to that record (with its confidence) instead: the original is about to be merged away. A lead the
   CRM already holds (lead_id = a record_id) is never a within-batch repeat, nor are two rows with one lead_id.

Confidence scale (documented contract, `duplicate_confidence`):

- exact e-mail (rule 1) and within-batch (rule 3): 1.0
- fuzzy (rule 2): first-name evidence × company evidence, plus 0.03 when both the company name and the domain agree,
  capped at 0.98 (a fuzzy match never reaches an exact one):
  first name identical 0.95, a known nickname ("Bob" ~ "Robert", `nicknames`) 0.92, an initial ("J." ~ "John") 0.90;
  company evidence 1.0 for the same domain or normalized name, score/100 for a fuzzy name.
  So "John Smith, Acme Inc." ~ "john smith, ACME" = 0.95; with the same domain too 0.98; "J. Smith, Acme" = 0.90;
  "J. O'Brien, Initech Laboratoires" ~ "John O'Brien, Initech Laboratories" ≈ 0.90 × 0.95 = 0.86.
- none: 0.0 (not NA: a number is easier to sort and threshold). Anything below `min_confidence` is reported as none:
  a missed duplicate costs a merge later, a wrong one loses a real lead.

Several candidates: highest confidence, then `prefer`, then the smallest record_id. But when a candidate with
another (canonical) first name is as good as the best ("J. Smith" at Acme: John and James), the lead is ambiguous and
gets none. A lead is never its own duplicate: a record whose record_id equals the lead's lead_id is skipped (a
Salesforce lead pulled back from the CRM).

Measured (benchmarks/bench_duplicates.py, 2 cores): 1M leads × 500k records in 12–15 s (as before the prepared keys),
peak RSS ~1.8 GB including the synthetic data; precision 1.000, recall 0.987 on its ground truth. 100 leads × 600k
records: ~0.06 s with a `RecordIndex`, ~0.3–0.4 s from the prepared frame, ~2.3 s from a plain one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.identity.matching import MatchConfig, _fuzzy, _words_agree
from leadflow.identity.normalize import (
    corporate_domains as _corporate_domain,
    first_name_key,
    last_name_key,
    normalize_company,
    normalize_email,
    normalize_emails as _emails,
)
from leadflow.identity.prepared import with_existing_keys
from leadflow.identity.records import BatchKeys, RecordIndex, _combine, _split
from leadflow.pipeline.uniques import map_unique
from leadflow.pipeline.yamlio import load_yaml, parse_model

__all__ = [
    "DEFAULT_DUPLICATE_CONFIG",
    "DEFAULT_NICKNAMES",
    "DUPLICATE_COLUMNS",
    "DuplicateConfig",
    "find_duplicates",
    "first_name_key",
    "last_name_key",
    "load_duplicate_config",
    "normalize_email",
]

DUPLICATE_COLUMNS: Final[tuple[str, ...]] = ("duplicate_of", "duplicate_confidence")

EXACT_CONFIDENCE: Final[float] = 1.0
FIRST_NAME_CONFIDENCE: Final[float] = 0.95
NICKNAME_CONFIDENCE: Final[float] = 0.92
INITIAL_CONFIDENCE: Final[float] = 0.90
BOTH_BONUS: Final[float] = 0.03
_WHOLE_INDEX_SHARE: Final[int] = 10
"""A frame of at most this many records per lead is indexed whole, not per rule for the batch's keys."""
FUZZY_CAP: Final[float] = 0.98

# Formal name → nicknames. Only unambiguous ones: "Chris" (Christopher/Christina) or "Alex" (Alexander/Alexandra)
# would join two different people, so they are left out; a config may add its own.
DEFAULT_NICKNAMES: Final[dict[str, list[str]]] = {
    "robert": ["bob", "bobby", "rob", "robbie", "bert"],
    "william": ["bill", "billy", "will", "willy", "liam"],
    "richard": ["rick", "ricky", "dick", "rich"],
    "james": ["jim", "jimmy", "jamie"],
    "john": ["jack", "johnny"],
    "michael": ["mike", "mikey"],
    "thomas": ["tom", "tommy"],
    "joseph": ["joe", "joey"],
    "charles": ["charlie", "chuck"],
    "edward": ["ed", "eddie", "ted", "ned"],
    "anthony": ["tony"],
    "daniel": ["dan", "danny"],
    "matthew": ["matt"],
    "andrew": ["andy", "drew"],
    "benjamin": ["ben", "benny"],
    "jonathan": ["jon"],
    "nicholas": ["nick", "nicky"],
    "steven": ["steve"],  # not also under "stephen": one nickname, one formal name
    "timothy": ["tim", "timmy"],
    "kenneth": ["ken", "kenny"],
    "gregory": ["greg"],
    "jeffrey": ["jeff"],
    "douglas": ["doug"],
    "lawrence": ["larry"],
    "raymond": ["ray"],
    "gerald": ["gerry", "jerry"],
    "ronald": ["ron", "ronnie"],
    "donald": ["don", "donnie"],
    "samuel": ["sam", "sammy"],
    "patrick": ["pat", "paddy"],
    "peter": ["pete"],
    "zachary": ["zach", "zack"],
    "elizabeth": ["liz", "beth", "betty", "eliza", "lizzie"],
    "margaret": ["maggie", "peggy", "meg"],
    "katherine": ["kate", "kathy", "katie"],
    "catherine": ["cathy"],
    "jennifer": ["jen", "jenny"],
    "rebecca": ["becky", "becca"],
    "deborah": ["debbie", "deb"],
    "susan": ["sue", "susie"],
    "patricia": ["patty", "trish"],
    "kimberly": ["kim"],
    "victoria": ["vicky", "tori"],
    "abigail": ["abby"],
    "jacqueline": ["jackie"],
    "pamela": ["pam"],
    "cynthia": ["cindy"],
    "barbara": ["barb"],
    "dorothy": ["dot", "dottie"],
}

PreferredObject = Literal["Contact", "Lead"]


class DuplicateConfig(BaseModel):
    """How leads are checked against existing CRM leads and contacts (YAML-loadable with `load_duplicate_config`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_confidence: float = Field(default=0.85, ge=0.0, le=1.0, description="Below this: no duplicate.")
    within_batch: bool = Field(
        default=True,
        description="Leads nothing in the CRM matched and that share a normalized e-mail with an earlier lead of the "
        "same batch point to that lead.",
    )
    prefer: list[PreferredObject] = Field(
        default_factory=lambda: ["Contact", "Lead"],
        description="Which kind of existing record wins when a lead matches several equally well; record_id decides "
        "last. Kinds not listed come after the listed ones.",
    )
    fuzzy: bool = Field(default=True, description="Run rule 2 (name + company/domain); False: exact e-mail only.")
    company_cutoff: float = Field(
        default=92.0,
        ge=0.0,
        le=100.0,
        description="Lowest rapidfuzz ratio (0-100) between normalized company names for a fuzzy company match; "
        "92 as in matching.MatchConfig: one typo in a 13+ letter name passes, another company does not.",
    )
    block_prefix: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Fuzzy company candidates share this many leading characters of the normalized name.",
    )
    allow_initials: bool = Field(default=True, description='A first-name initial ("J.") matches a full first name.')
    max_block_pairs: int = Field(
        default=100_000,
        ge=1,
        description="A blocking key (last name, initial, company or domain) shared by more lead × record pairs than "
        "this is skipped: so common a combination (test or spam data) decides nothing, and must not blow the memory.",
    )
    nicknames: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_NICKNAMES.items()},
        description="Formal first name → its nicknames, all compared as first_name_key (lower case, letters only). "
        "Replaces the default table when given.",
    )

    @field_validator("prefer")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("prefer lists an object twice")
        return value

    @field_validator("nicknames")
    @classmethod
    def _one_formal_name(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        owner: dict[str, str] = {}
        for formal, nicks in value.items():
            for nick in nicks:
                key = first_name_key(nick)
                # A nickname of two formal names would make "Steven" and "Stephen" one person.
                if key in owner and first_name_key(owner[key]) != first_name_key(formal):
                    raise ValueError(f"nickname {nick!r} is listed under both {owner[key]!r} and {formal!r}")
                owner.setdefault(key, formal)
        return value


DEFAULT_DUPLICATE_CONFIG: Final[DuplicateConfig] = DuplicateConfig()


def load_duplicate_config(path: Path) -> DuplicateConfig:
    """Load and validate a duplicate-detection config YAML; errors name the file and YAML path."""
    return parse_model(DuplicateConfig, load_yaml(path), path)


# ---------------------------------------------------------------------------------------------------------- helpers


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """`frame[name]` as strings, or an all-NA column when it is absent."""
    if name in frame.columns:
        return frame[name].astype("string")
    return pd.Series(pd.NA, index=frame.index, dtype="string")


def _nickname_table(config: DuplicateConfig) -> dict[str, str]:
    table: dict[str, str] = {}
    for formal, nicks in config.nicknames.items():
        canonical = first_name_key(formal)
        for nick in nicks:
            table.setdefault(first_name_key(nick), canonical)
    return table


def _first_name_evidence(lead_first: str, existing_first: str, nicknames: dict[str, str], initials: bool) -> float:
    """Confidence a pair of first_name_keys gives (0.0: different people)."""
    if not lead_first or not existing_first:
        return 0.0
    if len(lead_first) == 1 or len(existing_first) == 1:
        # An initial only says the other name starts with that letter: the weakest evidence, even "j" vs "j".
        short, long_ = sorted((lead_first, existing_first), key=len)
        return INITIAL_CONFIDENCE if initials and long_.startswith(short) else 0.0
    if lead_first == existing_first:
        return FIRST_NAME_CONFIDENCE
    if nicknames.get(lead_first, lead_first) == nicknames.get(existing_first, existing_first):
        return NICKNAME_CONFIDENCE
    return 0.0


def _first_sorted(keys: np.ndarray, order_keys: list[np.ndarray]) -> np.ndarray:
    """Row index of the first row per distinct key after sorting by `order_keys` (lexsort: the last key first)."""
    order = np.lexsort([*order_keys, keys])
    sorted_keys = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return order[first]


# ------------------------------------------------------------------------------------------------------------- main


def find_duplicates(
    leads: pd.DataFrame,
    existing: pd.DataFrame | RecordIndex,
    config: DuplicateConfig = DEFAULT_DUPLICATE_CONFIG,
    *,
    earlier: pd.Series | None = None,
    timings: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Find, per lead, the existing CRM record (or earlier lead of the batch) it duplicates (see the module docstring).

    `existing`: the records (EXISTING_COLUMNS), with or without the key columns of
    `leadflow.identity.prepared.prepare_existing` (missing ones are computed here), or a `RecordIndex` built from
    them once for many batches. The answer is the same either way; with a frame, only the records that share a key
    with the batch are indexed (one `isin` per key over the frame), with an index not even that.

    Returns, on `leads.index`, exactly DUPLICATE_COLUMNS: duplicate_of ("string": the record_id, the original lead's
    lead_id or "email:<address>"; NA for none) and duplicate_confidence ("Float64" in 0..1; 0.0 for none).
    `earlier` (on `leads.index`): for a batch read in chunks (a streamed file), what an earlier chunk's lead with the
    same normalized address points later repeats to (its lead_id, "email:<address>", or the CRM record it
    duplicates; NA: no earlier lead has the address). It takes the place of the within-batch original for those
    leads, on the same terms (rule 3 must be on, the CRM had nothing for the lead, the lead is not the CRM's own
    record, and it is not the same lead_id).
    `timings`, when given, receives the seconds spent per rule: "index" (keys and index of a frame), "exact",
    "fuzzy", "within_batch".
    """
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if timings is not None:
            timings[phase] = timings.get(phase, 0.0) + now - clock
        clock = now

    index = leads.index
    leads = leads.reset_index(drop=True)  # positions from here on: no alignment surprises from a duplicate index
    n = len(leads)
    lead_ids = _column(leads, "lead_id").str.strip()
    lead_email = _emails(_column(leads, "email"))
    frame = None if isinstance(existing, RecordIndex) else with_existing_keys(existing).reset_index(drop=True)
    if frame is not None and n * _WHOLE_INDEX_SHARE >= len(frame):
        # A batch this big reaches most records anyway: one index of them all is cheaper than two of the reachable.
        existing, frame = RecordIndex(frame, prefer=config.prefer), None

    def reach(keys: BatchKeys) -> RecordIndex:
        """The given index, or an index of the records these keys reach."""
        return existing if frame is None else RecordIndex.for_batch(frame, keys)

    # An index given (or built whole) is the answer whatever the keys: they are only collected for a frame.
    ids = np.asarray(lead_ids.dropna().unique(), dtype=object) if frame is not None else None
    records = existing if frame is None else reach(BatchKeys(
        emails=np.asarray(lead_email.dropna().unique(), dtype=object), lead_ids=ids[ids != ""]))
    lap("index")
    # Lead ids in the code space of the (stripped) record ids: "is this record the lead itself" compares integers.
    lead_id_code = records.record.lookup(lead_ids)
    in_crm = lead_id_code >= 0  # the lead's lead_id is a record's id

    chosen = np.full(n, -1, dtype=np.int64)  # record position (in `records`) per lead
    confidence = np.zeros(n, dtype=np.float64)

    # (1) Exact normalized e-mail, among the records with one of the batch's addresses. Per address the two best
    # records, so a lead that is itself the best still gets the second.
    lead_email_code = records.email.lookup(lead_email)
    rows = records.email.rows(lead_email_code)
    if len(rows) and n:
        rank = records.rank(list(config.prefer), rows)
        record_id_code = records.record.codes[rows]
        ex_email_code = records.email.codes[rows]
        has = np.flatnonzero(ex_email_code >= 0)
        order = has[np.lexsort([rank[has], ex_email_code[has]])]
        codes_sorted = ex_email_code[order]
        starts = np.ones(len(order), dtype=bool)
        starts[1:] = codes_sorted[1:] != codes_sorted[:-1]
        width = int(max(lead_email_code.max(initial=-1), ex_email_code.max(initial=-1))) + 1
        best = np.full(width, -1, dtype=np.int64)
        second = np.full(width, -1, dtype=np.int64)
        best[codes_sorted[starts]] = order[starts]
        follows = np.flatnonzero(~starts)
        is_second = follows[starts[follows - 1]] if len(follows) else follows
        second[codes_sorted[is_second]] = order[is_second]
        hit = np.flatnonzero(lead_email_code >= 0)
        first_pick = best[lead_email_code[hit]]
        self_match = (first_pick >= 0) & (lead_id_code[hit] >= 0)
        self_match &= record_id_code[np.maximum(first_pick, 0)] == lead_id_code[hit]
        pick = np.where(self_match, second[lead_email_code[hit]], first_pick)
        found = pick >= 0
        chosen[hit[found]] = rows[pick[found]]
        confidence[hit[found]] = EXACT_CONFIDENCE
    duplicate_of = np.full(n, None, dtype=object)
    duplicate_of[chosen >= 0] = records.record_id.iloc[chosen[chosen >= 0]].to_numpy(dtype=object, na_value=None)
    lap("exact")

    # (2) Fuzzy person, for the rest.
    rest = np.flatnonzero(chosen < 0)
    # No record at all (an index of none, or an empty frame): no pair can form, so the people's keys are not needed.
    if config.fuzzy and (existing.size if frame is None else len(frame)) and len(rest):
        people = _people(leads.iloc[rest], lead_email.iloc[rest])
        records = reach(
            BatchKeys(
                last_names=_distinct(people["last"]),
                companies=_distinct(people["company"]),
                domains=_distinct(people["domain"]),
                block_prefix=config.block_prefix,
            )
        )
        lap("index")
        lead_id_code = records.record.lookup(lead_ids)
        pairs_row, pairs_ex, pairs_conf, pairs_name = _fuzzy_pairs(people, records, config)
        pairs_row = rest[pairs_row]
        not_self = (lead_id_code[pairs_row] < 0) | (records.record.codes[pairs_ex] != lead_id_code[pairs_row])
        pairs_row, pairs_ex = pairs_row[not_self], pairs_ex[not_self]
        pairs_conf, pairs_name = pairs_conf[not_self], pairs_name[not_self]
        if len(pairs_row):
            ranked = np.unique(pairs_ex)
            rank = records.rank(list(config.prefer), ranked)[np.searchsorted(ranked, pairs_ex)]
            first = _first_sorted(pairs_row, [rank, -pairs_conf])
            rows, best = pairs_row[first], pairs_conf[first]
            # Ambiguous: as good a candidate with another first name ("J. Smith" at Acme: John and James). Two
            # people cannot both be this lead, and guessing one is how a real lead gets merged away.
            best_name = np.full(n, -1, dtype=np.int64)
            best_name[rows] = pairs_name[first]
            rival = np.zeros(n, dtype=np.float64)
            other = pairs_name != best_name[pairs_row]
            np.maximum.at(rival, pairs_row[other], pairs_conf[other])
            clear = rival[rows] < best
            duplicate_of[rows[clear]] = records.record_id.iloc[pairs_ex[first][clear]].to_numpy(
                dtype=object, na_value=None
            )
            confidence[rows[clear]] = best[clear]
    lap("fuzzy")

    # Empty beats wrong: anything under the bar is no duplicate at all.
    weak = confidence < config.min_confidence
    duplicate_of[weak], confidence[weak] = None, 0.0
    found = confidence > 0.0  # a record was chosen (every rule-1 and rule-2 answer has a confidence above 0)

    # (3) Within the batch: a later lead with an earlier lead's address, when the CRM had nothing.
    lead_email_code = _lead_codes(lead_email)
    if config.within_batch and n:
        open_rows = ~found & (lead_email_code >= 0)
        if open_rows.any():
            created = pd.to_datetime(_column(leads, "created_at"), utc=True, errors="coerce", format="ISO8601")
            ns = created.to_numpy(dtype="datetime64[ns]").astype(np.int64)
            ns[created.isna().to_numpy()] = np.iinfo(np.int64).max  # unknown time: after every known one
            with_email = np.flatnonzero(lead_email_code >= 0)
            # The original is the earliest lead with the address among ALL leads, matched or not: it came first.
            originals = _first_sorted(lead_email_code[with_email], [with_email, ns[with_email]])
            original_of = np.full(int(lead_email_code.max()) + 1, -1, dtype=np.int64)
            original_of[lead_email_code[with_email[originals]]] = with_email[originals]
            # A lead the CRM already holds (its lead_id is a record_id) is the original, never a repeat: the others
            # found it through rule 1.
            rows = np.flatnonzero(open_rows & ~in_crm)
            orig = original_of[lead_email_code[rows]]
            # Two rows with one lead_id are one record pulled twice, not a duplicate pair.
            same_lead = _lead_codes(lead_ids)
            same_id = (same_lead[rows] >= 0) & (same_lead[orig] == same_lead[rows])
            later = (orig != rows) & ~same_id
            rows, orig = rows[later], orig[later]
            ids = lead_ids.mask(lead_ids == "").to_numpy(dtype=object, na_value=None)
            emails = lead_email.to_numpy(dtype=object, na_value=None)
            duplicate_of[rows] = [
                i if i is not None else f"email:{e}" for i, e in zip(ids[orig].tolist(), emails[orig].tolist())
            ]
            confidence[rows] = EXACT_CONFIDENCE
            # An original that is itself a duplicate of a CRM record: point to that record, at its confidence (the
            # original lead is about to be merged away, so a reference to it would dangle).
            via = found[orig]
            duplicate_of[rows[via]] = duplicate_of[orig[via]]
            confidence[rows[via]] = confidence[orig[via]]
        if earlier is not None:
            # An earlier chunk of the same file had the address first: that lead is the original of every repeat here.
            target = earlier.reset_index(drop=True).astype("string")
            before = open_rows & ~in_crm & target.notna().to_numpy(dtype=bool)
            itself = before & (target == lead_ids).fillna(False).to_numpy(dtype=bool)  # the same lead pulled again
            rows = np.flatnonzero(before & ~itself)
            duplicate_of[rows] = target.iloc[rows].tolist()
            confidence[rows] = EXACT_CONFIDENCE
            duplicate_of[itself], confidence[itself] = None, 0.0
    lap("within_batch")

    return pd.DataFrame(
        {
            "duplicate_of": pd.array(duplicate_of, dtype="string"),
            "duplicate_confidence": pd.array(confidence, dtype="Float64"),
        },
        index=index,
    )


def _lead_codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a lead column's values (-1: NA or empty): equal values, equal codes."""
    codes = np.asarray(values.factorize(use_na_sentinel=True)[0], dtype=np.int64)
    codes[(values == "").fillna(False).to_numpy(dtype=bool)] = -1
    return codes


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct non-empty strings of `values`."""
    distinct = pd.unique(values)
    return distinct[distinct != ""]


def _people(leads: pd.DataFrame, emails: pd.Series) -> dict[str, np.ndarray]:
    """Per lead, the keys rule 2 compares, as arrays of Python strings ("" for none): last, first, company,
    corporate domain (from `email_domain`, else the normalized address in `emails`)."""
    domain = _corporate_domain(_column(leads, "email_domain"), emails)
    if "is_free_email" in leads.columns:
        # Trust the standardize stage's verdict too, even for a domain our list lacks.
        domain = domain.mask(leads["is_free_email"].astype("boolean").fillna(False).to_numpy(dtype=bool))
    columns = {
        "last": map_unique(_column(leads, "last_name"), last_name_key),
        "first": map_unique(_column(leads, "first_name"), first_name_key),
        "company": map_unique(_column(leads, "company"), normalize_company),
        "domain": domain,
    }
    return {k: v.to_numpy(dtype=object, na_value="") for k, v in columns.items()}


def _fuzzy_pairs(
    people: dict[str, np.ndarray], records: RecordIndex, config: DuplicateConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lead row, record position, confidence, code of the record's canonical first name) of every rule-2 candidate
    pair with a compatible first name. Only the records with one of the leads' last names can pair (the person block
    includes it); only the company names equal to a lead's or in its block are fuzzy candidates."""
    nicknames = _nickname_table(config)

    # Company: each distinct lead name maps onto a record's name, exactly or fuzzily (once per distinct name).
    lead_codes, lead_names = pd.factorize(people["company"])
    lead_names = np.asarray(lead_names, dtype=object)
    choices = records.company_choices(lead_names[lead_names != ""], config.block_prefix)
    ex_names = pd.Index(records.company.values[choices], dtype=object)  # in the order of their first record
    pos = ex_names.get_indexer(lead_names)
    pos[lead_names == ""] = -1
    score = np.where(pos >= 0, 100.0, 0.0)
    fuzzy_rows = np.flatnonzero((pos < 0) & (np.array([len(u) for u in lead_names]) >= config.block_prefix))
    if len(fuzzy_rows) and len(ex_names):
        match_config = MatchConfig(fuzzy_cutoff=config.company_cutoff, block_prefix=config.block_prefix)
        queries, names = lead_names[fuzzy_rows], np.asarray(ex_names, dtype=object)
        # Equally good names: the first in the records' order.
        pick, got = _fuzzy(queries, names, None, match_config)
        # Whole-string alike is not enough: "Acme Rookwood Media" is not "Acme Ironwood Media" (see matching).
        for i in np.flatnonzero(pick >= 0):
            if not _words_agree(queries[i], names[pick[i]], match_config):
                pick[i] = -1
        ok = pick >= 0
        pos[fuzzy_rows[ok]], score[fuzzy_rows[ok]] = pick[ok], got[ok]
    company_l = np.where(lead_codes >= 0, pos[np.maximum(lead_codes, 0)], -1) if len(pos) else lead_codes
    company_score_l = np.where(company_l >= 0, score[np.maximum(lead_codes, 0)], 0.0) if len(pos) else score
    domain_l = records.domain.lookup(people["domain"])

    # The records that can pair: a lead's last name, and its company or its domain (the join keys below).
    last_l = records.last.lookup(people["last"])
    rows = records.last.rows(last_l)
    reach = np.isin(records.company.codes[rows], choices[company_l[company_l >= 0]])
    reach |= np.isin(records.domain.codes[rows], domain_l[domain_l >= 0])
    rows = rows[reach]
    last_e = records.last.codes[rows]
    company_e = np.full(len(rows), -1, dtype=np.int64)  # position in `choices` (= in ex_names) per record
    if len(choices):
        codes = records.company.codes[rows]
        at = np.minimum(np.searchsorted(choices, codes), len(choices) - 1)
        company_e = np.where((codes >= 0) & (choices[at] == codes), at, -1)
    domain_e = records.domain.codes[rows]

    # First names as codes shared by leads and records (a lead's unknown first name gets a new one); per distinct
    # name its blocking initial (of the canonical name: "Bob" meets "Robert", "J." meets "John") and canonical name.
    first_l, first_names = records.first.extend(people["first"])
    first_e = records.first.codes[rows]
    used = np.unique(np.concatenate([first_l, first_e]))
    used = used[used >= 0]
    canonical_of = np.array([nicknames.get(k, k) for k in first_names[used].tolist()], dtype=object)
    initial_code = np.full(len(first_names) + 1, -1, dtype=np.int64)  # the last slot: no first name (code -1)
    initial_code[used] = pd.factorize(np.array([c[:1] for c in canonical_of], dtype=object))[0]
    init_l, init_e = initial_code[first_l], initial_code[first_e]

    # Leads and records share every code space, so one combined key per side joins them: pairs only where the
    # person block (last name + initial) and the company or domain agree.
    sizes = [len(people["last"]), len(rows)]
    person = _combine(np.concatenate([last_l, last_e]), np.concatenate([init_l, init_e]))
    rows_l: list[np.ndarray] = []
    rows_e: list[np.ndarray] = []
    for side_l, side_e in ((company_l, company_e), (domain_l, domain_e)):
        key_l, key_e = _split(_combine(person, np.concatenate([side_l, side_e])), sizes)
        width = int(max(key_l.max(initial=-1), key_e.max(initial=-1))) + 1
        pairs = np.bincount(key_l[key_l >= 0], minlength=width) * np.bincount(key_e[key_e >= 0], minlength=width)
        crowded = np.flatnonzero(pairs > config.max_block_pairs)
        if crowded.size:
            key_l = np.where(np.isin(key_l, crowded), -1, key_l)
        left = pd.DataFrame({"key": key_l, "l": np.arange(len(key_l))})
        right = pd.DataFrame({"key": key_e, "e": np.arange(len(key_e))})
        joined = left[key_l >= 0].merge(right[key_e >= 0], on="key", how="inner")
        rows_l.append(joined["l"].to_numpy(dtype=np.int64))
        rows_e.append(joined["e"].to_numpy(dtype=np.int64))
    pair_l, pair_e = np.concatenate(rows_l), np.concatenate(rows_e)
    if not len(pair_l):
        return pair_l, pair_e, np.zeros(0), pair_e
    # A pair found by both company and domain once: dedupe on one int64 per pair.
    pair = np.unique(pair_l * len(rows) + pair_e)
    pair_l, pair_e = pair // len(rows), pair % len(rows)

    # First names, once per distinct (lead name, record name) pair.
    fl, fe, names = first_l[pair_l], first_e[pair_e], first_names
    width = len(names) + 1
    pair_key = np.where((fl >= 0) & (fe >= 0), fl * width + fe, -1)
    pk_codes, pk_uniques = pd.factorize(pair_key)
    evidence = np.array(
        [
            _first_name_evidence(names[k // width], names[k % width], nicknames, config.allow_initials)
            if k >= 0
            else 0.0
            for k in pk_uniques.tolist()
        ],
        dtype=np.float64,
    )
    name_conf = evidence[pk_codes]

    same_domain = (domain_l[pair_l] >= 0) & (domain_l[pair_l] == domain_e[pair_e])
    same_company = (company_l[pair_l] >= 0) & (company_l[pair_l] == company_e[pair_e])
    company_factor = np.where(same_domain, 1.0, np.where(same_company, company_score_l[pair_l] / 100.0, 0.0))
    conf = name_conf * company_factor + np.where(same_domain & same_company, BOTH_BONUS, 0.0)
    conf = np.minimum(conf, FUZZY_CAP)
    keep = (name_conf > 0) & (company_factor > 0)
    # The record's canonical first name as a code ("" for none): equal codes, one person's first name.
    canonical_code = np.full(len(first_names) + 1, -1, dtype=np.int64)  # the last slot: no first name
    canonical_code[np.append(used, len(first_names))] = pd.factorize(np.append(canonical_of, ""))[0]
    canonical = canonical_code[np.where(first_e >= 0, first_e, len(first_names))]
    return pair_l[keep], rows[pair_e[keep]], conf[keep], canonical[pair_e[keep]]

