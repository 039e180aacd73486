"""Self sign-up that does not say which emails have accounts (issue #11, defect 10).

A new email gets an account and a sign-in code; an email that has an account gets a
code step no code opens, and its owner a mail saying someone tried to sign up, with
the way to sign in. The browser sees the same answer either way: a code page, after
the same password hashing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from pitpass.core.masking import mask_secret
from pitpass.db.models import Member
from pitpass.services import audit, members, signin
from pitpass.services.context import AppContext
from pitpass.services.members import NewMember


def sign_up(
    ctx: AppContext,
    db: Session,
    new: NewMember,
    client: signin.Client,
    next_path: str = "/account",
) -> tuple[str, list[int]]:
    """The challenge token for the code page's cookie, and the mail to send; the code
    leads to `next_path` (an app's consent, when the sign-up started at its sign-in).
    Raises MemberError only when another sign-up won a race for the same email."""
    existing = members.find_by_email(db, new.email)
    if existing is not None:
        return answer_existing_account(ctx, db, existing, new.password, client, next_path)
    member = members.create_member(db, new, ip=client.ip)
    token, mail_id = signin.start_challenge(ctx, db, member, next_path, client)
    return token, [mail_id]


def answer_existing_account(
    ctx: AppContext,
    db: Session,
    member: Member,
    password: str,
    client: signin.Client,
    next_path: str = "/account",
) -> tuple[str, list[int]]:
    # The argon2 work a new account costs, so the answer takes as long.
    members.hash_masked_password(mask_secret(password, member.email))
    # The same next path, so the code page names the same app as a new account's would.
    token = signin.start_decoy_challenge(ctx, db, member, client, next_path)
    audit.record(db, "signup.existing_email", actor=member, ip=client.ip)
    allowed, _remaining, _reset = ctx.throttles.signup_notices.take(member.email)
    if not allowed:  # the owner has heard already; the browser's answer stays the same
        return token, []
    service = ctx.settings.profile.service_name
    base = ctx.settings.public_base_url
    mail = ctx.mailer.enqueue(
        db,
        member.email,
        f"Someone tried to create a {service} account with your address",
        f"Hello {member.display_name},\n\n"
        f"Someone tried to create a new {service} account with this email address, "
        "which already has one, so no account was created and no code was sent.\n\n"
        f"If it was you, sign in instead: {base}/signin\n"
        "If it was not, you need do nothing.\n",
        kind="signup_existing",
    )
    return token, [mail.id]
