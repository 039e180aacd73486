"""OpenID Connect (issue #13, item 3) against a running server: the ID token and each of
its claims (Core §2, §3.1.3.6, §12.2), `prompt=none|login|consent` and `max_age`
(§3.1.2.1), refused parameters (§3.1.2.6, §6), `/userinfo` (§5.3, RFC 6750 errors) and
discovery (Discovery 1.0 §3, §4). Requests without `openid`: test_openid_unchanged.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from pitpass.core.masking import mask_secret
from pitpass.core.openid import at_hash
from pitpass.db.models import Member, WebSession, utcnow
from tests.e2e.oauth_world import (
    CALLBACK,
    NAMES,
    PASSWORD,
    World,
    claims_of,
    expect_error,
    fresh,
    masked,
    redeem,
)

NONCE = "n-0S6_WzA2Mj"


def authorize(browser: httpx.Client, client_id: str, **params: str) -> httpx.Response:
    """GET /authorize for an OpenID Connect request (scope `openid iracing.profile` unless
    given)."""
    query = {
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid iracing.profile",
        "state": "st-1",
    } | params
    return browser.get("/oauth2/authorize", params=query)


def sent_back(response: httpx.Response) -> dict[str, str]:
    """The parameters of a redirect to the client's redirect URI."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_of(world: World, browser: httpx.Client, client_id: str, **params: str) -> str:
    """Through /authorize (consenting if asked): the code."""
    response = authorize(browser, client_id, **params)
    if response.status_code == 200 and "decision" in response.text:
        response = world.consent(browser, response)
    return sent_back(response)["code"]


def verified_id_token(world: World, id_token: str, client_id: str) -> dict[str, Any]:
    """The ID token's claims once its signature is checked against the server's JWKS."""
    key = jwt.PyJWKClient(f"{world.issuer}/jwks").get_signing_key_from_jwt(id_token)
    claims: dict[str, Any] = jwt.decode(
        id_token, key.key, algorithms=["ES256"], audience=client_id, issuer=world.issuer
    )
    return claims


def tokens_for(world: World, scope: str = "openid iracing.profile", **params: str) -> Any:
    """A new member signs in, consents and the code is redeemed: (client_id, secret, email,
    browser, token response)."""
    client_id, secret, email, browser = fresh(world)
    code = code_of(world, browser, client_id, scope=scope, **params)
    response = redeem(world, client_id, secret, code)
    assert response.status_code == 200, response.text
    return client_id, secret, email, browser, response.json()


def _next_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return parse_qs(urlsplit(response.headers["location"]).query)["next"][0]


def backdate_sign_in(world: World, email: str, by: timedelta) -> None:
    """The member's web sessions say they signed in `by` earlier (for max_age)."""
    with world.server.provision.context.session() as db:
        member_id = db.scalar(select(Member.id).where(Member.email == email))
        db.execute(
            update(WebSession)
            .where(WebSession.member_id == member_id)
            .values(verified_at=utcnow() - by)
        )


