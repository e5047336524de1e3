"""Units that begin without waiting (``UnitOfWork.begin(wait=False)``) and the hot routes' units run
on the event loop (``web.deps.in_unit(inline=True)``): on SQLite a unit runs on the loop only when
the writer is free now, in this process and in the database; otherwise it says so at once
(``WouldWait``, nothing run, nothing held); its group (``store.group_commit``) then waits for the
writer in the thread pool.
The loop is never blocked on a lock: while another thread or another connection (as another process
would) holds the writer, the loop keeps running other work. On PostgreSQL the units stay in the pool."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from starlette.requests import Request

from dinhdanh.store.base import utcnow
from dinhdanh.store.outbox import outbox
from dinhdanh.store.unit_of_work import UnitOfWork, WouldWait
from dinhdanh.web.deps import in_unit


def _request(uow: UnitOfWork) -> Request:
    return Request({"type": "http", "app": SimpleNamespace(state=SimpleNamespace(uow=uow)), "headers": []})


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()


def _write(conn) -> int:
    conn.execute(outbox.insert().values(topic="test.inline", payload={"n": 1}, created_at=utcnow()))
    return threading.get_ident()


def test_a_unit_that_would_wait_for_another_thread_says_so_at_once(sqlite_engine):
    uow = UnitOfWork(sqlite_engine, lock_timeout=5)
    assert uow.starts_at_once
    held, release = threading.Event(), threading.Event()

    def holder():
        with uow.begin() as conn:
            _write(conn)
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        with pytest.raises(WouldWait):
            with uow.begin(wait=False) as conn:
                _write(conn)
        assert time.monotonic() - started < 2.5  # far under the 5 s it would wait (loose: CI machines stall)
    finally:
        release.set()
        thread.join(10)
    with uow.begin(wait=False) as conn:  # free again: it begins, and its writes are committed
        _write(conn)
    assert _count(sqlite_engine) == 2


def test_a_unit_that_would_wait_for_another_process_says_so_at_once_and_keeps_the_busy_timeout(sqlite_engine):
    uow = UnitOfWork(sqlite_engine, lock_timeout=5)
    other = sqlite3.connect(sqlite_engine.url.database, isolation_level=None)  # as another process would
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(WouldWait):
            with uow.begin(wait=False) as conn:
                _write(conn)
        assert time.monotonic() - started < 2.5  # no busy handler for it (its 5 s would show)
        # nothing is held after it: a thread of this process may still queue for the writer
        assert uow._writer.try_acquire()
        uow._writer.release()
    finally:
        other.execute("ROLLBACK")
        other.close()
    with uow.begin() as conn:  # the connection's own busy timeout was put back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
        _write(conn)
    assert _count(sqlite_engine) == 1


def test_in_unit_runs_on_the_loop_when_free_and_in_the_pool_when_not(sqlite_engine):
    uow = UnitOfWork(sqlite_engine, lock_timeout=5)
    request = _request(uow)

    async def scenario():
        loop_thread = threading.get_ident()
        assert await in_unit(request, _write, inline=True) == loop_thread  # the writer was free
        assert await in_unit(request, lambda conn: threading.get_ident(), read=True, inline=True) == loop_thread
        assert await in_unit(request, _write) != loop_thread  # not asked: the pool, as before

        other = sqlite3.connect(sqlite_engine.url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick = asyncio.get_running_loop().create_task(ticker())
        filing = asyncio.ensure_future(in_unit(request, _write, inline=True))
        await asyncio.sleep(0.3)
        assert not filing.done() and ticks >= 10  # it waits in the pool; the loop runs on
        other.execute("ROLLBACK")
        other.close()
        assert await asyncio.wait_for(filing, 10) != loop_thread
        tick.cancel()

    asyncio.run(scenario())
    assert _count(sqlite_engine) == 3  # two writes, and the one that waited (the read wrote nothing)


def test_on_postgresql_units_stay_in_the_pool(engine):
    uow = UnitOfWork(engine, lock_timeout=5)
    request = _request(uow)

    async def scenario():
        return threading.get_ident(), await in_unit(request, _write, inline=True)

    loop_thread, ran_on = asyncio.run(scenario())
    assert (ran_on == loop_thread) == (engine.dialect.name == "sqlite")
    assert _count(engine) == 1
