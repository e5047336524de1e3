"""OAuth 2.0 Demonstrating Proof of Possession (DPoP, RFC 9449): access tokens bound to a key the
client holds, so that a token that leaks is of no use without that key.

The client signs a proof (a JWT, ``typ`` ``dpop+jwt``) for each request and sends it in the
``DPoP`` header; its public key is in the proof's header (``jwk``). ``check_proof`` makes the
checks of s.4.3 that need no storage: one proof, a JWS of a supported asymmetric algorithm
(``ALGORITHMS``; never ``none`` or a MAC) whose signature verifies with a public ``jwk`` of the
matching type (no private member), ``htm`` the request's method, ``htu`` its URL on the issuer (no
query or fragment; both sides normalised as RFC 3986 s.6.2.2 and s.6.2.3), ``iat`` within
``MAX_AGE`` in the past and ``MAX_AHEAD`` in the future, and with an access token, ``ath``
its hash. ``spend`` makes sure a proof is accepted once: its ``jti`` (with the key's thumbprint)
is inserted in ``oidc_dpop_proofs`` under a unique key until the proof's ``iat`` is out of the
window, so two requests carrying the same proof at the same moment cannot both pass.

At the token endpoint a valid proof binds the token (``token_type`` ``DPoP``; the key's RFC 7638
thumbprint in the row's ``jkt`` and the JWT's ``cnf.jkt``, s.6.1); an invalid one is
``400 invalid_dpop_proof``; a client registered with ``dpop_bound_access_tokens`` (the partner
policy's ``dpop_required``) that sends none is refused with the same error (s.5.2 leaves the code to
the server). At a resource, ``check_token_use`` answers a bound token sent as ``Bearer``, or
without a valid proof, ``401`` with a ``DPoP`` challenge. Server-provided nonces (s.8) are not
used: the ``iat`` window and the replay table stand in for them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from authlib.oauth2.rfc6749 import OAuth2Error
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry
from sqlalchemy.dialects import postgresql, sqlite

from dinhdanh.oidc.tables import oidc_dpop_proofs

TYP = "dpop+jwt"
# asymmetric algorithms only (s.4.2); the key type each needs
KEY_TYPES = {"ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "PS256": ("RSA", None), "RS256": ("RSA", None),
             "EdDSA": ("OKP", "Ed25519"), "Ed25519": ("OKP", "Ed25519")}  # Ed25519: EdDSA's name in RFC 9864
ALGORITHMS = tuple(KEY_TYPES)
MIN_RSA_BITS = 2048
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})  # RFC 7518 s.6.2.2, s.6.3.2, s.6.4
MAX_AGE = dt.timedelta(seconds=60)  # how old a proof may be (by its iat)
MAX_AHEAD = dt.timedelta(seconds=60)  # how far ahead of our clock its iat may be (the client's clock skew)
MAX_PROOF = 8192  # characters: an RSA 4096 key and the claims fit
MAX_JTI = 256


class _ProofRegistry(JWSRegistry):
    max_header_length = 2048  # joserfc's 512 bytes do not hold the jwk of an RSA 2048 key


_REGISTRY = _ProofRegistry(algorithms=ALGORITHMS, strict_check_header=False)  # unknown members ignored (RFC 7515 s.4)


def _quotable(text: str) -> str:
    """``text`` as an OAuth ``error_description`` may hold it (RFC 6749 s.5.2: %x20-21 / %x23-5B /
    %x5D-7E), so that it can go in a quoted WWW-Authenticate parameter too."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


class InvalidProof(Exception):
    """A proof that fails one of the checks; ``description`` says which."""

    def __init__(self, description: str):
        super().__init__(description)
        self.description = _quotable(description)


class InvalidDPoPProofError(OAuth2Error):
    """The token endpoint's refusal of a proof (s.5): 400 ``invalid_dpop_proof``."""

    error = "invalid_dpop_proof"
    status_code = 400


