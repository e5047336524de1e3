"""Group commit: the short writing units of an event loop, several in one SQLite transaction.

SQLite has one writer; the hottest routes (a token, a filing) run their unit on the event loop
when the writer is free (``web.deps.in_unit(inline=True)``), one after another anyway. Each unit
paid for its own connection checkout, ``BEGIN IMMEDIATE`` and commit: a quarter of a token's CPU.
Here the units are queued as their requests reach them, and run by one flush, in one transaction.
The flush waits for the arrivals to pause: it runs at the first turn of the loop that queued no
unit, from the second turn after the first unit on (a lone request waits two turns: a few
microseconds), and after ``MAX_TURNS`` turns whatever happens. Requests read a turn apart then
share a transaction: with a flush at a fixed second turn, a server busy with eight refresh chains
committed groups of 1 to 8 units (5.6 on average), and each group's transaction costs about as much
as its first unit. In the group:

- each unit in its caller's context (``contextvars``: the request id of its log lines is its own
  request's, not the one whose unit opened the group), on the loop or in the pool;
- each unit in a savepoint of its own: a unit that raises is rolled back to it alone, and its
  exception goes to its caller; the others go on;
- the transaction commits before any caller is told anything: a unit's result (a 2xx) still means
  its changes are committed, and when the commit fails every unit of the group fails with it;
- the units run in the order they were queued, each seeing the ones before it as a unit run
  after them would (a refresh token presented twice: the second finds it rotated);
- if the writer is not free now (another thread's unit, a checkpoint starting the log over,
  another process), the group waits for it in the thread pool and runs there, still one
  transaction; the loop's next groups queue behind it and run on the loop again once it is done
  (if it waited the whole bound in vain, ``DatabaseBusy``, they fail with it: no request waits
  more than about one bound).
  (Each unit used to go to the pool alone: one transaction each, and, with every new unit finding
  the writer held by one of those, the server stayed in that mode. Under eight refresh chains a
  log restart put whole seconds of requests there, at three times the CPU a token.)
- if SQLite ends the transaction itself (a full disk, an I/O error: it rolls it back whole), the
  units already run are lost with it, so each caller of the group gets the error.

A group holds at most ``MAX_UNITS``; more start the next group. Only for SQLite on one event loop:
on PostgreSQL units run concurrently in the pool and wait for nothing here.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import Callable
from typing import Any

import anyio.to_thread
import sqlalchemy as sa

from dinhdanh.store.unit_of_work import DatabaseBusy, DatabaseUnavailable, UnitOfWork, WouldWait

MAX_UNITS = 32
MAX_TURNS = 16  # turns of the loop a group waits for more units, at most


def of(uow: UnitOfWork) -> GroupCommit:
    """The group commit of ``uow`` (one per unit of work, made on first use)."""
    group = _GROUPS.get(uow)
    if group is None:
        with _GROUPS_LOCK:
            group = _GROUPS.get(uow)
            if group is None:
                group = _GROUPS[uow] = GroupCommit(uow)
    return group


class GroupCommit:
    """Units of work on ``uow`` (SQLite) from coroutines of one event loop, committed in groups."""

    def __init__(self, uow: UnitOfWork, max_units: int = MAX_UNITS, max_turns: int = MAX_TURNS):
        self.uow = uow
        self.max_units = max_units
        self.max_turns = max_turns
        self._queues: dict[asyncio.AbstractEventLoop, list] = {}
        self._pooled: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}  # a group waiting in the pool

    async def run(self, work: Callable[[sa.Connection], Any]) -> Any:
        """``work(conn)`` in the loop's next group; its result once the group is committed, or its
        exception."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = []
            loop.call_soon(self._wait, loop, queue, 0, 1)
        future = loop.create_future()
        queue.append((work, future, contextvars.copy_context()))
        if len(queue) >= self.max_units:
            del self._queues[loop]  # full: the flush already scheduled takes it; the next unit opens another
            loop.call_soon(self._run_group, queue)
        return await future

    def _wait(self, loop: asyncio.AbstractEventLoop, queue: list, seen: int, turn: int) -> None:
        """At each turn after ``queue`` opened: flush it once a turn has queued nothing more than the
        ``seen`` units of the turn before (from the second turn on), or at ``max_turns``."""
        if self._queues.get(loop) is not queue:  # full, already taken (``run``)
            return
        if len(queue) == seen or turn >= self.max_turns:
            del self._queues[loop]
            self._run_group(queue)
        else:
            loop.call_soon(self._wait, loop, queue, len(queue), turn + 1)

    def _run_group(self, queue: list) -> None:
        queue = [unit for unit in queue if not unit[1].cancelled()]  # a client gone
        if not queue:
            return
        loop = asyncio.get_running_loop()
        pooled = self._pooled.get(loop)
        if pooled is not None:  # after the group waiting in the pool, not beside it (it has the writer next)
            pooled.add_done_callback(lambda task: self._after(task, queue))
            return
        try:
            outcomes = self._transaction(queue, wait=False)
        except WouldWait:  # the writer is another's: wait for it in the pool, the group whole
            task = self._pooled[loop] = loop.create_task(self._in_pool(queue))
            task.add_done_callback(lambda _: self._pooled.pop(loop, None))
            return
        except BaseException as exc:
            _fail(queue, exc)
            if not isinstance(exc, Exception):
                raise
            return
        _settle(outcomes)

    async def _in_pool(self, queue: list) -> Exception | None:
        """The group, waiting for the writer in the thread pool; what failed it, if anything did."""
        try:
            outcomes = await anyio.to_thread.run_sync(self._transaction, queue, True)
        except BaseException as exc:
            _fail(queue, exc)
            if not isinstance(exc, Exception):
                raise
            return exc
        _settle(outcomes)
        return None

    def _after(self, pooled: asyncio.Task, queue: list) -> None:
        """A group queued behind one that waited in the pool: if that one found the writer not free
        in time (``DatabaseBusy``), this one fails with it, having waited meanwhile (queued behind
        it again it would wait a whole bound more, and the group after it more still); else it runs."""
        failed = None if pooled.cancelled() else (pooled.exception() or pooled.result())
        if isinstance(failed, DatabaseBusy):
            _fail(queue, failed)  # (a caller gone meanwhile: its future is done, left as it is)
            return
        self._run_group(queue)

    def _transaction(self, queue: list, wait: bool) -> list[tuple[asyncio.Future, bool, Any]]:
        """The units of ``queue`` in one transaction, each in its savepoint: (future, ok, value) of
        each once committed; if anything fails before the commit, nothing is, and it raises
        (``WouldWait`` with ``wait=False``: the writer was not free, nothing ran)."""
        outcomes = []
        with self.uow.begin(wait=wait) as conn:
            driver = conn.connection.driver_connection
            for work, future, context in queue:  # each in its caller's context (its request id in the logs)
                outcomes.append((future, *context.run(_one, conn, driver, work)))
                if not driver.in_transaction:  # SQLite rolled the whole transaction back itself
                    raise DatabaseUnavailable("SQLite ended the group's transaction")
        return outcomes


def _fail(queue: list, exc: BaseException) -> None:
    """Nothing committed: each caller gets why."""
    for _, future, _ in queue:
        if not future.done():
            future.set_exception(exc)


def _settle(outcomes: list[tuple[asyncio.Future, bool, Any]]) -> None:
    """Committed: each caller gets its unit's result or exception."""
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _one(conn: sa.Connection, driver, work) -> tuple[bool, Any]:
    """One unit in its savepoint: (True, result), or (False, exception) with its changes undone."""
    driver.execute("SAVEPOINT unit")
    try:
        value = work(conn)
    except Exception as exc:
        if driver.in_transaction:
            driver.execute("ROLLBACK TO unit")
            driver.execute("RELEASE unit")
        return False, exc
    driver.execute("RELEASE unit")
    return True, value


_GROUPS: weakref.WeakKeyDictionary[UnitOfWork, GroupCommit] = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()
