"""Staff in Chromium (issue #12, acceptance): the console home's counts, then finding a
member by email and disabling the account with a reason, after which that member's
access token fails introspection and `/oauth2/iracing/profile`."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from pitpass.core.masking import mask_secret
from pitpass.db.models import RegistrationRequest, utcnow
from pitpass.services.members import find_by_email
from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
STAFF = "staff@example.com"
MEMBER = "ana.kart@example.com"


def waiting_requests(stage: Stage, *submitted_days_ago: int) -> None:
    """Requests sent that many days ago, waiting for staff (due ten days after sending)."""
    with stage.server.provision.context.session() as db:
        requester = find_by_email(db, STAFF)
        assert requester is not None
        for number, days in enumerate(submitted_days_ago):
            submitted = utcnow() - timedelta(days=days)
            db.add(
                RegistrationRequest(
                    requester_id=requester.id,
                    status="submitted",
                    client_name=f"League Tool {number + 1}",
                    client_type="server-side",
                    flows=["authorization_code"],
                    developer_email="dev@example.com",
                    redirect_uris=["https://league.example/cb"],
                    audiences=[],
                    submitted_at=submitted,
                    due_at=submitted + timedelta(days=10),
                )
            )


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious or critical findings on the page as it stands."""
    found = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def scrolls_sideways(page: Page) -> bool:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width > page.viewport_size["width"]  # type: ignore[index]


def test_staff_disable_a_member_whose_token_then_fails(stage: Stage) -> None:
    stage.add_member(STAFF, PASSWORD, staff=True)
    stage.add_member(MEMBER, PASSWORD)
    provision = stage.server.provision
    client_id, secret = provision.client(STAFF, "Telemetry Uploader", flows=("password_limited",))
    assert secret is not None
    provision.add_to_access_list(client_id, MEMBER, STAFF)
    issuer = f"{stage.server.base_url}/oauth2"
    auth = {"client_id": client_id, "client_secret": mask_secret(secret, client_id)}
    tokens = httpx.post(
        f"{issuer}/token",
        data={
            "grant_type": "password_limited",
            "username": MEMBER,
            "password": mask_secret(PASSWORD, MEMBER),
            "scope": "iracing.auth iracing.profile",
            **auth,
        },
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{issuer}/iracing/profile", headers=bearer).status_code == 200
    assert httpx.post(
        f"{issuer}/introspect", data={"token": tokens["access_token"], **auth}
    ).json()["active"]
    waiting_requests(stage, 12, 9, 1)  # one overdue, one due within two days, one fresh

    # The console home counts the queue.
    page = stage.sign_in(STAFF, PASSWORD, "/console")
    counts = page.locator("#queue-counts")
    expect(
        counts.locator("div", has_text="Waiting for review").get_by_role("definition")
    ).to_have_text("3")
    expect(
        counts.locator("div", has_text="Due within 2 days").get_by_role("definition")
    ).to_have_text("1")
    expect(counts.locator("div", has_text="Overdue").get_by_role("definition")).to_have_text("1")
    oldest = page.get_by_role("list").filter(has_text="League Tool 1").first
    expect(oldest.get_by_role("link").first).to_have_text("#1 League Tool 1")

    # Find the member by email and open their page.
    page.get_by_role("link", name="Members", exact=True).click()
    page.get_by_label("Find a member").fill(MEMBER)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 member match")).to_be_visible()
    page.get_by_role("link", name="Ana.Kart").click()
    expect(page.get_by_role("heading", name="Ana.Kart")).to_be_visible()
    expect(page.locator("#member-state")).to_have_text(re.compile("^enabled"))
    expect(page.get_by_role("cell", name="Telemetry Uploader")).to_be_visible()

    # Disabling without a reason is refused beside the field.
    page.get_by_role("button", name="Disable the account").click()
    expect(page.locator("#reason-error")).to_have_text(re.compile("Say why"))
    expect(page.get_by_label("Reason")).to_have_attribute("aria-invalid", "true")

    # With a reason, one confirmation step, then the notice.
    page.get_by_label("Reason").fill("Selling accounts")
    page.get_by_role("button", name="Disable the account").click()
    expect(page.get_by_role("heading", name=f"Disable {MEMBER}?")).to_be_visible()
    expect(page.get_by_text("Selling accounts")).to_be_visible()
    page.get_by_role("button", name="Disable the account").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Account disabled"))
    expect(page.locator("#member-state")).to_have_text(re.compile("^disabled"))
    events = page.locator("#member-events")
    expect(events.get_by_role("row", name=re.compile("member.disabled"))).to_contain_text(
        "Selling accounts"
    )
    expect(events.get_by_role("row", name=re.compile("member.disabled"))).to_contain_text(STAFF)
    expect(page.locator("#member-oauth-sessions")).to_contain_text("No live session.")

    # The member's token is dead at once.
    introspected = httpx.post(
        f"{issuer}/introspect", data={"token": tokens["access_token"], **auth}
    )
    assert introspected.json() == {"active": False}
    profile = httpx.get(f"{issuer}/iracing/profile", headers=bearer)
    assert profile.status_code == 401
    assert "invalid_token" in profile.headers["www-authenticate"]

    # The staff pages read on a phone, and pass axe-core.
    member_page = page.url.split("?")[0]
    for path in ("/console", f"/console/members?q={MEMBER}", member_page):
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(path)
            assert not scrolls_sideways(page), f"{path} scrolls sideways at {width} px"
        assert serious_violations(page) == [], path
