"""The stages leadflow knows, by name; a run config lists which run and in what order."""

from __future__ import annotations

from collections.abc import Sequence

from leadflow.pipeline.errors import ConfigError, PipelineOrderError
from leadflow.pipeline.stage import Pipeline, Stage, build_pipeline
from leadflow.stages.assign import ASSIGN
from leadflow.stages.comply import COMPLY
from leadflow.stages.enrich import ENRICH
from leadflow.stages.lifecycle import LIFECYCLE
from leadflow.stages.score import SCORE
from leadflow.stages.standardize import STANDARDIZE

STAGES: dict[str, Stage] = {stage.name: stage for stage in (STANDARDIZE, ENRICH, COMPLY, SCORE, LIFECYCLE, ASSIGN)}


def pipeline_from_names(names: Sequence[str], origin: str | None = None) -> Pipeline:
    """Build the pipeline named in a run config (`origin`); unknown names and wrong orders are refused."""
    for i, name in enumerate(names):
        if name not in STAGES:
            message = f"unknown stage {name!r}; known stages: {sorted(STAGES)}"
            if origin:
                raise ConfigError(origin, message, yaml_path=f"pipeline[{i}]")
            raise PipelineOrderError(message)
    try:
        return build_pipeline([STAGES[n] for n in names])
    except PipelineOrderError as exc:
        if origin:
            raise ConfigError(origin, str(exc), yaml_path="pipeline") from None
        raise


__all__ = ["STAGES", "ASSIGN", "COMPLY", "ENRICH", "LIFECYCLE", "SCORE", "STANDARDIZE", "pipeline_from_names"]
