"""What every page shares: templates, cookies, CSRF, the signed-in member."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import BackgroundTasks, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from pitpass.db.models import Member
from pitpass.services.context import AppContext
from pitpass.services.crypto import constant_time_equals, new_token
from pitpass.services.signin import Client, signed_in_member

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


TEMPLATES.env.filters["when"] = _when

SESSION_COOKIE = "pitpass_session"
REMEMBER_COOKIE = "pitpass_remember"
CHALLENGE_COOKIE = "pitpass_signin"
CSRF_COOKIE = "pitpass_csrf"


class CsrfRejected(Exception):
    """A form came without the token of this browser: nothing was changed."""


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class StaffOnly(Exception):
    pass


def app_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def deliver_later(background: BackgroundTasks, context: AppContext, mail_ids: list[int]) -> None:
    """Send committed outbox messages after the response (services/mail.py)."""
    if mail_ids:
        background.add_task(context.mailer.deliver, context.session_factory, mail_ids)


def client_of(request: Request) -> Client:
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def cookie_is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or app_context(request).settings.uses_https


def set_cookie(request: Request, response: Any, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=cookie_is_secure(request),
        path="/",
    )


def delete_cookie(request: Request, response: Any, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="lax", secure=cookie_is_secure(request)
    )


# ----- CSRF: signed double-submit (the form token is an HMAC of this browser's cookie) --


def _csrf_cookie_value(request: Request) -> str:
    value = request.cookies.get(CSRF_COOKIE)
    if value and len(value) >= 32:
        return value
    minted: str | None = getattr(request.state, "minted_csrf", None)
    if minted is None:
        minted = new_token()
        request.state.minted_csrf = minted
    return minted


def csrf_token(request: Request) -> str:
    return app_context(request).keyring.csrf_token_for(_csrf_cookie_value(request))


def require_csrf(request: Request, submitted: str) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        raise CsrfRejected
    expected = app_context(request).keyring.csrf_token_for(cookie)
    if not constant_time_equals(expected, submitted):
        raise CsrfRejected


# ----- who is signed in ----------------------------------------------------------


_NOT_LOOKED_UP = object()


def current_member(request: Request) -> Member | None:
    """The member whose browser sent this request; looked up once per request."""
    member = getattr(request.state, "member", _NOT_LOOKED_UP)
    if member is _NOT_LOOKED_UP:
        context = app_context(request)
        with context.session() as db:
            member = signed_in_member(context, db, request.cookies.get(SESSION_COOKIE))
        request.state.member = member
    return member  # type: ignore[return-value]


def require_member(request: Request) -> Member:
    member = current_member(request)
    if member is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return member


def require_staff(request: Request) -> Member:
    member = require_member(request)
    if not member.is_staff:
        raise StaffOnly
    return member


def signin_url(next_path: str) -> str:
    return "/signin?" + urlencode({"next": next_path})


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
    }
    values.update(context or {})
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    minted = getattr(request.state, "minted_csrf", None)
    if minted is not None:
        response.set_cookie(
            CSRF_COOKIE,
            minted,
            httponly=True,
            samesite="lax",
            secure=cookie_is_secure(request),
            path="/",
        )
    return response
