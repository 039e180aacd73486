"""The developer journeys of issue #12 (items 4, 5, 6) in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stage
from tests.browser.test_registration_browser import decide, people, submit_template

pytestmark = pytest.mark.browser

__all__ = ["people"]  # the fixture, shared with the registration journeys


def approved_league_manager(developer: Page, staff: Page) -> None:
    submit_template(developer, "league-manager")
    expect(developer.locator("#request-status")).to_have_text("Waiting for review")
    decide(staff, "My League Manager", "Approve and issue")
    expect(staff.get_by_role("status")).to_have_text(
        "Request approved: the developer has been emailed."
    )


def test_a_type_change_is_refused_beside_the_type_field(
    stage: Stage, people: tuple[Page, Page]
) -> None:
    developer, staff = people
    approved_league_manager(developer, staff)
    developer.goto("/portal/clients/my-league-manager")
    developer.get_by_role("link", name=re.compile("Ask to change")).click()
    developer.get_by_label("Client type").select_option(label="Single-page app")
    developer.get_by_role("button", name="Send the change request").click()
    error = developer.locator("#client_type-error")
    expect(error).to_have_text("the client type cannot change: request a new client instead")
    expect(developer.get_by_label("Client type")).to_have_attribute("aria-invalid", "true")
    expect(developer.get_by_role("alert")).to_contain_text("fix the 1 problem(s)")
    # Nothing was sent: the portal lists only the first request.
    developer.goto("/portal")
    expect(developer.locator("#my-requests tbody tr")).to_have_count(1)


def test_every_bad_redirect_uri_gets_its_own_message(
    stage: Stage, people: tuple[Page, Page]
) -> None:
    developer, _staff = people
    developer.goto("/portal/requests/new?template=league-manager")
    developer.get_by_label("Redirect URIs").fill(
        "https://www.myleague.com/oauth/callback\n"
        "http://www.myleague.com/cb\n"
        "https://www.myleague.com/cb#done\n"
        "https://*.myleague.com/cb"
    )
    developer.get_by_role("button", name="Send the request").click()
    messages = developer.locator("p.field-error")
    expect(messages).to_have_count(3)
    expect(developer.locator("#redirect_uris-1-error")).to_contain_text("Redirect URI 2")
    expect(developer.locator("#redirect_uris-1-error")).to_contain_text("http is only allowed")
    expect(developer.locator("#redirect_uris-2-error")).to_contain_text("fragment")
    expect(developer.locator("#redirect_uris-3-error")).to_contain_text("wildcards")
    expect(developer.get_by_role("alert")).to_contain_text("fix the 3 problem(s) marked below")


def test_staff_see_what_a_change_would_change_and_checks_stay_green(
    stage: Stage, people: tuple[Page, Page]
) -> None:
    developer, staff = people
    approved_league_manager(developer, staff)
    expect(staff.locator("#checks")).to_have_text("All checks pass.")  # not against itself

    developer.goto("/portal/clients/my-league-manager/change")
    developer.get_by_label(re.compile("^Developer's name")).fill("My Racing League Ltd.")
    developer.get_by_label("Redirect URIs").fill(
        "https://www.myleague.com/oauth/callback\nhttps://new.myleague.com/oauth/callback"
    )
    developer.get_by_role("button", name="Send the change request").click()
    expect(developer.get_by_role("status")).to_contain_text("Change request sent")

    staff.goto("/console/requests")
    staff.get_by_role("row", name=re.compile("My League Manager")).get_by_role("link").click()
    changes = staff.locator("#changes")
    expect(changes).to_contain_text("My Racing League Inc. → My Racing League Ltd.")
    expect(changes).to_contain_text("added: https://new.myleague.com/oauth/callback")
    expect(changes).to_contain_text("removed: https://staging.myleague.com/oauth/callback")
    expect(changes).not_to_contain_text("Client name")
    expect(staff.locator("#checks")).to_have_text("All checks pass.")
    staff.get_by_role("button", name="Approve and issue").click()
    expect(staff.locator("#checks")).to_have_text("All checks pass.")


def test_client_page_copies_the_id_and_shows_ready_snippets(
    stage: Stage, people: tuple[Page, Page]
) -> None:
    developer, staff = people
    approved_league_manager(developer, staff)
    developer.context.grant_permissions(["clipboard-read", "clipboard-write"])
    developer.goto("/portal/clients/my-league-manager")
    developer.get_by_role("button", name="Copy client_id").click()
    expect(developer.get_by_role("button", name="Copied")).to_be_visible()
    copied = developer.evaluate("navigator.clipboard.readText()")
    assert copied == "my-league-manager"
    expect(developer.locator("#curl-authorization_code")).to_contain_text(
        'client_secret=$(mask "$CLIENT_SECRET" my-league-manager)'
    )
    expect(developer.locator("#python-authorization_code")).to_contain_text(
        '"client_secret": mask(CLIENT_SECRET, CLIENT_ID)'
    )
    expect(developer.locator("#python-authorization_code")).to_contain_text("import requests")
    developer.set_viewport_size({"width": 390, "height": 800})  # snippets wrap on a phone
    assert developer.evaluate("document.documentElement.scrollWidth") <= 390
    developer.set_viewport_size({"width": 1280, "height": 800})

    developer.get_by_role("button", name="Show the secret once").click()
    expect(developer.get_by_role("button", name="Copy client_secret")).to_be_visible()

    developer.goto("/portal/clients/my-league-manager")
    developer.get_by_role("button", name="Rotate the secret").click()
    expect(developer.get_by_role("heading", name=re.compile("Rotate the secret"))).to_be_visible()
    developer.get_by_role("link", name="Cancel").click()
    expect(developer.locator("#secret-status")).to_contain_text("never")  # not rotated
