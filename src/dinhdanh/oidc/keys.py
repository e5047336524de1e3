"""The provider's keys: ES256 signing keys with rotation and overlap, and its symmetric secrets.

One signing key is in service (``active``); ``rotate`` puts a new one in service and retires the
old one, which stays in the published JWKS until every token it signed has expired
(``published_until`` = retirement + the longest token lifetime), so relying parties that cache
the JWKS keep validating. Private halves are sealed by the vault (purpose ``oidc-<use>``).

>>> from dinhdanh.store.vault import Vault
>>> import sqlalchemy as sa
>>> from dinhdanh.oidc.tables import oidc_keys
>>> engine = sa.create_engine("sqlite://")
>>> oidc_keys.create(engine)
>>> vault = Vault(bytes(32))
>>> with engine.begin() as conn:
...     first = signing_key(conn, vault)
...     second = rotate(conn, vault)
...     [k["kid"] for k in published_jwks(conn)["keys"]] == [second.kid, first.kid]
True
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets

import sqlalchemy as sa
from joserfc import jws
from joserfc.jwk import ECKey, KeySet

from dinhdanh.oidc.tables import oidc_keys
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

ALG = "ES256"
CURVE = "P-256"
# The longest lifetime of anything signed (ID and access tokens), plus clock skew: how long a
# retired key stays published.
OVERLAP = dt.timedelta(minutes=15)


def _purpose(use: str) -> str:
    return f"oidc-{use}"


def _active(conn: sa.Connection, use: str):
    return conn.execute(_ACTIVE, {"use": use}).first()


_ACTIVE = sa.select(oidc_keys).where(oidc_keys.c.active == sa.bindparam("use"))


def _insert_active(conn: sa.Connection, vault: Vault, use: str, kid: str, secret: bytes,
                   public_jwk: dict | None = None) -> bool:
    """Insert a key in service for ``use``; False if another process did it first (unique
    ``active``), in which case nothing is written."""
    try:
        with conn.begin_nested():
            conn.execute(oidc_keys.insert().values(
                kid=kid, use=use, alg=ALG if use == "sig" else None, public_jwk=public_jwk,
                sealed=vault.seal(secret, _purpose(use)), active=use, created_at=utcnow()))
        return True
    except sa.exc.IntegrityError:
        return False


def _new_signing_key() -> ECKey:
    key = ECKey.generate_key(CURVE, {"use": "sig", "alg": ALG}, auto_kid=True)  # kid: RFC 7638 thumbprint
    return key


def signing_key(conn: sa.Connection, vault: Vault) -> ECKey:
    """The private signing key in service (created on first use)."""
    row = _active(conn, "sig")
    if row is None:
        key = _new_signing_key()
        if not _insert_active(conn, vault, "sig", key.kid, key.as_pem(private=True),
                              key.as_dict(private=False)):
            row = _active(conn, "sig")
        else:
            return key
    cache_key = (id(vault), row.sealed)  # the sealed bytes are unique: a rotated key is a new entry
    key = _opened.get(cache_key)
    if key is None:
        pem = vault.open(row.sealed, _purpose("sig"))
        key = ECKey.import_key(pem, {"kid": row.kid, "use": "sig", "alg": ALG})
        if len(_opened) > 64:
            _opened.clear()
        _opened[cache_key] = key
    return key


_opened: dict[tuple[int, bytes], ECKey] = {}


def rotate(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None) -> ECKey:
    """Put a new signing key in service; the old one stays published for ``OVERLAP``."""
    now = now or utcnow()
    conn.execute(oidc_keys.update().where(oidc_keys.c.active == "sig").values(
        active=None, retired_at=now, published_until=now + OVERLAP))
    key = _new_signing_key()
    if not _insert_active(conn, vault, "sig", key.kid, key.as_pem(private=True), key.as_dict(private=False)):
        raise RuntimeError("another rotation happened at the same time; run it again")
    return key


def published_jwks(conn: sa.Connection, now: dt.datetime | None = None) -> dict:
    """The public JWKS: the key in service first, then retired keys still inside their overlap."""
    now = now or utcnow()
    rows = conn.execute(
        sa.select(oidc_keys.c.kid, oidc_keys.c.public_jwk, oidc_keys.c.active)
        .where(oidc_keys.c.use == "sig",
               sa.or_(oidc_keys.c.active == "sig", oidc_keys.c.published_until > now))
        .order_by(oidc_keys.c.active.is_(None), oidc_keys.c.created_at.desc())
    ).all()
    keys = []
    for row in rows:
        jwk = {k: v for k, v in dict(row.public_jwk).items() if k in ("kty", "crv", "x", "y")}
        keys.append({**jwk, "kid": row.kid, "use": "sig", "alg": ALG})
    return {"keys": keys}


def sign_json(conn: sa.Connection, vault: Vault, payload: dict, typ: str) -> str:
    """``payload`` as a compact JWS (ES256) with the signing key in service, ``kid`` and ``typ`` in
    its header: documents the platform signs for others to keep (e-KYC answers, audit anchors),
    verifiable with the published JWKS (and, for old documents, with the key's row)."""
    key = signing_key(conn, vault)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return jws.serialize_compact({"alg": ALG, "kid": key.kid, "typ": typ}, body, key, algorithms=[ALG])


def is_published(conn: sa.Connection, kid: str, now: dt.datetime | None = None) -> bool:
    """Whether the signing key ``kid`` is still published (in service, or retired within its overlap)."""
    return conn.execute(_PUBLISHED, {"kid": kid, "now": now or utcnow()}).first() is not None


def published_clause() -> sa.Select:
    """The published key ``:kid`` at ``:now`` (bind parameters), as a select to use alone or in
    another statement (``tokens.validate_access_token`` reads it with the token's row)."""
    return sa.select(oidc_keys.c.kid).where(
        oidc_keys.c.kid == sa.bindparam("kid"), oidc_keys.c.use == "sig",
        sa.or_(oidc_keys.c.active == "sig", oidc_keys.c.published_until > sa.bindparam("now")))


_PUBLISHED = published_clause()


def verification_keys(conn: sa.Connection) -> KeySet:
    """The published keys as a joserfc KeySet (what tokens presented to us are checked with);
    empty before the first key exists (then nothing verifies)."""
    jwks = published_jwks(conn)
    return KeySet.import_key_set(jwks) if jwks["keys"] else KeySet([])


def list_keys(conn: sa.Connection) -> list[dict]:
    rows = conn.execute(sa.select(oidc_keys).where(oidc_keys.c.use == "sig")
                        .order_by(oidc_keys.c.created_at)).all()
    now = utcnow()
    return [{"kid": r.kid, "alg": r.alg, "created_at": r.created_at, "in_service": r.active == "sig",
             "retired_at": r.retired_at, "published_until": r.published_until,
             "published": r.active == "sig" or (r.published_until is not None and r.published_until > now)}
            for r in rows]


def secret(conn: sa.Connection, vault: Vault, use: str, size: int = 32) -> bytes:
    """A symmetric secret of the provider (``cookie``, ``pairwise``), created on first use."""
    assert use in ("cookie", "pairwise", "portal")
    row = _active(conn, use)
    if row is None:
        value = os.urandom(size)
        if _insert_active(conn, vault, use, f"{use}-{secrets.token_hex(8)}", value):
            return value
        row = _active(conn, use)
    return vault.open(row.sealed, _purpose(use))


def stored_secret(conn: sa.Connection, vault: Vault, use: str) -> bytes | None:
    row = _active(conn, use)
    return None if row is None else vault.open(row.sealed, _purpose(use))


def store_secret(conn: sa.Connection, vault: Vault, use: str, value: bytes) -> None:
    """Replace the secret in service for ``use`` (the demo portal's client secret)."""
    conn.execute(oidc_keys.delete().where(oidc_keys.c.active == use))
    _insert_active(conn, vault, use, f"{use}-{secrets.token_hex(8)}", value)