class TestIdToken:
    def test_the_code_gives_a_signed_id_token_with_every_claim(self, world: World) -> None:
        client_id, _s, _e, _b, tokens = tokens_for(world, nonce=NONCE)
        assert list(tokens) == [
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "id_token",
        ]  # openid and iracing.profile are identity only: no refresh token
        assert tokens["scope"] == "iracing.profile openid"
        header = jwt.get_unverified_header(tokens["id_token"])
        assert header["typ"] == "JWT" and header["alg"] == "ES256"
        access = claims_of(tokens["access_token"])
        assert header["kid"] == jwt.get_unverified_header(tokens["access_token"])["kid"]
        claims = verified_id_token(world, tokens["id_token"], client_id)
        assert claims == {
            "iss": world.issuer,
            "sub": access["sub"],  # the customer id, as a string
            "aud": client_id,
            "azp": client_id,
            "exp": claims["iat"] + 600,
            "iat": claims["iat"],
            "auth_time": access["auth_time"],  # the sign-in's, as in the access token
            "nonce": NONCE,
            "at_hash": at_hash(tokens["access_token"]),
        }
        assert claims["sub"] == str(access["iracing_cust_id"])
        assert abs(claims["iat"] - access["iat"]) <= 1

    def test_without_a_nonce_the_id_token_has_none(self, world: World) -> None:
        client_id, _s, _e, _b, tokens = tokens_for(world)
        assert "nonce" not in verified_id_token(world, tokens["id_token"], client_id)

    def test_each_code_carries_its_own_requests_nonce_once(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        first = code_of(world, browser, client_id, nonce="first-nonce")
        second = code_of(world, browser, client_id, nonce="second-nonce")
        for code, nonce in ((second, "second-nonce"), (first, "first-nonce")):
            token = redeem(world, client_id, secret, code).json()["id_token"]
            assert verified_id_token(world, token, client_id)["nonce"] == nonce
        replay = redeem(world, client_id, secret, first)  # exactly once, as before
        expect_error(replay, "invalid_grant", 400)

    def test_a_refresh_gives_a_new_id_token_without_the_nonce(self, world: World) -> None:
        client_id, secret, _e, _b, tokens = tokens_for(
            world, scope="openid iracing.auth", nonce=NONCE
        )
        first = verified_id_token(world, tokens["id_token"], client_id)
        auth = {"client_id": client_id, "client_secret": masked(secret, client_id)}
        refreshed = world.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"], **auth
        ).json()
        assert list(refreshed)[-2:] == ["scope", "id_token"]
        claims = verified_id_token(world, refreshed["id_token"], client_id)
        assert "nonce" not in claims  # OpenID Connect Core §12.2
        assert claims["auth_time"] == first["auth_time"] and claims["sub"] == first["sub"]
        assert claims["at_hash"] == at_hash(refreshed["access_token"])
        narrowed = world.token(
            grant_type="refresh_token",
            refresh_token=refreshed["refresh_token"],
            scope="iracing.auth",
            **auth,
        ).json()
        assert narrowed["scope"] == "iracing.auth" and "id_token" not in narrowed

    def test_openid_alone_asks_for_nothing_else(self, world: World) -> None:
        _c, _s, _e, _b, tokens = tokens_for(world, scope="openid")
        assert tokens["scope"] == "openid" and "refresh_token" not in tokens
        assert claims_of(tokens["access_token"])["scope"] == "openid"

    def test_an_id_token_is_no_access_token(self, world: World) -> None:
        client_id, secret, _e, _b, tokens = tokens_for(world)
        as_bearer = {"Authorization": f"Bearer {tokens['id_token']}"}
        for path in ("/oauth2/userinfo", "/oauth2/iracing/profile"):
            expect_error(httpx.get(world.base + path, headers=as_bearer), "invalid_token", 401)
        introspected = httpx.post(
            f"{world.issuer}/introspect",
            data={
                "token": tokens["id_token"],
                "client_id": client_id,
                "client_secret": masked(secret, client_id),
            },
        )
        assert introspected.json() == {"active": False}

    def test_password_limited_refuses_openid(self, world: World) -> None:
        n = next(NAMES)
        email = f"oidc-pl{n}@example.com"
        world.member(email)
        client_id, secret = world.client(
            f"OIDC Tool {n}", flows=("password_limited",), redirect_uris=()
        )
        world.allow(client_id, email)
        refused = world.token(
            grant_type="password_limited",
            client_id=client_id,
            client_secret=masked(secret, client_id),
            username=email,
            password=mask_secret(PASSWORD, email),
            scope="openid iracing.auth",
        )
        body = expect_error(refused, "invalid_scope", 400)
        assert "through /authorize" in str(body["error_description"])


