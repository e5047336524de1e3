"""What operators see of a running server: request ids, HTTP metrics, the backlogs, readiness.

- ``Observability``: a pure ASGI middleware (no ``BaseHTTPMiddleware``: it wraps ``send`` and
  nothing else, so a request pays a few microseconds for it). Every request gets an id: a
  well-formed incoming ``X-Request-Id`` (``[A-Za-z0-9._-]{1,64}``) is kept, anything else is
  replaced by a new one; it is echoed in the response's ``X-Request-Id`` and put in
  ``logs.REQUEST_ID`` for the log lines written while the request is served. It counts
  ``dinhdanh_http_requests_total{method,route,status}`` and observes
  ``dinhdanh_http_request_duration_seconds{method,route}``, where ``route`` is the matched route's
  path template (``/api/v1/citizens/{pid}``), never the path itself (no PIDs in label values);
  what no route matched is ``unmatched``. One ``dinhdanh.access`` log line per request (method,
  route, status, milliseconds) when that logger is enabled for INFO (``serve`` enables it; about
  35 us a line, against about 9 us a request for the id and the metrics).
- ``BacklogCollector``: gauges computed at scrape time from the database, with short read-only
  queries under a statement timeout; a failing query never fails the scrape (it is counted in
  ``dinhdanh_metrics_collect_errors_total``, the others are still answered): the pool, the outbox's
  and the webhooks' backlogs and their oldest entries, the access log's entries waiting for the
  sequencer, the scheduler's jobs by status, and the replica lag (``app.state.replica_lag()``
  when a replica is configured).
- ``install_metrics``: ``/metrics`` (Prometheus text or OpenMetrics by ``Accept``), baked off the event
  loop. Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set by the parent before the workers
  start) every worker writes its counters and histograms to files in that directory
  (prometheus_client's multiprocess mode) and a scrape, answered by whichever worker the kernel hands
  the connection to, sums every worker's: the totals are the server's, not one worker's. A worker
  killed and replaced leaves its file, so totals never go back; the scrape-time gauges are read live
  by the answering worker; the per-process collectors (CPU, memory, GC) are not exported then.
- ``readiness``: the checks of ``/readyz`` (database, migrations at head, Redis and NATS when
  configured), each bounded by a second.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import socket
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from dinhdanh.logs import REQUEST_ID, write_access
from dinhdanh.store.unit_of_work import sqlite_read

__all__ = ["Observability", "BacklogCollector", "MetricsApp", "install_metrics", "readiness", "REQUESTS", "DURATION",
           "HEADER"]

log = logging.getLogger("dinhdanh.access")
HEADER = b"x-request-id"
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._-]{1,64}")
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter("dinhdanh_http_requests_total", "HTTP requests answered, by route template and status",
                   ["method", "route", "status"])
# from 1 ms to 10 s: a PID lookup answers in about a millisecond, a batch upload in seconds
DURATION = Histogram("dinhdanh_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
                     ["method", "route"],
                     buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
COLLECT_ERRORS = Counter("dinhdanh_metrics_collect_errors_total",
                         "Scrape-time gauges that could not be read (the database did not answer in time)", ["gauge"])


class _RequestIds:
    """Request ids: 16 random hex digits drawn once per process, then a counter (16 hex digits).

    Unique across processes and restarts (the prefix is random, drawn again in a forked child),
    and cheap: ``secrets.token_hex`` a request was a ``getrandom`` system call on the event loop,
    which gave up the interpreter's lock and waited to get it back behind the worker threads (a
    quarter of the loop thread's samples while dossiers were filed). An id names a request in the
    logs; it is not a secret and grants nothing."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._next = itertools.count(1).__next__

    def new(self) -> str:
        return f"{self._prefix}{self._next():016x}"


new_request_id = _RequestIds().new


def _request_id(scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == HEADER:
            return value.decode("ascii") if _WELL_FORMED.fullmatch(value) else new_request_id()
    return new_request_id()


class Observability:
    """The request id and the HTTP metrics (see the module's docstring)."""

    def __init__(self, app) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, int], object] = {}  # label children, looked up once
        self._histograms: dict[tuple[str, str], object] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self._observe(method, template, status, elapsed)
            write_access(log, method, template, status, round(elapsed * 1000, 2))
            REQUEST_ID.reset(token)

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = REQUESTS.labels(method, route, str(status))
        counter.inc()
        histogram = self._histograms.get(key[:2])
        if histogram is None:
            histogram = self._histograms[key[:2]] = DURATION.labels(method, route)
        histogram.observe(elapsed)


