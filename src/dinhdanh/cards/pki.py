"""The national eMRTD PKI (ICAO 9303 Part 12): Country Signing CA, Document Signers, CRLs, master list.

- The CSCA signs Document Signer certificates, the Master List Signer and CRLs, nothing else.
- A Document Signer (DSC) signs EF.SODs for a short private-key usage period (90 days by
  default); its certificate stays valid for as long as the cards it signed (usage + 30 years:
  a card issued at 58 never expires). When the usage period ends, the next card production
  rotates to a new DSC by itself.
- Private keys are sealed at rest by the vault; signing goes through a :class:`Signer`, the
  interface an HSM (PKCS#11) implementation takes over; every use of a key is written to
  ``pki_key_uses`` in the same transaction as what it signed.
- ECDSA P-256 by default; RSA-PSS, RSA PKCS#1 v1.5 and Brainpool on request.

Certificate profile (Doc 9303 Part 12, 8th edition, section 7.1.1 and its certificate profile
table; the PKD upload checks apply the same):

- CSCA: basicConstraints critical (cA, pathLenConstraint 0); keyUsage critical, keyCertSign and
  cRLSign only; subjectKeyIdentifier; authorityKeyIdentifier (its own key: self-signed);
  privateKeyUsagePeriod; no extendedKeyUsage.
- Document Signer: keyUsage critical, digitalSignature only; authorityKeyIdentifier (the CSCA's
  key identifier) and subjectKeyIdentifier; privateKeyUsagePeriod; the ICAO Document Type List
  extension (2.23.136.1.1.6.2, non-critical) naming the documents it signs ("ID"); no
  basicConstraints, no extendedKeyUsage.
- Master List Signer: keyUsage critical, digitalSignature only; extendedKeyUsage **critical**
  holding only id-icao-mrtd-security-masterListSigningKey (2.23.136.1.1.3); no basicConstraints.
- Every non-critical extension is one that 9303 marks non-critical (key identifiers, usage
  period, document types); subject and issuer carry the country (C=VN) and agree on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from dinhdanh.cards.tables import pki_crls, pki_key_uses, pki_keys, trust_anchors
from dinhdanh.ids.lds import masterlist
from dinhdanh.ids.lds.certs import TrustStore
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

__all__ = [
    "ALGORITHMS", "Signer", "SoftwareSigner", "init_pki", "issue_document_signer", "document_signer",
    "revoke_key", "issue_crl", "rollover_csca", "csca_certificates", "master_list", "trust_store", "pki_status",
    "add_trust_anchor", "key_uses",
]

ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "brainpool-p256", "brainpool-p384", "rsa-pss-3072", "rsa-3072")
DSC_USAGE = dt.timedelta(days=90)
DSC_VALIDITY = dt.timedelta(days=365 * 30)  # the longest-lived card it signs, plus the usage period
CSCA_USAGE = dt.timedelta(days=365 * 5)
CSCA_VALIDITY = CSCA_USAGE + DSC_USAGE + DSC_VALIDITY
CRL_PERIOD = dt.timedelta(days=90)
ICAO_MASTER_LIST_SIGNING = x509.ObjectIdentifier("2.23.136.1.1.3")
ICAO_DOCUMENT_TYPE_LIST = x509.ObjectIdentifier("2.23.136.1.1.6.2")
DOCUMENT_TYPES = ("ID",)  # what our Document Signers sign: the chip ID card (MRZ document code)

_CURVES = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1,
           "brainpool-p256": ec.BrainpoolP256R1, "brainpool-p384": ec.BrainpoolP384R1}


def _hash_for(algorithm: str) -> str:
    return "sha384" if algorithm.endswith("p384") else "sha256"


def generate_key(algorithm: str):
    if algorithm in _CURVES:
        return ec.generate_private_key(_CURVES[algorithm]())
    if algorithm in ("rsa-pss-3072", "rsa-3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise InvalidInput(f"Unknown key algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}.",
                       field="algorithm")


class Signer(Protocol):
    """What signs for the PKI. A PKCS#11 signer keeps the key in the HSM and implements the same."""

    key_id: int
    algorithm: str
    certificate: bytes  # DER
    hash_algorithm: str
    signature_algorithm: dict  # CMS AlgorithmIdentifier, asn1crypto form

    def sign(self, conn: sa.Connection, data: bytes, *, purpose: str, reference: str) -> bytes: ...


