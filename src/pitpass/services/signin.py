"""Web sign-in: password, then an emailed 6-digit code unless the browser is remembered.

No HTTP here: the web layer hands in what the browser sent and gets back
members, raw tokens for cookies, or a `SignInRefused` with the words to show.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pitpass.db.models import Member, RememberedBrowser, SignInChallenge, WebSession, utcnow
from pitpass.services import audit
from pitpass.services import signin_limits as limits
from pitpass.services.context import AppContext
from pitpass.services.crypto import constant_time_equals, new_token
from pitpass.services.members import find_by_email, normalise_email, verify_password
from pitpass.services.signin_limits import SignInRefused

CODE_DIGITS = 6
BAD_CREDENTIALS = "Email or password is incorrect."


@dataclass(frozen=True)
class Client:
    """Where a request came from, as far as the audit log and the throttles care."""

    ip: str | None
    user_agent: str | None = None


def check_credentials(
    ctx: AppContext, db: Session, email: str, password: str, client: Client
) -> Member:
    """The password step. Unknown email and wrong password read the same (no account probing)."""
    attempted = normalise_email(email)[:320]
    limits.refuse_if_throttled(ctx, db, attempted, client.ip)
    if not attempted or not password:
        raise SignInRefused("Enter your email and password.")
    member = find_by_email(db, attempted)
    if not verify_password(member, attempted, password) or member is None:
        limits.count_failed_password(ctx, attempted, client.ip)
        audit.record(db, "signin.failed", actor_label=attempted, ip=client.ip)
        raise SignInRefused(BAD_CREDENTIALS)
    if member.is_disabled:
        audit.record(db, "signin.refused_disabled", actor=member, ip=client.ip)
        raise SignInRefused("This account is disabled. Contact the operator of this service.")
    return member


# ----- the emailed code -------------------------------------------------------


def _code_hash(ctx: AppContext, challenge_token: str, code: str) -> str:
    # Bound to its challenge so one code cannot be tried against another challenge.
    return ctx.keyring.token_hash(f"signin-code:{challenge_token}:{code}")


def start_challenge(
    ctx: AppContext,
    db: Session,
    member: Member,
    next_path: str,
    client: Client,
    *,
    remembered_browser_rejected: bool = False,
) -> tuple[str, int]:
    """Email a fresh code; return the raw challenge token (for a cookie) and the mail id."""
    limits.take_code_mail(ctx, db, member.id, client.ip)
    token = new_token()
    code = new_code()
    minutes = ctx.settings.signin_code_minutes
    db.add(
        SignInChallenge(
            token_hash=ctx.keyring.token_hash(token),
            member_id=member.id,
            code_hash=_code_hash(ctx, token, code),
            next_path=next_path,
            remembered_browser_rejected=remembered_browser_rejected,
            expires_at=utcnow() + timedelta(minutes=minutes),
            ip=client.ip,
        )
    )
    service = ctx.settings.profile.service_name
    mail = ctx.mailer.enqueue(
        db,
        member.email,
        f"Your {service} sign-in code",
        f"Hello {member.display_name},\n\n"
        f"Your {service} sign-in code is {code}\n\n"
        f"It works once, for {minutes} minutes. If you did not try to sign in, "
        "someone knows your password: change it.\n",
        kind="signin_code",
    )
    audit.record(db, "signin.code_sent", actor=member, ip=client.ip)
    return token, mail.id


def _decoy_hash(ctx: AppContext, challenge_token: str) -> str:
    # No typed code hashes to this (codes hash with another prefix): it never matches.
    return ctx.keyring.token_hash(f"signup-decoy:{challenge_token}")


def start_decoy_challenge(
    ctx: AppContext, db: Session, member: Member, client: Client, next_path: str = "/account"
) -> str:
    """A code step no code opens, for a sign-up with an email that has an account: the
    browser sees what a new account sees (issue #11, defect 10). Its wrong guesses do not
    count against the member, so it cannot be used to spend their code tries."""
    token = new_token()
    db.add(
        SignInChallenge(
            token_hash=ctx.keyring.token_hash(token),
            member_id=member.id,
            code_hash=_decoy_hash(ctx, token),
            next_path=next_path,
            expires_at=utcnow() + timedelta(minutes=ctx.settings.signin_code_minutes),
            ip=client.ip,
        )
    )
    return token


def resend_code(ctx: AppContext, db: Session, token: str | None, client: Client) -> int | None:
    """A new code for the challenge behind `token` (the old one stops working) and its mail;
    no mail for a sign-up's decoy step (services/signup.py), which otherwise answers alike."""
    challenge = pending_challenge(ctx, db, token)
    if challenge is None or token is None or challenge.consumed_at is not None:
        raise SignInRefused(CODE_MESSAGES[CodeOutcome.UNKNOWN])
    allowed, _remaining, reset = ctx.throttles.signin_code_resends.take(str(challenge.id))
    if not allowed:
        wait = max(1, reset)
        words = limits.wait_words(wait)
        raise SignInRefused(f"We sent new codes already: use the latest, or wait {words}.", wait)
    member = db.get(Member, challenge.member_id)
    minutes = ctx.settings.signin_code_minutes
    fresh = {"failed_attempts": 0, "expires_at": utcnow() + timedelta(minutes=minutes)}
    if member is None or constant_time_equals(_decoy_hash(ctx, token), challenge.code_hash):
        db.execute(update(SignInChallenge).where(SignInChallenge.id == challenge.id).values(fresh))
        return None
    limits.take_code_mail(ctx, db, member.id, client.ip)
    code = new_code()
    fresh["code_hash"] = _code_hash(ctx, token, code)
    db.execute(update(SignInChallenge).where(SignInChallenge.id == challenge.id).values(fresh))
    service = ctx.settings.profile.service_name
    mail = ctx.mailer.enqueue(
        db,
        member.email,
        f"Your new {service} sign-in code",
        f"Hello {member.display_name},\n\n"
        f"Your new {service} sign-in code is {code}\n\n"
        f"It works once, for {minutes} minutes; the code sent before no longer works.\n",
        kind="signin_code",
    )
    audit.record(db, "signin.code_resent", actor=member, ip=client.ip)
    return mail.id


def pending_challenge(ctx: AppContext, db: Session, token: str | None) -> SignInChallenge | None:
    if not token:
        return None
    return db.scalar(
        select(SignInChallenge).where(SignInChallenge.token_hash == ctx.keyring.token_hash(token))
    )


def new_code() -> str:
    """A fresh emailed code: CODE_DIGITS random digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalise_code(typed: str, length: int = CODE_DIGITS) -> str | None:
    """The code as typed, without spaces or dashes ("123 456"), if it is `length` ASCII
    digits; else None. For emailed codes and the authenticator app's alike."""
    digits = "".join(typed.split()).replace("-", "")
    return digits if len(digits) == length and digits.isascii() and digits.isdigit() else None


class CodeOutcome(enum.Enum):
    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    WRONG = "wrong"
    EXPIRED = "expired"
    USED = "used"
    LOCKED = "locked"
    THROTTLED = "throttled"  # too many wrong codes for this member, across codes
    REPLAYED = "replayed"  # an app code or recovery code already used: counts as wrong
    UNKNOWN = "unknown"


CODE_MESSAGES = {
    CodeOutcome.MALFORMED: "Enter the 6-digit code from the email.",
    CodeOutcome.EXPIRED: "This code has expired. Sign in again to get a new one.",
    CodeOutcome.USED: "This code was already used. Sign in again to get a new one.",
    CodeOutcome.LOCKED: "Too many wrong codes. Sign in again to get a new one.",
    CodeOutcome.UNKNOWN: "This sign-in is no longer pending. Sign in again.",
}


@dataclass(frozen=True)
class CodeCheck:
    outcome: CodeOutcome
    challenge: SignInChallenge | None = None
    attempts_left: int = 0
    retry_after: int | None = None
    app: bool = False  # the authenticator app's code was asked for (services/totp.py)

    @property
    def message(self) -> str:
        left = f"{self.attempts_left} {'try' if self.attempts_left == 1 else 'tries'} left."
        if self.outcome is CodeOutcome.WRONG:
            return f"That code is not right. {left}"
        if self.outcome is CodeOutcome.REPLAYED:
            return f"That code was already used. {left}"
        if self.outcome is CodeOutcome.MALFORMED and self.app:
            return "Enter the 6-digit code from your authenticator app, or a recovery code."
        if self.outcome is CodeOutcome.THROTTLED:
            wait = limits.wait_words(self.retry_after or 1)
            return f"Too many wrong codes for this account. Try again in {wait}."
        return CODE_MESSAGES.get(self.outcome, "")


def check_code(ctx: AppContext, db: Session, token: str | None, typed: str) -> CodeCheck:
    """Accept a code at most once: the final step is one conditional UPDATE."""
    challenge = pending_challenge(ctx, db, token)
    if challenge is None or token is None:
        return CodeCheck(CodeOutcome.UNKNOWN)
    decoy = constant_time_equals(_decoy_hash(ctx, token), challenge.code_hash)
    if (refusal := blocked(ctx, challenge, throttled=not decoy)) is not None:
        return refusal
    code = normalise_code(typed)
    if code is None:
        left = ctx.settings.signin_code_attempts - challenge.failed_attempts
        return CodeCheck(CodeOutcome.MALFORMED, challenge, left)
    if decoy or not constant_time_equals(_code_hash(ctx, token, code), challenge.code_hash):
        return count_wrong(ctx, db, challenge, counted=not decoy)
    return consume(ctx, db, challenge)


def blocked(
    ctx: AppContext, challenge: SignInChallenge, *, throttled: bool = True
) -> CodeCheck | None:
    """Why no code may be tried on this challenge now, if there is a reason."""
    if challenge.consumed_at is not None:
        return CodeCheck(CodeOutcome.USED, challenge)
    if challenge.expires_at <= utcnow():
        return CodeCheck(CodeOutcome.EXPIRED, challenge)
    if challenge.failed_attempts >= ctx.settings.signin_code_attempts:
        return CodeCheck(CodeOutcome.LOCKED, challenge)
    # Each challenge allows a few tries; this caps them across challenges (issue #11).
    if throttled and (wait := limits.code_guess_wait(ctx, challenge.member_id)) is not None:
        return CodeCheck(CodeOutcome.THROTTLED, challenge, retry_after=wait)
    return None


def count_wrong(
    ctx: AppContext, db: Session, challenge: SignInChallenge, *, counted: bool
) -> CodeCheck:
    """One more wrong try on this challenge (`counted`: and against the member too)."""
    if counted:
        limits.count_wrong_code(ctx, challenge.member_id)
    db.execute(
        update(SignInChallenge)
        .where(SignInChallenge.id == challenge.id)
        .values(failed_attempts=SignInChallenge.failed_attempts + 1)
    )
    db.refresh(challenge)
    left = ctx.settings.signin_code_attempts - challenge.failed_attempts
    outcome = CodeOutcome.WRONG if left > 0 else CodeOutcome.LOCKED
    return CodeCheck(outcome, challenge, left)


def consume(ctx: AppContext, db: Session, challenge: SignInChallenge) -> CodeCheck:
    """The challenge's one success: a conditional UPDATE, so two tries cannot both win."""
    now = utcnow()
    max_attempts = ctx.settings.signin_code_attempts
    consumed = db.execute(
        update(SignInChallenge)
        .where(
            SignInChallenge.id == challenge.id,
            SignInChallenge.consumed_at.is_(None),
            SignInChallenge.failed_attempts < max_attempts,
            SignInChallenge.expires_at > now,
        )
        .values(consumed_at=now)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        return CodeCheck(CodeOutcome.USED, challenge)
    return CodeCheck(CodeOutcome.ACCEPTED, challenge)


# ----- signed-in browsers -----------------------------------------------------


def open_web_session(
    ctx: AppContext,
    db: Session,
    member: Member,
    client: Client,
    remembered_browser_id: int | None = None,
    prompt_verify_nonce: str | None = None,
    fresh_signin_nonce: str | None = None,
) -> str:
    """Sign the browser in; return the raw session token for its cookie. An emailed code
    typed for a prompt=verify request passes that request's nonce, and any sign-in done for
    a prompt=login or max_age request passes that one's (fresh_verification)."""
    token = new_token()
    db.add(
        WebSession(
            token_hash=ctx.keyring.token_hash(token),
            member_id=member.id,
            expires_at=utcnow() + timedelta(hours=ctx.settings.web_session_hours),
            ip=client.ip,
            user_agent=(client.user_agent or "")[:512] or None,
            remembered_browser_id=remembered_browser_id,
            prompt_verify_nonce=prompt_verify_nonce,
            fresh_signin_nonce=fresh_signin_nonce,
        )
    )
    if member.email_verified_at is None:
        member.email_verified_at = utcnow()  # a code sent to that address came back
    limits.clear_after_sign_in(ctx, member.email, client.ip)
    audit.record(db, "signin.succeeded", actor=member, ip=client.ip)
    return token


@dataclass(frozen=True)
class SignedIn:
    web_session: WebSession
    member: Member


def live_web_session(ctx: AppContext, db: Session, token: str | None) -> SignedIn | None:
    """The one rule for a live web session: known, not revoked, not expired, member enabled."""
    if not token:
        return None
    row = db.execute(
        select(WebSession, Member)
        .join(Member, WebSession.member_id == Member.id)
        .where(
            WebSession.token_hash == ctx.keyring.token_hash(token),
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > utcnow(),
            Member.is_disabled.is_(False),
        )
    ).first()
    return SignedIn(web_session=row[0], member=row[1]) if row else None


def close_web_session(ctx: AppContext, db: Session, token: str | None, client: Client) -> None:
    if not token:
        return
    session = db.scalar(
        select(WebSession).where(WebSession.token_hash == ctx.keyring.token_hash(token))
    )
    if session is None or session.revoked_at is not None:
        return
    session.revoked_at = utcnow()
    audit.record(db, "signout", actor=db.get(Member, session.member_id), ip=client.ip)


# ----- remembered browsers ----------------------------------------------------


class BrowserMemory(enum.Enum):
    REMEMBERED = "remembered"
    NOT_REMEMBERED = "not_remembered"
    INVALID = "invalid"  # tampered, expired, revoked: say so and ask for the code


def _remember_serializer(ctx: AppContext) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.keyring.cookie_signing_keys, salt="remember-browser")


def remember_browser(ctx: AppContext, db: Session, member: Member) -> tuple[str, int]:
    """Record a remembered browser; return the signed cookie value and the record id."""
    token = new_token()
    days = ctx.settings.remember_browser_days
    record = RememberedBrowser(
        token_hash=ctx.keyring.token_hash(token),
        member_id=member.id,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.add(record)
    db.flush()
    return _remember_serializer(ctx).dumps({"m": member.id, "t": token}), record.id


def _remembered_record(
    ctx: AppContext, db: Session, cookie: str | None
) -> tuple[BrowserMemory, RememberedBrowser | None, int | None]:
    if not cookie:
        return BrowserMemory.NOT_REMEMBERED, None, None
    max_age = ctx.settings.remember_browser_days * 86400
    try:
        payload = _remember_serializer(ctx).loads(cookie, max_age=max_age)
        member_id, token = int(payload["m"]), str(payload["t"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return BrowserMemory.INVALID, None, None
    record = db.scalar(
        select(RememberedBrowser).where(
            RememberedBrowser.token_hash == ctx.keyring.token_hash(token)
        )
    )
    if record is None or record.member_id != member_id:
        return BrowserMemory.INVALID, None, member_id
    if record.revoked_at is not None or record.expires_at <= utcnow():
        return BrowserMemory.INVALID, record, member_id
    return BrowserMemory.REMEMBERED, record, member_id


def browser_memory(
    ctx: AppContext, db: Session, cookie: str | None, member: Member
) -> BrowserMemory:
    return recognise_browser(ctx, db, cookie, member)[0]


def recognise_browser(
    ctx: AppContext, db: Session, cookie: str | None, member: Member
) -> tuple[BrowserMemory, int | None]:
    """Whether this browser is remembered for `member`, and the record that says so."""
    state, record, member_id = _remembered_record(ctx, db, cookie)
    if state is BrowserMemory.REMEMBERED and member_id != member.id:
        return BrowserMemory.NOT_REMEMBERED, None  # remembered for someone else
    return state, (record.id if record and state is BrowserMemory.REMEMBERED else None)


def forget_browser(ctx: AppContext, db: Session, cookie: str | None) -> None:
    """Revoke the remembered browser behind this cookie (prompt=verify, forget_browser)."""
    _state, record, _member_id = _remembered_record(ctx, db, cookie)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
