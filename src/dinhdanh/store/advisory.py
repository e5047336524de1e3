"""A named lock held until the transaction ends, for a decision that no row can carry: a one-time
set-up, a key rotated when it wears out. Two units that both found the thing missing (or worn
out) take the lock one after the other; the second reads again under it and finds what the first
made. PostgreSQL: a transaction-level advisory lock, waited for under ``lock_timeout``; SQLite's
writing units already run one at a time (``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["hold"]

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")


def hold(conn: sa.Connection, name: str) -> None:
    """Take the lock ``name`` until ``conn``'s transaction ends (PostgreSQL; nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"name": f"dinhdanh:{name}"})
