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


def _grant_form(client_id: str, secret: str | None, email: str, password: str) -> dict[str, str]:
    return {
        "grant_type": "password_limited",
        "client_id": client_id,
        "client_secret": masked(secret, client_id),
        "username": email,
        "password": mask_secret(password, email),
    }


def _data_tool(world: World, n: int, suffix: str = "") -> tuple[str, str | None]:
    return world.client(f"Data Tool {n}{suffix}", flows=("password_limited",), redirect_uris=())


class TestWhoCanBeTriedAndLimited:
    """Issue #11, defect 10 (docs/decisions.md "password_limited: who can be tried, who can
    be limited")."""

    def test_a_client_cannot_test_the_password_of_a_member_off_its_list(self, world: World) -> None:
        n = next(NAMES)
        email = f"bystander{n}@example.com"
        world.member(email)
        client_id, secret = _data_tool(world, n)
        answers = [
            world.token(**_grant_form(client_id, secret, username, password))
            for username, password in (
                (email, PASSWORD),  # the right password
                (email, "not the password at all"),
                (f"nobody{n}@example.com", PASSWORD),  # no such account
            )
        ]
        assert {a.status_code for a in answers} == {400}
        assert len({a.text for a in answers}) == 1, [a.text for a in answers]
        assert answers[0].json()["error"] == "invalid_grant"

    def test_only_the_client_itself_spends_a_members_allowance(self, world: World) -> None:
        """The allowance is per client and username, and counts only after the client
        authenticated: no outsider, and no other client, can lock a member out of a client;
        the web sign-in has limits of its own."""
        n = next(NAMES)
        email = f"listed{n}@example.com"
        world.member(email)
        (first, first_secret), (second, second_secret) = (
            _data_tool(world, n),
            _data_tool(world, n, " B"),
        )
        for client_id in (first, second):
            world.allow(client_id, email)
        for _ in range(4):  # an outsider without the client's secret
            outsider = world.token(**_grant_form(second, "wrong secret", email, PASSWORD))
            assert outsider.status_code in (401, 403), outsider.text
            assert outsider.json()["error"] == "invalid_client"
        for _ in range(3):  # the first client spends its own allowance
            world.token(**_grant_form(first, first_secret, email, "not the password at all"))
        spent = world.token(**_grant_form(first, first_secret, email, PASSWORD))
        expect_error(spent, "unauthorized_client", 400)
        other = world.token(**_grant_form(second, second_secret, email, PASSWORD))
        assert other.status_code == 200, other.text
        assert other.headers["RateLimit-Remaining"] == "2"
        browser = world.browser()
        assert world.sign_in(browser, email).headers["location"] == "/account"