# ----------------------------------------------------------------------------- scrape-time gauges

QUERY_TIMEOUT = 1.0  # seconds for each scrape-time query


@contextmanager
def _bounded_read(engine: sa.Engine, timeout: float):
    """A read-only transaction whose statements are cut off after ``timeout`` seconds."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                yield conn
            return
        driver = conn.connection.driver_connection
        deadline = time.monotonic() + timeout
        driver.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            with sqlite_read(conn):
                yield conn
        finally:
            driver.set_progress_handler(None, 0)


def _age(now: float, oldest) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite without the column type's conversion
        import datetime as dt

        oldest = dt.datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        import datetime as dt

        oldest = oldest.replace(tzinfo=dt.timezone.utc)
    return max(0.0, now - oldest.timestamp())


def _outbox(conn, now: float) -> list:
    from dinhdanh.changes.tables import change_cursors
    from dinhdanh.config import nats_url
    from dinhdanh.store.outbox import outbox

    cursors = dict(conn.execute(sa.select(change_cursors.c.name, change_cursors.c.last_seq)).all())
    consumers = {"router": cursors.get("router", 0)}
    if "nats" in cursors or nats_url():
        consumers["nats"] = cursors.get("nats", 0)
    backlog = GaugeMetricFamily("dinhdanh_outbox_backlog", "Outbox events a consumer has not taken yet",
                                labels=["consumer"])
    oldest = GaugeMetricFamily("dinhdanh_outbox_oldest_seconds",
                               "Age of the oldest outbox event a consumer has not taken yet", labels=["consumer"])
    for name, after in consumers.items():
        row = conn.execute(sa.select(sa.func.count(), sa.func.min(outbox.c.seq))
                           .where(outbox.c.seq > after)).one()
        first = None
        if row[0]:
            first = conn.execute(sa.select(outbox.c.created_at).where(outbox.c.seq == row[1])).scalar()
        backlog.add_metric([name], row[0])
        oldest.add_metric([name], _age(now, first))
    return [backlog, oldest]


def _webhooks(conn, now: float) -> list:
    from dinhdanh.changes.tables import change_deliveries as d

    pending = conn.execute(sa.select(sa.func.count(), sa.func.min(d.c.created_at))
                           .where(d.c.status == "pending")).one()
    dead = conn.execute(sa.select(sa.func.count()).where(d.c.status == "dead")).scalar_one()
    return [GaugeMetricFamily("dinhdanh_webhook_backlog", "Webhook deliveries waiting (pending)", value=pending[0]),
            GaugeMetricFamily("dinhdanh_webhook_backlog_oldest_seconds", "Age of the oldest pending webhook delivery",
                              value=_age(now, pending[1])),
            GaugeMetricFamily("dinhdanh_webhook_dead", "Webhook deliveries given up (dead)", value=dead)]


def _sequencer(conn, now: float) -> list:
    from dinhdanh.audit.tables import access_log as a

    waiting = a.c.leaf_index.is_(None)
    count = conn.execute(sa.select(sa.func.count()).select_from(a).where(waiting)).scalar_one()
    first = conn.execute(sa.select(a.c.at).where(waiting).order_by(a.c.access_id).limit(1)).scalar()
    return [GaugeMetricFamily("dinhdanh_audit_sequencer_lag_entries",
                              "Access-log entries not yet integrated into the transparency log", value=count),
            GaugeMetricFamily("dinhdanh_audit_sequencer_lag_seconds",
                              "Age of the oldest access-log entry not yet integrated", value=_age(now, first))]


def _scheduler(conn, now: float) -> list:
    from dinhdanh.scheduler.tables import STATUSES, scheduled_jobs as j

    counts = dict(conn.execute(sa.select(j.c.status, sa.func.count()).group_by(j.c.status)).all())
    family = GaugeMetricFamily("dinhdanh_scheduler_jobs", "Scheduled jobs by status", labels=["status"])
    for status in STATUSES:
        family.add_metric([status], counts.get(status, 0))
    return [family]


_QUERIES = (("outbox", _outbox), ("webhooks", _webhooks), ("sequencer", _sequencer), ("scheduler", _scheduler))
# the app whose database a scrape reads (set by ``MetricsApp`` around the scrape); else the newest app
_SCRAPED: ContextVar[object | None] = ContextVar("dinhdanh_scraped_app", default=None)
_newest: list = [None]


def _pool(engine: sa.Engine) -> list:
    pool = engine.pool
    if not all(hasattr(pool, name) for name in ("size", "checkedout", "overflow")):
        return []  # an in-memory SQLite database's single connection
    return [GaugeMetricFamily("dinhdanh_db_pool_size", "Connections the pool keeps", value=pool.size()),
            GaugeMetricFamily("dinhdanh_db_pool_checked_out", "Connections in use", value=pool.checkedout()),
            GaugeMetricFamily("dinhdanh_db_pool_overflow",
                              "Connections open beyond the pool's size (negative: not yet opened)",
                              value=pool.overflow())]


class BacklogCollector:
    """The scrape-time gauges of the app being scraped (see the module's docstring)."""

    def describe(self):
        return []  # computed at scrape time: nothing to check at registration

    def collect(self):
        ref = _SCRAPED.get() or _newest[0]
        app = ref() if ref is not None else None
        if app is None:
            return
        engine = app.state.engine
        yield from _pool(engine)
        yield from self._replica(app)
        pool = engine.pool
        if _missing_sqlite_file(engine):
            COLLECT_ERRORS.labels("database").inc()  # gone: connecting would only make an empty file
            return
        if hasattr(pool, "checkedout") and hasattr(pool, "size") and \
                pool.checkedout() >= pool.size() + max(0, getattr(pool, "_max_overflow", 0)):
            COLLECT_ERRORS.labels("pool_exhausted").inc()  # no connection to spare for the scrape
            return
        now = time.time()
        for name, query in _QUERIES:
            try:
                with _bounded_read(engine, QUERY_TIMEOUT) as conn:
                    families = query(conn, now)
            except Exception as exc:  # never fail the scrape: the other gauges still answer
                COLLECT_ERRORS.labels(name).inc()
                logging.getLogger("dinhdanh.metrics").warning("gauges %s not read: %s", name, type(exc).__name__)
                continue
            yield from families

    @staticmethod
    def _replica(app) -> list:
        lag = getattr(app.state, "replica_lag", None)
        if lag is None:
            return []
        try:
            value = lag()
        except Exception:
            COLLECT_ERRORS.labels("replica").inc()
            return []
        if value is None:
            return []
        return [GaugeMetricFamily("dinhdanh_replica_lag_seconds", "How far the read replica is behind the primary",
                                  value=float(value))]


_collector = BacklogCollector()
REGISTRY.register(_collector)


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_multiprocess_registry: list = []


def scrape_registry():
    """What a scrape reads: the process's own registry, or every worker's files (see the docstring)."""
    if not os.environ.get(MULTIPROCESS_ENV):
        return REGISTRY
    if not _multiprocess_registry:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_collector)
        _multiprocess_registry.append(registry)
    return _multiprocess_registry[0]


