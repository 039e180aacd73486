"""An app's sign-in is one journey (issue #12, item 3, acceptance), in Chromium.

A new member signs up from an app's sign-in and ends at consent; a member who finds
someone else signed in at consent switches account with "Not you?".
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
CALLBACK = "https://app.example/callback"
APP_ROUTE = re.compile(r"^https://app\.example/.*")
LONG_EMAIL = "developer-relations.and.partnerships@a-very-long-developer-domain.example"
BANNER = "to continue to Pit Wall by Lap Labs Ltd."


def issue_app(stage: Stage) -> str:
    stage.add_member("staff@example.com", PASSWORD, staff=True)
    client_id, _secret = stage.server.provision.client(
        "staff@example.com",
        "Pit Wall",
        "server-side",
        redirect_uris=(CALLBACK,),
        developer_name="Lap Labs Ltd.",
        developer_email=LONG_EMAIL,
    )
    return client_id


def authorize_url(stage: Stage, client_id: str) -> str:
    query = {
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "iracing.auth",
        "state": "journey-1",
    }
    return f"{stage.server.base_url}/oauth2/authorize?{urlencode(query)}"


def catch_the_app(page: Page) -> list[str]:
    """The app's host is not reachable here: record where the browser was sent."""
    landed: list[str] = []

    def catch(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, body="the app")

    page.route(APP_ROUTE, catch)
    return landed


def enter_code(stage: Stage, page: Page, email: str, count: int) -> None:
    page.get_by_label("Code").fill(stage.mailbox.code_for(email, count))
    page.get_by_role("button", name="Sign in").click()


def sign_in_with_password(stage: Stage, page: Page, email: str) -> None:
    sent_before = stage.mailbox.count_for(email)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#continuing")).to_have_text(BANNER)  # the code page names it too
    enter_code(stage, page, email, sent_before + 1)


def expect_no_sideways_scroll(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width} px wide at 390 px"


def test_sign_up_from_an_apps_sign_in_reaches_consent(stage: Stage) -> None:
    client_id = issue_app(stage)
    page = stage.new_page()
    landed = catch_the_app(page)

    page.goto(authorize_url(stage, client_id))
    expect(page.get_by_role("heading", name="Sign in to Pitpass")).to_be_visible()
    expect(page.locator("#continuing")).to_have_text(BANNER)
    page.get_by_role("link", name="Create one").click()

    expect(page.get_by_role("heading", name="Create your Pitpass account")).to_be_visible()
    expect(page.locator("#continuing")).to_have_text(BANNER)
    page.get_by_label("Email").fill("nia@example.com")
    page.get_by_label("Display name").fill("Nia Newcomer")
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("Password again").fill("not the same password")
    page.get_by_role("button", name="Create account").click()
    # A mistake on the form keeps the app.
    expect(page.locator("#password_again-error")).to_be_visible()
    expect(page.locator("#continuing")).to_have_text(BANNER)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.locator("#continuing")).to_have_text(BANNER)
    enter_code(stage, page, "nia@example.com", 1)

    expect(page.get_by_role("heading", name="Allow Pit Wall to use your account?")).to_be_visible()
    expect(page.locator("#consent-member")).to_contain_text(
        "Signed in as Nia Newcomer (nia@example.com)."
    )
    expect(page.locator("#consent-destination")).to_have_text(
        "After you choose, you will be sent to app.example."
    )
    expect(page.get_by_text(LONG_EMAIL)).to_be_visible()
    expect_no_sideways_scroll(page)  # the developer's long email wraps inside the card
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"^https://app\.example/callback\?"))
    assert len(landed) == 1
    assert re.search(r"[?&]code=[\w-]{20,}", landed[0])
    assert "state=journey-1" in landed[0]


def test_switching_account_at_consent(stage: Stage) -> None:
    client_id = issue_app(stage)
    stage.add_member("ana@example.com", PASSWORD)
    stage.add_member("bob@example.com", PASSWORD)
    page = stage.new_page()
    landed = catch_the_app(page)

    page.goto(authorize_url(stage, client_id))
    expect(page.locator("#continuing")).to_have_text(BANNER)
    sign_in_with_password(stage, page, "ana@example.com")
    expect(page.locator("#consent-member")).to_contain_text("Signed in as Ana (ana@example.com).")

    page.get_by_role("button", name="Not you?").click()
    expect(page.get_by_role("heading", name="Sign in to Pitpass")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    expect(page.locator("#continuing")).to_have_text(BANNER)
    sign_in_with_password(stage, page, "bob@example.com")

    expect(page.get_by_role("heading", name="Allow Pit Wall to use your account?")).to_be_visible()
    expect(page.locator("#consent-member")).to_contain_text("Signed in as Bob (bob@example.com).")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"^https://app\.example/callback\?"))
    assert len(landed) == 1 and "code=" in landed[0]

    # The grant is Bob's: his account lists the app, and Ana never consented.
    page.unroute(APP_ROUTE)
    page.goto(f"{stage.server.base_url}/account/apps")
    expect(page.locator("section.connected-app", has_text="Pit Wall")).to_have_count(1)
    ana = stage.sign_in("ana@example.com", PASSWORD, "/account/apps")
    expect(ana.get_by_text("No app is connected to your account.")).to_be_visible()
