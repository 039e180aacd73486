"""The authenticator app in a real browser (issue #12, acceptance): set it up by reading
the key off the page, sign in with its code (no mail is sent) and with a recovery code,
which then works no more."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
EMAIL = "ana@example.com"


def no_serious_axe_violation(page: Page) -> None:
    violations = Axe().run(page).response["violations"]
    serious = [v["id"] for v in violations if v.get("impact") in ("serious", "critical")]
    assert not serious, serious


def fits_a_phone(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert width <= 390, width


def password_step(stage: Stage, email: str = EMAIL) -> Page:
    page = stage.new_page()
    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile("/signin/code$"))
    return page


def set_up_the_app(page: Page) -> tuple[str, list[str]]:
    """As the member does it: from the account page to the saved recovery codes."""
    page.goto("/account")
    page.get_by_role("link", name="Authenticator app").click()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    no_serious_axe_violation(page)
    fits_a_phone(page)
    secret = page.locator("#secret-key").inner_text().replace(" ", "")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    no_serious_axe_violation(page)
    page.get_by_role("link", name=re.compile("I have saved them")).click()
    expect(page.get_by_role("status")).to_have_text(re.compile("authenticator app is on"))
    return secret, codes


def test_set_up_the_app_then_sign_in_with_its_code_and_with_a_recovery_code(
    stage: Stage,
) -> None:
    stage.add_member(EMAIL, PASSWORD)
    page = stage.sign_in(EMAIL, PASSWORD)
    secret, codes = set_up_the_app(page)
    page.get_by_role("button", name="Sign out").click()
    mails = stage.mailbox.count_for(EMAIL)

    # The app's code, from the next 30-second step (the first one was spent on set-up).
    app = password_step(stage)
    expect(app.get_by_role("heading", name="Enter the code from your app")).to_be_visible()
    no_serious_axe_violation(app)
    app.get_by_label("Code from your authenticator app").fill(
        pyotp.TOTP(secret).at(time.time() + 30)
    )
    app.get_by_role("button", name="Sign in").click()
    expect(app).to_have_url(re.compile("/account$"))
    time.sleep(0.5)
    assert stage.mailbox.count_for(EMAIL) == mails  # no mail was sent

    # A recovery code, once.
    recovery = password_step(stage)
    recovery.get_by_role("link", name="Use a recovery code instead").click()
    recovery.get_by_label("Recovery code").fill(codes[0])
    recovery.get_by_role("button", name="Sign in").click()
    expect(recovery).to_have_url(re.compile("/account$"))

    again = password_step(stage)
    again.get_by_role("link", name="Use a recovery code instead").click()
    again.get_by_label("Recovery code").fill(codes[0])
    again.get_by_role("button", name="Sign in").click()
    expect(again.locator("#code-error")).to_have_text(re.compile("already used"))
    expect(again).to_have_url(re.compile("/signin/code$"))
    assert stage.mailbox.count_for(EMAIL) == mails


def test_a_wrong_app_code_is_explained_beside_the_field(stage: Stage) -> None:
    stage.add_member(EMAIL, PASSWORD)
    secret, _codes = set_up_the_app(stage.sign_in(EMAIL, PASSWORD))
    page = password_step(stage)
    right = pyotp.TOTP(secret).now()
    page.get_by_label("Code from your authenticator app").fill(
        "000000" if right != "000000" else "111111"
    )
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#code-error")).to_have_text("That code is not right. 4 tries left.")
    expect(page.get_by_label("Code from your authenticator app")).to_have_attribute(
        "aria-invalid", "true"
    )
