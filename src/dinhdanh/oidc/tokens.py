"""Access tokens (JWT, ES256, the RFC 9068 profile) and refresh tokens, kept as SHA-256 rows so
they can be revoked, rotated and introspected.

Every access token is a JWT any resource server can check against the published JWKS alone
(``iss``, ``sub``, ``aud``, ``client_id``, ``scope``, ``exp``, ``iat``, ``jti``, and ``cnf.jkt`` for a
DPoP-bound one, RFC 9449 s.6.1); the platform's own
resources (userinfo, the self-service API) also look the row up, so that a revoked token stops at
once. Tokens of one grant share a ``family_id``: a used code or a rotated refresh token presented
again revokes the family (RFC 9700 s.4.14: refresh token rotation with reuse detection).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from authlib.oauth2.rfc6749 import TokenMixin
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import JoseError

from dinhdanh.oidc import keys
from dinhdanh.eid.tables import eid_accounts
from dinhdanh.oidc.clients import client_columns
from dinhdanh.oidc.tables import oidc_clients, oidc_sessions, oidc_tokens
from dinhdanh.store.base import utcnow
from dinhdanh.store.prepared import Prepared
from dinhdanh.store.vault import Vault

ACCESS_TTL = dt.timedelta(minutes=10)
REFRESH_TTL = dt.timedelta(days=30)
CODE_TTL = dt.timedelta(seconds=60)
ID_TOKEN_TTL = dt.timedelta(minutes=10)
assert max(ACCESS_TTL, ID_TOKEN_TTL) < keys.OVERLAP  # a retired key outlives what it signed
ACCESS_TOKEN_TYPE = "at+jwt"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_id() -> str:
    return secrets.token_urlsafe(32)[:43]


def new_jti() -> str:
    """A token's ``jti``: the microseconds since 1970 in 13 hex digits (in order, byte for byte, until
    the year 2112), then 180 random bits (30 base64url characters). The row of every token is found
    by it (an access token) or written with it: new rows go to the end of the index, not to random
    pages; the random part keeps it unique across processes and unguessable."""
    return f"{time.time_ns() // 1000:013x}{secrets.token_urlsafe(23)[:30]}"


def mint_access_token(conn: sa.Connection, vault: Vault, *, issuer: str, client_id: str, subject: str,
                      scope: str, now: dt.datetime, extra: dict | None = None, key=None) -> tuple[str, str, dt.datetime]:
    """A signed access token; returns (token, jti, expiry). The caller stores the row. ``key``: the
    ES256 key that signs at ``now``, when the caller has it (``Provider.signing_key``)."""
    key = key or keys.signing_key(conn, vault, now)
    jti = new_jti()
    expires = now + ACCESS_TTL
    claims = {"iss": issuer, "sub": subject, "aud": issuer, "client_id": client_id, "scope": scope,
              "iat": int(now.timestamp()), "exp": int(expires.timestamp()), "jti": jti, **(extra or {})}
    return _es256_compact(key, claims), jti, expires


def _es256_compact(key, claims: dict) -> str:
    """The JWS compact serialization (RFC 7515 s.7.1) of ``claims``, signed ES256 (RFC 7518 s.3.4:
    the signature is R and S as two 32-byte big-endian integers) with ``key`` (a joserfc ``ECKey``
    on P-256), header ``{"alg": "ES256", "kid": ..., "typ": "at+jwt"}``. The access token is the one
    JWT minted per request, thousands a second; joserfc's generic serializer (its registries, header
    checks and key dispatch) cost as much as the signature itself. What it signs is checked by
    joserfc like any token presented to us (``validate_access_token``), and by the tests."""
    header = _HEADERS.get(key.kid)
    if header is None:
        if key.curve_name != "P-256":
            raise ValueError("ES256 signs with a P-256 key")
        header = _HEADERS[key.kid] = _b64(orjson.dumps({"alg": keys.ALG, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}))
    signing_input = header + b"." + _b64(orjson.dumps(claims))
    r, s = decode_dss_signature(key.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return (signing_input + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode("ascii")


_HEADERS: dict[str, bytes] = {}  # the encoded header of each signing key (a handful, never removed)


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def store(conn: sa.Connection, *, kind: str, value: str, jti: str, client_id: str, scope: str,
          issued_at: dt.datetime, expires_at: dt.datetime, account_id: int | None = None,
          session_id: int | None = None, family_id: str | None = None, claims: dict | None = None,
          acr: str | None = None, amr: list | None = None, auth_time: dt.datetime | None = None,
          jkt: str | None = None) -> None:
    """Store a token's row; ``jkt``: the thumbprint of the DPoP key it is bound to (oidc.dpop)."""
    _INSERT.rowcount(conn, dict(
        kind=kind, token_hash=digest(value), jti=jti, client_id=client_id, account_id=account_id,
        session_id=session_id, family_id=family_id, scope=scope, claims=claims, acr=acr, amr=amr,
        auth_time=auth_time, issued_at=issued_at, expires_at=expires_at, jkt=jkt,
    ))


