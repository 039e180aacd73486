"""The short confirmation a page shows after an action (issue #12, item 8).

An action redirects with `?done=<key>`; the next page shows the sentence for that key.
Only keys listed here are shown, so the query string cannot put words on a page.
"""

from __future__ import annotations

NOTICES: dict[str, str] = {
    "signed-out": "You are signed out.",
    "app-signed-out": "The app is signed out on every device.",
    "consent-withdrawn": "Consent withdrawn: the app is signed out and must ask again.",
}


def notice_for(done: str | None) -> str:
    """The sentence for a `done` key, or nothing for a key this module does not know."""
    return NOTICES.get(done or "", "")


def done_url(path: str, key: str) -> str:
    """`path` with the confirmation `key` added to its query string."""
    if key not in NOTICES:
        raise KeyError(f"no notice for {key!r}: add it to NOTICES")
    separator = "&" if "?" in path else "?"
    return f"{path}{separator}done={key}"
