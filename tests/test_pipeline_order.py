"""The stage contract and the order check: a wrong order is refused, declarations drive the process map."""

from __future__ import annotations

import pandas as pd
import pytest

from leadflow.pipeline.config import ConsentPolicy, Rules
from leadflow.pipeline.errors import ConfigError, PipelineOrderError, StageContractError
from leadflow.pipeline.stage import Stage, build_pipeline, process_map
from leadflow.stages import COMPLY, STAGES, STANDARDIZE, pipeline_from_names

RULES = Rules(consent=ConsentPolicy(opt_in_countries=["DE"]))


def test_default_order_builds() -> None:
    assert pipeline_from_names(["standardize", "comply"]).names == ["standardize", "comply"]


def test_consent_before_country_cleaning_is_refused() -> None:
    with pytest.raises(PipelineOrderError, match=r"'comply' reads '(country_code|email_valid|email_domain)'.*later stage 'standardize'"):
        build_pipeline([COMPLY, STANDARDIZE])


def test_wrong_order_in_config_names_the_yaml_path() -> None:
    with pytest.raises(ConfigError) as info:
        pipeline_from_names(["comply", "standardize"], origin="leadflow.yaml")
    assert info.value.yaml_path == "pipeline"
    assert "standardize" in str(info.value)


def test_unknown_stage_in_config_names_the_yaml_path() -> None:
    with pytest.raises(ConfigError) as info:
        pipeline_from_names(["standardize", "scoring"], origin="leadflow.yaml")
    assert info.value.yaml_path == "pipeline[1]"


def test_column_nobody_writes_is_refused() -> None:
    orphan = Stage("orphan", reads=("lead_score",), writes=("status",), fn=lambda f, r, i: f)
    with pytest.raises(PipelineOrderError, match="neither an input column nor written"):
        build_pipeline([orphan])


def test_duplicate_stage_is_refused() -> None:
    with pytest.raises(PipelineOrderError, match="twice"):
        build_pipeline([STANDARDIZE, STANDARDIZE])


def test_every_registered_stage_is_gated_by_a_suite_file() -> None:
    from leadflow.pipeline.settings import Settings

    for stage in STAGES.values():
        assert (Settings().suites_dir() / f"{stage.suite}.json").is_file(), stage.suite


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (lambda f, r, i: pd.DataFrame({"other": f["email"]}), "declared writes"),
        (lambda f, r, i: pd.DataFrame({"email": f["email"]}).iloc[:1], "different index"),
        (lambda f, r, i: pd.DataFrame({"email": f["status"]}), None),  # not declared → not handed over
    ],
)
def test_stage_cannot_break_its_contract(fn, message) -> None:  # type: ignore[no-untyped-def]
    stage = Stage("lower", reads=("email",), writes=("email",), fn=fn)
    frame = pd.DataFrame({"email": ["A@x.com", "b@y.org"], "status": ["new", "new"]}, dtype="string")
    if message is None:
        with pytest.raises(KeyError):
            stage.apply(frame, RULES)
    else:
        with pytest.raises(StageContractError, match=message):
            stage.apply(frame, RULES)


def test_apply_replaces_only_written_columns() -> None:
    stage = Stage("lower", reads=("email",), writes=("email",), fn=lambda f, r, i: f.assign(email=f["email"].str.lower()))
    frame = pd.DataFrame({"email": ["A@x.com", "b@y.org"], "status": ["New", "new"]}, dtype="string")
    out = stage.apply(frame, RULES)
    assert out["email"].tolist() == ["a@x.com", "b@y.org"]
    assert out["status"].tolist() == ["New", "new"]
    assert frame["email"].tolist() == ["A@x.com", "b@y.org"]  # input untouched


def test_process_map_is_generated_from_declarations() -> None:
    text = process_map(pipeline_from_names(["standardize", "comply"]))
    assert text.startswith("flowchart TD")
    assert text.index("st_standardize") < text.index("st_comply")
    assert "GX gate: leads_standardize" in text and "GX gate: leads_comply" in text
    for column in COMPLY.reads + COMPLY.writes:
        assert column in text
    assert "-. failing rows .-> quarantine" in text
