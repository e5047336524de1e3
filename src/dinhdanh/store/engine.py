"""Engines for the embedded default (SQLite in WAL mode) and PostgreSQL, and migrations.

Transactions are begun the same way on both back-ends (see ``store.unit_of_work``):

- SQLite: the driver's own implicit transactions are switched off (``isolation_level = None``) and
  every transaction is begun explicitly by the ``begin`` event: ``BEGIN IMMEDIATE`` for a unit of
  work that may write (``WRITE`` execution option, set by ``UnitOfWork.begin``): the write lock is
  taken when the transaction begins, never by upgrading a read, which SQLite refuses at once with
  ``SQLITE_BUSY`` when another writer got there first. Anything else gets a plain ``BEGIN`` (a
  read snapshot that takes no lock, so a read opened inside a writer's block cannot deadlock on it).
  Waits for another process's lock end after ``busy_timeout`` (``config.lock_timeout``).
  The pool hands out the connection returned last (LIFO): in WAL mode a connection drops its whole
  page cache when it begins a transaction after another connection wrote, so connections taken in
  turn (a FIFO pool: the event loop's group commits, the checkpointer's connection) each began
  with an empty cache and read every page again from the file (``pread``, 3.4% of the server's
  CPU under token refreshes; 0.4% in LIFO order, the loop's groups reusing the connection that
  wrote last).
- PostgreSQL: ``lock_timeout`` bounds every row or table lock wait, the pool's checkout wait is
  bounded the same, and read-only units run ``READ ONLY`` transactions. A pooled connection that
  rested more than a second is pinged before use (``REST_BEFORE_PING``).
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dinhdanh import config
from dinhdanh.config import database_url

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "dinhdanh_read_only"  # execution option of a read-only unit of work
WRITE = "dinhdanh_write"  # execution option of a unit of work that may write
NOWAIT = "dinhdanh_nowait"  # ... that begins only if it need not wait for the database's writer


_BUSY_TIMEOUT = "dinhdanh_busy_timeout_ms"


class WouldWait(Exception):
    """A unit asked to begin without waiting (``UnitOfWork.begin(wait=False)``) could not: the
    writer is another's (a thread of this process, or another process). Nothing has run."""


