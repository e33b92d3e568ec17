"""What one run (or one page of it) knows besides its config: the per-run inputs the flows build and hand to stages.

`leadflow.pipeline.config.Rules` is what the YAML gives (and the files it names, loaded at load time); `RunInputs` is
what a run learns as it goes: the time it evaluates at, the reference data pulled from the CRM and MAP (accounts,
existing records, activities) and the provider's answers, the CRM's owner directory, the status history of leads
seen the first time, and the round-robin state read under the routing lock. Stages read per-run data only from here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from leadflow.identity.enrichment import Reference
from leadflow.routing import RoutingConfig, RoutingState, with_availability
from leadflow.routing.ownership import OwnerDirectory, Ownership

if TYPE_CHECKING:
    from leadflow.identity.earlier_leads import EarlierLeads
    from leadflow.pipeline.config import Rules


@dataclass(frozen=True)
class RunInputs:
    """The per-run data: immutable, one per run (or per page, for what a page pulls itself)."""

    as_of: datetime | None = None
    """The time scores and lifecycle moves are evaluated at: the run's start, or a backfill's window end. None: now."""
    reference: Reference | None = None
    """The reference data this run works against: the config's files with the CRM's accounts and records, the MAP's
    activities and the provider's answers of this batch added. None: the config's files only."""
    owners: OwnerDirectory | None = None
    """The CRM's active and inactive users, queues and integration users. None: not pulled (the config's policy)."""
    status_history: pd.DataFrame | None = None
    """This page's CRM status changes (lead_key, status, changed_at ISO UTC), for leads seen the first time: the
    lifecycle stamps their stage from it. None: no history (stamps of a first sight stay empty)."""
    routing_state: RoutingState | None = None
    """The round-robin state this run starts from (read under the state store's routing lock). None: a fresh one."""
    earlier_leads: EarlierLeads | None = None
    """For a file read in chunks: the earlier chunks' addresses (`leadflow.identity.earlier_leads.EarlierLeads`),
    so a repeat of a lead from an earlier chunk is still a within-batch duplicate. None: the batch is all there is."""

    def now(self) -> datetime:
        """`as_of`, or the current time when the run gave none."""
        return self.as_of or datetime.now(UTC)

    def reference_for(self, rules: Rules) -> Reference:
        """This run's reference data, or the config's when the run pulled none."""
        return rules.reference if self.reference is None else self.reference

    def ownership_for(self, rules: Rules) -> Ownership:
        """The config's ownership policy with the CRM's owner directory of this run."""
        return rules.ownership if self.owners is None else rules.ownership.with_directory(self.owners)

    def routing_for(self, rules: Rules) -> RoutingConfig | None:
        """The config's routing, with the CRM's inactive users unavailable (even if the config still lists them)."""
        if rules.routing is None or self.owners is None or not self.owners.inactive:
            return rules.routing
        return with_availability(rules.routing, inactive=set(self.owners.inactive), origin=rules.source)

    def with_reference(self, reference: Reference) -> RunInputs:
        return replace(self, reference=reference)


NO_INPUTS = RunInputs()
"""A run that pulled nothing: stages evaluate at the current time against the config's reference data."""
