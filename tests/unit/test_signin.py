"""The allow-list and the identity taken from an ID token's claims (sign-in itself is tested in
a real browser: tests/e2e/test_sign_in_browser.py)."""

from __future__ import annotations

import pytest

from components.signin import identity_from_claims, is_allowed

ALLOWED = ["@example.org", "Contractor@Partner.com"]


@pytest.mark.parametrize("email", ["alice@example.org", "ALICE@Example.org ", "contractor@partner.com"])
def test_allowed_addresses_and_domains(email):
    assert is_allowed(email, ALLOWED)


@pytest.mark.parametrize(
    "email",
    [
        "mallory@evil.example",
        "alice@example.org.evil.example",  # a domain that only starts like an allowed one
        "alice@sub.example.org",  # subdomains are not the domain
        "other@partner.com",
        "example.org",
        "",
    ],
)
def test_everyone_else_is_refused(email):
    assert not is_allowed(email, ALLOWED)


def test_an_empty_allow_list_leaves_it_to_the_provider():
    assert is_allowed("anyone@anywhere.example", [])


def test_identity_from_claims():
    claims = {"sub": "u-1", "email": "Lead@Example.org", "name": "  Ada \n Lovelace  "}
    identity = identity_from_claims(claims, ["lead@example.org"])
    assert (identity.sub, identity.email, identity.name, identity.admin) == (
        "u-1",
        "Lead@Example.org",
        "Ada Lovelace",
        True,
    )
    assert identity_from_claims({"sub": "u-2", "email": "b@example.org"}, []).name == "b@example.org"
    assert identity_from_claims({"sub": "u-3", "name": "x" * 500}, []).name == "x" * 200
