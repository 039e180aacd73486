"""What each engine gives the protocol store: connections, statements, timestamps."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect

from pitpass.db.models import UTCDateTime
from pitpass.storage.sql import ReadTime, Row, WriteTime


def timestamp_codec(dialect: Dialect) -> tuple[WriteTime, ReadTime]:
    """How this dialect writes and reads a UTC timestamp, exactly as SQLAlchemy's processors
    for the ORM's `UTCDateTime` column do, so the store's rows and the ORM's are the same.

    For SQLite and PostgreSQL the store uses equivalents that cost a fifth to a half of
    SQLAlchemy's (several per grant; measured with callgrind, docs/decisions.md
    "Timestamps on the hot path"): `datetime.replace` and keyword-parsing `isoformat`
    are the expensive calls they avoid. tests/unit/test_storage_timestamps.py proves them
    equal to SQLAlchemy's for any aware datetime."""
    if dialect.name == "sqlite":
        return sqlite_text, sqlite_read
    if dialect.name == "postgresql":
        return naive_utc, aware_utc
    column_type = UTCDateTime().dialect_impl(dialect)
    write: WriteTime | None = column_type.bind_processor(dialect)
    read: ReadTime | None = column_type.result_processor(dialect, None)  # type: ignore[assignment]
    assert write is not None and read is not None  # a TypeDecorator always has both
    return write, read


def naive_utc(moment: datetime) -> datetime:
    """An aware datetime as the naive UTC a `timestamp` column holds."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return datetime.combine(moment.date(), moment.time())


def aware_utc(stored: datetime) -> datetime:
    """A `timestamp` column's naive UTC as an aware datetime."""
    return datetime.combine(stored.date(), stored.time(), UTC)


def sqlite_text(moment: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text: naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff"."""
    text = str(naive_utc(moment))  # the fraction is left out when it is zero
    return text if moment.microsecond else f"{text}.000000"


def sqlite_read(stored: str) -> datetime:
    return datetime.fromisoformat(f"{stored}+00:00")


class StoreEngine(ABC):
    """The primitives the store's contracts are written with.

    `db` is what `connection()` yields; a method given one runs on it.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.write_time, self.read_time = timestamp_codec(dialect)

    @abstractmethod
    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A connection whose statements commit one by one (reads, single writes)."""

    @abstractmethod
    async def _fetchrow(self, db: Any, sql: str, params: dict[str, Any]) -> Row | None:
        """The first row of a statement written with :name placeholders."""

    @abstractmethod
    async def _fetchall(self, db: Any, sql: str, params: dict[str, Any]) -> list[Row]:
        """Every row of a statement written with :name placeholders."""

    @abstractmethod
    async def close(self) -> None:
        """Give back the connections the store holds (at shutdown)."""
