"""The one page renderer: Pitpass's own pages and the consent page of `/authorize`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from pitpass.http.context import app_context
from pitpass.http.csrf import csrf_token, set_minted_cookie
from pitpass.http.labels import label
from pitpass.http.members import current_member
from pitpass.http.notices import notice_for

# The templates stay beside the pages that own most of them (and in package-data).
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent.parent / "web" / "templates"))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


TEMPLATES.env.filters["when"] = _when
TEMPLATES.env.filters["label"] = label


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    settings = app_context(request).settings
    values: dict[str, Any] = {
        "service_name": settings.profile.service_name,
        "member": current_member(request),
        "csrf_token": csrf_token(request),
        "signup_open": settings.signup_open,
        "due_days": settings.request_due_days,
        "book_path": settings.issuer_path.rstrip("/") + "/book/",
        # The confirmation of the action that led here (http/notices.py); a page's own
        # notice, when it passes one, takes its place.
        "notice": notice_for(request.query_params.get("done")),
    }
    values.update(
        {key: value for key, value in (context or {}).items() if key != "notice" or value}
    )
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    set_minted_cookie(request, response)
    return response
