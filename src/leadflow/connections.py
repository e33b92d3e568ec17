"""The `systems:` section of a run config: where each CRM/MAP is and where its secrets live (never the secrets)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from leadflow.secrets import SecretRef


class MarketoConnection(BaseModel):
    """A Marketo instance's REST endpoint and API-only user."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(description="e.g. https://123-ABC-456.mktorest.com")
    client_id: str = Field(min_length=1)
    client_secret: SecretRef
    max_calls_per_run: int | None = Field(default=None, ge=1, description="leadflow's own API budget per run.")
    write_back: bool = True


class HubspotConnection(BaseModel):
    """A HubSpot portal reached with a private-app token."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(default=HttpUrl("https://api.hubapi.com"))
    token: SecretRef
    max_calls_per_run: int | None = Field(default=None, ge=1, description="leadflow's own API budget per run.")
    write_back: bool = True


class Connections(BaseModel):
    """Which systems a sync talks to; a system left out is not synced."""

    model_config = ConfigDict(extra="forbid")

    marketo: MarketoConnection | None = None
    hubspot: HubspotConnection | None = None

    @property
    def names(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name) is not None]
