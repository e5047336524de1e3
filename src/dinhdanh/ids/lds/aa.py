"""Active Authentication (ICAO Doc 9303 Part 11 section 6.1): the chip proves it holds the
private key matching the public key in DG15 by signing an 8-byte challenge from the terminal.

* ECDSA: the response is the plain signature ``r || s`` (BSI TR-03111), each half as long as
  the group order, over the challenge hashed with the algorithm named in DG14's
  ActiveAuthenticationInfo (SHA-256 when there is none). Keys with explicit curve parameters,
  which ``cryptography`` does not load unless they are a NIST curve, are handled by ``ecdsa``.
* RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message recovery. The
  terminal computes ``s^e mod n`` and finds ``6A || M1 || H(M1 || challenge) || trailer``; the
  trailer ``BC`` means SHA-1, ``xx CC`` names the hash by its ISO/IEC 10118-3 number
  (``33`` SHA-1, ``34`` SHA-256, ``35`` SHA-512, ``36`` SHA-384, ``38`` SHA-224).

:func:`verify` returns False for any wrong or malformed response and raises :class:`LdsError`
only when the key itself cannot be used. :func:`sign` is the chip's side, for a card emulator.

>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> from cryptography.hazmat.primitives import serialization as ser
>>> key = ec.derive_private_key(123456789, ec.SECP256R1())
>>> spki = key.public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
>>> challenge = bytes.fromhex("0011223344556677")
>>> response = sign(key, challenge)
>>> len(response), verify(spki, challenge, response)
(64, True)
>>> verify(spki, bytes(8), response)
False
"""

from __future__ import annotations

import hashlib
import hmac
import os

import ecdsa
import ecdsa.util
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from dinhdanh.ids.lds.tlv import LdsError

__all__ = ["verify", "sign", "HASH_IDS", "DEFAULT_HASH", "MAX_KEY_BITS", "MAX_CURVE_BITS"]

DEFAULT_HASH = "sha256"
HASH_IDS = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384", 0x38: "sha224"}
"""ISO/IEC 10118-3 hash function identifiers used in the ``xx CC`` trailer of ISO/IEC 9796-2."""
_TRAILER_IDS = {name: code for code, name in HASH_IDS.items()}
_IMPLICIT_TRAILER = 0xBC
_EXPLICIT_TRAILER = 0xCC
# Larger keys would let a hostile chip make verification slow (pure-Python arithmetic).
MAX_KEY_BITS = 8192  # RSA modulus
MAX_CURVE_BITS = 1024  # EC field and order, explicit parameters
_CRYPTO_HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
                  "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def _hash_name(name: str | None) -> str:
    if name is None:
        return DEFAULT_HASH
    norm = name.lower().replace("-", "").replace("_", "")
    if norm not in _CRYPTO_HASHES:
        raise ValueError(
            f"Unsupported hash {name!r} for Active Authentication (use one of {', '.join(_CRYPTO_HASHES)})."
        )
    return norm


def _key_info(spki_der: bytes):
    try:
        info = asn1_keys.PublicKeyInfo.load(bytes(spki_der), strict=True)
        algo = info["algorithm"]["algorithm"].native
        info["public_key"].native  # noqa: B018 - forces parsing
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise LdsError(f"Active Authentication key is not a SubjectPublicKeyInfo: {exc}.") from None
    return info, algo


# ---------------------------------------------------------------- ECDSA


def _verify_ec(spki_der: bytes, challenge: bytes, response: bytes, hash_name: str) -> bool:
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        if len(response) != 2 * size:
            return False
        r = int.from_bytes(response[:size], "big")
        s = int.from_bytes(response[size:], "big")
        try:
            key.verify(encode_dss_signature(r, s), challenge, ec.ECDSA(_CRYPTO_HASHES[hash_name]()))
        except (InvalidSignature, ValueError):
            return False
        return True
    # Explicit curve parameters (typically Brainpool): fall back to the pure-Python ecdsa package.
    try:
        vk = ecdsa.VerifyingKey.from_der(spki_der, valid_curve_encodings=("named_curve", "explicit"))
    except Exception as exc:  # ecdsa raises several unrelated types for bad keys
        raise LdsError(f"Active Authentication EC key cannot be loaded: {exc}.") from None
    if vk.curve.order is None or vk.curve.order.bit_length() > MAX_CURVE_BITS \
            or vk.curve.curve.p().bit_length() > MAX_CURVE_BITS:
        raise LdsError(f"Active Authentication EC key: curve larger than {MAX_CURVE_BITS} bits.")
    if len(response) != 2 * vk.curve.baselen:
        return False
    try:
        return bool(vk.verify(response, challenge, hashfunc=getattr(hashlib, hash_name),
                              sigdecode=ecdsa.util.sigdecode_string))
    except (ecdsa.BadSignatureError, ecdsa.util.MalformedSignature, ValueError, AssertionError):
        return False


# ---------------------------------------------------------------- RSA, ISO/IEC 9796-2 scheme 1


