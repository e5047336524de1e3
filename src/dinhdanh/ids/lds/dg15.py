"""DG15, the Active Authentication public key (ICAO Doc 9303 Part 10 section 4.7.15, Part 11 6.1).

``6F L <DER SubjectPublicKeyInfo>``: an RSA key (signatures per ISO/IEC 9796-2) or an EC key
(ECDSA), possibly with explicit curve parameters. :mod:`dinhdanh.ids.lds.aa` verifies with it.

>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> from cryptography.hazmat.primitives import serialization as ser
>>> key = ec.derive_private_key(7, ec.SECP256R1()).public_key()
>>> spki = key.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
>>> raw = encode(spki)
>>> raw[:3].hex(" "), decode(raw) == spki, algorithm(spki)
('6f 5b 30', True, 'ec')
"""

from __future__ import annotations

from asn1crypto import keys

from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError

__all__ = ["TAG", "encode", "decode", "algorithm"]

TAG = 0x6F


def algorithm(spki_der: bytes) -> str:
    """``"rsa"``, ``"ec"`` (or another asn1crypto algorithm name) of a SubjectPublicKeyInfo.

    Raises :class:`LdsError` when the bytes are not a SubjectPublicKeyInfo.
    """
    try:
        info = keys.PublicKeyInfo.load(bytes(spki_der), strict=True)
        name = info["algorithm"]["algorithm"].native
        info["algorithm"]["parameters"].native  # noqa: B018 - forces parsing
        info["public_key"].native  # noqa: B018
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise LdsError(f"DG15 does not hold a valid SubjectPublicKeyInfo: {exc}.") from None
    return "ec" if name == "ec" else name


def encode(public_key_der: bytes) -> bytes:
    """DG15 for a SubjectPublicKeyInfo (validated)."""
    algorithm(public_key_der)
    return tlv.encode(TAG, bytes(public_key_der))


def decode(raw: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER stored in DG15 (validated)."""
    try:
        spki = tlv.decode_one(raw, TAG)
    except TLVError as exc:
        raise LdsError(f"DG15: {exc.message}") from None
    algorithm(spki)
    return spki
