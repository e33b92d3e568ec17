"""Rules as data: the run config and consent policy, YAML validated by pydantic, errors naming the YAML path."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import pandas as pd
import pycountry
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from leadflow.ops.alerts import AlertsConfig
from leadflow.pipeline.connections import Connections
from leadflow.identity.enrichment import EnrichmentConfig, Reference, load_reference
from leadflow.notify.config import NotificationsConfig
from leadflow.pipeline.errors import ConfigError
from leadflow.scoring.lifecycle import DEFAULT_LIFECYCLE, LIFECYCLE_COLUMNS, LifecyclePolicy, load_lifecycle_policy
from leadflow.routing.ownership import DEFAULT_OPEN_STATUSES, Ownership, RouteWhen, reassign_statuses_error
from leadflow.routing import (
    ROUTING_COLUMNS,
    RoutingConfig,
    availability_from_file,
    load_routing_config,
    with_availability,
)
from leadflow.pipeline.schema import DERIVED_COLUMNS, INPUT_COLUMNS
from leadflow.scoring.model import DEFAULT_SCORING_MODEL, SCORE_COLUMNS, ScoringModel, conform_activities, load_scoring_model
from leadflow.pipeline.settings import (
    DEFAULT_CONSENT_POLICY,
    DEFAULT_MAX_QUARANTINE_SHARE,
    DEFAULT_PIPELINE,
    WRITER_LEASE_SECONDS,
    WRITER_WAIT_SECONDS,
)
from leadflow.pipeline.yamlio import load_yaml, parse_model


def _alpha2(code: Any) -> str:
    if isinstance(code, bool):
        raise ValueError('YAML read this as a boolean: quote country codes such as "NO" (Norway)')
    value = str(code).strip().upper()
    if pycountry.countries.get(alpha_2=value) is None:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return value


CountryCode = Annotated[str, BeforeValidator(_alpha2)]


class ConsentPolicy(BaseModel):
    """Which countries need opt-in consent before a lead may be emailed."""

    model_config = ConfigDict(extra="forbid")

    version: str = "1"
    opt_in_countries: list[CountryCode] = Field(description="Alpha-2 codes where email needs explicit opt-in consent.")
    unknown_country: Literal["opt_in", "opt_out"] = "opt_in"

    def requires_consent(self, country_code: str | None) -> bool:
        """True when a lead in this country may be emailed only with explicit opt-in."""
        if not country_code:
            return self.unknown_country == "opt_in"
        return country_code in self.opt_in_countries


class SuppressionFiles(BaseModel):
    """Files of addresses or domains that must never be emailed (one per line, or a CSV with an `email`/`domain` column)."""

    model_config = ConfigDict(extra="forbid")

    unsubscribes: list[Path] = Field(default_factory=list)
    bounces: list[Path] = Field(default_factory=list)
    blocked_domains: list[Path] = Field(default_factory=list)


class QualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_quarantine_share: float = Field(default=DEFAULT_MAX_QUARANTINE_SHARE, ge=0.0, le=1.0)


class ScoringConfig(BaseModel):
    """The `scoring:` section: which model and lifecycle policy, and (file mode) where the activities are."""

    model_config = ConfigDict(extra="forbid")

    model: Path | None = Field(default=None, description="Scoring model YAML; default: the bundled model.")
    lifecycle: Path | None = Field(default=None, description="Lifecycle policy YAML; default: the bundled one.")
    activities: Path | None = Field(default=None, description="CSV/Parquet: lead_key, activity_type, occurred_at, "
                                    "detail (file mode; a CRM sync pulls them from the MAP).")


class RoutingSection(BaseModel):
    """The `routing:` section: the routing rules file, which CRM statuses mean "not touched yet", and which leads
    are leadflow's to route (`leadflow.routing.ownership`): a lead an active person owns is never re-owned by default."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rules: Path = Field(description="Routing rules YAML (see src/leadflow/reference/routing.yaml).")
    availability: Path | None = Field(
        default=None, description="CSV of out-of-office ranges: user_id, from, to (ISO dates, inclusive)."
    )
    open_statuses: list[str] = Field(
        default_factory=lambda: list(DEFAULT_OPEN_STATUSES), min_length=1,
        validation_alias=AliasChoices("open_statuses", "untouched_statuses"),
        description="Statuses of a lead nobody has worked yet. Any other status is worked: never routed again "
        "(not even by `reassign`), and on a lead leadflow assigned it is the first touch (ends its SLA clock). "
        "`untouched_statuses` is the earlier name.",
    )
    unassigned_owners: list[str] = Field(
        default_factory=list, description="Owner ids meaning nobody owns the lead yet (the default lead owner, the "
        "integration user): leads they own are routed.",
    )
    route_when: RouteWhen = Field(default_factory=RouteWhen,
                                  description="Which owners leave a lead to leadflow (a lead with no owner always).")

    @field_validator("unassigned_owners", "open_statuses", mode="before")
    @classmethod
    def _texts(cls, values: Any) -> Any:
        if isinstance(values, list):
            for value in values:
                if not isinstance(value, str):
                    raise ValueError(f'YAML read {value!r} as {type(value).__name__}: quote it ("{value}")')
        return values

    def ownership(self) -> Ownership:
        return Ownership(open_statuses=frozenset(self.open_statuses),
                         unassigned_owners=frozenset(v.strip() for v in self.unassigned_owners),
                         route_when=self.route_when)


