"""The protocol store on SQLite: stdlib `sqlite3` on the event loop's thread.

The methods are coroutines only to share the contract: none of them suspends,
so a transaction runs from its first statement to its commit without another
request's statements in between. `connection()` commits each write as it goes,
as PostgreSQL does outside a transaction; a write of several statements commits
as one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from pitpass import metrics
from pitpass.storage import sql
from pitpass.storage.records import NewRefreshToken, NewSession, SessionActivity
from pitpass.storage.sql import Row
from pitpass.storage.store import TokenStore

INSERT_REFRESH = (
    f"{sql.INSERT_REFRESH_INTO} VALUES (:token_hash, :session_id, :now, :refresh_expires_at)"
)
SESSION_STANDS = "SELECT 1 FROM oauth_sessions WHERE id = :id AND revoked_at IS NULL"


@dataclass
class SqliteDb:
    """A cursor on the loop's connection; `autocommit` as PostgreSQL's lent connections."""

    cursor: sqlite3.Cursor
    autocommit: bool

    def finish_statement(self) -> None:
        if self.autocommit and self.cursor.connection.in_transaction:
            self.cursor.connection.commit()


class SqliteTokenStore(TokenStore):
    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.dialect)
        self.engine = engine
        self._loop_connection = threading.local()

    def _cursor(self) -> sqlite3.Cursor:
        """The loop's thread keeps one connection for good (no pool checkout per request)."""
        connection = getattr(self._loop_connection, "value", None)
        if connection is None:
            connection = self._loop_connection.value = self.engine.raw_connection()
        cursor = connection.cursor()
        assert isinstance(cursor, sqlite3.Cursor)
        cursor.row_factory = sqlite3.Row  # columns by name, on this cursor only
        return cursor

    async def close(self) -> None:
        connection = getattr(self._loop_connection, "value", None)
        if connection is not None:
            self._loop_connection.value = None
            connection.close()  # back to the engine's pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqliteDb]:
        with metrics.SQLITE_ERRORS, self._committed(SqliteDb(self._cursor(), True)) as db:
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

    async def _fetchrow(self, db: SqliteDb, sql: str, params: dict[str, Any]) -> Row | None:
        db.cursor.execute(sql, params)
        row: Row | None = db.cursor.fetchone()
        db.finish_statement()
        return row

    async def _fetchall(self, db: SqliteDb, sql: str, params: dict[str, Any]) -> list[Row]:
        db.cursor.execute(sql, params)
        rows = list(db.cursor.fetchall())
        db.finish_statement()
        return rows

    async def redeem_code(
        self, db: SqliteDb, code_hash: str, session: NewSession, refresh: NewRefreshToken | None
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
            db.cursor.execute(sql.INSERT_SESSION, sql.session_params(session, self.write_time))
            if refresh is not None:
                db.cursor.execute(INSERT_REFRESH, sql.refresh_params(refresh, self.write_time))

    async def rotate_refresh_token(
        self,
        db: SqliteDb,
        spent_hash: str | None,
        fresh: NewRefreshToken,
        activity: SessionActivity,
        retire: bool = False,
    ) -> bool:
        with self._atomic(db):
            if spent_hash is not None:
                spent = await self._fetchrow(
                    db,
                    sql.MARK_REFRESH_RETIRED if retire else sql.MARK_REFRESH_SPENT,
                    {"now": self.write_time(activity.now), "spent_hash": spent_hash},
                )
            else:  # inside the grace period: already spent, issue while the session stands
                spent = await self._fetchrow(db, SESSION_STANDS, {"id": fresh.session_id})
            if spent is None:
                return False
            db.cursor.execute(INSERT_REFRESH, sql.refresh_params(fresh, self.write_time))
            db.cursor.execute(
                f"{sql.TOUCH_SESSION} WHERE id = :id",
                sql.activity_params(activity, self.write_time) | {"id": fresh.session_id},
            )
        return True