def watch(app) -> None:
    """Make ``app`` the one the scrape-time gauges read when no scrape of a given app is under way."""
    _newest[0] = weakref.ref(app)


class MetricsApp:
    """The ``/metrics`` ASGI app of one app: its gauges baked in a worker thread (the queries block)."""

    def __init__(self, app) -> None:
        self._app = weakref.ref(app)
        watch(app)

    def _bake(self, accept: str):
        token = _SCRAPED.set(self._app)
        try:
            encoder, content_type = choose_encoder(accept)
            return encoder(scrape_registry()), content_type
        finally:
            _SCRAPED.reset(token)

    async def __call__(self, scope, receive, send) -> None:
        import anyio

        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"GET, HEAD")]})
            await send({"type": "http.response.body", "body": b""})
            return
        accept = ",".join(v.decode("latin-1") for k, v in scope.get("headers") or () if k == b"accept")
        output, content_type = await anyio.to_thread.run_sync(self._bake, accept)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type.encode()),
                                (b"content-length", str(len(output)).encode())]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else output})


def install_metrics(app) -> None:
    """``/metrics`` (and ``/metrics/``, as before) on ``app``, outside the OpenAPI schema."""
    endpoint = MetricsApp(app)
    app.add_route("/metrics", endpoint, include_in_schema=False)
    app.mount("/metrics", endpoint)


