"""The member's own account page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitpass.services import audit, signin
from pitpass.web.common import (
    REMEMBER_COOKIE,
    app_context,
    client_of,
    delete_cookie,
    render,
    require_csrf,
    require_member,
)

router = APIRouter()


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    return RedirectResponse("/account", status_code=303)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, forgotten: str = "") -> Response:
    member = require_member(request)
    context = app_context(request)
    with context.session() as db:
        memory = signin.browser_memory(context, db, request.cookies.get(REMEMBER_COOKIE), member)
    return render(
        request,
        "account.html",
        {
            "remembered": memory is signin.BrowserMemory.REMEMBERED,
            "notice": "This browser will ask for a code at the next sign-in." if forgotten else "",
        },
    )


@router.post("/account/forget-browser")
def forget_browser(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    require_csrf(request, csrf_token)
    member = require_member(request)
    context = app_context(request)
    with context.session() as db:
        signin.forget_browser(context, db, request.cookies.get(REMEMBER_COOKIE))
        audit.record(db, "browser.forgotten", actor=member, ip=client_of(request).ip)
    response = RedirectResponse("/account?forgotten=1", status_code=303)
    delete_cookie(request, response, REMEMBER_COOKIE)
    return response
