"""The protocol store: the one owner of codes, sessions and refresh tokens.

ARCHITECTURE.md "Hot path": the ORM and its async drivers cost the token
endpoint most of its speed, so the few statements the protocol needs are plain
SQL on a driver connection, one engine per module:

- SQLite (sqlite.py): stdlib `sqlite3`, one connection kept by the event loop's
  thread; a statement costs microseconds and never waits on a network.
- PostgreSQL (postgres.py): `asyncpg` connections lent one request at a time
  (pg_connections.py); writes that must happen together are one statement.

Pages, the API, the CLI and services are synchronous and hold an ORM session:
they write through `storage.sync`, which runs the same statements on it.
"""

from __future__ import annotations

import sqlite3

import asyncpg
from sqlalchemy import exc as sqlalchemy_errors

from pitpass.storage.clients import ClientCache
from pitpass.storage.codes import CodeStore
from pitpass.storage.refresh_tokens import RefreshTokenStore
from pitpass.storage.sessions import SessionStore

# The database is down, refusing or past its deadline: the client should retry
# (temporarily_unavailable, 503). The one list of them: protocol, pages and API use it.
STORAGE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.OperationalError,  # includes "database is locked" after the busy timeout
    # The ORM's statements, on the endpoints that use it: refused, cut, cancelled by
    # statement_timeout (psycopg's QueryCanceled is an OperationalError), or no pooled
    # connection free in time.
    sqlalchemy_errors.OperationalError,
    sqlalchemy_errors.InterfaceError,
    sqlalchemy_errors.TimeoutError,
    OSError,  # connection refused or reset; TimeoutError (a storage deadline) is one
    asyncpg.exceptions.QueryCanceledError,  # statement_timeout
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
)


class TokenStore(ClientCache, CodeStore, SessionStore, RefreshTokenStore):
    """Every contract of the protocol's storage; each engine implements the writes."""

    async def ping(self) -> None:
        """One round trip within the storage deadline; raises as any statement would."""
        async with self.connection() as db:
            await self._fetchrow(db, "SELECT 1 AS one", {})
