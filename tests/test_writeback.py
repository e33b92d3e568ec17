"""Write-back diff: only changed fields, never blanking a CRM value, nothing for unchanged records."""

from __future__ import annotations

import pandas as pd

from leadflow.writeback import changed_fields


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    pulled = pd.DataFrame(
        {
            "lead_id": ["00Q1", "00Q2", "00Q3", "00Q4"],
            "email": ["Ann@Acme.com", "bob@x.org", "cy@y.org", "di@z.org"],
            "country_code": [None, "DE", "US", None],
            "mailable": pd.array([None, True, None, None], dtype="boolean"),
        }
    ).astype({"lead_id": "string", "email": "string", "country_code": "string"})
    processed = pulled.copy()
    processed["email"] = processed["email"].str.lower()
    processed["country_code"] = pd.array(["US", "DE", None, None], dtype="string")  # 00Q3 cleared: never blanked
    processed["mailable"] = pd.array([True, True, None, None], dtype="boolean")
    return pulled, processed.drop(index=[3])  # 00Q4 was quarantined: not written


def test_only_changed_fields_of_changed_records() -> None:
    pulled, processed = frames()
    changes = changed_fields(pulled, processed, ["email", "country_code", "mailable"])
    assert changes["record_id"].tolist() == ["00Q1"]
    row = changes.iloc[0]
    assert (row["email"], row["country_code"], bool(row["mailable"])) == ("ann@acme.com", "US", True)


def test_nothing_to_write_when_nothing_changed() -> None:
    pulled, _ = frames()
    assert changed_fields(pulled, pulled, ["email", "country_code", "mailable"]).empty


def test_unchanged_columns_are_na() -> None:
    pulled, processed = frames()
    processed.loc[1, "email"] = "bob@new.org"
    changes = changed_fields(pulled, processed, ["email", "country_code"]).set_index("record_id")
    assert changes.loc["00Q2", "email"] == "bob@new.org"
    assert pd.isna(changes.loc["00Q2", "country_code"])


def test_export_guard_counts_pulled_records_and_has_a_floor() -> None:
    import pytest

    from leadflow.connectors.base import ExportGuard, ExportGuardError

    guard = ExportGuard("marketo", max_change_share=0.5, floor=2)
    guard.check(2)  # at the floor: nothing pulled yet, small writes (dead-letter retries) pass
    with pytest.raises(ExportGuardError, match="marketo: refusing to write 3 records: more than 50% of the 0"):
        guard.check(3)
    guard.saw(["a", "b", "c", "d", "e", "f", pd.NA, None])
    guard.check(3)
    with pytest.raises(ExportGuardError, match="--override-export-guard"):
        guard.check(4)
    guard.check(4, override=True)


def test_counts_add_up_across_pages() -> None:
    from leadflow.pipeline import add_counts

    total: dict = {}
    add_counts(total, {"mailable": 2, "mailable_reasons": {"ok": 2, "no_consent": 1}})
    add_counts(total, {"mailable": 1, "mailable_reasons": {"ok": 1, "opted_out": 4}})
    assert total == {"mailable": 3, "mailable_reasons": {"ok": 3, "no_consent": 1, "opted_out": 4}}
