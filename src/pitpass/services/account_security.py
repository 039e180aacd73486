"""A member's own sign-in settings: change the password, change the email (issue #12, item 2).

Both need the current password: the stored hash is of the password masked with the email
(services/members.py), so a new email is stored by hashing the password again with it.
The new email is confirmed by a 6-digit code sent to it, hashed like the sign-in code; an
address that has an account gets a mail saying so instead of a code, and the form reads
the same either way (the sign-up rule: no page says which emails have accounts).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pitpass.core.passwords import password_problem
from pitpass.db.models import (
    EmailChange,
    Member,
    utcnow,
)
from pitpass.services import audit, members, reauth
from pitpass.services.context import AppContext
from pitpass.services.crypto import constant_time_equals
from pitpass.services.signin import Client, new_code, normalise_code
from pitpass.services.signin_limits import Refused, wait_words
from pitpass.services.ways_in import end_ways_in

NOT_SAME = "The two passwords are not the same."
ENTER_CURRENT = "Enter your current password."


class SettingsRefused(Refused):
    """Bad input or a throttle: the messages, each for the form field it belongs beside."""

    def __init__(self, errors: dict[str, str], retry_after: int | None = None) -> None:
        super().__init__(next(iter(errors.values()), ""), retry_after)
        self.errors = errors


def new_password_problems(
    member: Member, password: str, again: str, field: str = "new_password"
) -> dict[str, str]:
    """The sign-up rule for a new password (core/passwords.py), and the two must match."""
    if problem := password_problem(password, member.email, member.display_name):
        return {field: problem}
    if password != again:
        return {f"{field}_again": NOT_SAME}
    return {}


def check_current_password(
    ctx: AppContext, db: Session, member: Member, password: str, client: Client
) -> None:
    """Raise SettingsRefused unless `password` is the member's: the one rule of a password
    typed again (services/reauth.py), where a wrong one counts as a failed sign-in."""
    refused = reauth.password_refusal(ctx, db, member, password, "settings", client.ip)
    if refused is not None:
        raise SettingsRefused({"current_password": refused.message}, refused.retry_after)


def change_password(
    ctx: AppContext,
    db: Session,
    member: Member,
    fields: dict[str, str],
    keep_session_id: int,
    client: Client,
) -> int:
    """Set a new password; every other browser is signed out. Returns the mail to send."""
    errors = new_password_problems(member, fields["new_password"], fields["new_password_again"])
    if not fields["current_password"]:
        errors["current_password"] = ENTER_CURRENT
    if errors:
        raise SettingsRefused(errors)
    check_current_password(ctx, db, member, fields["current_password"], client)
    member.password_hash = members.password_hash_for(member.email, fields["new_password"])
    ended = end_ways_in(db, member, keep_session_id=keep_session_id, forget_browsers=False)
    audit.record(
        db,
        "password.changed",
        actor=member,
        ip=client.ip,
        details={"sessions_ended": ended.web_sessions},
    )
    return _tell(
        ctx,
        db,
        member.email,
        member,
        "Your password was changed",
        "The password of your account was just changed, and every other browser was signed out.",
    )


def _tell(ctx: AppContext, db: Session, to: str, member: Member, subject: str, news: str) -> int:
    """A security notice: what happened, and what to do if it was not the member."""
    service = ctx.settings.profile.service_name
    base = ctx.settings.public_base_url
    mail = ctx.mailer.enqueue(
        db,
        to,
        f"{service}: {subject.lower()}",
        f"Hello {member.display_name},\n\n{news}\n\n"
        f"If this was not you, choose a new password now: {base}/signin/forgot\n",
        kind="account_security",
    )
    return mail.id


# ----- change of email --------------------------------------------------------------------


def _code_hash(ctx: AppContext, change_id: int, code: str) -> str:
    # Bound to its change, as sign-in codes are to their challenge (services/signin.py).
    return ctx.keyring.token_hash(f"email-change-code:{change_id}:{code}")


def _decoy_hash(ctx: AppContext, change_id: int) -> str:
    return ctx.keyring.token_hash(f"email-change-decoy:{change_id}")  # no code hashes to this


def start_email_change(
    ctx: AppContext, db: Session, member: Member, typed: str, client: Client
) -> list[int]:
    """Send a code to the new address (or, when it has an account, a notice that opens
    nothing); earlier pending changes end. Returns the mail to send."""
    new_email = members.normalise_email(typed)
    if problem := members.email_problem(new_email):
        raise SettingsRefused({"new_email": problem})
    if new_email == member.email:
        raise SettingsRefused({"new_email": "This is already your email address."})
    allowed, _remaining, reset = ctx.throttles.email_changes.take(str(member.id))
    if not allowed:
        wait = max(1, reset)
        message = f"You have started several changes of email. Try again in {wait_words(wait)}."
        raise SettingsRefused({"new_email": message}, retry_after=wait)
    now = utcnow()
    db.execute(
        update(EmailChange)
        .where(EmailChange.member_id == member.id, EmailChange.consumed_at.is_(None))
        .values(expires_at=now)
    )
    minutes = ctx.settings.signin_code_minutes
    change = EmailChange(
        member_id=member.id,
        new_email=new_email,
        code_hash="",
        expires_at=now + timedelta(minutes=minutes),
    )
    db.add(change)
    db.flush()
    audit.record(db, "email_change.started", actor=member, ip=client.ip)
    service = ctx.settings.profile.service_name
    owner = members.find_by_email(db, new_email)
    if owner is not None:
        change.code_hash = _decoy_hash(ctx, change.id)
        allowed, _remaining, _reset = ctx.throttles.signup_notices.take(new_email)
        if not allowed:  # the owner has heard already; the form reads the same
            return []
        return [
            _tell(
                ctx,
                db,
                new_email,
                owner,
                "Someone tried to move an account to your address",
                f"Someone asked to move another {service} account to this email address, "
                "which already has an account, so nothing was changed and no code was sent.",
            )
        ]
    code = new_code()
    change.code_hash = _code_hash(ctx, change.id, code)
    mail = ctx.mailer.enqueue(
        db,
        new_email,
        f"Confirm your new {service} email",
        f"Hello {member.display_name},\n\n"
        f"Your {service} email confirmation code is {code}\n\n"
        f"It works once, for {minutes} minutes. If you did not ask to use this address, "
        "you need do nothing.\n",
        kind="email_change_code",
    )
    return [mail.id]


def pending_email_change(db: Session, member: Member) -> EmailChange | None:
    return db.scalar(
        select(EmailChange)
        .where(
            EmailChange.member_id == member.id,
            EmailChange.consumed_at.is_(None),
            EmailChange.expires_at > utcnow(),
        )
        .order_by(EmailChange.id.desc())
        .limit(1)
    )


def confirm_email_change(
    ctx: AppContext,
    db: Session,
    member: Member,
    typed_code: str,
    password: str,
    keep_session_id: int,
    client: Client,
) -> list[int]:
    """The code from the new address and the password (hashed again with the new email);
    like a new password, every other browser is signed out and whatever the old address
    could still complete (a reset link, a sign-in code) dies. A wrong code costs one of
    the change's tries: callers commit even when this raises."""
    change = pending_email_change(db, member)
    if change is None:
        raise SettingsRefused({"code": "No change of email is waiting. Start again."})
    max_attempts = ctx.settings.signin_code_attempts
    code = normalise_code(typed_code)
    errors = {} if code else {"code": "Enter the 6-digit code from the email."}
    if not password:
        errors["current_password"] = ENTER_CURRENT
    if errors:
        raise SettingsRefused(errors)
    if code is None or not constant_time_equals(_code_hash(ctx, change.id, code), change.code_hash):
        db.execute(
            update(EmailChange)
            .where(EmailChange.id == change.id)
            .values(failed_attempts=EmailChange.failed_attempts + 1)
        )
        db.refresh(change)
        left = max_attempts - change.failed_attempts
        if left <= 0:
            spent = update(EmailChange).where(EmailChange.id == change.id)
            db.execute(spent.values(expires_at=utcnow()))
            raise SettingsRefused({"code": "Too many wrong codes. Start the change again."})
        tries = "try" if left == 1 else "tries"
        raise SettingsRefused({"code": f"That code is not right. {left} {tries} left."})
    check_current_password(ctx, db, member, password, client)
    now = utcnow()
    consumed = db.execute(
        update(EmailChange)
        .where(
            EmailChange.id == change.id,
            EmailChange.consumed_at.is_(None),
            EmailChange.failed_attempts < max_attempts,
            EmailChange.expires_at > now,
        )
        .values(consumed_at=now)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise SettingsRefused({"code": "This code was already used. Start the change again."})
    old_email = member.email
    try:
        with db.begin_nested():  # the address was taken a moment ago: refuse, keep the rest
            member.email = change.new_email
            member.password_hash = members.password_hash_for(change.new_email, password)
            member.email_verified_at = now
            db.flush()
    except IntegrityError:
        db.refresh(member)
        raise SettingsRefused({"code": "That email address cannot be used."}) from None
    ended = end_ways_in(db, member, keep_session_id=keep_session_id, forget_browsers=False)
    details = {"from": old_email, "sessions_ended": ended.web_sessions}
    audit.record(db, "email.changed", actor=member, ip=client.ip, details=details)
    news = f"The email address of your account was changed from {old_email} to {member.email}."
    return [
        _tell(ctx, db, old_email, member, "Your email address was changed", news),
        _tell(ctx, db, member.email, member, "Your email address was changed", news),
    ]
