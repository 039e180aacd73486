"""Who is signed in: the browser's live web session and its member.

Pages, the JSON API and `/authorize` all answer "who is this" with
`browser_session`; the rule for a live session is services/signin.py's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy.orm import Session

from pitpass.db.models import Member
from pitpass.http.context import app_context
from pitpass.http.cookies import SESSION_COOKIE
from pitpass.services.signin import SignedIn, live_web_session


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class StaffOnly(Exception):
    pass


class TwoStepRequired(Exception):
    """PITPASS_STAFF_REQUIRE_TOTP: a staff page asked for by staff without the app."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def browser_session(request: Request, db: Session) -> SignedIn | None:
    """This browser's live web session and its member, read in the caller's unit of work."""
    return live_web_session(app_context(request), db, request.cookies.get(SESSION_COOKIE))


_NOT_LOOKED_UP = object()


def current_member(request: Request) -> Member | None:
    """The member whose browser sent this request; looked up once per request."""
    member = getattr(request.state, "member", _NOT_LOOKED_UP)
    if member is _NOT_LOOKED_UP:
        with app_context(request).session() as db:
            signed_in = browser_session(request, db)
        member = signed_in.member if signed_in else None
        request.state.member = member
    return member  # type: ignore[return-value]


def signin_url(next_path: str) -> str:
    return "/signin?" + urlencode({"next": next_path})
