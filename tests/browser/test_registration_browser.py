"""The developer program in a real browser (issue #3, acceptance)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
DEV, STAFF = "dev@example.com", "boss@example.com"


@pytest.fixture
def people(stage: Stage) -> tuple[Page, Page]:
    stage.add_member(DEV, PASSWORD)
    stage.add_member(STAFF, PASSWORD, staff=True)
    return stage.sign_in(DEV, PASSWORD, "/portal"), stage.sign_in(STAFF, PASSWORD, "/console")


def submit_template(page: Page, template: str, **changes: str) -> None:
    page.goto("/portal")
    label = "league manager" if template == "league-manager" else "password-limited data tool"
    page.get_by_role("link", name=re.compile(label)).click()
    for field, value in changes.items():
        page.locator(f"#{field}").fill(value)
    page.get_by_role("button", name="Send the request").click()


def decide(staff: Page, client_name: str, button: str, message: str = "") -> None:
    staff.goto("/console/requests")
    staff.get_by_role("row", name=re.compile(client_name)).get_by_role("link").click()
    if message:
        form = {"Reject": "#reject-form", "Request changes": "#changes-form"}[button]
        staff.locator(f"{form} textarea").fill(message)
    staff.get_by_role("button", name=button).click()
    if button == "Reject" and message:
        staff.get_by_role("button", name="Reject the request").click()  # the confirmation step


def emailed_link(stage: Stage, client_id: str) -> str:
    """The one-time secret link from the approval mail of `client_id`."""
    pattern = rf"client_id: {client_id}\s[\s\S]*?(http://\S+/portal/secret/\S+)"
    return stage.mailbox.wait_for_match(DEV, pattern).group(1)


def test_templates_bad_fields_approval_secret_once_link_once_rotation(
    stage: Stage, people: tuple[Page, Page]
) -> None:
    developer, staff = people
    # A bad redirect URI and a brand-like name are each refused beside their field.
    submit_template(
        developer,
        "league-manager",
        redirect_uris="https://www.myleague.com/oauth/callback#done",
        client_name="iRacer Tools",
    )
    expect(developer.locator("#redirect_uris-0-error")).to_contain_text(
        "a redirect URI must not contain a fragment: remove '#done'"
    )
    expect(developer.locator("#client_name-error")).to_contain_text("must not imitate")
    # Fixed, then both templates go in.
    developer.locator("#client_name").fill("My League Manager")
    developer.locator("#redirect_uris").fill("https://www.myleague.com/oauth/callback")
    developer.get_by_role("button", name="Send the request").click()
    expect(developer.locator("#request-status")).to_have_text("Waiting for review")
    submit_template(developer, "data-tool")
    expect(developer.locator("#request-status")).to_have_text("Waiting for review")

    decide(staff, "My League Manager", "Approve and issue")
    expect(staff.locator("#request-status")).to_have_text("Approved")

    developer.goto("/portal")
    developer.get_by_role("link", name="my-league-manager").click()
    expect(developer.locator("#client-id")).to_have_text("my-league-manager")
    developer.get_by_role("button", name="Show the secret once").click()
    secret = developer.locator("#client-secret").inner_text()
    assert len(secret) >= 43
    developer.goto("/portal/clients/my-league-manager")
    expect(developer.get_by_role("button", name="Show the secret once")).to_have_count(0)

    # The data tool's secret comes through the emailed link: once.
    decide(staff, "My Sim Data Tool", "Approve and issue")
    link = emailed_link(stage, "my-sim-data-tool")
    developer.goto(link)
    developer.get_by_role("button", name="Show the secret once").click()
    expect(developer.locator("#client-secret")).to_be_visible()
    developer.goto(link)  # used: no button any more, and a way to the client
    expect(developer.get_by_role("button", name="Show the secret once")).to_have_count(0)
    expect(developer.get_by_role("alert")).to_contain_text("already viewed on")
    developer.get_by_role("link", name=re.compile("Go to the page of")).click()
    expect(developer.locator("#client-id")).to_have_text("my-sim-data-tool")

    # Rotation shows a new secret once and keeps the old one for the grace period.
    developer.goto("/portal/clients/my-league-manager")
    developer.get_by_role("button", name="Rotate the secret").click()
    developer.get_by_role("button", name="Rotate the secret").click()  # the confirmation step
    rotated = developer.locator("#client-secret").inner_text()
    assert rotated != secret
    expect(developer.get_by_text("The previous secret keeps working for 7 days.")).to_be_visible()


def test_access_list_member_accepts(stage: Stage, people: tuple[Page, Page]) -> None:
    developer, staff = people
    stage.add_member("racer@example.com", PASSWORD)
    submit_template(developer, "data-tool")
    decide(staff, "My Sim Data Tool", "Approve and issue")
    developer.goto("/portal/clients/my-sim-data-tool")
    developer.get_by_label("Add a member by email or customer id").fill("ghost@example.com")
    developer.get_by_role("button", name="Add").click()
    expect(developer.locator("#member-error")).to_contain_text("no member has the email")
    developer.get_by_label("Add a member by email or customer id").fill("racer@example.com")
    developer.get_by_role("button", name="Add").click()
    expect(developer.locator("#access-list")).to_contain_text("waiting for acceptance")

    racer = stage.sign_in("racer@example.com", PASSWORD)
    expect(racer.locator("#invitations")).to_contain_text("My Sim Data Tool")
    racer.get_by_role("button", name="Accept").click()
    expect(racer.locator("#invitations")).to_contain_text("active")
    developer.reload()
    expect(developer.locator("#access-list")).to_contain_text("active")


def test_rejection_and_changes_requested_then_resubmitted(
    stage: Stage, people: tuple[Page, Page]
) -> None:
    developer, staff = people
    submit_template(developer, "league-manager", client_name="Grid Spam")
    submit_template(developer, "league-manager", client_name="Grid Tools")

    decide(staff, "Grid Spam", "Reject")  # without a message: refused
    expect(staff.locator("#decision-error")).to_contain_text("write a message")
    staff.locator("#reject-form textarea").fill("This duplicates an existing client.")
    staff.get_by_role("button", name="Reject").click()
    staff.get_by_role("button", name="Reject the request").click()
    expect(staff.locator("#request-status")).to_have_text("Rejected")

    decide(staff, "Grid Tools", "Request changes", "Add your staging redirect URI.")
    developer.goto("/portal")
    developer.get_by_role("row", name=re.compile("Grid Spam")).get_by_role("link").click()
    expect(developer.locator("#staff-message")).to_have_text("This duplicates an existing client.")

    developer.goto("/portal")
    developer.get_by_role("row", name=re.compile("Grid Tools")).get_by_role("link").click()
    expect(developer.locator("#staff-message")).to_have_text("Add your staging redirect URI.")
    developer.locator("#redirect_uris").fill(
        "https://www.myleague.com/oauth/callback\nhttps://staging.myleague.com/oauth/callback"
    )
    developer.get_by_role("button", name="Resubmit").click()
    expect(developer.locator("#request-status")).to_have_text("Waiting for review")
    expect(developer.locator("ol.history")).to_contain_text("resubmitted")


def test_public_single_page_app_gets_no_secret(stage: Stage, people: tuple[Page, Page]) -> None:
    developer, staff = people
    developer.goto("/portal/requests/new?template=league-manager")
    developer.locator("#client_name").fill("Lap Chart")
    developer.locator("#client_type").select_option("single-page-app")
    developer.locator("#redirect_uris").fill("https://laps.example/callback")
    developer.get_by_role("button", name="Send the request").click()
    decide(staff, "Lap Chart", "Approve and issue")
    developer.goto("/portal/clients/lap-chart")
    expect(developer.get_by_text("public client: no secret, PKCE required")).to_be_visible()
    expect(developer.get_by_role("button", name="Show the secret once")).to_have_count(0)
    expect(developer.get_by_role("button", name="Rotate the secret")).to_have_count(0)
