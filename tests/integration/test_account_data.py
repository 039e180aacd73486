"""Download my data and delete my account (issue #12, item 2)."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from pitpass.db.models import (
    AuditEvent,
    Client,
    Member,
    OAuthSession,
    RefreshToken,
    RegistrationRequest,
)
from pitpass.services import members
from pitpass.services.signin import BAD_CREDENTIALS
from tests.conftest import GOOD_PASSWORD, Site
from tests.integration.test_api import LEAGUE, Api
from tests.oauth.in_process import mint_code, new_client, redeem, refresh
from tests.support import Provisioner

EMAIL = "driver@example.com"
PROOF = re.compile(r'name="proof" value="([^"]+)"')


def signed_in(site: Site) -> TestClient:
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    return browser


def tokens_of_member(site: Site, browser: TestClient, member_id: int) -> tuple[str, str, dict]:  # type: ignore[type-arg]
    """An app's client id, masked secret and tokens for the member (code minted in place)."""
    client_id, secret, _pk = new_client(site, "Someone Else's App", ["authorization_code"])
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    assert "access_token" in tokens, tokens
    return client_id, secret, tokens


def test_download_my_data_is_a_json_attachment_without_secrets(site: Site) -> None:
    site.add_member(EMAIL, name="Jo Racer")
    browser = signed_in(site)
    assert site.browser().get("/account/data").status_code == 303  # signed out: sign in first
    download = browser.get("/account/data")
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment; filename=")
    assert download.headers["content-type"].startswith("application/json")
    data = json.loads(download.text)
    assert data["profile"]["email"] == EMAIL and data["profile"]["display_name"] == "Jo Racer"
    assert len(data["web_sessions"]) == 1 and data["web_sessions"][0]["signed_out_at"] is None
    assert {"app_sessions", "consents", "clients", "requests", "audit_events"} <= data.keys()
    assert any(e["action"] == "signin.succeeded" for e in data["audit_events"])
    for secret_word in ("password", "hash", "$argon2", "sealed", "token"):
        assert secret_word not in download.text, secret_word
    with site.context.session() as db:
        actions = list(db.scalars(select(AuditEvent.action)))
    assert "account.data_downloaded" in actions


def test_a_wrong_password_deletes_nothing(site: Site) -> None:
    site.add_member(EMAIL)
    browser = signed_in(site)
    refused = site.submit(browser, "/account/delete", "/account/delete", password="not mine!!")
    assert refused.status_code == 400
    assert 'id="password-error"' in refused.text and 'aria-invalid="true"' in refused.text
    empty = site.submit(browser, "/account/delete", "/account/delete", password="")
    assert empty.status_code == 400 and "Enter your password." in empty.text
    forged = site.submit(
        browser, "/account/delete", "/account/delete", confirmed="yes", proof="forged"
    )
    assert forged.status_code == 400 and "Enter your password again." in forged.text
    assert browser.get("/account").status_code == 200
    with site.context.session() as db:
        member = members.find_by_email(db, EMAIL)
        assert member is not None and member.deleted_at is None and not member.is_disabled


