"""Protocol edges reached in-process (a Site from tests/conftest.py): a client and a
member, a code minted straight into the table, and the token requests that use them."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from pitpass.core.masking import mask_secret
from pitpass.db.models import AuthorizationCode, utcnow
from pitpass.services import clients as clients_service
from tests.conftest import GOOD_PASSWORD, Site
from tests.support import Provisioner

CALLBACK = "https://app.example/cb"


def issue(site: Site) -> tuple[str, str, int]:
    """A server-side client and its masked secret, plus a member id."""
    site.add_member("staff@example.com", staff=True)
    member = site.add_member("ana@example.com")
    client_id, secret, _pk = new_client(site, "Edge Client", ["authorization_code"])
    return client_id, secret, member.id


def new_client(site: Site, name: str, flows: list[str]) -> tuple[str, str, int]:
    """A server-side client issued by staff@example.com: its id, masked secret and pk."""
    client_id, secret = Provisioner(site.context).client(
        "staff@example.com",
        name,
        "server-side",
        flows=flows,
        redirect_uris=[CALLBACK] if "authorization_code" in flows else [],
        developer_name="Dev",
    )
    assert secret
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        return client_id, mask_secret(secret, client_id), client.id


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


def password_limited(browser: TestClient, client_id: str, secret: str, email: str) -> Any:
    """The password_limited grant for `email`, with the tests' password masked."""
    return browser.post(
        "/oauth2/token",
        data={
            "grant_type": "password_limited",
            "client_id": client_id,
            "client_secret": secret,
            "username": email,
            "password": mask_secret(GOOD_PASSWORD, email),
        },
    )
