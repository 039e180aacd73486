"""The protocol's storage: a narrow contract with a lean implementation per engine.

ARCHITECTURE.md "Hot path": the ORM and its async drivers cost the token
endpoint most of its speed, so the few statements the protocol needs are plain
SQL on a driver connection:

- SQLite: stdlib `sqlite3`, one connection kept by the event loop's thread.
  The file is local, so a statement costs microseconds and never waits on a
  network; the calls run to completion without suspending.
- PostgreSQL: `asyncpg` connections lent one request at a time
  (pg_connections.py), so that one request's round trips overlap the next
  request's work and concurrent commits share a WAL flush.
  Writes that must happen together are one statement (a data-modifying CTE),
  atomic without BEGIN and COMMIT round trips.

Every exactly-once step (a code, a refresh token) is a conditional
`UPDATE … RETURNING`: whoever updates the row owns it; everyone else sees no
row. Timestamps follow what SQLAlchemy writes for `UTCDateTime`: naive UTC, as
text on SQLite and `timestamp` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError

from pitpass.oauth.pg_connections import ConnectionLender

CLIENT_CACHE_SECONDS = 2.0  # a disabled client or a rotated secret takes effect this fast
POSTGRES_CONNECTIONS = 16  # one per concurrent request at the benchmark's load
CONNECT_TIMEOUT_SECONDS = 5.0  # then temporarily_unavailable, instead of a hung request

# The database is down or refusing: the client should retry (temporarily_unavailable).
STORAGE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.OperationalError,
    SQLAlchemyOperationalError,  # the ORM's statements, on the endpoints that use it
    OSError,  # connection refused or reset
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
)


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


@dataclass(frozen=True)
class CodeState:
    """An authorization code as stored, and the session its redemption would open
    (None when the member is gone)."""

    code: CodeRecord
    consumed: bool
    session: SessionRecord | None


@dataclass(frozen=True)
class RefreshState:
    """A refresh token as stored, with its session."""

    used_at: datetime | None
    expires_at: datetime
    created_at: datetime
    session: SessionRecord


@dataclass(frozen=True)
class PasswordMember:
    """A member as the password_limited grant finds them by email."""

    member_id: int
    password_hash: str
    fields: dict[str, Any]  # SessionRecord's member fields (_member_fields)

    @property
    def disabled(self) -> bool:
        return bool(self.fields["member_disabled"])


@dataclass(frozen=True)
class NewSession:
    """A session to open: from a code, or directly (password_limited, no browser)."""

    session_id: str
    member_id: int
    client_pk: int
    scope: str
    auth_time: datetime
    now: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    web_session_id: int | None

    @classmethod
    def from_code(cls, code: CodeRecord, now: datetime, expires_at: datetime) -> NewSession:
        return cls(
            **_carried_from(code),
            now=now,
            expires_at=expires_at,
            ip=code.ip,
            user_agent=code.user_agent,
            web_session_id=code.web_session_id,
        )


@dataclass(frozen=True)
class NewRefreshToken:
    token_hash: str
    session_id: str
    now: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SessionActivity:
    """What a refresh records on its session (the member's "last activity")."""

    now: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


# ----- SQL shared by both engines (":name" placeholders) -----------------------------------

CODE_COLUMNS = (
    "client_pk, member_id, session_id, redirect_uri, scope, code_challenge, "
    "code_challenge_method, auth_time, expires_at, ip, user_agent, web_session_id"
)
MEMBER_COLUMNS = "m.customer_id, m.display_name, m.group_ids, m.is_disabled"
SESSION_COLUMNS = (
    f"s.id, s.member_id, s.client_pk, s.scope, s.auth_time, s.revoked_at, {MEMBER_COLUMNS}, "
    "c.is_disabled"
)
SESSION_JOINS = "JOIN members m ON m.id = s.member_id JOIN clients c ON c.id = s.client_pk"

SELECT_CLIENT = (
    "SELECT id, client_id, name, client_type, flows, redirect_uris, audiences, "
    "is_disabled, access_token_seconds, refresh_token_seconds, refresh_grace_seconds "
    "FROM clients WHERE client_id = :client_id"
)
SELECT_CLIENT_SECRETS = (
    "SELECT secret_hash FROM client_secrets WHERE client_pk = :pk "
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)"
)
SELECT_CODE_STATE = (
    f"SELECT {CODE_COLUMNS}, consumed_at, {MEMBER_COLUMNS} FROM authorization_codes "
    "LEFT JOIN members m ON m.id = member_id WHERE code_hash = :code_hash"
)
CONSUME_CODE = (
    "UPDATE authorization_codes SET consumed_at = :now "
    "WHERE code_hash = :code_hash AND consumed_at IS NULL RETURNING session_id"
)
SELECT_SESSION = f"SELECT {SESSION_COLUMNS} FROM oauth_sessions s {SESSION_JOINS} WHERE s.id = :id"
SELECT_REFRESH_STATE = (
    f"SELECT r.used_at, r.expires_at, r.created_at, {SESSION_COLUMNS} FROM refresh_tokens r "
    f"JOIN oauth_sessions s ON s.id = r.session_id {SESSION_JOINS} "
    "WHERE r.token_hash = :token_hash"
)
SELECT_SESSION_IS_ACTIVE = (
    "SELECT 1 FROM oauth_sessions s JOIN clients c ON c.id = s.client_pk "
    "JOIN members m ON m.id = s.member_id WHERE s.id = :id AND s.revoked_at IS NULL "
    "AND c.is_disabled = :false AND m.is_disabled = :false"
)
REVOKE_SESSION = (
    "UPDATE oauth_sessions SET revoked_at = :now, revoked_reason = :reason "
    "WHERE id = :id AND revoked_at IS NULL"
)
SELECT_MEMBER_BY_EMAIL = (
    f"SELECT m.id, m.password_hash, {MEMBER_COLUMNS} FROM members m WHERE m.email = :email"
)
SELECT_ACCESS = (
    "SELECT 1 FROM client_access WHERE client_pk = :client_pk AND member_id = :member_id "
    "AND accepted_at IS NOT NULL AND removed_at IS NULL"
)
SESSION_INSERT_COLUMNS = (
    "id, member_id, client_pk, scope, auth_time, created_at, last_activity_at, expires_at, "
    "first_ip, last_ip, first_user_agent, last_user_agent, web_session_id"
)
SESSION_INSERT_VALUES = (
    ":id, :member_id, :client_pk, :scope, :auth_time, :now, :now, :expires_at, "
    ":ip, :ip, :ua, :ua, :web_session_id"
)
INSERT_REFRESH_INTO = "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)"
INSERT_SESSION = (
    f"INSERT INTO oauth_sessions ({SESSION_INSERT_COLUMNS}) VALUES ({SESSION_INSERT_VALUES})"
)
# A refresh token is spent only while its session stands: a sign-out racing a refresh wins.
MARK_REFRESH_SPENT = (
    "UPDATE refresh_tokens SET used_at = :now WHERE token_hash = :spent_hash "
    "AND used_at IS NULL AND expires_at > :now "
    "AND session_id IN (SELECT id FROM oauth_sessions WHERE revoked_at IS NULL) "
    "RETURNING session_id"
)
TOUCH_SESSION = (
    "UPDATE oauth_sessions SET last_activity_at = :now, expires_at = :session_expires_at, "
    "last_ip = :ip, last_user_agent = :ua"
)


