"""store.base.UTCDateTime: on SQLite its one-step bind processor writes exactly the text
SQLAlchemy's own DATETIME wrote (what every stored timestamp is compared with), from any zone."""

from __future__ import annotations

import datetime as dt
import sys

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


def test_the_last_value_is_remembered_by_identity_only():
    """A row binds one moment twice (issued now, signed in then): the text of the last value is
    kept, for that very object. An equal instant in another zone, or another object, is converted."""
    process = UTCDateTime().bind_processor(SQLITE)
    now = dt.datetime(2026, 12, 7, 7, 0, 0, 1, tzinfo=dt.UTC)
    assert process(now) == process(now) == "2026-12-07 07:00:00.000001"
    same_instant = now.astimezone(dt.timezone(dt.timedelta(hours=7)))
    assert process(same_instant) == "2026-12-07 07:00:00.000001"
    assert process(now + dt.timedelta(microseconds=1)) == "2026-12-07 07:00:00.000002"
    with pytest.raises(ValueError, match="naive"):
        process(now.replace(tzinfo=None))
    assert process(None) is None and process(now) == "2026-12-07 07:00:00.000001"


def test_threads_sharing_the_processor_get_their_own_values():
    """One processor is shared by every thread binding the column: each value's text is its own,
    however the threads interleave."""
    import threading

    process = UTCDateTime().bind_processor(SQLITE)
    base = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    values = [base + dt.timedelta(seconds=i, microseconds=i) for i in range(3)]  # the same objects for all
    expected = [SQLALCHEMY(value) for value in values]
    wrong, start = [], threading.Barrier(8)

    def bind(k: int) -> None:
        start.wait()
        for i in range(20_000):
            j = (i + k) % len(values)  # each thread its own order over the shared values
            for _ in range(2):  # the second from the remembered text, unless another thread came between
                if process(values[j]) != expected[j]:
                    wrong.append(values[j])

    threads = [threading.Thread(target=bind, args=(k,)) for k in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes, not every 5 ms
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
