"""Request-scoped pieces: the transaction, the officer behind the token, the purpose of a read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dinhdanh.audit.service import DEFAULT_PURPOSE, PURPOSES
from dinhdanh.officers.service import Officer, officer_by_token
from dinhdanh.store.unit_of_work import UnitOfWork

bearer = HTTPBearer(auto_error=False, description="Officer API token (`dinhdanh officer add`)")


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


def current_officer(conn: Conn, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Officer:
    officer = officer_by_token(conn, credentials.credentials) if credentials else None
    if officer is None:
        raise HTTPException(status_code=401, detail="A valid officer token is required (Authorization: Bearer ...).",
                            headers={"WWW-Authenticate": "Bearer"})
    return officer


CurrentOfficer = Annotated[Officer, Depends(current_officer)]
PurposeCode = Literal[tuple(PURPOSES)]  # type: ignore[valid-type]
Purpose = Annotated[PurposeCode, Query(description="Why the record is read (recorded in the access log): "
                                       + "; ".join(f"`{k}` {v}" for k, v in PURPOSES.items()))]
DEFAULT = DEFAULT_PURPOSE
