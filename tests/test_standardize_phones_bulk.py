"""phone_e164_bulk (column-wise) gives, key for key, the answer of phone_e164_reference (phonenumbers.parse itself).

Corpora: the 100k+ generated keys of test_standardize_phones (messy leads, every region's example numbers in every
format, prefixed and random digit strings, and their mutations), with every group forced onto the column-wise path;
and the distinct phone keys of a 50k-row messy_leads frame as the standardize stage builds them, as it runs.
"""

from __future__ import annotations

import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest

from leadflow.pipeline.uniques import map_unique
from leadflow.stages import standardize_phones_bulk
from leadflow.stages.standardize import _keyed, clean_text
from leadflow.stages.standardize_countries import country_code_of
from leadflow.stages.standardize_phones import _region_meta, _Unsupported, phone_e164_of, phone_e164_reference
from leadflow.stages.standardize_phones_bulk import phone_e164_bulk, phone_e164_series
from leadflow.synth import messy_leads
from tests.test_standardize_phones import _equivalence_keys, _messy_keys

_SEP = "\x1f"


def _per_key_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keys the bulk function hands to `phone_e164_of` (the rest it answers column-wise)."""
    calls: list[str] = []

    def counted(key: str) -> str | None:
        calls.append(key)
        return phone_e164_of(key)

    monkeypatch.setattr(standardize_phones_bulk, "phone_e164_of", counted)
    return calls


def _differences(keys: list[str], answers: list[str | None]) -> list[tuple[str, str | None, str | None]]:
    assert len(answers) == len(keys)
    return [(key, want, got) for key, got in zip(keys, answers, strict=True)
            if (want := phone_e164_reference(key)) != got]


def test_same_answer_as_the_reference_on_100k_generated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _equivalence_keys()
    assert len(keys) > 100_000
    monkeypatch.setattr(standardize_phones_bulk, "_MIN_GROUP", 1)  # every group column-wise, however small
    calls = _per_key_calls(monkeypatch)
    differ = _differences(keys, phone_e164_bulk(keys))
    assert differ == [], f"{len(differ)} of {len(keys)} differ, e.g. {differ[:10]}"
    # The comparison means something: most keys, valid or not, were answered column-wise.
    assert len(calls) < 0.45 * len(keys)


def test_same_answer_as_the_reference_on_a_messy_frames_phones(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _messy_keys(50_000, seed=5)
    calls = _per_key_calls(monkeypatch)
    answers = phone_e164_bulk(keys)
    differ = _differences(keys, answers)
    assert differ == [], f"{len(differ)} of {len(keys)} differ, e.g. {differ[:10]}"
    assert len(calls) < 0.1 * len(keys)  # small groups and unusual texts go per key
    assert 0.5 * len(keys) < sum(a is not None for a in answers) < len(keys)


@pytest.mark.parametrize(
    "text",
    [
        "(415) 555-2671", "415.555.2671 x123", "+1 (415) 555-2671 ext. 5", "tel: +1-415-555-2671", "14155552671",
        "+1 415 555 2671 x1234567890", "415 555 2671\n", "415 555\x1f2671", "0049 30 1234567", "011 44 20 7946 0958",
        "+0049 30 1234567", "00 44 20 7946 0958", "+800 1234 5678", "020 7946 0958", "+44 (0)20 7946 0958",
        "06 1234 5678", "011 15 2345-6789", "0 21 11 91234-5678", "03-1234-5678", "044 55 1234 5678", "1" * 251,
        "+1 " + "2" * 248, "+" + "4" * 20, "12", "123", "", "x", "+1", "416-555-0199", "(+44) 20 7946 0958 )",
    ],
)
@pytest.mark.parametrize("region", ["US", "GB", "DE", "AR", "IT", "JP", "CA", "", "ZZ", "us", "001"])
def test_small_cases(monkeypatch: pytest.MonkeyPatch, region: str, text: str) -> None:
    monkeypatch.setattr(standardize_phones_bulk, "_MIN_GROUP", 1)
    key = region + _SEP + text
    assert phone_e164_bulk([key]) == [phone_e164_reference(key)]


def test_any_sequence_of_keys() -> None:
    keys = _messy_keys(2_000, seed=3)
    want = [phone_e164_of(key) for key in keys]
    assert phone_e164_bulk(keys) == want
    assert phone_e164_bulk(pa.array([None, *keys])[1:]) == want  # a slice: buffers with an offset
    assert phone_e164_bulk([None, keys[0], "no separator"]) == [None, want[0], phone_e164_of("no separator")]
    assert phone_e164_bulk([]) == []


def test_series_is_map_unique_of_phone_e164_of() -> None:
    frame = messy_leads(5_000, seed=9)
    country_code = map_unique(clean_text(frame["country"]), country_code_of, workers=1)
    keys = _keyed(country_code, clean_text(frame["phone"]))
    keys.index = keys.index * 3 + 7
    assert keys.isna().any()
    pd.testing.assert_series_equal(phone_e164_series(keys), map_unique(keys, phone_e164_of, workers=1))


def test_metadata_patterns_mean_the_same_to_re2() -> None:
    """RE2 refuses what it does not know (those keys go per key), but reads "{,n}" as text where Python's `re` reads
    {0,n}: no pattern the column-wise path hands to RE2 may contain it."""
    sources = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        try:
            meta = _region_meta(region)
        except _Unsupported:
            continue
        patterns = [meta.idd, meta.national_prefix, meta.leading_digits, meta.general.pattern]
        patterns += [kind.pattern for kind in meta.kinds]
        sources += [pattern.pattern for pattern in patterns if pattern is not None]
    assert len(sources) > 1_000
    assert [source for source in sources if "{," in source] == []
