"""A unit that only reads (``UnitOfWork.read``): a write in it is never committed, on SQLite (the
connection's change count, checked before the commit) and PostgreSQL (``READ ONLY``); and on SQLite
it leaves the connection's prepared statements alone, so the next unit does not prepare them again
(a ``PRAGMA query_only`` toggle expired them all at every read)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from dinhdanh.store.base import utcnow
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import ReadOnlyViolation, UnitOfWork


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()


def test_a_write_in_a_read_unit_is_refused_and_rolled_back(engine):
    uow = UnitOfWork(engine)
    with pytest.raises((ReadOnlyViolation, sa.exc.DBAPIError)):
        with uow.read() as conn:
            conn.execute(outbox.insert().values(topic="test.read", payload={}, created_at=utcnow()))
    assert _count(engine) == 0
    with uow.begin() as conn:  # the connection went back to the pool fit for the next unit
        conn.execute(outbox.insert().values(topic="test.read", payload={}, created_at=utcnow()))
    with uow.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 1


def test_a_read_unit_keeps_the_connections_prepared_statements(sqlite_engine):
    # SQLite asks a connection's authorizer when it prepares a statement, not when it runs a
    # prepared one again: a statement the units expired is seen being prepared again
    uow = UnitOfWork(sqlite_engine)
    statement = sa.select(outbox.c.topic).where(outbox.c.seq == sa.bindparam("id"))
    prepares: list[str] = []

    def authorizer(action, table, *_):
        if action == sqlite3.SQLITE_READ and table == "outbox":
            prepares.append(table)
        return sqlite3.SQLITE_OK

    with uow.read() as conn:
        driver = conn.connection.driver_connection
    driver.set_authorizer(authorizer)  # (itself expires what was prepared, once)
    try:
        with uow.read() as conn:
            conn.execute(statement, {"id": 1}).first()
        assert prepares
        prepared = len(prepares)
        for unit in (uow.read, uow.begin, uow.read, lambda: uow.begin(wait=False), uow.read):
            with unit() as conn:
                assert conn.connection.driver_connection is driver  # one connection, reused
                conn.execute(statement, {"id": 1}).first()
        assert len(prepares) == prepared
    finally:
        driver.set_authorizer(None)
