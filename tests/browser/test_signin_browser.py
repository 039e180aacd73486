"""Sign-in in a real browser (issue #2, item 10)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"


def enter_password(page: Page, email: str, password: str = PASSWORD, path: str = "/signin") -> None:
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


def enter_code(stage: Stage, page: Page, email: str, nth: int = 1, remember: bool = False) -> None:
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.get_by_label("Code").fill(stage.mailbox.code_for(email, nth))
    if remember:
        page.get_by_label(re.compile("Remember this browser")).check()
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_the_emailed_code(stage: Stage) -> None:
    stage.add_member("ana@example.com", PASSWORD)
    page = stage.new_page()
    enter_password(page, "ana@example.com")
    expect(page).to_have_url(re.compile("/signin/code$"))
    expect(page.get_by_text("We sent a 6-digit code to a••@example.com")).to_be_visible()
    enter_code(stage, page, "ana@example.com")
    expect(page).to_have_url(re.compile("/account$"))
    expect(page.locator("#display-name")).to_have_text("Ana")


def test_a_wrong_code_is_explained_beside_the_field(stage: Stage) -> None:
    stage.add_member("ana@example.com", PASSWORD)
    page = stage.new_page()
    enter_password(page, "ana@example.com")
    real = stage.mailbox.code_for("ana@example.com")
    page.get_by_label("Code").fill("000000" if real != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#code-error")).to_have_text("That code is not right. 4 tries left.")


def test_remembered_browser_skips_the_code_until_forced(stage: Stage) -> None:
    stage.add_member("ben@example.com", PASSWORD)
    page = stage.new_page()
    enter_password(page, "ben@example.com")
    enter_code(stage, page, "ben@example.com", remember=True)
    expect(page).to_have_url(re.compile("/account$"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()

    enter_password(page, "ben@example.com")
    expect(page).to_have_url(re.compile("/account$"))  # no code asked
    assert stage.mailbox.count_for("ben@example.com") == 1

    page.get_by_role("button", name="Sign out").click()
    enter_password(page, "ben@example.com", path="/signin?verify=1")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    enter_code(stage, page, "ben@example.com", nth=2)
    expect(page).to_have_url(re.compile("/account$"))
    expect(page.get_by_text("This browser is not remembered")).to_be_visible()


def test_wrong_password_then_throttling_message(stage: Stage) -> None:
    stage.add_member("cy@example.com", PASSWORD)
    page = stage.new_page()
    for _ in range(3):
        enter_password(page, "cy@example.com", "not my password at all")
        expect(page.locator("#signin-error")).to_have_text("Email or password is incorrect.")
    enter_password(page, "cy@example.com")
    expect(page.locator("#signin-error")).to_have_text(
        re.compile(r"Too many failed sign-in attempts\. Try again in \d+ minutes\.")
    )
    assert stage.mailbox.count_for("cy@example.com") == 0


def test_sign_out_closes_the_account(stage: Stage) -> None:
    stage.add_member("dee@example.com", PASSWORD)
    page = stage.new_page()
    enter_password(page, "dee@example.com")
    enter_code(stage, page, "dee@example.com")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Faccount$"))


def test_staff_pages_are_refused_to_members_and_open_to_staff(stage: Stage) -> None:
    stage.add_member("eve@example.com", PASSWORD)
    stage.add_member("boss@example.com", PASSWORD, staff=True)
    member = stage.new_page()
    enter_password(member, "eve@example.com", path="/signin?next=/console/audit")
    enter_code(stage, member, "eve@example.com")
    expect(member.get_by_role("heading", name="Staff only")).to_be_visible()
    expect(member.get_by_role("link", name="Console")).to_have_count(0)

    staff = stage.new_page()
    enter_password(staff, "boss@example.com", path="/signin?next=/console/audit")
    enter_code(stage, staff, "boss@example.com")
    expect(staff.get_by_role("heading", name="Audit log")).to_be_visible()
    staff.get_by_label("Action").fill("signin.succeeded")
    staff.get_by_role("button", name="Filter").click()
    expect(staff.locator("table.audit tbody tr")).to_have_count(2)


def test_sign_up_errors_appear_beside_their_fields(stage: Stage) -> None:
    stage.add_member("taken@example.com", PASSWORD)
    page = stage.new_page()
    page.goto("/signup")
    page.get_by_label("Email").fill("taken@example.com")
    page.get_by_label("Display name").fill("Fay")
    page.get_by_label("Password (at least 10 characters)").fill("short")
    page.get_by_label("Password again").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#password-error")).to_have_text("Use at least 10 characters.")
    expect(page.locator("#email-error")).to_have_count(0)  # never "this email has an account"
    expect(page.get_by_label("Email")).to_have_value("taken@example.com")
