"""Write-back diff: only changed fields, never blanking a CRM value, nothing for unchanged records."""

from __future__ import annotations

import pandas as pd
import pytest

from leadflow.sync.writeback import changed_fields


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


def test_export_guard_counts_the_whole_run_and_applies_its_floor_once() -> None:
    import pytest

    from leadflow.connectors.base import ExportGuard, ExportGuardError

    guard = ExportGuard("marketo", max_change_share=0.5, floor=2)
    guard.check(["x", "y"])  # at the floor: nothing pulled yet, a tiny write passes
    with pytest.raises(ExportGuardError, match="marketo: export guard refused the write: 3 records changed"):
        guard.check(["z"])  # the floor is the run's, not each write's
    guard.saw(["a", "b", "c", "d", "e", "f", pd.NA, None])
    guard.check(["a"])  # 3 changed of 6 pulled
    guard.check(["a", "x"])  # the same records again count once
    with pytest.raises(ExportGuardError, match="at page 1: 4 records changed in this run .this write: 1. against 6"):
        guard.check(["b"])
    assert guard.changed == {"x", "y", "a"}  # a refused write is not counted
    guard.check(["b", "c", "d"], override=True)  # overridden writes are neither checked nor counted
    assert guard.changed == {"x", "y", "a"}


@pytest.mark.parametrize(("first", "rest", "refused_at"), [(0.4, 0.9, 2), (0.1, 0.3, None), (0.5, 0.5, None)])
def test_export_guard_decides_on_the_run_not_the_page(first: float, rest: float, refused_at: int | None) -> None:
    """Ten pages of 1,000: the first changes `first` of its records, the others `rest`."""
    from leadflow.connectors.base import ExportGuard, ExportGuardError

    guard = ExportGuard("salesforce", max_change_share=0.5, floor=100)
    tripped = None
    for page in range(1, 11):
        ids = [f"{page}-{i}" for i in range(1000)]
        guard.saw(ids)
        share = first if page == 1 else rest
        try:
            guard.check(ids[: int(share * 1000)])
        except ExportGuardError as exc:
            tripped = exc.page
            break
    assert tripped == refused_at


def test_counts_add_up_across_pages() -> None:
    from leadflow.pipeline.ledger import add_counts

    total: dict = {}
    add_counts(total, {"mailable": 2, "mailable_reasons": {"ok": 2, "no_consent": 1}})
    add_counts(total, {"mailable": 1, "mailable_reasons": {"ok": 1, "opted_out": 4}})
    assert total == {"mailable": 3, "mailable_reasons": {"ok": 3, "no_consent": 1, "opted_out": 4}}
