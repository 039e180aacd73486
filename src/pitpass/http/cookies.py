"""Pitpass's own cookies: their names and the one way they are set and deleted."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from pitpass.http.context import app_context

SESSION_COOKIE = "pitpass_session"
REMEMBER_COOKIE = "pitpass_remember"
CHALLENGE_COOKIE = "pitpass_signin"
CSRF_COOKIE = "pitpass_csrf"


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
