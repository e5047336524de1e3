"""The unit of work: one transaction per request, command or background step, committed before
anyone is told it succeeded (Cosmic Python, chapter 6, without its ceremony).

::

    uow = UnitOfWork(engine)
    with uow.begin() as conn:      # a unit that may write
        ...                        # its changes, their audit entries and outbox messages
    # committed here, before the answer; an exception inside rolled everything back

    with uow.read() as conn:       # a unit that only reads (READ ONLY; may go to a replica later)
        ...

A writing unit on SQLite takes the database's write lock when it begins (``BEGIN IMMEDIATE``, see
``store.engine``), never by upgrading a read. Threads of one process queue for it here, on one
lock per database with a bounded wait, rather than in SQLite's sleeping busy handler (which is
neither fair nor prompt); other processes are waited for by ``busy_timeout``. On PostgreSQL there is
no process-wide lock: writers meet only on the rows they share, and ``lock_timeout`` bounds that.

Every wait is bounded (``config.lock_timeout``): a unit that cannot get its lock, its connection or
its rows in time raises ``DatabaseBusy``, which the API answers with 503 and ``Retry-After``. The
unit's work must not wait on anything else that can block without a bound, and nothing that can
wait on a database lock runs on the event loop: the web layer runs units in its thread pool, except
the short units of its hottest routes on SQLite (``web.deps.in_unit(inline=True)``), which first
try to begin without waiting (``begin(wait=False)``: the writer free now, or ``WouldWait`` and
off to the pool); a read in WAL mode waits for no writer.
"""

from __future__ import annotations

import collections
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from dinhdanh import config
from dinhdanh.store.engine import NOWAIT, READ_ONLY, WRITE, WouldWait

__all__ = ["UnitOfWork", "DatabaseBusy", "DatabaseUnavailable", "ReadOnlyViolation", "WouldWait", "is_busy", "is_unavailable",
           "sqlite_read"]


class DatabaseBusy(Exception):
    """A lock, a connection or the writer was not free within the bound: try again shortly."""

    retry_after = 1


class ReadOnlyViolation(RuntimeError):
    """A unit opened to read wrote (a programming error): it was rolled back."""


class DatabaseUnavailable(Exception):
    """The database does not answer (down, restarting): try again shortly."""

    retry_after = 5


