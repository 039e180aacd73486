"""Forgot password and the reset link (issue #12, item 1); services/password_reset.py.

The sign-in journey's `next` path goes from /signin through the request, the link (kept
in password_resets.next_path) and back to /signin, so an app's sign-in is not lost.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitpass.core.paths import safe_next_path
from pitpass.http.caller import client_of
from pitpass.http.context import app_context, deliver_later
from pitpass.http.cookies import REMEMBER_COOKIE, SESSION_COOKIE, delete_cookie
from pitpass.http.csrf import require_csrf
from pitpass.http.journey import app_journey
from pitpass.http.members import signin_url
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.services import password_reset
from pitpass.services.account_security import SettingsRefused

router = APIRouter()

FormText = Annotated[str, Form()]


def _forgot_page(request: Request, next_path: str, email: str = "", **more: object) -> Response:
    refused = more.pop("refused", None)
    values = {
        "next": next_path,
        "journey": app_journey(request, next_path),
        "email": email,
        "errors": refused.errors if isinstance(refused, SettingsRefused) else {},
        "minutes": app_context(request).settings.password_reset_minutes,
    }
    if not isinstance(refused, SettingsRefused):
        return render(request, "forgot.html", values)
    page = render(request, "forgot.html", values, status_code=refused.status_code)
    if refused.retry_after:
        page.headers["Retry-After"] = str(refused.retry_after)
    return page


@router.get("/signin/forgot", response_class=HTMLResponse)
def forgot_page(request: Request, next: str = "") -> Response:
    return _forgot_page(request, safe_next_path(next))


@router.post("/signin/forgot", response_class=HTMLResponse)
def forgot_submit(
    request: Request,
    background: BackgroundTasks,
    email: FormText = "",
    next: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    """The same answer for every well-formed email: the link is made after it is sent."""
    require_csrf(request, csrf_token)
    context = app_context(request)
    client = client_of(request)
    next_path = safe_next_path(next)
    with context.session() as db:
        try:
            checked = password_reset.check_request(context, db, email, client)
        except SettingsRefused as refused:  # its audit event is committed
            return _forgot_page(request, next_path, email[:320], refused=refused)
    background.add_task(password_reset.send_link, context, checked, next_path, client)
    return RedirectResponse(
        "/signin/forgot/sent?" + urlencode({"next": next_path}), status_code=303
    )


@router.get("/signin/forgot/sent", response_class=HTMLResponse)
def forgot_sent(request: Request, next: str = "") -> Response:
    minutes = app_context(request).settings.password_reset_minutes
    next_path = safe_next_path(next)
    values = {"next": next_path, "minutes": minutes, "journey": app_journey(request, next_path)}
    return render(request, "forgot_sent.html", values)


def _link_problem(request: Request, link: password_reset.Link) -> Response:
    next_path = link.reset.next_path if link.reset else safe_next_path("")
    return render(
        request,
        "reset_link.html",
        {"message": link.message, "next": next_path, "journey": app_journey(request, next_path)},
        status_code=410 if link.reset else 404,
    )


@router.get("/signin/reset", response_class=HTMLResponse)
def reset_page(request: Request, token: str = "") -> Response:
    """Only shows the form: a mail scanner that opens the link spends nothing. The token
    rides in the query string, which the access log leaves out (middleware.py)."""
    context = app_context(request)
    with context.session() as db:
        link = password_reset.open_link(context, db, token)
    if link.state is not password_reset.LinkState.OPEN or link.member is None:
        return _link_problem(request, link)
    journey = app_journey(request, link.reset.next_path if link.reset else None)
    values: dict[str, object] = {
        "token": token,
        "email": link.member.email,
        "errors": {},
        "journey": journey,
    }
    return render(request, "reset.html", values)


@router.post("/signin/reset", response_class=HTMLResponse)
def reset_submit(
    request: Request,
    background: BackgroundTasks,
    token: FormText = "",
    password: FormText = "",
    password_again: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    require_csrf(request, csrf_token)
    context = app_context(request)
    client = client_of(request)
    try:
        with context.session() as db:
            link = password_reset.open_link(context, db, token)
            email = link.member.email if link.member else ""
            next_path = link.reset.next_path if link.reset else ""
            if link.state is not password_reset.LinkState.OPEN or link.reset is None:
                return _link_problem(request, link)
            mail_ids = password_reset.reset_password(
                context, db, link, password, password_again, client
            )
    except SettingsRefused as refused:
        journey = app_journey(request, next_path)
        values = {"token": token, "email": email, "errors": refused.errors, "journey": journey}
        return render(request, "reset.html", values, status_code=400)
    deliver_later(background, context, mail_ids)
    response = RedirectResponse(done_url(signin_url(next_path), "password-reset"), status_code=303)
    # Signed out and forgotten on the server already; the cookies go too.
    delete_cookie(request, response, SESSION_COOKIE)
    delete_cookie(request, response, REMEMBER_COOKIE)
    return response