def _sqlite_connect(timeout_ms: int):
    def connect(dbapi_conn, record) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN by the driver: ours, in _sqlite_begin
        record.info[_BUSY_TIMEOUT] = timeout_ms  # what a BEGIN without waiting puts back
        cur = dbapi_conn.cursor()
        # first: the open itself may wait, for a hot journal (a writer killed midway) that another
        # process still holds locked or is playing back; it waits as long as any unit, not the driver's 5 s
        cur.execute(f"PRAGMA busy_timeout={timeout_ms}")
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (the WAL is written before
        # COMMIT returns); only an OS crash or power loss can lose the last commits. PostgreSQL is
        # the production store (synchronous_commit on).
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA cache_size=-65536")  # 64 MiB page cache
        # statement journals (a savepoint's, group commit's units: store.group_commit) in memory, not
        # in a temporary file opened, written and closed at every commit
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    return connect


def _sqlite_begin(conn: sa.Connection) -> None:
    """SQLite's BEGIN for the unit (see the module's doc), sent on the driver itself: through
    ``exec_driver_sql`` it cost a fifth of a token's unit of work. A driver error comes out as
    SQLAlchemy's, as from any statement."""
    options = conn.get_execution_options()
    driver = conn.connection.driver_connection
    if not options.get(WRITE) or options.get(READ_ONLY):  # (a read unit on an engine whose default is WRITE)
        _begin(conn, driver, "BEGIN")
    elif not options.get(NOWAIT):
        _begin(conn, driver, "BEGIN IMMEDIATE")
    else:  # the write lock now or never: no busy handler for this BEGIN (another process may hold it)
        driver.execute("PRAGMA busy_timeout=0")
        try:
            _begin(conn, driver, "BEGIN IMMEDIATE")
        except sa.exc.OperationalError as exc:
            if "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower():
                raise WouldWait("another process holds the database's write lock") from None
            raise
        finally:
            driver.execute(f"PRAGMA busy_timeout={int(conn.connection.info.get(_BUSY_TIMEOUT, 5000))}")


def _begin(conn: sa.Connection, driver, statement: str) -> None:
    try:
        driver.execute(statement)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise driver_error(conn.dialect, statement, (), exc) from exc


def driver_error(dialect, statement: str, params, exc: Exception) -> sa.exc.DBAPIError:
    """A driver's error from a statement sent on the driver itself, as SQLAlchemy would raise it
    (``OperationalError``, ``IntegrityError``...): what ``unit_of_work.translated`` recognises."""
    return sa.exc.DBAPIError.instance(statement, params, exc, dialect.loaded_dbapi.Error, dialect=dialect)


def _postgres_connect(timeout_ms: int):
    def connect(dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cur:
            # a lock wait (a row another transaction holds) ends in an error, not a hang
            cur.execute(f"SET lock_timeout = {timeout_ms}")
            # a session that left a transaction open (a killed client) gives its locks back
            cur.execute("SET idle_in_transaction_session_timeout = 60000")
        dbapi_conn.commit()

    return connect


def sqlite_path(url: sa.URL) -> Path | None:
    """The file behind a SQLite URL; None for another back-end, or a database in memory or named by a
    ``file:`` URI."""
    name = url.database
    if url.get_backend_name() != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def make_engine(url: str | None = None, **kwargs) -> sa.Engine:
    """An engine for ``url`` (see ``config.database_url``); SQLite files get WAL and foreign keys."""
    url = database_url(url)
    parsed = make_url(url)
    timeout = config.lock_timeout()
    # errors and logs must not carry PIDs or names: keep bound values out of exception messages
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        memory = not parsed.database or parsed.database == ":memory:"
        if not memory:
            from dinhdanh.store import files

            files.secure_sqlite(Path(parsed.database))
            # threads wait for the writer in the unit of work, holding a connection: enough of them
            kwargs.setdefault("pool_size", 8)
            kwargs.setdefault("max_overflow", 64)
            kwargs.setdefault("pool_timeout", timeout)
            kwargs.setdefault("pool_use_lifo", True)  # the connection with a warm page cache (module doc)
        engine = sa.create_engine(url, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_connect(int(timeout * 1000)))
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    size = config.pool_size()
    kwargs.setdefault("pool_size", size)
    kwargs.setdefault("max_overflow", 3 * size)
    kwargs.setdefault("pool_timeout", timeout)
    engine = sa.create_engine(url, **kwargs)
    sa.event.listen(engine, "connect", _postgres_connect(int(timeout * 1000)))
    if not kwargs.get("pool_pre_ping"):
        sa.event.listen(engine, "checkin", _rested_since)
        sa.event.listen(engine, "checkout", _pinged_after_rest(engine.dialect))
    return engine


# A pooled PostgreSQL connection is pinged before use only when it has rested in the pool this long
# (``pool_pre_ping`` pinged at every checkout: a round trip more for every unit of work, two of the
# fifteen of a filing). One used a moment ago met the server a moment ago; if the server went away
# since (a restart), the unit's first statement fails, it is answered 503 like every request while
# the server is down, and SQLAlchemy's disconnect handling replaces every connection of the pool
# from before the failure at its next checkout.
REST_BEFORE_PING = 1.0
_RETURNED = "dinhdanh_returned_at"


def _rested_since(_dbapi_conn, record) -> None:
    record.info[_RETURNED] = time.monotonic()


def _pinged_after_rest(dialect):
    def checkout(dbapi_conn, record, _proxy) -> None:
        returned = record.info.get(_RETURNED)
        if returned is None or time.monotonic() - returned < REST_BEFORE_PING:
            return  # just connected, or used a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError("the pooled connection no longer answers") from exc  # (pool: next one)

    return checkout


def alembic_config(engine: sa.Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (creates the schema on an empty database)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
