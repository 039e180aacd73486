"""POST /oauth2/revoke (oauth/revocation.py), RFC 7009 §2.1-§2.2: an unknown token is
200; revoking a refresh token signs its session out."""

from __future__ import annotations

import httpx

from tests.e2e.oauth_world import (
    World,
    fresh,
    masked,
    redeem,
)


class TestRFC7009:
    def test_revoking_a_refresh_token_signs_the_session_out(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id)["code"][0]
        tokens = redeem(world, client_id, secret, code).json()
        auth = {"client_id": client_id, "client_secret": masked(secret, client_id)}
        assert (
            httpx.post(f"{world.issuer}/revoke", data={"token": "unknown", **auth}).status_code
            == 200
        )
        revoked = httpx.post(
            f"{world.issuer}/revoke", data={"token": tokens["refresh_token"], **auth}
        )
        assert revoked.status_code == 200
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert world.browser().get("/oauth2/sessions", headers=bearer).status_code == 401
