"""Partners authenticate with an access token from the provider's client-credentials grant (scope
``dinhdanh.verify``): there is no second token system. ``partner_for(operation)`` is the one
dependency every partner route uses: 401 without a valid token, 403 for a client that is not an
active partner allowed the operation, 429 over its rate limit or its daily quota (with
``Retry-After``: for the quota, the seconds to midnight in Vietnam), 503 ``rate_limiter_unavailable``
when the shared limiter (Redis, or the database without it) does not answer: the exchange then
fails closed, since a national register does not disclose data to partners whose limits it cannot
enforce, and the error says so plainly rather than hiding behind a 500. Each request counts once against the quota, whatever it
carries (a batch upload is one request).

DPoP (RFC 9449, ``oidc.dpop``): a token bound to a key (one the partner got with a DPoP proof) is
accepted only as ``Authorization: DPoP <token>`` with a ``DPoP`` proof for this request (method,
URL on the issuer, ``ath``, signed by that key, used once); as ``Bearer``, or with a bad proof, it is
a 401 with a ``DPoP`` challenge. A partner whose policy requires DPoP (``dpop_required``) is refused
any token that is not bound. A bearer token of any other partner costs no more than before: the
binding comes with the token's row and the policy with the partner's, both read anyway.
"""

from __future__ import annotations

import logging
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from dinhdanh.exchange import limits, partners
from dinhdanh.oidc import dpop, tokens
from dinhdanh.web import errors
from dinhdanh.web.errors import Refusal
from dinhdanh.web.deps import Conn

log = logging.getLogger("dinhdanh.exchange")
SCOPE = partners.SCOPE

# Vietnamese wording of the DPoP refusals, by stable code (English with Accept-Language: en).
VI = {
    "dpop_required": "Mã truy cập của đối tác này phải gắn với khóa (DPoP, RFC 9449): gửi "
                     "'Authorization: DPoP <mã>' kèm bằng chứng DPoP ký bằng khóa đó; mã Bearer không được chấp nhận.",
    "invalid_dpop_proof": "Bằng chứng DPoP không hợp lệ (chữ ký, khóa, phương thức, địa chỉ, thời điểm, ath, "
                          "hoặc đã được dùng); hãy tạo bằng chứng mới cho mỗi yêu cầu.",
}
errors.add_messages(VI)


class BearerOrDPoP(HTTPBearer):
    """The ``Authorization`` header with the scheme ``Bearer`` or ``DPoP`` (RFC 9449 s.7.1)."""

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() not in ("bearer", "dpop") or not credentials:
            return None
        return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


bearer = BearerOrDPoP(auto_error=False, scheme_name="HTTPBearer",
                      description="An access token from /token (client_credentials, scope `dinhdanh.verify`) of an "
                                  "active partner: `Bearer <token>`, or `DPoP <token>` with a `DPoP` proof header "
                                  "for a DPoP-bound token (RFC 9449)")


def _unauthenticated(message: str, error: str = "invalid_token") -> HTTPException:
    return Refusal(401, "partner_unauthenticated", message,
                   headers={"WWW-Authenticate": f'Bearer error="{error}", scope="{SCOPE}", {dpop.challenge()}'})


def _dpop_refusal(request: Request, refused: dpop.ResourceRefusal) -> HTTPException:
    """401 with the DPoP challenge; the code says what to fix, the message which check failed."""
    code = "invalid_dpop_proof" if refused.error == "invalid_dpop_proof" else "dpop_required"
    message = errors.message_for(request, code, None, refused.description)
    return Refusal(401, code, message, headers={"WWW-Authenticate": dpop.challenge(refused.error,
                                                                                    refused.description)})


def limiter_of(request: Request) -> limits.RateLimiter:
    """The app's limiter; an app made without one gets ``limits.limiter_for`` its engine, once."""
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is None:
        limiter = request.app.state.limiter = limits.limiter_for(request.app.state.engine)
    return limiter


def authenticate_partner(request: Request, conn: sa.Connection, credentials: HTTPAuthorizationCredentials | None,
                         operation: str) -> sa.Row:
    from dinhdanh.web.oidc import issuer_of

    if credentials is None:
        raise _unauthenticated("An access token with the scope dinhdanh.verify is required "
                               "(Authorization: Bearer ...).", "invalid_request")
    issuer = issuer_of(request)
    token = tokens.validate_access_token(conn, credentials.credentials, issuer)
    if token is None or token.row.account_id is not None:
        raise _unauthenticated("The access token is not valid (expired, revoked, not issued here, "
                               "or not a client-credentials token).")
    if token.row.jkt is not None or credentials.scheme.lower() == "dpop":
        try:
            dpop.check_token_use(conn, token=credentials.credentials, jkt=token.row.jkt, scheme=credentials.scheme,
                                 proofs=request.headers.getlist("dpop"), method=request.method,
                                 url=issuer + request.url.path, now=token.now)
        except dpop.ResourceRefusal as refused:
            raise _dpop_refusal(request, refused) from None
    if SCOPE not in (token.row.scope or "").split():
        raise errors.insufficient_scope(SCOPE)
    partner = partners.active_partner(conn, token.row.client_id, operation)  # Forbidden -> 403
    if partner.dpop_required and token.row.jkt is None:  # a bearer token from before the policy changed
        raise _dpop_refusal(request, dpop.ResourceRefusal(
            "invalid_token", "This partner's policy requires DPoP-bound access tokens: get one from /token with "
                             "a DPoP proof, and send it as 'Authorization: DPoP <token>' with a proof."))
    limiter = limiter_of(request)
    key = f"partner:{partner.client_id}"
    try:
        wait = limiter.take(key, partner.rate_per_minute)
        if wait > 0:
            raise Refusal(429, "rate_limited", f"Over the rate limit of {partner.rate_per_minute} "
                          "requests per minute.", {"Retry-After": limits.retry_after(wait)})
        if partner.quota_per_day is not None:
            wait = limiter.count(key, partner.quota_per_day, limits.vietnam_day_end(limiter.now()))
            if wait > 0:
                raise Refusal(429, "quota_exceeded", f"Over the daily quota of {partner.quota_per_day} "
                              "requests; it resets at midnight, Vietnam time (UTC+7).",
                              {"Retry-After": limits.retry_after(wait)})
    except limits.LimiterUnavailable:
        log.error("rate limiter unavailable: refusing partner requests")
        raise Refusal(503, "rate_limiter_unavailable", "The rate limiter is unavailable, so no partner "
                      "request can be served now; try again shortly.", {"Retry-After": "5"}) from None
    return partner


def partner_for(operation: str):
    """A FastAPI dependency giving the active partner allowed ``operation`` (see the module doc)."""

    def dependency(request: Request, conn: Conn,
                   credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> sa.Row:
        return authenticate_partner(request, conn, credentials, operation)

    dependency.__name__ = f"partner_for_{operation}"
    return dependency


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
KycPartner = Annotated[sa.Row, Depends(partner_for("kyc"))]
BatchPartner = Annotated[sa.Row, Depends(partner_for("batch"))]
SubscribePartner = Annotated[sa.Row, Depends(partner_for("subscribe"))]
