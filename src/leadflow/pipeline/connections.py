"""The `systems:` section of a run config: where each CRM/MAP is and where its secrets live (never the secrets)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from leadflow.ops.secrets import SecretRef

GENERIC_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})
"""Salesforce's shared login hosts (production, sandboxes): they refuse the client credentials flow."""

LOOKBACK_SECONDS = Field(
    default=300, ge=0,
    description="Incremental pulls start this long before the watermark: search indexes trail writes, and "
    "re-pulling is harmless because only changed fields are ever written.",
)

MAX_CHANGE_SHARE = Field(
    default=0.5, gt=0, le=1,
    description="Export guard: refuse a write changing more than this share of the records pulled in a run, unless "
    "overridden (e.g. for an intended initial load).",
)


DEAD_LETTER_RETRIES = Field(
    default=1000, ge=0,
    description="Failed write-backs retried per run, oldest first, before the run's pull; they are changes approved "
    "once already, so the export guard does not count them. The rest wait for the next run.",
)


class SalesforceConnection(BaseModel):
    """A Salesforce org reached through an OAuth2 connected app (client-credentials flow)."""

    model_config = ConfigDict(extra="forbid")

    login_url: HttpUrl = Field(description="Your org's My Domain URL, e.g. https://acme.my.salesforce.com.")
    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    ca_bundle: Path | None = Field(default=None, description="CA certificate to trust instead of the system's.")

    @field_validator("login_url")
    @classmethod
    def _my_domain(cls, url: HttpUrl) -> HttpUrl:
        # The OAuth 2.0 client credentials flow is refused on the generic login hosts ("invalid_grant: request not
        # supported on this domain"); it needs the org's My Domain login URL. Salesforce Help, "OAuth 2.0 Client
        # Credentials Flow for Server-to-Server Integration":
        # https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
        if (url.host or "").lower() in GENERIC_LOGIN_HOSTS:
            raise ValueError(f"{url.host} does not take the client credentials flow: use your org's My Domain URL "
                             "(Setup > My Domain), e.g. https://acme.my.salesforce.com")
        return url
    max_calls_per_run: int | None = Field(default=None, ge=1, description="leadflow's own API budget per run.")
    lookback_seconds: int = LOOKBACK_SECONDS
    max_org_usage_share: float = Field(default=0.8, gt=0, le=1, description="Stop above this share of the org's "
                                       "daily API allocation (all integrations together).")
    page_size: int = Field(default=2000, ge=200, le=2000, description="SOQL batchSize: records per query page.")
    max_change_share: float = MAX_CHANGE_SHARE
    dead_letter_retries: int = DEAD_LETTER_RETRIES
    write_back: bool = True


class MarketoConnection(BaseModel):
    """A Marketo instance's REST endpoint and API-only user."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(description="e.g. https://123-ABC-456.mktorest.com")
    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    max_calls_per_run: int | None = Field(default=None, ge=1, description="leadflow's own API budget per run.")
    lookback_seconds: int = LOOKBACK_SECONDS
    max_change_share: float = MAX_CHANGE_SHARE
    dead_letter_retries: int = DEAD_LETTER_RETRIES
    write_back: bool = True


class HubspotConnection(BaseModel):
    """A HubSpot portal reached with a private-app token."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(default=HttpUrl("https://api.hubapi.com"))
    token: SecretRef
    max_calls_per_run: int | None = Field(default=None, ge=1, description="leadflow's own API budget per run.")
    lookback_seconds: int = LOOKBACK_SECONDS
    max_change_share: float = MAX_CHANGE_SHARE
    dead_letter_retries: int = DEAD_LETTER_RETRIES
    write_back: bool = True


class Connections(BaseModel):
    """Which systems a sync talks to; a system left out is not synced."""

    model_config = ConfigDict(extra="forbid")

    salesforce: SalesforceConnection | None = None
    marketo: MarketoConnection | None = None
    hubspot: HubspotConnection | None = None

    @property
    def names(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]
