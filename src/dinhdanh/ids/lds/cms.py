"""CMS SignedData (RFC 5652) as ICAO 9303 uses it: EF.SOD and CSCA master lists.

``cryptography``'s PKCS#7 builder fixes the content type to id-data, so the SignedData is built
here with ``asn1crypto`` and the signature comes from a ``sign(data) -> bytes`` callable: a key in
memory, or an HSM behind the same interface. One signer, signed attributes always present
(content type, message digest, signing time), the signer's certificate included, as 9303 Part 10
asks.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
import functools
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core, x509
from asn1crypto import tsp  # noqa: F401  (registers RFC 5035's CMS attributes before this module builds
# CMSAttributeType's reverse map, which asn1crypto builds once: else pyHanko, later in the same process,
# cannot name signing_certificate_v2 and signing a result PDF after issuing a card fails)

from dinhdanh.ids.exceptions import InvalidFormat
from dinhdanh.ids.lds import tlv
from dinhdanh.ids.lds.certs import Certificate, hash_function, parse_certificate, signature_scheme, \
    verify_signature

__all__ = ["CmsError", "SignedData", "build", "parse", "signer_certificate", "verify_signer"]


class CmsError(InvalidFormat):
    """The bytes are not the CMS SignedData expected."""

    message = "The data is not a CMS SignedData."


@dataclass(frozen=True, slots=True)
class SignedData:
    content_type: str  # eContentType, dotted
    content: bytes  # eContent
    certificates: tuple[bytes, ...]
    digest_algorithm: str
    signature_algorithm: algos.SignedDigestAlgorithm = field(repr=False)
    signature: bytes = field(repr=False)
    signed_attrs: bytes | None = field(repr=False)  # DER, tagged as SET for verification
    attr_content_type: str | None
    attr_message_digest: bytes | None = field(repr=False)
    sid_issuer: bytes | None = field(repr=False)  # DER of the issuer Name
    sid_serial: int | None
    sid_key_id: bytes | None


def _set_of(encodings: Sequence[bytes]) -> bytes:
    body = b"".join(sorted(encodings))  # DER: SET OF elements in ascending order of encoding
    return b"\x31" + tlv.encode_length(len(body)) + body


def _tlv(tag: bytes, body: bytes) -> bytes:
    return tag + tlv.encode_length(len(body)) + body


@dataclass(frozen=True, slots=True)
class _Template:
    """The parts of a SignedData that depend only on the signer and the content type, DER-encoded."""

    content_type_attr: bytes
    content_type_oid: bytes
    signer_prefix: bytes  # version, sid, digestAlgorithm
    signature_algorithm: bytes
    digest_algorithms: bytes
    certificates: bytes


_TEMPLATES: dict[tuple, _Template] = {}
_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_SIGNING_TIME = core.ObjectIdentifier("1.2.840.113549.1.9.5").dump()
_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()


def _template(content_type: str, certificate: bytes, signature_algorithm: dict, digest_algorithm: str) -> _Template:
    key = (content_type, certificate, repr(signature_algorithm), digest_algorithm)
    found = _TEMPLATES.get(key)
    if found is None:
        cert = x509.Certificate.load(certificate)
        sid = cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": cert.issuer, "serial_number": cert.serial_number})}).dump()
        digest_alg = algos.DigestAlgorithm({"algorithm": digest_algorithm}).dump()
        found = _Template(
            content_type_attr=cms.CMSAttribute({"type": "content_type", "values": [content_type]}).dump(),
            content_type_oid=core.ObjectIdentifier(content_type).dump(),
            signer_prefix=core.Integer(1).dump() + sid + digest_alg,
            signature_algorithm=algos.SignedDigestAlgorithm(signature_algorithm).dump(),
            digest_algorithms=_tlv(b"\x31", digest_alg),
            certificates=_tlv(b"\xa0", certificate),
        )
        if len(_TEMPLATES) > 64:
            _TEMPLATES.clear()
        _TEMPLATES[key] = found
    return found


def build(*, content_type: str, content: bytes, certificate: bytes, sign: Callable[[bytes], bytes],
          signature_algorithm: dict, digest_algorithm: str = "sha256",
          signing_time: _dt.datetime | None = None) -> bytes:
    """A DER ContentInfo holding a SignedData over ``content``, signed by ``sign``.

    The signer-dependent parts are encoded once by ``asn1crypto`` and kept; each call only
    encodes the digest, the signing time and the signature (card production signs thousands).
    """
    t = _template(content_type, certificate, signature_algorithm, digest_algorithm)
    digest = hash_function(digest_algorithm)(content).digest()
    when = signing_time or _dt.datetime.now(_dt.timezone.utc)
    utc_time = _tlv(b"\x17", when.astimezone(_dt.timezone.utc).strftime("%y%m%d%H%M%SZ").encode())
    attributes = [
        t.content_type_attr,
        _tlv(b"\x30", _MESSAGE_DIGEST + _tlv(b"\x31", _tlv(b"\x04", digest))),
        _tlv(b"\x30", _SIGNING_TIME + _tlv(b"\x31", utc_time)),
    ]
    signed_attrs = _set_of(attributes)
    signature = sign(signed_attrs)
    signer_info = _tlv(b"\x30", t.signer_prefix + b"\xa0" + signed_attrs[1:] + t.signature_algorithm
                       + _tlv(b"\x04", signature))
    encap = _tlv(b"\x30", t.content_type_oid + _tlv(b"\xa0", _tlv(b"\x04", content)))
    signed_data = _tlv(b"\x30", core.Integer(3).dump() + t.digest_algorithms + encap + t.certificates
                       + _tlv(b"\x31", signer_info))
    return _tlv(b"\x30", _SIGNED_DATA + _tlv(b"\xa0", signed_data))


DIGEST_ALGORITHMS = {  # digest OIDs -> hash names (hashlib / cryptography)
    "1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.4": "sha224", "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512"}


def _oid(value: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets."""
    if not value or value[-1] & 0x80:
        raise CmsError("an object identifier is truncated")
    parts, n = [], 0
    for byte in value:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(n)
            n = 0
    first = parts[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + parts[1:]))


