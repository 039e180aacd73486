"""The protocol store writes and reads timestamps exactly as the ORM's column type does
with SQLAlchemy's own processors (storage/base.py), on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from pitpass.db.models import UTCDateTime
from pitpass.storage.base import timestamp_codec

ZONES = st.sampled_from(
    [UTC, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31), timezones=ZONES
)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
@given(moment=MOMENTS)
def test_the_store_writes_and_reads_as_sqlalchemy_does(dialect: Dialect, moment: datetime) -> None:
    column_type = UTCDateTime().dialect_impl(dialect)
    orm_write = column_type.bind_processor(dialect)
    orm_read = column_type.result_processor(dialect, None)
    assert orm_write is not None and orm_read is not None
    write, read = timestamp_codec(dialect)
    stored = write(moment)
    assert stored == orm_write(moment)
    assert type(stored) is type(orm_write(moment))
    assert read(stored) == orm_read(stored) == moment
    assert read(stored).utcoffset() == timedelta(0)


def test_a_whole_second_keeps_its_fraction_on_sqlite() -> None:
    write, _read = timestamp_codec(sqlite.dialect())
    assert write(datetime(2026, 12, 3, 14, 0, 0, tzinfo=UTC)) == "2026-12-03 14:00:00.000000"
