"""SQLite's WAL checkpoints beside the serving (store.checkpoint): the app's connections stop
checkpointing in their commits, the thread keeps the log checkpointed, everything committed stays."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from dinhdanh.store.checkpoint import Checkpointer, applies
from dinhdanh.store.engine import make_engine

ROWS = sa.table("t", sa.column("id"), sa.column("v"))


def _autocheckpoint(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()


def _log_pages(engine: sa.Engine) -> tuple[int, int]:
    """(pages in the log, pages of it in the database file), by one more passive checkpoint."""
    raw = engine.raw_connection()
    try:
        return tuple(raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())[1:]
    finally:
        raw.close()


def test_only_sqlite_files_are_checkpointed_beside(tmp_path):
    assert applies(make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}"))
    assert not applies(make_engine("sqlite://"))


def test_the_thread_checkpoints_what_commits_no_longer_do(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    assert _autocheckpoint(engine) == 1000  # SQLite's own, in the commit that crosses 1,000 pages
    checkpoints = Checkpointer(engine, every=0.05)
    checkpoints.start()
    try:
        assert _autocheckpoint(engine) == 0  # the app's connections: none in their commits
        for i in range(300):  # about 3,000 pages of log: three automatic checkpoints' worth
            with engine.begin() as conn:
                conn.execute(ROWS.insert(), [{"id": i * 100 + j, "v": "x" * 1000} for j in range(40)])
        deadline = time.monotonic() + 10
        while checkpoints.runs < 3:
            assert time.monotonic() < deadline, "no checkpoint from the thread"
            time.sleep(0.02)
    finally:
        checkpoints.close()
    logged, copied = _log_pages(engine)
    assert logged == copied  # all of it in the database file
    assert _autocheckpoint(engine) == 1000  # closed: the engine checkpoints as SQLite does again
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar_one() == 12_000
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


def test_a_served_app_checkpoints_beside_and_stops_with_it(tmp_path):
    from fastapi.testclient import TestClient

    from dinhdanh.store.engine import upgrade
    from dinhdanh.web.app import create_app

    engine = make_engine(f"sqlite:///{tmp_path / 'app.sqlite'}")
    upgrade(engine)
    app = create_app(engine)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert _autocheckpoint(engine) == 0
    assert _autocheckpoint(engine) == 1000


def test_a_failing_checkpoint_is_tried_again(tmp_path, caplog):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    checkpoints = Checkpointer(engine, every=0.01)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("PRAGMA wal_checkpoint", {}, Exception("database is locked"))
        return (0, 0, 0)

    checkpoints.checkpoint = flaky
    checkpoints.start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        checkpoints.checkpoint = Checkpointer.checkpoint.__get__(checkpoints)
        checkpoints.close()
    assert "WAL checkpoint failed" in caplog.text


def test_the_log_starts_over_under_a_steady_stream_of_commits(tmp_path, monkeypatch):
    """Commits that never pause (a writer thread) and reads beside them: a passive checkpoint alone
    never leaves the log wholly copied at the moment a writer begins, so SQLite would append to it
    for ever. The restart after it keeps the log short, and everything committed stays."""
    from dinhdanh.store import checkpoint

    monkeypatch.setattr(checkpoint, "RESTART_PAGES", 100)
    monkeypatch.setattr(checkpoint, "LOG_BYTES", 1 << 20)
    path = tmp_path / "r.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    checkpoints = Checkpointer(engine, every=0.05)
    checkpoints.start()
    stop, largest = threading.Event(), [0]
    rows = (40 << 20) // 6000 * 2  # 40 MB of log, forty times the size it is held to

    def write() -> None:
        for i in range(0, rows, 2):  # about three pages of log a commit
            with engine.begin() as conn:
                conn.execute(ROWS.insert(), [{"id": i + j, "v": "x" * 3000} for j in range(2)])
        stop.set()

    def read() -> None:
        while not stop.is_set():
            with engine.connect() as conn:
                conn.execute(sa.select(sa.func.max(ROWS.c.id))).scalar()
            largest[0] = max(largest[0], Path(f"{path}-wal").stat().st_size)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive()
    finally:
        stop.set()
        checkpoints.close()
    # Without restarts the log holds all 40 MB. A restart is late when the checkpointing thread
    # waits for a core or a reader: ~6 MB here with the machine's cores busy, 15 MB seen on CI.
    assert largest[0] < 20 << 20
    assert checkpoints.restarts >= 5
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar_one() == rows
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"


def test_a_long_reader_does_not_make_every_tick_hold_the_writer(tmp_path, monkeypatch):
    """A reader that keeps an old snapshot (an export, a backup) stops the log from starting over
    until it ends. The restart is then not tried: tried, it would hold the write lock for its whole
    wait (0.1 s) at every tick, and every commit with it. Once the reader is gone the log starts
    over again."""
    from dinhdanh.store import checkpoint

    monkeypatch.setattr(checkpoint, "RESTART_PAGES", 20)
    path = tmp_path / "r.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute(ROWS.insert(), [{"id": i, "v": "x" * 3000} for i in range(50)])
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (50,)  # its snapshot, held
    checkpoints = Checkpointer(engine, every=0.02)
    checkpoints.start()
    waits, next_id = [], 50
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            began = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(ROWS.insert(), [{"id": next_id, "v": "x" * 3000}])
            waits.append(time.perf_counter() - began)
            next_id += 1
            time.sleep(0.002)
        assert checkpoints.runs >= 10 and checkpoints.restarts == 0
        assert sum(w > 0.09 for w in waits) <= 2, sorted(waits)[-5:]  # a restart waiting would hold ~0.1 s a tick
        reader.execute("COMMIT")
        deadline = time.monotonic() + 10
        while checkpoints.restarts == 0:  # the reader gone: the log starts over again
            with engine.begin() as conn:
                conn.execute(ROWS.insert(), [{"id": next_id, "v": "x" * 3000}])
            next_id += 1
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        reader.close()
        checkpoints.close()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ROWS)).scalar_one() == next_id


def _ticked_by_hand(tmp_path, monkeypatch) -> tuple[Path, sa.Engine, Checkpointer]:
    """A register with table ``t``, and a checkpointer started whose ticks the test runs itself
    (``checkpoint()``); a log of more than 20 pages is started over."""
    from dinhdanh.store import checkpoint

    monkeypatch.setattr(checkpoint, "RESTART_PAGES", 20)
    path = tmp_path / "r.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    checkpoints = Checkpointer(engine, every=3600)
    checkpoints.start()
    return path, engine, checkpoints


def test_a_restart_that_gave_up_is_not_tried_again_before_the_log_grows(tmp_path, monkeypatch):
    """A reader that began within the last tick lets the restart be tried (it waits for the
    reader); if that reader stays and nothing is written, the ticks after do not try again: each
    would hold the write lock for the whole wait."""
    from dinhdanh.store import checkpoint

    path, engine, checkpoints = _ticked_by_hand(tmp_path, monkeypatch)
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        assert checkpoints.checkpoint()[0] == 0  # the first tick: what the log holds, noted
        with engine.begin() as conn:
            conn.execute(ROWS.insert(), [{"id": i, "v": "x" * 3000} for i in range(50)])
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (50,)  # at the log's end
        began = time.perf_counter()
        assert checkpoints.checkpoint()[0] == 1  # tried: waited for the reader, then gave up
        assert time.perf_counter() - began >= checkpoint.RESTART_WAIT_MS / 1000 * 0.9
        for _ in range(3):
            began = time.perf_counter()
            busy, logged, copied = checkpoints.checkpoint()
            assert (busy, logged == copied) == (0, True)  # the passive one only: nothing waited for
            assert time.perf_counter() - began < 0.05
        assert checkpoints.restarts == 0
        reader.execute("COMMIT")  # the reader gone, the copied log is written from its beginning
        with engine.begin() as conn:
            conn.execute(ROWS.insert(), [{"id": 50, "v": "x"}])
        assert _log_pages(engine)[0] <= 2
    finally:
        reader.close()
        checkpoints.close()


def test_a_reader_that_began_within_the_tick_is_waited_for(tmp_path, monkeypatch):
    """Under commits with reads beside them the passive checkpoint seldom copies the whole log: a
    read that began before the last commit holds it back. Such a reader is recent (it began since
    the previous tick), so the restart is tried and waits for it to end."""
    path, engine, checkpoints = _ticked_by_hand(tmp_path, monkeypatch)
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        checkpoints.checkpoint()  # the previous tick
        with engine.begin() as conn:
            conn.execute(ROWS.insert(), [{"id": i, "v": "x" * 3000} for i in range(30)])
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (30,)
        with engine.begin() as conn:  # a commit after the reader's snapshot
            conn.execute(ROWS.insert(), [{"id": 30 + i, "v": "x" * 3000} for i in range(10)])
        ends = threading.Timer(0.02, reader.execute, ("COMMIT",))
        ends.start()
        assert checkpoints.checkpoint()[0] == 0  # waited for the reader, then restarted
        ends.join()
        assert checkpoints.restarts == 1
    finally:
        reader.close()
        checkpoints.close()


def test_the_restart_queues_for_the_process_s_writer_as_its_units_do(tmp_path, monkeypatch):
    """The restart takes this process's writer lock (``unit_of_work.writer_of``) first: the units
    that wait meanwhile are handed the writer the moment it ends, instead of polling SQLite's lock
    with growing sleeps. While a unit holds the writer past the restart's wait, the tick leaves the
    restart for later without touching SQLite's lock."""
    from dinhdanh.store import checkpoint
    from dinhdanh.store.unit_of_work import UnitOfWork, writer_of

    _, engine, checkpoints = _ticked_by_hand(tmp_path, monkeypatch)
    uow = UnitOfWork(engine)
    try:
        checkpoints.checkpoint()  # the previous tick
        with uow.begin() as conn:
            conn.execute(ROWS.insert(), [{"id": i, "v": "x" * 3000} for i in range(30)])
        held, release = threading.Event(), threading.Event()

        def hold():
            with uow.begin():
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(10)
        began = time.perf_counter()
        assert checkpoints.checkpoint()[0] == 0  # the passive one's report: the restart not tried
        assert time.perf_counter() - began >= checkpoint.RESTART_WAIT_MS / 1000 * 0.9
        release.set()
        holder.join()
        lock = writer_of(engine)
        waits = []
        original = lock.acquire

        def noted(timeout=-1):
            waits.append(timeout)
            return original(timeout)

        for tick in range(2):  # the unit's writes, then a tick (twice: SQLite may start the log over itself)
            with uow.begin() as conn:
                conn.execute(ROWS.insert(), [{"id": 100 * (tick + 1) + i, "v": "x" * 3000} for i in range(30)])
            lock.acquire = noted  # the tick's own calls only
            try:
                assert checkpoints.checkpoint()[0] == 0
            finally:
                del lock.acquire
        assert checkpoints.restarts >= 1 and len(waits) == checkpoints.restarts  # each restart took the writer
        assert lock.try_acquire()  # and gave it back
        lock.release()
    finally:
        checkpoints.close()


