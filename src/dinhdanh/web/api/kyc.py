"""``GET /api/v1/citizens/{pid}/kyc``: e-KYC for partners (``exchange.kyc``).

The answer is JSON ``{"jws": ..., "claims": ...}``: the compact JWS is what the partner keeps as
proof (verifiable with ``/jwks``); ``claims`` is its payload, decoded, for convenience. The path
has one more segment than the officer routes ``/api/v1/citizens/{pid}`` and ``.../history``, so
neither matches it (and this router is registered first).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from dinhdanh.exchange import kyc
from dinhdanh.web.api.cards import vault_of
from dinhdanh.web.api.partner_auth import KycPartner
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn
from dinhdanh.web.errors import error_body, message_for

router = APIRouter(prefix="/api/v1/citizens", tags=["exchange"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody},
                              422: {"model": ErrorBody}, 429: {"model": ErrorBody}, 503: {"model": ErrorBody}})


class KycField(BaseModel):
    value: Any = Field(description="The value in the register (null when the register holds none)")
    source: Literal["population_register", "card_register"]
    updated_at: str = Field(description="When the register last changed this field (ISO 8601, UTC)")


class KycClaims(BaseModel):
    iss: str
    aud: str = Field(description="The partner's client id")
    iat: int
    jti: str
    purpose: str
    sub: str = Field(description="The personal ID number")
    fields: dict[str, KycField]


class KycAnswer(BaseModel):
    jws: str = Field(description="Compact JWS (ES256, typ kyc+jwt, kid of a key in /jwks) of `claims`")
    claims: KycClaims


@router.get("/{pid}/kyc", summary="e-KYC: a person's data, signed, with their consent (partners)",
            response_model=KycAnswer)
def kyc_of(
    request: Request, partner: KycPartner, conn: Conn,
    pid: Annotated[str, Path(pattern=r"^[0-9]{12}$", description="Personal ID number, 12 digits")],
    purpose: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$",
                                         description="One of the partner's purpose codes (default: its first)")] = None,
    fields: Annotated[str | None, Query(max_length=300, pattern=r"^[a-z_, ]*$", description=(
        "Comma-separated fields (default: every field of the policy): " + ", ".join(kyc.KYC_FIELDS)))] = None,
):
    from dinhdanh.web.oidc import issuer_of

    answer = kyc.disclose(conn, vault_of(request), partner, pid, purpose=purpose, fields=kyc.parse_fields(fields),
                          issuer=issuer_of(request))
    if isinstance(answer, kyc.Refusal):  # an answer, not an exception: its access-log entry is committed
        return error_body(403, answer.code, message_for(request, answer.code, answer.field, answer.message),
                          answer.field)
    return answer
