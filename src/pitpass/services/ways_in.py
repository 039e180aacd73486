"""Ending every way into an account at once: one rule for a password change or reset, an
email change, a disable and a deletion (issue #12), so that none of them forgets one.

The ways in are web sessions, remembered browsers, what a sign-in may still complete
(sign-in codes, email changes, reset links) and, when asked, the apps' OAuth sessions
(whose access and refresh tokens then fail at once: introspection and the Bearer
endpoints read the session on every call)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from pitpass.core.policy import SignOutReason
from pitpass.db.models import (
    EmailChange,
    Member,
    PasswordReset,
    RememberedBrowser,
    SignInChallenge,
    WebSession,
    utcnow,
)
from pitpass.storage import sync
from pitpass.storage.records import SessionsToSignOut


@dataclass(frozen=True)
class Ended:
    web_sessions: int
    app_sessions: int


def end_ways_in(
    db: Session,
    member: Member,
    *,
    keep_session_id: int | None = None,
    forget_browsers: bool = True,
    apps: SignOutReason | None = None,
) -> Ended:
    """End the member's web sessions (but `keep_session_id`, the browser acting), every
    pending sign-in code, email change and reset link, the remembered browsers when
    `forget_browsers`, and the apps' sessions when `apps` gives the reason."""
    now = utcnow()
    sessions = update(WebSession).where(
        WebSession.member_id == member.id, WebSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        sessions = sessions.where(WebSession.id != keep_session_id)
    web = db.execute(sessions.values(revoked_at=now)).rowcount  # type: ignore[attr-defined]
    if forget_browsers:
        db.execute(
            update(RememberedBrowser)
            .where(RememberedBrowser.member_id == member.id, RememberedBrowser.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    for pending in (SignInChallenge, EmailChange):
        db.execute(
            update(pending)
            .where(
                pending.member_id == member.id,
                pending.consumed_at.is_(None),
                pending.expires_at > now,
            )
            .values(expires_at=now)
        )
    db.execute(
        update(PasswordReset)
        .where(PasswordReset.member_id == member.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    app_sessions = 0
    if apps is not None:
        app_sessions = sync.sign_out(db, SessionsToSignOut(member_id=member.id), apps, now)
    return Ended(int(web or 0), app_sessions)
