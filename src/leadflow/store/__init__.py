"""The state store: run history, watermarks, quarantine and the lead audit trail (SQLite or PostgreSQL)."""

from leadflow.store.store import MIGRATIONS_DIR, StateStore, StoreError, alembic_config
from leadflow.store.tables import EVENT_COLUMNS, FINAL_STATUSES, RUN_STATUSES, VERSION_TABLE, metadata

__all__ = [
    "EVENT_COLUMNS",
    "FINAL_STATUSES",
    "MIGRATIONS_DIR",
    "RUN_STATUSES",
    "VERSION_TABLE",
    "StateStore",
    "StoreError",
    "alembic_config",
    "metadata",
]
