"""CSRF: signed double-submit (the form token is an HMAC of this browser's cookie).

Pages send the token as a form field, the JSON API as the `X-CSRF-Token` header,
the consent form like any page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from pitpass.http.context import app_context
from pitpass.http.cookies import CSRF_COOKIE, set_cookie
from pitpass.services.crypto import new_token


class CsrfRejected(Exception):
    """A form came without the token of this browser: nothing was changed."""


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


def set_minted_cookie(request: Request, response: Any) -> None:
    """Give the browser the cookie its token was made from, if this request minted one."""
    minted = getattr(request.state, "minted_csrf", None)
    if minted is not None:
        set_cookie(request, response, CSRF_COOKIE, minted, max_age=None)


def require_csrf(request: Request, submitted: str) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        raise CsrfRejected
    if not app_context(request).keyring.csrf_token_matches(cookie, submitted):
        raise CsrfRejected
