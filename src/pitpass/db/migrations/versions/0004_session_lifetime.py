"""session lifetime: a live session lasts at least as long as its access token

Before this revision a password_limited session, and every refreshed session,
expired `refresh_token_seconds` after its last activity, even when that was
shorter than the access token (core/policy.session_expires_at, issue #10).
Live sessions get the lifetime they would get now, so no access token issued
before the upgrade turns inactive early.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:40:00
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import pitpass.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

sessions = sa.table(
    "oauth_sessions",
    sa.column("id", sa.String()),
    sa.column("client_pk", sa.Integer()),
    sa.column("last_activity_at", pitpass.db.models.UTCDateTime()),
    sa.column("expires_at", pitpass.db.models.UTCDateTime()),
    sa.column("revoked_at", pitpass.db.models.UTCDateTime()),
)
clients = sa.table(
    "clients",
    sa.column("id", sa.Integer()),
    sa.column("access_token_seconds", sa.Integer()),
    sa.column("refresh_token_seconds", sa.Integer()),
)


def upgrade() -> None:
    bind = op.get_bind()
    live = bind.execute(
        sa.select(
            sessions.c.id,
            sessions.c.last_activity_at,
            sessions.c.expires_at,
            clients.c.access_token_seconds,
            clients.c.refresh_token_seconds,
        )
        .join(clients, clients.c.id == sessions.c.client_pk)
        .where(sessions.c.revoked_at.is_(None))
    ).all()
    for session_id, last_activity, expires_at, access, refresh in live:
        lifetime = timedelta(seconds=max(access, refresh))
        if expires_at < last_activity + lifetime:
            bind.execute(
                sessions.update()
                .where(sessions.c.id == session_id)
                .values(expires_at=last_activity + lifetime)
            )


def downgrade() -> None:
    """Data only: a longer expiry is harmless under the older rule."""
