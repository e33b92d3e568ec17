"""Role-based and disposable e-mail address flags, from the reference lists in leadflow/reference/."""

from __future__ import annotations

import pandas as pd
import pytest

from leadflow.identity.address_flags import (
    ADDRESS_FLAG_COLUMNS,
    disposable_domains,
    flag_addresses,
    is_disposable_domain,
    is_role_localpart,
    role_key,
    role_localparts,
)


def _flags(emails: list[str | None], domains: list[str | None] | None = None, **extra: object) -> pd.DataFrame:
    email = pd.Series(emails, dtype="string")
    domain = pd.Series(domains if domains is not None else [None] * len(emails), dtype="string")
    return flag_addresses(email, domain, **extra)  # type: ignore[arg-type]


def test_reference_lists_load() -> None:
    roles, domains = role_localparts(), disposable_domains()
    assert {"info", "sales", "support", "noreply", "postmaster", "careers"} <= roles
    assert len(roles) >= 60
    assert {"mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com", "trashmail.com"} <= domains
    assert len(domains) > 1_000
    # Comments and blank lines are not entries; consumer mailboxes are not disposable.
    assert not any(d.startswith("#") or not d for d in domains)
    assert not {"gmail.com", "outlook.com", "yahoo.com"} & domains


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("info", True),
        ("INFO", True),
        ("sales+emea", True),  # tag dropped
        ("no-reply", True),  # separators normalised: no-reply = noreply = no.reply = no_reply
        ("no.reply", True),
        ("no_reply", True),
        ("customer.service", True),
        ("jane.doe", False),
        ("salesjane", False),  # starts with a role word: still a person
        ("info2", False),
        ("", False),
    ],
)
def test_role_localpart(local: str, expected: bool) -> None:
    assert is_role_localpart(local) is expected


def test_role_key() -> None:
    assert role_key(" No-Reply+Bounce ") == "noreply"


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("mailinator.com", True),
        ("MAILINATOR.COM", True),
        ("eu.mailinator.com", True),  # any parent domain listed
        ("a.b.yopmail.com", True),
        ("mailinator.co", False),
        ("acmemailinator.com", False),  # ends like a listed domain, but is not a subdomain of one
        ("acme.com", False),
        ("com", False),
        ("", False),
    ],
)
def test_disposable_domain(domain: str, expected: bool) -> None:
    assert is_disposable_domain(domain) is expected


@pytest.mark.parametrize(
    ("email", "domain", "role", "disposable"),
    [
        ("info@acme.com", "acme.com", True, False),
        ("Support+ticket@Acme.com", None, True, False),
        ("jane.doe@acme.com", "acme.com", False, False),
        ("jane@mailinator.com", "mailinator.com", False, True),
        ("jane@eu.mailinator.com", None, False, True),  # domain taken from the address
        ("sales@guerrillamail.com", "guerrillamail.com", True, True),
        ("jane@acme.com", "mailinator.com", False, True),  # the given email_domain wins
        ("not-an-address", None, False, False),
        (None, None, None, None),
        ("", None, None, None),
    ],
)
def test_flag_addresses(email: str | None, domain: str | None, role: bool | None, disposable: bool | None) -> None:
    out = _flags([email], [domain])
    got_role, got_disposable = out["is_role_email"].iloc[0], out["is_disposable_email"].iloc[0]
    assert (got_role is pd.NA) if role is None else (got_role == role)
    assert (got_disposable is pd.NA) if disposable is None else (got_disposable == disposable)


def test_extras_add_to_the_lists() -> None:
    out = _flags(["recruiting-team@acme.com", "jane@burner.example"], extra_roles=["recruiting-team"],
                 extra_disposable=["@Burner.Example"])
    assert out["is_role_email"].tolist() == [True, False]
    assert out["is_disposable_email"].tolist() == [False, True]


def test_shape_dtypes_and_index() -> None:
    email = pd.Series(["info@a.com", None, "x@yopmail.com"], index=["b", "a", "b"], dtype="string")
    domain = pd.Series([None, None, None], index=["b", "a", "b"], dtype="string")
    out = flag_addresses(email, domain)
    assert tuple(out.columns) == ADDRESS_FLAG_COLUMNS
    assert out.index.equals(email.index)
    assert all(out[c].dtype == "boolean" for c in ADDRESS_FLAG_COLUMNS)
    assert out["is_role_email"].tolist() == [True, pd.NA, False]
    assert out["is_disposable_email"].tolist() == [False, pd.NA, True]
    empty = flag_addresses(pd.Series([], dtype="string"), pd.Series([], dtype="string"))
    assert len(empty) == 0 and tuple(empty.columns) == ADDRESS_FLAG_COLUMNS


def test_many_values_parallel_path() -> None:
    # Past PARALLEL_MIN_UNIQUES the per-value work runs in forked workers: same answers.
    emails = [f"user{i}@mailinator.com" if i % 2 else f"info@corp{i}.com" for i in range(60_000)]
    out = _flags(emails)
    assert out["is_disposable_email"].sum() == 30_000
    assert out["is_role_email"].sum() == 30_000
