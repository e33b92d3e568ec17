"""Existing CRM leads and contacts, and new leads that may duplicate them (for duplicate-detection tests and
benchmarks), with the ground truth to score a detector's answers (`duplicate_answer_persons`)."""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
import pandas as pd

from leadflow.synth.accounts import ACCOUNT_SUFFIXES, OUTSIDE_STEMS, _typo
from leadflow.synth.arrays import _categories, _choose, _rng, _salesforce_ids, _slug
from leadflow.synth.vocab import (
    COMPANY_STEMS,
    COMPANY_TLDS,
    COMPANY_WORDS,
    DEFAULT_START,
    FIRST_NAMES,
    LAST_NAMES,
    SOURCES,
)

__all__ = [
    "FREE_MAIL_FOR_EXISTING", "duplicate_answer_persons", "messy_existing_records", "messy_leads_for_existing",
]

FREE_MAIL_FOR_EXISTING: Final[tuple[str, ...]] = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de",
)
# Formal first names of FIRST_NAMES and a nickname people also sign up with (test data: the detector has its own
# table in leadflow.identity.duplicates).
_SYNTH_NICKNAMES: Final[dict[str, str]] = {
    "Robert": "Bob", "William": "Bill", "Richard": "Rick", "James": "Jim", "Michael": "Mike", "Thomas": "Tom",
    "Joseph": "Joe", "Charles": "Charlie", "Edward": "Ed", "Anthony": "Tony", "Daniel": "Dan", "Matthew": "Matt",
    "Andrew": "Andy", "Benjamin": "Ben", "Nicholas": "Nick", "Steven": "Steve", "Timothy": "Tim", "Kenneth": "Ken",
    "Elizabeth": "Liz", "Margaret": "Maggie", "Katherine": "Kate", "Jennifer": "Jen", "Rebecca": "Becky",
    "Susan": "Sue", "Patricia": "Patty", "Kimberly": "Kim", "Victoria": "Vicky", "Deborah": "Debbie",
}


