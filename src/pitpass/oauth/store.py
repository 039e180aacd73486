"""The token endpoint's storage: a narrow contract with a lean implementation.

ARCHITECTURE.md "Hot path": the ORM and async drivers cost the token endpoint
most of its speed, so the few statements it needs are plain SQL on the
driver's own connection (stdlib `sqlite3` or `psycopg`), checked out of the
same pool the rest of Pitpass uses. Every exactly-once step (a code, a
refresh token) is one conditional `UPDATE … RETURNING`: whoever updates the
row owns it; everyone else sees zero rows.

Timestamps follow what SQLAlchemy writes for `UTCDateTime`: naive UTC, as
text on SQLite and `timestamp` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

CLIENT_CACHE_SECONDS = 2.0  # a disabled client or a rotated secret takes effect this fast


@dataclass(frozen=True)
class ClientRecord:
    pk: int
    client_id: str
    name: str
    client_type: str
    flows: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    audiences: tuple[str, ...]
    is_disabled: bool
    access_token_seconds: int
    refresh_token_seconds: int
    refresh_grace_seconds: int
    secret_hashes: tuple[str, ...]  # live secrets: current and, during grace, previous

    @property
    def is_confidential(self) -> bool:
        return self.client_type == "server-side"


@dataclass(frozen=True)
class CodeRecord:
    client_pk: int
    member_id: int
    session_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    web_session_id: int | None


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    member_id: int
    client_pk: int
    scope: str
    auth_time: datetime
    revoked: bool
    customer_id: int
    display_name: str
    group_ids: list[int]
    member_disabled: bool
    client_disabled: bool = False

    @property
    def active(self) -> bool:
        """Not signed out, and neither the member nor the client disabled."""
        return not (self.revoked or self.member_disabled or self.client_disabled)


class TokenStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}
        self._loop_connection = threading.local()
        self._broken_connection_errors: tuple[type[BaseException], ...] = (
            engine.dialect.loaded_dbapi.OperationalError,
            engine.dialect.loaded_dbapi.InterfaceError,
        )

    # ----- plumbing ------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        # Written with :name placeholders (sqlite3's named style); psycopg wants %(name)s.
        return statement if self.is_sqlite else re.sub(r":(\w+)", r"%(\1)s", statement)

    def ts(self, moment: datetime) -> Any:
        naive = moment.astimezone(UTC).replace(tzinfo=None)
        # The text SQLAlchemy writes for DateTime on SQLite: "YYYY-MM-DD HH:MM:SS.ffffff".
        return naive.isoformat(" ", "microseconds") if self.is_sqlite else naive

    @staticmethod
    def _time(value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]

    @staticmethod
    def _json(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A DB-API cursor in one transaction: committed on success, rolled back on error.

        The event loop's thread keeps one connection for good (no pool checkout per
        request: the hot path); other threads borrow one from the pool and give it back.
        """
        on_loop = asyncio._get_running_loop() is not None
        connection = getattr(self._loop_connection, "value", None) if on_loop else None
        if connection is None:
            connection = self.engine.raw_connection()
            if on_loop:
                self._loop_connection.value = connection
        try:
            cursor = connection.cursor()
            yield cursor
            connection.commit()
        except BaseException as error:
            with contextlib.suppress(Exception):  # the connection may be gone; dropped below
                connection.rollback()
            if on_loop and isinstance(error, self._broken_connection_errors):
                self._loop_connection.value = None
                connection.invalidate()  # reconnect on the next request
            raise
        finally:
            if not on_loop:
                connection.close()  # back to the pool

    def _one(self, cursor: Any, statement: str, params: dict[str, Any]) -> Sequence[Any] | None:
        cursor.execute(self._sql(statement), params)
        row: Sequence[Any] | None = cursor.fetchone()
        return row

    # ----- clients -------------------------------------------------------------------

    def client(self, client_id: str, now: datetime) -> ClientRecord | None:
        cached = self._clients.get(client_id)
        if cached and time.monotonic() - cached[0] < CLIENT_CACHE_SECONDS:
            return cached[1]
        with self.transaction() as cursor:
            record = self._load_client(cursor, client_id, now)
        if len(self._clients) > 10_000:
            self._clients.clear()
        self._clients[client_id] = (time.monotonic(), record)
        return record

    def _load_client(self, cursor: Any, client_id: str, now: datetime) -> ClientRecord | None:
        row = self._one(
            cursor,
            "SELECT id, client_id, name, client_type, flows, redirect_uris, audiences, "
            "is_disabled, access_token_seconds, refresh_token_seconds, refresh_grace_seconds "
            "FROM clients WHERE client_id = :client_id",
            {"client_id": client_id},
        )
        if row is None:
            return None
        cursor.execute(
            self._sql(
                "SELECT secret_hash FROM client_secrets WHERE client_pk = :pk "
                "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)"
            ),
            {"pk": row[0], "now": self.ts(now)},
        )
        hashes = tuple(r[0] for r in cursor.fetchall())
        return ClientRecord(
            pk=row[0],
            client_id=row[1],
            name=row[2],
            client_type=row[3],
            flows=tuple(self._json(row[4])),
            redirect_uris=tuple(self._json(row[5])),
            audiences=tuple(self._json(row[6])),
            is_disabled=bool(row[7]),
            access_token_seconds=row[8],
            refresh_token_seconds=row[9],
            refresh_grace_seconds=row[10],
            secret_hashes=hashes,
        )

    def forget_cached_clients(self) -> None:
        self._clients.clear()

    # ----- authorization codes -----------------------------------------------------

    def save_code(self, cursor: Any, code_hash: str, values: dict[str, Any]) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO authorization_codes (code_hash, client_pk, member_id, session_id, "
                "redirect_uri, scope, code_challenge, code_challenge_method, auth_time, "
                "expires_at, ip, user_agent, web_session_id) VALUES (:code_hash, :client_pk, "
                ":member_id, :session_id, :redirect_uri, :scope, :code_challenge, "
                ":code_challenge_method, :auth_time, :expires_at, :ip, :user_agent, "
                ":web_session_id)"
            ),
            values | {"code_hash": code_hash},
        )

    def consume_code(self, cursor: Any, code_hash: str, now: datetime) -> CodeRecord | None:
        """Mark the code used; its record if this call was the first, else None."""
        row = self._one(
            cursor,
            "UPDATE authorization_codes SET consumed_at = :now "
            "WHERE code_hash = :code_hash AND consumed_at IS NULL "
            "RETURNING client_pk, member_id, session_id, redirect_uri, scope, code_challenge, "
            "code_challenge_method, auth_time, expires_at, ip, user_agent, web_session_id",
            {"now": self.ts(now), "code_hash": code_hash},
        )
        if row is None:
            return None
        return CodeRecord(
            client_pk=row[0],
            member_id=row[1],
            session_id=row[2],
            redirect_uri=row[3],
            scope=row[4],
            code_challenge=row[5],
            code_challenge_method=row[6],
            auth_time=self._time(row[7]),
            expires_at=self._time(row[8]),
            ip=row[9],
            user_agent=row[10],
            web_session_id=row[11],
        )

    def spent_code_session(self, cursor: Any, code_hash: str) -> str | None:
        """The session a replayed code had opened (RFC 6749 §4.1.2: revoke what it issued)."""
        row = self._one(
            cursor,
            "SELECT session_id FROM authorization_codes "
            "WHERE code_hash = :code_hash AND consumed_at IS NOT NULL",
            {"code_hash": code_hash},
        )
        return None if row is None else str(row[0])

    # ----- sessions and refresh tokens --------------------------------------------------

    def open_session(
        self, cursor: Any, code: CodeRecord, now: datetime, expires_at: datetime
    ) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO oauth_sessions (id, member_id, client_pk, scope, auth_time, "
                "created_at, last_activity_at, expires_at, first_ip, last_ip, "
                "first_user_agent, last_user_agent, web_session_id) VALUES (:id, :member_id, "
                ":client_pk, :scope, :auth_time, :now, :now, :expires_at, :ip, :ip, :ua, :ua, "
                ":web_session_id)"
            ),
            {
                "id": code.session_id,
                "member_id": code.member_id,
                "client_pk": code.client_pk,
                "scope": code.scope,
                "auth_time": self.ts(code.auth_time),
                "now": self.ts(now),
                "expires_at": self.ts(expires_at),
                "ip": code.ip,
                "ua": code.user_agent,
                "web_session_id": code.web_session_id,
            },
        )

    def open_direct_session(
        self,
        cursor: Any,
        session_id: str,
        member_id: int,
        client_pk: int,
        scope: str,
        now: datetime,
        expires_at: datetime,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        """A session without a browser (password_limited)."""
        self.open_session(
            cursor,
            CodeRecord(
                client_pk=client_pk,
                member_id=member_id,
                session_id=session_id,
                redirect_uri="",
                scope=scope,
                code_challenge=None,
                code_challenge_method=None,
                auth_time=now,
                expires_at=expires_at,
                ip=ip,
                user_agent=user_agent,
                web_session_id=None,
            ),
            now,
            expires_at,
        )

    def new_session_record(self, cursor: Any, code: CodeRecord) -> SessionRecord | None:
        """The record of a session just opened from `code` (one lookup, no join)."""
        row = self._one(
            cursor,
            "SELECT customer_id, display_name, group_ids, is_disabled FROM members WHERE id = :id",
            {"id": code.member_id},
        )
        if row is None:
            return None
        return SessionRecord(
            session_id=code.session_id,
            member_id=code.member_id,
            client_pk=code.client_pk,
            scope=code.scope,
            auth_time=code.auth_time,
            revoked=False,
            customer_id=row[0],
            display_name=row[1],
            group_ids=list(self._json(row[2]) or []),
            member_disabled=bool(row[3]),
        )

    def session(self, cursor: Any, session_id: str) -> SessionRecord | None:
        row = self._one(
            cursor,
            "SELECT s.id, s.member_id, s.client_pk, s.scope, s.auth_time, s.revoked_at, "
            "m.customer_id, m.display_name, m.group_ids, m.is_disabled, c.is_disabled "
            "FROM oauth_sessions s JOIN members m ON m.id = s.member_id "
            "JOIN clients c ON c.id = s.client_pk WHERE s.id = :id",
            {"id": session_id},
        )
        if row is None:
            return None
        return SessionRecord(
            session_id=row[0],
            member_id=row[1],
            client_pk=row[2],
            scope=row[3],
            auth_time=self._time(row[4]),
            revoked=row[5] is not None,
            customer_id=row[6],
            display_name=row[7],
            group_ids=list(self._json(row[8]) or []),
            member_disabled=bool(row[9]),
            client_disabled=bool(row[10]),
        )

    def add_refresh_token(
        self, cursor: Any, token_hash: str, session_id: str, now: datetime, expires_at: datetime
    ) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) "
                "VALUES (:token_hash, :session_id, :now, :expires_at)"
            ),
            {
                "token_hash": token_hash,
                "session_id": session_id,
                "now": self.ts(now),
                "expires_at": self.ts(expires_at),
            },
        )

    def use_refresh_token(self, cursor: Any, token_hash: str, now: datetime) -> str | None:
        """Spend a live refresh token; its session id if this call was the first."""
        row = self._one(
            cursor,
            "UPDATE refresh_tokens SET used_at = :now "
            "WHERE token_hash = :token_hash AND used_at IS NULL AND expires_at > :now "
            "RETURNING session_id",
            {"now": self.ts(now), "token_hash": token_hash},
        )
        return None if row is None else str(row[0])

    def spent_refresh_token(
        self, cursor: Any, token_hash: str
    ) -> tuple[str, datetime | None, datetime] | None:
        """(session id, used at, expires at) of a token that could not be spent."""
        row = self._one(
            cursor,
            "SELECT session_id, used_at, expires_at FROM refresh_tokens "
            "WHERE token_hash = :token_hash",
            {"token_hash": token_hash},
        )
        if row is None:
            return None
        return str(row[0]), (self._time(row[1]) if row[1] else None), self._time(row[2])

    def touch_session(
        self,
        cursor: Any,
        session_id: str,
        now: datetime,
        expires_at: datetime,
        ip: str | None,
        user_agent: str | None,
    ) -> None:
        cursor.execute(
            self._sql(
                "UPDATE oauth_sessions SET last_activity_at = :now, expires_at = :expires_at, "
                "last_ip = :ip, last_user_agent = :ua WHERE id = :id"
            ),
            {
                "now": self.ts(now),
                "expires_at": self.ts(expires_at),
                "ip": ip,
                "ua": user_agent,
                "id": session_id,
            },
        )

    def revoke_session(self, cursor: Any, session_id: str, now: datetime, reason: str) -> None:
        cursor.execute(
            self._sql(
                "UPDATE oauth_sessions SET revoked_at = :now, revoked_reason = :reason "
                "WHERE id = :id AND revoked_at IS NULL"
            ),
            {"now": self.ts(now), "reason": reason, "id": session_id},
        )

    def session_is_active(self, cursor: Any, session_id: str) -> bool:
        """For introspection and resource calls: the session, member and client still stand."""
        row = self._one(
            cursor,
            "SELECT 1 FROM oauth_sessions s JOIN clients c ON c.id = s.client_pk "
            "JOIN members m ON m.id = s.member_id WHERE s.id = :id AND s.revoked_at IS NULL "
            "AND c.is_disabled = :false AND m.is_disabled = :false",
            {"id": session_id, "false": False},
        )
        return row is not None

    # ----- password_limited --------------------------------------------------------------

    def member_by_email(self, cursor: Any, email: str) -> tuple[int, str, bool] | None:
        """(member id, argon2 hash of the masked password, disabled) for an email."""
        row = self._one(
            cursor,
            "SELECT id, password_hash, is_disabled FROM members WHERE email = :email",
            {"email": email},
        )
        return None if row is None else (row[0], row[1], bool(row[2]))

    def on_access_list(self, cursor: Any, client_pk: int, member_id: int) -> bool:
        row = self._one(
            cursor,
            "SELECT 1 FROM client_access WHERE client_pk = :client_pk AND member_id = :member_id "
            "AND accepted_at IS NOT NULL AND removed_at IS NULL",
            {"client_pk": client_pk, "member_id": member_id},
        )
        return row is not None