class ConcurrencyConfig(BaseModel):
    """One writer per system at a time (`leadflow.store.leases`): how long to wait for another run, how long a
    lease lives without a heartbeat."""

    model_config = ConfigDict(extra="forbid")

    writer_wait_seconds: float = Field(
        default=WRITER_WAIT_SECONDS, ge=0,
        description="How long a run waits while another run writes to the same system, then stops naming it.")
    lease_seconds: float = Field(
        default=WRITER_LEASE_SECONDS, ge=1,
        description="A writer whose heartbeat stops for this long (a hung host) is taken over; a writer whose "
        "process is gone is taken over at once.")


class RunConfig(BaseModel):
    """The run config (`leadflow.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    pipeline: list[str] | None = Field(
        default=None, description="Stages in order; default: every stage (assign only with a routing section)."
    )
    quality: QualityConfig = Field(default_factory=QualityConfig)
    consent_policy: Path | None = None
    suppression: SuppressionFiles = Field(default_factory=SuppressionFiles)
    systems: Connections = Field(default_factory=Connections)
    enrichment: EnrichmentConfig = Field(default_factory=EnrichmentConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    routing: RoutingSection | None = None
    alerts: AlertsConfig | None = Field(default=None, description="Alerts: `leadflow alerts install` makes them.")
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    notifications: NotificationsConfig | None = Field(default=None, description="Tell owners of their new leads "
                                                      "(Slack, e-mail): `leadflow.notify`.")


@cache
def default_scoring_model() -> ScoringModel:
    return load_scoring_model(DEFAULT_SCORING_MODEL)


@cache
def default_lifecycle_policy() -> LifecyclePolicy:
    return load_lifecycle_policy(DEFAULT_LIFECYCLE)


@dataclass(frozen=True)
class Rules:
    """The run config: what the YAML (and the files it names) gives, loaded and validated up front. Per-run data
    (the time, what was pulled, the routing state) is in `leadflow.pipeline.run_inputs.RunInputs`."""

    consent: ConsentPolicy
    suppressed_emails: dict[str, str] = field(default_factory=dict)
    """Lower-cased address → reason code (`unsubscribed`, `bounced`)."""
    blocked_domains: frozenset[str] = frozenset()
    pipeline: tuple[str, ...] = DEFAULT_PIPELINE
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE
    source: str = "(defaults)"
    systems: Connections = field(default_factory=Connections)
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)
    reference: Reference = field(default_factory=Reference)
    """The reference files the config names (accounts, existing records, firmographics, activities), loaded at load
    time; what a run pulls (CRM, MAP, provider) is in its `leadflow.pipeline.run_inputs.RunInputs`."""
    scoring_model: ScoringModel = field(default_factory=default_scoring_model)
    lifecycle: LifecyclePolicy = field(default_factory=default_lifecycle_policy)
    routing: RoutingConfig | None = None
    """Routing rules, pools and territories; None: leads are not assigned."""
    untouched_statuses: frozenset[str] = frozenset()
    """The open statuses (routing.open_statuses); empty without a routing section."""
    ownership: Ownership = field(default_factory=Ownership)
    """Which leads are leadflow's to route: the routing section's policy (the CRM's users and queues of a run are in
    its `RunInputs.owners`)."""
    concurrency: ConcurrencyConfig = field(default_factory=ConcurrencyConfig)
    """Writer leases: how long to wait for another writer, a lease's lifetime."""
    notifications: NotificationsConfig | None = None
    """How owners hear of their new leads (None: they are not told)."""


