"""RFC 6750 §3 at every Bearer endpoint: a request without a usable Bearer token is 401
invalid_token with a `WWW-Authenticate` challenge whose error_description stays within
%x20-21 / %x23-5B / %x5D-7E, never a 500 (issue #11, defect 1)."""

from __future__ import annotations

import re

import pytest

from pitpass.core.policy import OAuthError
from pitpass.oauth.responses import header_safe, www_authenticate
from tests.e2e.oauth_world import World, expect_error

BEARER_ENDPOINTS = [
    ("GET", "/oauth2/iracing/profile"),
    ("GET", "/oauth2/sessions"),
    ("POST", "/oauth2/revoke/current"),
    ("POST", "/oauth2/revoke/sessions"),
    ("POST", "/oauth2/revoke/client"),
]
WRONG_AUTHORIZATIONS = [
    None,
    "Basic x",
    "Basic dXNlcjpwYXNz",
    "Bearer",
    "Bearer x",
    "Digest username=x",
    "bearer",
    "Token abc",
]
RFC6750_CHALLENGE = re.compile(
    r'Bearer error="invalid_token", error_description="[\x20\x21\x23-\x5b\x5d-\x7e]*"'
)


@pytest.mark.parametrize(("method", "path"), BEARER_ENDPOINTS)
def test_a_missing_or_foreign_authorization_is_a_401_challenge(
    world: World, method: str, path: str
) -> None:
    browser = world.browser()
    for authorization in WRONG_AUTHORIZATIONS:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = browser.request(method, path, headers=headers)
        body = expect_error(response, "invalid_token", 401)
        assert body["error_description"]
        assert RFC6750_CHALLENGE.fullmatch(response.headers["www-authenticate"]), (
            authorization,
            response.headers["www-authenticate"],
        )


def test_the_challenge_is_ascii_whatever_the_description() -> None:
    """One rule for every challenge: compatibility forms become ASCII, the rest is dropped."""
    assert header_safe('send it as Bearer … "quoted" \\ café\t\n') == (
        "send it as Bearer ... quoted  cafe"
    )
    challenge = www_authenticate(OAuthError("insufficient_scope", "needs «iracing.profile»"))
    assert (
        challenge == 'Bearer error="insufficient_scope", error_description="needs iracing.profile"'
    )
