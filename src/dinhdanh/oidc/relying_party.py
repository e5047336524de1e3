"""What a relying party checks in an ID token (OpenID Connect Core s.3.1.3.7), with joserfc.

The demo portal uses it; a relying party in Python can too. The algorithm is fixed by the
relying party (ES256 here), never taken from the token: ``alg: none`` and an HS256 token "signed"
with our public key are refused before any claim is read.

>>> validate_id_token("not.a.token", {"keys": []}, issuer="https://id.example", client_id="c", nonce="n")
Traceback (most recent call last):
...
dinhdanh.oidc.relying_party.IdTokenError: the ID token does not verify: ...
"""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from dinhdanh.oidc.claims import ACR_LEVELS

ALGORITHMS = ("ES256",)


class IdTokenError(Exception):
    """The ID token must not be trusted."""


def validate_id_token(id_token, jwks, *, issuer: str, client_id: str, nonce: str | None,
                      algorithms=ALGORITHMS, now: int | None = None, leeway: int = 30,
                      required_level: int | None = None, max_age: int | None = None) -> dict:
    """The ID token's claims, once its signature (one of ``jwks``, one of ``algorithms``), ``iss``,
    ``aud``/``azp``, ``exp``, ``iat``, ``nonce`` and, when asked, ``acr`` and ``auth_time`` check."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise IdTokenError("the ID token does not verify: not a compact JWS")
    now = int(time.time()) if now is None else now
    try:
        keyset = jwks if isinstance(jwks, KeySet) else KeySet.import_key_set(jwks)
        token = jwt.decode(id_token, keyset, algorithms=list(algorithms))
    except (JoseError, ValueError, TypeError, KeyError) as e:
        raise IdTokenError(f"the ID token does not verify: {e}") from None
    if token.header.get("alg") not in algorithms:  # belt and braces: joserfc enforces it already
        raise IdTokenError("unexpected signing algorithm")
    claims = dict(token.claims)
    options = {"iss": {"essential": True, "value": issuer}, "sub": {"essential": True},
               "aud": {"essential": True, "value": client_id}, "exp": {"essential": True},
               "iat": {"essential": True}}
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    try:
        jwt.JWTClaimsRegistry(now=now, leeway=leeway, **options).validate(claims)
    except JoseError as e:
        raise IdTokenError(f"the ID token is not for us or no longer valid: {e}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise IdTokenError("the ID token was issued to another party (azp)")
    if claims["iat"] > now + leeway:
        raise IdTokenError("the ID token is issued in the future")
    if required_level is not None and ACR_LEVELS.get(claims.get("acr"), 0) < required_level:
        raise IdTokenError(f"the authentication level is below level {required_level}")
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int) or now - auth_time > max_age + leeway:
            raise IdTokenError("the authentication is older than max_age")
    return claims
