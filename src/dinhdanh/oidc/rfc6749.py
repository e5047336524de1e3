"""The OAuth 2.0 grants (RFC 6749) on Authlib's: authorization code (s.4.1), refresh token (s.6)
and client credentials (s.4.4), with their storage.

- A code lives 60 seconds and is claimed atomically when presented: a second presentation finds
  it used, is refused, and revokes every token issued from it (s.4.1.2, "SHOULD revoke").
- A refresh token is exchanged for a new one each time (rotation); presenting an exchanged one
  again means it leaked, so the whole family (every token of the grant) is revoked (RFC 9700
  s.4.14.2).
- Client credentials are for partner APIs: only partner scopes, no refresh token, no person.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oidc.core import AuthorizationCodeMixin

from dinhdanh.oidc import dpop, officers, tokens
from dinhdanh.oidc.claims import PARTNER_SCOPES
from dinhdanh.oidc.tables import oidc_codes

CLIENT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]


def refuse_repeated(payload) -> None:
    """Request parameters MUST NOT be included more than once (RFC 6749 s.3.1, s.3.2; a pushed
    request's too, RFC 9126 s.2.1): ``InvalidRequestError`` naming the first repeated one."""
    for name, values in payload.datalist.items():
        if len(values) > 1:
            raise InvalidRequestError(f"Repeated parameter: {name[:64]}.")


@dataclass(frozen=True)
class EndUser:
    """The person a grant is for, with how and when they authenticated."""

    account_id: int
    subject: str  # the account's stable subject, the basis of pairwise ``sub``
    kind: str
    level: int | None
    acr: str
    amr: tuple[str, ...]
    auth_time: dt.datetime
    session_id: int | None = None
    sid: str | None = None
    claims_request: dict | None = None
    client: Any = None  # the relying party the grant is for (its sector makes the pairwise sub)

    def get_user_id(self) -> int:
        return self.account_id


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    row: sa.Row

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self):
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str:
        return self.row.acr

    def get_amr(self) -> list[str]:
        return list(self.row.amr)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def save_authorization_code(self, code: str, request) -> None:
        user: EndUser = request.user
        data = request.payload.data
        now = self.server.now
        self.server.conn.execute(oidc_codes.insert().values(
            code_hash=tokens.digest(code), client_id=request.client.client_id, account_id=user.account_id,
            session_id=user.session_id, redirect_uri=data["redirect_uri"], scope=request.scope,
            nonce=data.get("nonce"), code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"], claims=user.claims_request, acr=user.acr,
            amr=list(user.amr), auth_time=user.auth_time, family_id=tokens.new_id(), created_at=now,
            expires_at=now + tokens.CODE_TTL))

    def query_authorization_code(self, code, client):
        if not isinstance(code, str) or not code or len(code) > 200:
            return None
        conn, now = self.server.conn, self.server.now
        where = (oidc_codes.c.code_hash == tokens.digest(code), oidc_codes.c.client_id == client.client_id)
        row = conn.execute(sa.select(oidc_codes).where(*where)).first()
        if row is None:
            return None
        if row.used_at is not None:
            tokens.revoke_family(conn, row.family_id, "code_reused")
            return None
        if row.expires_at <= now:
            return None
        claimed = conn.execute(oidc_codes.update().where(*where, oidc_codes.c.used_at.is_(None))
                               .values(used_at=now)).rowcount
        if claimed != 1:  # presented twice at the same moment
            tokens.revoke_family(conn, row.family_id, "code_reused")
            return None
        return AuthorizationCode(row)

    def delete_authorization_code(self, authorization_code) -> None:
        """Nothing to do: the code was marked used when it was claimed (and is kept, so that a
        second use is recognised as such)."""

    def authenticate_user(self, authorization_code: AuthorizationCode):
        row = authorization_code.row
        return self.server.end_user(row.account_id, acr=row.acr, amr=row.amr, auth_time=row.auth_time,
                                    session_id=row.session_id, claims_request=row.claims,
                                    client=self.request.client)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        conn, now = self.server.conn, self.server.now
        found = tokens.find(conn, refresh_token, "refresh", now)
        if found is None or found.row.client_id != self.request.client.client_id:
            return None
        if found.row.rotated_at is not None:
            tokens.revoke_family(conn, found.row.family_id, "refresh_reused")
            return None
        if found.row.revoked_at is not None or found.is_expired():
            return None
        proof = self.server.dpop_proof
        if found.row.jkt is not None and (proof is None or not hmac.compare_digest(proof.jkt, found.row.jkt)):
            # RFC 9449 s.5: a public client's refresh token is used with the key it is bound to
            raise dpop.InvalidDPoPProofError("This refresh token is bound to a DPoP key: send a DPoP proof "
                                             "signed with that key.")
        if not tokens.mark_rotated(conn, found.row.token_id, now):
            tokens.revoke_family(conn, found.row.family_id, "refresh_reused")
            return None
        return found

    def authenticate_user(self, refresh_token):
        return refresh_user(self.server, refresh_token.row, self.request.client)

    def revoke_old_credential(self, refresh_token) -> None:
        """Already done: the old refresh token was marked rotated when it was accepted."""


def refresh_user(server, row, client) -> EndUser:
    """The person a refresh token's grant is for, if they may still have tokens: their account
    usable, and an officer's sign-in still standing; ``InvalidGrantError`` otherwise."""
    user = server.end_user(row.account_id, acr=row.acr, amr=row.amr or [], auth_time=row.auth_time,
                           session_id=row.session_id, claims_request=row.claims, client=client, sid=row.sid)
    if user is None:
        raise InvalidGrantError("The account is no longer usable.")
    if not officers.still_officer(server.conn, row.scope, row.account_id, row.auth_time):
        raise InvalidGrantError("The account is no longer an active officer's, or the officer's sign-ins "
                                "were revoked.")
    return user


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        self.check_partner_scope(self.request.payload.scope)

    @staticmethod
    def check_partner_scope(scope: str | None) -> None:
        if scope and any(s not in PARTNER_SCOPES for s in scope.split()):
            raise InvalidScopeError(f"Client credentials carry partner scopes only ({' '.join(PARTNER_SCOPES)}).")
