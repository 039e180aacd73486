"""`pitpass sandbox`: a client developer's first minute on a local Pitpass (issue #13,
item 4). On this database it makes, or reuses, one member and one server-side client
with both flows, puts the member on the client's access list, and returns credentials
that work at once.

Run again, it reuses the member and the client (found by the member's email and the
client's name and owner) and gives each a new password and secret: a secret is kept only
as a keyed hash, so the old one cannot be shown again. The previous secret keeps working
for the usual grace period (services/client_secrets.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.db.models import AuditEvent, Client, Member
from pitpass.services import access_lists, client_secrets, members
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError

CLIENT_NAME = "Sandbox client"
FLOWS = ("authorization_code", "password_limited")
ACTOR_LABEL = "sandbox"  # who made the member, in the audit log
REDIRECT_URI = "http://127.0.0.1/callback"
DEFAULT_EMAIL = "sandbox.driver@example.com"
SCOPE = "iracing.auth iracing.profile"


@dataclass(frozen=True)
class Sandbox:
    email: str
    password: str
    customer_id: int
    client_id: str
    client_secret: str
    redirect_uri: str
    reused: bool


def _staff(db: Session, email: str | None) -> Member:
    """Who issues the client, as in `pitpass clients create --as`: the staff member named,
    else the oldest enabled one (`pitpass setup` makes one on a new database)."""
    query = select(Member).where(Member.is_staff.is_(True), Member.is_disabled.is_(False))
    if email:
        query = query.where(Member.email == members.normalise_email(email))
    staff = db.scalar(query.order_by(Member.id).limit(1))
    if staff is None and email:
        raise ServiceError.field("actor", f"{email!r} is not an active staff member")
    if staff is None:
        raise ServiceError.conflict(
            "staff", "no staff account yet: run `pitpass setup` (make run does) first"
        )
    return staff


def _made_by_sandbox(db: Session, member: Member) -> bool:
    """Whether `pitpass sandbox` created this member (its `member.created` audit event)."""
    return (
        db.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "member.created",
                AuditEvent.target_type == "member",
                AuditEvent.target_id == str(member.customer_id),
                AuditEvent.actor_member_id.is_(None),
                AuditEvent.actor == ACTOR_LABEL,
            )
        )
        is not None
    )


def _member(db: Session, email: str, customer_id: int | None, password: str) -> tuple[Member, bool]:
    """The sandbox member with `password`, and whether it was there already."""
    member = members.find_by_email(db, email)
    if member is None:
        made = members.create_member(
            db,
            members.NewMember(
                email=email,
                display_name="Sandbox Driver",
                password=password,
                customer_id=customer_id,
            ),
            actor_label=ACTOR_LABEL,
        )
        return made, False
    # Never a real account: its password would be replaced and printed.
    if not _made_by_sandbox(db, member):
        raise ServiceError.field(
            "email", f"{email} belongs to a member the sandbox did not make; choose another"
        )
    if customer_id is not None and member.customer_id != customer_id:
        raise ServiceError.field(
            "customer_id",
            f"{email} already has customer id {member.customer_id}; leave --customer-id out "
            "or choose another --email",
        )
    if member.is_disabled:
        raise ServiceError.conflict("email", f"{email} is disabled; choose another --email")
    member.password_hash = members.password_hash_for(member.email, password)
    return member, True


def _client_name(owner: Member) -> str:
    return f"{CLIENT_NAME} {owner.customer_id}"  # live client names are unique


def _client(ctx: AppContext, db: Session, owner: Member, staff: Member) -> tuple[Client, str]:
    """The sandbox client of `owner` with a fresh secret, made on the first run."""
    found = db.scalar(
        select(Client)
        .where(Client.owner_id == owner.id, Client.name == _client_name(owner))
        .where(Client.is_disabled.is_(False))
        .order_by(Client.id)
        .limit(1)
    )
    if found is not None:
        if set(found.flows) != set(FLOWS) or REDIRECT_URI not in found.redirect_uris:
            raise ServiceError.conflict(
                "client",
                f"the sandbox client {found.client_id} was changed (flows or redirect URIs); "
                "disable it (`pitpass clients disable`) or choose another --email",
            )
        return found, client_secrets.rotate_secret(ctx, db, found, staff)
    details = ClientDetails(
        client_name=_client_name(owner),
        client_type="server-side",
        flows=list(FLOWS),
        description="Made by `pitpass sandbox` for local development.",
        developer_name="Sandbox",
        developer_url="https://example.com",  # RFC 2606: a name reserved for examples
        developer_email=owner.email,
        redirect_uris=[REDIRECT_URI],
        # Every API of this deployment: the developer can call them all at once.
        audiences=list(ctx.settings.profile.audiences),
    )
    issued = clients_service.create_client(ctx, db, details, staff, owner=owner)
    assert issued.secret is not None  # a server-side client always gets one
    return issued.client, issued.secret


def prepare(
    ctx: AppContext,
    db: Session,
    email: str = DEFAULT_EMAIL,
    customer_id: int | None = None,
    staff_email: str | None = None,
) -> Sandbox:
    """The sandbox's member and client, ready to use; ServiceError or MemberError for a
    choice that cannot be honoured (the caller rolls back what was written)."""
    staff = _staff(db, staff_email)
    password = secrets.token_urlsafe(12)
    member, reused = _member(db, email, customer_id, password)
    client, secret = _client(ctx, db, member, staff)
    on_list = any(m.id == member.id for _entry, m in access_lists.access_list(db, client))
    if not on_list:
        access_lists.add_to_access_list(ctx, db, client, member.email, staff, by_staff=True)
    return Sandbox(
        email=member.email,
        password=password,
        customer_id=member.customer_id,
        client_id=client.client_id,
        client_secret=secret,
        redirect_uri=REDIRECT_URI,
        reused=reused,
    )
