"""PostgreSQL connections for the protocol's store: lent one request at a time.

asyncpg's `Pool` spends about 30 µs of CPU on every checkout and return
(a shielded task per release, a reset, an idle timer re-armed per connection;
measured, docs/decisions.md "Lending PostgreSQL connections"). That is a tenth
of an introspection. The store needs none of it: each of its statements runs
on its own with autocommit (store.py), so a connection comes back exactly as it
left and needs no reset. What remains is this: at most `size` connections, opened
when first needed, each lent to one borrower at a time, waiters served in order,
and a connection that closed or was left inside a transaction is never lent again.

Each borrowing has a deadline (PITPASS_STORAGE_TIMEOUT_SECONDS): waiting for a
connection, opening one and every statement share it, so a request is answered
(503) by then even when PostgreSQL is frozen. A statement that did not end with
the server's answer (timed out, cancelled, cut) leaves its connection in an unknown
protocol state: that connection is closed, never lent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from pitpass import metrics

CLOSE_TIMEOUT_SECONDS = 2.0  # at shutdown; then the socket is simply dropped
DEFAULT_DEADLINE_SECONDS = 5.0  # config.Settings.storage_timeout_seconds


class LentConnection:
    """A connection lent until `deadline` (time.monotonic()): its statements end by then."""

    __slots__ = ("connection", "deadline")

    def __init__(self, connection: asyncpg.Connection[Any], deadline: float) -> None:
        self.connection = connection
        self.deadline = deadline

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self._run(self.connection.fetchrow, query, args)

    async def fetch(self, query: str, *args: Any) -> Any:
        return await self._run(self.connection.fetch, query, args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._run(self.connection.fetchval, query, args)

    async def execute(self, query: str, *args: Any) -> Any:
        return await self._run(self.connection.execute, query, args)

    async def _run(
        self, method: Callable[..., Awaitable[Any]], query: str, args: tuple[Any, ...]
    ) -> Any:
        remaining = self.deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError("the storage deadline has passed")
            return await method(query, *args, timeout=remaining)
        except asyncpg.PostgresError:
            raise  # the server answered (an error): the connection is ready again
        except BaseException:
            # Timed out, cancelled or cut mid-statement: lent again, it would fail the next
            # borrower ("cannot switch to state 12"). Closed now, its place is freed on return.
            self.connection.terminate()
            raise


class ConnectionLender:
    """At most `size` asyncpg connections of one event loop, lent one borrower at a time."""

    def __init__(
        self,
        dsn: str,
        size: int,
        connect_timeout: float,
        server_settings: dict[str, str],
        deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self._dsn = dsn
        self._size = size
        self._connect_timeout = connect_timeout
        self._deadline_seconds = deadline_seconds
        # The server gives up on a statement by the deadline too (a frozen client's, say).
        milliseconds = str(max(1, round(deadline_seconds * 1000)))
        self._server_settings = {"statement_timeout": milliseconds} | server_settings
        self._idle: list[asyncpg.Connection[Any]] = []
        # Each waiter gets a connection, or None: "a place is yours, open one in it".
        self._waiters: deque[asyncio.Future[asyncpg.Connection[Any] | None]] = deque()
        self._opened = 0  # lent + idle + being opened
        self._closed = False

    @property
    def opened(self) -> int:
        return self._opened

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[LentConnection]:
        deadline = time.monotonic() + self._deadline_seconds
        connection = await metrics.postgresql_borrowed(self._borrow(deadline))
        try:
            with metrics.POSTGRESQL_ERRORS:
                yield LentConnection(connection, deadline)
        finally:
            self._give_back(connection)

    async def _borrow(self, deadline: float) -> asyncpg.Connection[Any]:
        if self._closed:
            raise asyncpg.InterfaceError("the connections were closed (the server is stopping)")
        if self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            return await self._open(deadline)  # it died while idle (a restart): replace it
        if self._opened < self._size:
            self._opened += 1
            return await self._open(deadline)
        waiter: asyncio.Future[asyncpg.Connection[Any] | None]
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # Every connection busy (a frozen server holds them all): wait until the deadline.
            async with asyncio.timeout_at(self._loop_time(deadline)):
                handed = await waiter
        except (asyncio.CancelledError, TimeoutError):
            # Cancelled or past the deadline after being handed a connection (or a free
            # place): pass it on.
            if waiter.done() and not waiter.cancelled():
                if (given := waiter.result()) is not None:
                    self._give_back(given)
                else:
                    self._place_freed()
            else:
                with contextlib.suppress(ValueError):  # already passed over
                    self._waiters.remove(waiter)
            raise
        return handed if handed is not None else await self._open(deadline)

    @staticmethod
    def _loop_time(deadline: float) -> float:
        """A time.monotonic() deadline on the event loop's clock."""
        return asyncio.get_running_loop().time() + (deadline - time.monotonic())

    async def _open(self, deadline: float) -> asyncpg.Connection[Any]:
        """Open a connection in a place already counted in `_opened`."""
        try:
            timeout = min(self._connect_timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise TimeoutError("the storage deadline has passed")
            return await asyncpg.connect(
                self._dsn, timeout=timeout, server_settings=self._server_settings
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
