"""Data migrations on both engines: 0004 gives live sessions the lifetime of
core/policy.session_expires_at, so no access token issued before an upgrade turns
inactive early (issue #10)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert
from sqlalchemy.orm import Session

from pitpass.db.engine import make_engine
from pitpass.db.migrate import alembic_config, upgrade
from pitpass.db.models import Client, Member, OAuthSession, WebSession, utcnow
from tests.support import postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pitpass.db'}"
        return
    with postgres_database(migrated=False) as url:
        yield url


def test_0004_extends_live_sessions_to_their_access_token(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine, "0003")
    last = utcnow() - timedelta(seconds=30)
    with Session(engine) as db, db.begin():
        # A Core insert names only the columns given: the model has grown since 0003.
        member_id = db.execute(
            insert(Member).values(
                email="a@example.com", display_name="A", customer_id=1, password_hash="x"
            )
        ).inserted_primary_key[0]
        client = Client(
            client_id="c",
            name="C",
            name_key="c",
            client_type="server-side",
            flows=["password_limited"],
            developer_email="d@example.com",
            redirect_uris=[],
            audiences=[],
            access_token_seconds=600,
            refresh_token_seconds=0,
        )
        db.add(client)
        db.flush()
        for session_id, revoked_at in (("live", None), ("signed-out", last)):
            db.add(
                OAuthSession(
                    id=session_id,
                    member_id=member_id,
                    client_pk=client.id,
                    scope="iracing.auth",
                    auth_time=last,
                    last_activity_at=last,
                    expires_at=last,  # the old rule: last activity + refresh lifetime 0
                    revoked_at=revoked_at,
                )
            )
    upgrade(engine)
    with Session(engine) as db:
        live, signed_out = db.get(OAuthSession, "live"), db.get(OAuthSession, "signed-out")
        assert live is not None and signed_out is not None
        assert live.expires_at == last + timedelta(seconds=600)
        assert signed_out.expires_at == last  # what is over stays over
    engine.dispose()


def test_downgrades_work_on_a_database_in_use(database_url: str) -> None:
    """A downgrade keeps the rows in use: nothing that points at a member or a web session
    is lost on the way (on SQLite, a table rebuild would cascade-delete them)."""
    engine = make_engine(database_url)
    upgrade(engine)
    now = utcnow()
    with Session(engine) as db, db.begin():
        member = Member(email="a@example.com", display_name="A", customer_id=1, password_hash="x")
        db.add(member)
        db.flush()
        web = WebSession(token_hash="h" * 64, member_id=member.id, expires_at=now)
        client = Client(
            client_id="c",
            name="C",
            name_key="c",
            client_type="server-side",
            flows=["authorization_code"],
            developer_email="d@example.com",
            redirect_uris=[],
            audiences=[],
        )
        db.add_all([web, client])
        db.flush()
        db.add(
            OAuthSession(
                id="s",
                member_id=member.id,
                client_pk=client.id,
                scope="openid",
                auth_time=now,
                expires_at=now,
                web_session_id=web.id,
            )
        )
    command.downgrade(alembic_config(engine), "0005")
    upgrade(engine)
    with Session(engine) as db:
        assert db.get(OAuthSession, "s") is not None
    engine.dispose()
