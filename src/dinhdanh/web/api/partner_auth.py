"""Partners authenticate with an access token from the provider's client-credentials grant (scope
``dinhdanh.verify``): there is no second token system. ``partner_for(operation)`` is the one
dependency every partner route uses: 401 without a valid token, 403 for a client that is not an
active partner allowed the operation, 429 over its rate limit (with ``Retry-After``).
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dinhdanh.exchange import limits, partners
from dinhdanh.oidc import tokens
from dinhdanh.web.deps import Conn

SCOPE = partners.SCOPE
bearer = HTTPBearer(auto_error=False, description="An access token from /token (client_credentials, scope "
                                                  "`dinhdanh.verify`) of an active partner")
_fallback = limits.MemoryLimiter()


def _unauthenticated(message: str, error: str = "invalid_token") -> HTTPException:
    return HTTPException(status_code=401, detail=message,
                         headers={"WWW-Authenticate": f'Bearer error="{error}", scope="{SCOPE}"'})


def limiter_of(request: Request) -> limits.RateLimiter:
    return getattr(request.app.state, "limiter", None) or _fallback


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
    wait = limiter_of(request).take(f"partner:{partner.client_id}", partner.rate_per_minute)
    if wait > 0:
        raise HTTPException(status_code=429, detail=f"Over the rate limit of {partner.rate_per_minute} "
                            "requests per minute.", headers={"Retry-After": limits.retry_after(wait)})
    return partner


def partner_for(operation: str):
    """A FastAPI dependency giving the active partner allowed ``operation`` (see the module doc)."""

    def dependency(request: Request, conn: Conn,
                   credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> sa.Row:
        return authenticate_partner(request, conn, credentials, operation)

    dependency.__name__ = f"partner_for_{operation}"
    return dependency


VerifyPartner = Annotated[sa.Row, Depends(partner_for("verify"))]
KycPartner = Annotated[sa.Row, Depends(partner_for("kyc"))]
BatchPartner = Annotated[sa.Row, Depends(partner_for("batch"))]
SubscribePartner = Annotated[sa.Row, Depends(partner_for("subscribe"))]
