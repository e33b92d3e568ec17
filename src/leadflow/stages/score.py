"""Score stage: fit and engagement points from the versioned scoring model (`leadflow.scoring.model`), evaluated as of the
run's time, so a backfill scores "as of" its window end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pandas as pd

from leadflow.pipeline.schema import INPUT_COLUMNS
from leadflow.scoring.model import SCORE_COLUMNS, score_leads
from leadflow.pipeline.stage import Stage
from leadflow.stages.comply import COMPLY
from leadflow.stages.enrich import ENRICH
from leadflow.stages.standardize import STANDARDIZE

if TYPE_CHECKING:
    from leadflow.pipeline.config import Rules
    from leadflow.pipeline.run_inputs import RunInputs

READS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys([*INPUT_COLUMNS, *STANDARDIZE.writes, *ENRICH.writes, *COMPLY.writes])
)
"""Every column the stages before it produce: a model's rules may test any of them. `leadflow.pipeline.config` checks a
model against the same set, stated there as `SCORING_INPUTS` (it may not import the stages, which import it)."""


def score(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """fit_score, engagement_score, score, grade, rating, score_reasons and score_model_version."""
    return score_leads(frame, inputs.reference_for(rules).activities, rules.scoring_model, as_of=inputs.now())


SCORE = Stage(
    name="score",
    reads=READS,
    writes=SCORE_COLUMNS,
    fn=score,
    description="Fit rules and time-decayed engagement from the versioned scoring model.",
    gate="leads_scored",
)
