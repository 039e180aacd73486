"""Download my data (issue #12, item 2): what Pitpass holds about a member, as JSON.

Everything is the member's own: profile, browsers, app sessions and consents, clients
and requests, and the audit events they caused. Never a hash, a sealed value or a
token: only what the member may read on the pages anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.db.models import (
    AccessListEntry,
    AuditEvent,
    Client,
    Consent,
    Member,
    OAuthSession,
    RegistrationRequest,
    RememberedBrowser,
    WebSession,
    utcnow,
)
from pitpass.services import audit, totp

FORMAT = "pitpass-account-data/1"


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _profile(db: Session, member: Member) -> dict[str, Any]:
    return {
        "email": member.email,
        "display_name": member.display_name,
        "customer_id": member.customer_id,
        "group_ids": list(member.group_ids or []),
        "staff": member.is_staff,
        "email_verified_at": _when(member.email_verified_at),
        "created_at": _when(member.created_at),
        "authenticator_app_enabled_at": _when(member.totp_enabled_at),
        "recovery_codes_left": totp.recovery_codes_left(db, member)
        if totp.is_enabled(member)
        else 0,
    }


def _web_sessions(db: Session, member: Member) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(WebSession).where(WebSession.member_id == member.id).order_by(WebSession.id)
    )
    return [
        {
            "signed_in_at": _when(row.created_at),
            "expires_at": _when(row.expires_at),
            "signed_out_at": _when(row.revoked_at),
            "ip": row.ip,
            "user_agent": row.user_agent,
        }
        for row in rows
    ]


def _remembered_browsers(db: Session, member: Member) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(RememberedBrowser)
        .where(RememberedBrowser.member_id == member.id)
        .order_by(RememberedBrowser.id)
    )
    return [
        {
            "remembered_at": _when(row.created_at),
            "expires_at": _when(row.expires_at),
            "forgotten_at": _when(row.revoked_at),
        }
        for row in rows
    ]


def _client_names(db: Session, pks: set[int]) -> dict[int, Client]:
    if not pks:
        return {}
    return {c.id: c for c in db.scalars(select(Client).where(Client.id.in_(pks)))}


def _connected_apps(db: Session, member: Member) -> dict[str, list[dict[str, Any]]]:
    sessions = list(
        db.scalars(
            select(OAuthSession)
            .where(OAuthSession.member_id == member.id)
            .order_by(OAuthSession.created_at)
        )
    )
    consents = list(
        db.scalars(select(Consent).where(Consent.member_id == member.id).order_by(Consent.id))
    )
    clients = _client_names(db, {s.client_pk for s in sessions} | {c.client_pk for c in consents})

    def app(pk: int) -> dict[str, str]:
        return {"client_id": clients[pk].client_id, "client_name": clients[pk].name}

    return {
        "app_sessions": [
            {
                **app(s.client_pk),
                "session_id": s.id,
                "scope": s.scope,
                "signed_in_at": _when(s.created_at),
                "last_activity_at": _when(s.last_activity_at),
                "expires_at": _when(s.expires_at),
                "signed_out_at": _when(s.revoked_at),
                "signed_out_because": s.revoked_reason,
                "first_ip": s.first_ip,
                "last_ip": s.last_ip,
                "first_user_agent": s.first_user_agent,
                "last_user_agent": s.last_user_agent,
            }
            for s in sessions
        ],
        "consents": [
            {
                **app(c.client_pk),
                "scope": c.scope,
                "granted_at": _when(c.granted_at),
                "withdrawn_at": _when(c.withdrawn_at),
            }
            for c in consents
        ],
    }


def _developer(db: Session, member: Member) -> dict[str, list[dict[str, Any]]]:
    owned = db.scalars(select(Client).where(Client.owner_id == member.id).order_by(Client.id))
    requests = db.scalars(
        select(RegistrationRequest)
        .where(RegistrationRequest.requester_id == member.id)
        .order_by(RegistrationRequest.id)
    )
    access = db.execute(
        select(AccessListEntry, Client)
        .join(Client, Client.id == AccessListEntry.client_pk)
        .where(AccessListEntry.member_id == member.id)
        .order_by(AccessListEntry.id)
    )
    return {
        "clients": [
            {
                "client_id": c.client_id,
                "name": c.name,
                "client_type": c.client_type,
                "flows": list(c.flows),
                "description": c.description,
                "developer_name": c.developer_name,
                "developer_url": c.developer_url,
                "developer_email": c.developer_email,
                "redirect_uris": list(c.redirect_uris),
                "audiences": list(c.audiences),
                "disabled": c.is_disabled,
                "created_at": _when(c.created_at),
            }
            for c in owned
        ],
        "requests": [
            {
                "id": r.id,
                "change_request": r.is_change,
                "status": r.status,
                "client_name": r.client_name,
                "client_type": r.client_type,
                "flows": list(r.flows),
                "description": r.description,
                "redirect_uris": list(r.redirect_uris),
                "audiences": list(r.audiences),
                "submitted_at": _when(r.submitted_at),
                "decided_at": _when(r.decided_at),
                "staff_message": r.staff_message,
            }
            for r in requests
        ],
        "access_lists": [
            {
                "client_id": client.client_id,
                "client_name": client.name,
                "added_at": _when(entry.added_at),
                "accepted_at": _when(entry.accepted_at),
                "removed_at": _when(entry.removed_at),
            }
            for entry, client in access
        ],
    }


def _audit_events(db: Session, member: Member) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.actor_member_id == member.id)
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    )
    return [
        {
            "occurred_at": _when(e.occurred_at),
            "action": e.action,
            "target_type": e.target_type,
            "target_id": e.target_id,
            "ip": e.ip,
            "details": e.details,
        }
        for e in rows
    ]


def export(db: Session, member: Member, ip: str | None) -> dict[str, Any]:
    """The member's data; the download itself is audited (and listed in the next one)."""
    data = {
        "format": FORMAT,
        "exported_at": _when(utcnow()),
        "profile": _profile(db, member),
        "web_sessions": _web_sessions(db, member),
        "remembered_browsers": _remembered_browsers(db, member),
        **_connected_apps(db, member),
        **_developer(db, member),
        "audit_events": _audit_events(db, member),
    }
    audit.record(db, "account.data_downloaded", actor=member, ip=ip)
    return data
