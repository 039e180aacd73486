"""HTTP edges of pages and the API (issue #11, defects 5 and 10): every 405 says what is
allowed (RFC 9110 §15.5.6), and a body past the limit is 413 in the route's own shape
(RFC 9110 §15.5.14) without being read whole."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pitpass.core import policy
from pitpass.core.client_names import MAX_NAME_LENGTH as MAX_CLIENT_NAME_LENGTH
from pitpass.core.redirect_uris import MAX_REDIRECT_URI_LENGTH, MAX_REDIRECT_URIS
from pitpass.middleware import MAX_BODY_BYTES
from pitpass.services.client_details import (
    MAX_DESCRIPTION_LENGTH,
    MAX_DEVELOPER_NAME_LENGTH,
    MAX_DEVELOPER_URL_LENGTH,
)
from pitpass.services.members import MAX_EMAIL_LENGTH
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


def test_the_openapi_schema_declares_what_the_services_enforce(sqlite_site: Site) -> None:
    """Enums and length limits in /openapi.json come from the services' own constants;
    a request past them gets the service's message for the field (one rule, one place)."""
    schema = sqlite_site.browser().get("/openapi.json").json()
    metadata = schema["components"]["schemas"]["ClientMetadata"]["properties"]
    assert metadata["client_type"]["enum"] == list(policy.CLIENT_TYPES)
    assert metadata["grant_types"]["items"]["enum"] == list(policy.CLIENT_FLOWS)
    assert metadata["client_name"]["maxLength"] == MAX_CLIENT_NAME_LENGTH
    assert metadata["description"]["maxLength"] == MAX_DESCRIPTION_LENGTH
    assert metadata["developer_name"]["maxLength"] == MAX_DEVELOPER_NAME_LENGTH
    assert metadata["client_uri"]["maxLength"] == MAX_DEVELOPER_URL_LENGTH
    assert metadata["contacts"]["items"]["maxLength"] == MAX_EMAIL_LENGTH
    assert metadata["contacts"]["maxItems"] == 1
    assert metadata["redirect_uris"]["maxItems"] == MAX_REDIRECT_URIS
    assert metadata["redirect_uris"]["items"]["maxLength"] == MAX_REDIRECT_URI_LENGTH


def test_a_request_past_a_declared_limit_gets_the_services_message(site: Site) -> None:
    site.add_member("dev@example.com")
    browser = site.browser()
    site.sign_in(browser, "dev@example.com")
    csrf = browser.get("/api/v1/me").json()["csrf_token"]
    response = browser.post(
        "/api/v1/requests",
        json={
            "client_name": "Long League",
            "client_type": "desktop",
            "grant_types": ["implicit"],
            "description": "d" * (MAX_DESCRIPTION_LENGTH + 1),
        },
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 400, response.text
    fields = {item["field"]: item["message"] for item in response.json()["fields"]}
    assert fields["client_type"].startswith("choose the client type")
    assert fields["grant_types"].startswith("unknown flow 'implicit'")
    assert (
        fields["description"] == f"keep the description under {MAX_DESCRIPTION_LENGTH} characters"
    )
