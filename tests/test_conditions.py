"""The condition language: each operator and combinator on tiny frames, NA semantics, validation with YAML paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from leadflow.pipeline.conditions import Condition, describe, evaluate
from leadflow.pipeline.errors import ConfigError
from leadflow.pipeline.yamlio import load_yaml, parse_model


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seniority": pd.array(["vp", "director", None, "VP"], dtype="string"),
            "country_code": pd.array(["US", "CA", "NO", None], dtype="string"),
            "industry": pd.array(["Education", "Software", None, "Retail"], dtype="string"),
            "employees": pd.array([50, 100, 999, None], dtype="Int64"),
            "annual_revenue": pd.array([1e6, None, 2.5e7, 3e9], dtype="Float64"),
            "title": pd.array(["PhD Student", "CTO", None, "student advisor"], dtype="string"),
            "phone_e164": pd.array(["+15551234567", "", None, "+4712345678"], dtype="string"),
            "is_free_email": pd.array([True, False, None, False], dtype="boolean"),
        },
        index=[7, 3, 9, 1],
    )


def cond(data: object) -> Condition:
    return Condition.model_validate(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"column": "seniority", "equals": "vp"}, [True, False, False, False]),  # exact, case-sensitive
        ({"column": "country_code", "in": ["US", "CA"]}, [True, True, False, False]),
        ({"column": "country_code", "in": ["us"]}, [True, False, False, False]),  # codes are upper-cased
        ({"column": "country_code", "equals": "NO"}, [False, False, True, False]),
        ({"column": "industry", "not_in": ["Education"]}, [False, True, False, True]),  # NA is not "not Education"
        ({"column": "employees", "range": {"min": 100, "max": 999}}, [False, True, True, False]),
        ({"column": "employees", "range": {"min": 100}}, [False, True, True, False]),
        ({"column": "employees", "range": {"max": 100}}, [True, True, False, False]),
        ({"column": "employees", "equals": 50}, [True, False, False, False]),
        ({"column": "employees", "in": [50, 999]}, [True, False, True, False]),
        ({"column": "annual_revenue", "range": {"min": 1e6, "max": 2.5e7}}, [True, False, True, False]),
        ({"column": "title", "regex": "(?i)student"}, [True, False, False, True]),
        ({"column": "title", "regex": "^student"}, [False, False, False, True]),
        ({"column": "phone_e164", "exists": True}, [True, False, False, True]),  # blank text is missing
        ({"column": "phone_e164", "exists": False}, [False, True, True, False]),
        ({"column": "is_free_email", "equals": True}, [True, False, False, False]),
        ({"column": "is_free_email", "equals": False}, [False, True, False, True]),
        ({"column": "is_free_email", "in": [True, False]}, [True, True, False, True]),
    ],
)
def test_leaf_operators(frame: pd.DataFrame, data: dict, expected: list[bool]) -> None:
    result = evaluate(cond(data), frame)
    assert isinstance(result, np.ndarray) and result.dtype == bool
    assert result.tolist() == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"all": [{"column": "seniority", "equals": "vp"}, {"column": "country_code", "equals": "US"}]},
         [True, False, False, False]),
        ({"any": [{"column": "seniority", "equals": "director"}, {"column": "employees", "range": {"min": 999}}]},
         [False, True, True, False]),
        # `not` negates the evaluated bool: unknown industry (row 3) is "not Education".
        ({"not": {"column": "industry", "equals": "Education"}}, [False, True, True, True]),
        ({"not": {"all": [{"column": "seniority", "equals": "vp"}, {"not": {"column": "title", "exists": True}}]}},
         [True, True, True, True]),
        ({"all": []}, [True, True, True, True]),
        ({"any": []}, [False, False, False, False]),
        ({"any": [{"all": [{"column": "industry", "in": ["Retail"]}, {"column": "title", "regex": "advisor$"}]},
                  {"column": "employees", "equals": 50}]}, [True, False, False, True]),
    ],
)
def test_combinators(frame: pd.DataFrame, data: dict, expected: list[bool]) -> None:
    assert evaluate(cond(data), frame).tolist() == expected


def test_na_never_matches_a_positive_leaf() -> None:
    frame = pd.DataFrame({
        "industry": pd.array([None, None], dtype="string"),
        "employees": pd.array([None, None], dtype="Int64"),
        "is_free_email": pd.array([None, None], dtype="boolean"),
    })
    for data in (
        {"column": "industry", "equals": "Retail"},
        {"column": "industry", "not_in": ["Retail"]},
        {"column": "industry", "regex": ".*"},
        {"column": "employees", "range": {"min": 0}},
        {"column": "is_free_email", "equals": False},
        {"column": "industry", "exists": True},
    ):
        assert evaluate(cond(data), frame).tolist() == [False, False], data
    assert evaluate(cond({"not": {"column": "industry", "equals": "Retail"}}), frame).tolist() == [True, True]


def test_absent_column_is_unknown_and_empty_frame() -> None:
    frame = pd.DataFrame({"title": pd.array(["x"], dtype="string")})
    assert evaluate(cond({"column": "industry", "equals": "Retail"}), frame).tolist() == [False]
    assert evaluate(cond({"column": "industry", "exists": False}), frame).tolist() == [True]
    empty = pd.DataFrame({"title": pd.Series(dtype="string")})
    assert evaluate(cond({"column": "title", "regex": "a"}), empty).tolist() == []


def test_object_columns_work_too() -> None:
    frame = pd.DataFrame({"seniority": ["vp", None], "employees": [10, None]})
    assert evaluate(cond({"column": "seniority", "equals": "vp"}), frame).tolist() == [True, False]
    assert evaluate(cond({"column": "employees", "range": {"max": 10}}), frame).tolist() == [True, False]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"column": "seniority", "equals": "vp"}, "seniority is vp"),
        ({"column": "employees", "range": {"min": 100, "max": 999}}, "employees 100–999"),
        ({"column": "employees", "range": {"min": 100}}, "employees ≥ 100"),
        ({"column": "country_code", "in": ["US", "CA"]}, "country_code in US, CA"),
        ({"column": "industry", "not_in": ["Education"]}, "industry not in Education"),
        ({"column": "title", "regex": "(?i)student"}, "title matches (?i)student"),
        ({"column": "phone_e164", "exists": False}, "phone_e164 missing"),
        ({"column": "is_free_email", "equals": True}, "is_free_email is true"),
        ({"all": [{"column": "seniority", "equals": "vp"}, {"any": [{"column": "country_code", "equals": "US"},
                                                                   {"column": "country_code", "equals": "CA"}]}]},
         "seniority is vp and (country_code is US or country_code is CA)"),
        ({"not": {"column": "seniority", "equals": "vp"}}, "not (seniority is vp)"),
    ],
)
def test_describe(data: dict, text: str) -> None:
    assert describe(cond(data)) == text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"column": "senority", "equals": "vp"}, "did you mean seniority"),
        ({"column": "title", "regex": "(unclosed"}, "invalid regex"),
        ({"column": "employees", "range": {"min": 10, "max": 5}}, "min 10 is greater than max 5"),
        ({"column": "employees", "range": {}}, "range needs min, max or both"),
        ({"column": "title", "range": {"min": 1}}, "range needs a numeric column"),
        ({"column": "employees", "regex": "1"}, "regex needs a text column"),
        ({"column": "seniority", "equals": "vp", "in": ["c_level"]}, "exactly one operator"),
        ({"column": "seniority"}, "exactly one operator, found no operator"),
        ({"equals": "vp"}, "needs a column"),
        ({"all": [], "column": "title"}, "takes no column"),
        ({"column": "seniority", "equal": "vp"}, "did you mean equals"),
        ({"column": "country_code", "equals": False}, "quote the value"),
        ({"column": "country_code", "in": ["XX"]}, "not an ISO 3166-1 alpha-2"),
        ({"column": "is_free_email", "equals": "yes"}, "is boolean"),
        ({"column": "employees", "equals": "many"}, "is numeric"),
        ({"column": "postal_code", "equals": 12345}, "quote the value"),
        ({"column": "seniority", "in": []}, "at least one value"),
        ({"column": "seniority", "equals": None}, "needs a value"),
        ("seniority is vp", "a condition is a mapping"),
    ],
)
def test_invalid_conditions_are_refused(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        cond(data)


class _Wrapper(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Condition]


def test_yaml_errors_name_the_nested_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - {column: seniority, equals: vp}\n"
        "  - all:\n"
        "      - {column: country_code, in: [US]}\n"
        "      - {column: countrycode, equals: NO}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        parse_model(_Wrapper, load_yaml(path), path)
    assert info.value.yaml_path == "rules[1].all[1].column"
    assert "did you mean country_code" in str(info.value) and str(path) in str(info.value)


def test_yaml_no_is_norway_only_when_quoted(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text('rules:\n  - {column: country_code, in: [SE, "NO"]}\n  - {column: country_code, equals: NO}\n')
    with pytest.raises(ConfigError, match="quote") as info:
        parse_model(_Wrapper, load_yaml(path), path)
    assert info.value.yaml_path == "rules[1]"
    path.write_text('rules:\n  - {column: country_code, in: [SE, "NO"]}\n')
    assert parse_model(_Wrapper, load_yaml(path), path).rules[0].in_ == ["SE", "NO"]


def test_operator_property_and_aliases_round_trip() -> None:
    for data, op in (({"column": "title", "in": ["x"]}, "in"), ({"not": {"column": "title", "exists": True}}, "not"),
                     ({"any": [{"column": "title", "exists": True}]}, "any")):
        parsed = cond(data)
        assert parsed.operator == op
        assert cond(parsed.model_dump(by_alias=True, exclude_none=True)) == parsed
