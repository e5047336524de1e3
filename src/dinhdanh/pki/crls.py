"""Certificate revocation lists (RFC 5280 s5): every CA of ours lists the keys it certified that
were revoked, numbered in sequence, signed by its key (logged like every signature) and kept."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from dinhdanh.pki.signers import SoftwareSigner, log_use
from dinhdanh.pki.tables import pki_crls, pki_keys

__all__ = ["REASONS", "sign_crl", "latest_crl_of"]

REASONS = {"key_compromise": x509.ReasonFlags.key_compromise, "superseded": x509.ReasonFlags.superseded,
           "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
           "affiliation_changed": x509.ReasonFlags.affiliation_changed}


def sign_crl(conn: sa.Connection, ca: SoftwareSigner, *, now: dt.datetime, period: dt.timedelta) -> dict:
    """A new CRL of ``ca``: every revoked key it certified, valid for ``period``; kept in ``pki_crls``."""
    ca_cert = x509.load_der_x509_certificate(ca.certificate)
    number = (conn.execute(sa.select(sa.func.max(pki_crls.c.number))
                           .where(pki_crls.c.issuer_id == ca.key_id)).scalar() or 0) + 1
    builder = (
        x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
        .last_update(now).next_update(now + period)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
    )
    for row in conn.execute(sa.select(pki_keys).where(pki_keys.c.issuer_id == ca.key_id,
                                                      pki_keys.c.status == "revoked")):
        entry = (x509.RevokedCertificateBuilder().serial_number(int(row.serial, 16))
                 .revocation_date(row.revoked_at))
        if row.revocation_reason in REASONS:
            entry = entry.add_extension(x509.CRLReason(REASONS[row.revocation_reason]), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    digest = hashes.SHA384() if ca.hash_algorithm == "sha384" else hashes.SHA256()
    if ca.algorithm == "rsa-pss-3072":
        crl = builder.sign(ca.private_key, digest, rsa_padding=padding.PSS(padding.MGF1(digest), 32))
    else:
        crl = builder.sign(ca.private_key, digest)
    der = crl.public_bytes(serialization.Encoding.DER)
    log_use(conn, ca.key_id, "sign_crl", f"crl:{number}", crl.tbs_certlist_bytes)
    conn.execute(pki_crls.insert().values(issuer_id=ca.key_id, number=number, this_update=now,
                                          next_update=now + period, der=der))
    return {"number": number, "der": der, "next_update": now + period}


def latest_crl_of(conn: sa.Connection, issuer_id: int):
    """The newest CRL row (``der``, ``this_update``, ``next_update``) of one CA, or None."""
    return conn.execute(sa.select(pki_crls.c.der, pki_crls.c.this_update, pki_crls.c.next_update)
                        .where(pki_crls.c.issuer_id == issuer_id)
                        .order_by(pki_crls.c.number.desc()).limit(1)).first()
