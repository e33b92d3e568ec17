"""Secrets come from the environment or a Prefect Secret block, and their values never appear in errors or reprs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadflow.pipeline.errors import ConfigError
from leadflow.ops.secrets import SecretRef, resolve_secret


def test_from_environment() -> None:
    secret = resolve_secret(SecretRef(env="SF_SECRET"), origin="leadflow.yaml", yaml_path="systems.salesforce.client_secret",
                            environ={"SF_SECRET": "hunter2"})
    assert secret.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret)


def test_missing_environment_variable_names_the_yaml_path() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_secret(SecretRef(env="SF_SECRET"), origin="leadflow.yaml", yaml_path="systems.salesforce.client_secret",
                       environ={})
    assert info.value.yaml_path == "systems.salesforce.client_secret"
    assert "environment variable SF_SECRET is not set" in str(info.value)


def test_from_a_secret_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mkto.secret"
    path.write_text("file-secret\n")
    assert resolve_secret(SecretRef(file=path), origin="c.yaml", yaml_path="x").get_secret_value() == "file-secret"
    with pytest.raises(ConfigError, match="cannot read secret file"):
        resolve_secret(SecretRef(file=tmp_path / "missing"), origin="c.yaml", yaml_path="x")


@pytest.mark.parametrize("data", [{}, {"env": "A", "prefect_secret": "b"}, {"value": "plain-text-secret"},
                                  {"env": "A", "file": "b"}])
def test_a_reference_names_exactly_one_place(data: dict) -> None:
    with pytest.raises(ValidationError):
        SecretRef.model_validate(data)


@pytest.mark.prefect
def test_from_a_prefect_secret_block(prefect_api: str) -> None:
    from prefect.blocks.system import Secret

    Secret(value="block-secret-value").save("leadflow-test-secret", overwrite=True)
    secret = resolve_secret(SecretRef(prefect_secret="leadflow-test-secret"), origin="leadflow.yaml", yaml_path="x")
    assert secret.get_secret_value() == "block-secret-value"
    with pytest.raises(ConfigError, match="cannot load Prefect Secret block 'no-such-block'") as info:
        resolve_secret(SecretRef(prefect_secret="no-such-block"), origin="leadflow.yaml", yaml_path="systems.x")
    assert "block-secret-value" not in str(info.value)
