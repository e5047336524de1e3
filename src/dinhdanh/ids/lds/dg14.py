"""DG14, the security infos for chip authentication, PACE and active authentication.

``6E L <DER SecurityInfos>`` (ICAO Doc 9303 Part 11 section 9.2, BSI TR-03110): a SET OF
``SecurityInfo ::= SEQUENCE { protocol OBJECT IDENTIFIER, requiredData ANY, optionalData ANY
OPTIONAL }``. Understood protocols and their Python values:

========================================  =====================  ==========================
structure (protocol)                      ``required_data``      ``optional_data``
========================================  =====================  ==========================
ChipAuthenticationPublicKeyInfo (id-PK-*)  SPKI DER (bytes)       keyId (int) or None
ChipAuthenticationInfo (id-CA-*-cipher)   version (int)          keyId (int) or None
PACEInfo (id-PACE-*-cipher)               version (int)          parameterId (int) or None
ActiveAuthenticationInfo (id-AA)          version (int)          signature algorithm OID (str)
TerminalAuthenticationInfo (id-TA)        version (int)          efCVCA, raw DER, or None
anything else                             raw DER (bytes)        raw DER (bytes) or None
========================================  =====================  ==========================

When encoding, an ``int`` becomes an INTEGER, a ``str`` an OBJECT IDENTIFIER and ``bytes``
is written as it is (DER). The SET OF is written in DER order.

>>> infos = [active_authentication_info("1.2.840.10045.4.3.2"), pace_info(parameter_id=12)]
>>> raw = encode(infos)
>>> [(i.name, i.required_data, i.optional_data) for i in decode(raw)]
[('id-PACE-ECDH-GM-AES-CBC-CMAC-128', 2, 12), ('id-AA', 1, '1.2.840.10045.4.3.2')]
>>> active_authentication_hash(decode(raw))
'sha256'
>>> PACE_PARAMETER_IDS[12], PACE_PARAMETER_IDS[13]
('secp256r1', 'brainpoolP256r1')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from asn1crypto import core, keys

from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.tlv import LdsError, TLVError

__all__ = [
    "TAG", "SecurityInfo", "encode", "decode", "active_authentication_hash", "hash_for_algorithm",
    "chip_authentication_public_key_info", "chip_authentication_info", "pace_info",
    "active_authentication_info", "PROTOCOL_NAMES", "PACE_PARAMETER_IDS",
    "ID_PK_DH", "ID_PK_ECDH", "ID_TA", "ID_CA_ECDH_AES_CBC_CMAC_128",
    "ID_PACE_ECDH_GM_AES_CBC_CMAC_128", "ID_AA", "ECDSA_WITH_SHA256",
]

TAG = 0x6E

_BSI = "0.4.0.127.0.7"
ID_PK = f"{_BSI}.2.2.1"
ID_PK_DH = f"{ID_PK}.1"
ID_PK_ECDH = f"{ID_PK}.2"
ID_TA = f"{_BSI}.2.2.2"
ID_CA = f"{_BSI}.2.2.3"
ID_PACE = f"{_BSI}.2.2.4"
ID_AA = "2.23.136.1.1.5"
ID_CA_ECDH_AES_CBC_CMAC_128 = f"{ID_CA}.2.2"
ID_PACE_ECDH_GM_AES_CBC_CMAC_128 = f"{ID_PACE}.2.2"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"

_CIPHERS = {1: "3DES-CBC-CBC", 2: "AES-CBC-CMAC-128", 3: "AES-CBC-CMAC-192", 4: "AES-CBC-CMAC-256"}
_CA_FAMILIES = {1: "id-CA-DH", 2: "id-CA-ECDH"}
_PACE_FAMILIES = {1: "id-PACE-DH-GM", 2: "id-PACE-ECDH-GM", 3: "id-PACE-DH-IM", 4: "id-PACE-ECDH-IM",
                  6: "id-PACE-ECDH-CAM"}


def _protocol_names() -> dict[str, str]:
    names = {ID_PK_DH: "id-PK-DH", ID_PK_ECDH: "id-PK-ECDH", ID_TA: "id-TA", ID_AA: "id-AA"}
    for families, base in ((_CA_FAMILIES, ID_CA), (_PACE_FAMILIES, ID_PACE)):
        for fam, fam_name in families.items():
            names[f"{base}.{fam}"] = fam_name  # domain parameter infos
            for cip, cip_name in _CIPHERS.items():
                if fam == 6 and cip == 1:
                    continue
                names[f"{base}.{fam}.{cip}"] = f"{fam_name}-{cip_name}"
    return names


PROTOCOL_NAMES: dict[str, str] = _protocol_names()
"""Dotted OID -> name (BSI TR-03110 / ICAO Doc 9303 Part 11 section 9.2)."""

PACE_PARAMETER_IDS: dict[int, str] = {
    0: "modp1024-160", 1: "modp2048-224", 2: "modp2048-256",
    8: "secp192r1", 9: "brainpoolP192r1", 10: "secp224r1", 11: "brainpoolP224r1",
    12: "secp256r1", 13: "brainpoolP256r1", 14: "brainpoolP320r1", 15: "secp384r1",
    16: "brainpoolP384r1", 17: "brainpoolP512r1", 18: "secp521r1",
}
"""Standardized domain parameters (ICAO Doc 9303 Part 11, table 6): 12 is NIST P-256, 13 brainpoolP256r1."""

_ASN1_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError)

_HASHES = {
    # ECDSA (X9.62) and BSI TR-03111 plain ECDSA
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
    "0.4.0.127.0.7.1.1.4.1.1": "sha1", "0.4.0.127.0.7.1.1.4.1.2": "sha224",
    "0.4.0.127.0.7.1.1.4.1.3": "sha256", "0.4.0.127.0.7.1.1.4.1.4": "sha384",
    "0.4.0.127.0.7.1.1.4.1.5": "sha512",
    # RSA PKCS #1 signature OIDs and the bare hash OIDs
    "1.2.840.113549.1.1.5": "sha1", "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
    "1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.4": "sha224", "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512",
}


def _kind(protocol: str) -> str:
    parts = protocol.split(".")
    if protocol.startswith(ID_PK + "."):
        return "chip_authentication_public_key"
    if protocol.startswith(ID_CA + ".") and len(parts) == len(ID_CA.split(".")) + 2:
        return "chip_authentication"
    if protocol.startswith(ID_PACE + ".") and len(parts) == len(ID_PACE.split(".")) + 2:
        return "pace"
    if protocol == ID_AA:
        return "active_authentication"
    if protocol == ID_TA:
        return "terminal_authentication"
    return "other"


@dataclass(frozen=True, slots=True)
class SecurityInfo:
    protocol: str  # dotted OID
    required_data: int | str | bytes
    optional_data: int | str | bytes | None = None
    name: str | None = field(init=False, default=None)  # e.g. "id-PACE-ECDH-GM-AES-CBC-CMAC-128"
    kind: str = field(init=False, default="other")  # pace, chip_authentication, ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", PROTOCOL_NAMES.get(self.protocol))
        object.__setattr__(self, "kind", _kind(self.protocol))

    def as_dict(self) -> dict:
        def show(v):
            return v.hex() if isinstance(v, bytes) else v
        return {"protocol": self.protocol, "name": self.name, "kind": self.kind,
                "required_data": show(self.required_data), "optional_data": show(self.optional_data)}


def chip_authentication_public_key_info(spki_der: bytes, key_id: int | None = None,
                                        protocol: str = ID_PK_ECDH) -> SecurityInfo:
    return SecurityInfo(protocol, bytes(spki_der), key_id)


def chip_authentication_info(protocol: str = ID_CA_ECDH_AES_CBC_CMAC_128, version: int = 1,
                             key_id: int | None = None) -> SecurityInfo:
    return SecurityInfo(protocol, version, key_id)


def pace_info(protocol: str = ID_PACE_ECDH_GM_AES_CBC_CMAC_128, version: int = 2,
              parameter_id: int | None = 12) -> SecurityInfo:
    return SecurityInfo(protocol, version, parameter_id)


def active_authentication_info(signature_algorithm: str = ECDSA_WITH_SHA256, version: int = 1) -> SecurityInfo:
    return SecurityInfo(ID_AA, version, signature_algorithm)


# ---------------------------------------------------------------- encoding


def _value_der(value: int | str | bytes, what: str) -> bytes:
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            return core.Integer(value).dump()
        if isinstance(value, str):
            return core.ObjectIdentifier(value).dump()
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value)
            for _ in tlv.iter_decode(value):
                pass
            if not value:
                raise LdsError(f"DG14 {what} is empty bytes (a DER element is needed).")
            return value
    except (ValueError, TypeError) as exc:
        if isinstance(exc, LdsError):
            raise
        raise LdsError(f"DG14 {what} {value!r} cannot be encoded: {exc}") from None
    raise LdsError(f"DG14 {what} must be int, OID string or DER bytes, got {type(value).__name__}.")


def _info_der(info: SecurityInfo) -> bytes:
    if info.kind == "chip_authentication_public_key":
        _check_spki(info.required_data, info.protocol)
    try:
        oid = core.ObjectIdentifier(info.protocol).dump()
    except (ValueError, TypeError):
        raise LdsError(f"DG14 protocol {info.protocol!r} is not a dotted OID.") from None
    body = oid + _value_der(info.required_data, f"required data of {info.protocol}")
    if info.optional_data is not None:
        body += _value_der(info.optional_data, f"optional data of {info.protocol}")
    return tlv.encode(0x30, body)


def encode(infos: Sequence[SecurityInfo]) -> bytes:
    """DG14 holding ``infos`` as a DER SET OF (elements sorted by their encoding)."""
    elements = sorted(_info_der(info) for info in infos)
    return tlv.encode(TAG, tlv.encode(0x31, b"".join(elements)))


# ---------------------------------------------------------------- decoding


def _check_spki(der, protocol: str) -> None:
    if not isinstance(der, (bytes, bytearray)):
        raise LdsError(f"DG14 {protocol}: the public key must be SubjectPublicKeyInfo DER bytes.")
    try:
        info = keys.PublicKeyInfo.load(bytes(der), strict=True)
        info["algorithm"]["algorithm"].dotted  # noqa: B018 - forces parsing
        info["public_key"].native  # noqa: B018
    except _ASN1_ERRORS as exc:
        raise LdsError(f"DG14 {protocol}: the public key is not a SubjectPublicKeyInfo ({exc}).") from None


def _int(der: bytes, what: str) -> int:
    try:
        return core.Integer.load(der, strict=True).native
    except _ASN1_ERRORS:
        raise LdsError(f"DG14 {what} is not an INTEGER.") from None


def _oid(der: bytes, what: str) -> str:
    try:
        return core.ObjectIdentifier.load(der, strict=True).dotted
    except _ASN1_ERRORS:
        raise LdsError(f"DG14 {what} is not an OBJECT IDENTIFIER.") from None


def _parse(element: bytes, at: int) -> SecurityInfo:
    parts: list[bytes] = []
    pos = 0
    while pos < len(element):
        _, _, end = tlv.decode(element, pos)
        parts.append(element[pos:end])
        pos = end
    if len(parts) < 2 or parts[0][0] != 0x06:
        raise LdsError(f"DG14 SecurityInfo at offset {at} is not {{OID, requiredData, ...}}.")
    protocol = _oid(parts[0], f"protocol at offset {at}")
    kind = _kind(protocol)
    required, optional = parts[1], b"".join(parts[2:]) or None
    if kind == "other" or len(parts) > 3:
        return SecurityInfo(protocol, required, optional)
    if kind == "chip_authentication_public_key":
        _check_spki(required, protocol)
        return SecurityInfo(protocol, required, None if optional is None else _int(optional, "keyId"))
    version = _int(required, f"version of {protocol}")
    if optional is None:
        return SecurityInfo(protocol, version, None)
    if kind == "active_authentication":
        return SecurityInfo(protocol, version, _oid(optional, "signatureAlgorithm of id-AA"))
    if kind == "terminal_authentication":
        return SecurityInfo(protocol, version, optional)
    return SecurityInfo(protocol, version, _int(optional, f"optional data of {protocol}"))


def decode(raw: bytes) -> tuple[SecurityInfo, ...]:
    """The SecurityInfos of DG14, in file order."""
    try:
        body = tlv.decode_one(raw, TAG)
        content = tlv.decode_one(body, 0x31)
        out = []
        pos = 0
        while pos < len(content):
            tag, element, end = tlv.decode(content, pos)
            if tag != 0x30:
                raise LdsError(f"DG14 SET element at offset {pos} has tag 0x{tag:X}, not a SEQUENCE.")
            out.append(_parse(element, pos))
            pos = end
    except TLVError as exc:
        raise LdsError(f"DG14: {exc.message}") from None
    return tuple(out)


def hash_for_algorithm(oid: str) -> str | None:
    """Hash name (``"sha256"``) for a signature or hash algorithm OID, None if unknown."""
    return _HASHES.get(oid)


def active_authentication_hash(infos: Iterable[SecurityInfo]) -> str | None:
    """Hash named by the ActiveAuthenticationInfo's signature algorithm; None without one."""
    for info in infos:
        if info.kind == "active_authentication" and isinstance(info.optional_data, str):
            return hash_for_algorithm(info.optional_data)
    return None
