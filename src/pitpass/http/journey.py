"""An app's sign-in is one journey (issue #12, item 3).

When the page after sign-in is `/authorize` of an enabled client, the sign-in, sign-up,
code and reset pages say "to continue to <client> by <developer>" (`_continuing.html`).
A page passes `"journey": app_journey(request, next_path)` to `render` and puts
`{% include "_continuing.html" %}` under its heading; forms and links keep `next`
(`with_next`), so every path ends at consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Request

from pitpass.core.paths import safe_next_path
from pitpass.http.context import app_context
from pitpass.services.clients import by_client_id


@dataclass(frozen=True)
class Journey:
    """The app a member is signing in for, in the words its consent page uses."""

    client_name: str
    developer_name: str | None


def authorize_client_id(request: Request, next_path: str | None) -> str | None:
    """The `client_id` of a safe next path that is this issuer's `/authorize`, else None."""
    path = safe_next_path(next_path, default="")
    if not path:
        return None
    parts = urlsplit(path)
    issuer_path = app_context(request).settings.issuer_path.rstrip("/")
    if parts.path != f"{issuer_path}/authorize":
        return None
    client_ids = parse_qs(parts.query).get("client_id", [])
    return client_ids[0] if len(client_ids) == 1 else None  # a repeated one is refused there


def app_journey(request: Request, next_path: str | None) -> Journey | None:
    """The app behind `next_path`, or None when it is no app's sign-in (or the client is
    unknown or disabled: `/authorize` would refuse it, so no page may name it)."""
    client_id = authorize_client_id(request, next_path)
    if not client_id:
        return None
    with app_context(request).session() as db:
        client = by_client_id(db, client_id)
        if client is None or client.is_disabled:
            return None
        return Journey(client_name=client.name, developer_name=client.developer_name)


def with_next(path: str, next_path: str | None) -> str:
    """`path` carrying the page to return to, when there is one to keep."""
    kept = safe_next_path(next_path, default="")
    return f"{path}?{urlencode({'next': kept})}" if kept else path
