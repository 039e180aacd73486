"""The audit log: append-only, read by staff (issue #2, item 6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.db.models import AuditEvent, Client, Member, RegistrationRequest


def record(
    db: Session,
    action: str,
    *,
    actor: Member | None = None,
    actor_label: str | None = None,
    target_type: str | None = None,
    target_id: str | int | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one event to the current transaction. Never pass secrets in `details`."""
    db.add(
        AuditEvent(
            actor_member_id=actor.id if actor else None,
            # A label may be what a stranger typed (a failed sign-in's email): a NUL is
            # kept visible but storable, as PostgreSQL refuses the character itself.
            actor=actor.email if actor else (actor_label or "system").replace("\x00", "\ufffd"),
            action=action,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            ip=ip,
            details=details or {},
        )
    )


def record_for_client(
    db: Session,
    action: str,
    client: Client,
    actor: Member,
    ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """An event about one client, found again by its client_id."""
    record(
        db,
        action,
        actor=actor,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
        details=details,
    )


def record_for_request(
    db: Session,
    action: str,
    request: RegistrationRequest,
    actor: Member,
    ip: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """An event about one registration request: together they are its history."""
    record(
        db, action, actor=actor, target_type="request", target_id=request.id, ip=ip, details=details
    )


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None


def search(db: Session, wanted: AuditFilter, limit: int = 200) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    if wanted.actor:
        query = query.where(AuditEvent.actor.contains(wanted.actor.strip().lower()))
    if wanted.action:
        query = query.where(AuditEvent.action.startswith(wanted.action.strip()))
    if wanted.target:
        target_type, _, target_id = wanted.target.strip().partition(":")
        query = query.where(AuditEvent.target_type == target_type)
        if target_id:
            query = query.where(AuditEvent.target_id == target_id)
    if wanted.since:
        query = query.where(AuditEvent.occurred_at >= wanted.since)
    if wanted.until:
        query = query.where(AuditEvent.occurred_at < wanted.until)
    return list(db.scalars(query.limit(limit)))
