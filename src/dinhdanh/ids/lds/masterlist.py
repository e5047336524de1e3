"""CSCA master lists (ICAO 9303 Part 12 s.9): how a country hands its trust anchors to verifiers.

A CMS SignedData with content type 2.23.136.1.1.2 (id-icao-cscaMasterList) holding::

    CscaMasterList ::= SEQUENCE { version CscaMasterListVersion (v0), certList SET OF Certificate }

signed by a Master List Signer whose certificate is issued by one of the listed CSCAs and carries
the extended key usage id-icao-cscaMasterListSigningKey (2.23.136.1.1.3; ICAO 9303-12 s.7.1.1
marks it critical in the profile: we issue it so, and accept a foreign signer that marks it
non-critical, since what proves the purpose is the OID, but never a certificate without it, such
as a Document Signer's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from asn1crypto import core, x509

from dinhdanh.ids.exceptions import InvalidFormat
from dinhdanh.ids.lds import cms
from dinhdanh.ids.lds.certs import CertificateError, parse_certificate, verify_signature

__all__ = ["CSCA_MASTER_LIST", "MasterListError", "build", "parse", "verify"]

CSCA_MASTER_LIST = "2.23.136.1.1.2"
MASTER_LIST_SIGNING = "2.23.136.1.1.3"  # id-icao-mrtd-security-cscaMasterListSigningKey


class MasterListError(InvalidFormat):
    message = "The data is not a CSCA master list."


class _CertificateSet(core.SetOf):
    _child_spec = x509.Certificate


class _CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", _CertificateSet)]


def build(cscas: Sequence[bytes], *, certificate: bytes, sign: Callable[[bytes], bytes],
          signature_algorithm: dict, digest_algorithm: str = "sha256") -> bytes:
    """DER ContentInfo of a master list of ``cscas``, signed by a Master List Signer."""
    content = _CscaMasterList({
        "version": 0, "cert_list": [x509.Certificate.load(der) for der in cscas]}).dump()
    return cms.build(content_type=CSCA_MASTER_LIST, content=content, certificate=certificate,
                     sign=sign, signature_algorithm=signature_algorithm,
                     digest_algorithm=digest_algorithm)


def parse(raw: bytes) -> tuple[cms.SignedData, tuple[bytes, ...]]:
    """(the SignedData, the listed CSCA certificates) without checking the signature."""
    try:
        signed = cms.parse(raw)
    except InvalidFormat as exc:
        raise MasterListError(f"master list: {exc}") from None
    if signed.content_type != CSCA_MASTER_LIST:
        raise MasterListError(f"the content type is {signed.content_type}, not a CSCA master list "
                              f"({CSCA_MASTER_LIST})")
    try:
        listed = _CscaMasterList.load(signed.content, strict=True)
        return signed, tuple(cert.dump() for cert in listed["cert_list"])
    except (ValueError, TypeError) as exc:
        raise MasterListError(f"the CscaMasterList is malformed: {exc}") from None


def verify(raw: bytes) -> tuple[bytes, ...]:
    """The listed CSCAs, after checking the signer's signature and that a listed CSCA issued it."""
    signed, certificates = parse(raw)
    signer = cms.signer_certificate(signed)
    if signer is None:
        raise MasterListError("the master list does not include its signer's certificate")
    if MASTER_LIST_SIGNING not in (signer.extended_key_usage or ()):
        raise MasterListError("the master list signer's certificate is not for signing master lists (its "
                              f"extended key usage lacks {MASTER_LIST_SIGNING})")
    ok, reason = cms.verify_signer(signed, signer)
    if not ok:
        raise MasterListError(f"the master list signature is invalid: {reason}")
    for der in certificates:
        try:
            csca = parse_certificate(der)
        except CertificateError:
            continue
        if signer.authority_key_id and csca.subject_key_id != signer.authority_key_id:
            continue
        try:
            if verify_signature(csca.spki, signer.signature_algorithm, signer.tbs, signer.signature):
                return certificates
        except CertificateError:
            continue
    raise MasterListError("the master list signer is not issued by any CSCA on the list")
