"""Interoperability with code nobody here wrote (issue #4, acceptance).

Authlib's `OAuth2Session` runs authorization code + PKCE and a refresh against
the running server while Chromium signs in and consents; PyJWT's `PyJWKClient`
verifies the access token through `/oauth2/jwks`.
"""

from __future__ import annotations

import re

import jwt
import pytest
from authlib.integrations.requests_client import OAuth2Session
from playwright.sync_api import Route, expect

from pitpass.core.masking import mask_secret
from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
CALLBACK = "https://app.example/callback"


def test_authlib_code_pkce_refresh_and_pyjwt_verification(stage: Stage) -> None:
    stage.add_member("staff@example.com", PASSWORD, staff=True)
    stage.add_member("ana@example.com", PASSWORD)
    client_id, secret = stage.server.provision.client(
        "staff@example.com",
        "Interop App",
        "server-side",
        flows=("authorization_code",),
        redirect_uris=(CALLBACK,),
        audiences=("data-server",),
        developer_name="Interop Inc.",
        developer_url="https://interop.example",
        developer_email="dev@interop.example",
    )
    assert secret is not None
    issuer = f"{stage.server.base_url}/oauth2"

    session = OAuth2Session(
        client_id,
        # Clients of the reference service send the secret masked (PRODUCT.md §4).
        client_secret=mask_secret(secret, client_id),
        scope="iracing.auth iracing.profile",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    verifier = "v" * 20 + "erifier-0123456789-abcdefghij"
    url, state = session.create_authorization_url(f"{issuer}/authorize", code_verifier=verifier)

    page = stage.new_page()
    landed: list[str] = []

    def catch_callback(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, body="done")

    page.route(re.compile(r"^https://app\.example/.*"), catch_callback)
    page.goto(url)
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(stage.mailbox.code_for("ana@example.com"))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=re.compile("Allow Interop App")).wait_for()
    assert page.get_by_text("Interop Inc.").is_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"^https://app\.example/callback\?"))
    assert landed and f"state={state}" in landed[0]

    token = session.fetch_token(
        f"{issuer}/token", authorization_response=landed[0], code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "iracing.auth iracing.profile"
    refreshed = session.refresh_token(f"{issuer}/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]

    jwks = jwt.PyJWKClient(f"{issuer}/jwks")
    access_token = refreshed["access_token"]
    signing_key = jwks.get_signing_key_from_jwt(access_token)
    claims = jwt.decode(
        access_token, signing_key.key, algorithms=["ES256"], audience=client_id, issuer=issuer
    )
    assert claims["iracing_cust_id"] == 100002
    assert claims["aud"] == [client_id, "data-server"]
    assert jwt.get_unverified_header(access_token)["typ"] == "at+jwt"
    profile = session.get(f"{issuer}/iracing/profile")
    assert profile.json() == {"iracing_name": "Ana", "iracing_cust_id": 100002}

    # The member sees the app on the account page and takes the grant back.
    page.unroute(re.compile(r"^https://app\.example/.*"))
    page.goto(f"{stage.server.base_url}/account/apps")
    app = page.locator("section.connected-app", has_text="Interop App")
    assert app.get_by_text("iracing.profile").count() == 1
    assert app.locator("table.sessions tbody tr").count() == 1
    app.get_by_role("button", name="Withdraw consent").click()
    page.get_by_role("heading", name="Withdraw consent from Interop App?").wait_for()
    page.get_by_role("button", name="Withdraw consent").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Consent withdrawn"))
    page.get_by_text("No app is connected to your account.").wait_for()
    assert session.get(f"{issuer}/iracing/profile").status_code == 401
