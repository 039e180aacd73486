"""Where a page may send the browser next (no open redirects)."""

from __future__ import annotations

from urllib.parse import urlsplit

# The sign-in challenge keeps the next page in a column this long (db/models.py).
MAX_NEXT_PATH = 2000


def safe_next_path(candidate: str | None, default: str = "/account") -> str:
    """Return `candidate` only when it is a path on this site, else `default`.

    Rejects absolute URLs, scheme-relative `//host` and the `/\\host` form that
    some browsers read as scheme-relative, and paths longer than `MAX_NEXT_PATH`.
    """
    if not candidate or len(candidate) > MAX_NEXT_PATH:
        return default
    if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 0x20 for ch in candidate):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate
