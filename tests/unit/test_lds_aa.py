"""Unit and property tests for ``dinhdanh.ids.lds.aa`` (Active Authentication)."""

from __future__ import annotations

import hashlib

import ecdsa
import pytest
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from dinhdanh.ids.lds import aa, dg14, dg15
from dinhdanh.ids.lds.tlv import LdsError

CHALLENGE = bytes.fromhex("0123456789abcdef")


def _spki(public_key) -> bytes:
    return public_key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)


P256 = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
P256_SPKI = _spki(P256.public_key())
BRAINPOOL = ec.derive_private_key(0xBEEF, ec.BrainpoolP256R1())


def _explicit(private_key: ec.EllipticCurvePrivateKey, curve) -> bytes:
    """SPKI with explicit curve parameters, as CSCAs and some chips write them."""
    point = private_key.public_key().public_bytes(ser.Encoding.X962, ser.PublicFormat.UncompressedPoint)
    return ecdsa.VerifyingKey.from_string(point, curve=curve).to_der(curve_parameters_encoding="explicit")


BRAINPOOL_EXPLICIT = _explicit(BRAINPOOL, ecdsa.BRAINPOOLP256r1)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(65537, 2048)


# ---------------------------------------------------------------- ECDSA


def test_p256_round_trip_and_plain_format():
    response = aa.sign(P256, CHALLENGE)
    assert len(response) == 64
    assert aa.verify(P256_SPKI, CHALLENGE, response)
    assert aa.verify(P256_SPKI, CHALLENGE, response, hash_name="sha256")
    assert aa.verify(P256_SPKI, CHALLENGE, response, hash_name="SHA-256")


