"""The authenticator app (RFC 6238) and its recovery codes (issue #12, item 2).

- Enrolment writes a new secret, sealed like mail bodies, with `totp_enabled_at` unset;
  the first code the app shows turns it on. Until then sign-in still emails a code.
- A code is good for its 30-second step and one step either side (clock drift), and
  only once: `totp_last_step` only moves forward, by one conditional UPDATE.
- Recovery codes are keyed hashes, each spent by one conditional UPDATE.
- With the app on, the sign-in challenge carries a marker instead of a code hash, so
  services/signin.py knows to ask for the app's code and sends no mail.
"""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from pitpass.config import Settings
from pitpass.db.models import Member, RecoveryCode, SignInChallenge, utcnow
from pitpass.services import audit
from pitpass.services.context import AppContext
from pitpass.services.crypto import constant_time_equals, new_token
from pitpass.services.signin import normalise_code

DIGITS = 6
STEP_SECONDS = 30
DRIFT_STEPS = 1  # one step either side (RFC 6238 §5.2)
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
RECOVERY_LENGTH = 10  # about 49 bits each, shown as two groups of five


class Match(enum.Enum):
    ACCEPTED = "accepted"
    MALFORMED = "malformed"
    WRONG = "wrong"
    REPLAYED = "replayed"  # a code (or recovery code) that was already used


def seal_context(member_id: int) -> str:
    # Bound to its member: a sealed secret copied to another row does not open.
    return f"totp-secret:{member_id}"


def is_enabled(member: Member) -> bool:
    return member.totp_enabled_at is not None and member.totp_secret_sealed is not None


def staff_must_enrol(settings: Settings, member: Member) -> bool:
    """PITPASS_STAFF_REQUIRE_TOTP: staff without the app may not use staff pages or API."""
    return settings.staff_require_totp and member.is_staff and not is_enabled(member)


def _secret(ctx: AppContext, member: Member) -> str | None:
    if member.totp_secret_sealed is None:
        return None
    return ctx.keyring.unseal(member.totp_secret_sealed, seal_context(member.id)).decode()


def _current_step() -> int:
    return int(time.time()) // STEP_SECONDS


def _matching_step(secret: str, code: str) -> int | None:
    """The step within the drift window whose code this is (every step is compared)."""
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    now = _current_step()
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if constant_time_equals(otp.generate_otp(step), code):
            found = step
    return found


