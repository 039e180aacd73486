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

from pitpass.db.models import Client, Member
from pitpass.services import access_lists, client_secrets, members
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError

CLIENT_NAME = "Sandbox client"
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


def _staff(db: Session) -> Member:
    """Who the client is issued by: the oldest enabled staff member (`pitpass setup`
    makes one on a new database)."""
    staff = db.scalar(
        select(Member)
        .where(Member.is_staff.is_(True), Member.is_disabled.is_(False))
        .order_by(Member.id)
        .limit(1)
    )
    if staff is None:
        raise ServiceError.conflict(
            "staff", "no staff account yet: run `pitpass setup` (make run does) first"
        )
    return staff


def _member(db: Session, email: str, customer_id: int | None, password: str) -> Member:
    member = members.find_by_email(db, email)
    if member is None:
        return members.create_member(
            db,
            members.NewMember(
                email=email,
                display_name="Sandbox Driver",
                password=password,
                customer_id=customer_id,
            ),
            actor_label="sandbox",
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
    return member


def _client(ctx: AppContext, db: Session, owner: Member, staff: Member) -> tuple[Client, str]:
    """The sandbox client of `owner` with a fresh secret, made on the first run."""
    found = db.scalar(
        select(Client)
        .where(Client.owner_id == owner.id, Client.name == CLIENT_NAME)
        .where(Client.is_disabled.is_(False))
        .order_by(Client.id)
        .limit(1)
    )
    if found is not None:
        return found, client_secrets.rotate_secret(ctx, db, found, staff)
    details = ClientDetails(
        client_name=CLIENT_NAME,
        client_type="server-side",
        flows=["authorization_code", "password_limited"],
        description="Made by `pitpass sandbox` for local development.",
        developer_name="Sandbox",
        developer_url="https://example.com",  # RFC 2606: a name reserved for examples
        developer_email=owner.email,
        redirect_uris=[REDIRECT_URI],
    )
    issued = clients_service.create_client(ctx, db, details, staff, owner=owner)
    assert issued.secret is not None  # a server-side client always gets one
    return issued.client, issued.secret


def prepare(
    ctx: AppContext, db: Session, email: str = DEFAULT_EMAIL, customer_id: int | None = None
) -> Sandbox:
    """The sandbox's member and client, ready to use; ServiceError or MemberError for a
    choice that cannot be honoured, before anything is written."""
    staff = _staff(db)
    password = secrets.token_urlsafe(12)
    reused = members.find_by_email(db, email) is not None
    member = _member(db, email, customer_id, password)
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
