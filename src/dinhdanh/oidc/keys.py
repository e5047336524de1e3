"""The provider's keys: signing keys (ES256, and RS256 for the clients that ask for it) with
rotation that publishes before it signs, an archive of every key that ever signed, and the
provider's symmetric secrets.

A signing key row is published (in ``/jwks``) from the moment it is written. It signs from
``signs_from``: at once for the very first key of an algorithm (no JWKS without it was ever
served), and, for a key put in by ``rotate``, ``PUBLISH_AHEAD`` later (one JWKS cache lifetime,
plus the time a provider process serves the key set it read, plus clock skew), so that a relying party holding a cached JWKS already has the key when the
first token signed with it arrives. The key that signs at ``now`` is, per algorithm, the newest
whose ``signs_from <= now``: a rotation needs no second command. The key it takes over from is
retired at that moment (``retired_at`` = the new key's ``signs_from``) and stays published
``OVERLAP`` longer (the longest lifetime of a token it signed, plus skew). Signing key rows are
never deleted: ``archive`` lists all of them with the period each signed in, which is what keeps
e-KYC answers verifiable after any number of rotations. ``active`` marks the newest key of each
algorithm (unique: two rotations at once cannot both succeed). Private halves are sealed by the
vault (purpose ``oidc-<use>``).

>>> from dinhdanh.store.vault import Vault
>>> import sqlalchemy as sa
>>> from dinhdanh.oidc.tables import oidc_keys
>>> engine = sa.create_engine("sqlite://")
>>> oidc_keys.create(engine)
>>> vault = Vault(bytes(32))
>>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> with engine.begin() as conn:
...     first = signing_key(conn, vault, t0)
...     second = rotate(conn, vault, t0)
...     published = [k["kid"] for k in published_jwks(conn, t0)["keys"]] == [first.kid, second.kid]
...     before = signing_key(conn, vault, t0 + JWKS_CACHE_LIFETIME).kid == first.kid
...     after = signing_key(conn, vault, t0 + PUBLISH_AHEAD).kid == second.kid
>>> published, before, after
(True, True, True)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import time
import weakref

import sqlalchemy as sa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from dinhdanh.oidc.tables import oidc_keys
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

ALG = "ES256"  # access tokens, e-KYC answers, and ID tokens unless a client registered RS256
RS256 = "RS256"  # ID tokens of the clients registered for it (OpenID Connect Discovery: MUST be supported)
ALGS = (ALG, RS256)
CURVE = "P-256"
RSA_BITS = 2048
# How long relying parties may cache /jwks (its Cache-Control max-age): a new key is published at
# least this long (plus clock skew between our processes) before it signs anything.
JWKS_CACHE_LIFETIME = dt.timedelta(seconds=60)
# How long each provider process keeps the /jwks it serves (``PublishedKeys``) before reading the
# keys again: a key set that changes a few times a year is not read from the database per request.
SERVED_JWKS_LIFETIME = dt.timedelta(seconds=5)
CLOCK_SKEW = dt.timedelta(seconds=30)
PUBLISH_AHEAD = JWKS_CACHE_LIFETIME + SERVED_JWKS_LIFETIME + CLOCK_SKEW
# The longest lifetime of anything signed and checked against /jwks (ID and access tokens), plus
# clock skew: how long a retired key stays in /jwks. Documents kept longer (e-KYC answers) are
# checked against the archive instead.
OVERLAP = dt.timedelta(minutes=15)
_MARKERS = {ALG: "sig", RS256: "sig:RS256"}  # ``active`` of the newest key of each algorithm
_PUBLIC = {"EC": ("kty", "crv", "x", "y"), "RSA": ("kty", "n", "e")}


def _purpose(use: str) -> str:
    return f"oidc-{use}"


def _active(conn: sa.Connection, marker: str):
    return conn.execute(_ACTIVE, {"use": marker}).first()


_ACTIVE = sa.select(oidc_keys).where(oidc_keys.c.active == sa.bindparam("use"))
# the key of an algorithm that signs at :now: the newest whose signs_from has come
_SIGNING = (sa.select(oidc_keys).where(oidc_keys.c.use == "sig", oidc_keys.c.alg == sa.bindparam("alg"),
                                       oidc_keys.c.signs_from <= sa.bindparam("now"))
            .order_by(oidc_keys.c.signs_from.desc()).limit(1))


def _insert_active(conn: sa.Connection, vault: Vault, use: str, kid: str, secret: bytes,
                   public_jwk: dict | None = None, *, alg: str | None = None,
                   signs_from: dt.datetime | None = None, now: dt.datetime | None = None) -> bool:
    """Insert the newest key for ``use`` (a signing algorithm's marker, or a secret's use); False
    if another process did it first (unique ``active``), in which case nothing is written."""
    try:
        with conn.begin_nested():
            conn.execute(oidc_keys.insert().values(
                kid=kid, use="sig" if alg else use, alg=alg, public_jwk=public_jwk,
                sealed=vault.seal(secret, _purpose("sig" if alg else use)), active=use,
                created_at=now or utcnow(), signs_from=signs_from))
        return True
    except sa.exc.IntegrityError:
        return False


def _new_signing_key(alg: str = ALG) -> ECKey | RSAKey:
    params = {"use": "sig", "alg": alg}
    if alg == RS256:
        return RSAKey.generate_key(RSA_BITS, params, auto_kid=True)  # kid: RFC 7638 thumbprint
    return ECKey.generate_key(CURVE, params, auto_kid=True)


def _insert_signing(conn: sa.Connection, vault: Vault, key, alg: str, signs_from: dt.datetime,
                    now: dt.datetime) -> bool:
    return _insert_active(conn, vault, _MARKERS[alg], key.kid, key.as_pem(private=True), key.as_dict(private=False),
                          alg=alg, signs_from=signs_from, now=now)


def _check_alg(alg: str) -> str:
    if alg not in ALGS:
        raise ValueError(f"no signing key for {alg!r}; the provider signs with {', '.join(ALGS)}")
    return alg


def signing_key(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None, alg: str = ALG):
    """The private key that signs with ``alg`` at ``now`` (created on first use, signing at once)."""
    now = now or utcnow()
    row = conn.execute(_SIGNING, {"alg": _check_alg(alg), "now": now}).first()
    if row is None:
        row = _active(conn, _MARKERS[alg])  # only keys yet to sign (a clock set back): the newest
        if row is None:
            key = _new_signing_key(alg)
            if _insert_signing(conn, vault, key, alg, now, now):
                return key
            row = _active(conn, _MARKERS[alg])
    return _open(vault, row)


def _open(vault: Vault, row):
    cache_key = (id(vault), row.sealed)  # the sealed bytes are unique: a rotated key is a new entry
    key = _opened.get(cache_key)
    if key is None:
        pem = vault.open(row.sealed, _purpose("sig"))
        kind = RSAKey if row.alg == RS256 else ECKey
        key = kind.import_key(pem, {"kid": row.kid, "use": "sig", "alg": row.alg or ALG})
        if len(_opened) > 64:
            _opened.clear()
        _opened[cache_key] = key
    return key


_opened: dict[tuple[int, bytes], ECKey | RSAKey] = {}


def rotate(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None, alg: str = ALG):
    """Publish a new signing key for ``alg`` now; it signs from ``now + PUBLISH_AHEAD``, when the
    key it takes over from is retired (and stays published ``OVERLAP`` longer). Returns the new key."""
    now = now or utcnow()
    signing_key(conn, vault, now, alg)  # a first key, if there was none, so that there is one to retire
    signs_from = now + PUBLISH_AHEAD
    conn.execute(oidc_keys.update().where(oidc_keys.c.active == _MARKERS[_check_alg(alg)]).values(
        active=None, retired_at=signs_from, published_until=signs_from + OVERLAP))
    key = _new_signing_key(alg)
    if not _insert_signing(conn, vault, key, alg, signs_from, now):
        raise RuntimeError("another rotation happened at the same time; run it again")
    return key


def rotate_all(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None) -> list:
    """``rotate`` every signing algorithm (what ``dinhdanh oidc rotate-keys`` does)."""
    now = now or utcnow()
    return [rotate(conn, vault, now, alg) for alg in ALGS]


def ensure_signing_keys(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None) -> None:
    """A key for every algorithm (there is always one to publish)."""
    for alg in ALGS:
        signing_key(conn, vault, now, alg)


def _public(row) -> dict:
    jwk = dict(row.public_jwk)
    return {**{k: jwk[k] for k in _PUBLIC[jwk["kty"]] if k in jwk}, "kid": row.kid, "use": "sig",
            "alg": row.alg or ALG}


def _signing_rows(conn: sa.Connection):
    return conn.execute(sa.select(oidc_keys).where(oidc_keys.c.use == "sig")).all()


def _state(rows, now: dt.datetime) -> dict[str, str]:
    """kid -> ``signing`` (signs at ``now``), ``next`` (published, signs later) or ``retired``."""
    current: dict[str, tuple] = {}
    for r in rows:
        if r.signs_from is not None and r.signs_from <= now:
            alg = r.alg or ALG
            if alg not in current or r.signs_from > current[alg][0]:
                current[alg] = (r.signs_from, r.kid)
    signing = {kid for _, kid in current.values()}
    return {r.kid: "signing" if r.kid in signing else "next" if r.signs_from is None or r.signs_from > now
            else "retired" for r in rows}


def _is_published(row, now: dt.datetime) -> bool:
    return row.published_until is None or row.published_until > now


_RANK = {"signing": 0, "next": 1, "retired": 2}


def published_jwks(conn: sa.Connection, now: dt.datetime | None = None) -> dict:
    """The public JWKS: for each algorithm the key signing now, the next one (published ahead of
    signing), and retired ones still inside their overlap; ES256 first."""
    now = now or utcnow()
    rows = [r for r in _signing_rows(conn) if _is_published(r, now)]
    state = _state(rows, now)
    rows.sort(key=lambda r: (_RANK[state[r.kid]], ALGS.index(r.alg or ALG) if (r.alg or ALG) in ALGS else 9,
                             -(r.signs_from or r.created_at).timestamp()))
    return {"keys": [_public(r) for r in rows]}


class PublishedKeys:
    """The /jwks body one provider process serves, read again when ``SERVED_JWKS_LIFETIME`` has
    passed (by ``clock``, monotonic seconds): a rotated key is served within that time, and
    ``PUBLISH_AHEAD`` counts it. Thread-safe: the cached pair is replaced in one assignment; two
    threads that find it stale both read the keys, which is harmless."""

    def __init__(self, clock=None):
        self.clock = clock or time.monotonic
        self._served: tuple[float, bytes] | None = None

    def fresh(self) -> bytes | None:
        """The body, if read less than ``SERVED_JWKS_LIFETIME`` ago."""
        served = self._served
        if served is not None and self.clock() - served[0] < SERVED_JWKS_LIFETIME.total_seconds():
            return served[1]
        return None

    def read(self, conn: sa.Connection) -> bytes | None:
        """Read the published keys (None when an algorithm has no key yet: the caller makes them)."""
        body = published_jwks(conn)
        if {k["alg"] for k in body["keys"]} != set(ALGS):
            return None
        encoded = json.dumps(body, separators=(",", ":")).encode()
        self._served = (self.clock(), encoded)
        return encoded


class SigningKeys:
    """The keys one provider process signs with, per algorithm, read again when
    ``SERVED_JWKS_LIFETIME`` has passed (by ``clock``, monotonic seconds) or when a request's time
    falls outside the period the held key was read to sign in: from the request time it was read
    at to the next key's ``signs_from`` (a rotation already written), and at most that lifetime. A
    rotation written after the read signs only ``PUBLISH_AHEAD`` later, longer than the lifetime:
    a held key is never used past its successor's start, and the
    key signing at a given time is the one ``signing_key`` reads. What it saves: a query and its
    row a token (the key's sealed half is opened once per process anyway). Held per database
    (engine): an app given another engine never signs with the first one's key. Thread-safe as
    ``PublishedKeys``: an entry is replaced in one assignment."""

    def __init__(self, clock=None):
        self.clock = clock or time.monotonic
        self._by_engine: weakref.WeakKeyDictionary[sa.Engine, dict[str, tuple]] = weakref.WeakKeyDictionary()

    def get(self, conn: sa.Connection, vault: Vault, now: dt.datetime, alg: str = ALG) -> ECKey | RSAKey:
        held_keys = self._by_engine.setdefault(conn.engine, {})
        held = held_keys.get(alg)
        if held is not None:
            read_at, since, until, key = held
            if self.clock() - read_at < SERVED_JWKS_LIFETIME.total_seconds() and since <= now < until:
                return key
        read_at = self.clock()
        key = signing_key(conn, vault, now, alg)
        until = now + SERVED_JWKS_LIFETIME
        successor = conn.execute(_NEXT_START, {"alg": alg, "now": now}).scalar()
        held_keys[alg] = (read_at, now, until if successor is None else min(until, successor), key)
        return key

    def pairwise(self, conn: sa.Connection, vault: Vault) -> bytes:
        """The pairwise secret (``secret(..., "pairwise")``), held for the process's life: it is never
        replaced (every ``sub`` a relying party knows would change), so a refresh need not read and
        open its row."""
        held_keys = self._by_engine.setdefault(conn.engine, {})
        value = held_keys.get("pairwise")
        if value is None:
            value = held_keys["pairwise"] = secret(conn, vault, "pairwise")
        return value


# when the next key of an algorithm starts to sign after :now (a rotation already written), if any
_NEXT_START = sa.select(sa.func.min(oidc_keys.c.signs_from)).where(
    oidc_keys.c.use == "sig", oidc_keys.c.alg == sa.bindparam("alg"), oidc_keys.c.signs_from > sa.bindparam("now"))


def _numeric(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def archive(conn: sa.Connection) -> dict:
    """Every key that ever signed (never removed), as a JWKS whose keys also carry the period they
    signed in (``signs_from``, ``signs_until``: NumericDate, ``signs_until`` null while in
    service): what documents kept for years (e-KYC answers) are verified with."""
    rows = sorted(_signing_rows(conn), key=lambda r: (r.signs_from or r.created_at, r.kid))
    return {"keys": [{**_public(r), "signs_from": _numeric(r.signs_from or r.created_at),
                      "signs_until": _numeric(r.retired_at)} for r in rows]}


class ArchiveError(Exception):
    """The document does not verify against the key archive."""


def verify_with_archive(token: str, keys_archive: dict, *, typ: str | None = None,
                        leeway: int = 300) -> dict:
    """The payload of a compact JWS the platform signed (an e-KYC answer), checked against the
    published archive: the ``kid`` must be there, the signature verify with it under its own
    algorithm, and the document's ``iat`` (when it has one) fall inside the period the key signed in."""
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError, UnicodeError, AttributeError):
        raise ArchiveError("not a compact JWS") from None
    if typ is not None and header.get("typ") != typ:
        raise ArchiveError("not the expected kind of document (typ)")
    entry = next((k for k in keys_archive.get("keys", []) if k.get("kid") == header.get("kid")), None)
    if entry is None:
        raise ArchiveError("signed with a key the platform never published")
    if header.get("alg") != entry.get("alg"):
        raise ArchiveError("signed with another algorithm than the key's")
    jwk = {k: v for k, v in entry.items() if k not in ("signs_from", "signs_until")}
    try:
        key = (RSAKey if jwk.get("kty") == "RSA" else ECKey).import_key(jwk)
        payload = jws.deserialize_compact(token, key, algorithms=[entry["alg"]]).payload
        claims = json.loads(payload)
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise ArchiveError("the signature does not verify") from None
    iat = claims.get("iat") if isinstance(claims, dict) else None
    if isinstance(iat, int):
        start, end = entry.get("signs_from"), entry.get("signs_until")
        if (isinstance(start, int) and iat < start - leeway) or (isinstance(end, int) and iat > end + leeway):
            raise ArchiveError("issued outside the period its key signed in")
    return claims


