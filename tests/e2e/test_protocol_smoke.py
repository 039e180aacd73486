"""The whole protocol once, end to end over HTTP (details: test_rfc6749_*.py and friends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pitpass.core.pkce import s256
from tests.e2e.oauth_world import CALLBACK, World, claims_of, masked, running_world

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path) as running:
        yield running


def test_code_refresh_profile_sessions_revoke(world: World) -> None:
    world.member("ana@example.com")
    client_id, secret = world.client("League Manager")
    browser = world.browser()
    world.sign_in(browser, "ana@example.com")
    query = world.authorization_code(
        browser,
        client_id,
        state="xyz",
        scope="iracing.auth iracing.profile",
        code_challenge=s256(VERIFIER),
        code_challenge_method="S256",
    )
    assert query["state"] == ["xyz"]
    assert query["iss"] == [world.issuer]
    response = world.token(
        grant_type="authorization_code",
        client_id=client_id,
        client_secret=masked(secret, client_id),
        code=query["code"][0],
        redirect_uri=CALLBACK,
        code_verifier=VERIFIER,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["refresh_token_expires_in"] == 604800
    assert body["scope"] == "iracing.auth iracing.profile"
    claims = claims_of(body["access_token"])
    assert claims["aud"] == [client_id, "data-server"]
    assert claims["iracing_cust_id"] == 100002
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    profile = world.browser().get("/oauth2/iracing/profile", headers=bearer)
    assert profile.json() == {"iracing_name": "Ana", "iracing_cust_id": 100002}
    refreshed = world.token(
        grant_type="refresh_token",
        client_id=client_id,
        client_secret=masked(secret, client_id),
        refresh_token=body["refresh_token"],
    )
    assert refreshed.status_code == 200, refreshed.text
    sessions = world.browser().get("/oauth2/sessions", headers=bearer).json()["sessions"]
    assert len(sessions) == 1 and sessions[0]["current_session"] is True
    revoked = world.browser().post("/oauth2/revoke/current", headers=bearer)
    assert revoked.status_code == 200 and revoked.content == b""
    after = world.browser().get("/oauth2/iracing/profile", headers=bearer)
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_token"
    metadata = world.browser().get("/.well-known/oauth-authorization-server/oauth2").json()
    assert metadata["issuer"] == world.issuer
    assert world.browser().get("/oauth2/jwks").json()["keys"][0]["kid"]
