"""Forgot password: an emailed single-use link, valid 30 minutes (issue #12, item 1).

Asking for a link must not say which emails have accounts, by its words or by its time:
the answer is given after checks that do not depend on the account (the email's form, the
throttles, which count every email alike), and everything that does (the lookup, the link,
the mail) runs after the answer has gone (`send_link`, a background task).
A reset ends every web session and remembered browser of the member, spends every other
link, and says so by mail; the link's token is stored as a keyed hash, like the sign-in
challenge's, and is spent with one conditional UPDATE.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pitpass.core.policy import SignOutReason
from pitpass.db.models import Member, PasswordReset, utcnow
from pitpass.services import audit, members, signin_limits
from pitpass.services.account_security import (
    SettingsRefused,
    new_password_problems,
)
from pitpass.services.context import AppContext
from pitpass.services.crypto import new_token
from pitpass.services.signin import Client
from pitpass.services.signin_limits import address_key, wait_words
from pitpass.services.ways_in import end_ways_in


def check_request(ctx: AppContext, db: Session, typed: str, client: Client) -> str:
    """The normalised email, or SettingsRefused (bad form, throttled) for the `email`
    field. Nothing here looks at accounts, so every email gets the same answer."""
    email = members.normalise_email(typed)
    if problem := members.email_problem(email):
        raise SettingsRefused({"email": problem})
    waits = []
    for throttle, key in (
        (ctx.throttles.password_resets_email, email),
        (ctx.throttles.password_resets_ip, address_key(client.ip)),
    ):
        allowed, _remaining, reset = throttle.take(key)
        if not allowed:
            waits.append(max(1, reset))
    if waits:
        wait = max(waits)
        details = {"retry_after": wait}
        audit.record(
            db, "password_reset.throttled", actor_label=email, ip=client.ip, details=details
        )
        message = f"Too many reset links were asked for. Try again in {wait_words(wait)}."
        raise SettingsRefused({"email": message}, retry_after=wait)
    return email


async def send_link(ctx: AppContext, email: str, next_path: str, client: Client) -> None:
    """After the answer: make the link and mail it, when the email has an account."""
    mail_ids = await anyio.to_thread.run_sync(make_link, ctx, email, next_path, client)
    await ctx.mailer.deliver(ctx.session_factory, mail_ids)


def make_link(ctx: AppContext, email: str, next_path: str, client: Client) -> list[int]:
    with ctx.session() as db:
        member = members.find_by_email(db, email)
        if member is None or member.is_disabled or member.deleted_at is not None:
            audit.record(db, "password_reset.no_account", actor_label=email, ip=client.ip)
            return []
        token = new_token()
        minutes = ctx.settings.password_reset_minutes
        now = utcnow()
        db.add(
            PasswordReset(
                token_hash=ctx.keyring.token_hash(token),
                member_id=member.id,
                next_path=next_path,
                created_at=now,
                expires_at=now + timedelta(minutes=minutes),
                ip=client.ip,
            )
        )
        service = ctx.settings.profile.service_name
        link = f"{ctx.settings.public_base_url}/signin/reset?token={token}"
        mail = ctx.mailer.enqueue(
            db,
            member.email,
            f"Choose a new {service} password",
            f"Hello {member.display_name},\n\n"
            f"Someone asked for a link to choose a new {service} password for this "
            f"address. Open it to choose one:\n\n{link}\n\n"
            f"It works once, for {minutes} minutes. If you did not ask, you need do "
            "nothing: your password stays as it is.\n",
            kind="password_reset",
        )
        audit.record(db, "password_reset.requested", actor=member, ip=client.ip)
        return [mail.id]


class LinkState(enum.Enum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


LINK_MESSAGES = {
    LinkState.USED: "This link was already used. Ask for a new one if you still need it.",
    LinkState.EXPIRED: "This link has expired. Ask for a new one.",
    LinkState.UNKNOWN: "This link is not valid. Ask for a new one.",
}


@dataclass(frozen=True)
class Link:
    state: LinkState
    reset: PasswordReset | None = None
    member: Member | None = None

    @property
    def message(self) -> str:
        return LINK_MESSAGES.get(self.state, "")


def open_link(ctx: AppContext, db: Session, token: str) -> Link:
    reset = (
        db.scalar(
            select(PasswordReset).where(PasswordReset.token_hash == ctx.keyring.token_hash(token))
        )
        if token and len(token) <= 100
        else None
    )
    member = db.get(Member, reset.member_id) if reset else None
    if reset is None or member is None or member.is_disabled or member.deleted_at is not None:
        return Link(LinkState.UNKNOWN)
    if reset.used_at is not None:
        return Link(LinkState.USED, reset, member)
    if reset.expires_at <= utcnow():
        return Link(LinkState.EXPIRED, reset, member)
    return Link(LinkState.OPEN, reset, member)


def reset_password(
    ctx: AppContext, db: Session, link: Link, password: str, again: str, client: Client
) -> list[int]:
    """Spend the link and set the password; raise SettingsRefused (nothing changed) for a
    password the sign-up rule refuses or a link spent a moment ago."""
    reset, member = link.reset, link.member
    if link.state is not LinkState.OPEN or reset is None or member is None:
        raise SettingsRefused({"password": link.message})
    if errors := new_password_problems(member, password, again, field="password"):
        raise SettingsRefused(errors)
    now = utcnow()
    spent = db.execute(
        update(PasswordReset)
        .where(
            PasswordReset.id == reset.id,
            PasswordReset.used_at.is_(None),
            PasswordReset.expires_at > now,
        )
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise SettingsRefused({"password": LINK_MESSAGES[LinkState.USED]})
    member.password_hash = members.password_hash_for(member.email, password)
    if member.email_verified_at is None:
        member.email_verified_at = now  # the link mailed to that address came back
    # Whoever had the old password loses every way in, the apps' sessions too, and every
    # other link of the member dies with this one (services/ways_in.py).
    ended = end_ways_in(db, member, apps=SignOutReason.PASSWORD_RESET)
    # The failed sign-ins that may have led here no longer stand between them and the account.
    signin_limits.clear_after_sign_in(ctx, member.email, client.ip)
    details = {"sessions_ended": ended.web_sessions, "app_sessions_ended": ended.app_sessions}
    audit.record(db, "password.reset", actor=member, ip=client.ip, details=details)
    service = ctx.settings.profile.service_name
    base = ctx.settings.public_base_url
    mail = ctx.mailer.enqueue(
        db,
        member.email,
        f"{service}: your password was changed",
        f"Hello {member.display_name},\n\n"
        f"Your {service} password was changed with a reset link. Every browser was signed "
        "out and forgotten, and every app you had signed in to was signed out: each will ask "
        "you to sign in again with the new password.\n\n"
        f"If this was not you, ask for a new link at once: {base}/signin/forgot\n",
        kind="password_reset_done",
    )
    return [mail.id]
