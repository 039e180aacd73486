"""Download my data and delete my account in a real browser (issue #12, acceptance)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from pitpass.core.masking import mask_secret
from tests.browser.conftest import Stage
from tests.browser.test_two_step_browser import fits_a_phone, no_serious_axe_violation

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
EMAIL = "ana@example.com"


def test_download_my_data(stage: Stage) -> None:
    stage.add_member(EMAIL, PASSWORD)
    page = stage.sign_in(EMAIL, PASSWORD)
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download my data").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".json")
    text = Path(download.path()).read_text()
    data = json.loads(text)
    assert data["profile"]["email"] == EMAIL
    assert len(data["web_sessions"]) == 1
    assert "password_hash" not in text and "$argon2" not in text


def test_delete_my_account(stage: Stage) -> None:
    stage.add_member("staff@example.com", PASSWORD, staff=True)
    stage.add_member(EMAIL, PASSWORD)
    base = stage.server.base_url
    # An app Ana lets sign in with her password, and one she owns.
    app_id, app_secret = stage.server.provision.client(
        "staff@example.com", "Data Tool", flows=("password_limited",), redirect_uris=()
    )
    assert app_secret is not None
    stage.server.provision.add_to_access_list(app_id, EMAIL, "staff@example.com")
    stage.server.provision.client(
        "staff@example.com",
        "Ana's Telemetry",
        redirect_uris=("https://ana.example/cb",),
        developer_email=EMAIL,
    )
    app_auth = {"client_id": app_id, "client_secret": mask_secret(app_secret, app_id)}
    token = httpx.post(
        f"{base}/oauth2/token",
        data={
            "grant_type": "password_limited",
            "username": EMAIL,
            "password": mask_secret(PASSWORD, EMAIL),
            **app_auth,
        },
    ).json()["access_token"]

    def introspect() -> object:
        answer = httpx.post(f"{base}/oauth2/introspect", data={"token": token, **app_auth})
        return answer.json()["active"]

    assert introspect() is True

    page = stage.sign_in(EMAIL, PASSWORD)
    page.get_by_role("link", name="Delete my account").click()
    expect(page.locator("#clients-to-disable")).to_contain_text("Ana's Telemetry")
    no_serious_axe_violation(page)
    fits_a_phone(page)
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#password-error")).to_have_text("That is not your password.")

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Delete your account for good?")).to_be_visible()
    expect(page.get_by_text(re.compile("Ana's Telemetry will be disabled"))).to_be_visible()
    assert introspect() is True  # nothing happened yet
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(re.compile("/signin"))
    expect(page.get_by_role("status")).to_have_text(re.compile("Your account is deleted"))
    assert stage.mailbox.wait_for_match(EMAIL, "account was deleted")

    page.goto("/account")
    expect(page).to_have_url(re.compile("/signin"))  # signed out
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")
    assert introspect() is False