def sign_json(conn: sa.Connection, vault: Vault, payload: dict, typ: str, now: dt.datetime | None = None) -> str:
    """``payload`` as a compact JWS (ES256) with the signing key in service, ``kid`` and ``typ`` in
    its header: documents the platform signs for others to keep (e-KYC answers), verifiable with
    the published JWKS while the key is in it, and for ever with the key archive (``archive``)."""
    key = signing_key(conn, vault, now)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return jws.serialize_compact({"alg": ALG, "kid": key.kid, "typ": typ}, body, key, algorithms=[ALG])


def is_published(conn: sa.Connection, kid: str, now: dt.datetime | None = None) -> bool:
    """Whether the signing key ``kid`` is still published (signing, next, or retired within its overlap)."""
    return conn.execute(_PUBLISHED, {"kid": kid, "now": now or utcnow()}).first() is not None


def published_clause() -> sa.Select:
    """The published key ``:kid`` at ``:now`` (bind parameters), as a select to use alone or in
    another statement (``tokens.validate_access_token`` reads it with the token's row)."""
    return sa.select(oidc_keys.c.kid).where(
        oidc_keys.c.kid == sa.bindparam("kid"), oidc_keys.c.use == "sig",
        sa.or_(oidc_keys.c.published_until.is_(None), oidc_keys.c.published_until > sa.bindparam("now")))


