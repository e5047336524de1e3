"""SQLite's WAL checkpoints in a thread of their own while the app serves.

By default SQLite checkpoints inside a commit: the commit that takes the write-ahead log past 1,000
pages also copies them into the database file and syncs it (``fdatasync`` twice). Under the
server that commit is a request's (or, with group commit, a whole group's: ``store.group_commit``),
run on the event loop, so every loop turn now and then stalls on the disk: half of the commits'
time at the token endpoint, in a profile. ``Checkpointer`` turns the automatic checkpoint off for
the app's connections and runs a ``PASSIVE`` checkpoint from its own thread every ``EVERY``
seconds (SQLite releases the GIL: the copying and the syncs overlap the serving). A passive
checkpoint never waits for a reader or writer: it copies what it can and the next one goes on.
A page written many times between two checkpoints is copied once.

A passive checkpoint alone does not keep the log short. SQLite writes the log from its beginning
again only when a writer begins after a checkpoint that copied all of it, and under a steady stream
of commits there is never such a moment: commits land while the checkpoint copies. The log then
grows without end (1.2 GB in half a minute of token refreshes, each commit appending to it and
extending the file). So when the log is longer than ``RESTART_PAGES`` after a passive checkpoint
that copied at least what the log held at the previous tick, a ``RESTART`` checkpoint follows: it
holds the write lock, copies what was committed meanwhile (little), and waits for readers of the
log to move on, so the next commit starts the log over. It waits at most ``RESTART_WAIT_MS`` for a
writer or a reader, then gives up until the next tick: no writer waits longer for it.

- Why "at least what the log held at the previous tick", not "the whole log": the readers still
  in the log then all began within the last tick (short reads, which end within the wait), and
  under commits with reads beside them there is nearly always such a reader, so "the whole log"
  would seldom hold. When it copied less, a reader holds an older part of the log (a long export,
  a backup): the restart would wait for it at every tick, and every writer with it, so it is not
  tried until that reader is gone.
- After a restart that gave up, the next one waits for the log to change: a reader at its very
  end and no writes would otherwise hold every tick's restart for its whole wait.
- It takes this process's writer lock first (``unit_of_work.writer_of``), as a unit of work does:
  the units that come meanwhile queue on that lock and are handed the writer the moment the
  restart ends, where SQLite's busy handler would have them poll with sleeps of 1, 2, 5, 10 ms and
  more (the refresh bench's p99: 8-17 ms before, 8 ms after). The event loop's group commit finds
  the writer taken and the group waits for it in the thread pool, whole (``store.group_commit``).

``journal_size_limit`` cuts a log that grew in a burst back to ``LOG_BYTES`` when it starts over.

What does not change: a commit is durable once it returns (the WAL is written before COMMIT returns,
``synchronous=NORMAL``); the log is still checkpointed; connections made without it (the CLI, a
migration, any engine not serving) keep SQLite's own automatic checkpoint. Between checkpoints
the log holds at most ``EVERY`` seconds of writes; the ``checkpoint`` runs it down when the app
stops.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from dinhdanh.store.engine import sqlite_path
from dinhdanh.store.unit_of_work import writer_of

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between two passive checkpoints (a page written again meanwhile is copied once)
RESTART_PAGES = 1000  # a log longer than this after the passive checkpoint is started over (4 MB)
RESTART_WAIT_MS = 100  # how long the restart waits for the writer and the log's readers, at most
LOG_BYTES = 64 << 20  # the log file is cut back to this size when it starts over


def applies(engine: sa.Engine) -> bool:
    """A SQLite file (an in-memory database has no log)."""
    return sqlite_path(engine.url) is not None


class Checkpointer:
    """Checkpoints of ``engine``'s log from a thread, while ``start``ed (see the module's notes)."""

    def __init__(self, engine: sa.Engine, every: float = EVERY):
        self.engine, self.every = engine, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # checkpoints run
        self.restarts = 0  # of them, those that left the log to start over
        self._held: int | None = None  # pages in the log at the previous tick (None: no tick yet)
        self._gave_up = 0  # pages in the log when a restart last gave up (0: it did not)
        self._writer = writer_of(engine)  # this process's writers wait on it, not on SQLite's busy handler

    def _manual(self, dbapi_conn, record) -> None:  # a method: each checkpointer's own listener
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute(f"PRAGMA journal_size_limit={LOG_BYTES}")
        cursor.close()

    def start(self) -> None:
        sa.event.listen(self.engine, "connect", self._manual)
        self.engine.dispose()  # connections made before now: replaced, with the automatic checkpoint off
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint, and a restart of the log if it is still long (see the module's
        notes): (busy, pages in the log, pages copied) of the last, as SQLite reports them."""
        raw = self.engine.raw_connection()  # outside any transaction (the driver's autocommit)
        try:
            driver = raw.driver_connection
            got = tuple(driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
            held, self._held = self._held, got[1]
            fresh = held is not None and got[2] >= held  # no reader older than a tick
            tried = got[1] > RESTART_PAGES and fresh and got[1] != self._gave_up
            if tried and self._writer.acquire(RESTART_WAIT_MS / 1000):  # this process's writers queue on it
                try:
                    waits = driver.execute("PRAGMA busy_timeout").fetchone()[0]
                    driver.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
                    try:
                        got = tuple(driver.execute("PRAGMA wal_checkpoint(RESTART)").fetchone())
                    finally:
                        driver.execute(f"PRAGMA busy_timeout={waits}")
                finally:
                    self._writer.release()
                if got[0]:  # gave up: not again before the log changes
                    self._gave_up = got[1]
                else:
                    self.restarts += 1
                    self._held, self._gave_up = 0, 0  # the next commit writes the log from its beginning
        finally:
            raw.close()
        self.runs += 1
        return got

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - the next one tries again; SQLite's log keeps every commit
                log.warning("WAL checkpoint failed", exc_info=True)

    def close(self) -> None:
        """Stop the thread, run a last checkpoint and give the engine its automatic checkpoint back."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        sa.event.remove(self.engine, "connect", self._manual)
        try:
            self.checkpoint()
        finally:
            self.engine.dispose()
