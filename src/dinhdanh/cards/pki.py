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

import sqlalchemy as sa
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.x509.oid import NameOID

from dinhdanh.cards.tables import pki_crls, pki_key_uses, pki_keys, trust_anchors
from dinhdanh.ids.lds import masterlist
from dinhdanh.ids.lds.certs import TrustStore
from dinhdanh.pki import crls
from dinhdanh.pki.signers import (ALGORITHMS, Signer, SoftwareSigner, active_key, forget_signers, generate_key,
                                  hash_for, log_use, open_signer, root_ca_builder, sign_certificate, store_key,
                                  x509_name)
from dinhdanh.registry.errors import Conflict, InvalidInput, NotFound
from dinhdanh.store import advisory
from dinhdanh.store.base import utcnow
from dinhdanh.store.vault import Vault

__all__ = [
    "ALGORITHMS", "Signer", "SoftwareSigner", "init_pki", "issue_document_signer", "document_signer",
    "revoke_key", "issue_crl", "rollover_csca", "csca_certificates", "master_list", "trust_store", "pki_status",
    "add_trust_anchor", "key_uses", "generate_key", "log_use",
]

DSC_USAGE = dt.timedelta(days=90)
DSC_VALIDITY = dt.timedelta(days=365 * 30)  # the longest-lived card it signs, plus the usage period
CSCA_USAGE = dt.timedelta(days=365 * 5)
CSCA_VALIDITY = CSCA_USAGE + DSC_USAGE + DSC_VALIDITY
CRL_PERIOD = dt.timedelta(days=90)
ICAO_MASTER_LIST_SIGNING = x509.ObjectIdentifier("2.23.136.1.1.3")
ICAO_DOCUMENT_TYPE_LIST = x509.ObjectIdentifier("2.23.136.1.1.6.2")
DOCUMENT_TYPES = ("ID", "P")  # what our Document Signers sign (MRZ document codes): chip ID cards, passports
ICAO_ROLES = ("csca", "dsc", "mls")  # pki_keys also holds the document-signing CA's keys (documents.ca)

# The signer, key and certificate plumbing is shared with the documents' CA (dinhdanh.pki.signers).
_hash_for = hash_for
_signer = open_signer
_name = x509_name
_sign_certificate = sign_certificate
_store_key = store_key


def _active(conn, role: str):
    return active_key(conn, role)


def _worn_out(row, now: dt.datetime) -> bool:
    return row is None or row.usage_ends <= now


def _current(conn, role: str, now: dt.datetime):
    """The active key of ``role``; when it is missing or worn out, read again under a named lock
    held until the unit ends, so that units finding it worn out at once rotate it once: the first
    makes the next key, the others read it (``store.advisory``)."""
    row = _active(conn, role)
    if _worn_out(row, now):
        advisory.hold(conn, f"pki:{role}")
        row = _active(conn, role)
    return row


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
    builder = (root_ca_builder(subject, key.public_key(), now=now, not_after=now + CSCA_VALIDITY)
               .add_extension(x509.PrivateKeyUsagePeriod(not_before=now, not_after=now + CSCA_USAGE), critical=False))
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
    row = _current(conn, "dsc", now)
    if _worn_out(row, now):
        issue_document_signer(conn, vault, now=now)
        row = _active(conn, "dsc")
    return _signer(row, vault)


def revoke_key(conn: sa.Connection, vault: Vault, key_id: int, reason: str = "key_compromise",
               now: dt.datetime | None = None) -> dict:
    """Revoke a Document Signer or Master List Signer and publish a new CRL."""
    row = conn.execute(sa.select(pki_keys).where(pki_keys.c.key_id == key_id)).first()
    if row is None or row.role not in ("dsc", "mls"):
        raise NotFound(f"No Document Signer or Master List Signer with key id {key_id}.", field="key_id")
    if row.status == "revoked":
        raise Conflict(f"Key {key_id} is already revoked.", code="already_revoked")
    now = now or utcnow()
    conn.execute(pki_keys.update().where(pki_keys.c.key_id == key_id)
                 .values(status="revoked", revoked_at=now, revocation_reason=reason))
    forget_signers()
    crl = issue_crl(conn, vault, now=now, issuer_id=row.issuer_id)
    return {"key_id": key_id, "revoked_at": now.isoformat(), "crl_number": crl["number"]}


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
    crl = crls.sign_crl(conn, csca, now=now, period=CRL_PERIOD)
    return {"number": crl["number"], "der": crl["der"]}


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
    else:
        query = query.where(pki_crls.c.issuer_id.in_(_csca_ids()))
    return conn.execute(query).scalar()


def _csca_ids():
    return sa.select(pki_keys.c.key_id).where(pki_keys.c.role == "csca")


def latest_crls(conn: sa.Connection) -> list[bytes]:
    """The newest CRL of every CSCA we have had."""
    newest = (sa.select(sa.func.max(pki_crls.c.crl_id)).where(pki_crls.c.issuer_id.in_(_csca_ids()))
              .group_by(pki_crls.c.issuer_id))
    return list(conn.execute(sa.select(pki_crls.c.der).where(pki_crls.c.crl_id.in_(newest))).scalars())


def master_list(conn: sa.Connection, vault: Vault) -> bytes:
    """Our CSCA certificates and the trusted foreign ones, as a signed CSCA master list (CMS)."""
    now = utcnow()
    row = _current(conn, "mls", now)
    if _worn_out(row, now):  # revoked or worn out: the CSCA makes another
        csca = _active(conn, "csca")
        if csca is None:
            raise NotFound("There is no Country Signing CA yet: run `dinhdanh pki init`.", field="pki")
        if row is not None:
            conn.execute(pki_keys.update().where(pki_keys.c.key_id == row.key_id).values(status="retired"))
        _issue_master_list_signer(conn, vault, algorithm=csca.algorithm, now=now)
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
