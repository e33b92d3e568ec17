"""Constants and environment settings, in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR: Final[Path] = Path(__file__).resolve().parents[1]
REFERENCE_DIR: Final[Path] = PACKAGE_DIR / "reference"
SAMPLE_LEADS: Final[Path] = PACKAGE_DIR / "data" / "sample_leads.csv"
DEMO_CONFIG: Final[Path] = PACKAGE_DIR / "data" / "demo.yaml"
"""The offline demo's run config: the sample leads against bundled accounts and existing CRM records."""
DEFAULT_CONSENT_POLICY: Final[Path] = REFERENCE_DIR / "consent_policy.yaml"

DEFAULT_PIPELINE: Final[tuple[str, ...]] = ("standardize", "enrich", "comply", "score", "lifecycle")
DEFAULT_MAX_QUARANTINE_SHARE: Final[float] = 0.2
INPUT_STAGE: Final[str] = "input"
AUDIT_CHUNK_ROWS: Final[int] = 50_000
"""Leads per stored chunk of a stage's before/after values (`leadflow.audit.changes`): what a trace decodes."""
"""Stage name under which rows refused while reading the input are quarantined."""

MAX_BACKFILL_DAYS: Final[int] = 366
"""The longest range one `lead_backfill` run accepts; split longer ranges into several backfills."""

PARALLEL_MIN_UNIQUES: Final[int] = 50_000
"""Below this many unique values a per-value library call runs in-process; above it, across CPU cores."""


class Settings(BaseSettings):
    """Where leadflow keeps state; read from `LEADFLOW_*` environment variables when asked, never at import."""

    model_config = SettingsConfigDict(env_prefix="LEADFLOW_", extra="ignore")

    home: Path = Field(default_factory=lambda: _project_home(),
                       description="Folder for embedded state (SQLite) and caches; default `<project>/.leadflow`.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under `home`.")
    expectations_dir: Path | None = Field(default=None, description="Folder of GX suites; default `expectations/`.")
    workers: int = Field(default=0, description="Processes for per-value library calls; 0 = one per CPU core.")

    def state_url(self) -> str:
        """The state store URL: `LEADFLOW_DATABASE_URL`, else SQLite at `<home>/state.db`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'state.db').as_posix()}"

    def suites_dir(self) -> Path:
        """The expectations folder: the setting, else `./expectations`, else the one beside the source tree."""
        if self.expectations_dir is not None:
            return self.expectations_dir
        local = Path("expectations")
        if local.is_dir():
            return local
        project = self.home.parent / "expectations"  # the project's own suites, run from a sub-folder
        if project.is_dir():
            return project
        for candidate in (PACKAGE_DIR / "expectations", PACKAGE_DIR.parents[1] / "expectations"):
            if candidate.is_dir():
                return candidate
        return local

def _project_home() -> Path:
    from leadflow.pipeline.project import project_home

    return project_home()


WRITER_WAIT_SECONDS = 15 * 60.0
"""How long a run waits for another run's writer lease before giving up (`concurrency.writer_wait_seconds`)."""
WRITER_LEASE_SECONDS = 120.0
"""A writer lease not renewed for this long is expired and may be taken over (`concurrency.lease_seconds`)."""
