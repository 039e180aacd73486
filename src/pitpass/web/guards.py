"""Pages that need a signed-in member, or staff (the API answers 401/403 itself)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from pitpass.db.models import Member
from pitpass.http.context import app_context
from pitpass.http.members import (
    SignInRequired,
    StaffOnly,
    TwoStepRequired,
    browser_session,
    current_member,
)
from pitpass.services import totp


def _this_path(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def require_member(request: Request) -> Member:
    member = current_member(request)
    if member is None:
        raise SignInRequired(_this_path(request))
    return member


def signed_in_here(request: Request, db: Session) -> tuple[Member, int]:
    """The signed-in member, loaded in this unit of work (to change), and the id of
    their web session."""
    require_member(request)
    signed_in = browser_session(request, db)
    if signed_in is None:  # signed out a moment ago, by another tab
        raise SignInRequired(_this_path(request))
    return signed_in.member, signed_in.web_session.id


def require_staff(request: Request) -> Member:
    member = require_member(request)
    if not member.is_staff:
        raise StaffOnly
    if totp.staff_must_enrol(app_context(request).settings, member):
        raise TwoStepRequired(_this_path(request))  # to the set-up page, then back here
    return member
