"""Per-partner rate limits and daily quotas.

The rate limit is a token bucket per key, refilled continuously at ``rate`` per minute, holding
at most ``rate`` tokens (a partner may burst up to one minute's allowance). The quota is a
counter per key and day: the day is Vietnam's (UTC+7, no daylight saving), so every partner's
quota resets at midnight in Hanoi (``vietnam_day_end``).

``RateLimiter`` is the interface, and ``limiter_for(engine)`` picks the one the app uses:
``RedisLimiter`` when ``DINHDANH_REDIS_URL`` is set, else ``DatabaseLimiter``. ``RedisLimiter``
keeps them in Redis so that several API workers share them: one hash per key with ``tokens`` and
``at``, updated by a Lua script (atomic, with an expiry), and one counter per key and day (INCR +
EXPIREAT). ``DatabaseLimiter`` keeps them in the database (``limit_buckets``, ``limit_counters``):
each take or count is one upsert with RETURNING in a short transaction of its own, so concurrent
requests and several processes share them and a restart gives no one more; for large limits a
process leases several units per statement (see the class); past days are swept. ``MemoryLimiter`` keeps them in this process (unit tests). When the store cannot be reached
the limiter raises ``LimiterUnavailable`` (the API answers 503: a national system does not serve
partners whose limits it cannot enforce).
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import sqlalchemy as sa

from dinhdanh.store.base import VIETNAM

log = logging.getLogger("dinhdanh.exchange")


def vietnam_day_end(now: float) -> int:
    """The Unix time of the next midnight in Vietnam (UTC+7) after ``now`` (Unix seconds).

    >>> def utc(*a): return dt.datetime(*a, tzinfo=dt.UTC).timestamp()
    >>> vietnam_day_end(utc(2026, 12, 4, 16, 59, 59)) == utc(2026, 12, 4, 17, 0)
    True
    >>> vietnam_day_end(utc(2026, 12, 4, 17, 0)) == utc(2026, 12, 5, 17, 0)
    True
    """
    local = dt.datetime.fromtimestamp(now, VIETNAM)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=VIETNAM)
    return int(midnight.timestamp())


class LimiterUnavailable(Exception):
    """The shared store of the limits cannot be reached: limits cannot be enforced."""


class RateLimiter(Protocol):
    def take(self, key: str, rate_per_minute: int) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is available."""

    def count(self, key: str, limit: int, window_end: int) -> float:
        """Count one request for ``key`` in the window ending at ``window_end`` (Unix seconds):
        0.0 while at most ``limit`` were counted in it, else the seconds until it ends."""

    def now(self) -> float:
        """The wall-clock time (Unix seconds) this limiter counts by (injectable in tests)."""


class MemoryLimiter:
    """In-process token buckets and counters; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000,
                 wall: Callable[[], float] = time.time):
        self._clock = clock
        self._wall = wall
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._counters: dict[str, tuple[int, int]] = {}  # key -> (window_end, count)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._wall()

    def count(self, key: str, limit: int, window_end: int) -> float:
        now = self._wall()
        with self._lock:
            end, n = self._counters.get(key, (window_end, 0))
            if end != window_end or now >= end:
                n = 0  # a new window (day)
            if key not in self._counters and len(self._counters) >= self._max_keys:
                self._counters = {k: v for k, v in self._counters.items() if v[0] > now}  # drop past days
            self._counters[key] = (window_end, n + 1)
        return 0.0 if n + 1 <= limit else max(0.0, window_end - now)

    def take(self, key: str, rate_per_minute: int) -> float:
        if rate_per_minute <= 0:
            return math.inf
        now = self._clock()
        per_second = rate_per_minute / 60.0
        with self._lock:
            tokens, at = self._buckets.get(key, (float(rate_per_minute), now))
            tokens = min(float(rate_per_minute), tokens + (now - at) * per_second)
            if tokens >= 1.0:
                self._store(key, (tokens - 1.0, now))
                return 0.0
            self._store(key, (tokens, now))
            return (1.0 - tokens) / per_second

    def _store(self, key: str, value: tuple[float, float]) -> None:
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._buckets.clear()  # a full reset is safe: every bucket restarts full
        self._buckets[key] = value


def retry_after(seconds: float) -> str:
    """The Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