class FairLock:
    """A lock handed to its waiters in the order they came (first in, first out).

    ``threading.Lock`` lets whichever thread wakes first take it, so under a steady queue one unit
    can lose the race many times in a row: its wait, not its work, then makes the slowest answers.
    Here ``release`` hands the lock to the oldest waiter, so a unit waits for at most the units
    queued before it. A waiter that gives up (timeout) leaves the queue; if the lock was handed to
    it at that very moment, it keeps it and says so.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: collections.deque[threading.Lock] = collections.deque()

    def acquire(self, timeout: float = -1) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        if turn.acquire(timeout=timeout):
            return True  # handed over by release()
        with self._mutex:
            try:
                self._waiters.remove(turn)
            except ValueError:
                return True  # handed over while giving up: it is ours
            return False

    def try_acquire(self) -> bool:
        """Take the lock if it is free now (then nobody waits for it); never wait."""
        with self._mutex:
            if self._held:
                return False
            self._held = True
            return True

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                raise RuntimeError("release of an unheld FairLock")
            if self._waiters:
                self._waiters.popleft().release()  # still held: now by the oldest waiter
            else:
                self._held = False


# One writer lock per SQLite database (per engine) in this process, whoever makes the unit.
_writers: weakref.WeakKeyDictionary[sa.Engine, FairLock] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_of(engine: sa.Engine) -> FairLock | None:
    """The process's writer lock of a SQLite ``engine`` (None for PostgreSQL): held by whoever writes
    through it in this process (units of work; the checkpointer while it starts the log over)."""
    if engine.dialect.name != "sqlite":
        return None
    with _writers_lock:
        lock = _writers.get(engine)
        if lock is None:
            lock = _writers[engine] = FairLock()
        return lock


class UnitOfWork:
    """Units of work on ``engine`` (see the module's doc)."""

    def __init__(self, engine: sa.Engine, *, lock_timeout: float | None = None):
        self.engine = engine
        self.lock_timeout = config.lock_timeout() if lock_timeout is None else lock_timeout
        self._writer = writer_of(engine)
        self._postgres = engine.dialect.name == "postgresql"

    @property
    def starts_at_once(self) -> bool:
        """Whether ``begin(wait=False)`` can tell at once that it would wait (SQLite: the process's
        writer lock and the database's write lock are tried, not waited for)."""
        return self._writer is not None

    @contextmanager
    def begin(self, *, wait: bool = True) -> Iterator[sa.Connection]:
        """A unit that may write: committed when the block ends, rolled back if it raises.

        ``wait=False`` (SQLite): begin only if the writer is free now, in this process and in the
        database (``BEGIN IMMEDIATE`` without a busy handler); ``WouldWait`` otherwise, before
        anything has run. What lets a short unit run on the event loop (``web.deps.in_unit``)
        without ever blocking it on a lock; once begun, a writing unit in WAL mode waits for nothing."""
        writer = self._writer
        if writer is not None and not wait:
            if not writer.try_acquire():
                raise WouldWait("the database's writer is another thread's")
        elif writer is not None and not writer.acquire(timeout=self.lock_timeout):
            raise DatabaseBusy("the database's writer was not free in time")
        try:
            with translated(), self.engine.connect() as conn:
                conn.execution_options(**({WRITE: True} if wait or writer is None else {WRITE: True, NOWAIT: True}))
                with conn.begin():
                    yield conn
        finally:
            if writer is not None:
                writer.release()

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A unit that only reads: PostgreSQL refuses a write in it (``READ ONLY``); on SQLite a
        unit that wrote rows is rolled back and raises ``ReadOnlyViolation``."""
        with translated(), self.engine.connect() as conn:
            if self._postgres:
                conn.execution_options(postgresql_readonly=True)
                with conn.begin():
                    yield conn
                return
            with sqlite_read(conn):
                yield conn


@contextmanager
def sqlite_read(conn: sa.Connection) -> Iterator[sa.Connection]:
    """A SQLite transaction that only reads (a plain ``BEGIN``), on ``conn`` outside any: rolled
    back with ``ReadOnlyViolation`` if it wrote a row. Not ``PRAGMA query_only``: a flag pragma
    expires every statement the connection has prepared, so each unit after a read prepared its
    statements again (70 µs for the token's join); the connection's change count costs nothing."""
    conn.execution_options(**{READ_ONLY: True})
    driver = conn.connection.driver_connection
    changes = driver.total_changes
    with conn.begin():
        yield conn
        if driver.total_changes != changes:
            raise ReadOnlyViolation("a transaction that only reads wrote to the database")


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is a bounded wait that ran out: SQLite's lock, PostgreSQL's lock_timeout or a
    serialization failure, the pool's checkout."""
    if isinstance(exc, DatabaseBusy | sa.exc.TimeoutError):
        return True
    if isinstance(exc, sa.exc.OperationalError | sa.exc.DBAPIError):
        orig = getattr(exc, "orig", None)
        code = getattr(orig, "sqlstate", None)
        if code in ("55P03", "40001", "40P01", "57014"):  # lock timeout, serialization, deadlock, canceled
            return True
        text = str(orig or "").lower()
        return "database is locked" in text or "database table is locked" in text
    return False


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database server cannot be reached (down, restarting, shutting down)."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        orig = getattr(exc, "orig", None)
        code = getattr(orig, "sqlstate", None) or ""
        if code.startswith("08") or code in ("57P01", "57P02", "57P03"):  # connection, admin shutdown
            return True
        text = str(orig or "").lower()
        return "connection refused" in text or "server closed the connection" in text or "connection failed" in text
    return False


@contextmanager
def translated() -> Iterator[None]:
    """Bounded waits that ran out become ``DatabaseBusy``; a database that is gone, ``DatabaseUnavailable``."""
    try:
        yield
    except (DatabaseBusy, DatabaseUnavailable):
        raise
    except Exception as exc:
        if is_busy(exc):
            raise DatabaseBusy(type(exc).__name__) from exc
        if is_unavailable(exc):
            raise DatabaseUnavailable(type(exc).__name__) from exc
        raise