class TestAuthorizationRequest:
    @pytest.mark.parametrize(
        ("params", "error", "fragment"),
        [
            ({"prompt": "login\tconsent"}, "invalid_request", "not supported"),
            ({"nonce": "x" * 256}, "invalid_request", "longer than 255"),
            ({"max_age": "-1"}, "invalid_request", "max_age must be"),
            ({"max_age": "soon"}, "invalid_request", "max_age must be"),
            ({"prompt": "none login"}, "invalid_request", "cannot be combined"),
            ({"prompt": "select_account"}, "invalid_request", "not supported"),
            ({"request": "eyJ.e30."}, "request_not_supported", "request"),
            ({"request_uri": "https://app.example/r"}, "request_uri_not_supported", "request_uri"),
            ({"registration": "{}"}, "registration_not_supported", "registration"),
            ({"scope": "openid profile email"}, "invalid_scope", "unknown scope email"),
        ],
    )
    def test_bad_openid_parameters_go_back_to_the_client(
        self, world: World, params: dict[str, str], error: str, fragment: str
    ) -> None:
        client_id, _s, _e, browser = fresh(world)
        sent = sent_back(authorize(browser, client_id, **params))
        assert sent["error"] == error and fragment in sent["error_description"]
        assert sent["state"] == "st-1" and sent["iss"] == world.issuer
        assert sent["error_uri"] == f"{world.issuer}/book/errors.html#{error}"

    def test_the_consent_page_says_what_openid_shares(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        page = authorize(browser, client_id)
        assert page.status_code == 200
        words = "<li>Know who you are: your customer id "
        assert words + "<code>openid</code></li>" in page.text
        assert world.consent(browser, page).status_code == 302
        # The account page lists the app's scopes with the same words.
        assert words + "<code>openid</code></li>" in browser.get("/account/apps").text
        # Consent is per set of scopes: the same client without openid asks again.
        again = authorize(browser, client_id, scope="iracing.profile")
        assert again.status_code == 200 and "decision" in again.text


class TestPromptNone:
    def test_signed_out_is_login_required(self, world: World) -> None:
        client_id, _s, _e, _browser = fresh(world)
        sent = sent_back(authorize(world.browser(), client_id, prompt="none"))
        assert sent["error"] == "login_required"
        assert sent["state"] == "st-1" and sent["iss"] == world.issuer

    def test_no_consent_yet_is_consent_required(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        sent = sent_back(authorize(browser, client_id, prompt="none"))
        assert sent["error"] == "consent_required" and sent["state"] == "st-1"

    def test_signed_in_and_consented_gets_a_code_without_a_page(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code_of(world, browser, client_id)
        code = sent_back(authorize(browser, client_id, prompt="none", nonce=NONCE))["code"]
        tokens = redeem(world, client_id, secret, code).json()
        assert verified_id_token(world, tokens["id_token"], client_id)["nonce"] == NONCE

    def test_a_sign_in_older_than_max_age_is_login_required(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        code_of(world, browser, client_id)
        backdate_sign_in(world, email, timedelta(hours=2))
        sent = sent_back(authorize(browser, client_id, prompt="none", max_age="3600"))
        assert sent["error"] == "login_required"


class TestFreshSignIn:
    """prompt=login and max_age send a signed-in member to sign in again; only a sign-in
    done for this very request counts (services/fresh_verification.py)."""

    def test_prompt_login_asks_again_and_the_new_sign_in_is_the_auth_time(
        self, world: World
    ) -> None:
        client_id, secret, email, browser = fresh(world)
        code_of(world, browser, client_id)
        backdate_sign_in(world, email, timedelta(hours=2))
        asked = authorize(browser, client_id, prompt="login")
        location = asked.headers["location"]
        assert location.startswith("/signin?") and location.endswith("&again=1")
        assert "pitpass_signed_in_after" in _next_of(asked)
        page = browser.get(location)
        assert page.status_code == 200 and "asks you to sign in again" in page.text
        signed_in = world.sign_in(browser, email, next_path=_next_of(asked), again=True)
        code = sent_back(browser.get(signed_in.headers["location"]))["code"]
        claims = claims_of(redeem(world, client_id, secret, code).json()["id_token"])
        assert claims["auth_time"] >= int(utcnow().timestamp()) - 60

    def test_the_mark_works_once(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        code_of(world, browser, client_id)
        asked = authorize(browser, client_id, prompt="login")
        signed_in = world.sign_in(browser, email, next_path=_next_of(asked), again=True)
        sent_back(browser.get(signed_in.headers["location"]))  # a code
        replayed = browser.get(signed_in.headers["location"])
        assert replayed.status_code == 303 and "again=1" in replayed.headers["location"]

    def test_a_sign_in_not_done_for_the_request_does_not_count(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        code_of(world, browser, client_id)
        asked = authorize(browser, client_id, prompt="login")
        browser.cookies.delete("pitpass_session")
        world.sign_in(browser, email)  # a sign-in, but to the account page
        again = browser.get(_next_of(asked))
        assert again.status_code == 303 and "again=1" in again.headers["location"]

    def test_a_remembered_browser_signs_in_again_with_the_password(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        browser.cookies.delete("pitpass_session")
        world.sign_in(browser, email, remember=True)
        code_of(world, browser, client_id)
        asked = authorize(browser, client_id, prompt="login")
        sent = world.mailbox.count_for(email)
        signed_in = world.sign_in(browser, email, next_path=_next_of(asked), again=True)
        assert world.mailbox.count_for(email) == sent  # the password, no code
        assert "code" in sent_back(browser.get(signed_in.headers["location"]))

    def test_max_age_signs_in_again_only_past_it(self, world: World) -> None:
        client_id, secret, email, browser = fresh(world)
        code_of(world, browser, client_id)
        assert "code" in sent_back(authorize(browser, client_id, max_age="3600"))
        backdate_sign_in(world, email, timedelta(hours=2))
        asked = authorize(browser, client_id, max_age="3600")
        assert asked.status_code == 303 and asked.headers["location"].endswith("&again=1")
        signed_in = world.sign_in(browser, email, next_path=_next_of(asked), again=True)
        code = sent_back(browser.get(signed_in.headers["location"]))["code"]
        claims = claims_of(redeem(world, client_id, secret, code).json()["id_token"])
        assert claims["auth_time"] >= int(utcnow().timestamp()) - 60

    def test_max_age_zero_always_signs_in_again_and_does_not_loop(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        code_of(world, browser, client_id)
        asked = authorize(browser, client_id, max_age="0")
        assert asked.status_code == 303
        signed_in = world.sign_in(browser, email, next_path=_next_of(asked), again=True)
        assert "code" in sent_back(browser.get(signed_in.headers["location"]))

    def test_prompt_login_with_consent_still_needs_the_fresh_sign_in(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        asked = authorize(browser, client_id, prompt="login")
        signed_in = world.sign_in(browser, email, next_path=_next_of(asked), again=True)
        page = browser.get(signed_in.headers["location"])
        assert page.status_code == 200 and "pitpass_signed_in_after" in page.text
        assert "code" in sent_back(world.consent(browser, page))
        # The form posted again: its sign-in was spent by the code.
        assert world.consent(browser, page).status_code == 303


class TestPromptConsent:
    def test_consent_is_asked_even_when_given(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        code_of(world, browser, client_id)
        assert "code" in sent_back(authorize(browser, client_id))
        page = authorize(browser, client_id, prompt="consent")
        assert page.status_code == 200 and "decision" in page.text
        assert "code" in sent_back(world.consent(browser, page))
        denied = world.consent(browser, authorize(browser, client_id, prompt="consent"), "deny")
        assert sent_back(denied)["error"] == "access_denied"


class TestUserinfo:
    def test_get_and_post_answer_the_claims_of_the_scopes(self, world: World) -> None:
        _c, _s, email, _b, tokens = tokens_for(world)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        sub = claims_of(tokens["access_token"])["sub"]
        expected = {"sub": sub, "name": email.split("@")[0].title(), "iracing_cust_id": int(sub)}
        got = httpx.get(f"{world.issuer}/userinfo", headers=bearer)
        assert got.status_code == 200 and got.json() == expected
        assert got.headers["cache-control"] == "no-store"
        assert got.headers["content-type"] == "application/json"
        posted = httpx.post(f"{world.issuer}/userinfo", headers=bearer)
        assert posted.status_code == 200 and posted.json() == expected

    def test_openid_alone_gives_only_sub(self, world: World) -> None:
        _c, _s, _e, _b, tokens = tokens_for(world, scope="openid iracing.auth")
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        got = httpx.get(f"{world.issuer}/userinfo", headers=bearer).json()
        assert got == {"sub": claims_of(tokens["access_token"])["sub"]}

    @pytest.mark.parametrize(
        "authorization", [None, "Bearer", "Basic abc", "Bearer not.a.token", "Bearer x"]
    )
    def test_without_a_valid_token_it_is_invalid_token(
        self, world: World, authorization: str | None
    ) -> None:
        headers = {"Authorization": authorization} if authorization else {}
        response = httpx.get(f"{world.issuer}/userinfo", headers=headers)
        expect_error(response, "invalid_token", 401)
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')

    def test_a_token_without_openid_is_insufficient_scope(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = code_of(world, browser, client_id, scope="iracing.auth iracing.profile")
        access = redeem(world, client_id, secret, code).json()["access_token"]
        response = httpx.get(
            f"{world.issuer}/userinfo", headers={"Authorization": f"Bearer {access}"}
        )
        expect_error(response, "insufficient_scope", 403)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]

    def test_a_signed_out_session_is_invalid_token(self, world: World) -> None:
        _c, _s, _e, _b, tokens = tokens_for(world)
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert httpx.post(f"{world.issuer}/revoke/current", headers=bearer).status_code == 200
        expect_error(httpx.get(f"{world.issuer}/userinfo", headers=bearer), "invalid_token", 401)

    def test_another_method_is_405_in_the_error_shape(self, world: World) -> None:
        response = httpx.put(f"{world.issuer}/userinfo")
        assert response.status_code == 405
        assert response.json()["error"] == "invalid_request"
        assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}


class TestDiscovery:
    def test_the_openid_configuration_names_what_works(self, world: World) -> None:
        response = world.browser().get("/oauth2/.well-known/openid-configuration")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=300"
        document = response.json()
        rfc8414 = world.browser().get("/oauth2/.well-known/oauth-authorization-server").json()
        # Everything RFC 8414's document says, with `openid` among the scopes.
        assert {k: v for k, v in document.items() if k in rfc8414} == rfc8414 | {
            "scopes_supported": ["iracing.auth", "iracing.profile", "openid"]
        }
        assert document["issuer"] == world.issuer
        assert document["userinfo_endpoint"] == f"{world.issuer}/userinfo"
        assert document["subject_types_supported"] == ["public"]
        assert document["id_token_signing_alg_values_supported"] == ["ES256"]
        assert document["response_types_supported"] == ["code"]
        assert document["prompt_values_supported"] == ["none", "login", "consent", "verify"]
        assert set(document["claims_supported"]) >= {
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "name",
        }
        assert document["request_uri_parameter_supported"] is False
        # Each endpoint it names answers there.
        assert httpx.get(document["jwks_uri"]).json()["keys"]
        assert httpx.get(document["userinfo_endpoint"]).status_code == 401
        assert httpx.post(document["token_endpoint"]).status_code == 400
