"""Request-scoped pieces: the transaction, the officer behind the token, the purpose of a read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Literal, TypeVar

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from dinhdanh.audit.service import DEFAULT_PURPOSE, PURPOSES
from dinhdanh.officers.permissions import PERMISSIONS
from dinhdanh.officers.permissions import VI as PERMISSION_VI
from dinhdanh.officers.credentials import TOKEN_PREFIX, resolve_token
from dinhdanh.officers.credentials import VI as CREDENTIALS_VI
from dinhdanh.officers.service import Officer, officer_by_id
from dinhdanh.oidc.officers import officer_of_access_token
from dinhdanh.store.base import utcnow
from dinhdanh.store import group_commit
from dinhdanh.store.unit_of_work import UnitOfWork
from dinhdanh.web import errors

bearer = HTTPBearer(auto_error=False, description="An officer's machine token (`dinhdanh officer add|rotate`), or an "
                                                   "access token of this platform's provider with the scope "
                                                   "`dinhdanh.officer` (level 2, an officer client)")


def transaction(request: Request) -> Iterator[sa.Connection]:
    """The request's unit of work (``store.unit_of_work``): committed when the handler returns and
    before the answer is sent (scope "function"), rolled back if it raises. FastAPI runs a sync
    dependency, its exit included, in the thread pool: no lock is waited for on the event loop."""
    with uow_of(request).begin() as conn:
        yield conn


def read_transaction(request: Request) -> Iterator[sa.Connection]:
    """A read-only unit of work for routes that only read (no audit entry, no counter)."""
    with uow_of(request).read() as conn:
        yield conn


def uow_of(request: Request) -> UnitOfWork:
    return request.app.state.uow


T = TypeVar("T")


async def in_unit(request: Request, work: Callable[[sa.Connection], T], *, read: bool = False,
                  inline: bool = False) -> T:
    """``work(conn)`` in one unit of work, the whole unit in ONE call to the thread pool: begin (on
    SQLite a writing unit queues for the write lock there, never on the event loop), the work (the
    caller's authentication included), commit, all before the answer is sent (a 2xx means
    committed); rolled back if ``work`` raises, and the exception goes on to the app's handlers.

    For a hot route, instead of ``Conn`` with sync dependencies and a sync endpoint (the unit's
    entry, each dependency, the endpoint and the unit's exit each a hop to the pool and back): the
    endpoint is ``async``, parses, and awaits ``in_unit`` with a function that calls one service.
    ``read=True``: a read-only unit (``UnitOfWork.read``).

    ``inline=True``, for a unit of a few milliseconds of CPU on the hottest routes (a filing, its
    prefill, a token): on SQLite, no hop at all. A read runs on the event loop (a read in WAL mode
    never waits for a writer); a writing unit joins the loop's next group commit
    (``store.group_commit``: the units ready at the same turn of the loop in one transaction, each in
    its savepoint, committed before any is answered); if the writer is not free the group waits
    for it in the pool, whole. A hop costs about a fifth of a filing's CPU (two threads taking
    turns at the interpreter's lock for each statement), a transaction of its own a quarter of a token's; the
    database is one writer anyway, so the loop running the units itself loses no parallelism. Never
    on PostgreSQL, whose every statement is a network round trip."""
    uow = uow_of(request)

    def unit() -> T:
        with (uow.read() if read else uow.begin()) as conn:
            return work(conn)

    if inline and getattr(uow, "starts_at_once", False):
        if read:
            return unit()
        return await group_commit.of(uow).run(work)
    return await run_in_threadpool(unit)


Conn = Annotated[sa.Connection, Depends(transaction, scope="function")]
ReadConn = Annotated[sa.Connection, Depends(read_transaction, scope="function")]


# Reads on the replica (store.replica), for audited routes: the data is read from the replica's unit,
# the access-log entry is written in the request's own unit on the primary (``Conn``, committed
# before the answer). Without a replica both are the request's unit, as before. ``ReadConn`` stays
# on the primary: its routes read sessions, payments and the log just written by another worker.

def replica_current(request: Request, conn: Conn) -> Iterator[sa.Connection]:
    """The replica, if it has replayed every commit acknowledged before this request read the
    primary's position (any process's: a death recorded a second ago); else the primary."""
    with replica_unit(request, conn, current=True) as data:
        yield data


def replica_recent(request: Request, conn: Conn) -> Iterator[sa.Connection]:
    """The replica, if at most ``DINHDANH_REPLICA_MAX_LAG`` behind and past this process's writes."""
    with replica_unit(request, conn, current=False) as data:
        yield data


