"""What a stranger can send gets a 4xx, never a 500, on SQLite and on PostgreSQL, which
refuses NUL characters and integers past int4 (issue #11, defect 6): a NUL in a protocol
parameter, a Basic credential, an email or a URL; non-ASCII or non-UTF-8 HTTP Basic
credentials; a row id outside 1..2^31-1 in a path."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from pitpass.http.row_ids import MAX_ROW_ID
from tests.conftest import Site
from tests.oauth.in_process import CALLBACK, issue, new_client

FORM = {"content-type": "application/x-www-form-urlencoded"}


def expect_protocol_error(response: object, error: str, status: int = 400) -> dict[str, object]:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", response)
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["error"] == error, body
    return body


def basic(raw: bytes) -> dict[str, bytes]:
    return {"authorization": b"Basic " + base64.b64encode(raw)}


class TestProtocolParameters:
    @pytest.mark.parametrize("endpoint", ["token", "introspect", "revoke"])
    def test_a_nul_in_a_parameter_is_invalid_request(self, site: Site, endpoint: str) -> None:
        client_id, secret, _member = issue(site)
        browser = site.browser()
        for body in (
            "grant_type=refresh_token&refresh_token=x&token=x&client_id=%00",
            f"grant_type=refresh_token&refresh_token=x&token=x&client_id={client_id}%00",
            f"grant_type=refresh_token&token=x%00&refresh_token=x%00&client_id={client_id}"
            f"&client_secret={secret}",
        ):
            response = browser.post(f"/oauth2/{endpoint}", content=body, headers=FORM)
            described = expect_protocol_error(response, "invalid_request")
            assert "NUL" in str(described["error_description"])

    def test_percent_escapes_that_are_not_utf8_are_invalid_request(self, sqlite_site: Site) -> None:
        """Refused rather than read as U+FFFD: no value is silently altered."""
        for endpoint in ("token", "introspect", "revoke"):
            response = sqlite_site.browser().post(
                f"/oauth2/{endpoint}",
                content="grant_type=refresh_token&token=x&client_id=%FF%FE",
                headers=FORM,
            )
            described = expect_protocol_error(response, "invalid_request")
            assert "UTF-8" in str(described["error_description"])

    def test_a_nul_in_a_password_limited_username(self, site: Site) -> None:
        site.add_member("staff@example.com", staff=True)
        client_id, secret, _pk = new_client(site, "Headless", ["password_limited"])
        response = site.browser().post(
            "/oauth2/token",
            data={
                "grant_type": "password_limited",
                "client_id": client_id,
                "client_secret": secret,
                "username": "ana\x00@example.com",
                "password": "x",
            },
        )
        expect_protocol_error(response, "invalid_request")

    def test_authorize_refuses_a_nul_without_redirecting(self, site: Site) -> None:
        client_id, _secret, _member = issue(site)
        browser = site.browser()
        for query in (
            {"client_id": "\x00", "redirect_uri": CALLBACK, "response_type": "code"},
            {"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code\x00"},
        ):
            response = browser.get("/oauth2/authorize", params=query)
            expect_protocol_error(response, "invalid_request")
            assert "location" not in response.headers
        consent = browser.post(
            "/oauth2/authorize",
            data={"client_id": f"{client_id}\x00", "redirect_uri": CALLBACK},
        )
        assert consent.status_code in (400, 403), consent.text


class TestHttpBasic:
    @pytest.mark.parametrize(
        "authorization",
        [
            "Basic é".encode("latin-1"),
            b"Basic \xff\xfe",
            basic(b"\xff\xfe:secret")["authorization"],
            basic(b"%FF%FE:secret")["authorization"],
            basic(b"%00:secret")["authorization"],
            basic(b"client:%00")["authorization"],
            basic("clïent:sécret".encode("latin-1"))["authorization"],
        ],
    )
    def test_odd_credentials_are_malformed(self, site: Site, authorization: bytes) -> None:
        for endpoint in ("token", "introspect", "revoke"):
            response = site.browser().post(
                f"/oauth2/{endpoint}",
                content=b"grant_type=refresh_token&refresh_token=x&token=x",
                headers={**FORM, "authorization": authorization},  # type: ignore[dict-item]
            )
            expect_protocol_error(response, "invalid_request")

    def test_non_ascii_utf8_credentials_are_an_unknown_client(self, site: Site) -> None:
        """Well-formed UTF-8 that names no client is the usual invalid_client."""
        response = site.browser().post(
            "/oauth2/token",
            content=b"grant_type=refresh_token&refresh_token=x",
            headers={**FORM, **basic("clïent:sécret".encode())},  # type: ignore[dict-item]
        )
        expect_protocol_error(response, "invalid_client", 403)


class TestEmails:
    def test_sign_in_with_a_nul_in_the_email(self, site: Site) -> None:
        site.add_member("ana@example.com")
        response = site.start_sign_in(site.browser(), "ana\x00@example.com")
        assert response.status_code in (200, 400), response.text
        assert "/signin/code" not in response.headers.get("location", "")

    def test_sign_up_with_a_nul_in_the_email(self, site: Site) -> None:
        browser = site.browser()
        response = site.submit(
            browser,
            "/signup",
            "/signup",
            email="new\x00@example.com",
            display_name="New Driver",
            password="a sturdy test password",
            password_again="a sturdy test password",
        )
        assert response.status_code == 400, response.text
        assert "the request body contains a NUL character" in response.text

    def test_the_api_refuses_a_nul_in_a_contact(self, site: Site) -> None:
        site.add_member("dev@example.com")
        browser = site.browser()
        site.sign_in(browser, "dev@example.com")
        csrf = browser.get("/api/v1/me").json()["csrf_token"]
        response = browser.post(
            "/api/v1/requests",
            json={
                "client_name": "Nul League",
                "client_type": "server-side",
                "grant_types": ["authorization_code"],
                "developer_name": "Nul Inc.",
                "client_uri": "https://nul.example",
                "contacts": ["dev\x00@example.com"],
                "redirect_uris": ["https://nul.example/cb"],
                "audiences": ["data-server"],
            },
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status_code == 400, response.text


def test_urls_with_a_nul_or_an_id_out_of_range(site: Site) -> None:
    """One signed-in staff member (a sign-in is the slow part) tries every kind of URL."""
    site.add_member("staff@example.com", staff=True)
    client_id, _secret, _pk = new_client(site, "Headless", ["password_limited"])
    browser = site.browser()
    site.sign_in(browser, "staff@example.com")
    csrf = browser.get("/api/v1/me").json()["csrf_token"]

    # A NUL anywhere in a path or query: 400, JSON under /api/ and the issuer, else a page.
    for path in (
        "/portal/clients/%00",
        "/console/clients/a%00b",
        "/api/v1/clients/%00",
        "/api/v1/staff/requests?status=%00",
        "/oauth2/authorize?client_id=%00",
    ):
        response = browser.get(path)
        assert response.status_code == 400, (path, response.text)
        if path.startswith(("/api/", "/oauth2/")):
            assert response.json()["error"] == "invalid_request"

    # Row ids outside 1..2^31-1 (PostgreSQL integer) name no page: 404, never a query.
    for row in (MAX_ROW_ID + 1, 2**63, 0, "01"):
        for method, path in [
            ("GET", f"/api/v1/requests/{row}"),
            ("PUT", f"/api/v1/requests/{row}"),
            ("POST", f"/api/v1/requests/{row}/withdraw"),
            ("GET", f"/api/v1/staff/requests/{row}"),
            ("POST", f"/api/v1/staff/requests/{row}/approve"),
            ("GET", f"/portal/requests/{row}"),
            ("POST", f"/portal/requests/{row}/withdraw"),
            ("GET", f"/console/requests/{row}"),
            ("POST", f"/console/requests/{row}/approve"),
            ("POST", f"/account/access/{row}/accept"),
        ]:
            response = _send(browser, method, path, csrf)
            assert response.status_code == 404, (method, path, response.text)
    largest = browser.get(f"/api/v1/requests/{MAX_ROW_ID}")
    assert largest.status_code == 404 and largest.json()["error"] == "not_found"

    # A customer id past bigint names nobody.
    huge = str(2**64)
    headers = {"X-CSRF-Token": csrf}
    added = browser.post(
        f"/api/v1/staff/clients/{client_id}/access-list", json={"member": huge}, headers=headers
    )
    assert 400 <= added.status_code < 500, added.text
    removed = browser.delete(
        f"/api/v1/staff/clients/{client_id}/access-list/{huge}", headers=headers
    )
    assert 400 <= removed.status_code < 500, removed.text


def _send(browser: TestClient, method: str, path: str, csrf: str) -> object:
    if method == "GET":
        return browser.get(path)
    if path.startswith("/api/"):
        return browser.request(method, path, json={}, headers={"X-CSRF-Token": csrf})
    return browser.request(method, path, data={"csrf_token": csrf})
