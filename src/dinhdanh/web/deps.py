"""Request-scoped pieces: the transaction, the officer behind the token, the purpose of a read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dinhdanh.audit.service import DEFAULT_PURPOSE, PURPOSES
from dinhdanh.officers.permissions import PERMISSIONS
from dinhdanh.officers.permissions import VI as PERMISSION_VI
from dinhdanh.officers.credentials import TOKEN_PREFIX, resolve_token
from dinhdanh.officers.credentials import VI as CREDENTIALS_VI
from dinhdanh.officers.service import Officer, officer_by_id
from dinhdanh.oidc.officers import officer_of_access_token
from dinhdanh.store.base import utcnow
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


Conn = Annotated[sa.Connection, Depends(transaction, scope="function")]
ReadConn = Annotated[sa.Connection, Depends(read_transaction, scope="function")]


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
