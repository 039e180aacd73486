"""Change password, change email, resend the sign-in code (issue #12, item 2)."""

from __future__ import annotations

import statistics
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pitpass.db.models import AuditEvent, EmailChange, Member, WebSession
from pitpass.http.cookies import CHALLENGE_COOKIE, CSRF_COOKIE
from tests.conftest import GOOD_PASSWORD, Site
from tests.integration.test_password_reset import timed_post
from tests.support import dump_database

EMAIL = "driver@example.com"
NEW_EMAIL = "new.driver@example.com"
NEW_PASSWORD = "a brand new sturdy passphrase"
PAGE = "/account/security"


def count(site: Site, model: Any) -> int:
    with site.context.session() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def signs_in(site: Site, email: str, password: str) -> bool:
    return site.start_sign_in(site.browser(), email, password).status_code == 303


def change_password(
    site: Site, browser: TestClient, current: str, new: str, again: str = ""
) -> Any:
    return site.submit(
        browser,
        PAGE,
        f"{PAGE}/password",
        current_password=current,
        new_password=new,
        new_password_again=again or new,
    )


def start_email_change(site: Site, browser: TestClient, new_email: str) -> Any:
    return site.submit(browser, PAGE, f"{PAGE}/email", new_email=new_email)


def confirm_email_change(site: Site, browser: TestClient, code: str, password: str) -> Any:
    return site.submit(browser, PAGE, f"{PAGE}/email/confirm", code=code, current_password=password)


def email_code(site: Site, to: str) -> str:
    return site.mailbox.wait_for_match(to, r"email confirmation code is (\d{6})").group(1)


