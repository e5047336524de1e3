"""Signed tree heads: the log's size, root hash and time, signed by the log's own key.

A head is ``{"tree_size": int, "root_hash": base64, "timestamp": ms since the epoch, "signature":
compact JWS}``. The JWS (ES256, header ``kid`` and ``typ`` ``tree-head+jws``) has as payload the
other three fields as JSON, keys sorted, no spaces; a head is valid when the signature verifies with
the key it names and the payload equals the three fields. The log's keys are public at
``GET /api/v1/audit/keys`` (a JWKS with every key the log ever signed with, so that heads saved long
ago stay checkable) and never rotate with the provider's keys: a transparency log keeps its key.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from dinhdanh.audit.tables import audit_keys, audit_tree_heads
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

ALG = "ES256"
TYPE = "tree-head+jws"
PURPOSE = "audit-log-key"

__all__ = ["Head", "sign_head", "check_head", "latest_head", "public_keys", "head_at", "HeadError"]


class HeadError(Exception):
    """A head that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Head:
    tree_size: int
    root_hash: bytes
    timestamp: int
    signature: str

    def as_dict(self) -> dict:
        return {"tree_size": self.tree_size, "root_hash": base64.b64encode(self.root_hash).decode(),
                "timestamp": self.timestamp, "signature": self.signature}

    @classmethod
    def from_dict(cls, data: dict) -> Head:
        try:
            size, stamp, signature = data["tree_size"], data["timestamp"], data["signature"]
            root = base64.b64decode(data["root_hash"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise HeadError(f"not a tree head ({type(exc).__name__})") from None
        if (not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(stamp, int)
                or isinstance(stamp, bool) or not isinstance(signature, str) or len(root) != 32):
            raise HeadError("not a tree head (field types)")
        return cls(size, root, stamp, signature)


def _payload(tree_size: int, root_hash: bytes, timestamp: int) -> bytes:
    return json.dumps({"root_hash": base64.b64encode(root_hash).decode(), "timestamp": timestamp,
                       "tree_size": tree_size}, sort_keys=True, separators=(",", ":")).encode()


_opened: dict[bytes, ECKey] = {}


def _signing_key(conn: sa.Connection, vault: Vault) -> ECKey:
    row = conn.execute(sa.select(audit_keys).where(audit_keys.c.active.is_(True))).first()
    if row is None:  # the log's first head: its key is made once (the sequencer holds the lease)
        key = ECKey.generate_key("P-256", {"use": "sig", "alg": ALG}, auto_kid=True)
        conn.execute(audit_keys.insert().values(kid=key.kid, public_jwk=key.as_dict(private=False),
                                                sealed=vault.seal(key.as_pem(private=True), PURPOSE),
                                                active=True, created_at=utcnow()))
        return key
    key = _opened.get(row.sealed)
    if key is None:
        key = _opened[row.sealed] = ECKey.import_key(vault.open(row.sealed, PURPOSE),
                                                     {"kid": row.kid, "use": "sig", "alg": ALG})
    return key


def sign_head(conn: sa.Connection, vault: Vault, tree_size: int, root_hash: bytes, timestamp: int) -> Head:
    key = _signing_key(conn, vault)
    token = jws.serialize_compact({"alg": ALG, "kid": key.kid, "typ": TYPE}, _payload(tree_size, root_hash, timestamp),
                                  key, algorithms=[ALG])
    return Head(tree_size, root_hash, timestamp, token)


def public_keys(conn: sa.Connection) -> dict:
    """Every key the log signed with, as a JWKS (the one in service first)."""
    rows = conn.execute(sa.select(audit_keys.c.kid, audit_keys.c.public_jwk)
                        .order_by(audit_keys.c.active.desc(), audit_keys.c.created_at.desc())).all()
    return {"keys": [{**{k: v for k, v in dict(r.public_jwk).items() if k in ("kty", "crv", "x", "y")},
                      "kid": r.kid, "use": "sig", "alg": ALG} for r in rows]}


def check_head(head: Head, jwks: dict) -> None:
    """Raise ``HeadError`` unless ``head``'s signature verifies with a key of ``jwks`` and covers its fields."""
    try:
        header = jws.extract_compact(head.signature.encode()).protected
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise HeadError("the signature is not a compact JWS") from None
    if header.get("alg") != ALG or header.get("typ") != TYPE:
        raise HeadError("the signature is not a tree head's (alg, typ)")
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if jwk is None:
        raise HeadError("the head is signed with a key the log does not have")
    try:
        payload = jws.deserialize_compact(head.signature, ECKey.import_key(jwk), algorithms=[ALG]).payload
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise HeadError("the signature does not verify") from None
    if payload != _payload(head.tree_size, head.root_hash, head.timestamp):
        raise HeadError("the signature covers other values than the head's")


def _head(row) -> Head | None:
    return None if row is None else Head(int(row.tree_size), bytes(row.root_hash), int(row.timestamp), row.signature)


_LATEST = sa.select(audit_tree_heads).order_by(audit_tree_heads.c.tree_size.desc()).limit(1)


def latest_head(conn: sa.Connection) -> Head | None:
    return _head(conn.execute(_LATEST).first())


def head_at(conn: sa.Connection, tree_size: int) -> Head | None:
    return _head(conn.execute(sa.select(audit_tree_heads).where(audit_tree_heads.c.tree_size == tree_size)).first())
