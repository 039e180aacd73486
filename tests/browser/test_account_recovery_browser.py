"""Getting back into an account and changing how one signs in, in a real browser
(issue #12, items 1 and 2): forgot and reset, change password, change email, resend code."""

from __future__ import annotations

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
NEW_PASSWORD = "an even sturdier passphrase"


def enter_password(page: Page, email: str, password: str) -> None:
    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


def finish_with_code(stage: Stage, page: Page, email: str, sent_before: int) -> None:
    """Type the code of the first mail after the `sent_before` ones to `email`."""
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.get_by_label("Code").fill(stage.mailbox.code_for(email, sent_before + 1))
    page.get_by_role("button", name="Sign in").click()


def expect_signed_out(page: Page) -> None:
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/signin\?next="))


def test_forgot_password_then_reset_from_the_mailed_link(stage: Stage) -> None:
    stage.add_member("ana@example.com", PASSWORD)
    elsewhere = stage.sign_in("ana@example.com", PASSWORD)

    page = stage.new_page()
    page.goto("/signin")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text("If an account uses that address")).to_be_visible()

    link = stage.mailbox.wait_for_match("ana@example.com", r"/signin/reset\?token=[A-Za-z0-9_-]+")
    page.goto(link.group(0))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD + "?")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#password_again-error")).to_have_text(
        "The two passwords are not the same."
    )
    page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(re.compile(r"/signin\?"))
    expect(page.get_by_role("status")).to_contain_text("every browser was signed out")
    stage.mailbox.wait_for_match("ana@example.com", r"Every browser was signed\s+out")

    # The old password no longer works; the new one does.
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#signin-error")).to_have_text("Email or password is incorrect.")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    sent_before = stage.mailbox.count_for("ana@example.com")
    page.get_by_role("button", name="Continue").click()
    finish_with_code(stage, page, "ana@example.com", sent_before)
    expect(page).to_have_url(re.compile("/account$"))

    # The browser that was signed in before the reset is signed out; the link is spent.
    expect_signed_out(elsewhere)
    page.goto(link.group(0))
    expect(page.get_by_text("This link was already used")).to_be_visible()
    expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()


def test_change_password_from_the_account_page(stage: Stage) -> None:
    stage.add_member("ben@example.com", PASSWORD)
    elsewhere = stage.sign_in("ben@example.com", PASSWORD)
    page = stage.sign_in("ben@example.com", PASSWORD)
    page.get_by_role("link", name="Sign-in and security").click()
    expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()

    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("#current_password-error")).to_have_text("That is not your password.")

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password (at least 10 characters)").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your password was changed. Every other browser was signed out."
    )
    page.goto("/account")
    expect(page).to_have_url(re.compile("/account$"))  # this browser stays signed in
    expect_signed_out(elsewhere)
    stage.mailbox.wait_for_match(
        "ben@example.com", r"account was just changed, and every other browser"
    )

    fresh = stage.new_page()
    sent_before = stage.mailbox.count_for("ben@example.com")
    enter_password(fresh, "ben@example.com", NEW_PASSWORD)
    finish_with_code(stage, fresh, "ben@example.com", sent_before)
    expect(fresh).to_have_url(re.compile("/account$"))


def test_change_email_with_a_code_sent_to_the_new_address(stage: Stage) -> None:
    stage.add_member("cy@example.com", PASSWORD)
    page = stage.sign_in("cy@example.com", PASSWORD)
    page.goto("/account/security")
    page.get_by_label("New email").fill("cy.new@example.com")
    page.get_by_role("button", name="Send a code").click()
    expect(page.get_by_role("heading", name="Confirm your new email")).to_be_visible()
    expect(page.get_by_text("cy.new@example.com")).to_be_visible()

    code = stage.mailbox.wait_for_match("cy.new@example.com", r"confirmation code is (\d{6})")
    page.get_by_label("Code").fill(code.group(1))
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Change email").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your email address was changed and every other browser was signed out. "
        "Sign in with the new one from now on."
    )
    told = stage.mailbox.wait_for_match("cy@example.com", r"changed from \S+ to (\S+)\.")
    assert told.group(1) == "cy.new@example.com"

    page.get_by_role("button", name="Sign out").click()
    enter_password(page, "cy@example.com", PASSWORD)
    expect(page.locator("#signin-error")).to_have_text("Email or password is incorrect.")
    stage.mailbox.wait_for("cy.new@example.com", 2)  # the code, then "your email was changed"
    enter_password(page, "cy.new@example.com", PASSWORD)
    finish_with_code(stage, page, "cy.new@example.com", 2)
    expect(page).to_have_url(re.compile("/account$"))
    expect(page.get_by_text("cy.new@example.com")).to_be_visible()


def test_send_a_new_sign_in_code(stage: Stage) -> None:
    stage.add_member("dee@example.com", PASSWORD)
    page = stage.new_page()
    enter_password(page, "dee@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    old = stage.mailbox.code_for("dee@example.com", 1)
    page.get_by_role("button", name="Send a new code").click()
    expect(page.get_by_role("status")).to_have_text(
        "We sent a new code. The one sent before no longer works."
    )
    new = stage.mailbox.code_for("dee@example.com", 2)
    if old != new:  # one in a million they are the same
        page.get_by_label("Code").fill(old)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#code-error")).to_contain_text("That code is not right.")
    page.get_by_label("Code").fill(new)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile("/account$"))


def _serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [
        f"{page.url}: {v['id']} ({v['impact']})"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_the_new_pages_are_accessible_and_fit_a_phone(stage: Stage) -> None:
    """axe-core finds nothing serious, and nothing scrolls sideways at 390 px, on each new
    page and its error state (issue #12, acceptance)."""
    email = "a.long.address.for.a.narrow.screen@a-long-domain.example"
    stage.add_member(email, PASSWORD)
    page = stage.sign_in(email, PASSWORD)
    page.set_viewport_size({"width": 390, "height": 800})
    problems: list[str] = []

    def check() -> None:
        problems.extend(_serious_violations(page))
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            problems.append(f"{page.url}: {width} px wide")

    page.goto("/account/security")
    check()
    page.get_by_role("button", name="Change password").click()  # every field refused
    check()
    page.get_by_label("New email").fill(
        "a.new.and.also.very.long.address@another-long-domain.example"
    )
    page.get_by_role("button", name="Send a code").click()
    check()
    page.get_by_role("button", name="Change email").click()
    check()

    page.get_by_role("button", name="Sign out").click()
    page.goto("/signin/forgot")
    check()
    page.get_by_role("button", name="Email me a link").click()
    check()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check()
    link = stage.mailbox.wait_for_match(email, r"/signin/reset\?token=[A-Za-z0-9_-]+")
    page.goto(link.group(0))
    check()
    page.get_by_role("button", name="Change password").click()
    check()
    page.goto("/signin/reset?token=not-a-link")
    check()
    assert not problems, "\n".join(problems)
