"""The account page where members see and end what they granted (issue #4, item 6), over
real HTTP against the shared protocol server."""

from __future__ import annotations

import re

from tests.e2e.oauth_world import (
    CALLBACK,
    World,
    claims_of,
    two_sessions_in_chrome,
)


class TestConnectedApps:
    """The account page where members see and end what they granted (issue #4, item 6)."""

    def test_sign_out_a_session_and_withdraw_consent(self, world: World) -> None:
        client_id, browser, tokens = two_sessions_in_chrome(world)
        page = browser.get("/account/apps")
        assert page.status_code == 200
        assert page.text.count('/sign-out" class="inline"') >= 2
        assert "Chrome on Linux" in page.text
        first_session = claims_of(tokens[0]["access_token"])["session_id"]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        out = browser.post(
            f"/account/apps/sessions/{first_session}/sign-out", data={"csrf_token": csrf.group(1)}
        )
        assert out.status_code == 303
        first = {"Authorization": f"Bearer {tokens[0]['access_token']}"}
        second = {"Authorization": f"Bearer {tokens[1]['access_token']}"}
        assert world.browser().get("/oauth2/sessions", headers=first).status_code == 401
        assert world.browser().get("/oauth2/sessions", headers=second).status_code == 200
        withdraw = f"/account/apps/{client_id}/withdraw"
        asked = browser.post(withdraw, data={"csrf_token": csrf.group(1)})
        assert asked.status_code == 200 and 'name="confirmed" value="yes"' in asked.text
        assert world.browser().get("/oauth2/sessions", headers=second).status_code == 200
        withdrawn = browser.post(withdraw, data={"csrf_token": csrf.group(1), "confirmed": "yes"})
        assert withdrawn.status_code == 303
        assert withdrawn.headers["location"] == "/account/apps?done=consent-withdrawn"
        assert world.browser().get("/oauth2/sessions", headers=second).status_code == 401
        again = browser.get(
            "/oauth2/authorize",
            params={"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"},
        )
        assert again.status_code == 200 and "decision" in again.text  # asks again
        forged = browser.post(f"/account/apps/{client_id}/withdraw", data={"csrf_token": "x" * 64})
        assert forged.status_code == 403