def _existing_people(m: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """`m` people at ~m/5 companies: first, last, company (as a CRM holds it), base company name, domain, email."""
    stems, words = COMPANY_STEMS, COMPANY_WORDS
    capacity = len(stems) * len(stems) * len(words)
    companies = max(1, min(capacity, m // 5 or 1))
    pick = rng.permutation(capacity)[:companies]
    a, rest = np.divmod(pick, len(stems) * len(words))
    b, c = np.divmod(rest, len(words))
    base = np.array(
        [f"{stems[i]} {stems[j]} {words[k]}" for i, j, k in zip(a.tolist(), b.tolist(), c.tolist(), strict=True)],
        dtype=object,
    )
    tlds = np.array(COMPANY_TLDS, dtype=object)[rng.integers(0, len(COMPANY_TLDS), companies)]
    domain = np.array([_slug(x.replace(" ", "")) for x in base.tolist()], dtype=object) + tlds
    suffix = np.array([s for s, _ in ACCOUNT_SUFFIXES], dtype=object)[_choose(rng, companies, ACCOUNT_SUFFIXES)]
    company_of = rng.integers(0, companies, m)
    first_idx = rng.integers(0, len(FIRST_NAMES), m)
    last_idx = rng.integers(0, len(LAST_NAMES), m)
    # Two people with one name (nicknames included) at one company cannot be told apart by anyone: redraw the first
    # name of the later one, so the ground truth stays unambiguous.
    canon = _canonical_first_codes()
    for _ in range(50):
        key = pd.Series(list(zip(canon[first_idx].tolist(), last_idx.tolist(), company_of.tolist(), strict=True)))
        again = np.flatnonzero(key.duplicated().to_numpy())
        if not again.size:
            break
        first_idx[again] = rng.integers(0, len(FIRST_NAMES), again.size)
    first = np.array(FIRST_NAMES, dtype=object)[first_idx]
    last = np.array(LAST_NAMES, dtype=object)[last_idx]
    return {
        "first": first,
        "last": last,
        "company_of": company_of,
        "base": base,
        "company": (base + suffix)[company_of],
        "domain": domain[company_of],
    }


@cache
def _canonical_first_codes() -> np.ndarray:
    """Per FIRST_NAMES entry, a code shared by names the duplicate detector takes for one ("Billy" = "William")."""
    from leadflow.identity.duplicates import DEFAULT_NICKNAMES, first_name_key  # test data only; avoids an import cycle

    canon = {first_name_key(k): first_name_key(f) for f, nicks in DEFAULT_NICKNAMES.items() for k in [f, *nicks]}
    keys = [canon.get(first_name_key(f), first_name_key(f)) for f in FIRST_NAMES]
    return pd.factorize(np.array(keys, dtype=object))[0]


def _local(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    return np.array([_slug(f) + "." + _slug(x) for f, x in zip(first.tolist(), last.tolist(), strict=True)], dtype=object)


def _unique_addresses(local: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """`local@domain`, a number appended to the local part of the 2nd, 3rd… person with one address, as mail
    servers do ("helen.nunez2@…"): one address, one person, so the ground truth stays unambiguous."""
    email = pd.Series(local + "@" + domain, dtype=object)
    repeat = email.groupby(email, sort=False).cumcount().to_numpy()
    again = np.flatnonzero(repeat > 0)
    if again.size:
        local = local.copy()
        local[again] = local[again] + (repeat[again] + 1).astype(str).astype(object)
    return local + "@" + domain


def _free_local(first: np.ndarray, last: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Four digits: "john.smith4821", so two different people rarely share a free-mail address.
    digits = np.array([f"{d:04d}" for d in rng.integers(0, 10_000, first.size).tolist()], dtype=object)
    return _local(first, last) + digits


def messy_existing_records(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` existing CRM records: record_id, object ("Contact" ~60% / "Lead"), email, first_name, last_name, company
    (the account name for contacts), email_domain, all "string"; plus the ground truth `person_id`.

    ~5% of people have two records (a Lead and a Contact; 70% of those under the same address). ~85% of addresses are
    corporate (first.last@company-domain), the rest free-mail. Deterministic in (n, seed).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = _rng(seed, "existing-records")
    second = int(round(n * 0.05)) if n > 1 else 0
    people_n = n - second
    people = _existing_people(people_n, rng)
    person = np.concatenate([np.arange(people_n), rng.integers(0, max(people_n, 1), second)]).astype(np.int64)
    contact = rng.random(people_n) < 0.6
    is_contact = np.concatenate([contact, ~contact[person[people_n:]]]) if n else np.zeros(0, dtype=bool)

    free = rng.random(people_n) < 0.15
    free_domain = np.array(FREE_MAIL_FOR_EXISTING, dtype=object)[rng.integers(0, len(FREE_MAIL_FOR_EXISTING), people_n)]
    local = np.where(free, _free_local(people["first"], people["last"], rng), _local(people["first"], people["last"]))
    domain = np.where(free, free_domain, people["domain"])
    email = _unique_addresses(local, domain)[person] if n else np.zeros(0, dtype=object)
    email_domain = domain[person] if n else np.zeros(0, dtype=object)
    # A second record under an older address: the other kind (free-mail ↔ corporate) for 30% of them.
    moved = np.flatnonzero(rng.random(n) < 0.3)
    moved = moved[moved >= people_n]
    if moved.size:
        p = person[moved]
        old_free = ~free[p]
        alt_domain = np.where(old_free, free_domain[p], people["domain"][p])
        alt_local = np.where(
            old_free,
            _free_local(people["first"][p], people["last"][p], rng),
            _local(people["first"][p], people["last"][p]),
        )
        email[moved] = alt_local + "@" + alt_domain
        email_domain[moved] = alt_domain

    seq = np.arange(n, dtype=np.int64) * 3
    contact_ids = _salesforce_ids("003", 3_000_000 + seq).view("S18").ravel()
    lead_ids = _salesforce_ids("00Q", 3_000_000 + seq).view("S18").ravel()
    ids = np.where(is_contact, contact_ids, lead_ids)
    frame = pd.DataFrame(
        {
            "record_id": [i.decode() for i in ids.tolist()],
            "object": np.where(is_contact, "Contact", "Lead").astype(object),
            "email": email,
            "first_name": people["first"][person] if n else email,
            "last_name": people["last"][person] if n else email,
            "company": people["company"][person] if n else email,
            "email_domain": email_domain,
            "person_id": person.astype(str).astype(object),
        }
    ).astype("string")
    # CRMs hold contacts without a company name (the account is linked, not typed) and leads without one.
    frame["company"] = frame["company"].mask(rng.random(n) < 0.05)
    return frame


def messy_leads_for_existing(existing: pd.DataFrame, n: int, seed: int = 7) -> pd.DataFrame:
    """`n` standardized incoming leads, some of them people `existing` (from `messy_existing_records`) already has.

    Columns: lead_id, source, email, first_name, last_name, company, email_domain, created_at ("string"),
    is_free_email ("boolean"), and the ground truth `true_duplicate_of` (the person's preferred record: a Contact
    before a Lead, then the smallest record_id; another lead's lead_id or "email:<address>" for a repeat within the
    batch; NA for new people) with its `kind`:

    - "exact" ~30%: a known person under a known address (1 in 5 with a "+tag")
    - "fuzzy" ~15%: a known person under another address (free-mail with the company re-typed, or another corporate
      alias), first name as known, as an initial ("J.") or a nickname ("Bob")
    - "self" ~5%: an existing Lead pulled back (lead_id = its record_id): a duplicate only of the person's other record
    - "batch" ~5%: the address of an earlier new lead of the same batch
    - "new" ~45%: new people; half at known companies, a fifth of those colleagues of a known person (same last name
      and company, another first name) that must stay unmatched

    `true_person_id` names the person behind each lead (a record's `person_id`, or "new:<row>"): any answer that is
    the same person is equally right (`duplicate_answer_persons`). Deterministic in (existing, n, seed).
    """
    from leadflow.identity.duplicates import DEFAULT_NICKNAMES, first_name_key  # test data only; avoids an import cycle

    rng = _rng(seed, "existing-leads")
    m = len(existing)
    if m == 0 and n:
        raise ValueError("existing is empty")
    kind = _categories(rng, n, (0.30, 0.15, 0.05, 0.05))  # 1 exact, 2 fuzzy, 3 self, 4 batch, 0 new
    rec_email = existing["email"].to_numpy(dtype=object, na_value=None)
    rec_first = existing["first_name"].to_numpy(dtype=object, na_value=None)
    rec_last = existing["last_name"].to_numpy(dtype=object, na_value=None)
    rec_company = existing["company"].to_numpy(dtype=object, na_value=None)
    rec_domain = existing["email_domain"].to_numpy(dtype=object, na_value=None)
    rec_ids = existing["record_id"].to_numpy(dtype=object, na_value=None)
    person = existing["person_id"].to_numpy(dtype=object, na_value=None)
    is_lead = (existing["object"] == "Lead").to_numpy(dtype=bool)

    # Preferred record per person (Contact, then smallest id), and the best record that is not a given one.
    order = pd.DataFrame({"person": person, "lead": is_lead, "id": rec_ids}).sort_values(["person", "lead", "id"])
    preferred = order.groupby("person", sort=False)["id"].agg(list).to_dict()

    first = np.full(n, None, dtype=object)
    last = np.full(n, None, dtype=object)
    company = np.full(n, None, dtype=object)
    email = np.full(n, None, dtype=object)
    domain = np.full(n, None, dtype=object)
    lead_id = np.full(n, None, dtype=object)
    truth = np.full(n, None, dtype=object)
    record = rng.integers(0, max(m, 1), n)

    known = np.flatnonzero((kind == 1) | (kind == 2))
    first[known], last[known] = rec_first[record[known]], rec_last[record[known]]
    company[known] = rec_company[record[known]]
    truth[known] = [preferred[p][0] for p in person[record[known]].tolist()]

    ex = np.flatnonzero(kind == 1)
    email[ex] = rec_email[record[ex]]
    domain[ex] = rec_domain[record[ex]]
    tagged = ex[(rng.random(ex.size) < 0.2) & np.array([e is not None for e in email[ex]], dtype=bool)]
    email[tagged] = [e.replace("@", "+news@", 1) for e in email[tagged].tolist()]

    fz = np.flatnonzero(kind == 2)
    how = rng.integers(0, 3, fz.size)
    initial = fz[how == 1]
    first[initial] = [f[0] + "." for f in first[initial].tolist()]
    nick = fz[how == 2]
    first[nick] = [_SYNTH_NICKNAMES.get(f, f) for f in first[nick].tolist()]
    free = np.zeros(n, dtype=bool)
    to_free = fz[rng.random(fz.size) < 0.6]
    free[to_free] = True
    fdom = np.array(FREE_MAIL_FOR_EXISTING, dtype=object)[rng.integers(0, len(FREE_MAIL_FOR_EXISTING), to_free.size)]
    email[to_free] = _free_local(last[to_free], first[to_free], rng) + "@" + fdom
    domain[to_free] = fdom
    # On free-mail the company is typed by the person: case, suffixes, now and then a slip.
    typed = [
        None if c is None else (c.upper(), c.lower(), c + " Inc", _typo(rng, c), c)[int(rng.integers(0, 5))]
        for c in company[to_free].tolist()
    ]
    company[to_free] = typed
    alias = np.setdiff1d(fz, to_free)
    # One alias per person ("jsmith@acme.com"; on free-mail with digits, "jsmith4821@gmail.com"), unique across
    # people as a mail server keeps it: two people sharing an alias would be one person to any detector.
    person_code, person_values = pd.factorize(person)
    first_record = np.zeros(len(person_values), dtype=np.int64)
    first_record[person_code[::-1]] = np.arange(m)[::-1]
    p_domain = rec_domain[first_record]
    p_free = np.array([d is None or d in FREE_MAIL_FOR_EXISTING for d in p_domain.tolist()], dtype=bool)
    p_local = np.array(
        [_slug(f)[:1] + _slug(x) for f, x in zip(rec_first[first_record].tolist(), rec_last[first_record].tolist(),
                                                 strict=True)],
        dtype=object,
    )
    p_local[p_free] += np.array([f"{d:04d}" for d in rng.integers(0, 10_000, int(p_free.sum())).tolist()], dtype=object)
    p_address = _unique_addresses(p_local, np.where(p_free, "gmail.com", p_domain).astype(object))
    alias_person = person_code[record[alias]]
    email[alias] = p_address[alias_person]
    domain[alias] = np.where(p_free[alias_person], "gmail.com", p_domain[alias_person])
    free[alias[p_free[alias_person]]] = True

    lead_rows = np.flatnonzero(is_lead)
    sf = np.flatnonzero(kind == 3)
    if lead_rows.size == 0:
        kind[sf] = 0
        sf = sf[:0]
    if sf.size > lead_rows.size:  # each CRM lead is pulled back at most once
        kind[sf[lead_rows.size :]] = 0
        sf = sf[: lead_rows.size]
    own = rng.choice(lead_rows, size=sf.size, replace=False) if sf.size else sf
    first[sf], last[sf], company[sf] = rec_first[own], rec_last[own], rec_company[own]
    email[sf], domain[sf], lead_id[sf] = rec_email[own], rec_domain[own], rec_ids[own]
    truth[sf] = [next((r for r in preferred[p] if r != me), None) for p, me in zip(person[own].tolist(),
                                                                                  rec_ids[own].tolist(), strict=True)]

    new = np.flatnonzero((kind == 0) | (kind == 4))
    first[new] = np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), new.size)]
    last[new] = np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), new.size)]
    at_known = new[rng.random(new.size) < 0.5]
    company[at_known] = rec_company[record[at_known]]
    known_domain = rec_domain[record[at_known]]
    corporate = np.array([d is not None and d not in FREE_MAIL_FOR_EXISTING for d in known_domain.tolist()])
    domain[at_known] = np.where(corporate, known_domain, "gmail.com")
    colleague = at_known[rng.random(at_known.size) < 0.2]
    last[colleague] = rec_last[record[colleague]]
    # A colleague's first name must differ from the known person's, nickname or initial included.
    canon = {first_name_key(k): first_name_key(f) for f, nicks in DEFAULT_NICKNAMES.items() for k in [f, *nicks]}

    def key(name: str) -> str:
        k = first_name_key(name)
        return canon.get(k, k)[:1]

    names = np.array(FIRST_NAMES, dtype=object)
    for row in colleague.tolist():
        taken = key(rec_first[record[row]])
        while key(first[row]) == taken:
            first[row] = names[int(rng.integers(0, names.size))]
    # Nor may a new person at a known company be a known person there (same last name and first name or nickname).
    first_code = {f: c for f, c in zip(FIRST_NAMES, _canonical_first_codes().tolist(), strict=True)}
    rec_code = list(map(first_code.get, rec_first.tolist()))
    known_people = set(zip(rec_code, rec_last.tolist(), rec_company.tolist(), strict=True))
    known_people |= set(zip(rec_code, rec_last.tolist(), rec_domain.tolist(), strict=True))
    for row in at_known.tolist():
        while {(first_code[first[row]], last[row], company[row]), (first_code[first[row]], last[row], domain[row])} & (
            known_people
        ):
            first[row] = names[int(rng.integers(0, names.size))]
    outside = np.setdiff1d(new, at_known)
    stems, words = np.array(OUTSIDE_STEMS, dtype=object), np.array(COMPANY_WORDS, dtype=object)
    outside_company = stems[rng.integers(0, stems.size, outside.size)] + " " + words[rng.integers(0, words.size,
                                                                                                    outside.size)]
    company[outside] = outside_company
    out_free = rng.random(outside.size) < 0.5
    domain[outside] = np.where(
        out_free,
        "gmail.com",
        np.array([_slug(c.replace(" ", "")) + ".com" for c in outside_company.tolist()], dtype=object),
    )
    corp_new = np.array([d not in FREE_MAIL_FOR_EXISTING for d in domain[new].tolist()], dtype=bool)
    free[new] = ~corp_new
    local_new = np.where(corp_new, _local(first[new], last[new]), _free_local(first[new], last[new], rng))
    # New people get addresses no one else has (not even a known person): a new lead is nobody's duplicate.
    taken = pd.Series(rec_email).dropna().to_numpy(dtype=object)
    both = _unique_addresses(
        np.concatenate([np.array([e.rsplit("@", 1)[0] for e in taken.tolist()], dtype=object), local_new]),
        np.concatenate([np.array([e.rsplit("@", 1)[1] for e in taken.tolist()], dtype=object), domain[new].astype(object)]),
    )
    email[new] = both[taken.size :]
    free[ex] = np.array(
        [d is None or d in FREE_MAIL_FOR_EXISTING for d in domain[ex].tolist()], dtype=bool
    )
    free[sf] = np.array([d is None or d in FREE_MAIL_FOR_EXISTING for d in domain[sf].tolist()], dtype=bool)

    source = np.array(["salesforce", "marketo", "hubspot", "webform"], dtype=object)[_choose(rng, n, SOURCES)]
    source[sf] = "salesforce"
    with_id = np.flatnonzero((source == "salesforce") & (kind != 3))
    lead_id[with_id] = [c.decode() for c in _salesforce_ids("00Q", 9_000_000 + with_id).view("S18").ravel().tolist()]
    created = DEFAULT_START.timestamp() - rng.integers(86_400, 90 * 86_400, n)
    # A lead pulled back from the CRM was created there before this batch.
    created[sf] = DEFAULT_START.timestamp() - rng.integers(91 * 86_400, 720 * 86_400, sf.size)

    # Repeats within the batch: the address of an earlier "new" lead, created after it.
    batch = np.flatnonzero(kind == 4)
    originals = np.flatnonzero(kind == 0)
    if batch.size and originals.size:
        orig = originals[rng.integers(0, originals.size, batch.size)]
        first[batch], last[batch], company[batch] = first[orig], last[orig], company[orig]
        email[batch], domain[batch], free[batch] = email[orig], domain[orig], free[orig]
        created[batch] = created[orig] + rng.integers(60, 86_400, batch.size)
        truth[batch] = [i if i is not None else f"email:{e}" for i, e in zip(lead_id[orig].tolist(),
                                                                              email[orig].tolist(), strict=True)]
    else:
        kind[batch] = 0

    people = np.array([f"new:{i}" for i in range(n)], dtype=object)
    people[known] = person[record[known]]
    people[sf] = person[own]
    if batch.size and originals.size:
        people[batch] = people[orig]
    kinds = np.array(["new", "exact", "fuzzy", "self", "batch"], dtype=object)[kind]
    stamps = np.datetime_as_string(created.astype("datetime64[s]"), unit="s").astype(object) + "Z"
    frame = pd.DataFrame(
        {
            "lead_id": lead_id,
            "source": source,
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "email_domain": domain,
            "created_at": stamps,
            "true_duplicate_of": truth,
            "true_person_id": people,
            "kind": kinds,
        }
    ).astype("string")
    frame.insert(7, "is_free_email", pd.array(free, dtype="boolean"))
    frame["email"] = frame["email"].str.lower()
    return frame


def duplicate_answer_persons(answers: pd.Series, leads: pd.DataFrame, existing: pd.DataFrame) -> pd.Series:
    """The person (ground truth) behind each `duplicate_of` answer: a record's `person_id`, or the `true_person_id`
    of the batch lead an answer names by lead_id or "email:<address>"; NA for no answer or an unknown id."""
    by_id = pd.concat(
        [
            pd.Series(existing["person_id"].to_numpy(), index=existing["record_id"].to_numpy()),
            pd.Series(leads["true_person_id"].to_numpy(), index=leads["lead_id"].to_numpy()),
            pd.Series(
                leads["true_person_id"].to_numpy(),
                index=("email:" + leads["email"].str.replace(r"\+[^@]*@", "@", regex=True)).to_numpy(),
            ),
        ]
    )
    by_id = by_id[by_id.index.notna()]
    by_id = by_id[~by_id.index.duplicated()]
    return answers.map(by_id).astype("string")
