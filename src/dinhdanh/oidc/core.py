"""OpenID Connect Core 1.0 on Authlib's: the ID token (s.2, s.3.1.3.6), the UserInfo endpoint
(s.5.3) and the protection of our own resources: bearer tokens (RFC 6750) and DPoP-bound ones
(RFC 9449, ``Authorization: DPoP`` with a proof).

ID tokens are signed ES256 (RS256 for a client registered for it) with the key in service, carry
``iss``, a pairwise ``sub``, ``aud``,
``azp``, ``exp``, ``iat``, ``auth_time``, ``nonce``, ``acr``, ``amr``, ``at_hash`` and ``sid``,
and the claims the ``claims`` parameter asked for in the ID token. Claims released by the scopes
(``profile``, ``email``...) come from the UserInfo endpoint, as s.5.4 asks when an access token
is issued.
"""

from __future__ import annotations

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import ResourceProtector as _ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator as _BearerTokenValidator
from authlib.oidc.core import OpenIDCode as _OpenIDCode
from authlib.oidc.core import UserInfo
from authlib.oidc.core import UserInfoEndpoint as _UserInfoEndpoint

from dinhdanh.oidc import dpop, keys, tokens
from dinhdanh.oidc.claims import claims_for_scope, release, requested_claim_names
from dinhdanh.oidc.tables import oidc_codes


class OpenIDCode(_OpenIDCode):
    """The ID token of the authorization code flow."""

    def __init__(self, provider):
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce, request) -> bool:
        """A nonce that came back in a code already is a replay (Authlib refuses the request)."""
        query = sa.select(oidc_codes.c.code_hash).where(oidc_codes.c.client_id == request.payload.client_id,
                                                        oidc_codes.c.nonce == nonce).limit(1)
        return self.provider.conn.execute(query).first() is not None

    def resolve_client_private_key(self, client):
        return self.provider.signing_key(self.get_client_algorithm(client))

    def get_client_algorithm(self, client) -> str:
        """ES256, or what the client registered (``id_token_signed_response_alg``: RS256)."""
        alg = getattr(client, "id_token_signed_response_alg", None)
        return alg if alg in keys.ALGS else keys.ALG

    def get_encode_header(self, client) -> dict:
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": self.provider.signing_key(alg).kid, "typ": "JWT"}

    def get_client_claims(self, client) -> dict:
        now = int(self.provider.now.timestamp())
        return {"iss": self.provider.issuer, "aud": client.client_id, "azp": client.client_id, "iat": now,
                "exp": now + int(tokens.ID_TOKEN_TTL.total_seconds())}

    def generate_user_info(self, user, scope) -> UserInfo:
        claims = {"sub": self.provider.pairwise_sub(user.client, user.subject)}
        if user.sid:
            claims["sid"] = user.sid
        wanted = requested_claim_names(user.claims_request, "id_token") - {"acr", "auth_time", "sub"}
        if wanted:
            claims.update(release(self.provider.person_claims(user.account_id), wanted))
        return UserInfo(claims)


class BearerTokenValidator(_BearerTokenValidator):
    """Our access tokens: signature against the published keys, then the row (not revoked) and the
    account (still usable)."""

    def __init__(self, provider):
        super().__init__(realm=None)
        self.provider = provider

    def authenticate_token(self, token_string):
        found = self.provider.resource_token(token_string)
        if found is not None and found.row.jkt is not None:  # RFC 9449 s.7.2: not as a bearer token
            raise dpop.ResourceRefusal("invalid_token", dpop.BOUND_AS_BEARER)
        return found


class DPoPTokenValidator(BearerTokenValidator):
    """``Authorization: DPoP <token>`` with a proof of its key (``Provider.dpop_token``)."""

    TOKEN_TYPE = "dpop"

    def validate_request(self, request):
        self.http = request.http  # the proof is checked against this request

    def authenticate_token(self, token_string):
        return self.provider.dpop_token(token_string, self.http)


class ResourceProtector(_ResourceProtector):
    """Authlib's protector bound to one request (its framework integrations keep it in a
    context local; our provider is built per request instead)."""

    def __init__(self, provider, request):
        super().__init__()
        self.request = request
        self.register_token_validator(BearerTokenValidator(provider))
        self.register_token_validator(DPoPTokenValidator(provider))

    def acquire_token(self, scopes=None):
        if isinstance(scopes, str):
            scopes = [scopes]
        return self.validate_request(scopes, self.request)


class UserInfoEndpoint(_UserInfoEndpoint):
    """Claims by the token's scopes, plus those its ``claims`` parameter asked for in userinfo."""

    def __init__(self, provider, request):
        super().__init__(server=provider, resource_protector=ResourceProtector(provider, request))
        self.provider = provider

    def get_issuer(self) -> str:
        return self.provider.issuer

    def resolve_private_key(self):
        return self.provider.signing_key()

    def generate_user_info(self, user, scope) -> UserInfo:
        wanted = claims_for_scope(scope) | requested_claim_names(user.claims_request, "userinfo")
        claims = {"sub": self.provider.pairwise_sub(user.client, user.subject)}
        claims.update(release(self.provider.person_claims(user.account_id), wanted))
        return UserInfo(claims)
