"""POST /oauth2/introspect (oauth/introspection.py), RFC 7662 §2: active access and
refresh tokens; a disabled client's tokens are inactive to everyone (PRODUCT.md §3)."""

from __future__ import annotations

import httpx

from tests.e2e.oauth_world import (
    World,
    fresh,
    masked,
    redeem,
)


class TestRFC7662:
    def test_introspection_and_disabled_client(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id)["code"][0]
        tokens = redeem(world, client_id, secret, code).json()
        auth = {"client_id": client_id, "client_secret": masked(secret, client_id)}
        active = httpx.post(
            f"{world.issuer}/introspect", data={"token": tokens["access_token"], **auth}
        )
        assert active.json()["active"] is True
        assert active.json()["client_id"] == client_id
        refresh = httpx.post(
            f"{world.issuer}/introspect", data={"token": tokens["refresh_token"], **auth}
        )
        assert refresh.json()["active"] is True
        world.disable(client_id)
        other_id, other_secret, _e2, _b2 = fresh(world)
        seen = httpx.post(
            f"{world.issuer}/introspect",
            data={
                "token": tokens["access_token"],
                "client_id": other_id,
                "client_secret": masked(other_secret, other_id),
            },
        )
        assert seen.json() == {"active": False}
