"""Transform tasks: pure stage functions, no retries (a transform that failed once fails again)."""

from __future__ import annotations

import pandas as pd
from prefect import Task
from prefect.cache_policies import NO_CACHE

from leadflow.pipeline.config import Rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.stages import COMPLY, ENRICH, LIFECYCLE, SCORE, STANDARDIZE
from leadflow.stages.enrich import domains_to_look_up
from tasks.enrichment import look_up_firmographics, with_provider_answers
from tasks.runner import task


@task(cache_policy=NO_CACHE)
def standardize_leads(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """Countries, states, phones, emails, titles and timestamps to canonical form."""
    return STANDARDIZE.apply(frame, rules, inputs)


@task(cache_policy=NO_CACHE)
def enrich_leads(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """Account, duplicates, firmographics and address flags; the provider is asked first, in its own I/O task."""
    answers = look_up_firmographics(domains_to_look_up(frame, rules, inputs), rules)
    return ENRICH.apply(frame, rules, with_provider_answers(inputs, rules, answers))


@task(cache_policy=NO_CACHE)
def comply_leads(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """Consent and suppression decide `mailable`."""
    return COMPLY.apply(frame, rules, inputs)


@task(cache_policy=NO_CACHE)
def score_leads(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """Fit and engagement points from the versioned scoring model, as of the run's time."""
    return SCORE.apply(frame, rules, inputs)


@task(cache_policy=NO_CACHE)
def advance_lifecycle(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """MQL on score, SAL/SQL/recycled on CRM status; refused moves reported in lifecycle_reason."""
    return LIFECYCLE.apply(frame, rules, inputs)


STAGE_TASKS: dict[str, Task] = {
    "standardize": standardize_leads,
    "enrich": enrich_leads,
    "comply": comply_leads,
    "score": score_leads,
    "lifecycle": advance_lifecycle,
}
"""Stage → task (the assign task needs the run id too: see flows.stages.STATEFUL_TASKS)."""