def _rsa_numbers(info) -> tuple[int, int]:
    try:
        pub = info["public_key"].parsed
        n, e = pub["modulus"].native, pub["public_exponent"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise LdsError(f"Active Authentication RSA key cannot be read: {exc}.") from None
    if not isinstance(n, int) or not isinstance(e, int) or e < 2 or not 512 <= n.bit_length() <= MAX_KEY_BITS:
        raise LdsError("Active Authentication RSA key has an unusable modulus or exponent.")
    return n, e


def _verify_rsa(info, challenge: bytes, response: bytes) -> bool:
    n, e = _rsa_numbers(info)
    size = (n.bit_length() + 7) // 8
    if not response or len(response) > size:
        return False
    s = int.from_bytes(response, "big")
    if not 0 < s < n:
        return False
    m = pow(s, e, n)
    for candidate in (m, n - m):  # ISO/IEC 9796-2 allows the signer to send min(s, n - s)
        if candidate & 0x0F == 0x0C:
            break
    else:
        return False
    block = candidate.to_bytes(size, "big")
    if block[-1] == _IMPLICIT_TRAILER:
        hash_name, trailer = "sha1", 1
    elif block[-1] == _EXPLICIT_TRAILER and block[-2] in HASH_IDS:
        hash_name, trailer = HASH_IDS[block[-2]], 2
    else:
        return False
    if block[0] == 0x6A:
        start = 1
    elif block[0] == 0x6B:  # padded: 6B BB .. BB BA M1
        start = 1
        while start < size and block[start] == 0xBB:
            start += 1
        if start >= size or block[start] != 0xBA:
            return False
        start += 1
    else:
        return False
    digest_len = hashlib.new(hash_name).digest_size
    digest_at = size - trailer - digest_len
    if digest_at < start:
        return False
    m1 = block[start:digest_at]
    expected = hashlib.new(hash_name, m1 + challenge).digest()
    return hmac.compare_digest(expected, block[digest_at:size - trailer])


# ---------------------------------------------------------------- public API


def verify(spki_der: bytes, challenge: bytes, response: bytes, *, hash_name: str | None = None) -> bool:
    """Check an Active Authentication response against the DG15 public key.

    ``hash_name`` (``"sha256"``...) is the ECDSA hash from DG14 (see
    :func:`dinhdanh.ids.lds.dg14.active_authentication_hash`); None means SHA-256. For RSA the
    hash comes from the signature's trailer and ``hash_name`` is ignored.
    """
    spki_der, challenge, response = bytes(spki_der), bytes(challenge), bytes(response)
    info, algo = _key_info(spki_der)
    if algo == "rsa":
        return _verify_rsa(info, challenge, response)
    if algo == "ec":
        return _verify_ec(spki_der, challenge, response, _hash_name(hash_name))
    raise LdsError(f"Active Authentication key algorithm {algo!r} is neither RSA nor EC.")


def sign(private_key, challenge: bytes, *, hash_name: str = DEFAULT_HASH,
         explicit_trailer: bool | None = None) -> bytes:
    """The chip's Active Authentication response to ``challenge``.

    EC keys (``cryptography``) give the plain ``r || s``. RSA keys give an ISO/IEC 9796-2
    scheme 1 signature with partial recovery of a random M1; SHA-1 uses the implicit ``BC``
    trailer unless ``explicit_trailer`` is true, other hashes always use ``xx CC``.
    """
    challenge = bytes(challenge)
    name = _hash_name(hash_name)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        der = private_key.sign(challenge, ec.ECDSA(_CRYPTO_HASHES[name]()))
        r, s = decode_dss_signature(der)
        size = (private_key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if isinstance(private_key, rsa.RSAPrivateKey):
        numbers = private_key.private_numbers()
        n, d = numbers.public_numbers.n, numbers.d
        size = (n.bit_length() + 7) // 8
        if explicit_trailer is None:
            explicit_trailer = name != "sha1"
        trailer = bytes([_TRAILER_IDS[name], _EXPLICIT_TRAILER]) if explicit_trailer else bytes([_IMPLICIT_TRAILER])
        if not explicit_trailer and name != "sha1":
            raise ValueError("The implicit ISO/IEC 9796-2 trailer (BC) means SHA-1.")
        digest_len = hashlib.new(name).digest_size
        m1_len = size - 1 - digest_len - len(trailer)
        if m1_len < 1:
            raise LdsError(f"RSA key of {n.bit_length()} bits is too small for {name}.")
        m1 = os.urandom(m1_len)
        block = b"\x6a" + m1 + hashlib.new(name, m1 + challenge).digest() + trailer
        j = int.from_bytes(block, "big")
        if j >= n:
            raise LdsError(f"RSA modulus of {n.bit_length()} bits is not a multiple of 8 bits; unsupported.")
        return pow(j, d, n).to_bytes(size, "big")
    raise TypeError(f"Active Authentication needs an EC or RSA private key, got {type(private_key).__name__}.")
