"""Request parsing rules shared by the protocol endpoints (oauth/requests.py): RFC 6749 §3.1
and §3.2 (a parameter sent twice is invalid_request; the token endpoint takes
application/x-www-form-urlencoded, not JSON) and RFC 9110 §15.5.6 (a wrong method is 405
with Allow, in the protocol's error shape, on the fast path and in the FastAPI app)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Site
from tests.e2e.oauth_world import (
    CALLBACK,
    World,
    expect_error,
    fresh,
)


class TestRepeatedParameters:
    """RFC 6749 §3.1, §3.2: parameters must not be included more than once."""

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


def test_a_wrong_method_on_a_protocol_endpoint_is_405_in_the_error_shape(
    sqlite_site: Site,
) -> None:
    """The FastAPI application answers as `pitpass serve`'s fast path does (e2e)."""
    response = sqlite_site.browser().get("/oauth2/token")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    body = response.json()
    assert (body["status"], body["error"]) == (405, "invalid_request")
    assert body["error_uri"].endswith("/book/errors.html#invalid_request")
    # Elsewhere a wrong method still gets the page a browser can show.
    page = sqlite_site.browser().put("/signin")
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")


class TestBodySize:
    """A protocol form is a few hundred bytes: a body over 16 KiB is refused, whether its
    length is declared or it streams without one, and nothing past the limit is kept."""

    def test_a_declared_large_body_is_refused(self, site: Site) -> None:
        response = site.browser().post(
            "/oauth2/token",
            content=b"grant_type=refresh_token&pad=" + b"a" * 20_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400
        assert response.json()["error_description"] == "the request body is too large"

    def test_a_streamed_large_body_is_refused(self, site: Site) -> None:
        def chunks() -> Iterator[bytes]:
            yield b"grant_type=refresh_token&pad="
            for _ in range(40):
                yield b"a" * 1024

        response = site.browser().post(
            "/oauth2/introspect",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400
        assert response.json()["error_description"] == "the request body is too large"

    def test_an_empty_body_is_an_empty_form(self, site: Site) -> None:
        response = site.browser().post("/oauth2/token")
        assert response.status_code == 400
        assert response.json()["error_description"] == "grant_type missing"
