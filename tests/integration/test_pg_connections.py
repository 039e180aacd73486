"""The PostgreSQL connection lender of the protocol's store (oauth/pg_connections.py):
never more connections than its size, no place lost to a cancelled or failed
borrower, and a connection the server dropped is replaced, not lent again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest

from pitpass.storage.pg_connections import ConnectionLender
from tests.support import postgres_database

pytestmark = pytest.mark.services

T = TypeVar("T")


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def lending(
    dsn: str,
    size: int,
    work: Callable[[ConnectionLender], Awaitable[T]],
    deadline_seconds: float = 5.0,
) -> T:
    async def run() -> T:
        lender = ConnectionLender(
            dsn, size, connect_timeout=5, server_settings={}, deadline_seconds=deadline_seconds
        )
        try:
            return await work(lender)
        finally:
            await lender.close()

    return asyncio.run(run())


def test_never_more_connections_than_its_size_and_every_borrower_is_served(dsn: str) -> None:
    async def work(lender: ConnectionLender) -> tuple[int, set[int], list[int]]:
        busy, most_busy, backends = 0, 0, set()

        async def borrower(number: int) -> int:
            nonlocal busy, most_busy
            async with lender.connection() as connection:
                busy += 1
                most_busy = max(most_busy, busy)
                backends.add(await connection.fetchval("SELECT pg_backend_pid()"))
                await connection.execute("SELECT pg_sleep(0.01)")
                busy -= 1
                return number

        served = await asyncio.gather(*(borrower(n) for n in range(20)))
        assert lender.opened <= 3
        return most_busy, backends, list(served)

    most_busy, backends, served = lending(dsn, 3, work)
    assert most_busy == 3 and len(backends) == 3
    assert served == list(range(20))


@pytest.mark.parametrize(
    "handed_first",
    [False, True],
    ids=["cancelled-while-waiting", "cancelled-as-it-is-handed-a-connection"],
)
def test_a_cancelled_waiter_gives_up_its_place(dsn: str, handed_first: bool) -> None:
    async def work(lender: ConnectionLender) -> int:
        async with lender.connection():
            waiting = asyncio.ensure_future(_borrow_and_query(lender))
            await asyncio.sleep(0.05)
            if not handed_first:
                waiting.cancel()
        # handed_first: leaving the block just handed the waiter the connection; it has not run.
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The one place is free again: a new borrower is served at once.
        served = await asyncio.wait_for(_borrow_and_query(lender), timeout=5)
        assert lender.opened == 1
        return served

    assert lending(dsn, 1, work) == 1


def test_a_failed_connect_hands_its_place_to_the_waiter_behind(dsn: str) -> None:
    missing = dsn.rsplit("/", 1)[0] + "/no_such_database_here"

    async def work(lender: ConnectionLender) -> list[BaseException | int]:
        # One place, two borrowers: the second waits, then is handed the place the
        # first failed to fill, and fails on its own instead of waiting forever.
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                _borrow_and_query(lender), _borrow_and_query(lender), return_exceptions=True
            ),
            timeout=10,
        )
        assert lender.opened == 0
        return outcomes

    outcomes = lending(missing, 1, work)
    assert [type(outcome) for outcome in outcomes] == [asyncpg.InvalidCatalogNameError] * 2


def test_a_connection_the_server_dropped_is_replaced(dsn: str) -> None:
    async def work(lender: ConnectionLender) -> tuple[int, int]:
        async with lender.connection() as connection:
            first = await connection.fetchval("SELECT pg_backend_pid()")
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", first)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the lender's idle socket reads the server's goodbye
        async with lender.connection() as connection:
            second = await connection.fetchval("SELECT pg_backend_pid()")
        assert lender.opened == 1
        return first, second

    first, second = lending(dsn, 1, work)
    assert first != second


def test_a_connection_left_in_a_transaction_is_not_lent_again(dsn: str) -> None:
    async def work(lender: ConnectionLender) -> tuple[int, int]:
        async with lender.connection() as connection:
            first = await connection.fetchval("SELECT pg_backend_pid()")
            await connection.execute("BEGIN")
        async with lender.connection() as connection:
            assert not connection.connection.is_in_transaction()
            second = await connection.fetchval("SELECT pg_backend_pid()")
        return first, second

    first, second = lending(dsn, 1, work)
    assert first != second


def test_after_close_borrowing_is_refused_as_storage_unavailable(dsn: str) -> None:
    from pitpass.storage import STORAGE_UNAVAILABLE_ERRORS

    async def work(lender: ConnectionLender) -> None:
        await _borrow_and_query(lender)
        await lender.close()
        assert lender.opened == 0
        with pytest.raises(STORAGE_UNAVAILABLE_ERRORS):
            await _borrow_and_query(lender)

    lending(dsn, 2, work)


async def _borrow_and_query(lender: ConnectionLender) -> int:
    async with lender.connection() as connection:
        return int(await connection.fetchval("SELECT 1"))


def test_a_connection_whose_statement_was_cancelled_is_not_lent_again(dsn: str) -> None:
    """Issue #11: a connection cut or cancelled mid-statement, lent again, failed its next
    borrower ("cannot switch to state 12"). It is closed instead, its place reused."""

    async def work(lender: ConnectionLender) -> tuple[int, int, int]:
        async with lender.connection() as connection:
            first = await connection.fetchval("SELECT pg_backend_pid()")
            statement = asyncio.ensure_future(connection.execute("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.1)  # the statement is on the server
            statement.cancel()
            with pytest.raises(asyncio.CancelledError):
                await statement
        async with lender.connection() as connection:
            second = await connection.fetchval("SELECT pg_backend_pid()")
            assert await connection.fetchval("SELECT 1") == 1
        return first, second, lender.opened

    first, second, opened = lending(dsn, 1, work)
    assert first != second and opened == 1


def test_a_statement_past_the_deadline_fails_as_storage_unavailable(dsn: str) -> None:
    """Defect 4 of issue #11: a statement ends by the borrowing's deadline, with an error
    the endpoints answer 503 (the client's timeout or the server's statement_timeout)."""
    from pitpass.storage import STORAGE_UNAVAILABLE_ERRORS

    async def work(lender: ConnectionLender) -> None:
        async with lender.connection() as connection:
            with pytest.raises(STORAGE_UNAVAILABLE_ERRORS):
                await connection.execute("SELECT pg_sleep(30)")
        async with lender.connection() as connection:
            assert await connection.fetchval("SELECT 1") == 1

    lending(dsn, 1, work, deadline_seconds=0.5)


def test_waiting_for_a_connection_ends_at_the_deadline(dsn: str) -> None:
    async def work(lender: ConnectionLender) -> None:
        held = asyncio.Event()

        async def hold_the_only_connection() -> None:
            async with lender.connection():
                held.set()
                await asyncio.sleep(1.5)

        holder = asyncio.ensure_future(hold_the_only_connection())
        await held.wait()
        with pytest.raises(TimeoutError):
            async with lender.connection():
                pass
        await holder
        async with lender.connection() as connection:  # the place was freed, not lost
            assert await connection.fetchval("SELECT 1") == 1
        assert lender.opened == 1

    lending(dsn, 1, work, deadline_seconds=0.5)