# ----------------------------------------------------------------------------- readiness

CHECK_TIMEOUT = 1.0


class NotReady(Exception):
    """A check's own finding (its message is the reason shown)."""

_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")  # a hung check holds one of these
_heads: dict[str, tuple[str, ...]] = {}


def _script_heads() -> tuple[str, ...]:
    heads = _heads.get("heads")
    if heads is None:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from dinhdanh.store.engine import MIGRATIONS

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        heads = _heads["heads"] = tuple(ScriptDirectory.from_config(cfg).get_heads())
    return heads


def _missing_sqlite_file(engine: sa.Engine) -> bool:
    """An SQLite file that is not there (connecting would make an empty one: never for a check)."""
    from dinhdanh.store.engine import sqlite_path

    path = sqlite_path(engine.url)
    return path is not None and not path.is_file()


def _check_database(engine: sa.Engine) -> str:
    with _bounded_read(engine, CHECK_TIMEOUT) as conn:
        conn.exec_driver_sql("SELECT 1")
    return "ok"


def _check_migrations(engine: sa.Engine) -> str:
    with _bounded_read(engine, CHECK_TIMEOUT) as conn:  # alembic's own table, read without alembic's log lines
        current = tuple(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    heads = _script_heads()
    if set(current) != set(heads):
        raise NotReady(f"at {', '.join(current) or 'no revision'}, not at head {', '.join(heads)}")
    return "ok"


def _check_redis(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT)
    try:
        if not client.ping():
            raise NotReady("PING not answered")
    finally:
        client.close()
    return "ok"


def _check_nats(url: str) -> str:
    """A NATS server greets every connection with ``INFO {...}``: read it (any server of the list)."""
    failures = []
    for server in url.split(","):
        parts = urlsplit(server.strip() if "://" in server else f"nats://{server.strip()}")
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222),
                                          timeout=CHECK_TIMEOUT) as sock:
                sock.settimeout(CHECK_TIMEOUT)
                if sock.recv(5) == b"INFO ":
                    return "ok"
                failures.append("no INFO greeting")
        except OSError as exc:
            failures.append(type(exc).__name__)
    raise NotReady("; ".join(failures) or "no server")


def readiness(engine: sa.Engine, *, redis_url: str | None, nats_url: str | None) -> tuple[bool, dict[str, str]]:
    """Run the checks concurrently, each within ``CHECK_TIMEOUT``; (all ok, {check: "ok" or why not})."""
    results: dict[str, str] = {}
    checks = {}
    if _missing_sqlite_file(engine):
        results["database"] = "the database file does not exist"
    else:
        checks = {"database": (_check_database, engine), "migrations": (_check_migrations, engine)}
    if redis_url:
        checks["redis"] = (_check_redis, redis_url)
    if nats_url:
        checks["nats"] = (_check_nats, nats_url)
    futures = {name: _checks.submit(fn, arg) for name, (fn, arg) in checks.items()}
    deadline = time.monotonic() + CHECK_TIMEOUT + 0.2
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            future.cancel()
            results[name] = f"no answer within {CHECK_TIMEOUT:g} s"
        except Exception as exc:  # the check's failure, named; no personal data in these messages
            results[name] = _reason(exc)
    if results["database"] != "ok" and results.get("migrations") != "ok":
        results["migrations"] = "not checked: the database does not answer"
    return all(v == "ok" for v in results.values()), results


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NotReady):
        return str(exc)
    if isinstance(exc, sa.exc.DBAPIError):
        return f"{type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__}: " \
               f"{str(exc.orig).splitlines()[0][:160] if exc.orig is not None else ''}".rstrip(": ")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}".rstrip(": ")