@dataclass(slots=True)
class SoftwareSigner:
    """A private key held in process memory, opened from the vault."""

    key_id: int
    algorithm: str
    certificate: bytes
    private_key: object

    @property
    def hash_algorithm(self) -> str:
        return _hash_for(self.algorithm)

    @property
    def signature_algorithm(self) -> dict:
        h = self.hash_algorithm
        if self.algorithm == "rsa-pss-3072":
            return {"algorithm": "rsassa_pss", "parameters": {
                "hash_algorithm": {"algorithm": h},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": h}},
                "salt_length": 32 if h == "sha256" else 48, "trailer_field": "trailer_field_bc"}}
        if self.algorithm == "rsa-3072":
            return {"algorithm": f"{h}_rsa"}
        return {"algorithm": f"{h}_ecdsa"}

    def raw_sign(self, data: bytes) -> bytes:
        algorithm = hashes.SHA384() if self.hash_algorithm == "sha384" else hashes.SHA256()
        if self.algorithm == "rsa-pss-3072":
            salt = 32 if self.hash_algorithm == "sha256" else 48
            return self.private_key.sign(data, padding.PSS(padding.MGF1(algorithm), salt), algorithm)
        if self.algorithm == "rsa-3072":
            return self.private_key.sign(data, padding.PKCS1v15(), algorithm)
        return self.private_key.sign(data, ec.ECDSA(algorithm))

    def sign(self, conn: sa.Connection, data: bytes, *, purpose: str, reference: str) -> bytes:
        signature = self.raw_sign(data)
        log_use(conn, self.key_id, purpose, reference, data)
        return signature


def log_use(conn: sa.Connection, key_id: int, purpose: str, reference: str, data: bytes) -> None:
    conn.execute(pki_key_uses.insert().values(
        key_id=key_id, used_at=utcnow(), purpose=purpose, reference=reference[:80],
        digest=hashlib.sha256(data).hexdigest()))


_signers: dict[tuple[int, bytes], SoftwareSigner] = {}


def _signer(row, vault: Vault) -> SoftwareSigner:
    # keyed by the sealed key itself (a fresh nonce each time a key is sealed): a rolled-back
    # key or another database's key with the same key_id can never come back from the cache
    cache_key = (id(vault), row.private_key)
    signer = _signers.get(cache_key)
    if signer is None:
        der = vault.open(row.private_key, f"pki-key:{row.key_id}")
        key = serialization.load_der_private_key(der, password=None)
        signer = SoftwareSigner(row.key_id, row.algorithm, row.certificate, key)
        if len(_signers) > 256:
            _signers.clear()
        _signers[cache_key] = signer
    return signer


def _name(country: str, organization: str, common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _sign_certificate(builder: x509.CertificateBuilder, issuer: SoftwareSigner | None, key,
                      algorithm: str) -> x509.Certificate:
    """Self-signed when ``issuer`` is None."""
    signing_key = issuer.private_key if issuer else key
    signing_alg = issuer.algorithm if issuer else algorithm
    digest = hashes.SHA384() if _hash_for(signing_alg) == "sha384" else hashes.SHA256()
    if signing_alg == "rsa-pss-3072":
        salt = 48 if isinstance(digest, hashes.SHA384) else 32
        return builder.sign(signing_key, digest, rsa_padding=padding.PSS(padding.MGF1(digest), salt))
    return builder.sign(signing_key, digest)


def _store_key(conn, vault: Vault, *, role: str, algorithm: str, cert: x509.Certificate, key,
               issuer_id: int | None, usage_ends: dt.datetime) -> int:
    key_id = conn.execute(pki_keys.insert().values(
        role=role, algorithm=algorithm, issuer_id=issuer_id, subject=cert.subject.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        key_identifier=cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex(),
        certificate=cert.public_bytes(serialization.Encoding.DER), private_key=b"",
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, usage_ends=usage_ends,
        status="active", created_at=utcnow(),
    ).returning(pki_keys.c.key_id)).scalar_one()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    conn.execute(pki_keys.update().where(pki_keys.c.key_id == key_id)
                 .values(private_key=vault.seal(der, f"pki-key:{key_id}")))
    return key_id


def _active(conn, role: str):
    return conn.execute(sa.select(pki_keys).where(pki_keys.c.role == role, pki_keys.c.status == "active")
                        .order_by(pki_keys.c.key_id.desc())).first()


def _csca_signer(conn, vault: Vault, now: dt.datetime | None = None) -> SoftwareSigner:
    row = _active(conn, "csca")
    if row is None:
        raise NotFound("There is no Country Signing CA yet: run `dinhdanh pki init`.", field="pki")
    if (now or utcnow()) > row.usage_ends:
        raise Conflict(f"The CSCA's private key usage period ended on {row.usage_ends:%Y-%m-%d}: a CSCA "
                       "rollover (new CSCA and link certificate) is needed before it signs again.",
                       code="csca_usage_ended")
    return _signer(row, vault)


def _new_csca(conn, vault: Vault, *, algorithm: str, country: str, organization: str,
              now: dt.datetime) -> tuple[int, x509.Certificate]:
    key = generate_key(algorithm)
    subject = _name(country, organization, f"CSCA {country}")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + CSCA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(x509.PrivateKeyUsagePeriod(not_before=now, not_after=now + CSCA_USAGE), critical=False)
    )
    cert = _sign_certificate(builder, None, key, algorithm)
    csca_id = _store_key(conn, vault, role="csca", algorithm=algorithm, cert=cert, key=key, issuer_id=None,
                         usage_ends=now + CSCA_USAGE)
    log_use(conn, csca_id, "sign_certificate", f"csca:{cert.serial_number:x}", cert.tbs_certificate_bytes)
    return csca_id, cert


