"""Comply stage: may this lead be emailed? Consent policy and suppression lists are data (see leadflow.pipeline.config)."""

from __future__ import annotations

from typing import Final

import pandas as pd

from leadflow.pipeline.config import Rules
from leadflow.pipeline.run_inputs import RunInputs
from leadflow.pipeline.stage import Stage

MAILABLE_REASONS: Final[tuple[str, ...]] = (
    "ok",
    "no_email",
    "invalid_email",
    "unsubscribed",
    "bounced",
    "blocked_domain",
    "opted_out",
    "no_consent",
)
"""Codes for `mailable_reason`, in the order they are checked: the first that applies is given."""


def comply(frame: pd.DataFrame, rules: Rules, inputs: RunInputs | None = None) -> pd.DataFrame:
    """Decide `consent_required`, `mailable` and `mailable_reason` for every lead."""
    countries = frame["country_code"]
    uniques = countries.dropna().unique()
    needs = {code: rules.consent.requires_consent(code) for code in uniques}
    consent_required = countries.map(needs).astype("boolean").fillna(rules.consent.requires_consent(None))

    email = frame["email"]
    valid = frame["email_valid"].fillna(False).astype(bool)
    opt_in = frame["email_opt_in"]
    suppression = email.map(rules.suppressed_emails) if rules.suppressed_emails else pd.Series(pd.NA, index=frame.index)
    blocked = frame["email_domain"].isin(rules.blocked_domains).fillna(False).astype(bool)
    opted_out = opt_in.eq(False).fillna(False).astype(bool)
    opted_in = opt_in.eq(True).fillna(False).astype(bool)

    reason = pd.Series("ok", index=frame.index, dtype="string")
    # Later assignments win, so apply the checks from the least to the most fundamental.
    reason[consent_required.astype(bool) & ~opted_in] = "no_consent"
    reason[opted_out] = "opted_out"
    reason[blocked] = "blocked_domain"
    reason[suppression.eq("bounced").fillna(False).astype(bool)] = "bounced"
    reason[suppression.eq("unsubscribed").fillna(False).astype(bool)] = "unsubscribed"
    reason[~valid] = "invalid_email"
    reason[email.isna()] = "no_email"

    return pd.DataFrame(
        {
            "consent_required": consent_required,
            "mailable": reason.eq("ok").astype("boolean"),
            "mailable_reason": reason,
        },
        index=frame.index,
    )


COMPLY = Stage(
    name="comply",
    reads=("email", "email_valid", "email_domain", "email_opt_in", "country_code"),
    writes=("consent_required", "mailable", "mailable_reason"),
    fn=comply,
    description="Consent policy and suppression lists decide whether a lead may be emailed.",
)
