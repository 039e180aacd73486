"""The password asked again before a change that needs it (issue #12): turning the
authenticator on or off, new recovery codes, deleting the account, a new password or
email (services/account_security.py).

A wrong password counts as a failed sign-in (services/signin_limits.py), so a browser
left signed in cannot be used to guess it. When an action also has a confirmation step
(http/confirm.py), the password is not carried to it: a signed proof, bound to the
member, the web session and the action, stands for it for a few minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from pitpass.db.models import Member
from pitpass.services import audit
from pitpass.services import signin_limits as limits
from pitpass.services.context import AppContext
from pitpass.services.members import verify_password

PROOF_SECONDS = 600
WRONG_PASSWORD = "That is not your password."  # noqa: S105 - words, not a secret


def password_refusal(
    ctx: AppContext, db: Session, member: Member, password: str, action: str, ip: str | None
) -> limits.Refused | None:
    """None when `password` is the member's; else why not (with `retry_after` when the
    sign-in throttles say wait). The one check of a password typed again."""
    try:
        limits.refuse_if_throttled(ctx, db, member.email, ip)
    except limits.SignInRefused as refused:
        return refused
    if not password:
        return limits.Refused("Enter your password.")
    if not verify_password(member, member.email, password):
        limits.count_failed_password(ctx, member.email, ip)
        audit.record(db, "account.password_refused", actor=member, ip=ip, details={"for": action})
        return limits.Refused(WRONG_PASSWORD)
    return None


def password_problem(
    ctx: AppContext, db: Session, member: Member, password: str, action: str, ip: str | None
) -> str | None:
    """None when `password` is the member's; else the words to show beside the field."""
    refused = password_refusal(ctx, db, member, password, action, ip)
    return refused.message if refused else None


def _proofs(ctx: AppContext, action: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.keyring.cookie_signing_keys, salt=f"password-proof:{action}")


def proof(ctx: AppContext, member: Member, web_session_id: int, action: str) -> str:
    """What the confirmation page carries instead of the password."""
    return _proofs(ctx, action).dumps({"m": member.id, "s": web_session_id})


def proof_holds(
    ctx: AppContext, member: Member, web_session_id: int, action: str, value: str
) -> bool:
    try:
        payload = _proofs(ctx, action).loads(value, max_age=PROOF_SECONDS)
    except BadSignature:  # also an expired proof
        return False
    return isinstance(payload, dict) and payload == {"m": member.id, "s": web_session_id}


AGAIN = "Enter your password again."


@dataclass(frozen=True)
class Step:
    """Where a password-then-confirmation action stands: `act` (the confirmation came
    back with a good proof), `problem` to show beside the password field, or else ask
    for confirmation carrying `proof`."""

    act: bool = False
    problem: str | None = None
    proof: str = ""


def step(
    ctx: AppContext,
    db: Session,
    member: Member,
    web_session_id: int,
    action: str,
    *,
    password: str,
    proof_value: str,
    confirmed: bool,
    ip: str | None,
) -> Step:
    """The one rule of the destructive actions that need the password: the password on
    the first POST, then the confirmation step, which carries a proof, not the password."""
    if confirmed:
        holds = proof_holds(ctx, member, web_session_id, action, proof_value)
        return Step(act=True) if holds else Step(problem=AGAIN)
    if problem := password_problem(ctx, db, member, password, action, ip):
        return Step(problem=problem)
    return Step(proof=proof(ctx, member, web_session_id, action))
