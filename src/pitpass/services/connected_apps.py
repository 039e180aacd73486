"""What a member has let clients do, and how to take it back (issue #4, item 6)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from ua_parser import parse as parse_user_agent

from pitpass.core.policy import SignOutReason
from pitpass.db.models import Client, Consent, Member, OAuthSession, utcnow
from pitpass.services import audit
from pitpass.storage import sync
from pitpass.storage.records import SessionsToSignOut


def browser_and_os(user_agent: str | None) -> tuple[str | None, str | None]:
    """The browser and operating system families of a User-Agent header (ua-parser)."""
    if not user_agent:
        return None, None
    parsed = parse_user_agent(user_agent)
    return (
        parsed.user_agent.family if parsed.user_agent else None,
        parsed.os.family if parsed.os else None,
    )


# Families ua-parser gives to crawlers and HTTP libraries rather than to people's browsers.
_NOT_PEOPLE = {"Spider"}


def device_label(user_agent: str | None) -> str:
    """How a member recognises a session: "Chrome on Linux" for a browser. A token
    refreshed by the app's own code (curl, a library, its backend) is not the member's
    device, so it is named as what it is rather than as "curl / unknown"."""
    if not user_agent:
        return "Unknown device"
    parsed = parse_user_agent(user_agent)
    family = parsed.user_agent.family if parsed.user_agent else None
    is_browser = user_agent.startswith("Mozilla/") and not (
        parsed.device and parsed.device.family in _NOT_PEOPLE
    )
    if family is None or not is_browser:
        tool = f" ({family})" if family else ""
        return f"Not a browser: the app or its server{tool}"
    system = parsed.os.family if parsed.os else None
    return f"{family} on {system}" if system else family


@dataclass
class ConnectedApp:
    client: Client
    sessions: list[OAuthSession] = field(default_factory=list)
    consented_scopes: list[str] = field(default_factory=list)


def connected_apps(db: Session, member: Member) -> list[ConnectedApp]:
    apps: dict[int, ConnectedApp] = {}
    live = sync.live_sessions(db, member.id, utcnow())
    for session in sorted(live, key=lambda s: s.last_activity_at, reverse=True):
        if session.client_pk not in apps:
            client = db.get(Client, session.client_pk)
            assert client is not None
            apps[session.client_pk] = ConnectedApp(client)
        apps[session.client_pk].sessions.append(session)
    consents = db.scalars(
        select(Consent).where(Consent.member_id == member.id, Consent.withdrawn_at.is_(None))
    )
    for consent in consents:
        if consent.client_pk not in apps:
            client = db.get(Client, consent.client_pk)
            assert client is not None
            apps[consent.client_pk] = ConnectedApp(client)
        apps[consent.client_pk].consented_scopes.extend(consent.scope.split())
    return sorted(apps.values(), key=lambda app: app.client.name.lower())


def sign_out_session(db: Session, member: Member, session_id: str, ip: str | None) -> bool:
    which = SessionsToSignOut(session_id=session_id, member_id=member.id)
    done = sync.sign_out(db, which, SignOutReason.MEMBER_SIGNED_OUT, utcnow()) > 0
    if done:
        audit.record(
            db,
            "session.signed_out",
            actor=member,
            target_type="session",
            target_id=session_id,
            ip=ip,
        )
    return done


def disconnect(
    db: Session, member: Member, client: Client, ip: str | None, *, withdraw_consent: bool
) -> None:
    """Sign every session of `client` out; with `withdraw_consent`, ask again next time."""
    now = utcnow()
    which = SessionsToSignOut(member_id=member.id, client_pk=client.id)
    sync.sign_out(db, which, SignOutReason.MEMBER_DISCONNECTED, now)
    if withdraw_consent:
        db.execute(
            update(Consent)
            .where(
                Consent.member_id == member.id,
                Consent.client_pk == client.id,
                Consent.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=now)
        )
    audit.record(
        db,
        "consent.withdrawn" if withdraw_consent else "client.signed_out",
        actor=member,
        target_type="client",
        target_id=client.client_id,
        ip=ip,
    )
