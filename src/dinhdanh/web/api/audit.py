"""The access log as a transparency log, public like a CT log: the signed tree head, inclusion and
consistency proofs (RFC 9162 s2.1.3, s2.1.4), and the log's keys. Hashes and counts only, never
personal data: a leaf hash is salted (``audit.leaves``), so it tells nothing about who read whom.

And the log's entries for auditors (permission ``audit.read``): who read a person's data, when and
why. Reading them is itself a read of that person's data, and is logged.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from dinhdanh.audit import proofs
from dinhdanh.audit.service import DEFAULT_PURPOSE, MAX_LOG_PAGE, access_log_of, record_access
from dinhdanh.registry.records import find_person
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Allowed, Conn, Purpose, ReadConn, uow_of

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses={422: {"model": ErrorBody}})
Size = Annotated[int, Query(ge=0, le=2**62)]
Auditor = Allowed("audit.read")


class TreeHead(BaseModel):
    tree_size: int
    root_hash: str = Field(description="Base64 of the 32-byte root hash (RFC 9162 s2.1.1)")
    timestamp: int = Field(description="Milliseconds since the epoch")
    signature: str = Field(description="Compact JWS (ES256, typ tree-head+jws) whose payload is the other three "
                                       "fields as JSON (keys sorted, no spaces); keys at /api/v1/audit/keys")


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    consistency_path: list[str]


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


@router.get("/head", response_model=TreeHead, summary="The log's signed tree head (public)")
def head(request: Request) -> dict:
    return proofs.current_head(uow_of(request), vault_of(request)).as_dict()


@router.get("/proof/inclusion", response_model=InclusionProof, summary="An inclusion proof (RFC 9162 s2.1.3)")
def inclusion(conn: ReadConn, leaf_index: Size, tree_size: Size) -> dict:
    leaf, path = proofs.inclusion(conn, leaf_index, tree_size)
    return {"leaf_index": leaf_index, "tree_size": tree_size, "leaf_hash": base64.b64encode(leaf).decode(),
            "audit_path": _b64(path)}


@router.get("/proof/consistency", response_model=ConsistencyProof, summary="A consistency proof (RFC 9162 s2.1.4)")
def consistency(conn: ReadConn, first: Size, second: Size) -> dict:
    return {"first": first, "second": second, "consistency_path": _b64(proofs.consistency(conn, first, second))}


@router.get("/keys", summary="Every key the log has signed heads with (JWKS)")
def log_keys(conn: ReadConn) -> dict:
    return proofs.keys(conn)


@router.get("/entries", summary="Who read a person's data (auditors; the person within the auditor's area)",
            responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}})
def entries(conn: Conn, officer: Auditor,
            pid: Annotated[str, Query(pattern=r"^[0-9]{12}$", description="Personal ID number (current or former)")],
            purpose: Purpose = DEFAULT_PURPOSE,
            limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE)] = 20,
            before: Annotated[int | None, Query(ge=1, le=2**62, description="next_before of the previous page")] = None,
            ) -> dict:
    person = find_person(conn, pid, officer.area)
    page = access_log_of(conn, person.person_id, limit=limit, before=before)
    record_access(conn, officer.label, [person.person_id], "access_log", purpose, fields=["access_log"])
    return page
