"""email_facts_of validates each domain once; its answers must stay those of email_validator.validate_email."""

from __future__ import annotations

import itertools
import random

import pytest
from email_validator import EmailNotValidError, validate_email

from leadflow.stages.standardize import email_facts_of

LOCAL_PARTS = [
    "john.doe", "JOHN.DOE", "jane+tag", "a", "x_y-z", "o'brien", "first.last+news", "user%host", "1234567890",
    # refused: leading, trailing or double dots, spaces, specials, empty, too long
    ".john", "john.", "jo..hn", "jo hn", "jo,hn", "jo(hn)", "jo[hn]", "jo;hn", "jo:hn", "jo\\hn", "",
    "a" * 64, "a" * 65,
    # quoted local parts (refused by default), escaped quotes, @ inside quotes
    '"john"', '"john doe"', '"jo@hn"', '"jo\\"hn"', 'jo"hn"', '"unterminated',
    # internationalised: accents, NFD (must be valid after NFC), CJK, Cyrillic, Greek, Arabic, emoji, controls
    "josé", "jose\u0301", "a\u037eb", "jo\u0338", "用户", "пользователь", "χρήστης", "مستخدم", "😀", "a\u200bb",
    "a\u0000b", "ａｂｃ",
    "info", "INFO", "Postmaster", "sales",
]

DOMAINS = [
    "acme.com", "ACME.COM", "Acme.Com", "sub.acme.co.uk", "acme.com.", "acme..com", ".acme.com", "acme", "a.b",
    "-acme.com", "acme-.com", "ac_me.com", "acme.c", "acme.123", "123.456.789.012", "acme.museum", "xn--acme.com",
    # IDN as Unicode and as punycode, a bad punycode label, full-width dot, mixed scripts, uppercase non-ASCII
    "bücher.de", "BÜCHER.DE", "xn--bcher-kva.de", "xn--zz.de", "münchen。de", "例え.jp", "пример.рф",
    "xn--e1afmkfd.xn--p1ai",
    "παράδειγμα.ελ", "مثال.إختبار", "a\u0301.com", "ß.de", "ﬁ.com",
    # special-use and reserved names, domain literals, empty, too long labels and names
    "localhost", "example.local", "x.localhost", "test", "a.test", "x.invalid", "x.onion", "[127.0.0.1]",
    "[IPv6:::1]", "[300.1.1.1]", "", "a" * 63 + ".com", "a" * 64 + ".com", ".".join(["abcdefghij"] * 26) + ".com",
    # junk after the @
    "acme.com>", "acme com", "acme.com,", "@acme.com", "acme.com@x.com", "ac\tme.com", "acme.com\u200b",
]

WHOLE_ADDRESSES = [
    "John Doe <john@acme.com>", "<john@acme.com>", '"John" <john@acme.com>', "john@acme.com <x>", "no-at-sign",
    "john＠acme.com", "john﹫acme.com", "@", "@@", "a@@acme.com", "john@", "@acme.com",
    "a" * 200 + "@" + "b" * 60 + ".com",
    "x" * 63 + "@" + ".".join(["y" * 60] * 3) + ".com", "<>", "a<b@acme.com", "a>b@acme.com", "a@b@c.com",
]


def _varied_addresses(seed: int = 17, mutants: int = 1500) -> list[str]:
    """Every local part with every domain, whole addresses, and random one-character mutations of valid ones."""
    combined = [f"{local}@{domain}" for local, domain in itertools.product(LOCAL_PARTS, DOMAINS)]
    rng = random.Random(seed)
    alphabet = "abcXYZ09.-_+@\"<>()[]\\ \u0301é。ü😀"
    mutated = []
    for _ in range(mutants):
        address = list(rng.choice(combined))
        position = rng.randrange(len(address) + 1)
        operation = rng.choice(("insert", "delete", "replace"))
        if operation == "insert" or not address:
            address.insert(position, rng.choice(alphabet))
        elif operation == "delete":
            del address[min(position, len(address) - 1)]
        else:
            address[min(position, len(address) - 1)] = rng.choice(alphabet)
        mutated.append("".join(address))
    return combined + WHOLE_ADDRESSES + mutated


def _reference_facts(address: str) -> tuple[bool, str | None]:
    """What email_facts_of returned before it cached domains: validate_email on the whole address."""
    try:
        return True, validate_email(address, check_deliverability=False).domain
    except EmailNotValidError:
        return False, None


def test_email_facts_match_validate_email_on_varied_addresses() -> None:
    addresses = _varied_addresses()
    expected = [_reference_facts(a) for a in addresses]
    got = [email_facts_of(a) for a in addresses]
    differences = [(a, e, g) for a, e, g in zip(addresses, expected, got, strict=True) if e != g]
    assert differences == []
    # The corpus exercises both answers and several normalised domains, so the comparison means something.
    valid_domains = {domain for valid, domain in expected if valid}
    assert sum(valid for valid, _ in expected) > 300 and len(expected) - len(valid_domains) > 300
    assert {"bücher.de", "münchen.de", "пример.рф"} <= valid_domains


def test_email_facts_match_validate_email_on_lower_cased_addresses() -> None:
    """The stage passes trimmed, lower-cased addresses: the same comparison on those."""
    addresses = sorted({a.lower() for a in _varied_addresses(seed=29, mutants=800)})
    assert [email_facts_of(a) for a in addresses] == [_reference_facts(a) for a in addresses]


@pytest.mark.parametrize(
    ("address", "facts"),
    [
        ("jane@bücher.de", (True, "bücher.de")),
        ("jane@xn--bcher-kva.de", (True, "bücher.de")),
        ("jane@acme.com.", (False, None)),
        ('"jane"@acme.com', (False, None)),
        ("jane@[127.0.0.1]", (False, None)),
        ("jane@localhost", (False, None)),
        ("jose\u0301@acme.com", (True, "acme.com")),
    ],
)
def test_email_facts_examples(address: str, facts: tuple[bool, str | None]) -> None:
    assert email_facts_of(address) == facts