# KEYS[1] the bucket; ARGV: rate per minute, now (seconds). Returns the wait as text (Lua numbers
# come back to the client as integers). The hash expires once it would be full again anyway.
_TAKE = """
local rate = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local per_second = rate / 60.0
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1])
local at = tonumber(held[2])
if tokens == nil or at == nil then
  tokens = rate
  at = now
end
local elapsed = now - at
if elapsed < 0 then elapsed = 0 end
tokens = math.min(rate, tokens + elapsed * per_second)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / per_second
end
if now > at then at = now end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('EXPIRE', KEYS[1], math.ceil(60 * (rate - tokens) / rate) + 60)
return string.format('%.17g', wait)
"""


class RedisLimiter:
    """The same buckets and counters in Redis, shared by every worker that uses the same server
    and ``prefix``. Raises ``LimiterUnavailable`` when Redis does not answer (within ``timeout``)."""

    def __init__(self, url: str, *, prefix: str = "dinhdanh:limits:", timeout: float = 0.5,
                 wall: Callable[[], float] = time.time):
        import redis

        self._errors = (redis.exceptions.RedisError, OSError)
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._take = self._redis.register_script(_TAKE)
        self._prefix = prefix
        self._wall = wall

    def now(self) -> float:
        return self._wall()

    def take(self, key: str, rate_per_minute: int) -> float:
        if rate_per_minute <= 0:
            return math.inf
        try:
            wait = self._take(keys=[f"{self._prefix}bucket:{key}"], args=[rate_per_minute, repr(self._wall())])
        except self._errors as exc:
            raise LimiterUnavailable(f"the rate-limit store does not answer ({type(exc).__name__})") from None
        return float(wait)

    def count(self, key: str, limit: int, window_end: int) -> float:
        name = f"{self._prefix}quota:{key}:{window_end}"
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expireat(name, window_end + 60)
                n, _ = pipe.execute()
        except self._errors as exc:
            raise LimiterUnavailable(f"the rate-limit store does not answer ({type(exc).__name__})") from None
        return 0.0 if n <= limit else max(0.0, window_end - self._wall())

    def close(self) -> None:
        self._redis.close()


