"""`pitpass_kit.client` against a running Pitpass: the grants, the real rate limit, the
redirect checks on a real `/authorize`, and sign-out."""

from __future__ import annotations

import httpx
import pytest

from pitpass_kit.client import OAuthClient
from pitpass_kit.errors import InvalidClient, InvalidGrant, NotSignedIn, RateLimited, StateMismatch
from pitpass_kit.stores import MemoryTokenStore
from tests.e2e.oauth_world import CALLBACK, PASSWORD, World, claims_of, fresh


def kit_client(world: World, client_id: str, secret: str | None, **options: object) -> OAuthClient:
    return OAuthClient(world.issuer, client_id, secret, **options)  # type: ignore[arg-type]


def test_authorization_code_with_pkce_then_refresh_and_sign_out(world: World) -> None:
    client_id, secret, _email, browser = fresh(world)
    client = kit_client(world, client_id, secret, redirect_uri=CALLBACK, require_iss=True)
    request = client.authorization_request("iracing.auth iracing.profile")
    page = browser.get(request.url)
    back = world.consent(browser, page)
    assert back.status_code == 302
    callback = back.headers["location"]

    forged = callback.replace(f"state={request.state}", "state=someone-elses")
    with pytest.raises(StateMismatch):
        client.finish_authorization(request, forged)
    tokens = client.finish_authorization(request, callback)
    assert claims_of(tokens.access_token)["client_id"] == client_id
    assert tokens.scope == "iracing.auth iracing.profile"

    profile = httpx.get(f"{world.issuer}/iracing/profile", auth=client.auth())
    assert profile.status_code == 200 and "iracing_cust_id" in profile.json()
    refreshed = client.refresh(stale_access_token=tokens.access_token)
    assert refreshed.refresh_token != tokens.refresh_token

    client.sign_out()
    with pytest.raises(NotSignedIn):
        client.access_token()
    bearer = {"Authorization": f"Bearer {refreshed.access_token}"}
    # Revoking the refresh token ended the session: its access tokens stop working too.
    assert httpx.get(f"{world.issuer}/iracing/profile", headers=bearer).status_code == 401
    with pytest.raises(InvalidGrant):  # the code is spent: exactly once
        client.finish_authorization(request, callback)


def test_password_limited_and_its_real_rate_limit(world: World) -> None:
    email = "kit-password@example.com"
    world.member(email)
    client_id, secret = world.client("Kit Password Tool", flows=("password_limited",))
    world.allow(client_id, email)
    sent: list[httpx.Request] = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = kit_client(world, client_id, secret, store=MemoryTokenStore(), http=http)

    tokens = client.password_limited(f"  {email.upper()} ", PASSWORD, scope="iracing.auth")
    assert claims_of(tokens.access_token)["scope"] == "iracing.auth"
    assert client.access_token() == tokens.access_token
    # The shared server allows 3 an hour (tests/conftest.py): then a typed refusal.
    with pytest.raises(RateLimited) as limited:
        for _ in range(3):
            client.password_limited(email, PASSWORD)
    assert limited.value.status == 400 and limited.value.error == "unauthorized_client"
    assert limited.value.retry_after and limited.value.retry_after > 0
    asked = len(sent)
    with pytest.raises(RateLimited):
        client.password_limited(email, PASSWORD)
    assert len(sent) == asked  # refused locally: no blind retry into the limit


def test_a_wrong_secret_is_invalid_client(world: World) -> None:
    client_id, _secret = world.client("Kit Wrong Secret", flows=("password_limited",))
    with pytest.raises(InvalidClient) as refused:
        kit_client(world, client_id, "not the secret").password_limited("a@example.com", "pw")
    assert refused.value.status == 403 and refused.value.request_id