def _time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _member_fields(row: Sequence[Any]) -> dict[str, Any]:
    """A row of MEMBER_COLUMNS, as SessionRecord's fields."""
    return {
        "customer_id": row[0],
        "display_name": row[1],
        "group_ids": list(_json(row[2]) or []),
        "member_disabled": bool(row[3]),
    }


def _carried_from(source: CodeRecord | NewSession) -> dict[str, Any]:
    """What a code, or a session about to be opened, hands on to the session's record."""
    return {
        "session_id": source.session_id,
        "member_id": source.member_id,
        "client_pk": source.client_pk,
        "scope": source.scope,
        "auth_time": source.auth_time,
    }


def session_opened_by(source: CodeRecord | NewSession, member: dict[str, Any]) -> SessionRecord:
    """The record of the session `source` opens; `member` as `_member_fields` gives it."""
    return SessionRecord(**_carried_from(source), revoked=False, **member)


def _session_from_row(row: Sequence[Any]) -> SessionRecord:
    """A row of SESSION_COLUMNS."""
    return SessionRecord(
        session_id=row[0],
        member_id=row[1],
        client_pk=row[2],
        scope=row[3],
        auth_time=_time(row[4]),
        revoked=row[5] is not None,
        **_member_fields(row[6:10]),
        client_disabled=bool(row[10]),
    )