def init_pki(conn: sa.Connection, vault: Vault, *, algorithm: str = "ecdsa-p256", country: str = "VN",
             organization: str = "Bo Cong An", now: dt.datetime | None = None) -> dict:
    """Create the CSCA, a first Document Signer and the Master List Signer (once)."""
    if _active(conn, "csca") is not None:
        raise Conflict("The national PKI already exists; rotate Document Signers instead.", code="pki_exists")
    now = now or utcnow()
    csca_id, cert = _new_csca(conn, vault, algorithm=algorithm, country=country, organization=organization,
                              now=now)
    dsc_id = issue_document_signer(conn, vault, algorithm=algorithm, now=now)
    mls_id = _issue_master_list_signer(conn, vault, algorithm=algorithm, now=now)
    issue_crl(conn, vault, now=now)
    return {"csca": csca_id, "document_signer": dsc_id, "master_list_signer": mls_id,
            "algorithm": algorithm, "subject": cert.subject.rfc4514_string()}


def rollover_csca(conn: sa.Connection, vault: Vault, *, algorithm: str | None = None,
                  now: dt.datetime | None = None) -> dict:
    """A new CSCA key and certificate; the old CSCA retires (its certificate still anchors the
    cards signed under it) and a new Document Signer and Master List Signer follow.

    ICAO also asks for a link certificate (the new CSCA key certified by the old one) for
    verifiers that hold only the old CSCA; it is not produced yet: the master list carries both.
    """
    old = _active(conn, "csca")
    if old is None:
        raise NotFound("There is no Country Signing CA yet: run `dinhdanh pki init`.", field="pki")
    now = now or utcnow()
    old_cert = x509.load_der_x509_certificate(old.certificate)
    country = old_cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    organization = old_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    issue_crl(conn, vault, now=now)  # a last CRL from the old CSCA
    conn.execute(pki_keys.update().where(pki_keys.c.role.in_(("csca", "mls")), pki_keys.c.status == "active")
                 .values(status="retired"))
    algorithm = algorithm or old.algorithm
    csca_id, cert = _new_csca(conn, vault, algorithm=algorithm, country=country, organization=organization,
                              now=now)
    dsc_id = issue_document_signer(conn, vault, algorithm=algorithm, now=now)
    mls_id = _issue_master_list_signer(conn, vault, algorithm=algorithm, now=now)
    issue_crl(conn, vault, now=now)
    return {"csca": csca_id, "document_signer": dsc_id, "master_list_signer": mls_id,
            "retired_csca": old.key_id, "subject": cert.subject.rfc4514_string()}


