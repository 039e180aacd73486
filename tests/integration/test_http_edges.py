"""HTTP edges of pages and the API (issue #11, defects 5 and 10): every 405 says what is
allowed (RFC 9110 §15.5.6), and a body past the limit is 413 in the route's own shape
(RFC 9110 §15.5.14) without being read whole."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pitpass.middleware import MAX_BODY_BYTES
from tests.conftest import Site

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_api_operation_answers_a_wrong_method_with_allow(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    paths = browser.get("/openapi.json").json()["paths"]
    checked = 0
    for path, operations in paths.items():
        documented = {method.upper() for method in operations}
        for method in METHODS:
            if method in documented:
                continue
            response = browser.request(method, _concrete(path))
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["allow"].split(", ")) - {"HEAD"} == documented, (
                method,
                path,
                response.headers.get("allow"),
            )
            assert response.json()["error"] == "method_not_allowed"
            checked += 1
    assert checked > 40


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("PUT", "/signin", "GET, POST"), ("DELETE", "/account", "GET"), ("GET", "/signout", "POST")],
)
def test_a_page_answers_a_wrong_method_with_allow(
    sqlite_site: Site, method: str, path: str, allow: str
) -> None:
    response = sqlite_site.browser().request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.headers["content-type"].startswith("text/html")


def _stream(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"a" * min(16 * 1024, total - sent)
        sent += len(chunk)
        yield chunk


class TestBodyLimit:
    """Pages and the API read at most MAX_BODY_BYTES (64 KiB); the protocol has 16 KiB."""

    @pytest.mark.parametrize("chunked", [False, True])
    def test_a_page_form_past_the_limit_is_a_413_page(
        self, sqlite_site: Site, chunked: bool
    ) -> None:
        body = b"email=" + b"a" * MAX_BODY_BYTES
        response = sqlite_site.browser().post(
            "/signin",
            content=_stream(len(body)) if chunked else body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/html")
        assert "Request too large" in response.text

    @pytest.mark.parametrize("chunked", [False, True])
    def test_an_api_body_past_the_limit_is_a_413_in_the_error_shape(
        self, sqlite_site: Site, chunked: bool
    ) -> None:
        body = b'{"client_name": "' + b"a" * MAX_BODY_BYTES + b'"}'
        response = sqlite_site.browser().post(
            "/api/v1/requests",
            content=_stream(len(body)) if chunked else body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json() == {
            "error": "request_too_large",
            "error_description": "the request body is larger than 64 KiB",
            "fields": [],
        }

    def test_a_body_within_the_limit_is_read(self, sqlite_site: Site) -> None:
        response = sqlite_site.browser().post(
            "/signin",
            content=b"email=" + b"a" * (MAX_BODY_BYTES - 100),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 403  # read whole, then refused for its missing CSRF
