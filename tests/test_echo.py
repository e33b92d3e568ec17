"""Write receipts: a sync recognizes the echo of its own writes and skips it, and still catches a person's edit.

The hashes are checked against the Salesforce sandbox's real round trip (write through the connector, pull again,
by REST and by Bulk API 2.0); the flow is checked end to end: sync 1 writes, sync 2 re-pulls and processes only the
lead a person edited and the leads whose write failed; a backfill reprocesses everything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from leadflow.connectors.salesforce import SalesforceConnector, SalesforceCredentials, salesforce_connector
from leadflow.connectors.salesforce_mapping import load_mapping
from leadflow.pipeline.schema import conform
from leadflow.sandbox.salesforce import RunningSalesforce, running_salesforce
from leadflow.store import StateStore
from leadflow.sync.receipts import (
    ReceiptSpec,
    after_write_hashes,
    connector_receipt_spec,
    echo_mask,
    receipt_hashes,
    receipt_rows,
    receipt_spec,
    receipt_text,
)
from leadflow.sync.writeback import changed_fields, without_refused
from tests.dbs import store_urls

state_url = store_urls()

LONG_TITLE = "Senior Vice President of Global Revenue Operations, Strategy and Planning " * 3


# --------------------------------------------------------------------------- pure functions


def test_values_compare_by_the_text_the_system_returns_whatever_their_dtype() -> None:
    spec = ReceiptSpec()
    as_float = receipt_text(pd.Series([5000.0, None], dtype="Float64"), "employees", spec)
    as_int = receipt_text(pd.Series([5000, None], dtype="Int64"), "employees", spec)
    as_text = receipt_text(pd.Series(["5000", None], dtype="string"), "employees", spec)
    assert as_float.tolist() == as_int.tolist() == as_text.tolist() == ["5000.0", pd.NA]
    stamps = receipt_text(pd.Series(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250+00:00", "2024-05-01T14:00:00+02:00",
                                     "not a date"], dtype="string"), "mql_at", spec)
    assert stamps.tolist() == ["2024-05-01T12:00:00Z"] * 3 + ["not a date"]
    flags = receipt_text(pd.Series([True, False, None], dtype="boolean"), "mailable", spec)
    assert flags.tolist() == ["true", "false", pd.NA]
    assert receipt_text(pd.Series(["", None, " x"], dtype="string"), "title", spec).tolist() == [pd.NA, pd.NA, " x"]
    # the hash of a frame does not depend on its dtypes, and sees every column
    typed = pd.DataFrame({"lead_id": ["a", "b"], "employees": pd.array([5, None], dtype="Int64"),
                          "mailable": pd.array([True, None], dtype="boolean"), "source_modstamp": ["x", "y"]})
    texts = typed.astype(object).assign(employees=["5.0", None], mailable=["true", None], source_modstamp=["z", "w"])
    assert receipt_hashes(typed, spec).tolist() == receipt_hashes(texts, spec).tolist()  # stamps are not hashed
    renamed = typed.rename(columns={"mailable": "email_valid"})
    assert not (receipt_hashes(typed, spec) == receipt_hashes(renamed, spec)).any()  # nor a column set's values


def test_an_echo_is_a_lead_whose_hash_equals_its_receipt() -> None:
    keys = pd.Series(["s:1", "s:2", "s:3", "s:4", pd.NA], dtype="string")
    hashes = pd.Series([11, 22, 33, 44, 55], dtype="int64")
    stored = pd.Series(pd.array([11, 99, pd.NA], dtype="Int64"), index=pd.Index(["s:1", "s:2", "s:3"]))
    # s:1 matches; s:2 changed; s:3 has a null receipt (always processed); s:4 has none; no key: never an echo
    assert echo_mask(keys, hashes, stored).tolist() == [True, False, False, False, False]
    assert not echo_mask(keys, hashes, stored.iloc[:0]).any()
    at = datetime(2024, 5, 1, tzinfo=UTC)
    big = 2**62 + 1  # beyond float precision: a receipt must never pass through float64 (as NA would make it)
    rows = receipt_rows(pd.Series(["s:1", "s:1", pd.NA, "s:2"], dtype="string"),
                        pd.Series(pd.array([1, big, 3, pd.NA], dtype="Int64")), "run", at)
    assert rows["lead_key"].tolist() == ["s:1", "s:2"] and rows["receipt"].tolist() == [big, pd.NA]


def test_only_fields_read_back_from_the_field_written_are_overlaid() -> None:
    from leadflow.connectors.salesforce_fit import FieldRule

    mapping = load_mapping().objects["Lead"]
    rules = {"Title": FieldRule("Title", "string", length=128), "Email": FieldRule("Email", "email", length=80)}
    spec = receipt_spec(mapping, (), rules)
    # email_opt_in is written to Email_Opt_In__c but read from HasOptedOutOfEmail: the write never shows in it
    assert "email_opt_in" not in spec.overlay and {"title", "country_code", "mql_at"} <= spec.overlay
    assert spec.lengths == {"title": 128}  # an e-mail too long is refused, never cut
    assert spec.columns is not None and "updated_at" not in spec.columns and "source_modstamp" not in spec.columns
    assert {"email_opt_in", "is_converted", "lead_id"} <= set(spec.columns) and "fit_score" not in spec.columns
    assert {"mql_at", "created_at"} <= spec.datetimes
    assert receipt_spec(None, ("email", "phone")).overlay == {"email", "phone"}


# --------------------------------------------------------------------------- the sandbox round trip


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSalesforce]:
    with running_salesforce(tmp_path / "sf", leads=120, seed=9, page_size=200) as sf:
        yield sf


@pytest.fixture
def connect(sandbox: RunningSalesforce) -> Callable[[], SalesforceConnector]:
    def make() -> SalesforceConnector:
        credentials = SalesforceCredentials(login_url=sandbox.url, client_id=sandbox.client_id,
                                            client_secret=sandbox.client_secret)
        return salesforce_connector(credentials, session=sandbox.session(), page_size=200, backoff=0.0,
                                    bulk_wait=0.0, lookback=timedelta(0))

    return make


def _pulled(pages: Iterator[pd.DataFrame]) -> pd.DataFrame:
    page = pd.concat(list(pages), ignore_index=True)
    assert page["_pull_error"].isna().all()
    return conform(page.drop(columns=["_pull_error"]))


def test_what_a_write_leaves_in_salesforce_hashes_to_its_receipt(
    sandbox: RunningSalesforce, connect: Callable[[], SalesforceConnector]
) -> None:
    connector = connect()
    column_of = {name: spec.column for name, spec in connector.mapping.objects["Lead"].fields.items()}
    pulled = _pulled(connector.pull(None))
    before = receipt_hashes(pulled, connector_receipt_spec(connector))
    processed = pulled[~pulled["is_converted"].fillna(False).to_numpy(dtype=bool)].copy()
    n = len(processed)
    processed["title"] = pd.array([LONG_TITLE if i % 3 == 0 else f"Title {i}" for i in range(n)], dtype="string")
    processed["account_match_confidence"] = pd.array([0.123456789 + i / 997 for i in range(n)], dtype="Float64")
    processed["employees"] = pd.array([17 * i + 3 for i in range(n)], dtype="Int64")
    processed["mql_at"] = pd.array(["2024-05-01T12:00:00Z"] * n, dtype="string")
    processed["mailable"] = pd.array([i % 2 == 0 for i in range(n)], dtype="boolean")
    processed["grade"] = pd.array(["A"] * n, dtype="string")
    processed["email_opt_in"] = ~processed["email_opt_in"].fillna(True)  # written where it is not read from
    processed["status"] = pd.array(["Not a status" if i % 5 == 0 else "Nurture" for i in range(n)], dtype="string")
    changes = changed_fields(pulled, processed, connector.writable_columns)
    result = connector.write(changes, override=True)
    assert len(result.written) == n and result.truncated >= n // 3 and len(result.refused) >= n // 5
    sent = without_refused(changes, result.refused, column_of)
    spec = connector_receipt_spec(connector)  # now with the org's describe: the write fetched it
    expected = pd.Series(after_write_hashes(pulled, sent, result.written, spec).to_numpy(), index=pulled["lead_id"])
    assert (expected.to_numpy() != before.to_numpy()).sum() == n  # every written lead changed

    edited = str(processed["lead_id"].iloc[1])
    sandbox.org.put("Lead", {"Title": "Chief Echo Officer"}, edited)  # a person, after our write
    again = _pulled(connect().pull(None))
    actual = pd.Series(receipt_hashes(again, spec).to_numpy(), index=again["lead_id"]).reindex(expected.index)
    assert (actual == expected).sum() == len(expected) - 1 and actual[edited] != expected[edited]

    # A backfill reads the same leads through Bulk API 2.0 (CSV text): they hash the same as the REST pull.
    bulk = _pulled(connect().backfill(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(minutes=1)))
    by_bulk = pd.Series(receipt_hashes(bulk, spec).to_numpy(), index=bulk["lead_id"]).reindex(actual.index)
    assert (by_bulk == actual).all()


# --------------------------------------------------------------------------- the store


def test_receipts_are_kept_replaced_and_read_in_chunks(state_url: str) -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    keys = pd.Series([f"salesforce:{i:05d}" for i in range(1_200)], dtype="string")
    hashes = pd.Series(pd.array(np.arange(1_200, dtype=np.int64) * (2**52) - 2**62, dtype="Int64"))
    hashes[7] = pd.NA
    with StateStore.open(state_url) as store:
        assert store.write_receipts(receipt_rows(keys, hashes, "run-1", at)) == 1_200
        stored = store.receipts([*keys.tolist(), "salesforce:unknown"])
        assert len(stored) == 1_200 and stored.isna().sum() == 1
        assert stored.reindex(keys.tolist()).astype("Int64").tolist() == hashes.tolist()  # 64-bit exact, negative too
        store.write_receipts(receipt_rows(keys.iloc[:2], pd.Series(pd.array([5, pd.NA], dtype="Int64")), "run-2", at))
        assert store.receipts(keys.iloc[:3].tolist()).reindex(keys.iloc[:3].tolist()).tolist() == [
            5, pd.NA, hashes[2]]
        with pytest.raises(ValueError, match="timezone-aware"):
            store.write_receipts(receipt_rows(keys.iloc[:1], hashes.iloc[:1], "run", datetime(2024, 5, 1)))


# --------------------------------------------------------------------------- the flow


@pytest.fixture
def config(tmp_path: Path, sandbox: RunningSalesforce, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LF_TEST_SF_SECRET", sandbox.client_secret)
    path = tmp_path / "leadflow.yaml"
    path.write_text(yaml.safe_dump({"systems": {"salesforce": {
        "login_url": sandbox.url, "client_id": sandbox.client_id, "client_secret": {"env": "LF_TEST_SF_SECRET"},
        "ca_bundle": str(sandbox.cert_path), "page_size": 200,
    }}}), encoding="utf-8")
    return str(path)


@pytest.mark.prefect
def test_the_next_sync_skips_our_echo_and_processes_edits_failures_and_backfills(
    prefect_api: str, state_home: Path, sandbox: RunningSalesforce, config: str
) -> None:
    from flows.crm_sync import crm_sync

    sandbox.faults.inject(r"PATCH .*/composite/sobjects", "lock_row", times=1, count=2)
    first = crm_sync(config_path=config, override_export_guard=True)
    report = first["systems"]["salesforce"]
    store = StateStore.open()
    failed = set(store.dead_letters("salesforce", "pending")["record_id"])
    written = {rid for _, rid, _ in sandbox.org.field_writes} - failed
    assert report["failed"] == len(failed) == 2 and len(written) == report["written"] > 60
    edited = next(i for i in sorted(written) if sandbox.org.objects["Lead"][i].get("Seniority__c") != "c_level")
    sandbox.org.put("Lead", {"Title": "Chief Executive Officer"}, edited)  # a person, after our write

    second = crm_sync(config_path=config)
    report = second["systems"]["salesforce"]
    processed = set(store.lead_runs()[lambda r: r["run_id"] == second["run_id"]]["lead_key"])
    # Everything sync 1 wrote came back (and, within the look-back, what it did not write): only the edited lead
    # and the two whose write failed (replayed first, then re-pulled) are processed.
    assert processed == {f"salesforce:{i}" for i in {edited, *failed}}
    unreadable = second["quarantined_by_stage"].get("pull", 0)  # never skipped: they are quarantined each time
    assert report["pulled"] == second["rows_in"] == 3 + unreadable and report["retried"] == 2
    assert report["echo_skipped"] >= len(written) - 1
    assert sandbox.org.objects["Lead"][edited]["Seniority__c"] == "c_level"  # the edit went through the stages

    third = crm_sync(config_path=config)["systems"]["salesforce"]
    assert third["pulled"] == unreadable and third["written"] == 0 and third["echo_skipped"] > 0

    # A backfill reprocesses every lead of its window, receipts or not.
    backfill = crm_sync(config_path=config, start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime.now(UTC))
    assert backfill["systems"]["salesforce"]["pulled"] == len(sandbox.org.objects["Lead"])
    assert "echo_skipped" not in backfill["systems"]["salesforce"]
