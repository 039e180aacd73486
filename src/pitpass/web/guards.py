"""Pages that need a signed-in member, or staff (the API answers 401/403 itself)."""

from __future__ import annotations

from fastapi import Request

from pitpass.db.models import Member
from pitpass.http.members import SignInRequired, StaffOnly, current_member


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
