"""The push-intake service's config (`intake.yaml`, or the `intake:` section of a YAML file given with `--config`),
validated by pydantic; errors name the YAML path, with "did you mean" for a misspelt key. Secrets are references
(`leadflow.ops.secrets.SecretRef`: `{env: …}`, `{file: …}`, `{prefect_secret: …}`), resolved once at start
(`resolve_secrets`); a missing one is named by where it should come from, never by its value.

```yaml
intake:
  host: 127.0.0.1                 # bind address (0.0.0.0 behind a proxy or in a container)
  port: 8787
  public_url: https://intake.example.com   # the base URL senders post to (HubSpot signs it); default: as requested
  tls: {certfile: tls/cert.pem, keyfile: tls/key.pem}   # serve HTTPS; paths relative to this file
  max_body_bytes: 1048576         # larger bodies: 413
  rate_limit: {requests_per_second: 20, burst: 40}     # per source; a source may override it
  processing:                     # the micro-batch processor (`leadflow intake serve` without --no-process)
    run_config: leadflow.yaml     # systems, routing and pipeline the batches run with
    batch: {max_notifications: 50, max_wait_ms: 500}
  sources:
    salesforce: {organization_ids: ["00D5e000000AbCdEAK"]}
    hubspot: {client_secret: {env: HUBSPOT_CLIENT_SECRET}}
    marketo: {shared_secret: {env: MARKETO_WEBHOOK_SECRET}}
    web: {secret: {file: /run/secrets/leadflow_web_hmac}}
```
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError, \
    field_validator, model_validator

from leadflow.intake.verify import salesforce_id18
from leadflow.ops.secrets import SecretRef, resolve_secret
from leadflow.pipeline.errors import ConfigError
from leadflow.pipeline.yamlio import load_yaml

DEFAULT_CONFIG_NAME: Final[str] = "intake.yaml"
DEFAULT_PORT: Final[int] = 8787
DEFAULT_MAX_BODY_BYTES: Final[int] = 1024 * 1024
MAX_TIMESTAMP_AGE_SECONDS: Final[int] = 300
"""HubSpot: "reject the request if the timestamp is older than 5 minutes"; the web endpoint uses the same window."""
SOURCES: Final[tuple[str, ...]] = ("salesforce", "hubspot", "marketo", "web")


def _org_id(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'YAML read {value!r} as {type(value).__name__}: quote the organization id ("…")')
    text = value.strip()
    if not text.startswith("00D"):
        raise ValueError(f"{text!r} is not a Salesforce organization id (they start with 00D)")
    full = salesforce_id18(text)  # raises ValueError for a malformed id or a wrong 18-character checksum
    return full


OrgId = Annotated[str, BeforeValidator(_org_id)]


class RateLimit(BaseModel):
    """A token bucket per source: `burst` requests at once, refilled at `requests_per_second`."""

    model_config = ConfigDict(extra="forbid")

    requests_per_second: float = Field(default=20.0, gt=0)
    burst: int = Field(default=40, ge=1)


class TlsFiles(BaseModel):
    """Serve HTTPS with this certificate (chain) and key, PEM files."""

    model_config = ConfigDict(extra="forbid")

    certfile: Path
    keyfile: Path


class SalesforceSource(BaseModel):
    """Outbound Messages carry no signature: the organization id is checked (and TLS, a proxy's client-certificate
    check or an IP allowlist of Salesforce's ranges protect the endpoint)."""

    model_config = ConfigDict(extra="forbid")

    organization_ids: list[OrgId] = Field(min_length=1, description="The org(s) allowed to post (15 or 18 chars).")
    rate_limit: RateLimit | None = None


class HubspotSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_secret: SecretRef = Field(description="The HubSpot app's client secret (signs X-HubSpot-Signature-v3).")
    rate_limit: RateLimit | None = None


class MarketoSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shared_secret: SecretRef = Field(description="The value of the webhook's X-Leadflow-Marketo-Secret header.")
    rate_limit: RateLimit | None = None


class WebSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretRef = Field(description="HMAC-SHA256 key of X-Leadflow-Signature.")
    rate_limit: RateLimit | None = None


class Sources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    salesforce: SalesforceSource | None = None
    hubspot: HubspotSource | None = None
    marketo: MarketoSource | None = None
    web: WebSource | None = None

    @model_validator(mode="after")
    def _some(self) -> Sources:
        if not self.configured():
            raise ValueError(f"configure at least one source ({', '.join(SOURCES)})")
        return self

    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in SOURCES if getattr(self, name) is not None)


class BatchSettings(BaseModel):
    """A micro-batch closes when `max_notifications` are pending or `max_wait_ms` after the first pending one."""

    model_config = ConfigDict(extra="forbid")

    max_notifications: int = Field(default=50, ge=1, le=200, description="At most this many per batch (one fetch "
                                   "call per system: Salesforce's IN list and HubSpot's batch read stay in one call).")
    max_wait_ms: int = Field(default=500, ge=0, le=60_000)


