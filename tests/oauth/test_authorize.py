"""The protocol over real HTTP, grouped by the section of the spec each test holds us to.

One server process for the module; every test makes its own members and clients.
"""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from pitpass.core.masking import mask_secret
from pitpass.core.pkce import s256
from tests.e2e.oauth_world import CALLBACK, PASSWORD, World, claims_of, masked, running_world

VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
_names = itertools.count(1)
CHROME_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {"PITPASS_PASSWORD_LIMITED_RATE": "3/hour"}
    with running_world(tmp_path_factory.mktemp("protocol"), **env) as running:
        yield running


def fresh(world: World, **client: object) -> tuple[str, str | None, str, httpx.Client]:
    """A new member, signed in in a new browser, and a new client."""
    n = next(_names)
    email = f"member{n}@example.com"
    world.member(email)
    client_id, secret = world.client(f"Test Client {n}", **client)  # type: ignore[arg-type]
    browser = world.browser()
    world.sign_in(browser, email)
    return client_id, secret, email, browser


def redeem(
    world: World, client_id: str, secret: str | None, code: str, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": CALLBACK,
    } | extra
    if secret:
        form["client_secret"] = masked(secret, client_id)
    return world.token(**form)


def two_sessions_in_chrome(world: World) -> tuple[str, httpx.Client, list[Any]]:
    """A member signed in with Chrome on Linux who authorized a new client twice:
    (client_id, browser, the two token responses)."""
    client_id, secret, _e, browser = fresh(world)
    browser.headers["User-Agent"] = CHROME_ON_LINUX
    tokens = [
        redeem(
            world, client_id, secret, world.authorization_code(browser, client_id)["code"][0]
        ).json()
        for _ in range(2)
    ]
    return client_id, browser, tokens


