"""Validating a signed result document with pyHanko's validator, the document-signing CA as the
only trust root: the signature must be intact, cover the whole file, chain to the CA, and the
signer must not be revoked according to the CA's CRL (the one in the document's DSS, and any
newer one given). Pure: bytes and certificates in, a verdict out."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from asn1crypto import crl as asn1_crl, x509 as asn1_x509
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError, SignatureValidationError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

__all__ = ["Verdict", "verify_pdf"]

log = logging.getLogger("dinhdanh.documents")


@dataclass(frozen=True, slots=True)
class Verdict:
    """``genuine``: signed by a signer the CA certified and has not revoked, the whole file covered
    and unchanged since; otherwise ``invalid`` with the reasons."""

    status: str  # genuine | invalid
    sha256: str
    intact: bool = False
    trusted: bool = False
    covers_whole_file: bool = False
    signer: str | None = None  # the signer certificate's subject
    signed_at: str | None = None  # the time the signer claims (no timestamp authority vouches for it)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"status": self.status, "sha256": self.sha256, "intact": self.intact, "trusted": self.trusted,
                "covers_whole_file": self.covers_whole_file, "signer": self.signer, "signed_at": self.signed_at,
                "problems": list(self.problems)}


def _invalid(digest: str, *problems: str, **seen) -> Verdict:
    return Verdict("invalid", digest, problems=list(problems), **seen)


def verify_pdf(pdf: bytes, trust_roots: Sequence[bytes], crls: Sequence[bytes] = ()) -> Verdict:
    """The verdict on ``pdf`` against ``trust_roots`` (DER CA certificates), with ``crls`` (DER)
    added to what the document's DSS holds. Nothing is fetched from the network."""
    digest = hashlib.sha256(pdf).hexdigest()
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        return _invalid(digest, f"not a readable PDF ({type(exc).__name__})")
    if len(signatures) != 1:
        return _invalid(digest, f"expected one signature, found {len(signatures)}")
    kwargs = {"trust_roots": [asn1_x509.Certificate.load(der) for der in trust_roots],
              "crls": [asn1_crl.CertificateList.load(der) for der in crls],
              "allow_fetching": False, "revocation_mode": "require"}
    try:
        context = DocumentSecurityStore.read_dss(reader).as_validation_context(kwargs)
    except NoDSSFoundError:
        context = ValidationContext(**kwargs)
    embedded = signatures[0]
    try:
        status = validate_pdf_signature(embedded, context)
    except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
        log.info("a document's signature could not be validated: %s", type(exc).__name__)
        return _invalid(digest, f"the signature cannot be validated ({type(exc).__name__})")
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    signer = status.signing_cert.subject.human_friendly if status.signing_cert is not None else None
    signed_at = status.signer_reported_dt.isoformat() if status.signer_reported_dt else None
    seen = {"intact": bool(status.intact), "trusted": bool(status.trusted), "covers_whole_file": whole,
            "signer": signer, "signed_at": signed_at}
    problems = []
    if not status.intact:
        problems.append("the signed bytes were changed after signing")
    elif not status.valid:
        problems.append("the signature does not verify with the signer's key")
    if status.intact and status.valid and not status.trusted:
        problems.append("the signer does not chain to the document-signing CA, or is revoked or expired"
                        + (f": {status.trust_problem_indic}" if status.trust_problem_indic else ""))
    if not whole:
        problems.append("the signature does not cover the whole file (something was added after signing)")
    if problems or not status.bottom_line:
        return _invalid(digest, *(problems or ["the validator refused the signature"]), **seen)
    return Verdict("genuine", digest, problems=[], **seen)