def test_the_account_page_links_to_the_settings(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    assert 'href="/account/security"' in browser.get("/account").text
    assert browser.get(PAGE).status_code == 200
    assert site.browser().get(PAGE).headers["location"] == "/signin?next=%2Faccount%2Fsecurity"


def test_change_password_signs_out_the_other_browsers_only(site: Site) -> None:
    site.add_member(EMAIL)
    here, there = site.browser(), site.browser()
    site.sign_in(here, EMAIL)
    site.sign_in(there, EMAIL)
    done = change_password(site, here, GOOD_PASSWORD, NEW_PASSWORD)
    assert done.status_code == 303
    assert done.headers["location"] == f"{PAGE}?done=password-changed"
    assert "Every other browser was signed out." in here.get(done.headers["location"]).text
    assert there.get("/account").status_code == 303
    assert site.mailbox.wait_for_match(EMAIL, "every other browser\\s+was signed out")
    assert not signs_in(site, EMAIL, GOOD_PASSWORD)
    assert signs_in(site, EMAIL, NEW_PASSWORD)


def test_bad_password_changes_are_explained_beside_the_field(site: Site) -> None:
    site.add_member(EMAIL, name="Jo Racer")
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    for current, new, again, field, message in (
        ("", NEW_PASSWORD, NEW_PASSWORD, "current_password", "Enter your current password."),
        ("not my password", NEW_PASSWORD, NEW_PASSWORD, "current_password", "not your password"),
        (GOOD_PASSWORD, "", "", "new_password", "Use at least 10 characters."),
        (GOOD_PASSWORD, "qwertyuiop", "qwertyuiop", "new_password", "too easy to guess"),
        (GOOD_PASSWORD, "JoRacer2026!", "JoRacer2026!", "new_password", "from your name"),
        (GOOD_PASSWORD, "y" * 257, "y" * 257, "new_password", "Use at most 256 characters."),
        (GOOD_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "new_password_again", "not the same"),
    ):
        refused = change_password(site, browser, current, new, again)
        assert refused.status_code == 400, (field, message)
        assert f'id="{field}-error"' in refused.text
        assert message in refused.text
    nul = change_password(site, browser, GOOD_PASSWORD, "new\x00password here")
    assert nul.status_code == 400
    assert signs_in(site, EMAIL, GOOD_PASSWORD)
    assert browser.get("/account").status_code == 200  # still signed in


def test_wrong_current_passwords_are_throttled(site_factory: Any, backend: Any) -> None:
    # A wrong password typed again counts as a failed sign-in (services/reauth.py).
    site = site_factory(backend, signin_failures_per_account_ip="2/15 minutes")
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    for _ in range(2):
        assert change_password(site, browser, "wrong guess", NEW_PASSWORD).status_code == 400
    refused = change_password(site, browser, GOOD_PASSWORD, NEW_PASSWORD)
    assert refused.status_code == 429
    assert 'id="current_password-error"' in refused.text
    assert "Too many failed sign-in attempts. Try again in" in refused.text
    assert "Retry-After" in refused.headers


def test_change_email_with_a_code_sent_to_the_new_address(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    started = start_email_change(site, browser, "  New.Driver@Example.com ")
    assert started.headers["location"] == f"{PAGE}/email"
    assert NEW_EMAIL in browser.get(f"{PAGE}/email").text
    code = email_code(site, NEW_EMAIL)
    assert code not in dump_database(site.context.settings.database_url)  # a keyed hash only
    done = confirm_email_change(site, browser, code, GOOD_PASSWORD)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{PAGE}?done=email-changed"
    assert NEW_EMAIL in browser.get("/account").text
    told = site.mailbox.wait_for_match(EMAIL, r"changed from (\S+) to (\S+)\.")
    assert told.groups() == (EMAIL, NEW_EMAIL)
    # The password now works with the new email only (the hash binds it).
    assert signs_in(site, NEW_EMAIL, GOOD_PASSWORD)
    assert not signs_in(site, EMAIL, GOOD_PASSWORD)
    with site.context.session() as db:
        assert {"email_change.started", "email.changed"} <= set(
            db.scalars(select(AuditEvent.action))
        )


def test_a_taken_email_reads_the_same_and_opens_nothing(site: Site) -> None:
    site.add_member(EMAIL)
    site.add_member(NEW_EMAIL, name="Other Driver")
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    started = start_email_change(site, browser, NEW_EMAIL)
    assert started.status_code == 303
    assert started.headers["location"] == f"{PAGE}/email"
    notice = site.mailbox.wait_for_match(NEW_EMAIL, "which already has an account")
    assert notice
    for guess in ("000000", "123456"):
        confirm_email_change(site, browser, guess, GOOD_PASSWORD)
    with site.context.session() as db:
        assert db.scalar(select(Member.email).where(Member.display_name == "Test Driver")) == EMAIL


def test_bad_email_changes_are_explained_and_change_nothing(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    for typed, message in (
        ("", "Enter your email address."),
        ("nope", "Enter an email address like name@example.com."),
        ("x" * 330 + "@example.com", "Enter an email address like name@example.com."),
        (EMAIL.upper(), "This is already your email address."),
    ):
        refused = start_email_change(site, browser, typed)
        assert refused.status_code == 400
        assert f'<p class="error field-error" id="new_email-error">{message}</p>' in refused.text
    assert start_email_change(site, browser, "new\x00@example.com").status_code == 400
    assert count(site, EmailChange) == 0
    start_email_change(site, browser, NEW_EMAIL)
    code = email_code(site, NEW_EMAIL)
    wrong = "000000" if code != "000000" else "111111"
    for typed, password, field, message in (
        ("", GOOD_PASSWORD, "code", "Enter the 6-digit code from the email."),
        (code, "", "current_password", "Enter your current password."),
        (code, "not my password", "current_password", "That is not your password."),
        (wrong, GOOD_PASSWORD, "code", "That code is not right. 4 tries left."),
    ):
        refused = confirm_email_change(site, browser, typed, password)
        assert refused.status_code == 400
        assert f'id="{field}-error"' in refused.text
        assert message in refused.text
    assert signs_in(site, EMAIL, GOOD_PASSWORD)
    assert confirm_email_change(site, browser, code, GOOD_PASSWORD).status_code == 303


def test_five_wrong_codes_end_the_change(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    start_email_change(site, browser, NEW_EMAIL)
    code = email_code(site, NEW_EMAIL)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        last = confirm_email_change(site, browser, wrong, GOOD_PASSWORD)
    assert "Too many wrong codes. Start the change again." in last.text
    assert 'id="new_email-error"' in last.text
    assert confirm_email_change(site, browser, code, GOOD_PASSWORD).status_code == 400
    assert signs_in(site, EMAIL, GOOD_PASSWORD)


def test_email_changes_are_throttled_per_member(site_factory: Any, backend: Any) -> None:
    site = site_factory(backend, email_changes_per_member="2/hour")
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    for number in range(2):
        assert start_email_change(site, browser, f"try{number}@example.com").status_code == 303
    refused = start_email_change(site, browser, "try9@example.com")
    assert refused.status_code == 429
    assert 'id="new_email-error"' in refused.text
    assert "Try again in" in refused.text


# ----- resend the sign-in code ---------------------------------------------------------


def resend(site: Site, browser: TestClient) -> Any:
    return site.submit(browser, "/signin/code", "/signin/code/resend")


def test_resend_sends_a_new_code_and_the_old_one_dies(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.start_sign_in(browser, EMAIL)
    old = site.mailbox.code_for(EMAIL)
    assert "Send a new code" in browser.get("/signin/code").text
    sent = resend(site, browser)
    assert sent.headers["location"] == "/signin/code?done=code-resent"
    assert "We sent a new code." in browser.get(sent.headers["location"]).text
    new = site.mailbox.code_for(EMAIL, 2)
    if old != new:
        refused = site.submit(browser, "/signin/code", "/signin/code", code=old)
        assert refused.status_code == 400
        assert "That code is not right." in refused.text
    done = site.submit(browser, "/signin/code", "/signin/code", code=new)
    assert done.status_code == 303
    assert count(site, WebSession) == 1


def test_resend_is_throttled_beside_the_button(site_factory: Any, backend: Any) -> None:
    site = site_factory(backend, signin_code_resends_per_challenge="2/15 minutes")
    site.add_member(EMAIL)
    browser = site.browser()
    site.start_sign_in(browser, EMAIL)
    for _ in range(2):
        assert resend(site, browser).status_code == 303
    refused = resend(site, browser)
    assert refused.status_code == 429
    assert 'id="resend-error"' in refused.text
    assert "use the latest, or wait" in refused.text
    assert site.mailbox.count_for(EMAIL) == 3
    # The last code still works.
    done = site.submit(
        browser, "/signin/code", "/signin/code", code=site.mailbox.code_for(EMAIL, 3)
    )
    assert done.status_code == 303


def test_resend_without_a_pending_sign_in_goes_back_to_sign_in(site: Site) -> None:
    browser = site.browser()
    answer = site.submit(browser, "/signin", "/signin/code/resend")
    assert answer.headers["location"] == "/signin"


def _signed_up(site: Site, email: str) -> TestClient:
    browser = site.browser()
    form = {"email": email, "display_name": "New Driver"}
    passwords = {"password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD}
    assert site.submit(browser, "/signup", "/signup", **form, **passwords).status_code == 303
    assert browser.cookies.get(CHALLENGE_COOKIE)
    return browser


def test_resend_after_sign_up_reads_alike_for_a_taken_email(
    site_factory: Any, sqlite_backend: Any
) -> None:
    """Sign-up answers a taken email with a code step no code opens (services/signup.py):
    its "send a new code" answers with the same status, body and time as a real one."""
    site = site_factory(
        sqlite_backend,
        signin_code_resends_per_challenge="1000/hour",
        signin_codes_per_member="1000/hour",
    )
    site.add_member(EMAIL)
    timings: dict[str, list[float]] = {}
    answers = []
    for email in ("fresh@example.com", EMAIL):
        browser = _signed_up(site, email)
        answer = resend(site, browser)
        page = browser.get(answer.headers["location"])
        form = {"csrf_token": site.csrf_of(page)}
        text = page.text.replace(form["csrf_token"], "")  # each browser has its own
        answers.append((answer.status_code, answer.headers["location"], text))
        cookies = {name: browser.cookies[name] for name in (CSRF_COOKIE, CHALLENGE_COOKIE)}
        timings[email] = [
            timed_post(site.app, "/signin/code/resend", form, cookies) for _ in range(20)
        ]
    assert answers[0][:2] == answers[1][:2]
    assert answers[0][2].replace("f••••@", "") == answers[1][2].replace("d•••••@", "")
    fresh, taken = (statistics.median(seconds) for seconds in timings.values())
    assert abs(fresh - taken) < 0.05, (fresh, taken)
    assert site.mailbox.count_for("fresh@example.com") == 22
    assert site.mailbox.count_for(EMAIL) == 1  # only the "you have an account" notice
