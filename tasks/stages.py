"""Transform tasks: pure stage functions, no retries (a transform that failed once fails again)."""

from __future__ import annotations

import pandas as pd
from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from leadflow.config import Rules
from leadflow.stages import COMPLY, STANDARDIZE


@task(cache_policy=NO_CACHE)
def standardize_leads(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Countries, states, phones, emails, titles and timestamps to canonical form."""
    return STANDARDIZE.apply(frame, rules)


@task(cache_policy=NO_CACHE)
def comply_leads(frame: pd.DataFrame, rules: Rules) -> pd.DataFrame:
    """Consent and suppression decide `mailable`."""
    return COMPLY.apply(frame, rules)


STAGE_TASKS: dict[str, Task] = {"standardize": standardize_leads, "comply": comply_leads}
