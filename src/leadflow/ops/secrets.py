"""Secrets named in config — an environment variable or a Prefect Secret block — resolved only when used."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from leadflow.pipeline.errors import ConfigError


class SecretRef(BaseModel):
    """Where a secret lives: `{env: NAME}`, `{prefect_secret: block-name}` or `{file: path}`; never the value itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, description="Environment variable holding the secret.")
    prefect_secret: str | None = Field(default=None, description="Name of a Prefect Secret block.")
    file: Path | None = Field(default=None, description="A file holding only the secret (mounted-secret style).")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if sum(x is not None for x in (self.env, self.prefect_secret, self.file)) != 1:
            raise ValueError("give exactly one of `env`, `prefect_secret` or `file`")
        return self

    def describe(self) -> str:
        """Where the secret comes from, safe to print."""
        if self.env:
            return f"environment variable {self.env}"
        if self.file:
            return f"secret file {str(self.file)!r}"
        return f"Prefect Secret block {self.prefect_secret!r}"


def resolve_secret(
    ref: SecretRef, *, origin: str, yaml_path: str, environ: Mapping[str, str] | None = None
) -> SecretStr:
    """Fetch the secret; a missing one is a ConfigError naming the YAML path and where it was looked for."""
    if ref.env is not None:
        value = (os.environ if environ is None else environ).get(ref.env)
        if not value:
            raise ConfigError(origin, f"{ref.describe()} is not set", yaml_path=yaml_path)
        return SecretStr(value)
    if ref.file is not None:
        try:
            text = ref.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(origin, f"cannot read {ref.describe()}: {exc.strerror}", yaml_path=yaml_path) from None
        if not text:
            raise ConfigError(origin, f"{ref.describe()} is empty", yaml_path=yaml_path)
        return SecretStr(text)
    from prefect.blocks.system import Secret

    try:
        block: Any = Secret.load(ref.prefect_secret)
    except Exception as exc:  # Prefect raises ValueError/ObjectNotFound/HTTP errors depending on the server
        raise ConfigError(origin, f"cannot load {ref.describe()}: {type(exc).__name__}", yaml_path=yaml_path) from None
    return SecretStr(str(block.get()))
