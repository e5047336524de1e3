"""Citizen self-service: a person's own account, consents, login history and lock, with an access
token issued by our OpenID provider (scope ``dinhdanh.me``), never an officer token."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from dinhdanh.audit import service as audit
from dinhdanh.eid import auth as eid
from dinhdanh.oidc import consent, sessions, tokens
from dinhdanh.oidc.server import bearer_token
from dinhdanh.web import errors
from dinhdanh.web.api.schemas import ErrorBody
from dinhdanh.web.deps import Conn

SCOPE = "dinhdanh.me"
bearer = HTTPBearer(auto_error=False, description="An access token from /token with the scope `dinhdanh.me`")
router = APIRouter(prefix="/api/v1/me", tags=["me"],
                   responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}})


def _unauthenticated(message: str, error: str = "invalid_token") -> HTTPException:
    return HTTPException(status_code=401, detail=message,
                         headers={"WWW-Authenticate": f'Bearer error="{error}", scope="{SCOPE}"'})


def current_account(request: Request, conn: Conn,
                    credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> int:
    """The account behind a valid access token carrying ``dinhdanh.me``."""
    if credentials is None:
        raise _unauthenticated("An access token with the scope dinhdanh.me is required (Authorization: Bearer ...).",
                               "invalid_request")
    from dinhdanh.web.oidc import issuer_of

    token = bearer_token(conn, credentials.credentials, issuer_of(request))
    if token is None:
        raise _unauthenticated("The access token is not valid (expired, revoked, or not issued here).")
    if SCOPE not in token.scope.split():
        raise errors.insufficient_scope(SCOPE)
    return token.row.account_id


Account = Annotated[int, Depends(current_account)]


class Login(BaseModel):
    at: str
    client_id: str | None
    acr: str | None
    outcome: str
    ip: str | None
    user_agent: str | None


class Consent(BaseModel):
    client_id: str
    client_name: str
    scope: str
    claims: list[str]
    granted_at: str
    expires_at: str


PRINTABLE = r"^[^\x00-\x08\x0b-\x1f\x7f]*\S[^\x00-\x08\x0b-\x1f\x7f]*$"  # some text, no control characters


class LockBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Annotated[str, Field(min_length=1, max_length=500, pattern=PRINTABLE,
                                 description="Why you lock your account (lost phone, ...)")]


@router.get("", summary="My e-ID account")
def me(account_id: Account, conn: Conn) -> dict:
    return eid.account_view(conn, account_id)


@router.get("/consents", summary="The services I allowed to receive my data")
def my_consents(account_id: Account, conn: Conn) -> list[Consent]:
    return [Consent(**c) for c in consent.list_consents(conn, account_id)]


ClientId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~-]+$")]


class KycConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    client_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._~-]+$",
                                    description="The partner's client id")]
    fields: Annotated[list[Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]], Field(
        min_length=1, max_length=20, description="The fields it may receive by e-KYC (exchange.kyc)")]


@router.post("/consents", status_code=201, summary="Allow a partner to receive my data by e-KYC",
             responses={404: {"model": ErrorBody}})
def give_kyc_consent(body: KycConsentBody, account_id: Account, conn: Conn) -> Consent:
    from dinhdanh.exchange import kyc

    return Consent(**kyc.grant_consent(conn, account_id, body.client_id, body.fields))


@router.delete("/consents/{client_id}", status_code=204, summary="Withdraw a consent (the service's tokens stop)",
               responses={404: {"model": ErrorBody}})
def withdraw_consent(client_id: ClientId, account_id: Account, conn: Conn) -> None:
    consent.revoke(conn, account_id, client_id)


@router.get("/logins", summary="My login history")
def my_logins(account_id: Account, conn: Conn) -> list[Login]:
    return [Login(**row) for row in eid.login_history(conn, account_id)]


class Actor(BaseModel):
    kind: str = Field(description="officer / partner / other")
    label: str = Field(description="officer:<id>, cli:<user> or partner:<client id>")
    name: str | None = Field(description="The partner's name (officers are named by label)")


class Purpose(BaseModel):
    code: str
    text: str | None = Field(description="The purpose in Vietnamese")


class AccessEntry(BaseModel):
    access_id: int
    at: str
    who: Actor
    action: str
    purpose: Purpose
    fields: list[str] | None = Field(description="The fields read; null: the record as a whole / not stated")
    outcome: str
    leaf_index: int | None = Field(description="Its place in the transparency log (GET /api/v1/audit/proof/"
                                               "inclusion); null until sequenced, within seconds")
    leaf_hash: str | None = Field(description="Base64 of its RFC 9162 leaf hash; null until sequenced")


class AccessLogPage(BaseModel):
    items: list[AccessEntry]
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page; null at the end")


@router.get("/access-log", summary="Who read my data, when, why (newest first)")
def my_access_log(account_id: Account, conn: Conn,
                  limit: Annotated[int, Query(ge=1, le=audit.MAX_LOG_PAGE)] = 20,
                  before: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                                     description="Entries older than this access_id")] = None,
                  ) -> AccessLogPage:
    from dinhdanh.eid.tables import eid_accounts

    person_id = conn.execute(sa.select(eid_accounts.c.person_id)
                             .where(eid_accounts.c.account_id == account_id)).scalar_one_or_none()
    if person_id is None:
        return AccessLogPage(items=[], next_before=None)
    return AccessLogPage(**audit.access_log_of(conn, person_id, limit=limit, before=before))


@router.post("/lock", summary="Lock my account (every session and token stops at once)",
             responses={409: {"model": ErrorBody}})
def lock_me(body: LockBody, account_id: Account, conn: Conn) -> dict:
    view = eid.lock_by_owner(conn, account_id, body.reason)
    tokens.revoke_account_tokens(conn, account_id, "account_locked")
    sessions.end_all(conn, account_id)
    return view