class Processing(BaseModel):
    """How `leadflow intake serve` processes the inbox: the run config it syncs with, the batches, the warm data."""

    model_config = ConfigDict(extra="forbid")

    run_config: Path | None = Field(default=None, description="The run config (systems, routing, pipeline) the "
                                    "batches run with, relative to this file; default: leadflow's (leadflow.yaml).")
    batch: BatchSettings = Field(default_factory=BatchSettings)
    claim_timeout_seconds: float = Field(default=300.0, ge=1, description="A claim older than this (its process was "
                                         "killed) is replayed; longer than the longest batch.")
    refresh_seconds: float = Field(default=300.0, ge=0, description="The CRM mirror and MAP activities are kept "
                                   "between batches and brought up to date (only what changed) this often (0: every "
                                   "batch); connectors live as long as the process.")
    wake_seconds: float = Field(default=5.0, gt=0, description="Without a new notification, look for replays and "
                                "retries this often.")
    busy_backoff_seconds: float = Field(default=10.0, ge=0, description="A system another run writes to is left "
                                        "alone this long (its notifications stay pending).")
    max_attempts: int = Field(default=10, ge=1, description="A notification failing transiently this often fails "
                              "for good.")
    web_crm: str = Field(default="salesforce", pattern="^salesforce$", description="Where a web lead is created "
                         "before it is processed (the CRM that owns it).")

    @model_validator(mode="after")
    def _claims_outlive_batches(self) -> Processing:
        if self.claim_timeout_seconds * 1000 <= self.batch.max_wait_ms:
            raise ValueError("claim_timeout_seconds must be longer than batch.max_wait_ms: a claim would go stale "
                             "before its batch closed")
        return self


class IntakeConfig(BaseModel):
    """The `intake:` section."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    public_url: str | None = Field(default=None, description="Base URL senders are configured with (scheme://host"
                                   "[:port][/prefix]); HubSpot signs the full URL, which differs behind a proxy.")
    tls: TlsFiles | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    timestamp_tolerance_seconds: int = Field(default=MAX_TIMESTAMP_AGE_SECONDS, ge=1, le=MAX_TIMESTAMP_AGE_SECONDS)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    sources: Sources
    processing: Processing = Field(default_factory=Processing)

    _origin: str = PrivateAttr(default="(intake config)")
    _yaml_prefix: str = PrivateAttr(default="")

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError(f"{value!r}: give the base URL only, without a query or fragment")
        return value.strip().rstrip("/")

    def rate_limit_of(self, source: str) -> RateLimit:
        own = getattr(getattr(self.sources, source), "rate_limit", None)
        return own if own is not None else self.rate_limit

    @property
    def origin(self) -> str:
        return self._origin

    def yaml_path(self, path: str) -> str:
        return f"{self._yaml_prefix}{path}"


@dataclass(frozen=True, repr=False)
class IntakeSecrets:
    """The resolved secrets, as `SecretStr` (their repr and str are masked)."""

    hubspot: SecretStr | None = None
    marketo: SecretStr | None = None
    web: SecretStr | None = None

    def __repr__(self) -> str:
        return f"IntakeSecrets({', '.join(n for n in ('hubspot', 'marketo', 'web') if getattr(self, n))})"


def default_config_path() -> Path:
    return Path(DEFAULT_CONFIG_NAME)


def load_intake_config(path: Path) -> IntakeConfig:
    """Read and validate the intake config: a document that is the section itself, or has an `intake:` key (other
    keys, e.g. a run config's, are left to their readers). TLS paths are taken relative to the file."""
    data = load_yaml(path)
    prefix = ""
    if isinstance(data, dict) and "intake" in data:
        data, prefix = data["intake"], "intake."
    try:
        config = IntakeConfig.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        message = first["msg"]
        if first["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            close = difflib.get_close_matches(loc[-1], _fields_at(IntakeConfig, loc[:-1]), n=1, cutoff=0.6)
            message = f"unknown key {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        where = _yaml_path(loc)
        raise ConfigError(str(path), message + extra,
                          yaml_path=(prefix + where) if where else (prefix.rstrip(".") or None)) from None
    config._origin, config._yaml_prefix = str(path), prefix
    if config.tls is not None:
        base = path.parent
        tls = TlsFiles(certfile=_relative(config.tls.certfile, base), keyfile=_relative(config.tls.keyfile, base))
        for name in ("certfile", "keyfile"):
            if not getattr(tls, name).is_file():
                raise ConfigError(str(path), f"file {str(getattr(tls, name))!r} not found",
                                  yaml_path=config.yaml_path(f"tls.{name}"))
        config.tls = tls
    run_config = config.processing.run_config
    if run_config is not None:
        config.processing.run_config = _relative(run_config, path.parent)
        if not config.processing.run_config.is_file():
            raise ConfigError(str(path), f"file {str(config.processing.run_config)!r} not found",
                              yaml_path=config.yaml_path("processing.run_config"))
    return config


def resolve_secrets(config: IntakeConfig, environ: dict[str, str] | None = None) -> IntakeSecrets:
    """Fetch each configured source's secret; a missing one is a ConfigError naming the YAML path and where the
    secret should come from (`SecretRef.describe()`), never a value."""
    found: dict[str, SecretStr] = {}
    for source, key in (("hubspot", "client_secret"), ("marketo", "shared_secret"), ("web", "secret")):
        section = getattr(config.sources, source)
        if section is None:
            continue
        found[source] = resolve_secret(getattr(section, key), origin=config.origin,
                                       yaml_path=config.yaml_path(f"sources.{source}.{key}"), environ=environ)
    return IntakeSecrets(**found)


def _relative(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path


def _yaml_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at YAML location `loc` accepts (for "did you mean")."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        info = current.model_fields.get(str(part))
        current = None if info is None else _model_in(info.annotation)
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType, list, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
