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
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core, x509

from dinhdanh.ids.exceptions import InvalidFormat
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
    signing_time: _dt.datetime | None
    sid_issuer: bytes | None = field(repr=False)  # DER of the issuer Name
    sid_serial: int | None
    sid_key_id: bytes | None


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _set_of(encodings: Sequence[bytes]) -> bytes:
    body = b"".join(sorted(encodings))  # DER: SET OF elements in ascending order of encoding
    return b"\x31" + _der_length(len(body)) + body


def _tlv(tag: bytes, body: bytes) -> bytes:
    return tag + _der_length(len(body)) + body


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


def parse(der: bytes) -> SignedData:
    """Read a ContentInfo/SignedData with one signer; CmsError naming what is wrong."""
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
        signed_attrs = attr_type = attr_digest = signing_time = None
        if attrs:
            signed_attrs = b"\x31" + _der_length(len(attrs.contents)) + attrs.contents
            for attribute in attrs:
                kind = attribute["type"].dotted
                values = attribute["values"]
                if kind == "1.2.840.113549.1.9.3" and len(values):
                    attr_type = values[0].dotted
                elif kind == "1.2.840.113549.1.9.4" and len(values):
                    attr_digest = bytes(values[0].native)
                elif kind == "1.2.840.113549.1.9.5" and len(values):
                    signing_time = values[0].native
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
            signing_time=signing_time, sid_issuer=issuer, sid_serial=serial, sid_key_id=key_id,
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
        elif cert.serial == sd.sid_serial and _issuer_der(der) == sd.sid_issuer:
            return cert
    return None


def _issuer_der(der: bytes) -> bytes:
    return x509.Certificate.load(der)["tbs_certificate"]["issuer"].dump()


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