def _issue_under_csca(conn, vault: Vault, *, role: str, algorithm: str, common_name: str,
                      usage: dt.timedelta, validity: dt.timedelta, now: dt.datetime, extra=()) -> int:
    csca = _csca_signer(conn, vault, now)
    csca_cert = x509.load_der_x509_certificate(csca.certificate)
    key = generate_key(algorithm)
    country = csca_cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    organization = csca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    csca_ski = csca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder().subject_name(_name(country, organization, common_name))
        .issuer_name(csca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(min(now + validity, csca_cert.not_valid_after_utc))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(csca_ski), critical=False)
        .add_extension(x509.PrivateKeyUsagePeriod(not_before=now, not_after=now + usage), critical=False)
    )
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    cert = _sign_certificate(builder, csca, key, algorithm)
    log_use(conn, csca.key_id, "sign_certificate", f"{role}:{cert.serial_number:x}", cert.tbs_certificate_bytes)
    return _store_key(conn, vault, role=role, algorithm=algorithm, cert=cert, key=key, issuer_id=csca.key_id,
                      usage_ends=now + usage)


class _DocumentTypes(asn1_core.SetOf):
    _child_spec = asn1_core.PrintableString


class DocumentTypeList(asn1_core.Sequence):
    """``DocumentTypeListSyntax ::= SEQUENCE { version INTEGER (v0), docTypeList SET OF
    PrintableString (SIZE (1..2)) }`` (9303 Part 12): the document codes a DSC may sign, as in the MRZ."""

    _fields = [("version", asn1_core.Integer), ("doc_type_list", _DocumentTypes)]


def _document_type_list(types=DOCUMENT_TYPES) -> x509.UnrecognizedExtension:
    der = DocumentTypeList({"version": 0, "doc_type_list": list(types)}).dump()
    return x509.UnrecognizedExtension(ICAO_DOCUMENT_TYPE_LIST, der)


def issue_document_signer(conn: sa.Connection, vault: Vault, *, algorithm: str | None = None,
                          now: dt.datetime | None = None) -> int:
    """A new Document Signer; the previous one retires (its certificate still verifies old cards)."""
    now = now or utcnow()
    algorithm = algorithm or _csca_signer(conn, vault, now).algorithm
    conn.execute(pki_keys.update().where(pki_keys.c.role == "dsc", pki_keys.c.status == "active")
                 .values(status="retired"))
    number = conn.execute(sa.select(sa.func.count()).select_from(pki_keys)
                          .where(pki_keys.c.role == "dsc")).scalar_one() + 1
    return _issue_under_csca(conn, vault, role="dsc", algorithm=algorithm,
                             common_name=f"Document Signer {number:04d}", usage=DSC_USAGE,
                             validity=DSC_USAGE + DSC_VALIDITY, now=now,
                             extra=[(_document_type_list(), False)])


def _issue_master_list_signer(conn, vault: Vault, *, algorithm: str, now: dt.datetime) -> int:
    eku = x509.ExtendedKeyUsage([ICAO_MASTER_LIST_SIGNING])  # critical: 9303 Part 12, 7.1.1
    return _issue_under_csca(conn, vault, role="mls", algorithm=algorithm, common_name="Master List Signer",
                             usage=CSCA_USAGE, validity=CSCA_USAGE + dt.timedelta(days=365),
                             now=now, extra=[(eku, True)])


def document_signer(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None) -> SoftwareSigner:
    """The Document Signer to sign with now, rotating to a fresh one when its usage period is over."""
    now = now or utcnow()
    row = _active(conn, "dsc")
    if row is None or row.usage_ends <= now:
        issue_document_signer(conn, vault, now=now)
        row = _active(conn, "dsc")
    return _signer(row, vault)


def revoke_key(conn: sa.Connection, vault: Vault, key_id: int, reason: str = "key_compromise",
               now: dt.datetime | None = None) -> dict:
    """Revoke a Document Signer or Master List Signer and publish a new CRL."""
    row = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == key_id)).first()
    if row is None or row.role == "csca":
        raise NotFound(f"No Document Signer or Master List Signer with key id {key_id}.", field="key_id")
    if row.status == "revoked":
        raise Conflict(f"Key {key_id} is already revoked.", code="already_revoked")
    now = now or utcnow()
    conn.execute(pki_keys.update().where(pki_keys.c.key_id == key_id)
                 .values(status="revoked", revoked_at=now, revocation_reason=reason))
    _signers.clear()
    crl = issue_crl(conn, vault, now=now, issuer_id=row.issuer_id)
    return {"key_id": key_id, "revoked_at": now.isoformat(), "crl_number": crl["number"]}


