"""Durable timers: schedule, cancel, and run the due ones (issue 12).

**A job is a row.** ``(kind, key)`` names it (``dossier.deadline`` / a dossier's code); scheduling
it again moves it (a pending one) or re-arms it (a done, failed or cancelled one): one
``INSERT .. ON CONFLICT`` on both back-ends, so two concurrent schedules both succeed.

**Claim, then run in one unit.** ``run_due`` claims due jobs with one conditional UPDATE that sets
``status = 'running'``, a lease and the worker's name (on PostgreSQL the candidates are picked
``FOR UPDATE SKIP LOCKED``; on SQLite the writing unit holds the database's write lock), so two
workers never claim the same job. Each claimed job then gets ONE unit of work that first re-takes
its row while still leased by this worker (a row lock on PostgreSQL, the write lock on SQLite: no
other worker can take the job over while it runs), runs the kind's handler, and marks it done. The
handler's writes and ``done`` commit together or not at all.

**Crash-safe.** A worker killed mid-handler leaves its unit uncommitted (rolled back by the
database) and its job ``running``; once the lease has passed, any worker claims it again (counting
the lost attempt). A handler that raises rolls its unit back; the job is retried after an
exponential backoff, and after ``MAX_ATTEMPTS`` it is ``failed``. ``last_error`` keeps the
exception's type and a short message only, never a payload value.

**Calls out of the platform hold no transaction.** A handler marked ``outside_unit`` (a refund
through the payment gateway) gets the unit of work instead of a connection and opens its own short
units around the call, while its lease keeps other workers off the job; it must be idempotent, as a
crash between its call and ``done`` repeats it (the gateway's "already refunded" counts as done).

A handler may schedule its own ``(kind, key)`` again (a reminder's next round): the job is then
pending again, and marking it done leaves it so.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable

import sqlalchemy as sa

from dinhdanh.calendar.clock import utcnow
from dinhdanh.scheduler.tables import scheduled_jobs as jobs
from dinhdanh.store.unit_of_work import UnitOfWork

__all__ = ["Handler", "schedule", "cancel", "run_due", "loop", "listing", "MAX_ATTEMPTS", "backoff"]

log = logging.getLogger("dinhdanh.scheduler")

Handler = Callable[[sa.Connection, str, dict], None]  # (conn, key, payload), inside the unit that marks it done

MAX_ATTEMPTS = 8
BASE_DELAY = dt.timedelta(seconds=30)
MAX_DELAY = dt.timedelta(hours=1)
LOST_LEASE = "LeaseExpired: the worker stopped before finishing"


def backoff(attempts: int) -> dt.timedelta:
    """The wait before the next try of a job that has failed ``attempts`` times before this one."""
    return min(BASE_DELAY * (2 ** min(attempts, 20)), MAX_DELAY)


def _aware(when: dt.datetime, name: str) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError(f"{name} must be an aware datetime")
    return when.astimezone(dt.UTC)


def _insert(conn: sa.Connection):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(jobs)


def schedule(conn: sa.Connection, kind: str, key: str, due_at: dt.datetime, payload: dict | None = None) -> None:
    """Have ``kind``'s handler run for ``key`` at ``due_at`` (idempotent by ``(kind, key)``): a pending
    job moves to the new time and payload; a done, failed, cancelled (or running) one is re-armed."""
    due_at = _aware(due_at, "due_at")
    now = utcnow()
    stmt = _insert(conn).values(kind=kind, key=key, due_at=due_at, payload=dict(payload or {}), status="pending",
                                attempts=0, created_at=now, updated_at=now)
    conn.execute(stmt.on_conflict_do_update(index_elements=[jobs.c.kind, jobs.c.key], set_={
        "due_at": stmt.excluded.due_at, "payload": stmt.excluded.payload, "status": "pending", "attempts": 0,
        "lease_until": None, "worker": None, "last_error": None, "updated_at": stmt.excluded.updated_at}))


def cancel(conn: sa.Connection, kind: str, key: str) -> None:
    """A pending job of ``(kind, key)`` will not run; nothing happens if there is none."""
    conn.execute(jobs.update().where(jobs.c.kind == kind, jobs.c.key == key, jobs.c.status == "pending")
                 .values(status="cancelled", updated_at=utcnow()))


def _worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def _claimable(now: dt.datetime):
    return sa.or_(sa.and_(jobs.c.status == "pending", jobs.c.due_at <= now),
                  sa.and_(jobs.c.status == "running", jobs.c.lease_until < now))


def _claim(conn: sa.Connection, kinds: list[str], now: dt.datetime, limit: int, worker: str,
           lease: dt.timedelta) -> list[tuple[int, str, str, dict]]:
    pick = (sa.select(jobs.c.job_id).where(jobs.c.kind.in_(kinds), _claimable(now))
            .order_by(jobs.c.due_at, jobs.c.job_id).limit(limit))
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list(conn.execute(pick).scalars())
    if not ids:
        return []
    lost = jobs.c.status == "running"  # a crashed worker's attempt: count it
    claimed = conn.execute(
        jobs.update().where(jobs.c.job_id.in_(ids), jobs.c.kind.in_(kinds), _claimable(now))
        .values(status="running", worker=worker, lease_until=now + lease, updated_at=now,
                attempts=sa.case((lost, jobs.c.attempts + 1), else_=jobs.c.attempts),
                last_error=sa.case((lost, LOST_LEASE), else_=jobs.c.last_error))
        .returning(jobs.c.job_id, jobs.c.kind, jobs.c.key, jobs.c.payload, jobs.c.due_at)).all()
    claimed.sort(key=lambda r: (r.due_at, r.job_id))
    return [(r.job_id, r.kind, r.key, r.payload or {}) for r in claimed]


def _mine(job_id: int, worker: str):
    return sa.and_(jobs.c.job_id == job_id, jobs.c.status == "running", jobs.c.worker == worker)


class _LeaseLost(Exception):
    """Another worker took the job over (this one's lease had passed): leave it to them."""


def _scalars(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _scalars(v)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


_DIGITS = re.compile(r"[0-9]{9,}")  # PIDs, old ID numbers, phone numbers


def error_text(exc: BaseException, payload: dict) -> str:
    """What ``last_error`` keeps of a handler's failure: the exception's type and the first line of
    its message, with every payload value and any long number blanked out (never personal data)."""
    from dinhdanh.registry.errors import RegistryError

    if isinstance(exc, RegistryError):  # its stable code and field say it all
        return f"{type(exc).__name__}: {exc.code}" + (f" ({exc.field})" if exc.field else "")
    message = (str(exc).strip().splitlines() or [""])[0][:500]
    for value in sorted(set(_scalars(payload)), key=len, reverse=True):
        if len(value) >= 3:
            message = message.replace(value, "***")
    message = _DIGITS.sub("***", message)
    return f"{type(exc).__name__}: {message}"[:300]


def outside_unit(handler: Callable[[UnitOfWork, str, dict], None]) -> Handler:
    """Mark ``handler(uow, key, payload)`` as one that calls out (see the module's docstring)."""
    handler.outside_unit = True  # type: ignore[attr-defined]
    return handler  # type: ignore[return-value]


def _run_one(uow: UnitOfWork, handler: Handler, job: tuple[int, str, str, dict], worker: str,
             now: dt.datetime, lease: dt.timedelta) -> bool:
    job_id, kind, key, payload = job
    try:
        if getattr(handler, "outside_unit", False):
            with uow.begin() as conn:
                if conn.execute(jobs.update().where(_mine(job_id, worker))
                                .values(lease_until=max(now, utcnow()) + lease)).rowcount != 1:
                    raise _LeaseLost
            handler(uow, key, payload)  # type: ignore[arg-type]
            with uow.begin() as conn:
                conn.execute(jobs.update().where(_mine(job_id, worker))
                             .values(status="done", lease_until=None, last_error=None, updated_at=utcnow()))
            return True
        with uow.begin() as conn:
            # re-take the row while it is still ours: held until commit, so nobody takes it over meanwhile
            if conn.execute(jobs.update().where(_mine(job_id, worker))
                            .values(lease_until=max(now, utcnow()) + lease)).rowcount != 1:
                raise _LeaseLost
            handler(conn, key, payload)
            conn.execute(jobs.update().where(_mine(job_id, worker))
                         .values(status="done", lease_until=None, last_error=None, updated_at=utcnow()))
        return True
    except _LeaseLost:
        log.info("scheduled job %s (%s) was taken over by another worker", job_id, kind)
        return False
    except Exception as exc:  # noqa: BLE001 - the handler's failure is recorded and retried
        error = error_text(exc, payload)
        log.warning("scheduled job %s (%s) failed: %s", job_id, kind, type(exc).__name__)
    try:
        with uow.begin() as conn:
            row = conn.execute(sa.select(jobs.c.attempts).where(_mine(job_id, worker))).first()
            if row is None:
                return False
            attempts = row.attempts + 1
            at = max(now, utcnow())
            values = {"attempts": attempts, "last_error": error, "lease_until": None, "worker": None,
                      "updated_at": at}
            if attempts >= MAX_ATTEMPTS:
                values["status"] = "failed"
            else:
                values.update(status="pending", due_at=at + backoff(row.attempts))
            conn.execute(jobs.update().where(_mine(job_id, worker)).values(**values))
    except Exception as exc:  # noqa: BLE001 - the lease will pass and the job be taken again
        log.warning("scheduled job %s: its failure could not be recorded: %s", job_id, type(exc).__name__)
    return False


def run_due(engine: sa.Engine, handlers: dict[str, Handler], *, now: dt.datetime | None = None, limit: int = 100,
            worker: str | None = None, lease_seconds: int = 60) -> int:
    """Run the jobs due at ``now`` whose kind has a handler (at most ``limit``); how many completed."""
    now = _aware(now, "now") if now is not None else utcnow()
    worker = worker or _worker_name()
    lease = dt.timedelta(seconds=lease_seconds)
    uow = UnitOfWork(engine)
    kinds = sorted(handlers)
    with uow.read() as conn:
        orphans = conn.execute(sa.select(jobs.c.kind).distinct().where(
            jobs.c.status == "pending", jobs.c.due_at <= now, jobs.c.kind.not_in(kinds))).scalars().all()
    for kind in orphans:
        log.warning("scheduled jobs of kind %r are due but no handler is wired for it", kind)
    if not kinds:
        return 0
    with uow.begin() as conn:
        claimed = _claim(conn, kinds, now, limit, worker, lease)
    return sum(_run_one(uow, handlers[job[1]], job, worker, now, lease) for job in claimed)


def loop(engine: sa.Engine, handlers: dict[str, Handler], *, interval: float = 5.0,
         stop: threading.Event | None = None) -> None:
    """``run_due`` until ``stop`` is set: again at once after a full batch, else every ``interval`` s."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            busy = run_due(engine, handlers) >= 100
        except Exception as exc:  # noqa: BLE001 - the database may come back
            log.warning("scheduler round failed: %s", type(exc).__name__)
            busy = False
        stop.wait(0 if busy else interval)


def listing(conn: sa.Connection, status: str | None = None, limit: int = 1000) -> list[dict]:
    """The jobs (of ``status``), soonest first: kind, key, due time on Việt Nam's clock, status and
    attempts; never the payload."""
    from dinhdanh.calendar.clock import VIETNAM

    query = sa.select(jobs.c.kind, jobs.c.key, jobs.c.due_at, jobs.c.status, jobs.c.attempts)
    if status is not None:
        query = query.where(jobs.c.status == status)
    rows = conn.execute(query.order_by(jobs.c.due_at, jobs.c.job_id).limit(limit)).all()
    return [{"kind": r.kind, "key": r.key, "due_at": r.due_at.astimezone(VIETNAM).isoformat(timespec="seconds"),
             "status": r.status, "attempts": r.attempts} for r in rows]
