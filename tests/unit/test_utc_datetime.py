"""store.base.UTCDateTime: on SQLite its one-step bind processor writes exactly the text
SQLAlchemy's own DATETIME wrote (what every stored timestamp is compared with), from any zone."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from dinhdanh.store.base import UTCDateTime

SQLITE = sqlite.dialect()
OURS = UTCDateTime().bind_processor(SQLITE)
SQLALCHEMY = sa.DateTime(timezone=True).dialect_impl(SQLITE).bind_processor(SQLITE)
ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=7)), dt.timezone(dt.timedelta(hours=-9, minutes=-30))])


@given(st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9998, 12, 30), timezones=ZONES))
def test_the_text_is_sqlalchemys(value):
    assert OURS(value) == SQLALCHEMY(value.astimezone(dt.UTC))


def test_whole_seconds_keep_their_microseconds_and_zones_become_utc():
    vietnam = dt.timezone(dt.timedelta(hours=7))
    assert OURS(dt.datetime(2026, 12, 7, 7, 0, tzinfo=vietnam)) == "2026-12-07 00:00:00.000000"
    assert OURS(None) is None


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="naive"):
        OURS(dt.datetime(2026, 12, 7))


def test_postgresql_keeps_sqlalchemys_processing():
    dialect = postgresql.dialect()
    process = UTCDateTime().bind_processor(dialect)
    value = dt.datetime(2026, 12, 7, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert (process(value) if process else UTCDateTime().process_bind_param(value, dialect)) == value