class ResourceRefusal(OAuth2Error):
    """A resource's refusal (s.7.1): 401 with ``WWW-Authenticate: DPoP error=..., algs=...``;
    ``error`` is ``invalid_token`` (the token is not usable this way) or ``invalid_dpop_proof``."""

    status_code = 401

    def __init__(self, error: str, description: str):
        super().__init__(description=_quotable(description), error=error)

    def get_headers(self):
        return [*super().get_headers(), ("WWW-Authenticate", challenge(self.error, self.description))]


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``DPoP`` authentication challenge (s.7.1)."""
    params = []
    if error:
        params.append(f'error="{error}"')
    if description:
        params.append(f'error_description="{description}"')
    params.append(f'algs="{" ".join(ALGORITHMS)}"')
    return "DPoP " + ", ".join(params)


@dataclass(frozen=True)
class Proof:
    """A proof that passed ``check_proof``: the thumbprint of its key, its jti and its iat."""

    jkt: str
    jti: str
    iat: float

    @property
    def expires_at(self) -> dt.datetime:
        """When the proof can no longer pass the iat check (its jti is kept until then)."""
        return dt.datetime.fromtimestamp(self.iat, dt.UTC) + MAX_AGE + dt.timedelta(seconds=1)


def _b64decode(segment: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", segment):
        raise InvalidProof("The DPoP proof is not a compact JWS (base64url segments).")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise InvalidProof("The DPoP proof is not a compact JWS (base64url segments).") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_object(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidProof(f"The DPoP proof's {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise InvalidProof(f"The DPoP proof's {what} is not a JSON object.")
    return value


def access_token_hash(access_token: str) -> str:
    """``ath``: base64url of the SHA-256 of the access token's ASCII (s.4.2)."""
    return _b64encode(hashlib.sha256(access_token.encode("ascii")).digest())


def thumbprint(jwk: dict) -> str:
    """The RFC 7638 JWK SHA-256 thumbprint (base64url) of a public key, as in ``cnf.jkt``."""
    return JWKRegistry.import_key(jwk).thumbprint()


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _percent(match: re.Match) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")[1:]
    out: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def normalise_uri(value: str) -> str | None:
    """An http(s) URI without query and fragment, normalised (RFC 3986 s.6.2.2: case, percent-encoding,
    dot segments; s.6.2.3: the default port and an empty path); None if it is not one."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port == {"http": 80, "https": 443}[scheme]:
        port = None
    path = _remove_dot_segments(_PERCENT.sub(_percent, parts.path) if parts.path.startswith("/") else
                                "/" + _PERCENT.sub(_percent, parts.path))
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "") + path


def _public_key(header: dict, alg: str):
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidProof("The DPoP proof's header has no 'jwk' (the public key).")
    if PRIVATE_MEMBERS & jwk.keys():
        raise InvalidProof("The DPoP proof's 'jwk' holds a private key; send the public key only.")
    kty, crv = KEY_TYPES[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        raise InvalidProof(f"The DPoP proof's 'jwk' is not a key for {alg}.")
    try:
        key = JWKRegistry.import_key(jwk)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidProof("The DPoP proof's 'jwk' is not a valid public key.") from None
    if kty == "RSA" and key.raw_value.key_size < MIN_RSA_BITS:
        raise InvalidProof(f"The DPoP proof's RSA key is shorter than {MIN_RSA_BITS} bits.")
    return key


def check_proof(value, *, method: str, url: str, now: dt.datetime, access_token: str | None = None) -> Proof:
    """The checks of RFC 9449 s.4.3 that need no storage (all but the jti's single use, ``spend``,
    and the key binding of a token, which the caller compares with the returned ``jkt``). ``url``
    is the request's URL as the issuer names it; with ``access_token``, ``ath`` must be its hash.
    Raises ``InvalidProof``."""
    if not isinstance(value, str) or not value or len(value) > MAX_PROOF or value.count(".") != 2:
        raise InvalidProof("The DPoP header is not a compact JWS.")
    header = _json_object(_b64decode(value.split(".", 1)[0]), "header")
    if header.get("typ") != TYP:
        raise InvalidProof(f"The DPoP proof's 'typ' must be '{TYP}'.")
    alg = header.get("alg")
    if alg not in KEY_TYPES:
        raise InvalidProof(f"The DPoP proof's 'alg' must be one of {', '.join(ALGORITHMS)}.")
    key = _public_key(header, alg)
    try:
        signed = jws.deserialize_compact(value, key, algorithms=[alg], registry=_REGISTRY)
    except BadSignatureError:
        raise InvalidProof("The DPoP proof's signature does not verify with its 'jwk'.") from None
    except (JoseError, ValueError, TypeError, KeyError):  # a 'crit' member we do not know, a malformed one
        raise InvalidProof("The DPoP proof's header or signature cannot be read as a JWS.") from None
    claims = _json_object(signed.payload, "payload")
    jti, htm, htu, iat = (claims.get(k) for k in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise InvalidProof(f"The DPoP proof needs a 'jti' (1 to {MAX_JTI} characters).")
    if htm != method:
        raise InvalidProof(f"The DPoP proof's 'htm' must be the request's method ({method}).")
    expected = normalise_uri(url)
    if not isinstance(htu, str) or expected is None or normalise_uri(htu) != expected:
        raise InvalidProof(f"The DPoP proof's 'htu' must be the URL of the request ({expected}).")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool):
        raise InvalidProof("The DPoP proof needs an 'iat' (seconds since the epoch).")
    at = now.timestamp()
    if not at - MAX_AGE.total_seconds() <= iat <= at + MAX_AHEAD.total_seconds():
        raise InvalidProof(f"The DPoP proof's 'iat' is more than {int(MAX_AGE.total_seconds())} seconds "
                           "from the server's time: make a new proof for each request.")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath.encode(), access_token_hash(access_token).encode()):
            raise InvalidProof("The DPoP proof's 'ath' must be the hash of the access token sent with it.")
    return Proof(jkt=key.thumbprint(), jti=jti, iat=float(iat))


def spend(conn: sa.Connection, proof: Proof) -> bool:
    """Record the proof as used; False if it was already (a replay). One INSERT under a unique key,
    so of two requests with the same proof at the same moment exactly one gets True (the other
    waits for the first's transaction, and finds the key taken once it commits)."""
    key = hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).hexdigest()
    statement = _SPEND_PG if conn.dialect.name == "postgresql" else _SPEND_SQLITE
    return conn.execute(statement, {"proof_hash": key, "expires_at": proof.expires_at}).first() is not None


