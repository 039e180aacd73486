"""Client authentication (oauth/client_auth.py): RFC 6749 §2.3.1 (client_secret_post and
HTTP Basic with form-encoded credentials), the masked secret of PRODUCT.md §4 (both test
vectors; the plain secret is refused), and the throttle on failed authentication."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx

from pitpass.core.masking import mask_secret
from tests.e2e.oauth_world import (
    CALLBACK,
    World,
    expect_error,
    fresh,
    masked,
    redeem,
)
from tests.oauth import in_process as here


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


def test_failed_client_authentication_is_throttled(site_factory: Any, sqlite_backend: Any) -> None:
    site = site_factory(sqlite_backend, client_auth_failures_per_client="3/minute")
    client_id, secret, member_id = here.issue(site)
    browser = site.browser()
    for _ in range(3):
        response = here.refresh(browser, client_id, "wrong", "x")
        assert response.status_code == 403
    throttled = here.refresh(browser, client_id, "wrong", "x")
    assert throttled.json()["error"] == "invalid_client"
    assert "retry in" in throttled.json()["error_description"]
    assert int(throttled.headers["retry-after"]) > 0
    # The right secret is never kept waiting (only failures touch the limiter).
    good = here.redeem(browser, client_id, secret, here.mint_code(site, client_id, member_id))
    assert good.status_code == 200


def test_basic_credentials_that_are_not_base64_ascii_are_invalid_request(world: World) -> None:
    """Found by tests/fuzz: `Authorization: Basic` followed by non-ASCII bytes made
    base64.b64decode raise ValueError (not binascii.Error), a 500 on every database."""
    for credentials in (b"\xf1\xdc", "é:é".encode(), b"!!!"):
        response = world.browser().post(
            "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            headers={"Authorization": b"Basic " + credentials},
        )
        expect_error(response, "invalid_request", 400)
        assert response.json()["error_description"] == "malformed HTTP Basic credentials"


def test_the_limiters_of_the_token_endpoint_never_run_on_the_event_loop(
    site: Any, monkeypatch: Any
) -> None:
    """Review of issue #11: a limiter call waits on Redis (up to its timeout when Redis is
    frozen); on the event loop that stalls every request of the worker. Failed client
    authentication and password_limited count in a thread."""
    import asyncio

    from pitpass.services.ratelimit import Throttle

    on_loop: list[bool] = []

    def watched(method: Any) -> Any:
        def call(self: Throttle, *args: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop.append(True)
            except RuntimeError:
                on_loop.append(False)
            return method(self, *args)

        return call

    for name in ("count_failure", "retry_after", "take"):
        monkeypatch.setattr(Throttle, name, watched(getattr(Throttle, name)))
    client_id, _secret, _member_id = here.issue(site)
    limited_id, limited_secret, _pk = here.new_client(site, "Limited Tool", ["password_limited"])
    browser = site.browser()
    assert here.refresh(browser, client_id, "wrong", "x").json()["error"] == "invalid_client"
    here.password_limited(browser, limited_id, limited_secret, "ana@example.com")
    assert len(on_loop) >= 3 and not any(on_loop), on_loop
