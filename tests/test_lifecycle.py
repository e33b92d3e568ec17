"""The lifecycle state machine: MQL on score, SAL/SQL/recycled on CRM status, refused moves, stamps, config errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline.config import load_rules
from leadflow.pipeline.errors import ConfigError
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.scoring.lifecycle import advance_lifecycle, load_lifecycle_policy, refused_count
from leadflow.pipeline.schema import conform
from leadflow.stages import LIFECYCLE
from leadflow.stages.lifecycle import status_since

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
STAMP = "2026-11-20T12:00:00Z"
POLICY = load_lifecycle_policy()


def leads(*rows: dict[str, object]) -> pd.DataFrame:
    frame = conform(pd.DataFrame(list(rows)).astype("string"))
    frame["score"] = pd.to_numeric(frame["score"]).astype("Float64")
    return frame


def advance(frame: pd.DataFrame, last_activity: list[str | None] | None = None) -> pd.DataFrame:
    activity = pd.to_datetime(pd.Series(last_activity or [None] * len(frame), index=frame.index), utc=True)
    return advance_lifecycle(frame, POLICY, mql_threshold=100, last_activity=activity, as_of=NOW)


@pytest.mark.parametrize(
    ("row", "stage", "reason", "stamped"),
    [
        ({"score": "120"}, "mql", "score 120.0 ≥ 100", "mql_at"),
        ({"score": "80"}, "new", None, None),
        # First sight without CRM history: the stage its status means, no stamp (never the run's time).
        ({"score": "80", "status": "Working - Contacted"}, "sal",
         "first seen with crm status Working - Contacted (date unknown)", None),
        ({"score": "80", "status": "Working - Contacted", "lifecycle_stage": "new"}, "new",
         "refused new → sal (crm status Working - Contacted)", None),
        ({"score": "80", "status": "Working - Contacted", "lifecycle_stage": "mql"}, "sal",
         "crm status → sal: Working - Contacted", "sal_at"),
        ({"score": "80", "status": "Closed - Converted", "lifecycle_stage": "sal"}, "sql",
         "crm status → sql: Closed - Converted", "sql_at"),
        ({"score": "80", "status": "Nurture", "lifecycle_stage": "sql"}, "sql",
         "refused sql → recycled (crm status Nurture)", None),
        ({"score": "80", "status": "Nurture", "lifecycle_stage": "mql"}, "recycled",
         "recycled: sales sent it to nurture", "recycled_at"),
        # A tracked lead crossing the threshold while sales already accepted it: new → MQL → SAL in one run.
        ({"score": "130", "status": "Working - Contacted", "lifecycle_stage": "new"}, "sal",
         "crm status → sal: Working - Contacted", "sal_at"),
    ],
)
def test_moves(row: dict[str, str], stage: str, reason: str | None, stamped: str | None) -> None:
    out = advance(leads({"lead_id": "1", **row})).iloc[0]
    assert out["lifecycle_stage"] == stage
    assert (None if pd.isna(out["lifecycle_reason"]) else out["lifecycle_reason"]) == reason
    for column in ("mql_at", "sal_at", "sql_at", "recycled_at"):
        assert (out[column] == STAMP) if column == stamped else (pd.isna(out[column]) or column == "mql_at")


def test_new_to_sal_in_one_run_stamps_both() -> None:
    out = advance(leads({"lead_id": "1", "score": "130", "status": "Working - Contacted",
                         "lifecycle_stage": "new"})).iloc[0]
    assert (out["mql_at"], out["sal_at"]) == (STAMP, STAMP)


@pytest.mark.parametrize(
    ("activity", "stage"),
    [("2026-11-15T09:00:00Z", "mql"),  # engaged after being recycled: back to MQL
     ("2026-11-01T09:00:00Z", "recycled"),  # the last activity is older than the recycling
     (None, "recycled")],
)
def test_recycled_returns_to_mql_only_on_fresh_engagement(activity: str | None, stage: str) -> None:
    frame = leads({"lead_id": "1", "score": "150", "lifecycle_stage": "recycled",
                   "recycled_at": "2026-11-10T00:00:00Z", "mql_at": "2026-10-01T00:00:00Z"})
    out = advance(frame, [activity]).iloc[0]
    assert out["lifecycle_stage"] == stage
    assert out["recycled_at"] == "2026-11-10T00:00:00Z"
    assert out["mql_at"] == (STAMP if stage == "mql" else "2026-10-01T00:00:00Z")


HISTORY = pd.DataFrame({
    "lead_key": ["file:1", "file:1", "file:1", "file:2", "file:3"],
    "status": ["Working - Contacted", "Nurture", "Working - Contacted", "Open - Not Contacted", "Closed - Converted"],
    "changed_at": ["2026-09-01T08:00:00Z", "2026-09-10T08:00:00Z", "2026-10-02T09:30:00.000+0000",
                   "2026-08-01T00:00:00Z", "2026-12-01T00:00:00Z"],
}, dtype="string")


@pytest.mark.parametrize(
    ("status", "history", "stage", "stamp", "reason"),
    [
        # The latest change to the current status dates it (the lead went back to Working on 2 October).
        ("Working - Contacted", HISTORY, "sal", ("sal_at", "2026-10-02T09:30:00Z"),
         "first seen with crm status Working - Contacted (since 2026-10-02T09:30:00Z, crm history)"),
        ("Nurture", HISTORY, "recycled", ("recycled_at", "2026-09-10T08:00:00Z"),
         "first seen with crm status Nurture (since 2026-09-10T08:00:00Z, crm history)"),
        # History of other leads, of other statuses, or after as_of does not date it.
        ("Closed - Converted", HISTORY, "sql", ("sql_at", None), "first seen with crm status Closed - Converted "
         "(date unknown)"),
        ("Working - Contacted", None, "sal", ("sal_at", None),
         "first seen with crm status Working - Contacted (date unknown)"),
        ("Working - Contacted", HISTORY.iloc[:0], "sal", ("sal_at", None),
         "first seen with crm status Working - Contacted (date unknown)"),
    ],
)
def test_first_sight_is_dated_by_crm_history_or_not_at_all(
    status: str, history: pd.DataFrame | None, stage: str, stamp: tuple[str, str | None], reason: str
) -> None:
    rules, inputs = load_rules(), RunInputs(as_of=NOW, status_history=history)
    frame = leads({"lead_id": "1", "score": "10", "status": status},
                  {"lead_id": "3", "score": "10", "status": "Closed - Converted"})
    out = LIFECYCLE.apply(frame, rules, inputs).iloc[0]
    assert (out["lifecycle_stage"], out["lifecycle_reason"]) == (stage, reason)
    column, value = stamp
    assert (None if pd.isna(out[column]) else out[column]) == value
    assert all(pd.isna(out[c]) for c in ("mql_at", "sal_at", "sql_at", "recycled_at") if c != column)
    assert not any(isinstance(v, str) and v == STAMP for v in out.tolist())  # never the run's time


def test_status_since_takes_the_latest_change_to_the_current_status() -> None:
    frame = leads({"lead_id": "1", "score": "0", "status": "Working - Contacted"},
                  {"lead_id": "2", "score": "0", "status": "Working - Contacted"},
                  {"lead_id": "3", "score": "0", "status": "Closed - Converted"})
    assert status_since(frame, HISTORY, NOW).tolist() == ["2026-10-02T09:30:00Z", pd.NA, pd.NA]
    later = datetime(2026, 12, 2, tzinfo=UTC)
    assert status_since(frame, HISTORY, later).tolist()[2] == "2026-12-01T00:00:00Z"


@pytest.mark.parametrize(
    ("updated_at", "activity", "stage"),
    [("2026-11-01T00:00:00Z", "2026-11-15T09:00:00Z", "mql"),  # engaged after the record last changed
     ("2026-11-16T00:00:00Z", "2026-11-15T09:00:00Z", "recycled"),  # maybe before the recycling: not fresh
     (None, "2026-11-15T09:00:00Z", "mql")],  # nothing known: recent engagement counts
)
def test_recycled_with_unknown_date_needs_engagement_after_the_last_change(
    updated_at: str | None, activity: str, stage: str
) -> None:
    frame = leads({"lead_id": "1", "score": "150", "lifecycle_stage": "recycled", "updated_at": updated_at,
                   "lifecycle_reason": "first seen with crm status Nurture (date unknown)"})
    assert advance(frame, [activity]).iloc[0]["lifecycle_stage"] == stage


def test_refusals_are_counted_and_nothing_else_changes() -> None:
    frame = leads({"lead_id": "1", "score": "10", "status": "Working - Contacted", "lifecycle_stage": "sql",
                   "sql_at": "2026-11-01T00:00:00Z"},
                  {"lead_id": "2", "score": "10", "lifecycle_stage": "sql", "sql_at": "2026-11-01T00:00:00Z"})
    out = advance(frame)
    assert out["lifecycle_stage"].tolist() == ["sql", "sql"]
    assert out["sql_at"].tolist() == ["2026-11-01T00:00:00Z"] * 2
    assert refused_count(out) == 1


def test_stage_uses_activities_and_as_of() -> None:
    rules = load_rules()
    activities = pd.DataFrame({"lead_key": ["file:1"], "activity_type": ["demo_request"],
                               "occurred_at": ["2026-11-19T10:00:00Z"], "detail": [None]})
    inputs = RunInputs(as_of=NOW, reference=replace(rules.reference, activities=activities))
    frame = leads({"lead_id": "1", "score": "150", "lifecycle_stage": "recycled",
                   "recycled_at": "2026-11-10T00:00:00Z"})
    out = LIFECYCLE.apply(frame, rules, inputs)
    assert out.iloc[0]["lifecycle_stage"] == "mql" and out.iloc[0]["mql_at"] == STAMP


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("version: '1'\ntransitions: {new: [new]}\n", "new"),
        ("version: '1'\ntransitions: {new: [opportunity]}\n", "transitions.new[0]"),
        ("version: '1'\ntransitions: {new: [mql]}\nrecycle_reasons: {Nurture: x}\n", "recycle_reasons"),
        ("transitions: {new: [mql]}\n", "version"),
    ],
)
def test_bad_policy_is_refused_with_its_yaml_path(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "lifecycle.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_lifecycle_policy(path)
    assert where in str(info.value) and "lifecycle.yaml" in str(info.value)


def test_run_config_names_model_and_policy(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(
        "version: '9'\nmql_threshold: 10\nfit_rules:\n  - {name: late, when: {column: owner_id, exists: true},"
        " points: 5}\n", encoding="utf-8")
    (tmp_path / "leadflow.yaml").write_text("scoring: {model: model.yaml}\n", encoding="utf-8")
    assert load_rules(tmp_path / "leadflow.yaml").scoring_model.version == "9"
    (tmp_path / "model.yaml").write_text(
        "version: '9'\nmql_threshold: 10\nfit_rules:\n  - {name: late, when: {column: lifecycle_stage, equals: mql},"
        " points: 5}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(tmp_path / "leadflow.yaml")
    assert "fit_rules[0].when" in str(info.value) and "lifecycle_stage" in str(info.value)