@functools.lru_cache(maxsize=256)
def _algorithm(raw: bytes) -> algos.SignedDigestAlgorithm:
    return algos.SignedDigestAlgorithm.load(raw, strict=True)


def _children(value: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, value, whole encoding) of each data object inside a constructed value."""
    out, offset = [], 0
    while offset < len(value):
        tag, inner, end = tlv.decode(value, offset)
        out.append((tag, inner, value[offset:end]))
        offset = end
    return out


def _parse_der(der: bytes) -> SignedData:
    """The common case, DER, read with the strict TLV codec: no object tree is built."""
    (tag, info, _), = _children(der) or [(None, b"", b"")]
    parts = _children(info) if tag == 0x30 else []
    if len(parts) != 2 or parts[0][0] != 0x06 or parts[1][0] != 0xA0:
        raise ValueError("not a ContentInfo")
    if _oid(parts[0][1]) != "1.2.840.113549.1.7.2":
        raise CmsError(f"the ContentInfo holds {_oid(parts[0][1])}, not a SignedData")
    (sd_tag, sd, _), = _children(parts[1][1])
    fields = _children(sd) if sd_tag == 0x30 else []
    if len(fields) < 4 or fields[0][0] != 0x02 or fields[1][0] != 0x31 or fields[2][0] != 0x30:
        raise ValueError("not a SignedData")
    encap = _children(fields[2][1])
    if not encap or encap[0][0] != 0x06:
        raise ValueError("no encapsulated content type")
    content_type = _oid(encap[0][1])
    if len(encap) != 2 or encap[1][0] != 0xA0:
        raise CmsError("the SignedData has no encapsulated content (a detached signature)")
    (octets_tag, content, _), = _children(encap[1][1])
    if octets_tag != 0x04:
        raise ValueError("the encapsulated content is not a primitive OCTET STRING")
    certificates: tuple[bytes, ...] = ()
    rest = fields[3:]
    if rest and rest[0][0] == 0xA0:
        certificates = tuple(whole for t, _, whole in _children(rest[0][1]) if t == 0x30)
        rest = rest[1:]
    if rest and rest[0][0] == 0xA1:
        rest = rest[1:]
    if len(rest) != 1 or rest[0][0] != 0x31:
        raise ValueError("no SignerInfos")
    signers = _children(rest[0][1])
    if len(signers) != 1:
        raise CmsError(f"the SignedData has {len(signers)} signers, expected one")
    si = _children(signers[0][1])
    if len(si) < 5 or si[0][0] != 0x02:
        raise ValueError("a malformed SignerInfo")
    issuer = serial = key_id = None
    if si[1][0] == 0x30:
        sid = _children(si[1][1])
        if len(sid) != 2 or sid[0][0] != 0x30 or sid[1][0] != 0x02:
            raise ValueError("a malformed IssuerAndSerialNumber")
        issuer, serial = sid[0][2], int.from_bytes(sid[1][1], "big", signed=True)
    elif si[1][0] == 0x80:
        key_id = si[1][1]
    else:
        raise ValueError("an unknown SignerIdentifier")
    digest_oid = _children(si[2][1])[0][1] if si[2][0] == 0x30 else b""
    digest_algorithm = DIGEST_ALGORITHMS.get(_oid(digest_oid), _oid(digest_oid))
    index = 3
    signed_attrs = attr_type = attr_digest = None
    if si[3][0] == 0xA0:
        signed_attrs = b"\x31" + si[3][2][1:]
        for attr_tag, attribute, _ in _children(si[3][1]):
            items = _children(attribute) if attr_tag == 0x30 else []
            if len(items) != 2 or items[0][0] != 0x06 or items[1][0] != 0x31:
                raise ValueError("a malformed signed attribute")
            kind, values = _oid(items[0][1]), _children(items[1][1])
            if kind == "1.2.840.113549.1.9.3" and values and values[0][0] == 0x06:
                attr_type = _oid(values[0][1])
            elif kind == "1.2.840.113549.1.9.4" and values and values[0][0] == 0x04:
                attr_digest = values[0][1]
        index = 4
    if len(si) < index + 2 or si[index][0] != 0x30 or si[index + 1][0] != 0x04:
        raise ValueError("a malformed SignerInfo")
    return SignedData(
        content_type=content_type, content=content, certificates=certificates,
        digest_algorithm=digest_algorithm, signature_algorithm=_algorithm(si[index][2]),
        signature=si[index + 1][1], signed_attrs=signed_attrs, attr_content_type=attr_type,
        attr_message_digest=attr_digest, sid_issuer=issuer, sid_serial=serial,
        sid_key_id=key_id,
    )


def parse(der: bytes) -> SignedData:
    """Read a ContentInfo/SignedData with one signer; CmsError naming what is wrong.

    DER (what issuers are asked to write) is read directly off the bytes; anything else, such
    as the BER indefinite lengths some older documents carry, goes through ``asn1crypto``.
    """
    try:
        return _parse_der(der)
    except CmsError:
        raise
    except (ValueError, TypeError, IndexError, InvalidFormat):
        pass
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].dotted != "1.2.840.113549.1.7.2":
            raise CmsError(f"the ContentInfo holds {info['content_type'].dotted}, not a SignedData")
        sd = info["content"]
        encap = sd["encap_content_info"]
        content = encap["content"]
        if not isinstance(content, core.ParsableOctetString):
            raise CmsError("the SignedData has no encapsulated content (a detached signature)")
        content_bytes = content.__bytes__()
        signers = sd["signer_infos"]
        if len(signers) != 1:
            raise CmsError(f"the SignedData has {len(signers)} signers, expected one")
        si = signers[0]
        certificates = tuple(c.chosen.dump() for c in sd["certificates"]
                             if c.name == "certificate") if sd["certificates"] else ()
        attrs = si["signed_attrs"]
        signed_attrs = attr_type = attr_digest = None
        if attrs:
            signed_attrs = b"\x31" + tlv.encode_length(len(attrs.contents)) + attrs.contents
            for attribute in attrs:
                kind = attribute["type"].dotted
                values = attribute["values"]
                if kind == "1.2.840.113549.1.9.3" and len(values):
                    attr_type = values[0].dotted
                elif kind == "1.2.840.113549.1.9.4" and len(values):
                    attr_digest = bytes(values[0].native)
        sid = si["sid"]
        issuer = serial = key_id = None
        if sid.name == "issuer_and_serial_number":
            issuer = sid.chosen["issuer"].dump()
            serial = sid.chosen["serial_number"].native
        else:
            key_id = bytes(sid.chosen.native)
        return SignedData(
            content_type=encap["content_type"].dotted, content=content_bytes,
            certificates=certificates, digest_algorithm=si["digest_algorithm"]["algorithm"].native,
            signature_algorithm=si["signature_algorithm"], signature=bytes(si["signature"].native),
            signed_attrs=signed_attrs, attr_content_type=attr_type, attr_message_digest=attr_digest,
            sid_issuer=issuer, sid_serial=serial, sid_key_id=key_id,
        )
    except CmsError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise CmsError(f"the data is not a well-formed CMS SignedData: {exc}") from None


def signer_certificate(sd: SignedData) -> Certificate | None:
    """The included certificate the SignerInfo points at (issuer and serial, or key identifier)."""
    for der in sd.certificates:
        try:
            cert = parse_certificate(der)
        except InvalidFormat:
            continue
        if sd.sid_key_id is not None:
            if cert.subject_key_id == sd.sid_key_id:
                return cert
        elif cert.serial == sd.sid_serial and cert.issuer_der == sd.sid_issuer:
            return cert
    return None


def verify_signer(sd: SignedData, cert: Certificate) -> tuple[bool, str]:
    """(ok, reason): content-type and message-digest attributes, then the signature itself."""
    if sd.signed_attrs is not None:
        if sd.attr_content_type != sd.content_type:
            return False, (f"the signed content-type attribute ({sd.attr_content_type}) differs from "
                           f"the encapsulated content type ({sd.content_type})")
        try:
            digest = hash_function(sd.digest_algorithm)(sd.content).digest()
        except InvalidFormat as exc:
            return False, str(exc)
        if sd.attr_message_digest != digest:
            return False, "the message-digest attribute does not match the signed content"
        data = sd.signed_attrs
    else:
        data = sd.content
    try:
        signature_scheme(sd.signature_algorithm, sd.digest_algorithm)
        ok = verify_signature(cert.spki, sd.signature_algorithm, data, sd.signature,
                              sd.digest_algorithm)
    except InvalidFormat as exc:
        return False, str(exc)
    if not ok:
        return False, "the signature does not verify with the signer certificate's key"
    return True, "the signature verifies with the Document Signer's key"
