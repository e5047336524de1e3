"""PAdES signing of a rendered document with pyHanko, the key staying behind our ``Signer``.

The signature is PAdES baseline B-B (``ETSI.CAdES.detached``, signing certificate v2 attribute),
and the validation data a verifier needs offline, the chain up to the document-signing CA and the
CA's current CRL, go into the document security store in the same revision as the signature
(``/DSS``, no VRI): what PAdES B-LT adds, except the signature timestamp (B-T), since no
timestamp authority is reachable here. Nothing in the document is changed but the one incremental
update (signature field, DSS, XMP modification date), so the PDF/A-2B part stays as rendered.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from asn1crypto import algos, crl as asn1_crl, x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from dinhdanh.pki.signers import Signer

__all__ = ["FIELD_NAME", "sign_pdf"]

FIELD_NAME = "ChuKySo"  # "digital signature": the one signature field of a result document


class _OfflineByDesign(logging.Filter):
    """pyHanko warns on every signature that it may not fetch revocation data: we hand it the CA's
    CRL ourselves and never want it to fetch, so that warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_OfflineByDesign())


class _LoggedSigner(signers.Signer):
    """pyHanko's view of our signer: it asks for the signed attributes to be signed; the key,
    wherever it lives (vault or HSM), signs them and the use is logged in the caller's transaction."""

    def __init__(self, conn: sa.Connection, signer: Signer, chain: Sequence[asn1_x509.Certificate], reference: str):
        super().__init__(signing_cert=chain[0], cert_registry=SimpleCertificateStore.from_certs(chain),
                         signature_mechanism=algos.SignedDigestAlgorithm(signer.signature_algorithm),
                         embed_roots=True)
        self._conn, self._signer, self._reference = conn, signer, reference
        key = chain[0].public_key
        # the longest signature this key makes (DER ECDSA: two integers of the curve's size)
        self._placeholder = (2 * (key.bit_size + 7) // 8 + 9) if key.algorithm == "ec" else key.bit_size // 8

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if dry_run:  # pyHanko sizing the signature container: nothing is signed, nothing logged
            return bytes(self._placeholder)
        return self._signer.sign(self._conn, data, purpose="sign_document", reference=self._reference)


def _reserved(certs: Sequence[asn1_x509.Certificate]) -> int:
    """Room for the signature container, in hex digits as pyHanko counts it: the certificates it
    carries, the signed attributes (the signing certificate's hash and issuer: a few hundred
    bytes), a signature of at most 512 bytes, and slack."""
    return 2 * (3072 + sum(len(c.dump()) for c in certs))


def sign_pdf(conn: sa.Connection, pdf: bytes, signer: Signer, *, chain: Sequence[bytes], crls: Sequence[bytes],
             reference: str, reason: str, location: str, name: str) -> bytes:
    """``pdf`` signed by ``signer`` (``chain``: its certificate then its issuers, DER), with the
    chain and ``crls`` in the DSS. The signer's certificate is checked against the chain's root and
    the CRLs first: a revoked or expired signer signs nothing."""
    certs = [asn1_x509.Certificate.load(der) for der in chain]
    context = ValidationContext(trust_roots=[certs[-1]], other_certs=certs[1:-1],
                                crls=[asn1_crl.CertificateList.load(der) for der in crls],
                                allow_fetching=False, revocation_mode="require")
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME, md_algorithm=signer.hash_algorithm, subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason, location=location, name=name, embed_validation_info=True, validation_context=context,
        dss_settings=DSSContentSettings(include_vri=False,
                                        placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    pdf_signer = signers.PdfSigner(meta, signer=_LoggedSigner(conn, signer, certs, reference))
    out = io.BytesIO()
    # room for the CMS reserved up front: pyHanko would otherwise build the whole container once
    # more, as a dry run, only to measure it (half the time of a signature)
    asyncio.run(pdf_signer.async_sign_pdf(writer, output=out, bytes_reserved=_reserved(certs)))
    return out.getvalue()
