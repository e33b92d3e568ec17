"""Assign stage: routing rules, territories, account owners and weighted round robin (`leadflow.routing`).

The round-robin state is the one piece of routing that outlives a run. The stage function stays pure: it takes the
state from `RunInputs.routing_state` and hands the new state back in the output's `attrs["routing_state"]`; the task
reads and saves it under the state store's routing lock, so two runs at once never give out the same slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import pandas as pd

from leadflow.pipeline.errors import ConfigError
from leadflow.scoring.lifecycle import LIFECYCLE_COLUMNS
from leadflow.routing import ROUTING_COLUMNS, RoutingState, route_leads
from leadflow.scoring.model import SCORE_COLUMNS
from leadflow.pipeline.stage import Stage
from leadflow.stages.score import READS as BEFORE_SCORING

if TYPE_CHECKING:
    from leadflow.pipeline.config import Rules
    from leadflow.pipeline.run_inputs import RunInputs

STATE_ATTR: Final[str] = "routing_state"
READS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys([*BEFORE_SCORING, *SCORE_COLUMNS, *LIFECYCLE_COLUMNS, *ROUTING_COLUMNS])
)
"""Everything before it (rules may test any column) and its own earlier output (assigned leads stay assigned)."""


def assign(frame: pd.DataFrame, rules: Rules, inputs: RunInputs) -> pd.DataFrame:
    """owner_id, routing_rule, routing_reason, assigned_at and sla_due_at for every lead; the new round-robin state
    in `attrs["routing_state"]`. Only leads that are leadflow's to route are routed (`rules.ownership` with the
    run's owner directory, see `leadflow.routing.ownership`); the others keep their owner with a `kept: …` reason."""
    if rules.routing is None:
        raise ConfigError(rules.source, "the pipeline assigns leads but no routing rules are configured",
                          yaml_path="routing")
    state = inputs.routing_state or RoutingState()
    out, new_state = route_leads(frame, inputs.routing_for(rules), state, as_of=inputs.now(),
                                 ownership=inputs.ownership_for(rules))
    out.attrs[STATE_ATTR] = new_state
    return out


ASSIGN = Stage(
    name="assign",
    reads=READS,
    writes=ROUTING_COLUMNS,
    fn=assign,
    description="Routing rules for leads that are leadflow's (no owner, a queue, inactive or default owner): a user, "
    "the account owner, a territory's pool (weighted round robin), a queue or a hold; others keep their owner.",
    gate="leads_assigned",
)
