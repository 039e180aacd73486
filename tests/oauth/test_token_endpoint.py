"""POST /oauth2/token dispatch (oauth/token_endpoint.py): RFC 6749 §5.2 error rows
(unsupported grant type, missing parameters, unknown client, wrong secret, unknown code,
a JSON body), 503 temporarily_unavailable when storage is unreachable and a JSON
server_error that hides internals (PRODUCT.md §7)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from pitpass.db.engine import make_engine
from pitpass.storage import token_store
from tests.conftest import Site
from tests.e2e.oauth_world import (
    CALLBACK,
    World,
    expect_error,
    fresh,
    masked,
    redeem,
)
from tests.oauth import in_process as here
from tests.support import free_port


class TestRFC6749TokenErrors:
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


def test_unreachable_storage_is_temporarily_unavailable(sqlite_site: Site) -> None:
    client_id, secret, _member = here.issue(sqlite_site)
    runtime = sqlite_site.app.state.oauth
    runtime.store = token_store(make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/gone"))
    response = here.refresh(sqlite_site.browser(), client_id, secret, "x")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.json()["status_reason"] == "Service Unavailable"


def test_unexpected_failure_is_a_json_server_error(sqlite_site: Site, monkeypatch: Any) -> None:
    from pitpass.oauth import token_endpoint

    def explode(*_args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setitem(token_endpoint.GRANTS, "refresh_token", explode)
    client_id, secret, _member = here.issue(sqlite_site)
    browser = TestClient(sqlite_site.app, raise_server_exceptions=False)
    response = here.refresh(browser, client_id, secret, "x")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "server_error" and body["status"] == 500
    assert "secret internals" not in response.text
    assert response.headers["x-request-id"] in body["error_description"]