def load_consent_policy(path: Path = DEFAULT_CONSENT_POLICY) -> ConsentPolicy:
    """Load and validate a consent policy YAML."""
    return parse_model(ConsentPolicy, load_yaml(path), path)


@cache
def default_consent_policy() -> ConsentPolicy:
    return load_consent_policy(DEFAULT_CONSENT_POLICY)


def _read_list(path: Path, column: str, config_path: Path, yaml_path: str) -> list[str]:
    if not path.is_file():
        raise ConfigError(str(config_path), f"file {str(path)!r} not found", yaml_path=yaml_path)
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype="string")
            if column not in frame.columns:
                raise ConfigError(str(path), f"CSV has no {column!r} column (columns: {list(frame.columns)})")
            values = frame[column]
        else:
            values = pd.Series(path.read_text(encoding="utf-8").splitlines(), dtype="string")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ConfigError(str(config_path), f"cannot read {str(path)!r}: {exc}", yaml_path=yaml_path) from None
    cleaned = values.str.strip().str.lower().dropna()
    return [v for v in cleaned if v and not v.startswith("#")]


def load_rules(config_path: Path | None = None) -> Rules:
    """Load the run config (or defaults), the consent policy it names, and its suppression lists."""
    if config_path is None:
        return Rules(consent=default_consent_policy())
    config = parse_model(RunConfig, load_yaml(config_path), config_path)
    base = config_path.parent

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    consent = default_consent_policy() if config.consent_policy is None else load_consent_policy(
        resolve(config.consent_policy)
    )
    suppressed: dict[str, str] = {}
    for kind, reason in (("bounces", "bounced"), ("unsubscribes", "unsubscribed")):
        for i, p in enumerate(getattr(config.suppression, kind)):
            for email in _read_list(resolve(p), "email", config_path, f"suppression.{kind}[{i}]"):
                suppressed.setdefault(email, reason)
    domains: set[str] = set()
    for i, p in enumerate(config.suppression.blocked_domains):
        domains.update(
            d.lstrip("@") for d in _read_list(resolve(p), "domain", config_path, f"suppression.blocked_domains[{i}]")
        )
    return Rules(
        consent=consent,
        suppressed_emails=suppressed,
        blocked_domains=frozenset(domains),
        pipeline=_pipeline(config, config_path),
        max_quarantine_share=config.quality.max_quarantine_share,
        source=str(config_path),
        systems=config.systems,
        enrichment=config.enrichment,
        reference=replace(load_reference(config.enrichment, config_path),
                          activities=_activities(config.scoring, config_path)),
        scoring_model=_scoring_model(config.scoring, config_path),
        lifecycle=default_lifecycle_policy() if config.scoring.lifecycle is None else load_lifecycle_policy(
            _relative(config.scoring.lifecycle, config_path)),
        routing=None if config.routing is None else _routing(config.routing, config_path),
        untouched_statuses=frozenset(config.routing.open_statuses) if config.routing else frozenset(),
        ownership=config.routing.ownership() if config.routing else Ownership(),
        concurrency=config.concurrency,
        notifications=config.notifications,
    )