# built once (a DPoP partner's hot path); RETURNING says whether the row was inserted
_SPEND_PG, _SPEND_SQLITE = (
    insert(oidc_dpop_proofs).on_conflict_do_nothing(index_elements=[oidc_dpop_proofs.c.proof_hash])
    .returning(oidc_dpop_proofs.c.proof_hash) for insert in (postgresql.insert, sqlite.insert))


def purge(conn: sa.Connection, now: dt.datetime) -> int:
    """Forget the proofs that can no longer pass the iat check (the token endpoint does this)."""
    return conn.execute(oidc_dpop_proofs.delete().where(forgotten(now))).rowcount


def forgotten(now: dt.datetime):
    """The condition of the proofs that can no longer pass the iat check at ``now``."""
    return oidc_dpop_proofs.c.expires_at < now


def _one(proofs: list[str]) -> str | None:
    if len(proofs) > 1:
        raise InvalidProof("Send one DPoP header, not several.")
    return proofs[0] if proofs else None


def token_request_proof(conn: sa.Connection, proofs: list[str], *, url: str, now: dt.datetime) -> Proof | None:
    """The proof sent to the token endpoint (``proofs``: the values of its DPoP headers), checked
    and spent; None when there is none. Raises ``InvalidDPoPProofError``."""
    try:
        value = _one(proofs)
        if value is None:
            return None
        proof = check_proof(value, method="POST", url=url, now=now)
    except InvalidProof as e:
        raise InvalidDPoPProofError(e.description) from None
    purge(conn, now)  # here, not on the resource's hot path: every partner comes here every few minutes
    if not spend(conn, proof):
        raise InvalidDPoPProofError("This DPoP proof was used already (its jti): make a new one for each request.")
    return proof


BOUND_AS_BEARER = "This access token is DPoP-bound: send it as 'Authorization: DPoP <token>' with a DPoP proof."


def check_token_use(conn: sa.Connection, *, token: str, jkt: str | None, scheme: str, proofs: list[str],
                    method: str, url: str, now: dt.datetime) -> Proof:
    """A DPoP-bound token (``jkt``) presented to a resource, or any token presented with the ``DPoP``
    scheme: the scheme must be ``DPoP``, the token bound, one proof valid for this request and this
    token, signed by the token's key, never used before (s.7.1). Raises ``ResourceRefusal``."""
    if scheme.lower() != "dpop":
        raise ResourceRefusal("invalid_token", BOUND_AS_BEARER)
    if jkt is None:
        raise ResourceRefusal("invalid_token", "This access token is not DPoP-bound: send it as "
                                               "'Authorization: Bearer <token>'.")
    try:
        value = _one(proofs)
        if value is None:
            raise InvalidProof("A DPoP-bound access token needs a DPoP proof (the DPoP header).")
        proof = check_proof(value, method=method, url=url, now=now, access_token=token)
    except InvalidProof as e:
        raise ResourceRefusal("invalid_dpop_proof", e.description) from None
    if not hmac.compare_digest(proof.jkt, jkt):
        raise ResourceRefusal("invalid_dpop_proof", "The DPoP proof is not signed with the key the access "
                                                    "token is bound to.")
    if not spend(conn, proof):
        raise ResourceRefusal("invalid_dpop_proof", "This DPoP proof was used already (its jti): make a new "
                                                    "one for each request.")
    return proof
