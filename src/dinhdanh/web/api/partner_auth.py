"""Partners authenticate with an access token from the provider's client-credentials grant (scope
``dinhdanh.verify``): there is no second token system. ``partner_for(operation)`` is the one
dependency every partner route uses: 401 without a valid token, 403 for a client that is not an
active partner allowed the operation, 429 over its rate limit or its daily quota (with
``Retry-After``: for the quota, the seconds to midnight in Vietnam), 503 ``rate_limiter_unavailable``
when the shared limiter (Redis, or the database without it) does not answer: the exchange then
fails closed, since a national register does not disclose data to partners whose limits it cannot
enforce, and the error says so plainly rather than hiding behind a 500. Each request counts once against the quota, whatever it
carries (a batch upload is one request).
"""

from __future__ import annotations

import logging
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dinhdanh.exchange import limits, partners
from dinhdanh.oidc import tokens
from dinhdanh.web.deps import Conn

log = logging.getLogger("dinhdanh.exchange")
SCOPE = partners.SCOPE
bearer = HTTPBearer(auto_error=False, description="An access token from /token (client_credentials, scope "
                                                  "`dinhdanh.verify`) of an active partner")


class PartnerRefusal(HTTPException):
    """An HTTP refusal with a stable error code (``web.errors`` puts it in the body)."""

    def __init__(self, status_code: int, code: str, detail: str, headers: dict | None = None):
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def _unauthenticated(message: str, error: str = "invalid_token") -> HTTPException:
    return PartnerRefusal(401, "partner_unauthenticated", message,
                          headers={"WWW-Authenticate": f'Bearer error="{error}", scope="{SCOPE}"'})


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
    token = tokens.validate_access_token(conn, credentials.credentials, issuer_of(request))
    if token is None or token.row.account_id is not None:
        raise _unauthenticated("The access token is not valid (expired, revoked, not issued here, "
                               "or not a client-credentials token).")
    if SCOPE not in (token.row.scope or "").split():
        raise HTTPException(status_code=403, detail=f"The access token lacks the scope {SCOPE}.",
                            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{SCOPE}"'})
    partner = partners.active_partner(conn, token.row.client_id, operation)  # Forbidden -> 403
    limiter = limiter_of(request)
    key = f"partner:{partner.client_id}"
    try:
        wait = limiter.take(key, partner.rate_per_minute)
        if wait > 0:
            raise PartnerRefusal(429, "rate_limited", f"Over the rate limit of {partner.rate_per_minute} "
                                 "requests per minute.", {"Retry-After": limits.retry_after(wait)})
        if partner.quota_per_day is not None:
            wait = limiter.count(key, partner.quota_per_day, limits.vietnam_day_end(limiter.now()))
            if wait > 0:
                raise PartnerRefusal(429, "quota_exceeded", f"Over the daily quota of {partner.quota_per_day} "
                                     "requests; it resets at midnight, Vietnam time (UTC+7).",
                                     {"Retry-After": limits.retry_after(wait)})
    except limits.LimiterUnavailable:
        log.error("rate limiter unavailable: refusing partner requests")
        raise PartnerRefusal(503, "rate_limiter_unavailable", "The rate limiter is unavailable, so no partner "
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
