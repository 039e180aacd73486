"""Self sign-up (issue #2, item 3): errors beside the field, nothing created on bad input."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from pitpass.db.models import Member
from pitpass.http.cookies import CHALLENGE_COOKIE
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


def _code_page_without_tokens(browser: Any) -> str:
    page = browser.get("/signin/code")
    assert page.status_code == 200
    return re.sub(r'name="csrf_token" value="[^"]+"', "", page.text)


def test_sign_up_answers_alike_whether_or_not_the_email_has_an_account(site: Site) -> None:
    """Issue #11, defect 10: no account enumeration. Both get a code page (same status,
    cookie, page); the new address gets a code, the owner a mail saying someone tried."""
    site.add_member("taken@example.com", name="Tia Taken")
    taken, fresh = site.browser(), site.browser()
    answers = [
        sign_up(site, taken, email="TAKEN@example.com"),
        sign_up(site, fresh, email="tabby@example.com"),
    ]
    assert [a.status_code for a in answers] == [303, 303]
    assert [a.headers["location"] for a in answers] == ["/signin/code", "/signin/code"]
    cookies = [a.headers["set-cookie"].split("=", 1)[0] for a in answers]
    assert cookies[0] == cookies[1] == CHALLENGE_COOKIE
    assert len(taken.cookies[CHALLENGE_COOKIE]) == len(fresh.cookies[CHALLENGE_COOKIE])
    assert _code_page_without_tokens(taken) == _code_page_without_tokens(fresh)
    notice = site.mailbox.wait_for("taken@example.com")
    assert "Someone tried to create a Pitpass account" in notice["Subject"]
    assert "/signin" in str(notice.get_payload(decode=True))
    site.mailbox.code_for("tabby@example.com")
    assert members_count(site) == 2  # no second account for the taken address
    wrong = [site.submit(b, "/signin/code", "/signin/code", code="123456") for b in (taken, fresh)]
    assert [w.status_code for w in wrong] == [400, 400]
    assert "That code is not right. 4 tries left." in wrong[0].text


def test_sign_up_with_a_taken_email_cannot_spend_the_owners_code_tries(
    site_factory: Any, sqlite_backend: Any
) -> None:
    site = site_factory(
        sqlite_backend, signin_code_failures_per_member="2/hour", signup_notices_per_email="1/hour"
    )
    site.add_member("taken@example.com")
    prober = site.browser()
    for _ in range(2):
        sign_up(site, prober, email="taken@example.com")
        for _ in range(3):
            site.submit(prober, "/signin/code", "/signin/code", code="123456")
    site.mailbox.wait_for("taken@example.com")
    owner = site.browser()
    assert site.sign_in(owner, "taken@example.com").headers["location"] == "/account"
    assert site.mailbox.count_for("taken@example.com") == 2  # one notice, one code


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
