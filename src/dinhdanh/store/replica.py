"""Reads on a streaming replica, writes on the primary, and never an answer from data older than
the reader may see.

A PostgreSQL hot standby replays the primary's WAL; a commit is visible there once its commit
record is replayed. The freshness of the replica is therefore measured in WAL positions (LSNs),
not in time: ``now() - pg_last_xact_replay_timestamp()`` grows while the primary is idle although
nothing is missing, and says nothing when the standby is a few transactions behind a busy primary.

``ReplicaRouter`` holds the replica's engine and decides, for each read unit, where it runs:

- **The probe** (at most every ``refresh`` seconds, 0.5 by default, in whichever thread needs it;
  never two at once) reads the primary's ``pg_current_wal_flush_lsn()`` and then the replica's
  ``pg_last_wal_replay_lsn()``. Every commit acknowledged before the primary's position was read
  lies below it (``synchronous_commit`` on, the platform's setting: the commit record is flushed
  before the client hears of it), and the flushed WAL is what the standby is sent (the write or
  insert position may be ahead of it for a while, with records no standby can have yet). So once the replica's replay position reaches a
  sampled primary position, the replica holds every commit acknowledged before that sample was
  taken: ``caught_up_at``. Its **staleness** is ``now - caught_up_at``, an upper bound on how old
  the newest commit it may miss is; this is the lag exported as a metric
  (``dinhdanh_replica_lag_seconds``, ``app.state.replica_lag``). When the primary is idle the
  replica is caught up at every probe and the staleness stays below ``refresh``.
- **The bound.** A read goes to the replica only while its staleness is at most ``max_lag``
  (``DINHDANH_REPLICA_MAX_LAG``, 1 s by default); above it (replay paused, a slow or broken
  standby, the replica unreachable), reads go to the primary. So a read served by the replica
  misses no commit acknowledged more than ``max_lag`` seconds before it, whichever process made it.
- **Read your writes** (this process). Every write unit of the app (``RoutedUnitOfWork.begin``)
  reads the primary's ``pg_current_wal_flush_lsn()`` on its own connection right after its commit
  and the router keeps the highest: a read unit of this process uses the replica only once the
  replica has replayed past it (checked on the replica connection itself, ``pg_last_wal_replay_lsn()``,
  in the read's own unit when the probe's figure is not enough, waiting up to 20 ms for it to get
  there, then falling back to the primary). A death recorded through this
  server is never answered from the replica before the replica has it. Writes outside the app's
  unit of work (the background loops' own units, the CLI) are another process's, as far as the
  rules go: the bound and the current reads cover them.
- **Current reads** (``read_unit(at_least=...)``): a request that must not miss any commit made
  before it began, in any process (a partner's verification: a death recorded a second ago on
  another worker decides the answer), passes the primary's ``pg_current_wal_flush_lsn()`` read in its
  own primary transaction (``primary_lsn``): the replica serves it only if it has replayed that far,
  otherwise the primary does. That costs one tiny statement on the primary, in a transaction the
  request opens anyway for its access-log entry.

A read on the replica that fails to connect falls back to the primary and keeps off the replica
until the next probe; a statement cancelled by the standby's recovery (a conflict) is a
``DatabaseBusy`` (503, try again), as any bounded wait.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import sqlalchemy as sa

from dinhdanh import config
from dinhdanh.store.engine import WRITE, make_engine
from dinhdanh.store.unit_of_work import DatabaseBusy, DatabaseUnavailable, UnitOfWork, translated

__all__ = ["ReplicaRouter", "RoutedUnitOfWork", "router_from_config", "parse_lsn", "REPLICA_READER"]

REFRESH = 0.5  # seconds between probes, at most
CATCH_UP_WAIT = 0.02  # a probe or a read that finds the replica just behind looks again for this long
_PRIMARY_LSN = "SELECT pg_current_wal_flush_lsn()::text"
_REPLICA_STATE = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"
_REPLAY_LSN = "SELECT pg_last_wal_replay_lsn()::text"
# Execution option of a primary unit whose reads went to the replica (web.deps.replica_unit): it writes
# the access log and its route's bookkeeping (token use, the telcos' ladder), nothing a replica-routed
# read looks at, so its commit does not move the read-your-writes mark (else every audited read would,
# and the next read would wait for the replica to replay the previous one's log entry).
REPLICA_READER = "dinhdanh_replica_reader"


def parse_lsn(text: str | None) -> int | None:
    """``'16/B374D848'`` as a number (the high and low 32 bits); None stays None."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class ReplicaRouter:
    """Where each read runs: the replica when it is fresh enough, the primary otherwise (module doc)."""

    def __init__(self, primary: sa.Engine, replica: sa.Engine, *, max_lag: float | None = None,
                 refresh: float = REFRESH, catch_up: float = CATCH_UP_WAIT,
                 clock: Callable[[], float] = time.monotonic):
        if primary.dialect.name != "postgresql" or replica.dialect.name != "postgresql":
            raise ValueError("a read replica needs PostgreSQL for both the primary and the replica")
        # every transaction on the standby READ ONLY, from the start: a connection handed back by a
        # read-only unit is otherwise reset with SET ... READ WRITE, which a standby refuses
        self.primary, self.replica = primary, replica.execution_options(postgresql_readonly=True)
        self._replica_engine = replica
        self.max_lag = config.replica_max_lag() if max_lag is None else max_lag
        self.refresh = refresh
        self.catch_up = catch_up  # how long a read waits for the replica to replay what it needs
        self.clock = clock
        self.primary_uow = UnitOfWork(primary)
        self.replica_uow = UnitOfWork(replica)
        self._lock = threading.Lock()  # guards the figures below
        self._probing = threading.Lock()  # one probe at a time
        self._probed_at: float | None = None
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=64)  # (time, primary LSN)
        self._caught_up_at: float | None = None
        self._replayed = 0  # the replica's replay position, as last seen
        self._primary_lsn = 0  # the primary's position at the last probe
        self._replica_ok = False
        self._written = 0  # the highest LSN after a commit of this process (read your writes)
        self._avoid_until = 0.0  # after a failure to note a write: the primary only, until then
        self.served = {"replica": 0, "primary": 0}  # read units, by where they ran

    # ----------------------------------------------------------------------------------- the probe

    def probe(self, *, force: bool = False) -> None:
        """Measure the replica against the primary, unless done less than ``refresh`` ago."""
        now = self.clock()
        if not force and self._probed_at is not None and now - self._probed_at < self.refresh:
            return
        if not self._probing.acquire(blocking=force):
            return  # another thread is measuring: its figures will do
        try:
            self._probe()
        finally:
            self._probing.release()

    def _probe(self) -> None:
        sampled_at = self.clock()
        try:
            with self.primary.connect() as conn:
                primary_lsn = parse_lsn(conn.exec_driver_sql(_PRIMARY_LSN).scalar())
        except Exception:
            with self._lock:
                self._probed_at = self.clock()
            return  # the primary's own trouble is the requests' to report; the figures stay
        replayed, in_recovery = None, False
        try:
            with self.replica.connect() as conn:
                deadline = self.clock() + CATCH_UP_WAIT
                while True:
                    in_recovery, text = conn.exec_driver_sql(_REPLICA_STATE).one()
                    replayed = parse_lsn(text)
                    if replayed is None or replayed >= primary_lsn or self.clock() >= deadline:
                        break
                    conn.rollback()  # a new snapshot for the next look
                    time.sleep(0.002)
        except Exception:
            replayed = None
        with self._lock:
            self._probed_at = self.clock()
            self._primary_lsn = max(self._primary_lsn, primary_lsn)
            self._samples.append((sampled_at, primary_lsn))
            self._replica_ok = bool(in_recovery) and replayed is not None
            if replayed is None:
                return
            self._replayed = max(self._replayed, replayed)
            for at, lsn in reversed(self._samples):  # the newest sample the replica has passed
                if lsn <= self._replayed:
                    if self._caught_up_at is None or at > self._caught_up_at:
                        self._caught_up_at = at
                    break

    # --------------------------------------------------------------------------- what it measures

    def lag(self) -> float | None:
        """The replica's staleness in seconds (module doc): every commit acknowledged more than this
        long ago is on the replica. None before the replica was ever seen caught up."""
        self.probe()
        with self._lock:
            if self._caught_up_at is None:
                return None
            return max(0.0, self.clock() - self._caught_up_at)

    def lag_bytes(self) -> int | None:
        """How many bytes of WAL the replica had still to replay at the last probe."""
        self.probe()
        with self._lock:
            return max(0, self._primary_lsn - self._replayed) if self._replica_ok else None

    def fresh(self) -> bool:
        """Whether reads may go to the replica now (reachable, in recovery, staleness <= max_lag)."""
        lag = self.lag()
        with self._lock:
            return self._replica_ok and lag is not None and lag <= self.max_lag and self.clock() >= self._avoid_until

    # ------------------------------------------------------------------------------------- writes

    def wrote(self, lsn: int | None) -> None:
        """A write unit of this process committed; ``lsn`` is the primary's position read after the
        commit (None: it could not be read, so the replica is avoided for ``max_lag`` seconds)."""
        with self._lock:
            if lsn is None:
                self._avoid_until = max(self._avoid_until, self.clock() + self.max_lag)
            elif lsn > self._written:
                self._written = lsn

    @staticmethod
    def primary_lsn(conn: sa.Connection) -> int:
        """The primary's WAL position, read on ``conn`` (a connection to the primary): every commit
        acknowledged before this call is below it."""
        return parse_lsn(conn.exec_driver_sql(_PRIMARY_LSN).scalar())

    # -------------------------------------------------------------------------------------- reads

    @contextmanager
    def read_unit(self, *, at_least: int | None = None) -> Iterator[sa.Connection]:
        """A read-only unit on the replica when it is fresh enough and has replayed past this
        process's writes and ``at_least``; on the primary otherwise."""
        with ExitStack() as stack:
            conn = self._replica_unit(stack, at_least)
            where = "replica"
            if conn is None:
                conn, where = stack.enter_context(self.primary_uow.read()), "primary"
            with self._lock:
                self.served[where] += 1
            conn.info["dinhdanh_served_by"] = where
            yield conn

    def _replica_unit(self, outer: ExitStack, at_least: int | None) -> sa.Connection | None:
        if not self.fresh():
            return None
        with self._lock:
            needed, replayed = max(self._written, at_least or 0), self._replayed
        stack = ExitStack()
        try:
            conn = stack.enter_context(self.replica_uow.read())
            if replayed < needed and not self._replays_to(conn, needed):
                stack.close()
                return None
        except (DatabaseUnavailable, DatabaseBusy):
            stack.close()
            with self._lock:
                self._replica_ok = False  # until the next probe finds it again
            return None
        except BaseException:
            stack.close()
            raise
        outer.enter_context(stack)
        return conn

    def _replays_to(self, conn: sa.Connection, needed: int) -> bool:
        """Whether the replica behind ``conn`` has replayed up to ``needed``, waiting for it at most
        ``catch_up`` seconds: a commit of a moment ago is usually replayed within a millisecond or
        two on a healthy standby, and waiting that long is cheaper than loading the primary. The
        unit is READ COMMITTED: its next statements see what was replayed by then."""
        deadline = self.clock() + self.catch_up
        while True:
            replayed = parse_lsn(conn.exec_driver_sql(_REPLAY_LSN).scalar()) or 0
            with self._lock:
                self._replayed = max(self._replayed, replayed)
            if replayed >= needed:
                return True
            if self.clock() >= deadline:
                return False
            time.sleep(0.001)

    # -------------------------------------------------------------------------------- the app's

    def unit_of_work(self) -> RoutedUnitOfWork:
        """The app's unit of work: writes on the primary, each noted for read-your-writes."""
        return RoutedUnitOfWork(self)

    def close(self) -> None:
        self._replica_engine.dispose()


