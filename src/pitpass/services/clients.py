"""Issued clients: creating, finding, listing, disabling, token lifetimes (PRODUCT.md §3).

Their secrets live in `client_secrets`, their access lists in `access_lists`,
and a client asked for by a developer is created by `workflow.approve`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.core import policy
from pitpass.core.policy import SignOutReason
from pitpass.core.slugs import unique_slug
from pitpass.db.models import Client, Member, utcnow
from pitpass.services import audit
from pitpass.services.client_details import ClientDetails, is_confidential, review_details
from pitpass.services.client_secrets import issue_secret
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.services.paging import Page, fetch_page
from pitpass.storage import sync
from pitpass.storage.records import SessionsToSignOut


def new_client(db: Session, details: ClientDetails, owner_id: int | None) -> Client:
    """A client with a client_id made from its name (checked details only)."""

    def taken(candidate: str) -> bool:
        return db.scalar(select(Client.id).where(Client.client_id == candidate)) is not None

    client = Client(client_id=unique_slug(details.client_name, taken), owner_id=owner_id)
    details.write_to(client)
    db.add(client)
    db.flush()
    return client


@dataclass
class Issued:
    client: Client
    secret: str | None  # plaintext, for a channel that shows it once (CLI); else None
    mail_ids: list[int]


def create_client(
    ctx: AppContext,
    db: Session,
    details: ClientDetails,
    actor: Member,
    *,
    owner: Member | None = None,
    ip: str | None = None,
) -> Issued:
    """Staff issue a client directly (requests that came by other channels)."""
    review = review_details(db, ctx.settings, details)
    if not review.ok:
        raise ServiceError.fields(review.errors)
    client = new_client(db, review.details, owner.id if owner else None)
    secret = issue_secret(ctx, db, client, reveal=False)[1] if is_confidential(client) else None
    audit.record_for_client(
        db, "client.created", client, actor, ip, {"type": client.client_type, "flows": client.flows}
    )
    return Issued(client, secret, [])


def by_pk(db: Session, pk: int | None) -> Client | None:
    return db.get(Client, pk) if pk is not None else None


def by_pks(db: Session, pks: set[int | None]) -> dict[int | None, Client]:
    """Many clients in one query (lists name the client of each row); None finds none."""
    wanted = {pk for pk in pks if pk is not None}
    if not wanted:
        return {}
    return {client.id: client for client in db.scalars(select(Client).where(Client.id.in_(wanted)))}


def by_client_id(db: Session, client_id: str) -> Client | None:
    return db.scalar(select(Client).where(Client.client_id == client_id))


def clients_of(
    db: Session, member: Member, number: int = 1, per_page: int = 50
) -> tuple[list[Client], Page]:
    where = Client.owner_id == member.id
    return fetch_page(db, Client, where, (Client.id.desc(),), number, per_page)


def all_clients(db: Session, number: int = 1, per_page: int = 50) -> tuple[list[Client], Page]:
    return fetch_page(db, Client, None, (Client.id.desc(),), number, per_page)


def set_disabled(
    db: Session, client: Client, disabled: bool, actor: Member, ip: str | None = None
) -> None:
    if client.is_disabled == disabled:
        state = "disabled" if disabled else "enabled"
        raise ServiceError.conflict("client", f"client {client.client_id} is already {state}")
    if not disabled:
        clash = db.scalar(
            select(Client.client_id).where(
                Client.name_key == client.name_key,
                Client.is_disabled.is_(False),
                Client.id != client.id,
            )
        )
        if clash:
            raise ServiceError.conflict(
                "client", f"the live client {clash} now has this name; rename one first"
            )
    client.is_disabled = disabled
    client.disabled_at = utcnow() if disabled else None
    if disabled:  # PRODUCT.md §3: disabling signs every member out of the client
        sync.sign_out(
            db, SessionsToSignOut(client_pk=client.id), SignOutReason.CLIENT_DISABLED, utcnow()
        )
    audit.record_for_client(
        db, "client.disabled" if disabled else "client.enabled", client, actor, ip
    )


def set_lifetimes(
    db: Session,
    client: Client,
    actor: Member,
    values: dict[str, int | None],
    ip: str | None = None,
) -> dict[str, int]:
    """Change the token lifetimes of one client; unset values stay as they are."""
    chosen = {name: value for name, value in values.items() if value is not None}
    for name, value in chosen.items():
        low, high = policy.LIFETIME_BOUNDS[name]
        if not low <= value <= high:
            raise ServiceError.field(name, f"must be between {low} and {high} seconds")
    for name, value in chosen.items():
        setattr(client, name, value)
    result = {name: int(getattr(client, name)) for name in policy.LIFETIME_BOUNDS}
    audit.record_for_client(db, "client.lifetimes_changed", client, actor, ip, result)
    return result
