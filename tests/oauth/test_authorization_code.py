"""The authorization_code grant (oauth/grants/authorization_code.py): RFC 6749 §4.1.3 and
§10.5 (a code is used once; a replay revokes what it issued), RFC 7636 (PKCE: plain is the
default method, no downgrade, public clients must send a challenge), scope and per-client
lifetimes in the token response (PRODUCT.md §4), and the whole flow once: code, refresh,
profile, sessions, revoke/current (the former smoke module)."""

from __future__ import annotations

import pytest

from pitpass.core.pkce import s256
from pitpass.services import clients as clients_service
from pitpass.services.errors import ServiceError
from pitpass.services.members import find_by_email
from tests.conftest import Site
from tests.e2e.oauth_world import (
    CALLBACK,
    NAMES,
    VERIFIER,
    World,
    claims_of,
    expect_error,
    fresh,
    masked,
    redeem,
)
from tests.oauth import in_process as here


def test_code_refresh_profile_sessions_revoke(world: World) -> None:
    """The whole protocol once, end to end over HTTP."""
    member = world.member(f"ana{next(NAMES)}@example.com", name="Ana")
    client_id, secret = world.client(f"League Manager {next(NAMES)}")
    browser = world.browser()
    world.sign_in(browser, member.email)
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
    assert claims["iracing_cust_id"] == member.customer_id
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    profile = world.browser().get("/oauth2/iracing/profile", headers=bearer)
    assert profile.json() == {"iracing_name": "Ana", "iracing_cust_id": member.customer_id}
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


class TestRFC7636PKCE:
    def test_appendix_b_vector(self) -> None:
        assert s256(VERIFIER) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

    def test_plain_is_the_default_method(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id, code_challenge=VERIFIER)["code"][0]
        assert redeem(world, client_id, secret, code, code_verifier=VERIFIER).status_code == 200

    @pytest.mark.parametrize(
        "case", ["missing verifier", "wrong verifier", "verifier without challenge"]
    )
    def test_downgrade_and_mismatch_fail(self, world: World, case: str) -> None:
        client_id, secret, _e, browser = fresh(world)
        params = (
            {}
            if case == "verifier without challenge"
            else {"code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}
        )
        code = world.authorization_code(browser, client_id, **params)["code"][0]
        extra = {
            "missing verifier": {},
            "wrong verifier": {"code_verifier": "x" * 43},
            "verifier without challenge": {"code_verifier": VERIFIER},
        }[case]
        first = redeem(world, client_id, secret, code, **extra)
        expect_error(first, "invalid_grant", 400)
        # The first answer says the code is spent, so nobody retries it hoping for better.
        assert first.json()["error_description"].endswith(
            "the code cannot be reused: start the sign-in again"
        )
        if case == "wrong verifier":
            assert "code_verifier does not match" in first.json()["error_description"]
        # One try per code: even the right verifier is refused afterwards, and the answer
        # says an earlier exchange may have failed rather than suggesting a double use.
        retry = redeem(world, client_id, secret, code, code_verifier=VERIFIER)
        expect_error(retry, "invalid_grant", 400)
        assert "an earlier exchange of it succeeded or failed" in retry.json()["error_description"]

    def test_public_clients_must_send_a_challenge(self, world: World) -> None:
        client_id, _secret, _e, browser = fresh(world, client_type="single-page-app")
        query = world.authorization_code(browser, client_id, state="s1")
        assert query["error"] == ["invalid_request"]
        assert query["state"] == ["s1"]
        code = world.authorization_code(
            browser, client_id, code_challenge=s256(VERIFIER), code_challenge_method="S256"
        )["code"][0]
        response = redeem(world, client_id, None, code, code_verifier=VERIFIER)
        assert response.status_code == 200, response.text


class TestRFC6749Code:
    """§4.1.3, §10.5: one use per code; scope of the response."""

    def test_code_replay_fails_and_revokes_the_first_tokens(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id)["code"][0]
        first = redeem(world, client_id, secret, code)
        assert first.status_code == 200
        expect_error(redeem(world, client_id, secret, code), "invalid_grant", 400)
        bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
        assert world.browser().get("/oauth2/sessions", headers=bearer).status_code == 401
        refresh = world.token(
            grant_type="refresh_token",
            client_id=client_id,
            client_secret=masked(secret, client_id),
            refresh_token=first.json()["refresh_token"],
        )
        expect_error(refresh, "invalid_grant", 400)

    def test_profile_only_grant_gets_no_refresh_token(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id, scope="iracing.profile")["code"][0]
        body = redeem(world, client_id, secret, code).json()
        assert "refresh_token" not in body and body["scope"] == "iracing.profile"


def test_per_client_lifetimes_reach_the_tokens(sqlite_site: Site) -> None:
    client_id, secret, member_id = here.issue(sqlite_site)
    with sqlite_site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        actor = find_by_email(db, "staff@example.com")
        assert client is not None and actor is not None
        with pytest.raises(ServiceError, match="between 10 and 86400"):
            clients_service.set_lifetimes(db, client, actor, {"access_token_seconds": 5})
        clients_service.set_lifetimes(
            db, client, actor, {"access_token_seconds": 120, "refresh_token_seconds": 0}
        )
    sqlite_site.app.state.oauth.store.forget_cached_clients()
    body = here.redeem(
        sqlite_site.browser(), client_id, secret, here.mint_code(sqlite_site, client_id, member_id)
    ).json()
    assert body["expires_in"] == 120
    assert "refresh_token" not in body
