"""``GET /api/v1/audit/head``: the access log's chain head, signed, for anyone to keep.

Public like the JWKS: it holds counts and hashes, no personal data. Partners, auditors and
citizens' organisations keep copies; ``dinhdanh audit verify --anchor FILE`` later shows whether
the log still holds what was anchored (see ``audit.anchor``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from dinhdanh.audit.anchor import chain_head, sign_head
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.deps import Conn

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class SignedHead(BaseModel):
    anchor: str = Field(description="Compact JWS (ES256, typ audit-head+jwt) over the head, "
                                    "verifiable with the provider's /jwks")
    last_access_id: int
    last_hash: str
    entries: int


@router.get("/head", response_model=SignedHead, summary="The access log's chain head, signed (public)")
def signed_head(request: Request, conn: Conn) -> SignedHead:
    from dinhdanh.web.oidc import issuer_of

    return SignedHead(anchor=sign_head(conn, vault_of(request), issuer_of(request)), **chain_head(conn))
