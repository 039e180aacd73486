"""The password_limited grant (oauth/grants/password_limited.py, PRODUCT.md §4): only
members on the client's access list, the masked password, the per-client rate limit with
RateLimit-* headers and Retry-After (also shared by two processes:
tests/e2e/test_exactly_once.py)."""

from __future__ import annotations

from pitpass.core.masking import mask_secret
from tests.e2e.oauth_world import (
    NAMES,
    PASSWORD,
    World,
    expect_error,
    masked,
)


class TestPasswordLimited:
    def test_access_list_member_signs_in_with_rate_limit_headers(self, world: World) -> None:
        n = next(NAMES)
        email = f"Racer{n}@Example.com"
        world.member(email.lower())
        client_id, secret = world.client(
            f"Data Tool {n}", flows=("password_limited",), redirect_uris=()
        )
        form = {
            "grant_type": "password_limited",
            "client_id": client_id,
            "client_secret": masked(secret, client_id),
            "username": email,
            "password": mask_secret(PASSWORD, email),
            "scope": "iracing.auth",
        }
        refused = world.token(**form)
        expect_error(refused, "invalid_grant", 400)  # not on the access list yet
        world.allow(client_id, email.lower())
        ok = world.token(**form)
        assert ok.status_code == 200, ok.text
        assert ok.headers["RateLimit-Limit"] == "3"
        assert ok.headers["RateLimit-Remaining"] == "1"
        assert "refresh_token" in ok.json()
        over = world.token(**form)
        assert over.status_code == 200
        limited = world.token(**form)
        expect_error(limited, "unauthorized_client", 400)
        assert int(limited.headers["Retry-After"]) > 0
        assert limited.headers["RateLimit-Remaining"] == "0"
