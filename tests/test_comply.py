"""Comply: consent policy and suppression lists decide mailable; policy YAML errors name their path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadflow.pipeline.config import ConsentPolicy, Rules, default_consent_policy, load_rules
from leadflow.pipeline.errors import ConfigError
from leadflow.stages.comply import COMPLY, MAILABLE_REASONS

POLICY = default_consent_policy()


def frame(rows: list[dict]) -> pd.DataFrame:
    columns = {c: [r.get(c) for r in rows] for c in COMPLY.reads}
    out = pd.DataFrame(columns)
    for c in ("email", "email_domain", "country_code"):
        out[c] = out[c].astype("string")
    for c in ("email_valid", "email_opt_in"):
        out[c] = out[c].astype("boolean")
    return out


def lead(email: str | None = "ann@acme.com", valid: bool | None = True, country: str | None = "US",
         opt_in: bool | None = None) -> dict:
    return {"email": email, "email_valid": valid, "email_domain": email.split("@")[-1] if email else None,
            "email_opt_in": opt_in, "country_code": country}


@pytest.mark.parametrize(
    ("row", "required", "mailable", "reason"),
    [
        (lead(country="US"), False, True, "ok"),
        (lead(country="US", opt_in=False), False, False, "opted_out"),
        (lead(country="DE"), True, False, "no_consent"),
        (lead(country="DE", opt_in=True), True, True, "ok"),
        (lead(country="DE", opt_in=False), True, False, "opted_out"),
        (lead(country=None), True, False, "no_consent"),  # unknown country: the strict side
        (lead(country=None, opt_in=True), True, True, "ok"),
        (lead(country="GB", opt_in=True), True, True, "ok"),
        (lead(country="CA"), True, False, "no_consent"),
        (lead(country="SG"), False, True, "ok"),
        (lead(email=None, valid=None), False, False, "no_email"),
        (lead(email="not-an-email", valid=False), False, False, "invalid_email"),
        (lead(email="gone@acme.com"), False, False, "unsubscribed"),
        (lead(email="bounce@acme.com"), False, False, "bounced"),
        (lead(email="x@spam.example"), False, False, "blocked_domain"),
    ],
)
def test_mailable(row: dict, required: bool, mailable: bool, reason: str) -> None:
    rules = Rules(
        consent=POLICY,
        suppressed_emails={"gone@acme.com": "unsubscribed", "bounce@acme.com": "bounced"},
        blocked_domains=frozenset({"spam.example"}),
    )
    out = COMPLY.apply(frame([row]), rules)
    assert len(out) == 1
    assert bool(out["consent_required"].iloc[0]) is required
    assert bool(out["mailable"].iloc[0]) is mailable
    assert out["mailable_reason"].iloc[0] == reason
    assert reason in MAILABLE_REASONS


def test_default_policy_covers_eu_eea_and_opt_in_regimes() -> None:
    for code in ("DE", "FR", "IE", "NO", "IS", "LI", "GB", "CH", "CA", "AU", "NZ"):
        assert POLICY.requires_consent(code), code
    assert not POLICY.requires_consent("US")
    assert POLICY.requires_consent(None)


def test_rows_in_equal_rows_out() -> None:
    rows = [lead(country=c) for c in ("US", "DE", None, "FR", "US")]
    out = COMPLY.apply(frame(rows), Rules(consent=POLICY))
    assert len(out) == len(rows)
    assert out["mailable"].notna().all() and out["consent_required"].notna().all()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_suppression_files_from_config(tmp_path: Path) -> None:
    write(tmp_path, "unsub.txt", "# exported 2026-11-01\nGone@Acme.com\n")
    write(tmp_path, "bounces.csv", "email,when\nbounce@acme.com,2026-10-01\n")
    write(tmp_path, "blocked.txt", "@spam.example\n")
    config = write(tmp_path, "leadflow.yaml", """
suppression:
  unsubscribes: [unsub.txt]
  bounces: [bounces.csv]
  blocked_domains: [blocked.txt]
quality:
  max_quarantine_share: 0.1
""")
    rules = load_rules(config)
    assert rules.suppressed_emails == {"gone@acme.com": "unsubscribed", "bounce@acme.com": "bounced"}
    assert rules.blocked_domains == frozenset({"spam.example"})
    assert rules.max_quarantine_share == 0.1


@pytest.mark.parametrize(
    ("text", "yaml_path", "message"),
    [
        ("quality:\n  max_quarantine_share: 2\n", "quality.max_quarantine_share", "less than or equal"),
        ("suppression:\n  bounces: [missing.csv]\n", "suppression.bounces[0]", "not found"),
        ("pipelines: [standardize]\n", "pipelines", "Extra inputs"),
        ("consent_policy: policy.yaml\n", "opt_in_countries[2]", "not an ISO 3166-1 alpha-2"),
    ],
)
def test_config_errors_name_the_yaml_path(tmp_path: Path, text: str, yaml_path: str, message: str) -> None:
    write(tmp_path, "policy.yaml", "opt_in_countries: [DE, FR, XX]\n")
    config = write(tmp_path, "leadflow.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_rules(config)
    assert info.value.yaml_path == yaml_path
    assert message in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    config = write(tmp_path, "leadflow.yaml", "quality:\n  max_quarantine_share: [0.1\n")
    with pytest.raises(ConfigError, match=r"leadflow.yaml: line \d+, column \d+"):
        load_rules(config)


def test_policy_requires_countries() -> None:
    with pytest.raises(Exception):
        ConsentPolicy.model_validate({"unknown_country": "opt_in"})
