"""The protocol store on PostgreSQL: asyncpg connections lent per event loop
(pg_connections.py; a server has one loop, tests start many).

Writes that must happen together are one statement (a data-modifying CTE),
atomic without BEGIN and COMMIT round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from typing import Any

from sqlalchemy import Engine

from pitpass.storage import sql
from pitpass.storage.pg_connections import ConnectionLender
from pitpass.storage.records import NewRefreshToken, NewSession, SessionActivity
from pitpass.storage.sql import Row
from pitpass.storage.store import TokenStore

POSTGRES_CONNECTIONS = 16  # one per concurrent request at the benchmark's load

# The code is spent, and the session and its first refresh token exist, together or not
# at all (a replay that finds the code spent finds the session).
REDEEM_CODE = (
    f"WITH used AS ({sql.CONSUME_CODE}), "
    f"opened AS (INSERT INTO oauth_sessions ({sql.SESSION_INSERT_COLUMNS}) "
    "SELECT session_id, :member_id::int, :client_pk::int, :scope, :auth_time::timestamp, "
    ":now::timestamp, :now::timestamp, :expires_at::timestamp, :ip, :ip, :ua, :ua, "
    ":web_session_id::int FROM used RETURNING id)"
)
REDEEM_CODE_WITHOUT_REFRESH = f"{REDEEM_CODE} SELECT count(*) FROM opened"
# A refresh token for each row of `source`'s `column` (a session id).
ISSUE_REFRESH_FROM = (
    f"{sql.INSERT_REFRESH_INTO} "
    "SELECT :token_hash, {column}, :now::timestamp, :refresh_expires_at::timestamp FROM {source}"
)
REDEEM_CODE_WITH_REFRESH = (
    f"{REDEEM_CODE}, issued AS ({ISSUE_REFRESH_FROM.format(column='id', source='opened')}) "
    "SELECT count(*) FROM opened"
)
# The session and its first refresh token exist together.
OPEN_SESSION_WITH_REFRESH = (
    f"WITH opened AS ({sql.INSERT_SESSION} RETURNING id) "
    + ISSUE_REFRESH_FROM.format(column="id", source="opened")
)
# The new token and the activity, for the session that `spent` returns.
ISSUE_AND_TOUCH = (
    "issued AS ({issue} RETURNING session_id), "
    f"touched AS ({sql.TOUCH_SESSION} WHERE id IN (SELECT session_id FROM issued)) "
    "SELECT count(*) FROM issued"
)
# One statement: the spend, the new token and the activity happen together or not at all.
ROTATE = "WITH spent AS ({spend}), " + ISSUE_AND_TOUCH.format(
    issue=ISSUE_REFRESH_FROM.format(column="session_id", source="spent")
)
ROTATE_REFRESH_TOKEN = ROTATE.format(spend=sql.MARK_REFRESH_SPENT)
RETIRE_AND_ROTATE = ROTATE.format(spend=sql.MARK_REFRESH_RETIRED)
# Inside the grace period the old token is already spent: issue while the session stands.
REISSUE_REFRESH_TOKEN = "WITH " + ISSUE_AND_TOUCH.format(
    issue=ISSUE_REFRESH_FROM.format(
        column="id", source="oauth_sessions WHERE id = :session_id AND revoked_at IS NULL"
    )
)


@functools.cache
def positional(statement: str) -> tuple[str, tuple[str, ...]]:
    """`:name` placeholders → asyncpg's `$1`, and the names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return re.sub(r"(?<!:):(\w+)", number, statement), tuple(names)


class PostgresTokenStore(TokenStore):
    def __init__(self, engine: Engine, timeout_seconds: float) -> None:
        super().__init__(engine.dialect)
        self.timeout_seconds = timeout_seconds
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._lender: ConnectionLender | None = None
        self._lender_loop: asyncio.AbstractEventLoop | None = None

    def _current_lender(self) -> ConnectionLender:
        loop = asyncio.get_running_loop()
        if self._lender is None or self._lender_loop is not loop:
            # A new loop (tests start one per request): the old connections belonged to another.
            self._drop_lender()
            self._lender = ConnectionLender(
                self.dsn,
                size=POSTGRES_CONNECTIONS,
                connect_timeout=self.timeout_seconds,
                server_settings={"application_name": "pitpass-protocol"},
                deadline_seconds=self.timeout_seconds,
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
    def _args(statement: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
        numbered, names = positional(statement)
        return numbered, [params[name] for name in names]

    async def _fetchrow(self, db: Any, sql: str, params: dict[str, Any]) -> Row | None:
        statement, args = self._args(sql, params)
        row: Row | None = await db.fetchrow(statement, *args)
        return row

    async def _fetchall(self, db: Any, sql: str, params: dict[str, Any]) -> list[Row]:
        statement, args = self._args(sql, params)
        return list(await db.fetch(statement, *args))

    async def _count(self, db: Any, statement: str, params: dict[str, Any]) -> int:
        row = await self._fetchrow(db, statement, params)
        return 0 if row is None else int(row["count"])

    async def redeem_code(
        self, db: Any, code_hash: str, session: NewSession, refresh: NewRefreshToken | None
    ) -> bool:
        params = sql.session_params(session, self.write_time) | {"code_hash": code_hash}
        if refresh is None:
            return await self._count(db, REDEEM_CODE_WITHOUT_REFRESH, params) == 1
        params |= sql.refresh_params(refresh, self.write_time)
        return await self._count(db, REDEEM_CODE_WITH_REFRESH, params) == 1

    async def open_session(
        self, db: Any, session: NewSession, refresh: NewRefreshToken | None
    ) -> None:
        params = sql.session_params(session, self.write_time)
        if refresh is None:
            await self._fetchrow(db, sql.INSERT_SESSION, params)
        else:
            params |= sql.refresh_params(refresh, self.write_time)
            await self._fetchrow(db, OPEN_SESSION_WITH_REFRESH, params)

    async def rotate_refresh_token(
        self,
        db: Any,
        spent_hash: str | None,
        fresh: NewRefreshToken,
        activity: SessionActivity,
        retire: bool = False,
    ) -> bool:
        params = sql.refresh_params(fresh, self.write_time)
        params |= sql.activity_params(activity, self.write_time)
        if spent_hash is None:
            return await self._count(db, REISSUE_REFRESH_TOKEN, params) == 1
        params["spent_hash"] = spent_hash
        statement = RETIRE_AND_ROTATE if retire else ROTATE_REFRESH_TOKEN
        return await self._count(db, statement, params) == 1
