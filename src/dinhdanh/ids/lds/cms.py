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


def build(*, content_type: str, content: bytes, certificate: bytes, sign: Callable[[bytes], bytes],
          signature_algorithm: dict, digest_algorithm: str = "sha256",
          signing_time: _dt.datetime | None = None) -> bytes:
    """A DER ContentInfo holding a SignedData over ``content``, signed by ``sign``."""
    cert = x509.Certificate.load(certificate)
    digest = hash_function(digest_algorithm)(content).digest()
    when = signing_time or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": [content_type]}).dump(),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}).dump(),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": when})]}).dump(),
    ]
    signed_attrs_der = _set_of(attributes)
    signature = sign(signed_attrs_der)
    signed_attrs = cms.CMSAttributes.load(signed_attrs_der)
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber({
            "issuer": cert.issuer, "serial_number": cert.serial_number})}),
        "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest_algorithm}),
        "signed_attrs": signed_attrs,
        "signature_algorithm": algos.SignedDigestAlgorithm(signature_algorithm),
        "signature": signature,
    })
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest_algorithm})],
        "encap_content_info": cms.EncapsulatedContentInfo({
            "content_type": content_type, "content": core.ParsableOctetString(content)}),
        "certificates": [cert],
        "signer_infos": [signer_info],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


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
