"""Passport numbers: one letter and seven digits (``P0000001``), given out by one counter.

Vietnamese ordinary passports carry a series letter and seven digits (older booklets B, C, N,
the current model P ...; the form also accepts 8 digits for a previous passport). The register
counts every passport it issues with one counter row and writes the count ``n`` as the letter
``SERIES[(n - 1) // PER_SERIES]`` and the seven digits ``(n - 1) % PER_SERIES + 1``: P0000001 ...
P9999999, then Q0000001, and so on. The letters I and O are skipped (they read as 1 and 0 in the
printed zone).

Allocation is one ``INSERT ... ON CONFLICT DO UPDATE SET last_value = last_value + 1 RETURNING``:
the database increments the row under its row lock (PostgreSQL) or its write lock (SQLite), so
two concurrent issues never read the same value; an issue rolled back leaves a gap, never a
duplicate (the ``number`` column is unique besides).

>>> format_number(1), format_number(9_999_999), format_number(10_000_000)
('P0000001', 'P9999999', 'Q0000001')
>>> is_valid("C1234567"), is_valid("P000001"), is_valid("p0000001")
(True, False, False)
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from dinhdanh.passports.tables import passport_counters
from dinhdanh.registry.errors import RuleViolation

__all__ = ["SERIES", "PER_SERIES", "format_number", "is_valid", "allocate"]

SERIES = "PQRSTUVWXYZABCDEFGHJKLMN"
PER_SERIES = 9_999_999
COUNTER = "passport"
_NUMBER = re.compile(r"[A-Z][0-9]{7,8}")


def format_number(n: int) -> str:
    """The ``n``-th passport number (from 1)."""
    if n < 1:
        raise ValueError("passport numbers count from 1")
    series, rest = divmod(n - 1, PER_SERIES)
    if series >= len(SERIES):
        raise RuleViolation("Every passport series is used up.", code="passport_numbers_exhausted")
    return f"{SERIES[series]}{rest + 1:07d}"


def is_valid(number: str) -> bool:
    """A passport number as the form takes it: a capital letter and 7 (or, for old ones, 8) digits."""
    return isinstance(number, str) and _NUMBER.fullmatch(number) is not None


def _insert(conn: sa.Connection):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def allocate(conn: sa.Connection) -> str:
    """The next passport number, taken by one atomic upsert of the counter row."""
    c = passport_counters.c
    statement = (_insert(conn)(passport_counters).values(name=COUNTER, last_value=1)
                 .on_conflict_do_update(index_elements=[c.name], set_={"last_value": c.last_value + 1})
                 .returning(c.last_value))
    return format_number(conn.execute(statement).scalar_one())
