"""The one MetaData every area's tables join, with portable column types."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

# The one clock (UTC instants, Việt Nam's days) lives in the pure calendar package; re-exported
# for the areas that import it from here.
from dinhdanh.calendar.clock import VIETNAM, utcnow, vietnam_date  # noqa: F401

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit keys on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def Key(length: int) -> sa.String:
    """A short ASCII code compared byte-wise, so that prefix ranges use the index on PostgreSQL."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


class UTCDateTime(sa.TypeDecorator):
    """Aware UTC datetimes on both back-ends (SQLite stores naive text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def bind_processor(self, dialect):
        """On SQLite, the text SQLAlchemy's DATETIME stores (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC)
        written in one step: its format-string processor behind ours cost 2-3% of a token."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        utc = dt.UTC
        last = (None, None)  # the last value bound and its text: a row often binds one moment twice

        def process(value):
            nonlocal last
            if value is None:
                return None
            seen, text = last  # one tuple, replaced whole: threads sharing the processor never mix two
            if value is seen:
                return text
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            text = (value if value.tzinfo is utc else value.astimezone(utc)).replace(tzinfo=None) \
                .isoformat(" ", "microseconds")
            last = (value, text)
            return text

        return process

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


def one_of(column: str, *values: str) -> str:
    """CHECK condition that ``column`` holds one of ``values`` (an OR chain; see registry.tables)."""
    return " OR ".join(f"{column} = '{v}'" for v in values)

