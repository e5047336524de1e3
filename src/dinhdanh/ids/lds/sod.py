"""EF.SOD: the Document Security Object (ICAO 9303 Part 10 s.4.6.2).

EF.SOD = ``77 L <ContentInfo>``; the ContentInfo is a CMS SignedData whose encapsulated content
(type 2.23.136.1.1.1, id-icao-mrtd-security-ldsSecurityObject) is::

    LDSSecurityObject ::= SEQUENCE {
        version                LDSSecurityObjectVersion,        -- v0(0), v1(1) with ldsVersionInfo
        hashAlgorithm          DigestAlgorithmIdentifier,
        dataGroupHashValues    SEQUENCE SIZE (2..ub-DataGroups) OF DataGroupHash,
        ldsVersionInfo         LDSVersionInfo OPTIONAL }
    DataGroupHash ::= SEQUENCE { dataGroupNumber INTEGER, dataGroupHashValue OCTET STRING }

Each hash is over the whole DG file as read from the chip, tag and length included.

>>> obj = security_object_der({1: b"\\x61\\x00", 2: b"\\x75\\x00"}, "sha256")
>>> parse_security_object(obj).hashes[1].hex()[:16]
'ffe9aaeaa2a2d504'
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from asn1crypto import algos, core

from dinhdanh.ids.exceptions import InvalidFormat
from dinhdanh.ids.lds import cms, tlv
from dinhdanh.ids.lds.certs import hash_function

__all__ = ["LDS_SECURITY_OBJECT", "SOD_TAG", "SecurityObject", "Sod", "build", "parse",
           "security_object_der", "parse_security_object", "SodError"]

LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
SOD_TAG = 0x77


class SodError(InvalidFormat):
    """EF.SOD or its LDSSecurityObject is malformed."""

    message = "EF.SOD is malformed."


class _DataGroupHash(core.Sequence):
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class _DataGroupHashValues(core.SequenceOf):
    _child_spec = _DataGroupHash


class _LDSVersionInfo(core.Sequence):
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]


class _LDSSecurityObject(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", _DataGroupHashValues),
        ("lds_version_info", _LDSVersionInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class SecurityObject:
    version: int
    hash_algorithm: str
    hashes: dict[int, bytes]
    lds_version: str | None = None
    unicode_version: str | None = None


@dataclass(frozen=True, slots=True)
class Sod:
    signed: cms.SignedData
    security_object: SecurityObject | None  # None when the content is not an LDSSecurityObject
    problem: str | None  # why security_object is None


def security_object_der(dg_files: Mapping[int, bytes], hash_algorithm: str = "sha256", *,
                        lds_version: tuple[str, str] | None = None) -> bytes:
    """DER LDSSecurityObject with the hash of every DG file (v1 when ``lds_version`` is given)."""
    digest = hash_function(hash_algorithm)
    values = b"".join(
        tlv.encode(0x30, core.Integer(n).dump() + tlv.encode(0x04, digest(raw).digest()))
        for n, raw in sorted(dg_files.items()))
    body = core.Integer(1 if lds_version else 0).dump() + _digest_algorithm(hash_algorithm) + tlv.encode(0x30, values)
    if lds_version:
        body += _LDSVersionInfo({"lds_version": lds_version[0], "unicode_version": lds_version[1]}).dump()
    return tlv.encode(0x30, body)


@functools.lru_cache(maxsize=16)
def _digest_algorithm(name: str) -> bytes:
    return algos.DigestAlgorithm({"algorithm": name}).dump()


def _parse_v0_der(der: bytes) -> SecurityObject | None:
    """The usual v0 DER object read straight off the bytes; None sends anything else to asn1crypto."""
    from dinhdanh.ids.lds.cms import DIGEST_ALGORITHMS, _children, _oid

    try:
        (tag, body, _), = _children(der)
        fields = _children(body) if tag == 0x30 else []
        if len(fields) != 3 or fields[0][:2] != (0x02, b"\x00") or fields[1][0] != 0x30 or fields[2][0] != 0x30:
            return None
        algorithm = _children(fields[1][1])
        name = DIGEST_ALGORITHMS.get(_oid(algorithm[0][1])) if algorithm and algorithm[0][0] == 0x06 else None
        if name is None:
            return None
        hashes: dict[int, bytes] = {}
        for item_tag, item, _ in _children(fields[2][1]):
            parts = _children(item) if item_tag == 0x30 else []
            if len(parts) != 2 or parts[0][0] != 0x02 or parts[1][0] != 0x04 or len(parts[0][1]) != 1:
                return None
            number = parts[0][1][0]
            if not 1 <= number <= 16 or number in hashes:
                return None
            hashes[number] = parts[1][1]
        return SecurityObject(0, name, hashes)
    except (ValueError, tlv.TLVError):
        return None


def parse_security_object(der: bytes) -> SecurityObject:
    fast = _parse_v0_der(der)
    if fast is not None:
        return fast
    try:
        obj = _LDSSecurityObject.load(der, strict=True)
        hashes: dict[int, bytes] = {}
        for item in obj["data_group_hash_values"]:
            number = item["data_group_number"].native
            if not 1 <= number <= 16:
                raise SodError(f"the LDSSecurityObject lists data group {number}, outside 1-16")
            if number in hashes:
                raise SodError(f"the LDSSecurityObject lists data group {number} twice")
            hashes[number] = item["data_group_hash_value"].native
        info = obj["lds_version_info"]
        lds = uni = None
        if info.native is not None:
            lds, uni = info["lds_version"].native, info["unicode_version"].native
        return SecurityObject(obj["version"].native, obj["hash_algorithm"]["algorithm"].native,
                              hashes, lds, uni)
    except SodError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise SodError(f"the content is not an LDSSecurityObject: {exc}") from None


def build(dg_files: Mapping[int, bytes], *, certificate: bytes, sign: Callable[[bytes], bytes],
          signature_algorithm: dict, hash_algorithm: str = "sha256",
          lds_version: tuple[str, str] | None = None, signing_time=None) -> bytes:
    """EF.SOD over ``dg_files`` ({DG number: file bytes}), signed by a Document Signer."""
    content = security_object_der(dg_files, hash_algorithm, lds_version=lds_version)
    info = cms.build(content_type=LDS_SECURITY_OBJECT, content=content, certificate=certificate,
                     sign=sign, signature_algorithm=signature_algorithm,
                     digest_algorithm=hash_algorithm, signing_time=signing_time)
    return tlv.encode(SOD_TAG, info)


def parse(raw: bytes) -> Sod:
    """Read EF.SOD (with its 77 wrapper, or the bare ContentInfo); SodError if it is not one.

    A SignedData of the wrong content type still parses (``security_object`` is None and
    ``problem`` says why), so that a verifier can report exactly which check failed.
    """
    data = bytes(raw)
    if data[:1] == bytes([SOD_TAG]):
        try:
            data = tlv.decode_one(data, expected_tag=SOD_TAG)
        except InvalidFormat as exc:
            raise SodError(f"EF.SOD: {exc}") from None
    elif data[:1] != b"\x30":
        raise SodError(f"EF.SOD must start with tag 0x77, found 0x{data[:1].hex() or 'nothing'}")
    try:
        signed = cms.parse(data)
    except InvalidFormat as exc:
        raise SodError(f"EF.SOD: {exc}") from None
    if signed.content_type != LDS_SECURITY_OBJECT:
        return Sod(signed, None, f"the SignedData content type is {signed.content_type}, "
                                 f"not the LDSSecurityObject ({LDS_SECURITY_OBJECT})")
    try:
        return Sod(signed, parse_security_object(signed.content), None)
    except SodError as exc:
        return Sod(signed, None, str(exc))