def test_ecdsa_response_signed_independently_verifies():
    der = P256.sign(CHALLENGE, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    assert aa.verify(P256_SPKI, CHALLENGE, r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def test_ecdsa_hash_from_dg14():
    infos = dg14.decode(dg14.encode([dg14.active_authentication_info("1.2.840.10045.4.3.3")]))
    hash_name = dg14.active_authentication_hash(infos)
    assert hash_name == "sha384"
    response = aa.sign(P256, CHALLENGE, hash_name=hash_name)
    assert aa.verify(P256_SPKI, CHALLENGE, response, hash_name=hash_name)
    assert not aa.verify(P256_SPKI, CHALLENGE, response)  # default SHA-256 does not match


def test_p384_and_p521_lengths():
    for curve, size in ((ec.SECP384R1(), 48), (ec.SECP521R1(), 66)):
        key = ec.generate_private_key(curve)
        response = aa.sign(key, CHALLENGE, hash_name="sha512")
        assert len(response) == 2 * size
        assert aa.verify(_spki(key.public_key()), CHALLENGE, response, hash_name="sha512")


def test_ecdsa_tampering_fails():
    response = aa.sign(P256, CHALLENGE)
    assert not aa.verify(P256_SPKI, CHALLENGE[:-1] + b"\x00", response)
    assert not aa.verify(P256_SPKI, CHALLENGE, response[:-1] + bytes([response[-1] ^ 1]))
    assert not aa.verify(P256_SPKI, CHALLENGE, response[:-1])
    assert not aa.verify(P256_SPKI, CHALLENGE, response + b"\x00")
    assert not aa.verify(P256_SPKI, CHALLENGE, b"")
    assert not aa.verify(P256_SPKI, CHALLENGE, bytes(64))
    assert not aa.verify(P256_SPKI, CHALLENGE, b"\xff" * 64)
    other = _spki(ec.derive_private_key(7, ec.SECP256R1()).public_key())
    assert not aa.verify(other, CHALLENGE, response)


def test_brainpool_explicit_parameters_use_the_ecdsa_fallback():
    with pytest.raises((UnsupportedAlgorithm, ValueError)):
        ser.load_der_public_key(BRAINPOOL_EXPLICIT)  # precondition: cryptography refuses it
    response = aa.sign(BRAINPOOL, CHALLENGE)
    assert len(response) == 64
    assert aa.verify(BRAINPOOL_EXPLICIT, CHALLENGE, response)
    assert aa.verify(_spki(BRAINPOOL.public_key()), CHALLENGE, response)  # named curve
    assert not aa.verify(BRAINPOOL_EXPLICIT, b"\x00" * 8, response)
    assert not aa.verify(BRAINPOOL_EXPLICIT, CHALLENGE, response[::-1])
    assert not aa.verify(BRAINPOOL_EXPLICIT, CHALLENGE, response[:-2])
    assert not aa.verify(BRAINPOOL_EXPLICIT, CHALLENGE, bytes(64))
    assert not aa.verify(BRAINPOOL_EXPLICIT, CHALLENGE, response, hash_name="sha1")
    r1 = aa.sign(BRAINPOOL, CHALLENGE, hash_name="sha1")
    assert aa.verify(BRAINPOOL_EXPLICIT, CHALLENGE, r1, hash_name="sha1")
    # The explicit key also goes through DG15.
    assert dg15.decode(dg15.encode(BRAINPOOL_EXPLICIT)) == BRAINPOOL_EXPLICIT


def test_explicit_nist_parameters_still_verify():
    explicit = _explicit(P256, ecdsa.NIST256p)
    assert aa.verify(explicit, CHALLENGE, aa.sign(P256, CHALLENGE))


# ---------------------------------------------------------------- RSA, ISO/IEC 9796-2 scheme 1


def _recover(key: rsa.RSAPrivateKey, response: bytes) -> bytes:
    n, e = key.public_key().public_numbers().n, key.public_key().public_numbers().e
    return pow(int.from_bytes(response, "big"), e, n).to_bytes(256, "big")


def test_rsa_sha1_implicit_trailer(rsa_key):
    response = aa.sign(rsa_key, CHALLENGE, hash_name="sha1")
    assert len(response) == 256
    block = _recover(rsa_key, response)
    assert block[0] == 0x6A and block[-1] == 0xBC
    m1 = block[1:256 - 21]
    assert block[-21:-1] == hashlib.sha1(m1 + CHALLENGE).digest()
    assert aa.verify(_spki(rsa_key.public_key()), CHALLENGE, response)


@pytest.mark.parametrize("name, hash_id", [("sha256", 0x34), ("sha1", 0x33), ("sha224", 0x38),
                                            ("sha384", 0x36), ("sha512", 0x35)])
def test_rsa_explicit_trailers(rsa_key, name, hash_id):
    response = aa.sign(rsa_key, CHALLENGE, hash_name=name, explicit_trailer=True)
    block = _recover(rsa_key, response)
    assert block[0] == 0x6A and block[-2:] == bytes([hash_id, 0xCC])
    spki = _spki(rsa_key.public_key())
    assert aa.verify(spki, CHALLENGE, response)
    assert aa.verify(spki, CHALLENGE, response, hash_name="sha1")  # ignored for RSA: the trailer decides


def test_rsa_block_built_by_hand_verifies(rsa_key):
    """An ISO/IEC 9796-2 block assembled independently of ``aa.sign``."""
    numbers = rsa_key.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    m1 = bytes(range(256 - 1 - 32 - 2))
    block = b"\x6a" + m1 + hashlib.sha256(m1 + CHALLENGE).digest() + b"\x34\xcc"
    s = pow(int.from_bytes(block, "big"), d, n)
    spki = _spki(rsa_key.public_key())
    assert aa.verify(spki, CHALLENGE, s.to_bytes(256, "big"))
    assert aa.verify(spki, CHALLENGE, (n - s).to_bytes(256, "big"))  # min(s, n - s) form
    assert aa.verify(spki, CHALLENGE, s.to_bytes(256, "big").lstrip(b"\x00"))
    # Padded header 6B BB .. BA before a shorter M1.
    short = m1[:-5]
    padded = b"\x6b\xbb\xbb\xbb\xbb\xba" + short + hashlib.sha256(short + CHALLENGE).digest() + b"\x34\xcc"
    assert len(padded) == 256
    assert aa.verify(spki, CHALLENGE, pow(int.from_bytes(padded, "big"), d, n).to_bytes(256, "big"))
    # Wrong header, wrong trailer, unknown hash id: all False.
    for bad in (b"\x4a" + block[1:], block[:-1] + b"\xcd", block[:-2] + b"\x3f\xcc", b"\x6b" + block[1:]):
        assert not aa.verify(spki, CHALLENGE, pow(int.from_bytes(bad, "big"), d, n).to_bytes(256, "big"))


def test_rsa_tampering_fails(rsa_key):
    spki = _spki(rsa_key.public_key())
    n = rsa_key.public_key().public_numbers().n
    response = aa.sign(rsa_key, CHALLENGE)
    assert aa.verify(spki, CHALLENGE, response)
    assert not aa.verify(spki, CHALLENGE[::-1], response)
    assert not aa.verify(spki, CHALLENGE, response[:-1] + bytes([response[-1] ^ 0x40]))
    assert not aa.verify(spki, CHALLENGE, b"")
    assert not aa.verify(spki, CHALLENGE, bytes(256))
    assert not aa.verify(spki, CHALLENGE, b"\x01" + response)  # longer than the modulus
    assert not aa.verify(spki, CHALLENGE, n.to_bytes(256, "big"))  # s >= n
    assert not aa.verify(_spki(rsa.generate_private_key(65537, 1024).public_key()), CHALLENGE, response)


def test_sign_rejects_bad_arguments(rsa_key):
    with pytest.raises(ValueError, match="Unsupported hash"):
        aa.sign(P256, CHALLENGE, hash_name="md5")
    with pytest.raises(ValueError, match="implicit"):
        aa.sign(rsa_key, CHALLENGE, hash_name="sha256", explicit_trailer=False)
    with pytest.raises(TypeError):
        aa.sign(ed25519.Ed25519PrivateKey.generate(), CHALLENGE)
    with pytest.raises(ValueError, match="Unsupported hash"):
        aa.verify(P256_SPKI, CHALLENGE, bytes(64), hash_name="md5")


# ---------------------------------------------------------------- unusable keys


def test_unusable_keys_raise_lds_error():
    with pytest.raises(LdsError):
        aa.verify(b"\x30\x00", CHALLENGE, bytes(64))
    with pytest.raises(LdsError):
        aa.verify(b"not der at all", CHALLENGE, bytes(64))
    with pytest.raises(LdsError, match="neither RSA nor EC"):
        aa.verify(_spki(ed25519.Ed25519PrivateKey.generate().public_key()), CHALLENGE, bytes(64))
    # Explicit parameters whose point is not on the curve.
    broken = bytearray(BRAINPOOL_EXPLICIT)
    broken[-1] ^= 0x01
    with pytest.raises(LdsError, match="EC key cannot be loaded"):
        aa.verify(bytes(broken), CHALLENGE, bytes(64))
    # An RSA modulus above MAX_KEY_BITS (a hostile chip could make verification slow).
    huge = asn1_keys.PublicKeyInfo({
        "algorithm": {"algorithm": "rsa"},
        "public_key": asn1_keys.RSAPublicKey({"modulus": 2 ** (aa.MAX_KEY_BITS + 8) + 1, "public_exponent": 65537}),
    }).dump()
    with pytest.raises(LdsError, match="unusable modulus"):
        aa.verify(huge, CHALLENGE, bytes(64))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(min_size=8, max_size=8))
def test_random_responses_are_false_never_errors(response, challenge):
    assert aa.verify(P256_SPKI, challenge, response) is False
    assert aa.verify(BRAINPOOL_EXPLICIT, challenge, response) is False


RSA_SPKI_1024 = _spki(rsa.generate_private_key(65537, 1024).public_key())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_rsa_responses_are_false(response):
    assert aa.verify(RSA_SPKI_1024, CHALLENGE, response) is False