def test_deleting_the_account_ends_everything_and_pseudonymises(site: Site) -> None:
    site.add_member("staff@example.com", staff=True)
    member = site.add_member(EMAIL, name="Jo Racer")
    owned, _secret = Provisioner(site.context).client(
        "staff@example.com",
        "Jo's Telemetry",
        redirect_uris=("https://jo.example/cb",),
        developer_email=EMAIL,
    )
    browser = signed_in(site)
    app_id, app_secret, tokens = tokens_of_member(site, browser, member.id)
    assert Api(browser).post("/requests", LEAGUE).status_code == 201  # waits for staff

    site.start_sign_in(site.browser(), EMAIL, "a wrong password")  # audited by address only
    page = browser.get("/account/delete")
    assert "Jo&#39;s Telemetry" in page.text
    asked = site.submit(browser, "/account/delete", "/account/delete", password=GOOD_PASSWORD)
    assert asked.status_code == 200 and "Delete your account for good?" in asked.text
    assert "Jo&#39;s Telemetry will be disabled" in asked.text
    assert browser.get("/account").status_code == 200  # nothing happened yet
    proof = PROOF.search(asked.text).group(1)  # type: ignore[union-attr]
    done = site.submit(browser, "/account/delete", "/account/delete", confirmed="yes", proof=proof)
    assert done.status_code == 303 and done.headers["location"] == "/signin?done=account-deleted"

    assert browser.get("/account").status_code == 303  # signed out
    gone = site.start_sign_in(site.browser(), EMAIL)
    assert gone.status_code == 400 and BAD_CREDENTIALS in gone.text
    introspected = browser.post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"], "client_id": app_id, "client_secret": app_secret},
    )
    assert introspected.json() == {"active": False}
    assert refresh(browser, app_id, app_secret, tokens["refresh_token"]).status_code == 400
    mail = site.mailbox.wait_for_match(EMAIL, r"account was deleted")
    assert mail

    alias = f"deleted-{member.id}@deleted.invalid"
    with site.context.session() as db:
        row = db.get(Member, member.id)
        assert row is not None
        assert (row.email, row.display_name, row.is_disabled) == (alias, "Deleted member", True)
        assert row.deleted_at is not None and row.totp_secret_sealed is None
        assert not members.verify_password(row, alias, GOOD_PASSWORD)
        actors = set(
            db.scalars(select(AuditEvent.actor).where(AuditEvent.actor_member_id == member.id))
        )
        assert actors == {alias}
        deleted = db.scalar(select(AuditEvent.id).where(AuditEvent.action == "account.deleted"))
        assert deleted is not None
        # Nothing before the deletion names the address (after it: the failed sign-in above).
        named = select(AuditEvent.id).where(AuditEvent.actor == EMAIL, AuditEvent.id < deleted)
        assert db.scalar(named) is None
        client = db.scalar(select(Client).where(Client.client_id == owned))
        assert client is not None and client.is_disabled
        sessions = list(db.scalars(select(OAuthSession).where(OAuthSession.member_id == member.id)))
        assert sessions and all(s.revoked_reason == "account_deleted" for s in sessions)
        assert db.scalar(select(RefreshToken.token_hash)) is not None  # kept, but dead
        statuses = set(db.scalars(select(RegistrationRequest.status)))
        assert statuses == {"withdrawn"}

    # The address is free for a new account.
    again = site.submit(
        site.browser(),
        "/signup",
        "/signup",
        email=EMAIL,
        display_name="New Jo",
        password="another good passphrase",
        password_again="another good passphrase",
    )
    assert again.status_code == 303
    with site.context.session() as db:
        fresh = members.find_by_email(db, EMAIL)
        assert fresh is not None and fresh.id != member.id


def test_the_last_staff_member_cannot_delete_their_account(site: Site) -> None:
    """Someone must stay to review requests and manage members (services/member_admin)."""
    staff = "only.staff@example.com"
    site.add_member(staff, staff=True)
    browser = site.browser()
    site.sign_in(browser, staff)
    refused = site.submit(browser, "/account/delete", "/account/delete", password=GOOD_PASSWORD)
    assert refused.status_code == 409
    assert "the last enabled staff member" in refused.text
    assert 'name="proof"' not in refused.text  # no confirmation step offered
    with site.context.session() as db:
        member = members.find_by_email(db, staff)
        assert member is not None and member.is_staff and member.deleted_at is None
    # With a second staff member the same account may go.
    site.add_member("second.staff@example.com", staff=True)
    asked = site.submit(browser, "/account/delete", "/account/delete", password=GOOD_PASSWORD)
    proof = PROOF.search(asked.text)
    assert proof is not None
    gone = site.submit(
        browser, "/account/delete", "/account/delete", proof=proof.group(1), confirmed="yes"
    )
    assert gone.status_code == 303