_PUBLISHED = published_clause()


def verification_keys(conn: sa.Connection, now: dt.datetime | None = None) -> KeySet:
    """The published keys as a joserfc KeySet (what tokens presented to us are checked with);
    empty before the first key exists (then nothing verifies)."""
    jwks = published_jwks(conn, now)
    return KeySet.import_key_set(jwks) if jwks["keys"] else KeySet([])


def list_keys(conn: sa.Connection, now: dt.datetime | None = None) -> list[dict]:
    now = now or utcnow()
    rows = sorted(_signing_rows(conn), key=lambda r: (r.created_at, ALGS.index(r.alg or ALG)))
    state = _state(rows, now)
    return [{"kid": r.kid, "alg": r.alg or ALG, "created_at": r.created_at, "signs_from": r.signs_from,
             "state": state[r.kid], "in_service": state[r.kid] == "signing",
             "retired_at": r.retired_at, "published_until": r.published_until,
             "published": _is_published(r, now)}
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
    """Replace the secret in service for ``use`` (the demo portal's and the officers' console's
    client secrets, ``portal`` and ``officer``)."""
    assert use not in ("sig", "pairwise")  # signing keys are never deleted (the archive); nor is the pairwise secret
    conn.execute(oidc_keys.delete().where(oidc_keys.c.active == use))
    if not _insert_active(conn, vault, use, f"{use}-{secrets.token_hex(8)}", value):
        # never silently: the caller (a built-in client's set-up, serialized by a
        # ``store.advisory`` lock) would hand out a secret that is not kept
        raise RuntimeError(f"the secret {use!r} was not stored")