def test_a_restart_that_fails_gives_the_process_s_writer_back(tmp_path, monkeypatch):
    """Whatever fails while the restart holds the process's writer lock (here the driver, at its
    first statement), the lock is released: every unit of this process would wait for it for ever."""
    from dinhdanh.store.unit_of_work import UnitOfWork, writer_of

    _, engine, checkpoints = _ticked_by_hand(tmp_path, monkeypatch)
    uow = UnitOfWork(engine)

    class Failing:  # the driver's connection, failing where the restart begins
        def __init__(self, driver):
            self.driver = driver

        def execute(self, sql):
            if sql == "PRAGMA busy_timeout":
                raise sqlite3.OperationalError("disk I/O error")
            return self.driver.execute(sql)

    class Raw:
        def __init__(self, raw):
            self.raw, self.driver_connection = raw, Failing(raw.driver_connection)

        def close(self):
            self.raw.close()

    try:
        checkpoints.checkpoint()  # the previous tick
        with uow.begin() as conn:
            conn.execute(ROWS.insert(), [{"id": i, "v": "x" * 3000} for i in range(30)])
        raw_connection = engine.raw_connection
        monkeypatch.setattr(engine, "raw_connection", lambda: Raw(raw_connection()))
        try:
            checkpoints.checkpoint()
        except sqlite3.OperationalError:
            pass
        else:
            raise AssertionError("the restart was not tried")
        monkeypatch.setattr(engine, "raw_connection", raw_connection)
        lock = writer_of(engine)
        assert lock.try_acquire()  # given back
        lock.release()
        with uow.begin() as conn:  # and the units go on
            conn.execute(ROWS.insert(), [{"id": 30, "v": "x"}])
    finally:
        checkpoints.close()
