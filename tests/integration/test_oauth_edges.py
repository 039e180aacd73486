"""Protocol edges best reached in-process: lifetimes, outages, key rotation, throttling,
refresh grace (on both engines: each has its own SQL for it)."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from pitpass.core.masking import mask_secret
from pitpass.db.engine import make_engine
from pitpass.db.models import AuthorizationCode, SigningKey, utcnow
from pitpass.oauth.store import token_store
from pitpass.services import clients as clients_service
from pitpass.services import keys
from pitpass.services.client_details import ClientDetails
from pitpass.services.errors import ServiceError
from pitpass.services.members import find_by_email
from tests.conftest import Site
from tests.support import free_port, run_cli, server_env

CALLBACK = "https://app.example/cb"


def issue(site: Site) -> tuple[str, str, int]:
    """A server-side client and its masked secret, plus a member id."""
    site.add_member("staff@example.com", staff=True)
    member = site.add_member("ana@example.com")
    client_id, secret, _pk = new_client(site, "Edge Client", ["authorization_code"])
    return client_id, secret, member.id


def new_client(site: Site, name: str, flows: list[str]) -> tuple[str, str, int]:
    """A server-side client issued by staff@example.com: its id, masked secret and pk."""
    with site.context.session() as db:
        staff = find_by_email(db, "staff@example.com")
        assert staff is not None
        issued = clients_service.create_client(
            site.context,
            db,
            ClientDetails(
                client_name=name,
                client_type="server-side",
                flows=flows,
                developer_name="Dev",
                developer_url="https://dev.example",
                developer_email="dev@example.com",
                redirect_uris=[CALLBACK] if "authorization_code" in flows else [],
            ),
            staff,
        )
        assert issued.secret
        client_id = issued.client.client_id
        return client_id, mask_secret(issued.secret, client_id), issued.client.id


def mint_code(site: Site, client_id: str, member_id: int) -> str:
    code = secrets.token_urlsafe(24)
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        db.add(
            AuthorizationCode(
                code_hash=site.app.state.oauth.code_hash(code),
                client_pk=client.id,
                member_id=member_id,
                session_id=str(uuid.uuid4()),
                redirect_uri=CALLBACK,
                scope="iracing.auth",
                auth_time=utcnow(),
                expires_at=utcnow() + timedelta(minutes=1),
            )
        )
    return code


def redeem(
    browser: TestClient, client_id: str, secret: str, code: str, redirect_uri: str = CALLBACK
) -> Any:
    return browser.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": secret,
            "code": code,
            "redirect_uri": redirect_uri,
        },
    )


def test_per_client_lifetimes_reach_the_tokens(sqlite_site: Site) -> None:
    client_id, secret, member_id = issue(sqlite_site)
    with sqlite_site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        actor = find_by_email(db, "staff@example.com")
        assert client is not None and actor is not None
        with pytest.raises(ServiceError, match="between 60 and 86400"):
            clients_service.set_lifetimes(db, client, actor, {"access_token_seconds": 5})
        clients_service.set_lifetimes(
            db, client, actor, {"access_token_seconds": 120, "refresh_token_seconds": 0}
        )
    sqlite_site.app.state.oauth.store.forget_cached_clients()
    body = redeem(
        sqlite_site.browser(), client_id, secret, mint_code(sqlite_site, client_id, member_id)
    ).json()
    assert body["expires_in"] == 120
    assert "refresh_token" not in body


def test_set_lifetimes_command(tmp_path: Any) -> None:
    env = server_env(tmp_path, {})
    assert run_cli(env, "db", "upgrade").returncode == 0
    run_cli(
        env,
        "members",
        "create",
        "--email",
        "s@example.com",
        "--name",
        "S",
        "--staff",
        stdin="a long enough password\n",
    )
    created = run_cli(
        env,
        "clients",
        "create",
        "--as",
        "s@example.com",
        "--name",
        "Life",
        "--type",
        "server-side",
        "--flow",
        "password_limited",
        "--developer-email",
        "d@example.com",
    )
    assert created.returncode == 0, created.stderr
    bad = run_cli(
        env,
        "clients",
        "set-lifetimes",
        "life",
        "--as",
        "s@example.com",
        "--refresh-grace-seconds",
        "999",
    )
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "pitpass: --refresh-grace-seconds: must be between 0 and 300 seconds"
    )
    ok = run_cli(
        env,
        "clients",
        "set-lifetimes",
        "life",
        "--as",
        "s@example.com",
        "--refresh-grace-seconds",
        "30",
    )
    assert ok.stdout.strip() == (
        "access_token_seconds 600, refresh_token_seconds 604800, refresh_grace_seconds 30"
    )


def test_unreachable_storage_is_temporarily_unavailable(sqlite_site: Site) -> None:
    client_id, secret, _member = issue(sqlite_site)
    runtime = sqlite_site.app.state.oauth
    runtime.store = token_store(make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/gone"))
    response = refresh(sqlite_site.browser(), client_id, secret, "x")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.json()["status_reason"] == "Service Unavailable"


def test_unexpected_failure_is_a_json_server_error(sqlite_site: Site, monkeypatch: Any) -> None:
    from pitpass.oauth import token

    def explode(*_args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setitem(token.GRANTS, "refresh_token", explode)
    client_id, secret, _member = issue(sqlite_site)
    browser = TestClient(sqlite_site.app, raise_server_exceptions=False)
    response = refresh(browser, client_id, secret, "x")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "server_error" and body["status"] == 500
    assert "secret internals" not in response.text
    assert response.headers["x-request-id"] in body["error_description"]


def test_retired_keys_stay_published_until_their_tokens_expire(sqlite_site: Site) -> None:
    client_id, secret, member_id = issue(sqlite_site)
    browser = sqlite_site.browser()
    old_token = redeem(browser, client_id, secret, mint_code(sqlite_site, client_id, member_id))
    with sqlite_site.context.session() as db:
        old = keys.active_key(db)
        assert old is not None
        keys.rotate(db, sqlite_site.context.keyring, "test")
    sqlite_site.app.state.oauth.signer.reload()
    kids = {k["kid"] for k in browser.get("/oauth2/jwks").json()["keys"]}
    assert old.kid in kids and len(kids) == 2
    bearer = {"Authorization": f"Bearer {old_token.json()['access_token']}"}
    assert browser.get("/oauth2/sessions", headers=bearer).status_code == 200
    with sqlite_site.context.session() as db:
        db.execute(
            update(SigningKey)
            .where(SigningKey.kid == old.kid)
            .values(retired_at=utcnow() - timedelta(hours=1))
        )
    kids = {k["kid"] for k in browser.get("/oauth2/jwks").json()["keys"]}
    assert old.kid not in kids and len(kids) == 1


def test_failed_client_authentication_is_throttled(site_factory: Any, sqlite_backend: Any) -> None:
    site = site_factory(sqlite_backend, client_auth_failures_per_client="3/minute")
    client_id, secret, member_id = issue(site)
    browser = site.browser()
    for _ in range(3):
        response = refresh(browser, client_id, "wrong", "x")
        assert response.status_code == 403
    throttled = refresh(browser, client_id, "wrong", "x")
    assert throttled.json()["error"] == "invalid_client"
    assert "retry in" in throttled.json()["error_description"]
    assert int(throttled.headers["retry-after"]) > 0
    # The right secret is never kept waiting (only failures touch the limiter).
    good = redeem(browser, client_id, secret, mint_code(site, client_id, member_id))
    assert good.status_code == 200


def refresh(browser: TestClient, client_id: str, secret: str, token: str, **extra: str) -> Any:
    return browser.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": token,
            **extra,
        },
    )


def test_a_racer_that_read_the_clock_first_gets_no_grace(site: Site) -> None:
    """Regression: with grace 0, a token used 'in the future' of this request is still reuse."""
    from pitpass.db.models import RefreshToken

    client_id, secret, member_id = issue(site)
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    with site.context.session() as db:
        db.execute(update(RefreshToken).values(used_at=utcnow() + timedelta(seconds=1)))
    assert refresh(browser, client_id, secret, tokens["refresh_token"]).status_code == 400


def test_grace_period_forgives_a_quick_retry(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        actor = find_by_email(db, "staff@example.com")
        assert client is not None and actor is not None
        clients_service.set_lifetimes(db, client, actor, {"refresh_grace_seconds": 30})
    site.app.state.oauth.store.forget_cached_clients()
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    first = refresh(browser, client_id, secret, tokens["refresh_token"])
    retry = refresh(browser, client_id, secret, tokens["refresh_token"])
    assert first.status_code == 200 and retry.status_code == 200
    assert refresh(browser, client_id, secret, first.json()["refresh_token"]).status_code == 200


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
