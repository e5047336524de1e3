"""Anchors: the access log's chain head, signed, kept outside the database.

The hash chain (``audit.chain``) shows an entry was altered, removed or inserted, unless whoever
did it also recomputed every hash after it, which anyone with write access to the database can.
An anchor closes that gap: the head (the last entry's ``access_id`` and hash) signed with the
provider's ES256 key, as a compact JWS (``typ`` ``audit-head+jwt``), handed to parties outside the
database: partners, an auditor, a public bulletin, a file on other storage. A later chain that no
longer holds that entry with that hash was rewritten, even if it is consistent with itself.

An anchor is checked against the key it names (``kid``: any key the provider ever had, retired
ones included, since anchors are kept for years) and against the chain. The payload is
``{"iss", "iat", "last_access_id", "last_hash", "entries"}``: counts and hashes, never personal
data.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from dinhdanh.audit.chain import GENESIS
from dinhdanh.audit.tables import access_log, audit_chain_head
from dinhdanh.oidc import keys
from dinhdanh.oidc.tables import oidc_keys
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

TYPE = "audit-head+jwt"


def chain_head(conn: sa.Connection) -> dict:
    """The head as it stands: the last entry's id and hash, and how many entries precede it."""
    row = conn.execute(sa.select(audit_chain_head.c.last_access_id, audit_chain_head.c.last_hash)
                       .where(audit_chain_head.c.id == 1)).first()
    last_id, last_hash = (row.last_access_id, row.last_hash) if row is not None else (0, GENESIS)
    entries = conn.execute(sa.select(sa.func.count()).select_from(access_log)
                           .where(access_log.c.access_id <= last_id)).scalar_one()
    return {"last_access_id": int(last_id), "last_hash": last_hash, "entries": int(entries)}


def sign_head(conn: sa.Connection, vault: Vault, issuer: str, now: dt.datetime | None = None) -> str:
    """The current head, signed: a compact JWS to keep outside the database."""
    payload = {"iss": issuer, "iat": int((now or utcnow()).timestamp()), **chain_head(conn)}
    return keys.sign_json(conn, vault, payload, TYPE)


@dataclass
class AnchorCheck:
    valid: bool
    reason: str | None = None
    last_access_id: int | None = None
    last_hash: str | None = None
    signed_at: str | None = None
    kid: str | None = None

    def as_dict(self) -> dict:
        return {"valid": self.valid, "reason": self.reason, "last_access_id": self.last_access_id,
                "last_hash": self.last_hash, "signed_at": self.signed_at, "kid": self.kid}


def check_anchor(conn: sa.Connection, token: str) -> AnchorCheck:
    """Whether ``token`` is an anchor signed by one of our keys and the chain still holds its head.

    Reasons when not: ``not an anchor`` (malformed, wrong type), ``unknown key``, ``bad signature``,
    ``entry missing`` (the anchored entry is gone), ``hash differs`` (the chain was rewritten)."""
    token = (token or "").strip()
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError, UnicodeError):
        return AnchorCheck(False, "not an anchor")
    kid = header.get("kid")
    if header.get("typ") != TYPE or header.get("alg") != keys.ALG or not isinstance(kid, str):
        return AnchorCheck(False, "not an anchor")
    public = conn.execute(sa.select(oidc_keys.c.public_jwk).where(oidc_keys.c.kid == kid,
                                                                  oidc_keys.c.use == "sig")).scalar()
    if not public:
        return AnchorCheck(False, "unknown key", kid=kid)
    try:
        key = ECKey.import_key(dict(public))
        payload = json.loads(jws.deserialize_compact(token, key, algorithms=[keys.ALG]).payload)
        last_id, last_hash, iat = int(payload["last_access_id"]), str(payload["last_hash"]), int(payload["iat"])
    except (JoseError, ValueError, TypeError, KeyError, UnicodeError):
        return AnchorCheck(False, "bad signature", kid=kid)
    found = AnchorCheck(True, None, last_id, last_hash, dt.datetime.fromtimestamp(iat, dt.UTC).isoformat(), kid)
    if last_id == 0:  # an anchor of the empty log: nothing to find
        found.valid, found.reason = last_hash == GENESIS, None if last_hash == GENESIS else "hash differs"
        return found
    held = conn.execute(sa.select(access_log.c.hash).where(access_log.c.access_id == last_id)).scalar()
    if held is None:
        found.valid, found.reason = False, "entry missing"
    elif held != last_hash:
        found.valid, found.reason = False, "hash differs"
    return found


__all__ = ["TYPE", "chain_head", "sign_head", "check_anchor", "AnchorCheck"]
