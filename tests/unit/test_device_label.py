"""Connected apps name a session's device honestly (issue #12, item 10)."""

from __future__ import annotations

import pytest

from pitpass.services.connected_apps import device_label

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.mark.parametrize(
    ("user_agent", "shown"),
    [
        (CHROME, "Chrome on Linux"),
        (IPHONE, "Mobile Safari on iOS"),
        ("curl/8.5.0", "Not a browser: the app or its server (curl)"),
        ("python-requests/2.31", "Not a browser: the app or its server (Python Requests)"),
        ("python-httpx/0.27.0", "Not a browser: the app or its server"),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1)",
            "Not a browser: the app or its server (Googlebot)",
        ),
        (None, "Unknown device"),
        ("", "Unknown device"),
    ],
)
def test_device_label(user_agent: str | None, shown: str) -> None:
    assert device_label(user_agent) == shown
