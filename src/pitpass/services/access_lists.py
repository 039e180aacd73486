"""Access lists of password-limited clients, and the invitations to them (PRODUCT.md §3).

A client with the password_limited flow signs in only the members on its
list: staff additions are active at once, a developer's wait for the member.
A developer never reads a member's email from us, and sees the display name only
once the member accepted; their additions are throttled (docs/decisions.md,
"What a developer sees of the members they add").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.db.models import AccessListEntry, Client, Member, utcnow
from pitpass.services import audit
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.services.members import MAX_CUSTOMER_ID, find_by_email

MAX_ACCESS_LIST = 3


def access_list(db: Session, client: Client) -> list[tuple[AccessListEntry, Member]]:
    rows = db.execute(
        select(AccessListEntry, Member)
        .join(Member, Member.id == AccessListEntry.member_id)
        .where(AccessListEntry.client_pk == client.id, AccessListEntry.removed_at.is_(None))
        .order_by(AccessListEntry.added_at)
    )
    return [(entry, member) for entry, member in rows]


def shown(db: Session, client: Client, *, to_staff: bool) -> list[dict[str, Any]]:
    """The list as pages, API and CLI show it; a member is pending until they accept.
    Staff see emails; a developer the customer id, and the name once accepted."""
    rows = []
    for entry, member in access_list(db, client):
        accepted = entry.accepted_at is not None
        rows.append(
            {
                "email": member.email if to_staff else None,
                "customer_id": member.customer_id,
                "display_name": member.display_name if to_staff or accepted else None,
                "state": "active" if accepted else "pending",
            }
        )
    return rows


def _take_developer_addition(ctx: AppContext, actor: Member) -> None:
    """Every addition a developer tries counts, found or not: walking the customer ids
    (add, remove, add the next) is slow, and so are invitation mails to strangers."""
    allowed, _remaining, reset = ctx.throttles.access_list_adds.take(str(actor.id))
    if not allowed:
        raise ServiceError.throttled(
            "member",
            f"too many access-list additions; try again in {max(1, reset)} seconds",
            max(1, reset),
        )


def find_member(db: Session, reference: str) -> Member | None:
    """By email, or by customer id when the reference is a number."""
    reference = reference.strip()
    if reference.isdigit():
        if not reference.isascii() or int(reference) > MAX_CUSTOMER_ID:
            return None  # no customer id is that (nor can PostgreSQL compare it)
        return db.scalar(select(Member).where(Member.customer_id == int(reference)))
    return find_by_email(db, reference)


def add_to_access_list(
    ctx: AppContext,
    db: Session,
    client: Client,
    reference: str,
    actor: Member,
    *,
    by_staff: bool,
    ip: str | None = None,
) -> tuple[AccessListEntry, Member, list[int]]:
    """Staff additions are active at once (they act on the member's request); a developer's
    addition waits for the member to accept in their account."""
    if "password_limited" not in client.flows:
        raise ServiceError.field(
            "member", "only clients with the password_limited flow have an access list"
        )
    if not by_staff:
        _take_developer_addition(ctx, actor)
    member = find_member(db, reference)
    if member is None:
        raise ServiceError.field(
            "member", f"no member has the email or customer id '{reference.strip()}'"
        )
    entries = access_list(db, client)
    if any(existing.id == member.id for _entry, existing in entries):
        who = member.email if by_staff else f"customer {member.customer_id}"
        raise ServiceError.field("member", f"{who} is already on the access list")
    if len(entries) >= MAX_ACCESS_LIST:
        raise ServiceError.field(
            "member", f"an access list holds at most {MAX_ACCESS_LIST} members; remove one first"
        )
    entry = AccessListEntry(
        client_pk=client.id,
        member_id=member.id,
        added_by_id=actor.id,
        accepted_at=utcnow() if by_staff else None,
    )
    db.add(entry)
    db.flush()
    audit.record_for_client(
        db,
        "access_list.added",
        client,
        actor,
        ip,
        {"member": member.customer_id, "by_staff": by_staff},
    )
    mail_ids = []
    if not by_staff:
        service = ctx.settings.profile.service_name
        mail_ids.append(
            ctx.mailer.enqueue(
                db,
                member.email,
                f"{service}: '{client.name}' asks to sign you in",
                f"Hello {member.display_name},\n\n{actor.display_name} added you to the access "
                f"list of the client '{client.name}', which signs in with your password "
                "(the password_limited flow, without the emailed code).\n\n"
                f"Accept or decline at {ctx.settings.public_base_url}/account\n",
                "access_list_invitation",
            ).id
        )
    return entry, member, mail_ids


def remove_from_access_list(
    db: Session, client: Client, reference: str, actor: Member, ip: str | None = None
) -> Member:
    member = find_member(db, reference)
    entry = next(
        (e for e, m in access_list(db, client) if member is not None and m.id == member.id), None
    )
    if entry is None or member is None:
        raise ServiceError.field("member", f"'{reference.strip()}' is not on the access list")
    entry.removed_at = utcnow()
    audit.record_for_client(
        db, "access_list.removed", client, actor, ip, {"member": member.customer_id}
    )
    return member


def invitations_for(db: Session, member: Member) -> list[tuple[AccessListEntry, Client]]:
    rows = db.execute(
        select(AccessListEntry, Client)
        .join(Client, Client.id == AccessListEntry.client_pk)
        .where(
            AccessListEntry.member_id == member.id,
            AccessListEntry.removed_at.is_(None),
        )
        .order_by(AccessListEntry.added_at)
    )
    return [(entry, client) for entry, client in rows]


def answer_invitation(
    db: Session, entry_id: int, member: Member, accept: bool, ip: str | None = None
) -> Client:
    entry = db.get(AccessListEntry, entry_id)
    if entry is None or entry.member_id != member.id or entry.removed_at is not None:
        raise ServiceError.conflict("invitation", "this invitation is no longer open")
    client = db.get(Client, entry.client_pk)
    assert client is not None
    now = utcnow()
    if accept:
        if entry.accepted_at is not None:
            raise ServiceError.conflict("invitation", "you already accepted this invitation")
        entry.accepted_at = now
    else:
        entry.removed_at = now
    action = "access_list.accepted" if accept else "access_list.declined"
    audit.record_for_client(db, action, client, member, ip)
    return client