def _code_from_row(row: Sequence[Any]) -> CodeRecord:
    """A row of CODE_COLUMNS."""
    return CodeRecord(
        client_pk=row[0],
        member_id=row[1],
        session_id=row[2],
        redirect_uri=row[3],
        scope=row[4],
        code_challenge=row[5],
        code_challenge_method=row[6],
        auth_time=_time(row[7]),
        expires_at=_time(row[8]),
        ip=row[9],
        user_agent=row[10],
        web_session_id=row[11],
    )


class TokenStore(ABC):
    """The contract: reads and the client cache here, connections and the writes that
    must happen together in each engine's subclass.

    `db` is what `connection()` yields; a method given one runs on it.
    """

    def __init__(self) -> None:
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}

    # ----- what each engine provides -------------------------------------------------------

    @abstractmethod
    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A connection whose statements commit one by one (reads, single writes)."""

    @abstractmethod
    async def _fetchrow(self, db: Any, sql: str, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row of a statement written with :name placeholders."""

    @abstractmethod
    async def _fetchall(self, db: Any, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        """Every row of a statement written with :name placeholders."""

    @abstractmethod
    def ts(self, moment: datetime) -> Any:
        """A timestamp as this engine stores it (naive UTC)."""

    @abstractmethod
    async def redeem_code(
        self,
        db: Any,
        code_hash: str,
        session: NewSession,
        refresh: NewRefreshToken | None,
    ) -> bool:
        """Spend the code and open its session (with its first refresh token), all or
        nothing. False: someone spent the code first."""

    @abstractmethod
    async def open_session(
        self, db: Any, session: NewSession, refresh: NewRefreshToken | None
    ) -> None:
        """Insert a session without a code (password_limited) with its first refresh token."""

    @abstractmethod
    async def rotate_refresh_token(
        self,
        db: Any,
        spent_hash: str | None,
        fresh: NewRefreshToken,
        activity: SessionActivity,
    ) -> bool:
        """Spend `spent_hash` (None: inside the grace period, already spent), store
        `fresh` and record the activity, all or nothing. False: someone spent it first,
        or the session was signed out."""

    @abstractmethod
    async def close(self) -> None:
        """Give back the connections the store holds (at shutdown)."""

    # ----- clients ----------------------------------------------------------------------

    async def client(self, client_id: str, now: datetime) -> ClientRecord | None:
        cached = self._clients.get(client_id)
        if cached and time.monotonic() - cached[0] < CLIENT_CACHE_SECONDS:
            return cached[1]
        async with self.connection() as db:
            record = await self._load_client(db, client_id, now)
        if len(self._clients) > 10_000:
            self._clients.clear()
        self._clients[client_id] = (time.monotonic(), record)
        return record

    async def _load_client(self, db: Any, client_id: str, now: datetime) -> ClientRecord | None:
        row = await self._fetchrow(db, SELECT_CLIENT, {"client_id": client_id})
        if row is None:
            return None
        secrets = await self._fetchall(
            db, SELECT_CLIENT_SECRETS, {"pk": row[0], "now": self.ts(now)}
        )
        return ClientRecord(
            pk=row[0],
            client_id=row[1],
            name=row[2],
            client_type=row[3],
            flows=tuple(_json(row[4])),
            redirect_uris=tuple(_json(row[5])),
            audiences=tuple(_json(row[6])),
            is_disabled=bool(row[7]),
            access_token_seconds=row[8],
            refresh_token_seconds=row[9],
            refresh_grace_seconds=row[10],
            secret_hashes=tuple(r[0] for r in secrets),
        )

    def forget_cached_clients(self) -> None:
        self._clients.clear()

    # ----- codes, sessions and refresh tokens --------------------------------------------

    async def code_state(self, db: Any, code_hash: str) -> CodeState | None:
        row = await self._fetchrow(db, SELECT_CODE_STATE, {"code_hash": code_hash})
        if row is None:
            return None
        code = _code_from_row(row[:12])
        member = row[13:]  # MEMBER_COLUMNS, all NULL when the member is gone (LEFT JOIN)
        session = None if member[0] is None else session_opened_by(code, _member_fields(member))
        return CodeState(code, row[12] is not None, session)

    async def consume_code(self, db: Any, code_hash: str, now: datetime) -> bool:
        """Spend the code without redeeming it (a failed redemption: one try per code)."""
        spent = await self._fetchrow(
            db, CONSUME_CODE, {"now": self.ts(now), "code_hash": code_hash}
        )
        return spent is not None

    async def session(self, db: Any, session_id: str) -> SessionRecord | None:
        row = await self._fetchrow(db, SELECT_SESSION, {"id": session_id})
        return None if row is None else _session_from_row(row)

    async def refresh_state(self, db: Any, token_hash: str) -> RefreshState | None:
        row = await self._fetchrow(db, SELECT_REFRESH_STATE, {"token_hash": token_hash})
        if row is None:
            return None
        return RefreshState(
            used_at=_time(row[0]) if row[0] is not None else None,
            expires_at=_time(row[1]),
            created_at=_time(row[2]),
            session=_session_from_row(row[3:]),
        )

    async def revoke_session(self, db: Any, session_id: str, now: datetime, reason: str) -> None:
        await self._fetchrow(
            db, REVOKE_SESSION, {"now": self.ts(now), "reason": reason, "id": session_id}
        )

    async def session_is_active(self, db: Any, session_id: str) -> bool:
        """For introspection and resource calls: the session, member and client still stand."""
        row = await self._fetchrow(db, SELECT_SESSION_IS_ACTIVE, {"id": session_id, "false": False})
        return row is not None

    # ----- password_limited ----------------------------------------------------------------

    async def member_by_email(self, db: Any, email: str) -> PasswordMember | None:
        """The member with this email: the argon2 hash of their masked password, and what
        a session of theirs shows."""
        row = await self._fetchrow(db, SELECT_MEMBER_BY_EMAIL, {"email": email})
        return None if row is None else PasswordMember(row[0], row[1], _member_fields(row[2:]))

    async def on_access_list(self, db: Any, client_pk: int, member_id: int) -> bool:
        row = await self._fetchrow(
            db, SELECT_ACCESS, {"client_pk": client_pk, "member_id": member_id}
        )
        return row is not None

    # ----- parameters shared by the engines' writes ---------------------------------------

    def _session_params(self, session: NewSession) -> dict[str, Any]:
        return {
            "id": session.session_id,
            "member_id": session.member_id,
            "client_pk": session.client_pk,
            "scope": session.scope,
            "auth_time": self.ts(session.auth_time),
            "now": self.ts(session.now),
            "expires_at": self.ts(session.expires_at),
            "ip": session.ip,
            "ua": session.user_agent,
            "web_session_id": session.web_session_id,
        }

    def _refresh_params(self, refresh: NewRefreshToken) -> dict[str, Any]:
        return {
            "token_hash": refresh.token_hash,
            "session_id": refresh.session_id,
            "now": self.ts(refresh.now),
            "refresh_expires_at": self.ts(refresh.expires_at),
        }

    def _activity_params(self, activity: SessionActivity) -> dict[str, Any]:
        return {
            "now": self.ts(activity.now),
            "session_expires_at": self.ts(activity.expires_at),
            "ip": activity.ip,
            "ua": activity.user_agent,
        }


def token_store(engine: Engine) -> TokenStore:
    """The store for the engine's database."""
    if engine.dialect.name == "sqlite":
        return SqliteTokenStore(engine)
    return PostgresTokenStore(engine)


# ----- SQLite -------------------------------------------------------------------------------


@dataclass
class SqliteDb:
    """A cursor on the loop's connection; `autocommit` as PostgreSQL's lent connections."""

    cursor: sqlite3.Cursor
    autocommit: bool

    def finish_statement(self) -> None:
        if self.autocommit and self.cursor.connection.in_transaction:
            self.cursor.connection.commit()


class SqliteTokenStore(TokenStore):
    """stdlib `sqlite3` on the event loop's thread.

    The methods are coroutines only to share the contract: none of them suspends,
    so a transaction runs from its first statement to its commit without another
    request's statements in between. `connection()` commits each write as it
    goes, as PostgreSQL does outside a transaction; a write of several statements
    commits as one.
    """

    INSERT_REFRESH = (
        f"{INSERT_REFRESH_INTO} VALUES (:token_hash, :session_id, :now, :refresh_expires_at)"
    )

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self._loop_connection = threading.local()

    def ts(self, moment: datetime) -> Any:
        # The text SQLAlchemy writes for DateTime on SQLite: "YYYY-MM-DD HH:MM:SS.ffffff".
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def _cursor(self) -> sqlite3.Cursor:
        """The loop's thread keeps one connection for good (no pool checkout per request)."""
        connection = getattr(self._loop_connection, "value", None)
        if connection is None:
            connection = self._loop_connection.value = self.engine.raw_connection()
        cursor = connection.cursor()
        assert isinstance(cursor, sqlite3.Cursor)
        return cursor

    async def close(self) -> None:
        connection = getattr(self._loop_connection, "value", None)
        if connection is not None:
            self._loop_connection.value = None
            connection.close()  # back to the engine's pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqliteDb]:
        with self._committed(SqliteDb(self._cursor(), autocommit=True)) as db:
            yield db

    @staticmethod
    @contextlib.contextmanager
    def _committed(db: SqliteDb) -> Iterator[SqliteDb]:
        """Commit what is pending at the end; roll it back on an error."""
        try:
            yield db
            if db.cursor.connection.in_transaction:
                db.cursor.connection.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                db.cursor.connection.rollback()
            raise

    @contextlib.contextmanager
    def _atomic(self, db: SqliteDb) -> Iterator[None]:
        """Several statements as one write: committed together now if `db` autocommits,
        else with the enclosing transaction."""
        if not db.autocommit:
            yield
            return
        db.autocommit = False
        try:
            with self._committed(db):
                yield
        finally:
            db.autocommit = True

    async def _fetchrow(
        self, db: SqliteDb, sql: str, params: dict[str, Any]
    ) -> Sequence[Any] | None:
        db.cursor.execute(sql, params)
        row: Sequence[Any] | None = db.cursor.fetchone()
        db.finish_statement()
        return row

    async def _fetchall(
        self, db: SqliteDb, sql: str, params: dict[str, Any]
    ) -> list[Sequence[Any]]:
        db.cursor.execute(sql, params)
        return list(db.cursor.fetchall())

    async def redeem_code(
        self,
        db: SqliteDb,
        code_hash: str,
        session: NewSession,
        refresh: NewRefreshToken | None,
    ) -> bool:
        with self._atomic(db):
            if not await self.consume_code(db, code_hash, session.now):
                return False
            await self.open_session(db, session, refresh)
        return True

    async def open_session(
        self, db: SqliteDb, session: NewSession, refresh: NewRefreshToken | None
    ) -> None:
        with self._atomic(db):
            db.cursor.execute(INSERT_SESSION, self._session_params(session))
            if refresh is not None:
                db.cursor.execute(self.INSERT_REFRESH, self._refresh_params(refresh))

    async def rotate_refresh_token(
        self,
        db: SqliteDb,
        spent_hash: str | None,
        fresh: NewRefreshToken,
        activity: SessionActivity,
    ) -> bool:
        with self._atomic(db):
            if spent_hash is not None:
                spent = await self._fetchrow(
                    db,
                    MARK_REFRESH_SPENT,
                    {"now": self.ts(activity.now), "spent_hash": spent_hash},
                )
            else:
                spent = await self._fetchrow(
                    db,
                    "SELECT 1 FROM oauth_sessions WHERE id = :id AND revoked_at IS NULL",
                    {"id": fresh.session_id},
                )
            if spent is None:
                return False
            db.cursor.execute(self.INSERT_REFRESH, self._refresh_params(fresh))
            db.cursor.execute(
                f"{TOUCH_SESSION} WHERE id = :id",
                self._activity_params(activity) | {"id": fresh.session_id},
            )
        return True


# ----- PostgreSQL ----------------------------------------------------------------------------


@functools.cache
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` placeholders → asyncpg's `$1`, and the names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<!:):(\w+)", number, sql), tuple(names)


class PostgresTokenStore(TokenStore):
    """asyncpg connections lent per event loop (a server has one; tests start many)."""

    # One statement each: the code is spent, and the session and its first refresh token
    # exist, together or not at all (a replay that finds the code spent finds the session).
    REDEEM_CODE = (
        f"WITH used AS ({CONSUME_CODE}), "
        f"opened AS (INSERT INTO oauth_sessions ({SESSION_INSERT_COLUMNS}) "
        "SELECT session_id, :member_id::int, :client_pk::int, :scope, :auth_time::timestamp, "
        ":now::timestamp, :now::timestamp, :expires_at::timestamp, :ip, :ip, :ua, :ua, "
        ":web_session_id::int FROM used RETURNING id)"
    )
    REDEEM_CODE_WITHOUT_REFRESH = f"{REDEEM_CODE} SELECT count(*) FROM opened"
    REDEEM_CODE_WITH_REFRESH = (
        f"{REDEEM_CODE}, issued AS ({INSERT_REFRESH_INTO} "
        "SELECT :token_hash, id, :now::timestamp, :refresh_expires_at::timestamp FROM opened) "
        "SELECT count(*) FROM opened"
    )
    # The session and its first refresh token exist together.
    OPEN_SESSION_WITH_REFRESH = (
        f"WITH opened AS ({INSERT_SESSION} RETURNING id) "
        f"{INSERT_REFRESH_INTO} "
        "SELECT :token_hash, id, :now::timestamp, :refresh_expires_at::timestamp FROM opened"
    )
    # One statement: the spend, the new token and the activity happen together or not at all.
    ROTATE_REFRESH_TOKEN = (
        f"WITH spent AS ({MARK_REFRESH_SPENT}), "
        f"issued AS ({INSERT_REFRESH_INTO} "
        "SELECT :token_hash, session_id, :now::timestamp, :refresh_expires_at::timestamp "
        "FROM spent RETURNING session_id), "
        f"touched AS ({TOUCH_SESSION} WHERE id IN (SELECT session_id FROM issued)) "
        "SELECT count(*) FROM issued"
    )
    # Inside the grace period the old token is already spent: issue while the session stands.
    REISSUE_REFRESH_TOKEN = (
        f"WITH issued AS ({INSERT_REFRESH_INTO} "
        "SELECT :token_hash, id, :now::timestamp, :refresh_expires_at::timestamp "
        "FROM oauth_sessions WHERE id = :session_id AND revoked_at IS NULL "
        "RETURNING session_id), "
        f"touched AS ({TOUCH_SESSION} WHERE id IN (SELECT session_id FROM issued)) "
        "SELECT count(*) FROM issued"
    )

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._lender: ConnectionLender | None = None
        self._lender_loop: asyncio.AbstractEventLoop | None = None

    def ts(self, moment: datetime) -> Any:
        return moment.astimezone(UTC).replace(tzinfo=None)

    def _current_lender(self) -> ConnectionLender:
        loop = asyncio.get_running_loop()
        if self._lender is None or self._lender_loop is not loop:
            # A new loop (tests start one per request): the old connections belonged to another.
            self._drop_lender()
            self._lender = ConnectionLender(
                self.dsn,
                size=POSTGRES_CONNECTIONS,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                server_settings={"application_name": "pitpass-protocol"},
            )
            self._lender_loop = loop
        return self._lender

    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._current_lender().connection()

    def _drop_lender(self) -> None:
        if self._lender is not None and self._lender_loop and not self._lender_loop.is_closed():
            self._lender.terminate()
        # On a closed loop nothing can be closed any more; its sockets go when collected.
        self._lender = None

    async def close(self) -> None:
        if self._lender is not None and self._lender_loop is asyncio.get_running_loop():
            await self._lender.close()
        self._drop_lender()

    @staticmethod
    def _args(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
        statement, names = positional(sql)
        return statement, [params[name] for name in names]

    async def _fetchrow(self, db: Any, sql: str, params: dict[str, Any]) -> Sequence[Any] | None:
        statement, args = self._args(sql, params)
        row = await db.fetchrow(statement, *args)
        return None if row is None else tuple(row)

    async def _fetchall(self, db: Any, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        statement, args = self._args(sql, params)
        return list(await db.fetch(statement, *args))

    async def redeem_code(
        self,
        db: Any,
        code_hash: str,
        session: NewSession,
        refresh: NewRefreshToken | None,
    ) -> bool:
        params = self._session_params(session) | {"code_hash": code_hash}
        if refresh is None:
            row = await self._fetchrow(db, self.REDEEM_CODE_WITHOUT_REFRESH, params)
        else:
            row = await self._fetchrow(
                db, self.REDEEM_CODE_WITH_REFRESH, params | self._refresh_params(refresh)
            )
        return row is not None and row[0] == 1

    async def open_session(
        self, db: Any, session: NewSession, refresh: NewRefreshToken | None
    ) -> None:
        if refresh is None:
            await self._fetchrow(db, INSERT_SESSION, self._session_params(session))
            return
        await self._fetchrow(
            db,
            self.OPEN_SESSION_WITH_REFRESH,
            self._session_params(session) | self._refresh_params(refresh),
        )

    async def rotate_refresh_token(
        self,
        db: Any,
        spent_hash: str | None,
        fresh: NewRefreshToken,
        activity: SessionActivity,
    ) -> bool:
        params = self._refresh_params(fresh) | self._activity_params(activity)
        if spent_hash is None:
            row = await self._fetchrow(db, self.REISSUE_REFRESH_TOKEN, params)
        else:
            row = await self._fetchrow(
                db, self.ROTATE_REFRESH_TOKEN, params | {"spent_hash": spent_hash}
            )
        return row is not None and row[0] == 1
