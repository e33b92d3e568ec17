"""Lead scoring: fit rules, decaying engagement (half-life, cap, detail regex, as_of and lookback windows), grades
and ratings, reasons, the model's validation (errors name the YAML path), and edge cases (no activities, NA)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from leadflow.pipeline.errors import ConfigError
from leadflow.pipeline.schema import lead_keys
from leadflow.scoring.model import (
    ACTIVITY_COLUMNS,
    DEFAULT_SCORING_MODEL,
    SCORE_COLUMNS,
    ScoringModel,
    conform_activities,
    load_scoring_model,
    score_leads,
)
from leadflow.synth import DEFAULT_START, messy_activities, scoring_history, scoring_leads

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def model(**overrides: Any) -> ScoringModel:
    data: dict[str, Any] = {
        "version": "test-1",
        "mql_threshold": 50,
        "fit_rules": [
            {"name": "vp", "when": {"column": "seniority", "in": ["vp", "c_level"]}, "points": 25,
             "reason": "VP or above"},
            {"name": "enterprise", "when": {"column": "employees", "range": {"min": 1000}}, "points": 20},
            {"name": "free_mail", "when": {"column": "is_free_email", "equals": True}, "points": -30,
             "reason": "Free-mail address"},
        ],
        "engagement_rules": [
            {"name": "demo", "activity_type": "demo_request", "points": 20, "reason": "Demo request"},
            {"name": "pricing", "activity_type": "page_visit", "detail_regex": "(?i)/pricing", "points": 10,
             "cap": 15, "half_life_days": 10},
            {"name": "open", "activity_type": "email_open", "points": 2},
        ],
        "half_life_days": 30,
        "lookback_days": 90,
    }
    data.update(overrides)
    return ScoringModel.model_validate(data)


def leads_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": pd.array(["1", "2", "3", None], dtype="string"),
            "source": pd.array(["salesforce"] * 4, dtype="string"),
            "email": pd.array(["a@acme.com", "b@gmail.com", None, "D@Example.com"], dtype="string"),
            "seniority": pd.array(["vp", "individual", None, "c_level"], dtype="string"),
            "employees": pd.array([5000, 20, None, 1000], dtype="Int64"),
            "is_free_email": pd.array([False, True, None, False], dtype="boolean"),
        },
        index=pd.Index([40, 10, 30, 20], name="row"),
    )


def acts(*rows: tuple[str, str, Any, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS))


def days_ago(d: float) -> datetime:
    return AS_OF - timedelta(days=d)


def test_shape_dtypes_index_and_version() -> None:
    leads = leads_frame()
    out = score_leads(leads, acts(), model(), as_of=AS_OF)
    assert list(out.columns) == list(SCORE_COLUMNS)
    assert out.index.equals(leads.index)
    assert [str(out[c].dtype) for c in SCORE_COLUMNS] == ["Float64"] * 3 + ["string"] * 4
    assert (out["score_model_version"] == "test-1").all()


def test_fit_points_including_negative_rules_and_na() -> None:
    out = score_leads(leads_frame(), acts(), model(), as_of=AS_OF)
    assert out["fit_score"].tolist() == [45.0, -30.0, 0.0, 45.0]
    assert out["engagement_score"].tolist() == [0.0] * 4
    assert out["score"].tolist() == [45.0, -30.0, 0.0, 45.0]


def test_engagement_decays_with_half_life_exactly() -> None:
    activities = acts(
        ("salesforce:1", "demo_request", days_ago(0), None),  # 20
        ("salesforce:1", "demo_request", days_ago(30), None),  # one half-life: 10
        ("salesforce:1", "email_open", days_ago(60), "Newsletter"),  # two half-lives: 0.5
        ("salesforce:2", "page_visit", days_ago(10), "/Pricing"),  # rule half-life 10 days: 5
        ("email:d@example.com", "email_open", days_ago(15), None),  # 2 × 0.5^0.5
    )
    out = score_leads(leads_frame(), activities, model(), as_of=AS_OF)
    engagement = out["engagement_score"].tolist()
    assert engagement[0] == pytest.approx(30.5)
    assert engagement[1] == pytest.approx(5.0)
    assert engagement[2] == 0.0
    assert engagement[3] == pytest.approx(2 * 0.5**0.5)
    assert out["score"].tolist()[0] == pytest.approx(45 + 30.5)


def test_weights_apply_to_the_score() -> None:
    activities = acts(("salesforce:1", "demo_request", AS_OF, None))
    out = score_leads(leads_frame(), activities, model(weights={"fit": 0.5, "engagement": 2}), as_of=AS_OF)
    assert out["score"].iloc[0] == pytest.approx(45 * 0.5 + 20 * 2)


def test_cap_and_detail_regex() -> None:
    activities = acts(*[("salesforce:1", "page_visit", AS_OF, "/pricing")] * 4,
                      ("salesforce:1", "page_visit", AS_OF, "/blog"),
                      ("salesforce:1", "page_visit", AS_OF, None))
    out = score_leads(leads_frame(), activities, model(), as_of=AS_OF)
    assert out["engagement_score"].iloc[0] == 15.0  # 4 × 10 capped at 15; /blog and no detail match nothing
    assert "+15 Page visit matching (?i)/pricing (4)" in out["score_reasons"].iloc[0]


def test_negative_engagement_cap_limits_magnitude() -> None:
    m = model(engagement_rules=[{"name": "unsub", "activity_type": "email_unsubscribe", "points": -20, "cap": 25}])
    activities = acts(*[("salesforce:1", "email_unsubscribe", AS_OF, None)] * 3)
    assert score_leads(leads_frame(), activities, m, as_of=AS_OF)["engagement_score"].iloc[0] == -25.0


def test_as_of_excludes_future_and_lookback_excludes_old() -> None:
    activities = acts(
        ("salesforce:1", "demo_request", AS_OF + timedelta(seconds=1), None),  # after as_of
        ("salesforce:1", "demo_request", days_ago(90), None),  # exactly at the lookback edge: counts
        ("salesforce:1", "demo_request", days_ago(90.001), None),  # older: ignored
    )
    out = score_leads(leads_frame(), activities, model(), as_of=AS_OF)
    assert out["engagement_score"].iloc[0] == pytest.approx(20 * 0.5**3)
    later = score_leads(leads_frame(), activities, model(), as_of=AS_OF + timedelta(seconds=1))
    # The "future" activity counts once as_of reaches it, and the edge one has now left the lookback.
    assert later["engagement_score"].iloc[0] == pytest.approx(20.0)


def test_iso_text_and_naive_times_are_accepted() -> None:
    activities = acts(("salesforce:1", "demo_request", "2026-10-02T00:00:00Z", None),
                      ("salesforce:1", "demo_request", "2026-11-01T01:00:00+01:00", None),
                      ("salesforce:1", "demo_request", "not a date", None))
    out = score_leads(leads_frame(), activities, model(), as_of=datetime(2026, 11, 1))  # naive: UTC
    assert out["engagement_score"].iloc[0] == pytest.approx(20 * 0.5 + 20)
    conformed = conform_activities(activities)
    assert str(conformed["occurred_at"].dtype).startswith("datetime64") and conformed["occurred_at"].isna().sum() == 1


def test_no_activities_in_every_shape() -> None:
    leads = leads_frame()
    for activities in (pd.DataFrame(), acts(), acts(("salesforce:999", "demo_request", AS_OF, None))):
        out = score_leads(leads, activities, model(), as_of=AS_OF)
        assert out["engagement_score"].tolist() == [0.0] * 4
        assert out["rating"].str[1].tolist() == ["4"] * 4
    with pytest.raises(ValueError, match="occurred_at"):
        score_leads(leads, pd.DataFrame({"lead_key": ["x"], "activity_type": ["page_visit"]}), model(), as_of=AS_OF)


def test_empty_leads_and_all_na_leads() -> None:
    empty = leads_frame().iloc[:0]
    out = score_leads(empty, acts(("salesforce:1", "demo_request", AS_OF, None)), model(), as_of=AS_OF)
    assert len(out) == 0 and list(out.columns) == list(SCORE_COLUMNS)
    blank = pd.DataFrame(index=[5, 6])
    out = score_leads(blank, acts(("email:x", "demo_request", AS_OF, None)), model(), as_of=AS_OF)
    assert out["fit_score"].tolist() == [0.0, 0.0] and out["grade"].tolist() == ["D", "D"]
    assert out["score_reasons"].isna().all()


@pytest.mark.parametrize(
    ("fit", "engagement", "rating"),
    [(60, 60, "A1"), (59, 59.99, "B2"), (40, 40, "B2"), (39, 39.9, "C3"), (20, 20, "C3"), (19, 19.99, "D4"),
     (-5, 0, "D4"), (100, 25, "A3"), (0, 100, "D1")],
)
def test_grade_and_rating_boundaries(fit: int, engagement: float, rating: str) -> None:
    m = model(
        fit_rules=[{"name": "f", "when": {"column": "seniority", "equals": "vp"}, "points": fit}],
        engagement_rules=[{"name": "e", "activity_type": "demo_request", "points": engagement}],
    )
    leads = pd.DataFrame({"lead_id": ["1"], "source": ["s"], "seniority": ["vp"]})
    out = score_leads(leads, acts(("s:1", "demo_request", AS_OF, None)), m, as_of=AS_OF)
    assert out["fit_score"].iloc[0] == fit and out["engagement_score"].iloc[0] == pytest.approx(engagement)
    assert out["grade"].iloc[0] == rating[0]
    assert out["rating"].iloc[0] == rating


def test_reasons_top_contributions_by_absolute_points() -> None:
    activities = acts(("salesforce:1", "demo_request", AS_OF, None), ("salesforce:1", "demo_request", AS_OF, None),
                      ("salesforce:2", "email_open", AS_OF, None))
    out = score_leads(leads_frame(), activities, model(), as_of=AS_OF)
    reasons = out["score_reasons"].tolist()
    assert reasons[0] == "+40 Demo request (2); +25 VP or above; +20 employees ≥ 1000"
    assert reasons[1] == "-30 Free-mail address; +2 Email open"
    assert pd.isna(reasons[2])
    one = score_leads(leads_frame(), activities, model(top_reasons=1), as_of=AS_OF)["score_reasons"]
    assert one.tolist()[:2] == ["+40 Demo request (2)", "-30 Free-mail address"]
    assert score_leads(leads_frame(), activities, model(top_reasons=0), as_of=AS_OF)["score_reasons"].isna().all()


def test_reasons_leave_out_contributions_under_half_a_point() -> None:
    activities = acts(("salesforce:3", "email_open", days_ago(89), None))  # 2 × 0.5^(89/30) ≈ 0.26
    out = score_leads(leads_frame(), activities, model(), as_of=AS_OF)
    assert 0 < out["engagement_score"].iloc[2] < 0.5 and pd.isna(out["score_reasons"].iloc[2])


def test_leads_keyed_by_lead_keys_with_duplicates() -> None:
    leads = pd.concat([leads_frame(), leads_frame().iloc[:1]])
    leads.index = range(5)
    out = score_leads(leads, acts(("salesforce:1", "demo_request", AS_OF, None)), model(), as_of=AS_OF)
    assert out["engagement_score"].tolist() == [20.0, 0.0, 0.0, 0.0, 20.0]
    assert lead_keys(leads).iloc[3] == "email:d@example.com"


# ------------------------------------------------------------------------------------------------ the model as YAML


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def base_yaml() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_SCORING_MODEL.read_text(encoding="utf-8"))


def test_default_model_loads() -> None:
    m = load_scoring_model()
    assert m.version == "2026.11-1" and m.top_reasons == 3
    assert m.grades == {"A": 60, "B": 40, "C": 20} and m.engagement_bands == {1: 60, 2: 40, 3: 20}
    names = {r.name for r in m.fit_rules} | {r.name for r in m.engagement_rules}
    assert {"free_mail", "student", "competitor", "not_mailable", "demo_request", "pricing_page"} <= names
    norway = next(r for r in m.fit_rules if r.name == "target_country").when
    assert "NO" in (norway.in_ or [])


@pytest.mark.parametrize(
    ("mutate", "yaml_path", "message"),
    [
        (lambda d: d["fit_rules"][2].update(when={"column": "seniorty", "equals": "manager"}),
         "fit_rules[2].when.column", "did you mean seniority"),
        (lambda d: d["fit_rules"][11].update(when={"column": "title", "regex": "(?i)(student"}),
         "fit_rules[11].when.regex", "invalid regex"),
        (lambda d: d["engagement_rules"][1].update(detail_regex="[pricing"),
         "engagement_rules[1].detail_regex", "invalid regex"),
        (lambda d: d["engagement_rules"][1].update(name="demo_request"), "(document)", "used twice"),
        (lambda d: d["fit_rules"][1].update(name="senior_executive"), "(document)", "used twice"),
        (lambda d: d.update(grades={"A": 40, "B": 60, "C": 20}), "grades", "strictly descending"),
        (lambda d: d.update(grades={"A": 60, "B": 40}), "grades", "exactly the keys A, B, C"),
        (lambda d: d.update(engagement_bands={1: 10, 2: 40, 3: 60}), "engagement_bands", "strictly descending"),
        (lambda d: d.pop("version"), "version", "Field required"),
        (lambda d: d.update(version=""), "version", "at least 1 character"),
        (lambda d: d.update(version=2026.11), "version", "quote it"),
        (lambda d: d.pop("mql_threshold"), "mql_threshold", "Field required"),
        (lambda d: d["engagement_rules"][0].update(activity_type="demo_requests"),
         "engagement_rules[0].activity_type", "did you mean demo_request"),
        (lambda d: d["engagement_rules"][0].update(cap=0), "engagement_rules[0].cap", "greater than 0"),
        (lambda d: d.update(half_life_days=0), "half_life_days", "greater than 0"),
        (lambda d: d["fit_rules"][0].update(points=2.5), "fit_rules[0].points", "integer"),
        (lambda d: d["fit_rules"][0].update(colour="red"), "fit_rules[0].colour", "Extra inputs"),
        (lambda d: d["fit_rules"][0]["when"].update(range={"min": 1}), "fit_rules[0].when", "exactly one operator"),
        (lambda d: d["fit_rules"][6].update(when={"column": "country_code", "in": ["SE", False]}),
         "fit_rules[6].when", "quote the value"),
    ],
)
def test_malformed_model_refused_with_yaml_path(tmp_path: Path, mutate: Any, yaml_path: str, message: str) -> None:
    data = base_yaml()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as info:
        load_scoring_model(path)
    assert info.value.yaml_path == yaml_path
    assert str(path) in str(info.value)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_scoring_model(tmp_path / "nope.yaml")


def test_is_mql() -> None:
    m = model()
    assert m.is_mql(pd.Series([49.9, 50.0, 80.0])).tolist() == [False, True, True]


# ------------------------------------------------------------------------------------------------------ synthetic


def test_messy_activities_shape_and_determinism() -> None:
    leads = scoring_leads(500, seed=3)
    a = messy_activities(leads, 5000, seed=3)
    b = messy_activities(leads, 5000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(ACTIVITY_COLUMNS) and len(a) == 5000
    assert str(a["occurred_at"].dtype) == "datetime64[ns, UTC]" and (a["occurred_at"] <= DEFAULT_START).all()
    assert a["lead_key"].isin(lead_keys(leads)).all()
    per_lead = a["lead_key"].value_counts()
    assert per_lead.max() > 5 * per_lead.median()  # skewed
    assert a["detail"].isna().mean() < 0.15
    assert messy_activities(leads, 0).columns.tolist() == list(ACTIVITY_COLUMNS)


def test_scoring_history_outcome_rises_with_score() -> None:
    leads, activities = scoring_history(4000, seed=5)
    assert {"outcome", "created_at", "seniority", "segment", "is_free_email"} <= set(leads.columns)
    assert set(leads["outcome"].unique()) == {0, 1}
    scores = score_leads(leads, activities, load_scoring_model(), as_of=DEFAULT_START)
    high = scores["score"] >= scores["score"].median()
    assert leads["outcome"][high].mean() > 2 * leads["outcome"][~high].mean()
