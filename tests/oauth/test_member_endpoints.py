"""The reference's member endpoints (oauth/member_endpoints.py, oauth/bearer.py):
/oauth2/iracing/profile, /oauth2/sessions, /oauth2/revoke/sessions and /revoke/client
(PRODUCT.md §5), behind a Bearer token per RFC 6750 §3.1 (invalid_token 401,
insufficient_scope 403)."""

from __future__ import annotations

from tests.e2e.oauth_world import (
    World,
    claims_of,
    expect_error,
    fresh,
    redeem,
    two_sessions_in_chrome,
)


class TestRFC6750Bearer:
    """§3.1: the error codes of a protected resource."""

    def test_insufficient_scope_and_invalid_token(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id, scope="iracing.auth")["code"][0]
        token = redeem(world, client_id, secret, code).json()["access_token"]
        profile = world.browser().get(
            "/oauth2/iracing/profile", headers={"Authorization": f"Bearer {token}"}
        )
        expect_error(profile, "insufficient_scope", 403)
        bad = world.browser().get(
            "/oauth2/iracing/profile", headers={"Authorization": "Bearer abc.def.ghi"}
        )
        expect_error(bad, "invalid_token", 401)


class TestSessions:
    def test_sessions_fields_and_revocation(self, world: World) -> None:
        tokens = two_sessions_in_chrome(world)[2]
        bearer = {
            "Authorization": f"Bearer {tokens[0]['access_token']}",
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        }
        listed = world.browser().get("/oauth2/sessions", headers=bearer).json()["sessions"]
        assert len(listed) == 2
        one = listed[0]
        for field in (
            "session_id",
            "client_name",
            "client_developer_email",
            "scope_descriptions",
            "auth_time",
            "last_activity",
            "session_expiration",
            "first_country",
            "last_user_agent_browser",
            "impersonated",
        ):
            assert field in one
        assert one["first_country"] is None and one["impersonated"] is False
        other = claims_of(tokens[1]["access_token"])["session_id"]
        out = world.browser().post(
            "/oauth2/revoke/sessions", data={"session_ids": other}, headers=bearer
        )
        assert out.status_code == 200 and out.content == b""
        assert len(world.browser().get("/oauth2/sessions", headers=bearer).json()["sessions"]) == 1
        assert world.browser().post("/oauth2/revoke/client", headers=bearer).status_code == 200
        assert world.browser().get("/oauth2/sessions", headers=bearer).status_code == 401