@contextmanager
def replica_unit(request: Request, conn: sa.Connection, *, current: bool) -> Iterator[sa.Connection]:
    router = getattr(request.app.state, "replica", None)
    if router is None:
        yield conn
        return
    from dinhdanh.store.replica import REPLICA_READER

    conn.execution_options(**{REPLICA_READER: True})  # its commit is the audit entry's, not a register write
    with router.read_unit(at_least=router.primary_lsn(conn) if current else None) as data:
        yield data


CurrentRead = Annotated[sa.Connection, Depends(replica_current, scope="function")]
RecentRead = Annotated[sa.Connection, Depends(replica_recent, scope="function")]


def current_officer(request: Request, conn: Conn,
                    credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Officer:
    """The officer behind the bearer credential: a machine token (``ddo_...``, officers.credentials)
    or an access token of the platform's provider with the scope ``dinhdanh.officer`` issued at
    level 2 (oidc.officers). Unknown, expired, revoked or not an officer's: the same 401."""
    officer_id = None
    if credentials is not None:
        value, now = credentials.credentials, utcnow()
        if value.startswith(TOKEN_PREFIX):
            officer_id = resolve_token(conn, value, now)
        else:
            from dinhdanh.web.oidc import issuer_of

            officer_id = officer_of_access_token(conn, value, issuer_of(request), now)
    officer = officer_by_id(conn, officer_id) if officer_id is not None else None
    if officer is None:
        raise HTTPException(status_code=401, detail="A valid officer token is required (Authorization: Bearer ...).",
                            headers={"WWW-Authenticate": "Bearer"})
    return officer


CurrentOfficer = Annotated[Officer, Depends(current_officer)]


def require(permission: str):
    """The dependency of an officer route: the officer behind the credential (401 without one), who
    must hold ``permission`` through a role (403 ``permission_denied`` naming it, in Vietnamese or
    English as the request asks). The console's pages use the same dependency."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def allowed(request: Request, officer: CurrentOfficer) -> Officer:
        officer.require(permission, english=errors._english(request))
        return officer

    allowed.permission = permission  # type: ignore[attr-defined]  (read by the route check, tests)
    allowed.__name__ = "officer_may_" + permission.replace(".", "_")
    return allowed


def Allowed(permission: str):  # noqa: N802 (used as a type: ``officer: Allowed("cards.approve")``)
    """``Annotated[Officer, Depends(require(permission))]``: an officer route's parameter."""
    return Annotated[Officer, Depends(require(permission))]


def permission_of(dependant) -> str | None:
    """The permission an endpoint's dependency tree requires (None: not an officer route)."""
    for sub in dependant.dependencies:
        found = getattr(sub.call, "permission", None) or permission_of(sub)
        if found:
            return found
    return None


errors.add_messages(PERMISSION_VI)
errors.add_messages(CREDENTIALS_VI)
PurposeCode = Literal[tuple(PURPOSES)]  # type: ignore[valid-type]
Purpose = Annotated[PurposeCode, Query(description="Why the record is read (recorded in the access log): "
                                       + "; ".join(f"`{k}` {v}" for k, v in PURPOSES.items()))]
DEFAULT = DEFAULT_PURPOSE
