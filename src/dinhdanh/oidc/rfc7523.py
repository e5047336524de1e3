"""Client authentication with a signed JWT: ``private_key_jwt`` (RFC 7523 s.2.2, OpenID Connect
Core s.9).

The client signs an assertion (``iss`` = ``sub`` = its client_id, ``aud`` = our issuer or the
endpoint it calls, a short ``exp``, a ``jti`` never seen before) with a key of the JWKS registered
for it. Only asymmetric algorithms are accepted, so a key registered as public can never serve
as an HMAC secret. Each ``jti`` is remembered until the assertion expires (at most an hour).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError

from dinhdanh.oidc.tables import oidc_assertions
from dinhdanh.store.base import utcnow

ALGORITHMS = ["ES256", "ES384", "RS256", "PS256", "EdDSA"]
# Authlib's client signs assertions valid for an hour by default; longer ones are refused (their
# ``jti`` must be remembered until they expire).
MAX_LIFETIME = dt.timedelta(hours=1, minutes=1)


class PrivateKeyJWT(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, conn: sa.Connection, audiences: list[str]):
        super().__init__(validate_jti=True, leeway=30)
        self.conn = conn
        self.audiences = audiences

    def get_audiences(self):
        return self.audiences

    def resolve_client_public_key(self, client):
        return client.public_keys()

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ALGORITHMS)
        except (JoseError, ValueError, TypeError, KeyError) as e:
            raise InvalidClientError(description="The client assertion does not verify.") from e
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims):
        super().verify_claims(claims)
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or dt.datetime.fromtimestamp(exp, dt.UTC) > utcnow() + MAX_LIFETIME:
            raise InvalidClientError(description="The client assertion must expire within an hour.")

    def validate_jti(self, claims, jti):
        if not isinstance(jti, str) or not jti or len(jti) > 128:
            return False
        now = utcnow()
        self.conn.execute(oidc_assertions.delete().where(oidc_assertions.c.expires_at < now - MAX_LIFETIME))
        try:
            with self.conn.begin_nested():
                self.conn.execute(oidc_assertions.insert().values(
                    client_id=str(claims["sub"])[:64], jti=jti,
                    expires_at=dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)))
        except sa.exc.IntegrityError:
            return False
        return True
