"""OpenID Connect with relying-party code nobody here wrote (issue #13, item 3, acceptance).

Authlib's `OAuth2Session` runs an OpenID Connect authorization code flow (PKCE, a nonce)
found through the server's discovery document, while Chromium signs in and consents on
the real pages; Authlib's own `jwt.decode` and `CodeIDToken` then validate the ID token
against the server's JWKS (signature, issuer, audience, `azp`, expiry, `nonce`,
`at_hash`), and the session calls `/userinfo`. A second request with `prompt=none`
comes back without a page.
"""

from __future__ import annotations

import re

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey
from authlib.jose import jwt as authlib_jwt
from authlib.oidc.core import CodeIDToken
from joserfc.errors import InvalidClaimError  # what Authlib 1.9's claims raise
from playwright.sync_api import Route

from pitpass.core.masking import mask_secret
from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
CALLBACK = "https://rp.example/callback"


def test_authlib_openid_connect_sign_in_in_chromium(stage: Stage) -> None:
    stage.add_member("staff@example.com", PASSWORD, staff=True)
    stage.add_member("ana@example.com", PASSWORD)
    client_id, secret = stage.server.provision.client(
        "staff@example.com",
        "Relying Party",
        "server-side",
        flows=("authorization_code",),
        redirect_uris=(CALLBACK,),
        developer_name="RP Inc.",
        developer_url="https://rp.example",
        developer_email="dev@rp.example",
    )
    assert secret is not None
    issuer = f"{stage.server.base_url}/oauth2"
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer

    session = OAuth2Session(
        client_id,
        client_secret=mask_secret(secret, client_id),  # masked, as PRODUCT.md §4 says
        scope="openid iracing.profile",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = session.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    page = stage.new_page()
    landed: list[str] = []

    def catch_callback(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, body="done")

    page.route(re.compile(r"^https://rp\.example/.*"), catch_callback)
    page.goto(url)
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(stage.mailbox.code_for("ana@example.com"))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=re.compile("Allow Relying Party")).wait_for()
    assert page.get_by_text("Know who you are: your customer id").is_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"^https://rp\.example/callback\?"))
    assert landed and f"state={state}" in landed[0]

    token = session.fetch_token(
        discovery["token_endpoint"], authorization_response=landed[0], code_verifier=verifier
    )
    assert token["scope"] == "iracing.profile openid"
    keys = JsonWebKey.import_key_set(httpx.get(discovery["jwks_uri"]).json())

    def id_token_claims(answer: dict[str, str], nonce: str, access_token: str) -> CodeIDToken:
        claims = authlib_jwt.decode(
            answer["id_token"],
            keys,
            claims_cls=CodeIDToken,
            claims_options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client_id},
            },
            claims_params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
        )
        claims.validate()
        return claims

    claims = id_token_claims(token, nonce, token["access_token"])
    assert claims.header["alg"] == "ES256" and claims.header["typ"] == "JWT"
    assert claims["sub"] == "100002" and claims["azp"] == client_id
    assert claims["nonce"] == nonce and "at_hash" in claims and "auth_time" in claims
    # The checks are real: another nonce, or another access token, fails them.
    with pytest.raises(InvalidClaimError, match="nonce"):
        id_token_claims(token, "another-nonce", token["access_token"])
    with pytest.raises(InvalidClaimError, match="at_hash"):
        id_token_claims(token, nonce, token["access_token"] + "x")

    userinfo = session.get(discovery["userinfo_endpoint"])
    assert userinfo.json() == {"sub": "100002", "name": "Ana", "iracing_cust_id": 100002}

    # Signed in and consented: prompt=none answers at once, without a page.
    silent_verifier, silent_nonce = generate_token(48), generate_token(20)
    silent_url, silent_state = session.create_authorization_url(
        discovery["authorization_endpoint"],
        code_verifier=silent_verifier,
        nonce=silent_nonce,
        prompt="none",
    )
    # Playwright does not route a redirect that follows a GET navigation, so the browser is
    # only seen leaving for the app's host (which does not exist here).
    back_at_the_app = re.compile(rf"^https://rp\.example/callback\?.*state={silent_state}")
    with page.expect_request(back_at_the_app) as caught:
        page.evaluate("url => window.location.assign(url)", silent_url)
    assert "code=" in caught.value.url
    assert caught.value.redirected_from is not None  # straight from /authorize: no page
    assert caught.value.redirected_from.url == silent_url
    silent = session.fetch_token(
        discovery["token_endpoint"],
        authorization_response=caught.value.url,
        code_verifier=silent_verifier,
    )
    assert id_token_claims(silent, silent_nonce, silent["access_token"])["sub"] == "100002"
