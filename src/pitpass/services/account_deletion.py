"""Delete my account (issue #12, item 2; docs/decisions.md "Deleting an account").

The row stays, pseudonymised, so the audit trail keeps its actor: the email becomes
`deleted-<id>@deleted.invalid` (free again for a new sign-up), the name "Deleted
member", the password unusable, the authenticator cleared, and the account disabled.
Everything that let the member in ends first: web sessions, remembered browsers, every
app session (and so every access and refresh token, through storage/sync.py), pending
codes and links. Clients the member owns are disabled. A mail to the old address says
it is done.
"""

from __future__ import annotations

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from pitpass.core.policy import SignOutReason
from pitpass.db.models import (
    AccessListEntry,
    AuditEvent,
    Client,
    Consent,
    MailMessage,
    Member,
    RecoveryCode,
    RegistrationRequest,
    utcnow,
)
from pitpass.services import audit, member_admin, workflow
from pitpass.services import clients as clients_service
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.services.ways_in import end_ways_in

DELETED_NAME = "Deleted member"
UNUSABLE_PASSWORD_HASH = "!deleted"  # noqa: S105 - not an argon2 hash: nothing verifies


def pseudonym(member_id: int) -> str:
    return f"deleted-{member_id}@deleted.invalid"


def clients_to_disable(db: Session, member: Member) -> list[Client]:
    """The live clients the member owns: deleting the account disables them."""
    return list(
        db.scalars(
            select(Client)
            .where(Client.owner_id == member.id, Client.is_disabled.is_(False))
            .order_by(Client.name)
        )
    )


def _withdraw_open_requests(db: Session, member: Member, ip: str | None) -> None:
    """Nobody is left to answer staff: open client requests are withdrawn (no mail)."""
    open_requests = db.scalars(
        select(RegistrationRequest).where(
            RegistrationRequest.requester_id == member.id,
            RegistrationRequest.status.in_(workflow.OPEN_STATUSES),
        )
    )
    for request in list(open_requests):
        workflow.move_status(
            db, request, workflow.OPEN_STATUSES, workflow.WITHDRAWN, decided_at=utcnow()
        )
        audit.record_for_request(db, "request.withdrawn", request, member, ip)


def _end_every_way_in(db: Session, member: Member) -> None:
    now = utcnow()
    end_ways_in(db, member, apps=SignOutReason.ACCOUNT_DELETED)
    db.execute(
        update(Consent)
        .where(Consent.member_id == member.id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
    )
    db.execute(
        update(AccessListEntry)
        .where(AccessListEntry.member_id == member.id, AccessListEntry.removed_at.is_(None))
        .values(removed_at=now)
    )
    db.execute(delete(RecoveryCode).where(RecoveryCode.member_id == member.id))


LAST_STAFF_CHANGE = "delete their account"


def refusal(db: Session, member: Member) -> str | None:
    """Why this account cannot be deleted now: someone must stay to review requests and
    manage members (the rule of services/member_admin.py)."""
    try:
        member_admin.keep_one_staff(db, member, LAST_STAFF_CHANGE)
    except ServiceError as error:
        return next(iter(error.errors.values()))
    return None


def delete_account(ctx: AppContext, db: Session, member: Member, ip: str | None) -> int:
    """Delete (pseudonymise) the account; the id of the mail to the old address. Raises
    ServiceError, changing nothing, for the last enabled staff member (services/member_admin)."""
    member_admin.write_flags(db, member, LAST_STAFF_CHANGE, is_staff=False, is_disabled=True)
    old_email = member.email
    disabled = clients_to_disable(db, member)
    for client in disabled:
        clients_service.set_disabled(db, client, True, member, ip)
    _withdraw_open_requests(db, member, ip)
    _end_every_way_in(db, member)
    service = ctx.settings.profile.service_name
    mail = ctx.mailer.enqueue(
        db,
        old_email,
        f"Your {service} account is deleted",
        f"Hello {member.display_name},\n\n"
        f"Your {service} account was deleted, as you asked. You are signed out everywhere, "
        "every app you let in has lost access"
        + (
            f", and your clients are disabled ({', '.join(c.name for c in disabled)})"
            if disabled
            else ""
        )
        + ".\n\nThis address can now be used for a new account. "
        "If you did not do this, contact the operator of this service at once.\n",
        kind="account_deleted",
    )
    audit.record(
        db,
        "account.deleted",
        actor=member,
        target_type="member",
        target_id=member.customer_id,
        ip=ip,
        details={"clients_disabled": [c.client_id for c in disabled]},
    )
    alias = pseudonym(member.id)
    member.email = alias
    member.display_name = DELETED_NAME
    member.password_hash = UNUSABLE_PASSWORD_HASH
    member.group_ids = []
    member.totp_secret_sealed = None
    member.totp_enabled_at = None
    member.totp_last_step = None
    member.deleted_at = utcnow()
    db.flush()
    # The trail stays, under the pseudonym: the member's own events and what was typed
    # with their address (failed sign-ins). Older mail is re-addressed too; only the
    # confirmation keeps the address, to be delivered.
    db.execute(
        update(AuditEvent)
        .where(or_(AuditEvent.actor_member_id == member.id, AuditEvent.actor == old_email))
        .values(actor=alias)
    )
    db.execute(
        update(MailMessage)
        .where(MailMessage.to_address == old_email, MailMessage.id != mail.id)
        .values(to_address=alias)
    )
    return mail.id
