"""The kit's loopback flow for native apps (RFC 8252, issue #13 acceptance): a native
client registered as `http://127.0.0.1/callback` signs a member in; Playwright's
Chromium plays the system browser the kit opens."""

from __future__ import annotations

import queue
import threading

import httpx
import pytest

from pitpass_kit.client import OAuthClient
from pitpass_kit.stores import TokenSet
from tests.browser.conftest import Stage

pytestmark = pytest.mark.browser

PASSWORD = "a sturdy test password"
SCOPE = "iracing.auth iracing.profile"  # iracing.auth brings a refresh token


def test_loopback_flow_completes_in_chromium(stage: Stage) -> None:
    stage.add_member("staff@example.com", PASSWORD, staff=True)
    stage.add_member("ana@example.com", PASSWORD)
    client_id, secret = stage.server.provision.client(
        "staff@example.com",
        "Lap Timer Desktop",
        "native",
        redirect_uris=("http://127.0.0.1/callback",),
    )
    assert secret is None  # a native client is public: PKCE, no secret
    client = OAuthClient(f"{stage.server.base_url}/oauth2", client_id, require_iss=True)

    opened: queue.Queue[str] = queue.Queue()
    outcome: list[TokenSet | BaseException] = []

    def app() -> None:
        try:
            outcome.append(client.sign_in_with_browser(SCOPE, open_browser=opened.put))
        except BaseException as error:
            outcome.append(error)

    running = threading.Thread(target=app, daemon=True)
    running.start()
    url = opened.get(timeout=30)

    # Another local program guessing at the port cannot end or hijack the sign-in.
    redirect_uri = httpx.URL(url).params["redirect_uri"]
    forged = httpx.get(f"{redirect_uri}?code=stolen&state=guess", timeout=10)
    assert forged.status_code == 400 and running.is_alive()

    page = stage.new_page()
    page.goto(url)
    page.get_by_label("Email").fill("ana@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(stage.mailbox.code_for("ana@example.com"))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("heading", name="Back to the app").wait_for()
    running.join(timeout=30)
    assert not running.is_alive()

    assert len(outcome) == 1 and isinstance(outcome[0], TokenSet), outcome
    assert outcome[0].scope == SCOPE and outcome[0].refresh_token
    assert redirect_uri.startswith("http://127.0.0.1:") and redirect_uri.endswith("/callback")
    profile = httpx.get(f"{stage.server.base_url}/oauth2/iracing/profile", auth=client.auth())
    assert profile.json()["iracing_cust_id"] > 0
