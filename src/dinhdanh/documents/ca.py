"""The document-signing CA: a root of its own beside the CSCA (never the CSCA, whose keys sign only
what ICAO 9303 lets them), and one line of signer certificates per agency, issued by it.

Profile (RFC 5280, and what PAdES validators check: pyHanko's default asks the signer's key usage
for nonRepudiation):

- CA "Bộ Công an – CA ký văn bản": basicConstraints critical (cA, pathLenConstraint 0); keyUsage
  critical, keyCertSign and cRLSign; subject and authority key identifiers; 40 years.
- Agency signer (subject O = the body it belongs to, OU = the agency's code, CN = its name):
  keyUsage critical, digitalSignature and nonRepudiation (contentCommitment); extendedKeyUsage
  id-kp-documentSigning (RFC 9336, 1.3.6.1.5.5.7.3.36), non-critical; key identifiers; the CRL
  distribution point of the CA when the platform's address is known; privateKeyUsagePeriod of a
  year (a fresh key then), and a certificate valid long after it (with no trusted timestamp
  authority here, a document stays verifiable only while its signer's certificate is valid).
- Keys are sealed by the vault (``pki.signers``), every signature is logged, a revoked signer is
  on the CA's next CRL (``pki.crls``), which ``GET /api/v1/pki/documents-ca.crl`` serves.
"""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from dinhdanh.documents.model import Agency
from dinhdanh.pki import crls
from dinhdanh.pki.signers import (SoftwareSigner, active_key, forget_signers, generate_key, log_use, open_signer,
                                  root_ca_builder, sign_certificate, store_key)
from dinhdanh.pki.tables import pki_keys
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

__all__ = ["CA_NAME", "DOCUMENT_SIGNING", "init_documents_ca", "documents_ca", "agency_signer", "revoke_signer",
           "ca_certificates", "current_crl", "chain_of", "crl_url", "check_agency"]

CA_NAME = "Bộ Công an – CA ký văn bản"
ORGANIZATION = "Bộ Công an"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
CA_VALIDITY = dt.timedelta(days=365 * 40)
SIGNER_USAGE = dt.timedelta(days=365)
SIGNER_VALIDITY = dt.timedelta(days=365 * 30)
CRL_PERIOD = dt.timedelta(days=30)
CRL_REFRESH = dt.timedelta(days=7)  # a CRL older than this is replaced when one is needed
ALGORITHM = "ecdsa-p256"
AGENCY_CODE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{1,29}$")


def crl_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/pki/documents-ca.crl"


def check_agency(agency: Agency) -> Agency:
    if not isinstance(agency.code, str) or not AGENCY_CODE.match(agency.code):
        raise InvalidInput("The agency code is 2 to 30 capital letters, digits, dots or hyphens.", field="agency.code")
    for field, value, limit in (("agency.name", agency.name, 120), ("agency.parent", agency.parent, 120),
                                ("agency.place", agency.place, 60)):
        if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
            raise InvalidInput(f"{field} must be printable text of at most {limit} characters.", field=field)
    return agency


def _upper_bound(text: str) -> str:
    """RFC 5280's upper bound for O and CN (64), which ``cryptography`` counts in UTF-8 bytes
    (a Vietnamese letter is 2 or 3): a longer name is cut at a word, with an ellipsis."""
    if len(text.encode()) <= 64:
        return text
    while len((text + "…").encode()) > 64:
        text = text.rsplit(" ", 1)[0] if " " in text else text[:-1]
    return text + "…"


def _ski(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


def init_documents_ca(conn: sa.Connection, vault: Vault, *, now: dt.datetime | None = None) -> dict:
    """Create the document-signing CA (once) and its first CRL."""
    if active_key(conn, "doc_ca") is not None:
        raise Conflict("The document-signing CA already exists.", code="documents_ca_exists")
    return _new_ca(conn, vault, now or utcnow())


def _new_ca(conn: sa.Connection, vault: Vault, now: dt.datetime) -> dict:
    key = generate_key(ALGORITHM)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                         x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    builder = root_ca_builder(subject, key.public_key(), now=now, not_after=now + CA_VALIDITY)
    cert = sign_certificate(builder, None, key, ALGORITHM)
    ca_id = store_key(conn, vault, role="doc_ca", algorithm=ALGORITHM, cert=cert, key=key, issuer_id=None,
                      usage_ends=now + CA_VALIDITY)
    log_use(conn, ca_id, "sign_certificate", f"doc_ca:{cert.serial_number:x}", cert.tbs_certificate_bytes)
    crl = crls.sign_crl(conn, open_signer(active_key(conn, "doc_ca"), vault), now=now, period=CRL_PERIOD)
    return {"key_id": ca_id, "subject": cert.subject.rfc4514_string(), "crl_number": crl["number"]}


def _made_once(conn: sa.Connection, read, make):
    """``read()``, or ``make()`` then ``read()``. Two transactions that both found nothing cannot
    both make it (a partial unique index of ``pki_keys``): the second's attempt is rolled back to
    its savepoint, and it reads what the first made."""
    row = read()
    if row is not None:
        return row
    try:
        with conn.begin_nested():
            make()
    except sa.exc.IntegrityError:
        pass
    return read()


def documents_ca(conn: sa.Connection, vault: Vault, *, create: bool = True) -> SoftwareSigner:
    """The CA's signer (created on first use when ``create``)."""
    read = lambda: active_key(conn, "doc_ca")  # noqa: E731
    row = _made_once(conn, read, lambda: _new_ca(conn, vault, utcnow())) if create else read()
    if row is None:
        raise NotFound("There is no document-signing CA yet: run `dinhdanh documents init`.", field="pki")
    return open_signer(row, vault)


def _issue_signer(conn, vault: Vault, agency: Agency, *, base_url: str | None, now: dt.datetime) -> int:
    ca = documents_ca(conn, vault)
    ca_cert = x509.load_der_x509_certificate(ca.certificate)
    key = generate_key(ALGORITHM)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, _upper_bound(agency.parent)),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, agency.code),
                         x509.NameAttribute(NameOID.COMMON_NAME, _upper_bound(agency.name))])
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(min(now + SIGNER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(ca_cert)), critical=False)
        .add_extension(x509.PrivateKeyUsagePeriod(not_before=now, not_after=now + SIGNER_USAGE), critical=False)
    )
    if base_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url(base_url))], relative_name=None, reasons=None,
            crl_issuer=None)]), critical=False)
    cert = sign_certificate(builder, ca, key, ALGORITHM)
    log_use(conn, ca.key_id, "sign_certificate", f"doc_signer:{cert.serial_number:x}", cert.tbs_certificate_bytes)
    return store_key(conn, vault, role="doc_signer", algorithm=ALGORITHM, cert=cert, key=key, issuer_id=ca.key_id,
                     usage_ends=now + SIGNER_USAGE, agency=agency.code)


