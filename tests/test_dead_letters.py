"""Dead letters: write-back failures are kept, retried, resolved, or declared permanent — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from leadflow.store import StateStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with StateStore.open(url) as opened:
        yield opened


def failures(*rows: tuple[str, str, bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": [r[0] for r in rows],
            "error_code": [r[1] for r in rows],
            "message": [f"{r[1]} on {r[0]}" for r in rows],
            "retryable": [r[2] for r in rows],
            "payload": [{"Id": r[0], "Country_Code__c": "DE"} for r in rows],
        }
    )


def test_retryable_failure_stays_pending_until_resolved(store: StateStore) -> None:
    store.add_dead_letters("run-1", "salesforce", "Lead", failures(("00Q1", "UNABLE_TO_LOCK_ROW", True)))
    pending = store.dead_letters("salesforce", "pending")
    assert pending["record_id"].tolist() == ["00Q1"]
    assert pending.loc[0, "payload"] == {"Id": "00Q1", "Country_Code__c": "DE"}
    assert pending.loc[0, "attempts"] == 1
    assert store.resolve_dead_letters("salesforce", "Lead", ["00Q1", "00Q9"], "run-2") == 1
    assert store.dead_letters("salesforce", "pending").empty
    resolved = store.dead_letters("salesforce", "resolved")
    assert resolved.loc[0, "last_run_id"] == "run-2" and resolved.loc[0, "resolved_at"] is not None


def test_permanent_errors_are_not_retried(store: StateStore) -> None:
    store.add_dead_letters(
        "run-1", "salesforce", "Lead",
        failures(("00Q2", "FIELD_CUSTOM_VALIDATION_EXCEPTION", False), ("00Q3", "UNABLE_TO_LOCK_ROW", True)),
    )
    assert store.dead_letters("salesforce", "permanent")["record_id"].tolist() == ["00Q2"]
    assert store.dead_letters("salesforce", "pending")["record_id"].tolist() == ["00Q3"]


def test_repeated_failures_become_permanent_after_max_attempts(store: StateStore) -> None:
    for run in range(3):
        store.add_dead_letters(f"run-{run}", "salesforce", "Lead", failures(("00Q4", "UNABLE_TO_LOCK_ROW", True)),
                               max_attempts=3)
    row = store.dead_letters("salesforce").iloc[0]
    assert (row["attempts"], row["status"], row["first_run_id"], row["last_run_id"]) == (3, "permanent", "run-0", "run-2")
    assert len(store.dead_letters()) == 1


def test_a_resolved_record_failing_again_starts_over(store: StateStore) -> None:
    store.add_dead_letters("run-1", "marketo", "Lead", failures(("7", "1006", True)))
    store.resolve_dead_letters("marketo", "Lead", ["7"], "run-2")
    store.add_dead_letters("run-3", "marketo", "Lead", failures(("7", "1006", True), ("7", "1006", True)))
    row = store.dead_letters("marketo").iloc[0]
    assert (row["status"], row["attempts"], row["resolved_at"]) == ("pending", 1, None)