class RoutedUnitOfWork(UnitOfWork):
    """``UnitOfWork`` on the primary whose write units tell the router where their commit ended.
    Its ``read()`` stays on the primary: routes choose the replica explicitly (``web.deps``)."""

    def __init__(self, router: ReplicaRouter):
        super().__init__(router.primary)
        self.router = router

    @contextmanager
    def begin(self, *, wait: bool = True) -> Iterator[sa.Connection]:
        """A writing unit on the primary (PostgreSQL: ``wait`` changes nothing, as ``UnitOfWork``'s)."""
        lsn = None
        with translated(), self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn
            if conn.get_execution_options().get(REPLICA_READER):
                return  # an audited read: its own writes are not what replica reads look for
            try:  # committed: where the primary's WAL stands now is past the commit record
                lsn = ReplicaRouter.primary_lsn(conn)
                conn.rollback()
            except Exception:
                lsn = None  # the commit stands; the replica is avoided for a while instead
        self.router.wrote(lsn)


def router_from_config(primary: sa.Engine) -> ReplicaRouter | None:
    """The router for ``DINHDANH_REPLICA_URL`` when it is set (PostgreSQL primary only), else None."""
    url = config.replica_url()
    if url is None:
        return None
    if primary.dialect.name != "postgresql":
        raise ValueError("DINHDANH_REPLICA_URL is set but the primary is not PostgreSQL")
    replica = make_engine(url, connect_args={"connect_timeout": 2})
    return ReplicaRouter(primary, replica)
