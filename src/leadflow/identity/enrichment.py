"""The `enrichment:` section of a run config and the reference data the enrich stage works against.

Reference data is what leadflow knows besides the leads: CRM accounts (for matching and firmographics), existing CRM
leads and contacts (for duplicate detection), a firmographics reference file, and the provider answers fetched for
this run. In file mode it comes from files named in the config; a CRM sync pulls accounts, contacts and leads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow.connectors.enrichment import ProviderConnection
from leadflow.identity.duplicates import DuplicateConfig
from leadflow.pipeline.errors import ConfigError
from leadflow.identity.matching import MatchConfig
from leadflow.pipeline.schema import FIRMOGRAPHIC_COLUMNS, parse_number

Firmographic = Literal["employees", "annual_revenue", "industry"]

ACCOUNT_COLUMNS: Final[tuple[str, ...]] = (
    "account_id", "name", "website", "owner_id", "employees", "annual_revenue", "industry", "last_activity_at",
    "country_code",
)
EXISTING_COLUMNS: Final[tuple[str, ...]] = ("record_id", "object", "email", "first_name", "last_name", "company")
FIRMOGRAPHICS_FILE_COLUMNS: Final[tuple[str, ...]] = ("domain", *FIRMOGRAPHIC_COLUMNS)
PROVIDER_COLUMNS: Final[tuple[str, ...]] = (
    "domain", "status", "employees", "annual_revenue", "industry", "reason", "from_cache",
)
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "accounts": ("account_id",),
    "existing_records": ("record_id",),
    "firmographics_file": ("domain",),
}


class SegmentBand(BaseModel):
    """A segment and its upper bounds; a company falls in the first band whose bounds it is within."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    max_employees: int | None = Field(default=None, ge=0)
    max_annual_revenue: float | None = Field(default=None, ge=0)


def _default_segments() -> list[SegmentBand]:
    return [
        SegmentBand(name="smb", max_employees=99, max_annual_revenue=10_000_000),
        SegmentBand(name="mid_market", max_employees=999, max_annual_revenue=250_000_000),
        SegmentBand(name="enterprise"),
    ]


class EnrichmentConfig(BaseModel):
    """How leads are enriched: reference files, provider, matching, duplicates, segments (`enrichment:`)."""

    model_config = ConfigDict(extra="forbid")

    accounts: Path | None = Field(default=None, description="CSV/Parquet of CRM accounts (file mode).")
    existing_records: Path | None = Field(
        default=None, description="CSV/Parquet of existing CRM leads and contacts for duplicate detection (file mode)."
    )
    firmographics_file: Path | None = Field(
        default=None, description="CSV/Parquet reference file: domain → employees, annual_revenue, industry."
    )
    provider: ProviderConnection | None = Field(default=None, description="HTTP enrichment provider, last resort.")
    matching: MatchConfig = Field(default_factory=MatchConfig)
    duplicates: DuplicateConfig = Field(default_factory=DuplicateConfig)
    segments: list[SegmentBand] = Field(default_factory=_default_segments, min_length=1)
    overwrite_crm_values: bool | list[Firmographic] = Field(
        default=False,
        description="Firmographics already in the CRM were possibly set by a person and are kept; true (or a list "
        "of columns) lets enrichment replace them.",
    )
    role_localparts: list[Path] = Field(default_factory=list, description="Extra role-address lists (one per line).")
    disposable_domains: list[Path] = Field(default_factory=list, description="Extra disposable-domain lists.")

    @field_validator("segments")
    @classmethod
    def _catch_all_last(cls, segments: list[SegmentBand]) -> list[SegmentBand]:
        last = segments[-1]
        if last.max_employees is not None or last.max_annual_revenue is not None:
            raise ValueError("the last segment must have no bounds (it catches every larger company)")
        names = [band.name for band in segments]
        if len(set(names)) != len(names):
            raise ValueError("segment names must be unique")
        return segments

    def overwrites(self, column: str) -> bool:
        """May enrichment replace a value the CRM already holds in `column`?"""
        if isinstance(self.overwrite_crm_values, bool):
            return self.overwrite_crm_values
        return column in self.overwrite_crm_values


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


@dataclass(frozen=True)
class Reference:
    """Reference data for one run (frames with the *_COLUMNS above; any may be empty)."""

    accounts: pd.DataFrame = field(default_factory=lambda: _empty(ACCOUNT_COLUMNS))
    existing: pd.DataFrame = field(default_factory=lambda: _empty(EXISTING_COLUMNS))
    firmographics: pd.DataFrame = field(default_factory=lambda: _empty(FIRMOGRAPHICS_FILE_COLUMNS))
    provider: pd.DataFrame = field(default_factory=lambda: _empty(PROVIDER_COLUMNS))
    activities: pd.DataFrame = field(default_factory=lambda: _empty(("lead_key", "activity_type", "occurred_at",
                                                                    "detail")))
    """Engagement activities (`leadflow.scoring.model.ACTIVITY_COLUMNS`) for scoring and the lifecycle."""
    role_localparts: tuple[str, ...] = ()
    """Extra role mailboxes from the config, beside the bundled list."""
    disposable_domains: tuple[str, ...] = ()
    """Extra disposable domains from the config, beside the bundled list."""


def read_reference_file(path: Path, what: str, config_path: Path | str, yaml_path: str) -> pd.DataFrame:
    """Read a CSV/Parquet reference file as text columns; problems name the config's YAML path and the file."""
    if not path.is_file():
        raise ConfigError(str(config_path), f"file {str(path)!r} not found", yaml_path=yaml_path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path).astype("string")
        else:
            frame = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(str(config_path), f"cannot read {str(path)!r}: {exc}", yaml_path=yaml_path) from None
    frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
    missing = [c for c in _REQUIRED[what] if c not in frame.columns]
    if missing:
        raise ConfigError(str(path), f"{what} file needs column(s) {missing}; found {list(frame.columns)}")
    for column in FIRMOGRAPHIC_COLUMNS[:2]:
        if column in frame.columns:
            parsed, bad = parse_number(frame[column], "Int64" if column == "employees" else "Float64")
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                line = row + 2 if path.suffix.lower() == ".csv" else row + 1
                raise ConfigError(
                    str(path), f"row {line}: column {column!r}: not a number {frame[column].iloc[row]!r}"
                )
            frame[column] = parsed
    return frame


def load_reference(config: EnrichmentConfig, config_path: Path) -> Reference:
    """The reference files a run config names (paths relative to the config file)."""
    base = config_path.parent

    def read(attr: str) -> pd.DataFrame | None:
        value = getattr(config, attr)
        if value is None:
            return None
        path = value if value.is_absolute() else base / value
        return read_reference_file(path, attr, config_path, f"enrichment.{attr}")

    def lines(attr: str) -> tuple[str, ...]:
        values: list[str] = []
        for i, value in enumerate(getattr(config, attr)):
            path = value if value.is_absolute() else base / value
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(str(config_path), f"cannot read {str(path)!r}: {exc}",
                                  yaml_path=f"enrichment.{attr}[{i}]") from None
            values += [s for s in (x.strip().lower() for x in text.splitlines()) if s and not s.startswith("#")]
        return tuple(values)

    accounts, existing, firmographics = read("accounts"), read("existing_records"), read("firmographics_file")
    reference = Reference()
    return Reference(
        accounts=reference.accounts if accounts is None else accounts,
        existing=reference.existing if existing is None else existing,
        firmographics=reference.firmographics if firmographics is None else firmographics,
        role_localparts=lines("role_localparts"),
        disposable_domains=lines("disposable_domains"),
    )