def expect_error(response: httpx.Response, error: str, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert body["status"] == status
    assert body["error_uri"].endswith(f"/book/errors.html#{error}")
    assert body["error_description"]
    assert response.headers["x-request-id"]  # on every response, fast path included
    assert response.headers["cache-control"] == "no-store"
    return dict(body)


class TestMaskingVectors:
    """PRODUCT.md §4: both vectors; the token endpoint accepts exactly the masked form."""

    def test_vectors(self) -> None:
        assert (
            mask_secret("SuperSecret", "MyClient") == "CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo="
        )
        assert (
            mask_secret("MyPassWord", "CLunky@iracing.Com")
            == "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q="
        )

    def test_unmasked_secret_is_refused_and_basic_auth_works(self, world: World) -> None:
        client_id, secret, _email, browser = fresh(world)
        code = world.authorization_code(browser, client_id)["code"][0]
        plain = redeem(world, client_id, None, code, client_secret=secret or "")
        expect_error(plain, "invalid_client", 403)
        code = world.authorization_code(browser, client_id)["code"][0]
        credentials = f"{quote(client_id)}:{quote(masked(secret, client_id), safe='')}"
        basic = httpx.post(
            f"{world.issuer}/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
            headers={"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()},
        )
        assert basic.status_code == 200, basic.text


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
        expect_error(redeem(world, client_id, secret, code, **extra), "invalid_grant", 400)
        # One try per code: even the right verifier is refused afterwards.
        expect_error(
            redeem(world, client_id, secret, code, code_verifier=VERIFIER), "invalid_grant", 400
        )

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


class TestRFC6749Authorize:
    """§3.1.2 and §4.1.2.1: never redirect to an unknown client or URI."""

    @pytest.mark.parametrize(
        "presented",
        [
            "https://APP.example/callback",
            "https://app.example/callback/",
            "https://app.example/callback?x=1",
            "https://user@app.example/callback",
            "https://app.example/callback#f",
            "https://app.example:443/callback",
            "https://evil.example/callback",
            "http://app.example/callback",
        ],
    )
    def test_manipulated_redirect_uri_is_a_json_error(self, world: World, presented: str) -> None:
        client_id, _s, _e, browser = fresh(world)
        response = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": presented, "response_type": "code"},
        )
        body = expect_error(response, "invalid_request", 400)
        assert "redirect_uri" in str(body["error_description"])
        assert "location" not in response.headers

    def test_registered_query_must_match_byte_for_byte(self, world: World) -> None:
        registered = "https://app.example/cb?a=1&b=2"
        client_id, _s, _e, browser = fresh(world, redirect_uris=(registered,))
        reordered = browser.get(
            "/oauth2/authorize",
            params={
                "client_id": client_id,
                "redirect_uri": "https://app.example/cb?b=2&a=1",
                "response_type": "code",
            },
        )
        expect_error(reordered, "invalid_request", 400)
        query = world.authorization_code(browser, client_id, redirect_uri=registered)
        assert "code" in query and query["a"] == ["1"]

    def test_loopback_without_port_takes_any_port(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(
            world, client_type="native", redirect_uris=("http://127.0.0.1/cb",)
        )
        for port in ("51234", "8080"):
            response = browser.get(
                "/oauth2/authorize",
                params={
                    "client_id": client_id,
                    "redirect_uri": f"http://127.0.0.1:{port}/cb",
                    "response_type": "code",
                    "code_challenge": s256(VERIFIER),
                    "code_challenge_method": "S256",
                },
            )
            assert response.status_code in (200, 302), response.text

    def test_unknown_client_and_missing_parameters_are_json(self, world: World) -> None:
        browser = world.browser()
        expect_error(
            browser.get("/oauth2/authorize", params={"redirect_uri": CALLBACK}),
            "invalid_request",
            400,
        )
        expect_error(
            browser.get(
                "/oauth2/authorize",
                params={"client_id": "nope", "redirect_uri": CALLBACK, "response_type": "code"},
            ),
            "invalid_client",
            403,
        )

    def test_duplicate_parameters_are_invalid_request(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        response = browser.get(
            f"/oauth2/authorize?client_id={client_id}&redirect_uri={quote(CALLBACK)}"
            f"&response_type=code&state=a&state=b"
        )
        expect_error(response, "invalid_request", 400)
        token = httpx.post(
            f"{world.issuer}/token",
            content="grant_type=refresh_token&grant_type=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        expect_error(token, "invalid_request", 400)

    @pytest.mark.parametrize(
        ("params", "error"),
        [
            ({"response_type": "token"}, "unsupported_response_type"),
            ({"response_type": ""}, "invalid_request"),
            ({"scope": "iracing.auth admin"}, "invalid_scope"),
            ({"code_challenge_method": "S512", "code_challenge": VERIFIER}, "invalid_request"),
            ({"code_challenge": "short"}, "invalid_request"),
        ],
    )
    def test_errors_after_the_client_is_known_redirect(
        self, world: World, params: dict[str, str], error: str
    ) -> None:
        client_id, _s, _e, browser = fresh(world)
        query = {
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "state": "st",
        } | params
        response = browser.get("/oauth2/authorize", params=query)
        assert response.status_code == 302
        sent = parse_qs(urlsplit(response.headers["location"]).query)
        assert sent["error"] == [error]
        assert sent["state"] == ["st"]
        assert sent["error_uri"][0].endswith(f"#{error}")

    def test_denying_consent_is_access_denied(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        page = browser.get(
            "/oauth2/authorize",
            params={
                "client_id": client_id,
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "state": "q",
            },
        )
        assert "Dev Inc." in page.text and "https://dev.example" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        denied = world.consent(browser, page, decision="deny")
        sent = parse_qs(urlsplit(denied.headers["location"]).query)
        assert sent["error"] == ["access_denied"] and sent["state"] == ["q"]

    def test_consent_form_needs_its_csrf_token(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        page = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"},
        )
        forged = browser.post(
            "/oauth2/authorize",
            data={
                "client_id": client_id,
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "decision": "approve",
                "csrf_token": "0" * 64,
            },
        )
        assert forged.status_code == 403
        assert "location" not in forged.headers
        assert world.consent(browser, page).status_code == 302

    def test_consent_is_remembered(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        world.authorization_code(browser, client_id)
        again = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"},
        )
        assert again.status_code == 302 and "code=" in again.headers["location"]

    def test_sign_in_page_cannot_be_framed(self, world: World) -> None:
        page = world.browser().get("/signin")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"

    def test_prompt_verify_forces_the_emailed_code(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        response = browser.get(
            "/oauth2/authorize",
            params={
                "client_id": client_id,
                "redirect_uri": CALLBACK,
                "response_type": "code",
                "prompt": "verify",
            },
        )
        assert response.status_code == 303
        assert "verify=1" in response.headers["location"]
        sent = world.mailbox.count_for(email)
        signin = world.sign_in(browser, email, next_path=_next_of(response), verify=True)
        assert world.mailbox.count_for(email) == sent + 1
        back = browser.get(signin.headers["location"])
        assert back.status_code == 200 and "decision" in back.text  # consent, not sign-in again


def _next_of(response: httpx.Response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query)["next"][0]


class TestRFC6749Token:
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

    def test_refresh_is_single_use_and_reuse_revokes_the_session(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id)["code"][0]
        tokens = redeem(world, client_id, secret, code).json()
        auth = {"client_id": client_id, "client_secret": masked(secret, client_id)}
        rotated = world.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"], **auth
        )
        assert rotated.status_code == 200
        assert rotated.json()["refresh_token"] != tokens["refresh_token"]
        replay = world.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"], **auth
        )
        expect_error(replay, "invalid_grant", 400)
        # The legitimate newer token dies with the session (RFC 9700 §4.14).
        newer = world.token(
            grant_type="refresh_token", refresh_token=rotated.json()["refresh_token"], **auth
        )
        expect_error(newer, "invalid_grant", 400)

    def test_profile_only_grant_gets_no_refresh_token(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id, scope="iracing.profile")["code"][0]
        body = redeem(world, client_id, secret, code).json()
        assert "refresh_token" not in body and body["scope"] == "iracing.profile"

    @pytest.mark.parametrize(
        ("form", "error", "status"),
        [
            ({"grant_type": "client_credentials", "client_id": "x"}, "unsupported_grant_type", 400),
            ({"client_id": "x"}, "invalid_request", 400),
            (
                {
                    "grant_type": "refresh_token",
                    "client_id": "no-such-client",
                    "refresh_token": "x",
                },
                "invalid_client",
                403,
            ),
            ({"grant_type": "refresh_token", "refresh_token": "x"}, "invalid_request", 400),
        ],
    )
    def test_error_rows(self, world: World, form: dict[str, str], error: str, status: int) -> None:
        expect_error(world.token(**form), error, status)

    def test_wrong_secret_unknown_code_and_json_body(self, world: World) -> None:
        client_id, secret, _e, _b = fresh(world)
        expect_error(
            world.token(
                grant_type="authorization_code",
                client_id=client_id,
                client_secret=masked("wrong", client_id),
                code="x",
                redirect_uri=CALLBACK,
            ),
            "invalid_client",
            403,
        )
        expect_error(redeem(world, client_id, secret, "not-a-code"), "invalid_grant", 400)
        as_json = httpx.post(f"{world.issuer}/token", json={"grant_type": "refresh_token"})
        expect_error(as_json, "invalid_request", 400)

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


class TestPasswordLimited:
    def test_access_list_member_signs_in_with_rate_limit_headers(self, world: World) -> None:
        n = next(_names)
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


class TestRFC7662AndRFC7009:
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


class TestWrongMethod:
    """RFC 9110 §15.5.6 on the fast path of `pitpass serve`: 405 with Allow, never a 500."""

    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("GET", "/oauth2/token", "POST"),
            ("PUT", "/oauth2/introspect", "POST"),
            ("POST", "/oauth2/jwks", "GET, HEAD"),
        ],
    )
    def test_a_wrong_method_is_405_in_the_error_shape(
        self, world: World, method: str, path: str, allow: str
    ) -> None:
        response = world.browser().request(method, path)
        body = expect_error(response, "invalid_request", 405)
        assert body["status_reason"] == "Method Not Allowed"
        assert response.headers["allow"] == allow


class TestRFC8414:
    def test_metadata_at_both_paths_advertises_only_what_works(self, world: World) -> None:
        browser = world.browser()
        first = browser.get("/.well-known/oauth-authorization-server/oauth2").json()
        second = browser.get("/oauth2/.well-known/oauth-authorization-server").json()
        assert first == second
        assert first["issuer"] == world.issuer
        assert first["grant_types_supported"] == [
            "authorization_code",
            "refresh_token",
            "password_limited",
        ]
        assert first["code_challenge_methods_supported"] == ["plain", "S256"]
        assert "implicit" not in str(first)
        for endpoint in ("token_endpoint", "jwks_uri", "introspection_endpoint"):
            assert first[endpoint].startswith(world.issuer)


class TestConnectedApps:
    """The account page where members see and end what they granted (issue #4, item 6)."""

    def test_sign_out_a_session_and_withdraw_consent(self, world: World) -> None:
        client_id, browser, tokens = two_sessions_in_chrome(world)
        page = browser.get("/account/apps")
        assert page.status_code == 200
        assert page.text.count('/sign-out" class="inline"') >= 2
        assert "Chrome / Linux" in page.text
        first_session = claims_of(tokens[0]["access_token"])["session_id"]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        out = browser.post(
            f"/account/apps/sessions/{first_session}/sign-out", data={"csrf_token": csrf.group(1)}
        )
        assert out.status_code == 303
        first = {"Authorization": f"Bearer {tokens[0]['access_token']}"}
        second = {"Authorization": f"Bearer {tokens[1]['access_token']}"}
        assert world.browser().get("/oauth2/sessions", headers=first).status_code == 401
        assert world.browser().get("/oauth2/sessions", headers=second).status_code == 200
        withdrawn = browser.post(
            f"/account/apps/{client_id}/withdraw", data={"csrf_token": csrf.group(1)}
        )
        assert withdrawn.status_code == 303
        assert world.browser().get("/oauth2/sessions", headers=second).status_code == 401
        again = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"},
        )
        assert again.status_code == 200 and "decision" in again.text  # asks again
        forged = browser.post(f"/account/apps/{client_id}/withdraw", data={"csrf_token": "x" * 64})
        assert forged.status_code == 403