def agency_signer(conn: sa.Connection, vault: Vault, agency: Agency, *, base_url: str | None = None,
                  now: dt.datetime | None = None) -> SoftwareSigner:
    """The agency's signer to sign with now: a new key and certificate when it has none or its
    key's usage period is over (the old one retires; its certificate still verifies what it signed)."""
    check_agency(agency)
    now = now or utcnow()
    documents_ca(conn, vault)  # made first, in its own step, if this is the first document ever

    def read():
        row = active_key(conn, "doc_signer", agency=agency.code)
        return row if row is not None and row.usage_ends > now else None

    def make():
        conn.execute(pki_keys.update().where(pki_keys.c.role == "doc_signer", pki_keys.c.agency == agency.code,
                                             pki_keys.c.status == "active", pki_keys.c.usage_ends <= now)
                     .values(status="retired"))
        _issue_signer(conn, vault, agency, base_url=base_url, now=now)

    row = _made_once(conn, read, make)
    if row is None:  # another transaction's signer is not visible yet (it has not committed)
        raise Conflict("The agency's signing key is being renewed; try again.", code="signer_busy")
    return open_signer(row, vault)


def revoke_signer(conn: sa.Connection, vault: Vault, key_id: int, reason: str = "key_compromise",
                  now: dt.datetime | None = None) -> dict:
    """Revoke an agency's signer certificate and publish a new CRL of the CA at once."""
    if reason not in crls.REASONS:
        raise InvalidInput(f"The reason is one of {', '.join(crls.REASONS)}.", field="reason")
    now = now or utcnow()
    row = conn.execute(sa.select(pki_keys.c.key_id, pki_keys.c.issuer_id, pki_keys.c.status)
                       .where(pki_keys.c.key_id == key_id, pki_keys.c.role == "doc_signer")).first()
    if row is None:
        raise NotFound(f"No document signer with key id {key_id}.", field="key_id")
    done = conn.execute(pki_keys.update().where(pki_keys.c.key_id == key_id, pki_keys.c.status != "revoked")
                        .values(status="revoked", revoked_at=now, revocation_reason=reason)).rowcount
    if not done:
        raise Conflict(f"Key {key_id} is already revoked.", code="already_revoked")
    forget_signers()
    ca = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == row.issuer_id)).one()
    crl = crls.sign_crl(conn, open_signer(ca, vault), now=now, period=CRL_PERIOD)
    return {"key_id": key_id, "revoked_at": now.isoformat(), "crl_number": crl["number"]}


def ca_certificates(conn: sa.Connection) -> list[bytes]:
    """Every document-signing CA certificate (DER), newest first; NotFound when there is none."""
    rows = list(conn.execute(sa.select(pki_keys.c.certificate).where(pki_keys.c.role == "doc_ca")
                             .order_by(pki_keys.c.key_id.desc())).scalars())
    if not rows:
        raise NotFound("There is no document-signing CA yet: run `dinhdanh documents init`.", field="pki")
    return rows


def ca_pem(conn: sa.Connection) -> bytes:
    return b"".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
                    for der in ca_certificates(conn))


def current_crl(conn: sa.Connection, vault: Vault | None = None, *, now: dt.datetime | None = None) -> bytes:
    """The CA's newest CRL (DER); with the vault, a fresh one is signed when it is older than a week."""
    now = now or utcnow()
    ca = active_key(conn, "doc_ca")
    if ca is None:
        raise NotFound("There is no document-signing CA yet: run `dinhdanh documents init`.", field="pki")
    latest = crls.latest_crl_of(conn, ca.key_id)
    if vault is not None and (latest is None or latest.this_update + CRL_REFRESH <= now):
        return crls.sign_crl(conn, open_signer(ca, vault), now=now, period=CRL_PERIOD)["der"]
    if latest is None:
        raise NotFound("The document-signing CA has published no CRL yet.", field="pki")
    return latest.der


def chain_of(conn: sa.Connection, signer: SoftwareSigner) -> list[bytes]:
    """The signer's certificate and its issuers up to the root (DER, signer first)."""
    chain, issuer_id = [signer.certificate], conn.execute(
        sa.select(pki_keys.c.issuer_id).where(pki_keys.c.key_id == signer.key_id)).scalar()
    while issuer_id is not None:
        row = conn.execute(sa.select(pki_keys.c.certificate, pki_keys.c.issuer_id)
                           .where(pki_keys.c.key_id == issuer_id)).one()
        chain.append(row.certificate)
        issuer_id = row.issuer_id
    return chain