# every token answered writes its row: on the driver's cursor (``store.prepared``)
_STORED = ("kind", "token_hash", "jti", "client_id", "account_id", "session_id", "family_id", "scope", "claims", "acr",
           "amr", "auth_time", "issued_at", "expires_at", "jkt")
_INSERT = Prepared(oidc_tokens.insert(), keys=list(_STORED))


@dataclass
class Token(TokenMixin):
    """A stored token, as Authlib's grants and endpoints see it."""

    row: sa.Row
    now: dt.datetime
    client: object = None  # set for a bearer token presented to one of our resources
    user: object = None
    person_id: int | None = None  # the account's person in the register (a citizen's), with ``user``

    def get_client(self):
        return self.client

    def get_user(self):
        return self.user

    @property
    def scope(self) -> str:
        return self.row.scope

    @property
    def kind(self) -> str:
        return self.row.kind

    def check_client(self, client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.expires_at <= self.now

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None

    def is_active(self) -> bool:
        return not self.is_expired() and not self.is_revoked()


def find(conn: sa.Connection, value, kind: str | None = None, now: dt.datetime | None = None) -> Token | None:
    """The stored token for ``value`` (any state: expired, revoked, signed by a retired key), or
    None. An access token (a JWT) is found by the ``jti`` of its payload, read without checking the
    signature, and the row must have the hash of the whole token: only the very token we issued
    finds it. A refresh token (opaque) is found by its hash."""
    if not isinstance(value, str) or not value or len(value) > 4096:
        return None
    hashed = digest(value)
    if kind != "refresh" and value.count(".") == 2:
        jti = _unverified_jti(value)
        row = _ACCESS_BY_JTI.first(conn, {"jti": jti, "hash": hashed}) if jti is not None else None
    elif kind != "access":
        row = _REFRESH_BY_HASH.first(conn, {"hash": hashed})
    else:
        row = None  # an access token is a JWT (each query reads rows of its own kind only)
    return Token(row, now or utcnow()) if row is not None else None


def _unverified_jti(value: str) -> str | None:
    """The ``jti`` claim in a JWS compact token's payload, unchecked (None if there is none): only
    a key to look the row up by, which must then match the hash of the whole token."""
    payload = value.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti if isinstance(jti, str) and 0 < len(jti) <= 43 else None


# with its session's public ``sid`` (None without a session): a refresh puts it in the new tokens.
# The kinds are literals: each query must imply its partial index's condition (``oidc.tables``),
# in a plan made before the parameters are known, too.
_WITH_SID = (sa.select(oidc_tokens, oidc_sessions.c.sid)
             .outerjoin(oidc_sessions, oidc_sessions.c.session_id == oidc_tokens.c.session_id))
_ACCESS_BY_JTI = Prepared(_WITH_SID.where(oidc_tokens.c.jti == sa.bindparam("jti"),
                                          oidc_tokens.c.token_hash == sa.bindparam("hash"),
                                          oidc_tokens.c.kind == sa.literal_column("'access'")))
_REFRESH_BY_HASH = Prepared(_WITH_SID.where(oidc_tokens.c.token_hash == sa.bindparam("hash"),
                                            oidc_tokens.c.kind == sa.literal_column("'refresh'")))


# Access tokens whose signature, type and claims were checked in this process: token hash ->
# (exp, iss, jti, kid). Only what the JWT itself proves is remembered (until it expires); the
# stored row (revocation, expiry) and whether the signing key is still published are read on every
# request. Bounded: cleared when full.
_CHECKED: dict[str, tuple[int, str, str, str]] = {}
_CHECKED_MAX = 50_000


def _checked_claims(conn: sa.Connection, value: str, hashed: str, issuer: str,
                    now: dt.datetime) -> tuple[str, str | None] | None:
    """``(jti, kid)`` of a JWT access token for ``issuer``, unexpired and signed by one of our keys.
    ``kid`` is None when the signature was checked now, against the published keys; when only
    the remembered claims were checked, whether ``kid`` is still published is for the caller to
    read (with the stored row: ``_BY_JTI_AND_KEY``)."""
    at = int(now.timestamp())
    known = _CHECKED.get(hashed)
    if known is not None:
        exp, iss, jti, kid = known
        return (jti, kid) if exp > at and iss == issuer else None
    try:
        token = jwt.decode(value, keys.verification_keys(conn), algorithms=[keys.ALG])
        if token.header.get("typ") != ACCESS_TOKEN_TYPE:
            return None
        jwt.JWTClaimsRegistry(now=at, iss={"essential": True, "value": issuer},
                              exp={"essential": True}, jti={"essential": True}).validate(token.claims)
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
        return None
    exp, jti, kid = token.claims.get("exp"), token.claims.get("jti"), token.header.get("kid")
    if isinstance(exp, int) and isinstance(jti, str) and isinstance(kid, str):
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[hashed] = (exp, issuer, jti, kid)
    return (jti, None) if isinstance(jti, str) else None


def validate_access_token(conn: sa.Connection, value, issuer: str, now: dt.datetime | None = None) -> Token | None:
    """The stored row of a valid access token (signed by one of our published keys, issued by
    ``issuer``, not expired, not revoked), else None. Never raises on malformed input.

    One query on the hot path: the stored row, and whether the signing key is still published."""
    now = now or utcnow()
    if not isinstance(value, str) or not value or len(value) > 4096 or value.count(".") != 2:
        return None
    hashed = digest(value)
    claims = _checked_claims(conn, value, hashed, issuer, now)
    if claims is None:
        return None
    jti, kid = claims
    if kid is None:
        row = _ACCESS_BY_JTI.first(conn, {"jti": jti, "hash": hashed})
    else:
        row = _BY_JTI_AND_KEY.first(conn, {"jti": jti, "hash": hashed, "kid": kid, "now": now})
        if row is not None and not row.key_published:
            return None
    if row is None:
        return None
    found = Token(row, now)
    if not found.is_active():
        return None
    return found


# the stored token (with ``jkt``, the DPoP key it is bound to, if any), whether the key that
# signed it is still published (keys.is_published), and, for the resource that reads them next
# (``Provider.resource_token``), its account as it stands and its session's sid (``HOLDER``)
HOLDER = ("account_state", "account_subject", "account_kind", "account_level", "account_person_id", "session_sid")
_BY_JTI_AND_KEY = Prepared(sa.select(
    oidc_tokens, keys.published_clause().exists().label("key_published"),
    eid_accounts.c.state.label("account_state"), eid_accounts.c.subject.label("account_subject"),
    eid_accounts.c.kind.label("account_kind"), eid_accounts.c.level.label("account_level"),
    eid_accounts.c.person_id.label("account_person_id"), oidc_sessions.c.sid.label("session_sid"),
    *client_columns(),  # ... and its client as it stands (``clients.client_in``): approval read every time
).select_from(
    oidc_tokens.outerjoin(eid_accounts, eid_accounts.c.account_id == oidc_tokens.c.account_id)
    .outerjoin(oidc_sessions, oidc_sessions.c.session_id == oidc_tokens.c.session_id)
    .outerjoin(oidc_clients, oidc_clients.c.client_id == oidc_tokens.c.client_id)
).where(oidc_tokens.c.jti == sa.bindparam("jti"), oidc_tokens.c.token_hash == sa.bindparam("hash"),
        oidc_tokens.c.kind == sa.literal_column("'access'")))


def _revoke(conn: sa.Connection, condition, reason: str, now: dt.datetime | None = None) -> int:
    result = conn.execute(oidc_tokens.update().where(condition, oidc_tokens.c.revoked_at.is_(None))
                          .values(revoked_at=now or utcnow(), revoke_reason=reason))
    return result.rowcount


def revoke_family(conn: sa.Connection, family_id: str | None, reason: str) -> int:
    if not family_id:
        return 0
    return _revoke(conn, oidc_tokens.c.family_id == family_id, reason)


def revoke_one(conn: sa.Connection, token_id: int, reason: str) -> int:
    return conn.execute(_REVOKE_ONE, {"id": token_id, "at": utcnow(), "reason": reason}).rowcount


_REVOKE_ONE = (oidc_tokens.update().where(oidc_tokens.c.token_id == sa.bindparam("id"),
                                          oidc_tokens.c.revoked_at.is_(None))
               .values(revoked_at=sa.bindparam("at"), revoke_reason=sa.bindparam("reason")))


def revoke_client_tokens(conn: sa.Connection, client_id: str, reason: str) -> int:
    return _revoke(conn, oidc_tokens.c.client_id == client_id, reason)


def revoke_account_tokens(conn: sa.Connection, account_id: int, reason: str, client_id: str | None = None) -> int:
    condition = oidc_tokens.c.account_id == account_id
    if client_id is not None:
        condition = sa.and_(condition, oidc_tokens.c.client_id == client_id)
    return _revoke(conn, condition, reason)


def mark_rotated(conn: sa.Connection, token_id: int, now: dt.datetime) -> bool:
    """Mark a refresh token as exchanged; False if it was already (a concurrent reuse) or its
    family was revoked since it was read."""
    return _ROTATE.rowcount(conn, {"id": token_id, "at": now}) == 1


# ... and not revoked meanwhile: the token was read unlocked, and a family revoked by another
# transaction since (reuse, logout, consent withdrawn) must not get a new token it would not cover
_ROTATE = Prepared(oidc_tokens.update().where(oidc_tokens.c.token_id == sa.bindparam("id"),
                                              oidc_tokens.c.rotated_at.is_(None), oidc_tokens.c.revoked_at.is_(None))
                   .values(rotated_at=sa.bindparam("at")))