def _spend_step(db: Session, member_id: int, step: int) -> bool:
    """Record `step` as used unless it, or a later one, already was."""
    spent = db.execute(
        update(Member)
        .where(
            Member.id == member_id,
            or_(Member.totp_last_step.is_(None), Member.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(spent.rowcount == 1)  # type: ignore[attr-defined]


# ----- enrolment --------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the key as a QR code and as text to type."""

    secret_groups: str
    uri: str
    qr_svg: str


def begin_enrolment(ctx: AppContext, db: Session, member: Member, ip: str | None) -> None:
    """A new secret, waiting for its first code; an app already on stays on."""
    if is_enabled(member):
        return
    secret = pyotp.random_base32()
    member.totp_secret_sealed = ctx.keyring.seal(secret.encode(), seal_context(member.id))
    member.totp_enabled_at = None
    member.totp_last_step = None
    audit.record(db, "two_step.enrolment_started", actor=member, ip=ip)


def pending_enrolment(ctx: AppContext, member: Member) -> Enrolment | None:
    if is_enabled(member):
        return None
    secret = _secret(ctx, member)
    if secret is None:
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=member.email, issuer_name=ctx.settings.profile.service_name
    )
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2)
    groups = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return Enrolment(secret_groups=groups, uri=uri, qr_svg=svg)


def confirm_enrolment(
    ctx: AppContext, db: Session, member: Member, typed: str, ip: str | None
) -> tuple[Match, list[str]]:
    """Turn the app on with its first code; the recovery codes to show once."""
    secret = None if is_enabled(member) else _secret(ctx, member)
    code = normalise_code(typed, DIGITS)
    if secret is None or code is None:
        return Match.MALFORMED, []
    step = _matching_step(secret, code)
    if step is None:
        return Match.WRONG, []
    member.totp_enabled_at = utcnow()
    member.totp_last_step = step  # the code that turned it on cannot also sign in
    audit.record(db, "two_step.enabled", actor=member, ip=ip)
    return Match.ACCEPTED, replace_recovery_codes(ctx, db, member, ip, announce=False)


def disable(
    ctx: AppContext, db: Session, member: Member, ip: str | None, *, by_staff: bool = False
) -> int:
    """Turn the app off (recovery codes go too): by the member, or by staff for a member
    who lost the phone and the codes (services/member_admin.py). The id of the mail that
    tells the member."""
    member.totp_secret_sealed = None
    member.totp_enabled_at = None
    member.totp_last_step = None
    db.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    if not by_staff:  # staff's action is recorded with its actor and reason
        audit.record(db, "two_step.disabled", actor=member, ip=ip)
    service = ctx.settings.profile.service_name
    who = (
        "Staff turned off the authenticator app for your"
        if by_staff
        else "The authenticator app was turned off for your"
    )
    mail = ctx.mailer.enqueue(
        db,
        member.email,
        f"The authenticator app is off for your {service} account",
        f"Hello {member.display_name},\n\n"
        f"{who} {service} account: sign-in now "
        "emails you a code after your password, and your recovery codes no longer work.\n\n"
        "If you did not do this, someone knows your password and is signed in as you: "
        "change your password and contact the operator of this service.\n",
        kind="two_step_disabled",
    )
    return mail.id


# ----- recovery codes ---------------------------------------------------------------------


def _recovery_hash(ctx: AppContext, member_id: int, code: str) -> str:
    return ctx.keyring.token_hash(f"recovery-code:{member_id}:{code}")


def _normalise_recovery(typed: str) -> str | None:
    code = "".join(typed.split()).replace("-", "").lower()
    if len(code) != RECOVERY_LENGTH or not set(code) <= set(RECOVERY_ALPHABET):
        return None
    return code


def replace_recovery_codes(
    ctx: AppContext, db: Session, member: Member, ip: str | None, *, announce: bool = True
) -> list[str]:
    """Ten new codes (shown once, as `abcde-fghjk`); every older one stops working."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
        for _ in range(RECOVERY_CODES)
    ]
    for code in codes:
        db.add(RecoveryCode(member_id=member.id, code_hash=_recovery_hash(ctx, member.id, code)))
    if announce:
        audit.record(db, "two_step.recovery_codes_replaced", actor=member, ip=ip)
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def recovery_codes_left(db: Session, member: Member) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.member_id == member.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


def _use_recovery_code(ctx: AppContext, db: Session, member_id: int, typed: str) -> Match:
    code = _normalise_recovery(typed)
    if code is None:
        return Match.MALFORMED
    code_hash = _recovery_hash(ctx, member_id, code)
    used = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.member_id == member_id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    if used.rowcount == 1:  # type: ignore[attr-defined]
        return Match.ACCEPTED
    known = db.scalar(
        select(RecoveryCode.id).where(
            RecoveryCode.member_id == member_id, RecoveryCode.code_hash == code_hash
        )
    )
    return Match.WRONG if known is None else Match.REPLAYED


# ----- the second step of sign-in ---------------------------------------------------------


def _app_marker(ctx: AppContext, challenge_token: str) -> str:
    # Stored where an emailed code's hash would be; no typed code hashes to it.
    return ctx.keyring.token_hash(f"signin-app:{challenge_token}")


def start_app_challenge(
    ctx: AppContext,
    db: Session,
    member: Member,
    next_path: str,
    ip: str | None,
    *,
    remembered_browser_rejected: bool = False,
) -> str:
    """A code step answered from the app (or a recovery code): no mail is sent."""
    token = new_token()
    db.add(
        SignInChallenge(
            token_hash=ctx.keyring.token_hash(token),
            member_id=member.id,
            code_hash=_app_marker(ctx, token),
            next_path=next_path,
            remembered_browser_rejected=remembered_browser_rejected,
            expires_at=utcnow() + timedelta(minutes=ctx.settings.signin_code_minutes),
            ip=ip,
        )
    )
    audit.record(db, "signin.app_code_asked", actor=member, ip=ip)
    return token


def is_app_challenge(ctx: AppContext, challenge_token: str, code_hash: str) -> bool:
    return constant_time_equals(_app_marker(ctx, challenge_token), code_hash)


def check_signin_code(
    ctx: AppContext, db: Session, member_id: int, typed: str, *, recovery: bool
) -> Match:
    """The app's code, or with `recovery` a recovery code; either works once."""
    member = db.get(Member, member_id)
    if member is None or not is_enabled(member):
        return Match.WRONG
    if recovery:
        match = _use_recovery_code(ctx, db, member_id, typed)
        if match is Match.ACCEPTED:
            left = recovery_codes_left(db, member)
            audit.record(db, "two_step.recovery_code_used", actor=member, details={"left": left})
        return match
    code = normalise_code(typed, DIGITS)
    secret = _secret(ctx, member)
    if code is None or secret is None:
        return Match.MALFORMED
    step = _matching_step(secret, code)
    if step is None:
        return Match.WRONG
    return Match.ACCEPTED if _spend_step(db, member_id, step) else Match.REPLAYED
