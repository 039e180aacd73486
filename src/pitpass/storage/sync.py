"""The protocol store for synchronous callers that hold an ORM session (pages, the API,
the CLI, services): the same statements as the async store, run on that session, so
they commit with the caller's other changes (an audit event, a consent)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pitpass.core import policy
from pitpass.core.policy import SignOutReason
from pitpass.db.models import Client, Member, OAuthSession
from pitpass.storage import sql
from pitpass.storage.base import timestamp_codec
from pitpass.storage.records import Liveness, NewCode, SessionsToSignOut


def insert_code(db: Session, code: NewCode) -> None:
    write_time, _ = timestamp_codec(db.get_bind().dialect)
    db.execute(text(sql.INSERT_CODE), sql.code_params(code, write_time))


def sign_out(db: Session, which: SessionsToSignOut, reason: SignOutReason, now: datetime) -> int:
    """End the live sessions `which` names; how many there were."""
    write_time, _ = timestamp_codec(db.get_bind().dialect)
    params = sql.sign_out_params(which, reason, now, write_time)
    return len(db.execute(text(sql.sign_out(which)), params).all())


def live_sessions(
    db: Session, member_id: int, now: datetime, client_pk: int | None = None
) -> list[OAuthSession]:
    """The member's live sessions (of one client, if given), oldest first, by
    `policy.session_is_live`."""
    query = (
        select(OAuthSession, Member.is_disabled, Client.is_disabled)
        .join(Member, Member.id == OAuthSession.member_id)
        .join(Client, Client.id == OAuthSession.client_pk)
        .where(OAuthSession.member_id == member_id, OAuthSession.revoked_at.is_(None))
        .order_by(OAuthSession.created_at)
    )
    if client_pk is not None:
        query = query.where(OAuthSession.client_pk == client_pk)
    return [
        row
        for row, member_disabled, client_disabled in db.execute(query)
        if policy.session_is_live(
            Liveness(row.revoked_at is not None, row.expires_at, member_disabled, client_disabled),
            now,
        )
    ]
