"""The state store: run history, watermarks, quarantine, the lead audit trail, dead letters, routing and per-lead
state (SQLite or PostgreSQL), behind one class, `StateStore`, built from one mixin per table group. `store` holds
`StateStore` itself (open, upgrade, close, the writer leases accessor) and the audit trail's bulk writes
(`add_events`, `add_changes`); `runs` runs, watermarks and quarantine; `audit_trail` reading the audit trail back
(events, lead runs), trace look-ups, a lead's journey, `forget_lead` and pruning; `dead_letters` dead letters;
`routing` assignments and `RoutingSession`; `lead_state` lifecycle state, the enrichment cache and backfill chunks;
`engine` `StoreError`, `alembic_config`, URL/engine setup and `StoreBase` (the engine and write transactions the
mixins share); `values` value conversion and the upsert; `tables` the schema; `leases` the writer leases;
`mirror` the CRM mirror's rows, per-object state and snapshots (tables in `mirror_tables`); `bulk` whole-column
upserts (assignments, lifecycle state) and COPY; `kpi_tables` the KPI rollups' tables; `first_touches` the CRM first
touches (tables in `first_touch_tables`); `escalations` the escalation steps fired (table in `escalation_tables`);
`migrations` the Alembic revisions."""

from leadflow.store.first_touch_tables import lead_first_touches  # CRM first touches (migration 0018), in `metadata`
from leadflow.store.kpi_tables import kpi_lead_facts, kpi_rollups  # KPI rollups (migration 0012), in `metadata`
from leadflow.store.escalation_tables import escalation_steps  # escalation steps (migration 0017), in `metadata`
from leadflow.store.routing import RoutingSession
from leadflow.store.store import MIGRATIONS_DIR, StateStore, StoreError, alembic_config
from leadflow.store.tables import EVENT_COLUMNS, FINAL_STATUSES, RUN_STATUSES, VERSION_TABLE, metadata

__all__ = [
    "EVENT_COLUMNS",
    "FINAL_STATUSES",
    "MIGRATIONS_DIR",
    "RUN_STATUSES",
    "VERSION_TABLE",
    "RoutingSession",
    "StateStore",
    "StoreError",
    "alembic_config",
    "escalation_steps",
    "kpi_lead_facts",
    "lead_first_touches",
    "kpi_rollups",
    "metadata",
]
