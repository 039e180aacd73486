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
    """How this dialect writes and reads a UTC timestamp: SQLAlchemy's own processors for
    the ORM's column type, so the store's rows and the ORM's are the same text or value.

    One exception, for speed: SQLite's writer is `sqlite_text`, a third of the cost of
    SQLAlchemy's (measured with callgrind; five timestamps per refresh), and proven to
    write the same text by tests/unit/test_storage_timestamps.py."""
    column_type = UTCDateTime().dialect_impl(dialect)
    write: WriteTime | None = column_type.bind_processor(dialect)
    read: ReadTime | None = column_type.result_processor(dialect, None)  # type: ignore[assignment]
    assert write is not None and read is not None  # a TypeDecorator always has both
    if dialect.name == "sqlite":
        write = sqlite_text
    return write, read


def sqlite_text(moment: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text for an aware datetime: naive UTC,
    "YYYY-MM-DD HH:MM:SS.ffffff"."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


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
