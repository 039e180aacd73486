"""PostgreSQL connections for the protocol's store: lent one request at a time.

asyncpg's `Pool` spends about 30 µs of CPU on every checkout and return
(a shielded task per release, a reset, an idle timer re-armed per connection;
measured, docs/decisions.md "Lending PostgreSQL connections"). That is a tenth
of an introspection. The store needs none of it: each of its statements runs
on its own with autocommit (store.py), so a connection comes back exactly as it
left and needs no reset. What remains is this: at most `size` connections, opened
when first needed, each lent to one borrower at a time, waiters served in order,
and a connection that closed or was left inside a transaction is never lent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from pitpass import metrics

CLOSE_TIMEOUT_SECONDS = 2.0  # at shutdown; then the socket is simply dropped


class ConnectionLender:
    """At most `size` asyncpg connections of one event loop, lent one borrower at a time."""

    def __init__(
        self, dsn: str, size: int, connect_timeout: float, server_settings: dict[str, str]
    ) -> None:
        self._dsn = dsn
        self._size = size
        self._connect_timeout = connect_timeout
        self._server_settings = server_settings
        self._idle: list[asyncpg.Connection[Any]] = []
        # Each waiter gets a connection, or None: "a place is yours, open one in it".
        self._waiters: deque[asyncio.Future[asyncpg.Connection[Any] | None]] = deque()
        self._opened = 0  # lent + idle + being opened
        self._closed = False

    @property
    def opened(self) -> int:
        return self._opened

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection[Any]]:
        connection = await metrics.postgresql_borrowed(self._borrow())
        try:
            with metrics.POSTGRESQL_ERRORS:
                yield connection
        finally:
            self._give_back(connection)

    async def _borrow(self) -> asyncpg.Connection[Any]:
        if self._closed:
            raise asyncpg.InterfaceError("the connections were closed (the server is stopping)")
        if self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            return await self._open()  # it died while idle (a server restart): replace it
        if self._opened < self._size:
            self._opened += 1
            return await self._open()
        waiter: asyncio.Future[asyncpg.Connection[Any] | None]
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            # Cancelled after being handed a connection (or a free place): pass it on.
            if waiter.done() and not waiter.cancelled():
                if (given := waiter.result()) is not None:
                    self._give_back(given)
                else:
                    self._place_freed()
            else:
                with contextlib.suppress(ValueError):  # already passed over
                    self._waiters.remove(waiter)
            raise
        return handed if handed is not None else await self._open()

    async def _open(self) -> asyncpg.Connection[Any]:
        """Open a connection in a place already counted in `_opened`."""
        try:
            return await asyncpg.connect(
                self._dsn, timeout=self._connect_timeout, server_settings=self._server_settings
            )
        except BaseException:
            self._place_freed()
            raise

    def _give_back(self, connection: asyncpg.Connection[Any]) -> None:
        if self._closed or connection.is_closed() or connection.is_in_transaction():
            # Never lend a connection whose state is not the one it was opened with.
            connection.terminate()
            self._place_freed()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _place_freed(self) -> None:
        """Hand the place to the first waiter (it opens a connection there), else free it.

        Handing it over, rather than freeing it for anyone, keeps `_opened` at or
        under `size` while the waiter is still on its way to open."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._opened -= 1

    async def close(self) -> None:
        """Close the idle connections; the lent ones close when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._opened -= 1
            with contextlib.suppress(OSError, asyncpg.InterfaceError, asyncio.TimeoutError):
                await connection.close(timeout=CLOSE_TIMEOUT_SECONDS)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connections were closed"))
        self._waiters.clear()

    def terminate(self) -> None:
        """Drop every idle connection at once (the loop that owned them is going away)."""
        self._closed = True
        for connection in self._idle:
            connection.terminate()
        self._opened -= len(self._idle)
        self._idle = []
