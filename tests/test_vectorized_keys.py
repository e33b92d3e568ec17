"""The vectorised paths the stages take give what the per-value functions they replace give (issue 17)."""

from __future__ import annotations

import itertools
import re
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from leadflow.identity.earlier_leads import EarlierLeads
from leadflow.identity.normalize import _ADDRESS, _PLUS_TAG, normalize_emails, registered_domain, registered_domains
from leadflow.pipeline.uniques import map_unique_multi
from leadflow.scoring.lifecycle import advance_lifecycle, load_lifecycle_policy
from leadflow.stages.standardize import _iso_utc
from leadflow.stages.standardize_emails import email_facts, email_facts_of

SPACES = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]


def test_registered_domains_equal_registered_domain() -> None:
    values = [
        "https://www.acme.co.uk/about", "HTTP://Shop.Acme.COM/", "acme.com", " www.acme.com", "www.acme.com.",
        "https://x.blogspot.com", "1.2.3.4", "http://1.2.3.4/", "ftp://acme.com", "acme.com:8080", "jo@acme.com",
        "acme.com/a@b.com", "ＡＣＭＥ.com", "\u212a.com", "xn--bcher-kva.de", "bücher.de", "localhost", "n/a", "",
        None, "http://", "https://-x-.com/", "a..b.com", "www.x.com?q=1", "www.x.com#f", "x.invalidtld",
        "https://www.x.com/%20a", "https://www.x.com//y", "acme.com\t", "https://acme.com/contact",
    ]
    series = pd.Series(values * 2, dtype="string", index=np.arange(len(values) * 2)[::-1])
    got = registered_domains(series)
    assert got.index.equals(series.index) and got.dtype == "string"
    assert got.astype(object).where(got.notna(), None).tolist() == [
        registered_domain(None if pd.isna(v) else v) for v in series.tolist()]
    assert registered_domains(pd.Series([], dtype="string")).tolist() == []


def _old_normalize_emails(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower().str.replace(_PLUS_TAG, r"\1@", regex=True)
    return text.where(text.str.fullmatch(_ADDRESS).fillna(False).astype(bool))


def test_normalize_emails_reads_whitespace_as_python_does() -> None:
    odd = []
    for c in [*SPACES, "\u200b", "\ufeff", "@", "+", "é", "İ"]:
        odd += [f"a{c}b@x.com", f"ab@x{c}.com", f"{c}ab@x.com{c}", f"a+{c}@x.com", f"a@b{c}"]
    odd += ["a+b+c@x.com", "+@x.com", "a+@x.com", "a@@x.com", "@x.com", "a@", "A+Tag@X.COM", "", None, "x+y@a+b.com"]
    values = pd.Series(odd, dtype="string")
    pd.testing.assert_series_equal(normalize_emails(values), _old_normalize_emails(values))
    # every character Python's \s matches keeps a value from being an address
    assert normalize_emails(pd.Series([f"a{c}b@x.com" for c in SPACES], dtype="string")).isna().all()


def test_email_facts_equal_email_facts_of() -> None:
    locals_ = ["john.doe", "jane+tag", "o'brien", ".john", "jo..hn", "jo hn", '"john"', "josé", "a" * 64, "a" * 65, ""]
    domains = ["acme.com", "ACME.COM", "acme..com", "acme", "bücher.de", "xn--bcher-kva.de", "[1.2.3.4]", "a@b.com",
               ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57]) + ".com"]
    addresses = [f"{a}@{b}" for a, b in itertools.product(locals_, domains)]
    addresses += ["no-at-sign", "jo <jo@x.com>", "x" * 64 + "@" + "d" * 185 + ".com", None]
    values = pd.Series(addresses, dtype="string").str.lower()
    expected = map_unique_multi(values, email_facts_of, ("email_valid", "email_domain"), dtypes=("boolean", "string"))
    pd.testing.assert_frame_equal(email_facts(values), expected)


def test_iso_utc_is_strftime() -> None:
    low, high = pd.Timestamp("1678-01-01T00:00:00Z").value // 10**9, pd.Timestamp("2261-12-31T23:59:59Z").value // 10**9
    seconds = np.concatenate([np.random.default_rng(7).integers(low, high, 5000), [low, high, 0, -1]])
    stamps = pa.concat_arrays([pa.array(seconds, type=pa.timestamp("s", tz="UTC")),
                               pa.array([None], type=pa.timestamp("s", tz="UTC"))])
    assert _iso_utc(stamps).equals(pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%SZ"))


def test_lifecycle_score_text_keeps_negative_zero() -> None:
    scores = [-0.04, 0.04, 72.05, None, 99.95]
    frame = pd.DataFrame({
        "score": pd.array(scores, dtype="Float64"), "status": pd.array([None] * 5, dtype="string"),
        "lifecycle_stage": pd.array([None] * 5, dtype="string"), "lifecycle_reason": pd.array([None] * 5, dtype="string"),
        "mql_at": pd.array([None] * 5, dtype="string"), "sal_at": pd.array([None] * 5, dtype="string"),
        "sql_at": pd.array([None] * 5, dtype="string"), "recycled_at": pd.array([None] * 5, dtype="string"),
    })
    out = advance_lifecycle(frame, load_lifecycle_policy(), mql_threshold=-1.0,
                            last_activity=pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]"),
                            as_of=pd.Timestamp("2026-10-01T00:00:00Z").to_pydatetime())
    reasons = out["lifecycle_reason"].tolist()
    assert reasons[:3] == ["score -0.0 ≥ -1", "score 0.0 ≥ -1", "score 72.0 ≥ -1"] and reasons[4] == "score 100.0 ≥ -1"
    assert pd.isna(reasons[3])  # no score: not crossed


@pytest.mark.parametrize("repeat", ["pat@acme.com", "PAT+x@Acme.com "])
def test_earlier_leads_targets_by_address(repeat: str) -> None:
    with EarlierLeads() as earlier:
        earlier.add(pd.DataFrame({"email": ["pat@acme.com", "kim@acme.com"], "lead_id": ["L1", ""],
                                  "duplicate_of": [None, None]}))
        got = earlier.targets(pd.Series([repeat, "new@acme.com", None, "kim@acme.com"], index=[9, 8, 7, 6]))
    assert got.index.tolist() == [9, 8, 7, 6] and got.dtype == "string"
    assert got.fillna("-").tolist() == ["L1", "-", "-", "email:kim@acme.com"]


def test_python_space_class_is_complete() -> None:
    from leadflow.identity.normalize import _PYTHON_SPACE

    table = pa.array(SPACES + ["a", "\u200b"])
    found = pc.match_substring_regex(table, f"^[{_PYTHON_SPACE}]$").to_pylist()
    assert found == [True] * len(SPACES) + [False, False]
    assert all(re.fullmatch(r"\s", c) for c in SPACES)
