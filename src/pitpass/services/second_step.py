"""The step after the password: the authenticator app when the member has one, else the
emailed code (issue #12, item 2). Both are one sign-in challenge, tried, counted and
spent by the same rules (services/signin.py); the app's only sends no mail."""

from __future__ import annotations

from sqlalchemy.orm import Session

from pitpass.db.models import Member
from pitpass.services import signin, totp
from pitpass.services.context import AppContext
from pitpass.services.signin import CodeCheck, CodeOutcome
from pitpass.services.signin_limits import SignInRefused


def start(
    ctx: AppContext,
    db: Session,
    member: Member,
    next_path: str,
    client: signin.Client,
    *,
    remembered_browser_rejected: bool = False,
) -> tuple[str, list[int]]:
    """The challenge token for the code page's cookie, and the mail to send (none for
    the app)."""
    if totp.is_enabled(member):
        token = totp.start_app_challenge(
            ctx,
            db,
            member,
            next_path,
            client.ip,
            remembered_browser_rejected=remembered_browser_rejected,
        )
        return token, []
    token, mail_id = signin.start_challenge(
        ctx, db, member, next_path, client, remembered_browser_rejected=remembered_browser_rejected
    )
    return token, [mail_id]


def asks_for_app(ctx: AppContext, db: Session, token: str | None) -> bool:
    challenge = signin.pending_challenge(ctx, db, token)
    return bool(token and challenge and totp.is_app_challenge(ctx, token, challenge.code_hash))


def resend(ctx: AppContext, db: Session, token: str | None, client: signin.Client) -> int | None:
    """A new emailed code (services/signin.py); never for an app challenge, whose codes
    the app makes: a mailed code there would skip the member's authenticator app."""
    if asks_for_app(ctx, db, token):
        raise SignInRefused("Your authenticator app makes the codes: there is nothing to send.")
    return signin.resend_code(ctx, db, token, client)


def check(
    ctx: AppContext, db: Session, token: str | None, typed: str, *, recovery: bool = False
) -> CodeCheck:
    """The typed code against this browser's challenge: the app's code (or, `recovery`,
    a recovery code) for an app challenge, else the emailed code."""
    challenge = signin.pending_challenge(ctx, db, token)
    if token is None or challenge is None:
        return CodeCheck(CodeOutcome.UNKNOWN)
    if not totp.is_app_challenge(ctx, token, challenge.code_hash):
        return signin.check_code(ctx, db, token, typed)
    if (refusal := signin.blocked(ctx, challenge)) is not None:
        return CodeCheck(refusal.outcome, challenge, retry_after=refusal.retry_after, app=True)
    match = totp.check_signin_code(ctx, db, challenge.member_id, typed, recovery=recovery)
    if match is totp.Match.MALFORMED:
        left = ctx.settings.signin_code_attempts - challenge.failed_attempts
        return CodeCheck(CodeOutcome.MALFORMED, challenge, left, app=True)
    if match is not totp.Match.ACCEPTED:
        wrong = signin.count_wrong(ctx, db, challenge, counted=True)
        replayed = match is totp.Match.REPLAYED and wrong.outcome is CodeOutcome.WRONG
        outcome = CodeOutcome.REPLAYED if replayed else wrong.outcome
        return CodeCheck(outcome, challenge, wrong.attempts_left, app=True)
    return CodeCheck(signin.consume(ctx, db, challenge).outcome, challenge, app=True)
