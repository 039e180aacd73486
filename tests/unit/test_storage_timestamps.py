"""The protocol store writes timestamps exactly as the ORM does (storage/base.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from pitpass.db.models import UTCDateTime
from pitpass.storage.base import timestamp_codec

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
MOMENTS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31), timezones=ZONES
)


@given(MOMENTS)
def test_sqlite_text_is_sqlalchemys(moment: datetime) -> None:
    dialect = sqlite.dialect()
    orm_writer = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert orm_writer is not None
    write, read = timestamp_codec(dialect)
    assert write(moment) == orm_writer(moment)
    assert read(write(moment)) == moment


@given(MOMENTS)
def test_postgresql_round_trip(moment: datetime) -> None:
    write, read = timestamp_codec(postgresql.dialect())
    stored = write(moment)
    assert stored.tzinfo is None and read(stored) == moment