_REASONS = {"key_compromise": x509.ReasonFlags.key_compromise, "superseded": x509.ReasonFlags.superseded,
            "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
            "affiliation_changed": x509.ReasonFlags.affiliation_changed}


def issue_crl(conn: sa.Connection, vault: Vault, now: dt.datetime | None = None,
              issuer_id: int | None = None) -> dict:
    """A CRL of the active CSCA, or of an older one (``issuer_id``) for the signers it certified."""
    now = now or utcnow()
    if issuer_id is None:
        csca = _active(conn, "csca")
    else:
        csca = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == issuer_id,
                                                      pki_keys.c.role == "csca")).first()
    if csca is None:
        raise NotFound("There is no Country Signing CA yet: run `dinhdanh pki init`.", field="pki")
    csca = _signer(csca, vault)  # CRLs go on being signed after the usage period, until the rollover
    csca_cert = x509.load_der_x509_certificate(csca.certificate)
    number = (conn.execute(sa.select(sa.func.max(pki_crls.c.number))
                           .where(pki_crls.c.issuer_id == csca.key_id)).scalar() or 0) + 1
    builder = (
        x509.CertificateRevocationListBuilder().issuer_name(csca_cert.subject)
        .last_update(now).next_update(now + CRL_PERIOD)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            csca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
    )
    for row in conn.execute(sa.select(pki_keys).where(pki_keys.c.issuer_id == csca.key_id,
                                                      pki_keys.c.status == "revoked")):
        entry = (x509.RevokedCertificateBuilder().serial_number(int(row.serial, 16))
                 .revocation_date(row.revoked_at))
        if row.revocation_reason in _REASONS:
            entry = entry.add_extension(x509.CRLReason(_REASONS[row.revocation_reason]), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    digest = hashes.SHA384() if csca.hash_algorithm == "sha384" else hashes.SHA256()
    if csca.algorithm == "rsa-pss-3072":
        crl = builder.sign(csca.private_key, digest, rsa_padding=padding.PSS(padding.MGF1(digest), 32))
    else:
        crl = builder.sign(csca.private_key, digest)
    der = crl.public_bytes(serialization.Encoding.DER)
    log_use(conn, csca.key_id, "sign_crl", f"crl:{number}", crl.tbs_certlist_bytes)
    conn.execute(pki_crls.insert().values(issuer_id=csca.key_id, number=number, this_update=now,
                                          next_update=now + CRL_PERIOD, der=der))
    return {"number": number, "der": der}


def csca_certificates(conn: sa.Connection) -> list[bytes]:
    """Every CSCA certificate we have had, newest first (old ones still anchor older cards)."""
    rows = conn.execute(sa.select(pki_keys.c.certificate).where(pki_keys.c.role == "csca")
                        .order_by(pki_keys.c.key_id.desc())).scalars().all()
    if not rows:
        raise NotFound("There is no Country Signing CA yet: run `dinhdanh pki init`.", field="pki")
    return list(rows)


def latest_crl(conn: sa.Connection) -> bytes | None:
    """The newest CRL of the active CSCA."""
    csca = _active(conn, "csca")
    query = sa.select(pki_crls.c.der).order_by(pki_crls.c.crl_id.desc()).limit(1)
    if csca is not None:
        query = query.where(pki_crls.c.issuer_id == csca.key_id)
    return conn.execute(query).scalar()


def latest_crls(conn: sa.Connection) -> list[bytes]:
    """The newest CRL of every CSCA we have had."""
    newest = sa.select(sa.func.max(pki_crls.c.crl_id)).group_by(pki_crls.c.issuer_id)
    return list(conn.execute(sa.select(pki_crls.c.der).where(pki_crls.c.crl_id.in_(newest))).scalars())


def master_list(conn: sa.Connection, vault: Vault) -> bytes:
    """Our CSCA certificates and the trusted foreign ones, as a signed CSCA master list (CMS)."""
    row = _active(conn, "mls")
    if row is None or row.usage_ends <= utcnow():  # revoked or worn out: the CSCA makes another
        csca = _active(conn, "csca")
        if csca is None:
            raise NotFound("There is no Country Signing CA yet: run `dinhdanh pki init`.", field="pki")
        if row is not None:
            conn.execute(pki_keys.update().where(pki_keys.c.key_id == row.key_id).values(status="retired"))
        _issue_master_list_signer(conn, vault, algorithm=csca.algorithm, now=utcnow())
        row = _active(conn, "mls")
    signer = _signer(row, vault)
    foreign = conn.execute(sa.select(trust_anchors.c.der).where(trust_anchors.c.kind == "csca")).scalars().all()
    return masterlist.build(csca_certificates(conn) + list(foreign), certificate=signer.certificate,
                            sign=lambda data: signer.sign(conn, data, purpose="sign_master_list",
                                                          reference="master_list"),
                            signature_algorithm=signer.signature_algorithm,
                            digest_algorithm=signer.hash_algorithm)


def add_trust_anchor(conn: sa.Connection, der: bytes, kind: str, label: str | None = None) -> dict:
    """Trust a foreign CSCA certificate, master list or CRL (validated before it is kept)."""
    from dinhdanh.ids.exceptions import ValidationError

    probe = TrustStore(csca_certificates_or_empty(conn))
    try:
        if kind == "csca":
            cert = probe.add_csca(der)
            label = label or cert.subject
        elif kind == "master_list":
            count = probe.add_master_list(der)
            label = label or f"master list of {count} CSCAs"
        elif kind == "crl":
            for anchor in _stored(conn, "csca"):
                probe.add_csca(anchor)
            for ml in _stored(conn, "master_list"):
                probe.add_master_list(ml)
            probe.add_crl(der)
            label = label or "CRL"
        else:
            raise InvalidInput(f"Unknown trust anchor kind {kind!r}: csca, master_list or crl.", field="kind")
    except ValidationError as exc:
        raise InvalidInput(f"The {kind.replace('_', ' ')} was refused: {exc}", field="file") from None
    digest = hashlib.sha256(der).hexdigest()
    exists = conn.execute(sa.select(trust_anchors.c.anchor_id).where(trust_anchors.c.digest == digest)).first()
    if exists is None:
        conn.execute(trust_anchors.insert().values(kind=kind, label=label[:200], der=der, digest=digest,
                                                   added_at=utcnow()))
    return {"kind": kind, "label": label, "sha256": digest}


def _stored(conn, kind: str) -> list[bytes]:
    return list(conn.execute(sa.select(trust_anchors.c.der).where(trust_anchors.c.kind == kind)
                             .order_by(trust_anchors.c.anchor_id)).scalars())


def csca_certificates_or_empty(conn) -> list[bytes]:
    return list(conn.execute(sa.select(pki_keys.c.certificate).where(pki_keys.c.role == "csca")).scalars())


def trust_store(conn: sa.Connection) -> TrustStore:
    """Our CSCAs with our latest CRL, plus every foreign CSCA, master list and CRL we were given."""
    store = TrustStore(csca_certificates_or_empty(conn))
    for der in _stored(conn, "csca"):
        store.add_csca(der)
    for der in _stored(conn, "master_list"):
        store.add_master_list(der)
    for crl in latest_crls(conn):
        store.add_crl(crl)
    for der in _stored(conn, "crl"):
        store.add_crl(der)
    return store


def pki_status(conn: sa.Connection) -> list[dict]:
    rows = conn.execute(sa.select(pki_keys).order_by(pki_keys.c.key_id)).all()
    uses = dict(conn.execute(sa.select(pki_key_uses.c.key_id, sa.func.count())
                             .group_by(pki_key_uses.c.key_id)).all())
    return [{"key_id": r.key_id, "role": r.role, "algorithm": r.algorithm, "subject": r.subject,
             "serial": r.serial, "key_identifier": r.key_identifier, "status": r.status,
             "not_before": r.not_before.isoformat(), "not_after": r.not_after.isoformat(),
             "usage_ends": r.usage_ends.isoformat(), "uses": uses.get(r.key_id, 0)} for r in rows]


def key_uses(conn: sa.Connection, key_id: int, limit: int = 100) -> list[dict]:
    rows = conn.execute(sa.select(pki_key_uses).where(pki_key_uses.c.key_id == key_id)
                        .order_by(pki_key_uses.c.use_id.desc()).limit(limit)).all()
    return [{"used_at": r.used_at.isoformat(), "purpose": r.purpose, "reference": r.reference,
             "sha256": r.digest} for r in rows]
