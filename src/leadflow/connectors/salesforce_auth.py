"""Salesforce credentials and login: an OAuth2 client (client credentials, or the password grant) against the org's
token endpoint, or an existing session (instance URL + session token).

- OAuth 2.0 token endpoint (POST /services/oauth2/token) and its response (`instance_url`, `access_token`, `id`: the
  identity URL, which ends with the connecting user's id):
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
- Client credentials work only on the org's My Domain URL; login.salesforce.com / test.salesforce.com refuse them
  (same page).

The connector (salesforce_session.SessionMixin._login) calls `request_token` and builds its simple_salesforce client
from the answer; the token request goes through the connector's own session (its adapter does not count it).
"""

from __future__ import annotations

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from leadflow.pipeline.errors import LeadflowError


class SalesforceAuthError(LeadflowError):
    """The token endpoint refused the credentials (the message never carries a secret)."""


class SalesforceCredentials(BaseModel):
    """Either an OAuth2 client (login_url + client_id + client_secret [+ username/password]) or an existing session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    login_url: str | None = Field(default=None, description="e.g. https://login.salesforce.com or a My Domain URL")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    instance_url: str | None = None
    session_token: SecretStr | None = None
    api_version: str = "59.0"

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesforceCredentials:
        oauth = self.login_url and self.client_id and self.client_secret
        direct = self.instance_url and self.session_token
        if not (oauth or direct):
            raise ValueError("give login_url + client_id + client_secret, or instance_url + session_token")
        for name in ("login_url", "instance_url"):
            value = getattr(self, name)
            if value is not None and not value.startswith("https://"):
                raise ValueError(f"{name} must be an https:// URL (simple-salesforce speaks only HTTPS)")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (password grant)")
        return self


def uses_oauth(creds: SalesforceCredentials) -> bool:
    """True when the credentials log in through the token endpoint (else they carry a session)."""
    return bool(creds.login_url and creds.client_id and creds.client_secret)


def request_token(session: requests.Session, creds: SalesforceCredentials) -> tuple[str, str, str | None]:
    """(instance URL, access token, connecting user's id or None) from the org's token endpoint.

    Raises SalesforceAuthError (one line, no secret) when the endpoint refuses the credentials."""
    assert creds.login_url and creds.client_id and creds.client_secret  # see uses_oauth
    form = {"client_id": creds.client_id, "client_secret": creds.client_secret.get_secret_value()}
    if creds.username and creds.password:
        form |= {"grant_type": "password", "username": creds.username,
                 "password": creds.password.get_secret_value()}
    else:
        form["grant_type"] = "client_credentials"
    reply = session.post(f"{creds.login_url.rstrip('/')}/services/oauth2/token", data=form)
    if reply.status_code != 200:
        try:
            refusal = reply.json()
            reason, detail = str(refusal.get("error", "")), str(refusal.get("error_description", ""))
        except (ValueError, AttributeError):
            reason = detail = ""
        if form["grant_type"] == "client_credentials" and "not supported on this domain" in detail:
            # Client credentials work only on the org's My Domain URL (Salesforce Help, "OAuth 2.0 Client
            # Credentials Flow"); login.salesforce.com / test.salesforce.com refuse them.
            raise SalesforceAuthError(
                f"salesforce: login refused at {creds.login_url} (client credentials need the org's My Domain "
                "URL, e.g. https://yourcompany.my.salesforce.com, as login_url)")
        raise SalesforceAuthError(f"salesforce: login refused (HTTP {reply.status_code} {reason})")
    body = reply.json()
    # The identity URL ends with the connecting user's id (OAuth 2.0 token response, `id`: "Identity URL that can be
    # used to identify the user"): https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
    user_id = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1] or None
    return body["instance_url"], body["access_token"], user_id
