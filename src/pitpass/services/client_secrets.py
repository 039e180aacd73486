"""Client secrets: issue, show once, rotate, report (PRODUCT.md §3, §4).

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

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from pitpass.core.masking import mask_secret
from pitpass.db.models import Client, ClientSecret, Member, utcnow
from pitpass.services import audit
from pitpass.services.client_details import is_confidential
from pitpass.services.context import AppContext
from pitpass.services.crypto import new_token
from pitpass.services.errors import ServiceError

SECRET_BYTES = 32  # 256 bits (PRODUCT.md §3)
REVEAL_CONTEXT = "client-secret-reveal"


def secret_hash(ctx: AppContext, masked_secret: str) -> str:
    """The stored form of a client secret: a keyed hash of what clients send (the mask)."""
    return ctx.keyring.token_hash(f"client-secret:{masked_secret}")


def live_secrets(db: Session, client: Client, now: datetime | None = None) -> list[ClientSecret]:
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


def issue_secret(
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
        raise ServiceError.conflict("client", "public clients have no secret to rotate")
    now = utcnow()
    grace_end = now + timedelta(days=ctx.settings.secret_grace_days)
    live = live_secrets(db, client, now)
    for index, old in enumerate(live):
        if index == 0 and old.expires_at is None:
            old.expires_at = grace_end  # the current one keeps working for a while
        else:
            old.revoked_at = now  # never more than two live secrets
        old.reveal_sealed = None
    _record, plaintext, _link = issue_secret(ctx, db, client, reveal=False)
    audit.record_for_client(
        db, "client.secret_rotated", client, actor, ip, {"grace_until": grace_end.isoformat()}
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


def _refusal(record: ClientSecret | None, now: datetime) -> str | None:
    """Why `record` cannot be shown (None: it can), in words for its owner."""
    if record is None:
        return "This link is not valid. Check that it was copied whole."
    if record.revealed_at is not None:
        where = "in the portal" if record.revealed_via == "portal" else "through the emailed link"
        return (
            f"This secret was already viewed on {record.revealed_at:%Y-%m-%d at %H:%M} UTC "
            f"({where}). It cannot be shown again: rotate it from the client's page."
        )
    if record.revoked_at is not None or record.expires_at is not None:
        return "This secret was replaced by a newer one: it cannot be shown."
    if record.reveal_sealed is None or (record.reveal_expires_at or now) <= now:
        return "This link has expired. Rotate the secret from the client's page to get a new one."
    return None


def _reveal(ctx: AppContext, db: Session, record: ClientSecret | None, via: str) -> str:
    """Show a sealed secret exactly once: one conditional UPDATE wipes it."""
    now = utcnow()
    refusal = _refusal(record, now)
    if refusal is not None:
        if record is not None and record.reveal_sealed is not None:
            db.execute(  # expired or replaced: the sealed copy is of no more use
                update(ClientSecret).where(ClientSecret.id == record.id).values(reveal_sealed=None)
            )
        raise RevealRefused(refusal)
    assert record is not None and record.reveal_sealed is not None
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
    audit.record_for_client(db, "client.secret_viewed", client, member, ip, {"via": via})


def reveal_link_client(
    ctx: AppContext, db: Session, token: str
) -> tuple[Client | None, str | None]:
    """The client of an emailed link, and why the link can no longer show it (None: it can)."""
    record = _secret_by_link(ctx, db, token)
    client = db.get(Client, record.client_pk) if record else None
    return client, _refusal(record, utcnow())


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
    live = live_secrets(db, client)
    current = next((s for s in live if s.expires_at is None), None)
    plaintext = _reveal(ctx, db, current, "portal")
    _record_view(db, member, client, "portal", ip)
    return plaintext
