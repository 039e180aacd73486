"""Issued clients: approval, secrets, access lists, disabling (PRODUCT.md §3).

Secrets: at least 256 random bits, only for server-side clients, stored only
as a keyed hash of their *masked* form (`mask_secret(secret, client_id)`, the
form clients send, PRODUCT.md §4). Until its one-time view the plaintext is
also kept sealed; viewing wipes it. Rotation keeps the previous secret valid
for the grace period and never leaves more than two live secrets.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from pitpass.core.client_names import name_key
from pitpass.core.masking import mask_secret
from pitpass.core.slugs import unique_slug
from pitpass.db.models import (
    AccessListEntry,
    Client,
    ClientSecret,
    Member,
    OAuthSession,
    RegistrationRequest,
    utcnow,
)
from pitpass.services import audit
from pitpass.services.context import AppContext
from pitpass.services.crypto import new_token
from pitpass.services.members import find_by_email
from pitpass.services.registration import (
    APPROVED,
    SUBMITTED,
    ClientDetails,
    Page,
    RegistrationError,
    move_status,
    page_of,
    review_details,
)

SECRET_BYTES = 32  # 256 bits (PRODUCT.md §3)
REVEAL_CONTEXT = "client-secret-reveal"
MAX_ACCESS_LIST = 3


def secret_hash(ctx: AppContext, masked_secret: str) -> str:
    """The stored form of a client secret: a keyed hash of what clients send (the mask)."""
    return ctx.keyring.token_hash(f"client-secret:{masked_secret}")


def is_confidential(client: Client) -> bool:
    return client.client_type == "server-side"


# ----- creating clients -------------------------------------------------------------


def _fill(client: Client, details: ClientDetails) -> None:
    client.name = details.client_name
    client.name_key = name_key(details.client_name)
    client.client_type = details.client_type
    client.flows = details.flows
    client.description = details.description
    client.developer_name = details.developer_name or None
    client.developer_url = details.developer_url or None
    client.developer_email = details.developer_email
    client.redirect_uris = details.redirect_uris
    client.audiences = details.audiences


def _new_client(db: Session, details: ClientDetails, owner_id: int | None) -> Client:
    def taken(candidate: str) -> bool:
        return db.scalar(select(Client.id).where(Client.client_id == candidate)) is not None

    client = Client(client_id=unique_slug(details.client_name, taken), owner_id=owner_id)
    _fill(client, details)
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
        raise RegistrationError(review.errors)
    client = _new_client(db, review.details, owner.id if owner else None)
    secret = _issue_secret(ctx, db, client, reveal=False)[1] if is_confidential(client) else None
    audit.record(
        db,
        "client.created",
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details={"type": client.client_type, "flows": client.flows},
    )
    return Issued(client, secret, [])


def approve(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    staff: Member,
    message: str = "",
    ip: str | None = None,
) -> Issued:
    """Approve: create the client (or apply the change) and, for server-side, a secret."""
    changing = (
        db.get(Client, request.client_pk) if request.is_change and request.client_pk else None
    )
    review = review_details(db, ctx.settings, ClientDetails.of(request), changing=changing)
    if not review.ok:
        raise RegistrationError(
            {f"request.{k}": v for k, v in review.errors.items()}
            | {"status": "the request no longer passes the checks; request changes instead"}
        )
    move_status(
        db,
        request,
        [SUBMITTED],
        APPROVED,
        decided_by_id=staff.id,
        decided_at=utcnow(),
        staff_message=message.strip() or None,
    )
    requester = db.get(Member, request.requester_id)
    assert requester is not None
    reveal_link = None
    if changing is not None:
        _fill(changing, review.details)
        client = changing
        if is_confidential(client) and not _live_secrets(db, client):
            reveal_link = _issue_secret(ctx, db, client, reveal=True)[2]
    else:
        client = _new_client(db, review.details, requester.id)
        request.client_pk = client.id
        if is_confidential(client):
            reveal_link = _issue_secret(ctx, db, client, reveal=True)[2]
    audit.record(
        db,
        "request.approved",
        actor=staff,
        target_type="request",
        target_id=request.id,
        ip=ip,
        details={"client_id": client.client_id, "change": request.is_change},
    )
    audit.record(
        db,
        "client.changed" if changing else "client.created",
        actor=staff,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
    )
    mail_ids = [_approval_mail(ctx, db, request, requester, client, reveal_link)]
    return Issued(client, None, mail_ids)


def _approval_mail(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    requester: Member,
    client: Client,
    reveal_link: str | None,
) -> int:
    service = ctx.settings.profile.service_name
    lines = [
        f"Hello {requester.display_name},",
        "",
        f"Your request #{request.id} was approved.",
        "",
        f"client_id: {client.client_id}",
    ]
    if reveal_link:
        hours = ctx.settings.secret_link_hours
        lines += [
            "",
            f"Your client_secret can be viewed once, within {hours} hours, at:",
            reveal_link,
            "(or once from the client's page in the portal). Store it safely: "
            "it cannot be shown again, only rotated.",
        ]
    elif not is_confidential(client):
        lines += ["", "This is a public client: it has no secret and must use PKCE."]
    if request.staff_message:
        lines += ["", "Message from staff:", request.staff_message]
    lines += ["", f"Manage it at {ctx.settings.public_base_url}/portal/clients/{client.client_id}"]
    return ctx.mailer.enqueue(
        db,
        requester.email,
        f"{service}: your client '{client.name}' is ready",
        "\n".join(lines) + "\n",
        "request_approved",
    ).id


# ----- secrets -------------------------------------------------------------------------


def _live_secrets(db: Session, client: Client, now: datetime | None = None) -> list[ClientSecret]:
    now = now or utcnow()
    return list(
        db.scalars(
            select(ClientSecret)
            .where(
                ClientSecret.client_pk == client.id,
                ClientSecret.revoked_at.is_(None),
                or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > now),
            )
            .order_by(ClientSecret.created_at.desc(), ClientSecret.id.desc())
        )
    )


def _issue_secret(
    ctx: AppContext, db: Session, client: Client, *, reveal: bool
) -> tuple[ClientSecret, str, str | None]:
    """A new current secret; returns the row, the plaintext and the reveal link (if any)."""
    plaintext = secrets.token_urlsafe(SECRET_BYTES)
    record = ClientSecret(
        client_pk=client.id, secret_hash=secret_hash(ctx, mask_secret(plaintext, client.client_id))
    )
    link = None
    if reveal:
        token = new_token()
        record.reveal_token_hash = ctx.keyring.token_hash(f"reveal:{token}")
        record.reveal_sealed = ctx.keyring.seal(plaintext.encode(), REVEAL_CONTEXT)
        record.reveal_expires_at = utcnow() + timedelta(hours=ctx.settings.secret_link_hours)
        link = f"{ctx.settings.public_base_url}/portal/secret/{token}"
    else:
        record.revealed_at = utcnow()
        record.revealed_via = "issuer"
    db.add(record)
    db.flush()
    return record, plaintext, link


def rotate_secret(
    ctx: AppContext, db: Session, client: Client, actor: Member, ip: str | None = None
) -> str:
    """A new secret, shown once by the caller; the previous one lives for the grace period."""
    if not is_confidential(client):
        raise RegistrationError({"client": "public clients have no secret to rotate"})
    now = utcnow()
    grace_end = now + timedelta(days=ctx.settings.secret_grace_days)
    live = _live_secrets(db, client, now)
    for index, old in enumerate(live):
        if index == 0 and old.expires_at is None:
            old.expires_at = grace_end  # the current one keeps working for a while
        else:
            old.revoked_at = now  # never more than two live secrets
        old.reveal_sealed = None
    _record, plaintext, _link = _issue_secret(ctx, db, client, reveal=False)
    audit.record(
        db,
        "client.secret_rotated",
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details={"grace_until": grace_end.isoformat()},
    )
    return plaintext


@dataclass(frozen=True)
class SecretStatus:
    created_at: datetime | None
    last_rotated_at: datetime | None
    previous_valid_until: datetime | None
    reveal_pending_until: datetime | None
    revealed_at: datetime | None
    revealed_via: str | None


def _status_of(every: list[ClientSecret], now: datetime) -> SecretStatus:
    """`every` secret of one client, oldest first."""
    live = [
        s
        for s in reversed(every)
        if s.revoked_at is None and (s.expires_at is None or s.expires_at > now)
    ]
    current = next((s for s in live if s.expires_at is None), None)
    previous = next((s for s in live if s.expires_at is not None), None)
    pending = current if current and current.reveal_sealed and not current.revealed_at else None
    return SecretStatus(
        created_at=every[0].created_at if every else None,
        last_rotated_at=current.created_at if current and len(every) > 1 else None,
        previous_valid_until=previous.expires_at if previous else None,
        reveal_pending_until=pending.reveal_expires_at if pending else None,
        revealed_at=current.revealed_at if current else None,
        revealed_via=current.revealed_via if current else None,
    )


def secret_statuses(db: Session, clients: list[Client]) -> dict[int, SecretStatus]:
    """The secret status of each confidential client, in one query (lists show many)."""
    confidential = [c.id for c in clients if is_confidential(c)]
    by_client: dict[int, list[ClientSecret]] = {pk: [] for pk in confidential}
    if confidential:
        rows = db.scalars(
            select(ClientSecret)
            .where(ClientSecret.client_pk.in_(confidential))
            .order_by(ClientSecret.created_at, ClientSecret.id)
        )
        for secret in rows:
            by_client[secret.client_pk].append(secret)
    now = utcnow()
    return {pk: _status_of(every, now) for pk, every in by_client.items()}


def secret_status(db: Session, client: Client) -> SecretStatus | None:
    return secret_statuses(db, [client]).get(client.id)


class RevealRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _reveal(ctx: AppContext, db: Session, record: ClientSecret | None, via: str) -> str:
    """Show a sealed secret exactly once: one conditional UPDATE wipes it."""
    now = utcnow()
    if record is None:
        raise RevealRefused("This link is not valid. Check that it was copied whole.")
    if record.revealed_at is not None:
        where = "in the portal" if record.revealed_via == "portal" else "through the emailed link"
        raise RevealRefused(
            f"This secret was already viewed on {record.revealed_at:%Y-%m-%d at %H:%M} UTC "
            f"({where}). It cannot be shown again: rotate it from the client's page."
        )
    if record.revoked_at is not None or record.expires_at is not None:
        raise RevealRefused("This secret was replaced by a newer one: it cannot be shown.")
    if record.reveal_sealed is None or (record.reveal_expires_at or now) <= now:
        db.execute(
            update(ClientSecret).where(ClientSecret.id == record.id).values(reveal_sealed=None)
        )
        raise RevealRefused(
            "This link has expired. Rotate the secret from the client's page to get a new one."
        )
    plaintext = ctx.keyring.unseal(record.reveal_sealed, REVEAL_CONTEXT).decode()
    taken = db.execute(
        update(ClientSecret)
        .where(ClientSecret.id == record.id, ClientSecret.revealed_at.is_(None))
        .values(revealed_at=now, revealed_via=via, reveal_sealed=None)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        db.refresh(record)
        return _reveal(ctx, db, record, via)  # someone else won: explain when and where
    return plaintext


def _secret_by_link(ctx: AppContext, db: Session, token: str) -> ClientSecret | None:
    return db.scalar(
        select(ClientSecret).where(
            ClientSecret.reveal_token_hash == ctx.keyring.token_hash(f"reveal:{token}")
        )
    )


def _record_view(db: Session, member: Member, client: Client, via: str, ip: str | None) -> None:
    audit.record(
        db,
        "client.secret_viewed",
        actor=member,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details={"via": via},
    )


def reveal_link_client(ctx: AppContext, db: Session, token: str) -> Client | None:
    record = _secret_by_link(ctx, db, token)
    return db.get(Client, record.client_pk) if record else None


def reveal_by_link(
    ctx: AppContext, db: Session, token: str, member: Member, ip: str | None = None
) -> tuple[Client, str]:
    record = _secret_by_link(ctx, db, token)
    client = db.get(Client, record.client_pk) if record else None
    if client is not None and client.owner_id != member.id:
        raise RevealRefused("This link belongs to another account. Sign in as the client's owner.")
    plaintext = _reveal(ctx, db, record, "link")
    assert client is not None
    _record_view(db, member, client, "link", ip)
    return client, plaintext


def reveal_in_portal(
    ctx: AppContext, db: Session, client: Client, member: Member, ip: str | None = None
) -> str:
    live = _live_secrets(db, client)
    current = next((s for s in live if s.expires_at is None), None)
    plaintext = _reveal(ctx, db, current, "portal")
    _record_view(db, member, client, "portal", ip)
    return plaintext


# ----- reading and managing --------------------------------------------------------------


def by_pk(db: Session, pk: int | None) -> Client | None:
    return db.get(Client, pk) if pk is not None else None


def by_client_id(db: Session, client_id: str) -> Client | None:
    return db.scalar(select(Client).where(Client.client_id == client_id))


def clients_of(
    db: Session, member: Member, number: int = 1, per_page: int = 50
) -> tuple[list[Client], Page]:
    where = Client.owner_id == member.id
    total = db.scalar(select(func.count()).select_from(Client).where(where)) or 0
    page = page_of(total, number, per_page)
    rows = db.scalars(
        select(Client).where(where).order_by(Client.id.desc()).offset(page.offset).limit(per_page)
    )
    return list(rows), page


def all_clients(db: Session, number: int = 1, per_page: int = 50) -> tuple[list[Client], Page]:
    total = db.scalar(select(func.count()).select_from(Client)) or 0
    page = page_of(total, number, per_page)
    rows = db.scalars(select(Client).order_by(Client.id.desc()).offset(page.offset).limit(per_page))
    return list(rows), page


def set_disabled(
    db: Session, client: Client, disabled: bool, actor: Member, ip: str | None = None
) -> None:
    if client.is_disabled == disabled:
        state = "disabled" if disabled else "enabled"
        raise RegistrationError({"client": f"client {client.client_id} is already {state}"})
    if not disabled:
        clash = db.scalar(
            select(Client.client_id).where(
                Client.name_key == client.name_key,
                Client.is_disabled.is_(False),
                Client.id != client.id,
            )
        )
        if clash:
            raise RegistrationError(
                {"client": f"the live client {clash} now has this name; rename one first"}
            )
    client.is_disabled = disabled
    client.disabled_at = utcnow() if disabled else None
    if disabled:  # PRODUCT.md §3: disabling signs every member out of the client
        db.execute(
            update(OAuthSession)
            .where(OAuthSession.client_pk == client.id, OAuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason="client_disabled")
        )
    audit.record(
        db,
        "client.disabled" if disabled else "client.enabled",
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
    )


# Bounds for per-client token lifetimes (PRODUCT.md §4 gives the defaults).
LIFETIME_BOUNDS = {
    "access_token_seconds": (60, 86_400),
    "refresh_token_seconds": (0, 90 * 86_400),  # 0: no refresh tokens for this client
    "refresh_grace_seconds": (0, 300),
}


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
        low, high = LIFETIME_BOUNDS[name]
        if not low <= value <= high:
            raise RegistrationError({name: f"must be between {low} and {high} seconds"})
    for name, value in chosen.items():
        setattr(client, name, value)
    result = {name: int(getattr(client, name)) for name in LIFETIME_BOUNDS}
    audit.record(
        db,
        "client.lifetimes_changed",
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details=result,
    )
    return result


# ----- access lists ------------------------------------------------------------------


def access_list(db: Session, client: Client) -> list[tuple[AccessListEntry, Member]]:
    rows = db.execute(
        select(AccessListEntry, Member)
        .join(Member, Member.id == AccessListEntry.member_id)
        .where(AccessListEntry.client_pk == client.id, AccessListEntry.removed_at.is_(None))
        .order_by(AccessListEntry.added_at)
    )
    return [(entry, member) for entry, member in rows]


def find_member(db: Session, reference: str) -> Member | None:
    """By email, or by customer id when the reference is a number."""
    reference = reference.strip()
    if reference.isdigit():
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
        raise RegistrationError(
            {"member": "only clients with the password_limited flow have an access list"}
        )
    member = find_member(db, reference)
    if member is None:
        raise RegistrationError(
            {"member": f"no member has the email or customer id '{reference.strip()}'"}
        )
    entries = access_list(db, client)
    if any(existing.id == member.id for _entry, existing in entries):
        raise RegistrationError({"member": f"{member.email} is already on the access list"})
    if len(entries) >= MAX_ACCESS_LIST:
        raise RegistrationError(
            {"member": f"an access list holds at most {MAX_ACCESS_LIST} members; remove one first"}
        )
    entry = AccessListEntry(
        client_pk=client.id,
        member_id=member.id,
        added_by_id=actor.id,
        accepted_at=utcnow() if by_staff else None,
    )
    db.add(entry)
    db.flush()
    audit.record(
        db,
        "access_list.added",
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details={"member": member.customer_id, "by_staff": by_staff},
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
        raise RegistrationError({"member": f"'{reference.strip()}' is not on the access list"})
    entry.removed_at = utcnow()
    audit.record(
        db,
        "access_list.removed",
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details={"member": member.customer_id},
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
        raise RegistrationError({"invitation": "this invitation is no longer open"})
    client = db.get(Client, entry.client_pk)
    assert client is not None
    now = utcnow()
    if accept:
        if entry.accepted_at is not None:
            raise RegistrationError({"invitation": "you already accepted this invitation"})
        entry.accepted_at = now
    else:
        entry.removed_at = now
    audit.record(
        db,
        "access_list.accepted" if accept else "access_list.declined",
        actor=member,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
    )
    return client
