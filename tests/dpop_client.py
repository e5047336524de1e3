"""A DPoP client (RFC 9449) for the tests, written from the RFC with ``cryptography`` alone: the JWS
is put together by hand (base64url header "." payload, ES256 as raw r || s, RFC 7518 s.3.4), the
JWK and its RFC 7638 thumbprint likewise, so that nothing of the server's code (``oidc.dpop``,
joserfc) checks its own output."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, size: int | None = None) -> str:
    size = size or max(1, (value.bit_length() + 7) // 8)
    return b64(value.to_bytes(size, "big"))


def public_jwk(key) -> dict:
    """The public JWK of a private key (RFC 7518 s.6.2.1, s.6.3.1; RFC 8037 s.2)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
        return {"kty": "EC", "crv": crv, "x": _int(numbers.x, size), "y": _int(numbers.y, size)}
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e)}
    if isinstance(key, ed25519.Ed25519PrivateKey):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))}
    raise TypeError(type(key))


def private_jwk(key: ec.EllipticCurvePrivateKey) -> dict:
    """The JWK of an EC key with its private part ``d`` (which a proof must never carry)."""
    return {**public_jwk(key), "d": _int(key.private_numbers().private_value, 32)}


REQUIRED = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def thumbprint(jwk: dict) -> str:
    """RFC 7638 s.3: SHA-256 of the required members, in lexicographic order, without whitespace."""
    members = {k: jwk[k] for k in REQUIRED[jwk["kty"]]}
    return b64(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def ath(access_token: str) -> str:
    return b64(hashlib.sha256(access_token.encode("ascii")).digest())


def sign(key, alg: str, data: bytes) -> bytes:
    if alg in ("ES256", "ES384"):
        digest = hashes.SHA256() if alg == "ES256" else hashes.SHA384()
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if alg == "PS256":
        return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    if alg in ("EdDSA", "Ed25519"):
        return key.sign(data)
    raise ValueError(alg)


def compact(header: dict, claims: dict, signer=None) -> str:
    """``header.payload.signature``; ``signer(signing_input) -> bytes`` (none: an empty signature)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return signing_input + "." + (b64(signer(signing_input.encode())) if signer else "")


class DPoPKey:
    """A key pair a client holds, and the proofs it makes."""

    def __init__(self, alg: str = "ES256", key=None):
        self.alg = alg
        if key is not None:
            self.key = key
        elif alg == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
        elif alg == "ES384":
            self.key = ec.generate_private_key(ec.SECP384R1())
        elif alg in ("RS256", "PS256"):
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg in ("EdDSA", "Ed25519"):
            self.key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)
        self.jwk = public_jwk(self.key)
        self.jkt = thumbprint(self.jwk)

    def proof(self, method: str, url: str, *, access_token: str | None = None, iat: float | None = None,
              jti: str | None = None, header: dict | None = None, claims: dict | None = None,
              drop: tuple[str, ...] = (), signer=None) -> str:
        """A proof for ``method`` ``url`` (with ``ath`` of ``access_token``); ``header`` and ``claims``
        replace or add members, ``drop`` removes claims, ``signer`` signs instead of this key."""
        head = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk, **(header or {})}
        body = {"jti": jti or secrets.token_urlsafe(16), "htm": method, "htu": url,
                "iat": int(time.time()) if iat is None else iat}
        if access_token is not None:
            body["ath"] = ath(access_token)
        body.update(claims or {})
        for name in drop:
            body.pop(name, None)
        return compact(head, body, signer or (lambda data: sign(self.key, head["alg"], data)))
