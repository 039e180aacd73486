"""GET/POST /oauth2/authorize (oauth/authorize.py): RFC 6749 §3.1 and §3.1.2 (never redirect
to an unknown client or URI; redirect URIs compared byte for byte, loopback ports per
RFC 8252 §7.3), §4.1.1 and §4.1.2.1 (errors after the client is known go back to it, with
`state` and RFC 9207 `iss`), consent and its CSRF token, `prompt=verify` (PRODUCT.md §5)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from pitpass.core.pkce import s256
from tests.e2e.oauth_world import (
    CALLBACK,
    VERIFIER,
    World,
    expect_error,
    fresh,
)


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

    @pytest.mark.parametrize("scope", ["iracing.auth", "openid iracing.auth"])
    def test_a_request_too_long_for_sign_in_is_answered_not_dropped(
        self, world: World, scope: str
    ) -> None:
        client_id, _s, _e, _signed_in = fresh(world)
        # Fits in the URL, not in the way back from sign-in once encoded again (core/paths).
        long = {"state": "s" * 1500, "nonce": "é" * 120} if "openid" in scope else {}
        answer = world.browser().get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"}
            | {"scope": scope, "state": "s" * 2000}
            | long,
        )
        assert answer.status_code in (302, 303), answer.text
        back = parse_qs(urlsplit(answer.headers["location"]).query)
        assert answer.headers["location"].startswith(CALLBACK)
        assert back["error"] == ["invalid_request"] and "too long" in back["error_description"][0]
        assert back["state"] == [long.get("state", "s" * 2000)]

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

    @pytest.mark.parametrize(
        "presented",
        [
            "http://127.0.0.1:1/cb#",
            "http://127.0.0.1:1/cb?",
            "HTTP://127.0.0.1:1/cb",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:1/cb\t",
        ],
    )
    def test_loopback_only_the_port_may_vary(self, world: World, presented: str) -> None:
        """RFC 8252 §7.3 lets the port vary and nothing else; a mismatch is an error page,
        never a redirect (RFC 6749 §4.1.2.1). The registered URI with a port still works."""
        registered = "http://127.0.0.1/cb"
        client_id, _s, _e, browser = fresh(world, client_type="native", redirect_uris=(registered,))
        pkce = {"code_challenge": s256(VERIFIER), "code_challenge_method": "S256"}
        refused = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": presented, "response_type": "code"}
            | pkce,
        )
        body = expect_error(refused, "invalid_request", 400)
        assert "redirect_uri" in str(body["error_description"])
        assert "location" not in refused.headers
        query = world.authorization_code(
            browser, client_id, redirect_uri="http://127.0.0.1:51234/cb", **pkce
        )
        assert "code" in query

    @pytest.mark.parametrize("state", ["%FF", "a%C3", "%ED%A0%80", "ok%80ok"])
    def test_a_state_that_is_not_utf8_is_refused_not_altered(
        self, world: World, state: str
    ) -> None:
        """`state` must come back exactly as sent (RFC 6749 §4.1.2), and bytes that are not
        UTF-8 cannot be: invalid_request, before anything is redirected."""
        client_id, _s, _e, browser = fresh(world)
        response = browser.get(
            f"/oauth2/authorize?client_id={client_id}&redirect_uri={quote(CALLBACK)}"
            f"&response_type=code&state={state}"
        )
        body = expect_error(response, "invalid_request", 400)
        assert "UTF-8" in str(body["error_description"])
        assert "location" not in response.headers

    def test_a_utf8_state_comes_back_exactly(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        state = "é✓ a+b&c=d %25"
        assert world.authorization_code(browser, client_id, state=state)["state"] == [state]

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


class TestPromptVerifyNeedsTheEmailedCode:
    """Issue #11, defect 7: only values the server signed prove the emailed code was typed
    for this request; a parameter an attacker adds to the URL or the consent form does not."""

    @staticmethod
    def verify_query(client_id: str, mark: str | None) -> dict[str, str]:
        query = {
            "client_id": client_id,
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "prompt": "verify",
        }
        return query | ({"pitpass_verified_after": mark} if mark is not None else {})

    @staticmethod
    def assert_sent_to_the_code(response: httpx.Response) -> None:
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith("/signin?") and "verify=1" in location
        assert "code=" not in location

    @pytest.mark.parametrize(
        "forged", ["0", "1", "99999999999", "", "-1", "abc", "IjEi.Zm9v.YmFy", "0 0"]
    )
    def test_forged_marks_in_the_url_get_no_code(self, world: World, forged: str) -> None:
        client_id, _s, email, browser = fresh(world)
        world.authorization_code(browser, client_id)  # consented, so a code would follow
        sent = world.mailbox.count_for(email)
        response = browser.get("/oauth2/authorize", params=self.verify_query(client_id, forged))
        self.assert_sent_to_the_code(response)
        assert world.mailbox.count_for(email) == sent  # nothing happened without the code

    def test_a_mark_for_another_client_gets_no_code(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        other_id, _o = world.client(f"Other Client {client_id}")
        other = browser.get("/oauth2/authorize", params=self.verify_query(other_id, None))
        other_mark = parse_qs(urlsplit(_next_of(other)).query)["pitpass_verified_after"][0]
        world.sign_in(browser, email, next_path=_next_of(other), verify=True)
        world.authorization_code(browser, client_id)
        response = browser.get("/oauth2/authorize", params=self.verify_query(client_id, other_mark))
        self.assert_sent_to_the_code(response)

    def test_forged_mark_in_the_consent_form_gets_no_code(self, world: World) -> None:
        client_id, _s, _e, browser = fresh(world)
        page = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"},
        )
        csrf = parse_qs(
            "csrf_token=" + page.text.split('name="csrf_token" value="')[1].split('"')[0]
        )["csrf_token"][0]
        for mark in (None, "0"):
            approved = browser.post(
                "/oauth2/authorize",
                data=self.verify_query(client_id, mark)
                | {"decision": "approve", "csrf_token": csrf},
            )
            self.assert_sent_to_the_code(approved)

    def test_a_remembered_browser_does_not_satisfy_prompt_verify(self, world: World) -> None:
        """A fresh web session opened by a remembered browser (no code typed) after the
        request began is not proof: the old rule compared only the session's time."""
        client_id, _s, email, browser = fresh(world)
        browser.cookies.delete("pitpass_session")
        world.sign_in(browser, email, remember=True)
        world.authorization_code(browser, client_id)
        first = browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        self.assert_sent_to_the_code(first)
        browser.cookies.delete("pitpass_session")  # the session ends; the browser stays known
        remembered = world.sign_in(browser, email, next_path=_next_of(first))
        assert remembered.headers["location"] == _next_of(first)  # no code was asked
        again = browser.get(remembered.headers["location"])
        self.assert_sent_to_the_code(again)

    def step_up_then_consent(self, world: World) -> tuple[Any, Any, str]:
        """A step-up done right: the emailed code, then consent, which yields a code.
        (The browser, the consent page, and where the code step sent the browser.)"""
        client_id, _s, email, browser = fresh(world)
        first = browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        signed_in = world.sign_in(browser, email, next_path=_next_of(first), verify=True)
        page = browser.get(signed_in.headers["location"])
        assert page.status_code == 200 and "decision" in page.text
        approved = world.consent(browser, page)
        assert approved.status_code == 302 and "code=" in approved.headers["location"]
        return browser, page, signed_in.headers["location"]

    def test_the_emailed_code_then_consent_still_gives_a_code(self, world: World) -> None:
        self.step_up_then_consent(world)

    # A mark is no secret: GET /authorize hands one to anybody, and old ones sit in the
    # browser's history. Only the emailed code typed for the mark's own request counts.

    @staticmethod
    def mark_of(response: httpx.Response) -> str:
        return parse_qs(urlsplit(_next_of(response)).query)["pitpass_verified_after"][0]

    def test_a_minted_mark_after_a_plain_code_sign_in_gets_no_code(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        world.authorization_code(browser, client_id)  # consented, so a code would follow
        browser.cookies.clear()  # an unattended browser, signed out
        minted = self.mark_of(
            browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        )
        world.sign_in(browser, email)  # the owner comes back and signs in with a code
        response = browser.get("/oauth2/authorize", params=self.verify_query(client_id, minted))
        self.assert_sent_to_the_code(response)

    def test_a_minted_mark_in_the_consent_form_gets_no_code(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        browser.cookies.clear()
        minted = self.mark_of(
            browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        )
        world.sign_in(browser, email)
        page = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"},
        )
        assert page.status_code == 200 and "decision" in page.text
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        approved = browser.post(
            "/oauth2/authorize",
            data=self.verify_query(client_id, minted) | {"decision": "approve", "csrf_token": csrf},
        )
        self.assert_sent_to_the_code(approved)

    def test_a_code_typed_for_another_request_does_not_count(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        world.authorization_code(browser, client_id)
        first = browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        second = browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        signed_in = world.sign_in(browser, email, next_path=_next_of(second), verify=True)
        response = browser.get(
            "/oauth2/authorize", params=self.verify_query(client_id, self.mark_of(first))
        )
        self.assert_sent_to_the_code(response)
        issued = browser.get(signed_in.headers["location"])  # its own request still works
        assert issued.status_code == 302 and "code=" in issued.headers["location"]

    def test_the_mark_of_a_finished_step_up_asks_for_a_new_code(self, world: World) -> None:
        client_id, _s, email, browser = fresh(world)
        world.authorization_code(browser, client_id)
        first = browser.get("/oauth2/authorize", params=self.verify_query(client_id, None))
        mark = self.mark_of(first)
        signed_in = world.sign_in(browser, email, next_path=_next_of(first), verify=True)
        issued = browser.get(signed_in.headers["location"])
        assert issued.status_code == 302 and "code=" in issued.headers["location"]
        replayed = browser.get("/oauth2/authorize", params=self.verify_query(client_id, mark))
        self.assert_sent_to_the_code(replayed)
        again = world.sign_in(browser, email, next_path=_next_of(replayed), verify=True)
        reissued = browser.get(again.headers["location"])  # a new code: a new authorization
        assert reissued.status_code == 302 and "code=" in reissued.headers["location"]

    def test_the_consent_post_ends_the_step_up_too(self, world: World) -> None:
        browser, page, after_code = self.step_up_then_consent(world)
        self.assert_sent_to_the_code(world.consent(browser, page))  # the form posted again
        self.assert_sent_to_the_code(browser.get(after_code))
