"""The confirmation step of destructive actions (issue #12, item 8).

A destructive form posts without `confirmed`; the route answers with this page, which
repeats the form's fields with `confirmed=yes` and a plainly worded button. Only the
second post acts. No script is needed, and the CSRF token travels with the form.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import HTMLResponse

from pitpass.core.paths import safe_next_path
from pitpass.http.render import render

CONFIRMED = "yes"


def is_confirmed(confirmed: str) -> bool:
    """True when the form came from the confirmation page."""
    return confirmed == CONFIRMED


def confirmation_page(
    request: Request,
    *,
    title: str,
    explanation: str,
    button: str,
    cancel_path: str,
    fields: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Ask once more before the action at this request's own path (same method, POST)."""
    return render(
        request,
        "confirm.html",
        {
            "title": title,
            "explanation": explanation,
            "button": button,
            "action": request.url.path,
            "cancel_path": safe_next_path(cancel_path),
            "fields": dict(fields or {}),
            "confirmed_value": CONFIRMED,
        },
    )
