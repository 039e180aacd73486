"""Self sign-up (issue #2, item 3): errors beside the field, nothing created on bad input."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from pitpass.db.models import Member
from tests.conftest import GOOD_PASSWORD, Site


def members_count(site: Site) -> int:
    with site.context.session() as db:
        return int(db.scalar(select(func.count()).select_from(Member)) or 0)


def sign_up(site: Site, browser: Any, **fields: str) -> Any:
    values = {
        "email": "new@example.com",
        "display_name": "New Driver",
        "password": GOOD_PASSWORD,
        "password_again": GOOD_PASSWORD,
    } | fields
    return site.submit(browser, "/signup", "/signup", **values)


def test_sign_up_confirms_the_address_with_a_code(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    response = sign_up(sqlite_site, browser, email="  New@Example.com ")
    assert response.headers["location"] == "/signin/code"
    code = sqlite_site.mailbox.code_for("new@example.com")
    done = sqlite_site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert done.headers["location"] == "/account"
    with sqlite_site.context.session() as db:
        member = db.scalar(select(Member))
        assert member is not None
        assert member.email == "new@example.com"
        assert member.customer_id >= 100001
        assert member.email_verified_at is not None


def test_duplicate_email_is_refused_beside_the_field(site: Site) -> None:
    site.add_member("taken@example.com")
    response = sign_up(site, site.browser(), email="TAKEN@example.com")
    assert response.status_code == 400
    assert 'id="email-error"' in response.text
    assert "An account with this email already exists" in response.text
    assert members_count(site) == 1


def test_weak_password_is_refused_beside_the_field(sqlite_site: Site) -> None:
    response = sign_up(sqlite_site, sqlite_site.browser(), password="short", password_again="short")
    assert response.status_code == 400
    assert 'id="password-error"' in response.text
    assert "Use at least 10 characters." in response.text
    assert 'value="new@example.com"' in response.text  # what was typed is kept
    assert GOOD_PASSWORD not in response.text
    assert members_count(sqlite_site) == 0


def test_mismatched_passwords_and_bad_email_are_each_explained(sqlite_site: Site) -> None:
    response = sign_up(
        sqlite_site, sqlite_site.browser(), email="not-an-email", password_again="something else"
    )
    assert "Enter an email address like name@example.com." in response.text
    assert "The two passwords are not the same." in response.text
    assert members_count(sqlite_site) == 0


def test_sign_up_can_be_closed(site_factory: Any, sqlite_backend: Any) -> None:
    site = site_factory(sqlite_backend, signup_enabled=False)
    browser = site.browser()
    assert browser.get("/signup").status_code == 404
    csrf = site.csrf_of(browser.get("/signin"))
    response = browser.post(
        "/signup",
        data={
            "csrf_token": csrf,
            "email": "x@example.com",
            "display_name": "X",
            "password": GOOD_PASSWORD,
            "password_again": GOOD_PASSWORD,
        },
    )
    assert response.status_code == 404
    assert members_count(site) == 0
