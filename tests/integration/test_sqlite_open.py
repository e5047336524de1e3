"""Opening a SQLite register whose last writer was killed midway (a hot journal, played back at the
next open) while another process still holds the file: the open waits for the lock as long as any
unit of work does (``config.lock_timeout``), then succeeds with the killed transaction undone, or
fails; neither sooner nor later."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dinhdanh.store.engine import make_engine
from tests.support import proc_stat

WRITER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE t SET x = x + 1")
    print("updated", flush=True)
    conn.execute("COMMIT")  # journal written, then waits for the reader's lock to write the file
""")


@pytest.fixture
def hot(tmp_path):
    """A register in rollback-journal mode whose writer was killed in its COMMIT (its journal hot),
    and a reader in another connection still holding its shared lock (released by the test)."""
    path = tmp_path / "hot.sqlite"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=DELETE")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10_000)])
    setup.commit()
    setup.close()
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (10_000,)  # the shared lock, held
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "updated"
        deadline = time.monotonic() + 10
        journal = tmp_path / "hot.sqlite-journal"
        while journal.stat().st_size < 4096 or _state(writer.pid) != "S":  # the journal out, waiting
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.05)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
    assert journal.exists()
    yield path, reader
    reader.close()


def _state(pid: int) -> str:
    return proc_stat(Path(f"/proc/{pid}/stat"))[0]


def _open(path) -> tuple[float, int | Exception]:
    engine = make_engine(f"sqlite:///{path}")
    began = time.monotonic()
    try:
        with engine.connect() as conn:
            got = conn.exec_driver_sql("SELECT sum(x) FROM t").scalar_one()
    except sa.exc.OperationalError as exc:
        got = exc
    finally:
        engine.dispose()
    return time.monotonic() - began, got


def test_the_open_waits_for_the_lock_and_plays_the_journal_back(hot, monkeypatch):
    path, reader = hot
    monkeypatch.setenv("DINHDANH_DB_LOCK_TIMEOUT", "20")
    threading.Timer(0.5, reader.execute, ("COMMIT",)).start()
    took, got = _open(path)
    assert got == sum(range(10_000))  # the killed update undone
    assert 0.3 < took < 10
    assert not (path.parent / "hot.sqlite-journal").exists()


def test_the_open_gives_up_after_the_configured_lock_timeout(hot, monkeypatch):
    path, reader = hot
    monkeypatch.setenv("DINHDANH_DB_LOCK_TIMEOUT", "0.5")
    took, got = _open(path)
    assert isinstance(got, sa.exc.OperationalError) and "locked" in str(got.orig)
    assert 0.4 < took < 3  # the configured wait, not the driver's own 5 s
    reader.execute("COMMIT")
    monkeypatch.setenv("DINHDANH_DB_LOCK_TIMEOUT", "5")
    assert _open(path)[1] == sum(range(10_000))
