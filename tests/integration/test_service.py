"""Cross-cutting behaviour: request ids, security headers, health, error pages, keys, schema."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from pitpass.db.engine import make_engine
from pitpass.db.migrate import alembic_config
from pitpass.db.models import Base, SigningKey
from pitpass.logs import configure_logging
from pitpass.services import keys, members
from pitpass.services.crypto import Keyring, SealError
from pitpass.storage import token_store
from tests.conftest import Site
from tests.support import free_port


def test_request_id_is_echoed_when_sane_and_minted_otherwise(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    echoed = browser.get("/healthz", headers={"x-request-id": "client-42.retry:1"})
    assert echoed.headers["x-request-id"] == "client-42.retry:1"
    for insane in ("a" * 200, "has spaces", "<script>", ""):
        minted = browser.get("/healthz", headers={"x-request-id": insane})
        assert minted.headers["x-request-id"] != insane
        assert len(minted.headers["x-request-id"]) == 36


def test_pages_forbid_framing_and_set_a_strict_csp(sqlite_site: Site) -> None:
    for path in ("/signin", "/signup"):
        response = sqlite_site.browser().get(path)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'self'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


def test_cookies_are_http_only_and_lax(sqlite_site: Site) -> None:
    sqlite_site.add_member("driver@example.com")
    browser = sqlite_site.browser()
    started = sqlite_site.start_sign_in(browser, "driver@example.com")
    cookie = started.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback


def test_cookies_are_secure_behind_https(site_factory: Any, sqlite_backend: Any) -> None:
    site = site_factory(sqlite_backend, issuer="https://auth.example.com/oauth2")
    response = site.browser().get("/signin")
    assert "Secure" in response.headers["set-cookie"]
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_health_and_readiness(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    assert browser.get("/healthz").json() == {"status": "ok"}
    assert browser.get("/readyz").json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_readiness_reports_an_unreachable_database(site_factory: Any, sqlite_backend: Any) -> None:
    site = site_factory(sqlite_backend)
    gone = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/gone")
    site.app.state.oauth.store = token_store(gone)
    response = site.browser().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable", "redis": "ok"}


def test_readiness_reports_an_unreachable_redis(site_factory: Any, sqlite_backend: Any) -> None:
    """Issue #11: /readyz said ready while Redis was down."""
    site = site_factory(sqlite_backend, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = site.browser().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "unreachable"}


def test_with_redis_down_sign_in_is_a_503_page_and_client_auth_failures_still_fail(
    site_factory: Any, sqlite_backend: Any
) -> None:
    """Issue #11: with Redis down, sign-in answered 500. Its throttles fail closed (a 503
    page); client-authentication failure counting fails open (the failure stays a failure)."""
    site = site_factory(sqlite_backend, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    site.add_member("ana@example.com")
    refused = site.start_sign_in(site.browser(), "ana@example.com")
    assert refused.status_code == 503
    assert "Temporarily unavailable" in refused.text
    token = site.browser().post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": "nobody"},
    )
    assert token.json()["error"] == "invalid_client"


def test_unknown_page_is_a_404_page(sqlite_site: Site) -> None:
    response = sqlite_site.browser().get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_an_unexpected_error_gives_a_500_page_with_the_request_id_and_no_trace(
    sqlite_site: Site,
) -> None:
    @sqlite_site.app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    response = TestClient(sqlite_site.app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.headers["x-request-id"] in response.text
    assert "internal detail" not in response.text
    assert "Traceback" not in response.text


def test_first_start_creates_one_sealed_signing_key(site: Site) -> None:
    with site.context.session() as db:
        records = list(db.scalars(select(SigningKey)))
    assert len(records) == 1
    record = records[0]
    assert record.public_jwk["kty"] == "EC" and record.public_jwk["crv"] == "P-256"
    assert "d" not in record.public_jwk
    private = keys.private_key(site.context.keyring, record)
    assert private.as_dict(private=True)["d"].encode() not in record.private_jwk_sealed
    with pytest.raises(SealError):
        keys.private_key(Keyring(b"another secret key entirely, 32+ chars"), record)


def test_rotation_retires_but_keeps_the_old_key(site: Site) -> None:
    with site.context.session() as db:
        old = keys.ensure_active_key(db, site.context.keyring)
        new, retired = keys.rotate(db, site.context.keyring, "test")
    assert retired == [old.kid]
    with site.context.session() as db:
        assert keys.active_key(db).kid == new.kid  # type: ignore[union-attr]
        assert len(keys.all_keys(db)) == 2


def test_migrations_build_exactly_the_models(site: Site) -> None:
    with site.context.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    head = ScriptDirectory.from_config(alembic_config(site.context.engine)).get_current_head()
    assert version == head


def test_json_logs_carry_the_request_id(
    sqlite_site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging()
    try:
        response = sqlite_site.browser().get("/healthz", headers={"x-request-id": "trace-me-123"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    access = [line for line in lines if line.get("logger") == "pitpass.access"]
    assert access and access[-1]["request_id"] == "trace-me-123"
    assert access[-1]["path"] == "/healthz"


def test_password_verifications_run_at_most_one_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of sign-ins must not run more argon2 verifications (64 MiB each) than cores."""
    inside, most, lock = 0, 0, threading.Lock()

    class SlowHasher:
        def verify(self, _stored: str, _password: str) -> bool:
            nonlocal inside, most
            with lock:
                inside += 1
                most = max(most, inside)
            threading.Event().wait(0.05)  # hold the slot while the others try to get in
            with lock:
                inside -= 1
            return True

    monkeypatch.setattr(members, "_hasher", SlowHasher())
    cpus = len(os.sched_getaffinity(0))
    threads = [
        threading.Thread(target=members.masked_password_matches, args=("stored", "masked"))
        for _ in range(cpus * 4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == cpus
