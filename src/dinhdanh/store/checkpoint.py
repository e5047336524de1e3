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

log = logging.getLogger(__name__)

EVERY = 1.0  # seconds between two passive checkpoints (a page written again meanwhile is copied once)


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

    def _manual(self, dbapi_conn, record) -> None:  # a method: each checkpointer's own listener
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    def start(self) -> None:
        sa.event.listen(self.engine, "connect", self._manual)
        self.engine.dispose()  # connections made before now: replaced, with the automatic checkpoint off
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, pages in the log, pages copied), as SQLite reports them."""
        raw = self.engine.raw_connection()  # outside any transaction (the driver's autocommit)
        try:
            got = tuple(raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
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
