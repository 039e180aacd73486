"""Every way into an account ends together (services/ways_in.py): a new password, a new
email, a reset, a disable and a deletion each leave nothing behind that the old
credentials could still complete (issue #12, review)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from pitpass.db.models import Member, OAuthSession
from pitpass.services import member_admin
from tests.conftest import GOOD_PASSWORD, Site
from tests.integration.test_account_security import (
    change_password,
    confirm_email_change,
    email_code,
    start_email_change,
)
from tests.integration.test_member_admin import STAFF, password_limited_tokens
from tests.integration.test_password_reset import NEW_PASSWORD, ask_for_link, link_token, reset

EMAIL = "driver@example.com"
INTRUDER_PASSWORD = "the intruder's chosen passphrase"


def signs_in(site: Site, email: str, password: str) -> bool:
    return site.start_sign_in(site.browser(), email, password).status_code == 303


def a_link_asked_by_someone_else(site: Site) -> tuple[TestClient, str]:
    """Someone reading the member's mailbox asks for a reset link."""
    intruder = site.browser()
    ask_for_link(site, intruder, EMAIL)
    return intruder, link_token(site, EMAIL)


def test_a_new_password_kills_a_reset_link_asked_before(site: Site) -> None:
    site.add_member(EMAIL)
    intruder, token = a_link_asked_by_someone_else(site)
    owner = site.browser()
    site.sign_in(owner, EMAIL)
    assert change_password(site, owner, GOOD_PASSWORD, NEW_PASSWORD).status_code == 303
    spent = reset(site, intruder, token, INTRUDER_PASSWORD)
    assert spent.status_code == 410, spent.text
    assert not signs_in(site, EMAIL, INTRUDER_PASSWORD)
    assert signs_in(site, EMAIL, NEW_PASSWORD)


def test_a_new_email_kills_the_old_address_s_reset_link_and_other_browsers(site: Site) -> None:
    site.add_member(EMAIL)
    intruder, token = a_link_asked_by_someone_else(site)
    elsewhere = site.browser()
    site.sign_in(elsewhere, EMAIL)
    owner = site.browser()
    site.sign_in(owner, EMAIL)
    start_email_change(site, owner, "fresh@example.com")
    moved = confirm_email_change(site, owner, email_code(site, "fresh@example.com"), GOOD_PASSWORD)
    assert moved.status_code == 303, moved.text
    assert reset(site, intruder, token, INTRUDER_PASSWORD).status_code == 410
    assert owner.get("/account").status_code == 200  # the browser that made the change stays
    assert elsewhere.get("/account", follow_redirects=False).status_code == 303
    assert signs_in(site, "fresh@example.com", GOOD_PASSWORD)


def test_a_reset_signs_the_apps_out_too(site: Site) -> None:
    """Whoever had the old password may hold an app's refresh token: it dies with it."""
    site.add_member(STAFF, staff=True)
    site.add_member(EMAIL)
    client_id, masked, tokens = password_limited_tokens(site, EMAIL)
    browser = site.browser()
    ask_for_link(site, browser, EMAIL)
    assert reset(site, browser, link_token(site, EMAIL), NEW_PASSWORD).status_code == 303
    refreshed = site.browser().post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": masked,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert site.browser().get("/oauth2/iracing/profile", headers=bearer).status_code == 401
    with site.context.session() as db:
        reasons = db.scalars(select(OAuthSession.revoked_reason)).all()
    assert reasons == ["password_reset"]


def test_a_disable_kills_pending_links_so_an_enable_does_not_revive_them(site: Site) -> None:
    site.add_member(STAFF, staff=True)
    site.add_member(STAFF.replace("staff", "second"), staff=True)
    site.add_member(EMAIL)
    intruder, token = a_link_asked_by_someone_else(site)
    with site.context.session() as db:
        staff = db.scalar(select(Member).where(Member.email == STAFF))
        target = db.scalar(select(Member).where(Member.email == EMAIL))
        assert staff and target
        member_admin.disable(db, target, staff, "abuse report")
    with site.context.session() as db:
        staff = db.scalar(select(Member).where(Member.email == STAFF))
        target = db.scalar(select(Member).where(Member.email == EMAIL))
        assert staff and target
        member_admin.enable(db, target, staff, "cleared")
    assert reset(site, intruder, token, INTRUDER_PASSWORD).status_code == 410
    assert signs_in(site, EMAIL, GOOD_PASSWORD)