def lease_size(limit: int, per_block: int, most: int) -> int:
    """How many units a process takes from the database at once for a limit of ``limit``: one for
    small limits (exact to the unit), at most ``most``, so that what a process holds is a small
    share of the limit.

    >>> lease_size(50, 2000, 64), lease_size(1_000_000, 2000, 64), lease_size(6000, 600, 32)
    (1, 64, 10)
    """
    return max(1, min(most, limit // per_block))


class DatabaseLimiter:
    """The same buckets and counters in the database, shared by every process that uses it.

    Each database ``take`` and ``count`` is one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in
    a short transaction of its own, never the caller's: the answer holds whatever runs at the same
    time, and is kept whatever becomes of the request. On PostgreSQL the rows are in the register's
    database. On SQLite a request's transaction holds the whole database's write lock from its
    start, and partners are limited inside it: the counters live in a companion file beside the
    register (``<name>.limits.sqlite``, the same tables), whose lock is held for one statement.
    Rows of past days, and buckets idle for a day (a bucket left alone refills: deleting it is the
    same), are swept every ``sweep_every`` seconds.

    Leases: for a large limit a process takes several units at once and spends them from memory,
    so that a busy partner costs one statement per lease, not per request (a second transaction per
    request was most of the limiter's cost on the verification path). Quota units are counted in
    the database when leased, so no process ever serves more than the day's quota, a restart never
    gives a partner more, and at worst a process that dies loses its unspent units
    (``QUOTA_LEASE``: at most 64, one per 2,000 of the quota; ``close`` gives them back). Tokens
    are leased likewise (``RATE_LEASE``: one per 600 a minute, at most 32) and kept for at most
    ``TOKEN_HOLD`` seconds: a process may run ahead of the bucket by at most one lease. Limits
    under 4,000 a day or 1,200 a minute lease one unit: exact.
    """

    QUOTA_LEASE = (2000, 64)  # one unit of lease per 2,000 of the quota, at most 64
    RATE_LEASE = (600, 32)  # one token of lease per 600 a minute, at most 32
    TOKEN_HOLD = 1.0  # seconds a leased token may be spent

    def __init__(self, engine: sa.Engine, *, wall: Callable[[], float] = time.time, sweep_every: float = 600.0):
        from dinhdanh.store.unit_of_work import UnitOfWork

        self._engine = _counters_engine(engine)
        self._units = UnitOfWork(self._engine)  # threads of a process take turns for SQLite's lock
        self._wall = wall
        self._sweep_every = sweep_every
        self._swept = -math.inf
        self._take, self._count, self._give_back = _limit_statements(self._engine.dialect.name)
        self._held = threading.Lock()
        self._tokens: dict[str, tuple[int, float]] = {}  # key -> (leased tokens left, spend before)
        self._units_left: dict[tuple[str, int], int] = {}  # (key, window_end) -> leased quota units left

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def now(self) -> float:
        return self._wall()

    def _run(self, statement, params: dict):
        from dinhdanh.store.unit_of_work import DatabaseBusy, DatabaseUnavailable

        try:
            with self._units.begin() as conn:
                return conn.execute(statement, params).one()
        except (DatabaseBusy, DatabaseUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise LimiterUnavailable(f"the rate-limit store does not answer ({type(exc).__name__})") from None

    def take(self, key: str, rate_per_minute: int) -> float:
        if rate_per_minute <= 0:
            return math.inf
        now, per_second = self._wall(), rate_per_minute / 60.0
        lease = lease_size(rate_per_minute, *self.RATE_LEASE)
        if lease > 1:
            with self._held:
                left, before = self._tokens.get(key, (0, 0.0))
                if left > 0 and now < before:
                    self._tokens[key] = (left - 1, before)
                    return 0.0
            params = {"key": key, "now": now, "rate": float(rate_per_minute), "per_second": per_second,
                      "n": float(lease)}
            _, granted = self._run(self._take, params)
            if granted:
                with self._held:  # threads that leased at the same time keep all their tokens
                    left, before = self._tokens.get(key, (0, 0.0))
                    self._tokens[key] = ((left if now < before else 0) + lease - 1, now + self.TOKEN_HOLD)
                self._sweep(now)
                return 0.0
        left, granted = self._run(self._take, {"key": key, "now": now, "rate": float(rate_per_minute),
                                               "per_second": per_second, "n": 1.0})
        self._sweep(now)
        return 0.0 if granted else (1.0 - left) / per_second

    def count(self, key: str, limit: int, window_end: int) -> float:
        lease = lease_size(limit, *self.QUOTA_LEASE)
        with self._held:
            left = self._units_left.get((key, window_end), 0)
            if left > 0:
                self._units_left[(key, window_end)] = left - 1
                return 0.0
        (n,) = self._run(self._count, {"key": key, "window_end": window_end, "n": lease})
        granted = max(0, min(lease, limit - (n - lease)))  # the units of this lease within the quota
        now = self._wall()
        self._sweep(now)
        if granted == 0:
            return max(0.0, window_end - now)
        if granted > 1:
            with self._held:
                self._units_left[(key, window_end)] = self._units_left.get((key, window_end), 0) + granted - 1
        return 0.0

    def close(self) -> None:
        """Give back the quota units leased and not spent (a server that stops cleanly)."""
        with self._held:
            unspent, self._units_left = self._units_left, {}
            self._tokens = {}
        for (key, window_end), n in unspent.items():
            if n > 0 and window_end > self._wall():
                try:
                    with self._units.begin() as conn:
                        conn.execute(self._give_back, {"counter": key, "end": window_end, "n": n})
                except Exception:  # noqa: BLE001 - units not given back stay counted: never more than the quota
                    log.warning("could not give back %d leased quota units", n)

    def sweep(self, now: float | None = None) -> None:
        """Delete the counters of past days and the buckets idle for a day."""
        from dinhdanh.exchange.tables import limit_buckets, limit_counters

        now = self._wall() if now is None else now
        self._swept = now
        with self._held:
            self._units_left = {k: v for k, v in self._units_left.items() if k[1] > now}
        with self._units.begin() as conn:
            conn.execute(limit_counters.delete().where(limit_counters.c.window_end < now - 60))
            conn.execute(limit_buckets.delete().where(limit_buckets.c.at < now - 86400))

    def _sweep(self, now: float) -> None:
        if now - self._swept >= self._sweep_every:
            try:
                self.sweep(now)
            except Exception:  # noqa: BLE001 - a sweep that fails is done by the next one
                pass


def _limit_statements(dialect: str):
    """The bucket's take of ``n`` tokens (all or none), the day's count of ``n`` units, and the
    give-back of unspent units: upserts with RETURNING, built once with bind parameters (building
    them cost more than running them)."""
    from dinhdanh.exchange.tables import limit_buckets as b
    from dinhdanh.exchange.tables import limit_counters as c

    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = sa.bindparam("now", type_=sa.Double())
    rate = sa.bindparam("rate", type_=sa.Double())
    per_second = sa.bindparam("per_second", type_=sa.Double())
    n = sa.bindparam("n", type_=sa.Double())
    later = now > b.c.at
    refilled = b.c.tokens + sa.case((later, now - b.c.at), else_=0.0) * per_second
    tokens = sa.case((refilled > rate, rate), else_=refilled)
    take = insert(b).values(key=sa.bindparam("key"), tokens=rate - n, at=now, granted=True)
    take = take.on_conflict_do_update(index_elements=[b.c.key], set_={
        "tokens": sa.case((tokens >= n, tokens - n), else_=tokens),
        "at": sa.case((later, now), else_=b.c.at),
        "granted": tokens >= n,
    }).returning(b.c.tokens, b.c.granted)
    units = sa.bindparam("n", type_=sa.Integer())
    count = insert(c).values(key=sa.bindparam("key"), window_end=sa.bindparam("window_end"), hits=units)
    count = count.on_conflict_do_update(index_elements=[c.c.key, c.c.window_end],
                                        set_={"hits": c.c.hits + units}).returning(c.c.hits)
    give_back = (c.update().where(c.c.key == sa.bindparam("counter"), c.c.window_end == sa.bindparam("end"))
                 .values(hits=c.c.hits - units))
    return take, count, give_back


_companions: dict[str, sa.Engine] = {}
_companions_lock = threading.Lock()


def _counters_engine(engine: sa.Engine) -> sa.Engine:
    """Where the counters of ``engine``'s register live: the same database, or for an SQLite file
    the companion file beside it (see ``DatabaseLimiter``), its tables created on first use."""
    if engine.dialect.name != "sqlite":
        return engine
    from pathlib import Path

    from dinhdanh.exchange.tables import limit_buckets, limit_counters
    from dinhdanh.store.engine import make_engine

    database = engine.url.database
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database has no file to keep the counters beside")
    path = Path(database).resolve()
    path = path.with_name(f"{path.stem}.limits.sqlite")
    with _companions_lock:
        companion = _companions.get(str(path))
        if companion is None:
            companion = make_engine(f"sqlite:///{path}")
            with companion.begin() as conn:
                for table in (limit_buckets, limit_counters):
                    conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
                    for index in table.indexes:
                        conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            _companions[str(path)] = companion
    return companion


def limiter_for(engine: sa.Engine | None, environ=None) -> RateLimiter:
    """The limiter the app uses: ``RedisLimiter`` when ``DINHDANH_REDIS_URL`` is set (as before),
    else ``DatabaseLimiter`` on ``engine`` (a restart keeps the day's counts; every process on the
    database shares them). Only without an engine, or on an in-memory SQLite database (which a
    restart loses anyway), ``MemoryLimiter``."""
    import os

    url = (environ if environ is not None else os.environ).get("DINHDANH_REDIS_URL", "").strip()
    if url:
        return RedisLimiter(url)
    if engine is None or (engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")):
        return MemoryLimiter()
    return DatabaseLimiter(engine)