def _routing(section: RoutingSection, config_path: Path) -> RoutingConfig:
    path = _relative(section.rules, config_path)
    routing = load_routing_config(path)
    for i, rule in enumerate(routing.rules):
        problem = reassign_statuses_error(rule.reassign, frozenset(section.open_statuses))
        if problem:
            raise ConfigError(str(path), problem, yaml_path=f"rules[{i}].reassign.statuses")
    if section.availability is None:
        return routing
    path = _relative(section.availability, config_path)
    return with_availability(routing, availability_from_file(path), origin=str(path))


def _pipeline(config: RunConfig, config_path: Path) -> tuple[str, ...]:
    if config.pipeline is None:
        return DEFAULT_PIPELINE + (("assign",) if config.routing is not None else ())
    if "assign" in config.pipeline and config.routing is None:
        raise ConfigError(str(config_path), "the pipeline assigns leads but the config has no routing: section "
                          "naming the rules", yaml_path=f"pipeline[{config.pipeline.index('assign')}]")
    return tuple(config.pipeline)


def _relative(path: Path, config_path: Path) -> Path:
    return path if path.is_absolute() else config_path.parent / path


def _scoring_model(config: ScoringConfig, config_path: Path) -> ScoringModel:
    if config.model is None:
        return default_scoring_model()
    path = _relative(config.model, config_path)
    model = load_scoring_model(path)
    check_model_columns(model, path)
    return model


SCORING_INPUTS: Final[frozenset[str]] = frozenset(INPUT_COLUMNS) | (
    frozenset(DERIVED_COLUMNS) - frozenset(SCORE_COLUMNS) - frozenset(LIFECYCLE_COLUMNS) - frozenset(ROUTING_COLUMNS)
)
"""The columns the score stage receives: the inputs and every derived column but those scoring and the stages after
it (lifecycle, assign) write. The same set as `leadflow.stages.score.READS` (tests/test_layout.py holds them equal),
stated here because the stages import this module: importing them from here was an import cycle."""


def check_model_columns(model: ScoringModel, path: Path) -> None:
    """Refuse a model whose rules test a column the score stage does not receive (a later stage's output)."""
    for i, rule in enumerate(model.fit_rules):
        for column in condition_columns(rule.when):
            if column not in SCORING_INPUTS:
                raise ConfigError(str(path), f"column {column!r} is not known when scoring runs (it is written by a "
                                  "later stage)", yaml_path=f"fit_rules[{i}].when")


def condition_columns(condition: Any) -> list[str]:
    """The columns a condition (and its nested conditions) tests."""
    found: list[str] = []
    if getattr(condition, "column", None):
        found.append(condition.column)
    for attr in ("all_", "any_"):
        for child in getattr(condition, attr, None) or []:
            found += condition_columns(child)
    child = getattr(condition, "not_", None)
    if child is not None:
        found += condition_columns(child)
    return found


def _activities(config: ScoringConfig, config_path: Path) -> pd.DataFrame:
    if config.activities is None:
        return conform_activities(pd.DataFrame())
    path = _relative(config.activities, config_path)
    if not path.is_file():
        raise ConfigError(str(config_path), f"file {str(path)!r} not found", yaml_path="scoring.activities")
    try:
        frame = pd.read_parquet(path) if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv(
            path, dtype="string", keep_default_na=False, na_values=[""])
        return conform_activities(frame)
    except (OSError, ValueError) as exc:
        raise ConfigError(str(path), f"cannot read activities: {exc}") from None
