"""One session lifetime and one "is this session live" rule (core/policy.py): whatever a
client's token lifetimes, `/oauth2/sessions` lists a session exactly when introspection
calls its access token active, on both engines and for both grants that open sessions."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from pitpass.db.models import AccessListEntry, utcnow
from pitpass.services import clients as clients_service
from pitpass.services.members import find_by_email
from tests.conftest import Site
from tests.oauth.in_process import mint_code, new_client, password_limited, redeem

# Refresh lifetimes: none, shorter than the access token (600 s), the default.
LIFETIMES = {"Lifetime None": 0, "Lifetime Short": 60, "Lifetime Long": 604_800}


def _client_with_lifetime(site: Site, name: str, refresh_token_seconds: int) -> tuple[str, str]:
    """A client of both flows with this refresh lifetime, the racer on its access list."""
    client_id, secret, client_pk = new_client(
        site, name, ["authorization_code", "password_limited"]
    )
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        staff = find_by_email(db, "staff@example.com")
        racer = find_by_email(db, "racer@example.com")
        assert client is not None and staff is not None and racer is not None
        clients_service.set_lifetimes(
            db, client, staff, {"refresh_token_seconds": refresh_token_seconds}
        )
        db.add(
            AccessListEntry(
                client_pk=client_pk, member_id=racer.id, added_by_id=staff.id, accepted_at=utcnow()
            )
        )
    return client_id, secret


def _access_token(site: Site, grant: str, client_id: str, secret: str, member_id: int) -> str:
    browser = site.browser()
    if grant == "authorization_code":
        answer = redeem(browser, client_id, secret, mint_code(site, client_id, member_id))
    else:
        answer = password_limited(browser, client_id, secret, "racer@example.com")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.mark.parametrize("grant", ["authorization_code", "password_limited"])
def test_sessions_and_introspection_agree_for_every_lifetime(site: Site, grant: str) -> None:
    site.add_member("staff@example.com", staff=True)
    member_id = site.add_member("racer@example.com").id
    for name, refresh_token_seconds in LIFETIMES.items():
        client_id, secret = _client_with_lifetime(site, name, refresh_token_seconds)
        token = _access_token(site, grant, client_id, secret, member_id)
        session_id = jwt.decode(token, options={"verify_signature": False})["session_id"]
        browser = site.browser()
        listed: Any = browser.get("/oauth2/sessions", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200, listed.text
        form = {"client_id": client_id, "client_secret": secret, "token": token}
        introspected = browser.post("/oauth2/introspect", data=form).json()
        listed_ids = [view["session_id"] for view in listed.json()["sessions"]]
        assert (session_id in listed_ids) == introspected["active"], name
        # A freshly issued token's session is live: both say so.
        assert introspected["active"] is True, name
        # It lives at least as long as the access token (never ends before it).
        view = next(v for v in listed.json()["sessions"] if v["session_id"] == session_id)
        assert view["session_expiration"] >= introspected["exp"], name
